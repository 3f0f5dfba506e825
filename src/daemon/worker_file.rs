//! `worker.json`: the worker's phase state, saved whenever a step changes it. A damaged
//! file is kept (and reported to every step) until a new task replaces it.

use std::path::PathBuf;

use crate::error::Error;
use crate::worker::WorkerState;

pub struct WorkerFile {
    state: WorkerState,
    damaged: Option<Error>,
    dir: PathBuf,
}

impl WorkerFile {
    /// The worker's state as the state dir holds it, or why it cannot be read.
    pub fn load(dir: PathBuf) -> WorkerFile {
        let (state, damaged) = match WorkerState::load(&dir) {
            Ok(state) => (state, None),
            Err(e) => (WorkerState::default(), Some(e)),
        };
        WorkerFile {
            state,
            damaged,
            dir,
        }
    }

    pub fn state(&self) -> &WorkerState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut WorkerState {
        &mut self.state
    }

    /// Writes the state; a damaged file stays as it is until it is replaced. A write
    /// that failed (a full disk) is returned: the step it belongs to fails with it.
    pub fn save(&self) -> Result<(), Error> {
        if self.damaged.is_some() {
            return Ok(());
        }
        self.state.save(&self.dir)
    }

    /// Why `worker.json` could not be read, if it could not.
    pub fn damage(&self) -> Option<&Error> {
        self.damaged.as_ref()
    }

    /// A new task replaces a damaged `worker.json`, which is kept aside. Says so.
    pub fn replace_damaged(&mut self) -> Option<String> {
        self.damaged.take()?;
        let path = WorkerState::path(&self.dir);
        let aside = path.with_extension(format!("json.damaged-{}", crate::time::now_ms()));
        self.state = WorkerState::default();
        Some(match std::fs::rename(&path, &aside) {
            Ok(()) => format!(
                "the damaged {} was replaced by a new task; it is kept as {}",
                path.display(),
                aside.display()
            ),
            Err(e) => format!("cannot move the damaged {} aside: {e}", path.display()),
        })
    }

    /// A new worker begins with this state (a fork's copy of its original's).
    /// A write that fails here is told by the new worker's first step, which saves it
    /// again.
    pub fn begin_as(&mut self, state: WorkerState) {
        self.damaged = None;
        self.state = state;
        if let Err(e) = self.save() {
            log_line!("leash daemon: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_kept_until_a_new_task_puts_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = WorkerState::path(dir.path());
        std::fs::write(&path, "{ not json").unwrap();
        let mut file = WorkerFile::load(dir.path().to_path_buf());
        assert!(file.damage().is_some());
        file.state_mut().phase = crate::worker::Phase::Planning;
        file.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{ not json",
            "not overwritten"
        );
        let note = file.replace_damaged().unwrap();
        assert!(note.contains("kept as"), "{note}");
        assert!(file.damage().is_none());
        file.save().unwrap();
        assert!(WorkerState::load(dir.path()).is_ok());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(file.replace_damaged(), None, "only once");
    }
}

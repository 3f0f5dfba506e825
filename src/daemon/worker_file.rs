//! `worker.json`: the worker's phase state, saved whenever a step changes it. A damaged
//! file is kept (and reported to every step) until a new task replaces it.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::git;
use crate::worker::machine::{Action, GitView, Seen, StepMachine, dropped_nudge, judgement};
use crate::worker::{Judgement, Step, Verdict, WorkerState, observe};

pub struct WorkerFile {
    state: WorkerState,
    damaged: Option<Error>,
    dir: PathBuf,
    /// A landing step runs: it owns the branch and worktree until its judgement.
    landing: bool,
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
            landing: false,
        }
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

/// What the daemon asks of the worker's state: the worker's rules read it, the daemon
/// only carries their answers out.
impl WorkerFile {
    /// The step's machine takes the step on from what was seen; the state is saved (a
    /// failed save is returned: the step fails with it).
    /// `transcript_length` says where claude's transcript ends now: a prompt the
    /// machine marks in flight is looked for from there if its turn is cut off.
    pub fn advance(
        &mut self,
        machine: &mut StepMachine,
        (seen, now_ms): (Seen, u64),
        transcript_length: u64,
    ) -> Result<Action, Error> {
        let marked = self.state.in_flight_prompt.clone();
        let action = machine.advance(&mut self.state, seen, now_ms);
        self.state.in_flight_since = match &self.state.in_flight_prompt {
            None => None,
            Some(prompt) if Some(prompt) == marked.as_ref() => self.state.in_flight_since,
            Some(_) => Some(transcript_length),
        };
        self.landing = machine.step() == Step::Land;
        self.save()?;
        Ok(action)
    }

    /// Where the transcript ended when the turn in flight went out, if one is.
    pub fn in_flight_since(&self) -> Option<u64> {
        self.state.in_flight_since
    }

    /// A step's judgement becomes the worker's last word; true when the work is done.
    pub fn judged(&mut self, judged: &Judgement) -> Result<bool, Error> {
        let done = self.state.judged(judged);
        self.landing = false;
        self.save()?;
        Ok(done)
    }

    /// A judgement of `step` on the worker as it stands.
    pub fn judgement(&self, step: Step, verdict: Verdict, message: String) -> Judgement {
        judgement(&self.state, step, verdict, message)
    }

    /// A landing step runs now.
    pub fn landing(&self) -> bool {
        self.landing
    }

    /// What a nudge that waited while the work got done is answered.
    pub fn dropped_nudge(&self) -> Judgement {
        dropped_nudge(&self.state)
    }

    /// The id of the task under way, if one is.
    pub fn task_under_way(&self) -> Option<String> {
        self.state
            .task_under_way()
            .then(|| self.state.task.id.clone())
            .flatten()
    }

    /// The task's id and text.
    pub fn task(&self) -> (Option<String>, Option<String>) {
        (self.state.task.id.clone(), self.state.task.text.clone())
    }

    /// The HEAD leash last saw in the worker's repository.
    pub fn last_seen_head(&self) -> Option<String> {
        self.state.run.last_seen_head.clone()
    }

    /// The repository as the step's machine reads it.
    pub fn look(&self, cwd: &Path) -> Result<GitView, Error> {
        observe::git_view(cwd, &self.state)
    }

    /// The change a reviewer is shown.
    pub fn review_diff(&self, cwd: &Path) -> Result<git::Diff, Error> {
        observe::review_diff(cwd, &self.state)
    }

    /// What the conversation that takes over from a full one is told first.
    pub fn handoff(&self, cwd: Option<&Path>, recent_prompts: &[String]) -> String {
        observe::handoff(&self.state, cwd, recent_prompts)
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
        file.state.phase = crate::worker::Phase::Planning;
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

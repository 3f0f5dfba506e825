//! `history.jsonl`, written by the daemon as tasks end. Folding the event log for a
//! task's row takes a moment (the log may hold 128 MiB): one thread does it, off the
//! turn path, and the tasks that end while it works are folded together, so a burst of
//! endings never piles up threads or folds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::report::history;

/// A task that ended, and where its worker works (its branch is read there).
struct Ended {
    task_id: String,
    cwd: Option<PathBuf>,
}

pub struct HistoryFile {
    ended: Option<mpsc::Sender<Ended>>,
    writer: Option<JoinHandle<()>>,
    /// Why the latest tasks' rows could not be saved, until it is told.
    failure: Arc<Mutex<Option<String>>>,
}

impl HistoryFile {
    pub fn new(state_dir: PathBuf, worker: String) -> HistoryFile {
        let (ended, rx) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let writer = std::thread::Builder::new()
            .name("history".to_string())
            .spawn(move || write_all(&state_dir, &worker, &rx, &failed));
        let writer = writer
            .inspect_err(|e| log_line!("leash daemon: no task history this time: {e}"))
            .ok();
        HistoryFile {
            ended: Some(ended),
            writer,
            failure,
        }
    }

    /// Why a task's row could not be saved (the task ended before; its command is
    /// gone), once: the daemon tells it to the next command it serves.
    pub fn take_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The task's row goes into the history once the log it is folded from is on disk
    /// (the caller has flushed it).
    pub fn task_ended(&self, task_id: String, cwd: Option<PathBuf>) {
        if let Some(ended) = &self.ended {
            let _ = ended.send(Ended { task_id, cwd });
        }
    }
}

impl Drop for HistoryFile {
    /// What ended is in the history before the daemon exits.
    fn drop(&mut self) {
        self.ended.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_all(
    state_dir: &Path,
    worker: &str,
    ended: &mpsc::Receiver<Ended>,
    failure: &Mutex<Option<String>>,
) {
    while let Ok(first) = ended.recv() {
        let batch: Vec<(String, Option<String>)> = std::iter::once(first)
            .chain(ended.try_iter())
            .map(|e| {
                let branch = e.cwd.as_deref().and_then(crate::worktree::branch_at);
                (e.task_id, branch)
            })
            .collect();
        if let Err(e) = history::record(state_dir, worker, &batch) {
            log_line!("leash daemon: {e}");
            *failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
        }
        // Reading the log took memory for a moment; the daemon stays small.
        crate::process::release_free_memory();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::LOG_FILE;

    fn log_of(tasks: usize) -> String {
        (0..tasks)
            .map(|n| {
                format!(
                    "{{\"type\":\"step_started\",\"seq\":{n},\"ts\":{n},\"turn\":{n},\"step\":\"plan\",\"task_id\":\"t{n}\",\"task\":\"task {n}\"}}\n"
                )
            })
            .collect()
    }

    #[test]
    fn a_burst_of_endings_is_all_in_the_history_when_the_daemon_exits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG_FILE), log_of(50)).unwrap();
        let file = HistoryFile::new(dir.path().to_path_buf(), "w".to_string());
        for n in 0..50 {
            file.task_ended(format!("t{n}"), None);
            // Ended twice close together (interrupted, then replaced).
            file.task_ended(format!("t{n}"), None);
        }
        file.task_ended("never-began".to_string(), None);
        drop(file);
        let rows = history::load(dir.path()).unwrap().rows;
        let ids: Vec<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
        let expected: Vec<String> = (0..50).map(|n| format!("t{n}")).collect();
        assert_eq!(ids, expected);
        assert!(rows.iter().all(|r| r.worker == "w"));
        let lines = std::fs::read_to_string(dir.path().join(history::HISTORY_FILE)).unwrap();
        assert!(
            lines.lines().count() <= 100,
            "at most the two endings of each task: {}",
            lines.lines().count()
        );
    }
}

//! The code each task's last `leash loop` exited with. A loop that dies on claude or its
//! daemon (6) or on its setup (4) leaves no judgement behind: without this, its task
//! would read as unfinished with its last step's 0. The loop tells its daemon as it
//! exits (a `loop_ended` event in the log, which the fold reads); when no daemon
//! answers, it keeps the code in the worker's state dir (`loop-exits.json`).
//! `report` and `status` read both.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Standing, TaskRow};
use crate::error::ErrorKind;

pub const EXITS_FILE: &str = "loop-exits.json";
/// Held while the file is read, changed and written back, so two loops ending at once
/// both keep their word (the daemon's own lock is held by the daemon while it runs).
const LOCK_FILE: &str = "loop-exits.lock";
/// Tasks kept: far more than a report shows at once is not needed, the history keeps
/// the rest.
const MAX_TASKS: usize = 100;

/// How a task's last loop ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopExit {
    pub task_id: String,
    pub exit_code: u8,
    /// Unix ms when it exited.
    pub at_ms: u64,
}

/// Keeps `exit` as its task's latest, atomically and under the file's lock.
pub fn record(state_dir: &Path, exit: LoopExit) -> io::Result<()> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir.join(LOCK_FILE))?;
    lock.lock()?;
    let mut exits = load(state_dir);
    exits.retain(|e| e.task_id != exit.task_id);
    exits.push(exit);
    if exits.len() > MAX_TASKS {
        exits.drain(..exits.len() - MAX_TASKS);
    }
    let text = serde_json::to_vec(&exits).map_err(io::Error::other)?;
    crate::state_file::write_atomic(&state_dir.join(EXITS_FILE), &text)
}

/// The exits kept, oldest first; none when the file is missing or unreadable.
pub fn load(state_dir: &Path) -> Vec<LoopExit> {
    let Ok(file) = File::open(state_dir.join(EXITS_FILE)) else {
        return Vec::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let mut text = Vec::new();
    if file.take(1 << 20).read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    serde_json::from_slice(&text).unwrap_or_default()
}

/// The latest exit of a task's loop.
pub fn of_task<'e>(exits: &'e [LoopExit], task_id: &str) -> Option<&'e LoopExit> {
    exits.iter().rev().find(|e| e.task_id == task_id)
}

/// A task whose loop died after its last event reads as the loop ended it: failed (or
/// interrupted) with the code the loop exited with, the code a night's script saw. A
/// task that ended by a judgement keeps its word; one that went on later (its loop run
/// again) keeps its own.
pub fn apply(exits: &[LoopExit], row: &mut TaskRow) {
    let Some(exit) = of_task(exits, &row.task_id) else {
        return;
    };
    if exit.exit_code == 0 || exit.at_ms < row.last_ms || row.standing != Standing::Unfinished {
        return;
    }
    row.standing = match exit.exit_code == ErrorKind::Interrupted.exit_code() {
        true => Standing::Interrupted,
        false => Standing::Failed,
    };
    row.exit_code = Some(exit.exit_code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_keeps_its_latest_exit_and_a_damaged_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        for (task, code, at) in [("a", 6, 1), ("b", 4, 2), ("a", 10, 3)] {
            let exit = LoopExit {
                task_id: task.to_string(),
                exit_code: code,
                at_ms: at,
            };
            record(dir.path(), exit).unwrap();
        }
        let exits = load(dir.path());
        assert_eq!(exits.len(), 2);
        assert_eq!(of_task(&exits, "a").map(|e| e.exit_code), Some(10));
        std::fs::write(dir.path().join(EXITS_FILE), "{torn").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}

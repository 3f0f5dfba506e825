//! A worker's task history, `history.jsonl`: one row per task that ended, written by the
//! daemon as the task ends, from the event log as it is then. The event log rotates
//! away a busy worker's earlier days; the history keeps its newest [`MAX_TASKS`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use super::TaskRow;
use super::fold::Ledger;

pub const HISTORY_FILE: &str = "history.jsonl";
/// Tasks a worker's history keeps; it is cut back to this once it grows a tenth over.
pub const MAX_TASKS: usize = 1000;

/// One writer at a time in this process.
static WRITING: Mutex<()> = Mutex::new(());

/// The worker's event logs folded, read by the event log's own reader.
pub fn fold_logs(state_dir: &Path) -> Ledger {
    let mut ledger = Ledger::new();
    crate::eventlog::for_each_line(state_dir, |line| ledger.line(line));
    ledger
}

/// The rows of tasks that ended, as the worker's event logs tell them, added to its
/// history: the logs are folded once for all of them. Each task comes with its branch.
pub fn record(state_dir: &Path, worker: &str, ended: &[(String, Option<String>)]) {
    let _one = WRITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let ledger = fold_logs(state_dir);
    let mut recorded: Vec<&str> = Vec::new();
    for (task_id, branch) in ended {
        // A task may end twice close together (interrupted, then replaced): the fold
        // already holds both.
        if recorded.contains(&task_id.as_str()) {
            continue;
        }
        recorded.push(task_id);
        let Some(row) = ledger.row(task_id) else {
            continue;
        };
        let row = TaskRow {
            worker: worker.to_string(),
            branch: branch.clone(),
            ..row
        };
        if let Err(e) = append(state_dir, &row) {
            eprintln!(
                "leash daemon: cannot add the task to {}: {e}",
                state_dir.join(HISTORY_FILE).display()
            );
        }
    }
}

/// Adds a row; past a tenth over [`MAX_TASKS`], the oldest go. A torn last line (a
/// daemon killed as it wrote) is left on a line of its own.
pub fn append(state_dir: &Path, row: &TaskRow) -> io::Result<()> {
    let path = state_dir.join(HISTORY_FILE);
    let torn = read(&path).is_some_and(|text| text.last().is_some_and(|b| *b != b'\n'));
    let mut line = if torn {
        "\n".to_string()
    } else {
        String::new()
    };
    line.push_str(&serde_json::to_string(row).map_err(io::Error::other)?);
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?
        .write_all(line.as_bytes())?;
    let Some(text) = read(&path) else {
        return Ok(());
    };
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() <= MAX_TASKS + MAX_TASKS / 10 {
        return Ok(());
    }
    let mut kept = lines[lines.len() - MAX_TASKS..].join(&b'\n');
    kept.push(b'\n');
    crate::paths::write_atomic(&path, &kept)
}

/// The history's rows, oldest first; a task recorded more than once (it ended, then
/// went on) keeps its latest. A torn, unreadable or oversized line is skipped.
pub fn load(state_dir: &Path) -> Vec<TaskRow> {
    let Some(text) = read(&state_dir.join(HISTORY_FILE)) else {
        return Vec::new();
    };
    let mut rows: Vec<TaskRow> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let Ok(row) = serde_json::from_slice::<TaskRow>(line) else {
            continue;
        };
        rows.retain(|r| r.task_id != row.task_id);
        rows.push(row);
    }
    rows
}

/// A history a person may have put anything in: only a regular file is read (a FIFO or
/// a device would hang or never end), and at most [`MAX_BYTES`] of it.
fn read(path: &Path) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.take(MAX_BYTES).read_to_end(&mut text).ok()?;
    Some(text)
}

/// Far above what [`MAX_TASKS`] rows take (about 1 KB each).
const MAX_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Standing;

    fn row(id: usize) -> TaskRow {
        let mut ledger = Ledger::new();
        ledger.line(&format!(
            r#"{{"type":"step_started","seq":1,"ts":{id},"turn":1,"step":"plan","task_id":"t{id}","task":"task {id}"}}"#
        ));
        ledger.row(&format!("t{id}")).unwrap()
    }

    #[test]
    fn the_history_keeps_the_newest_tasks_and_the_latest_row_of_each() {
        let dir = tempfile::tempdir().unwrap();
        for id in 0..MAX_TASKS + MAX_TASKS / 10 + 1 {
            append(dir.path(), &row(id)).unwrap();
        }
        let rows = load(dir.path());
        assert_eq!(rows.len(), MAX_TASKS);
        assert_eq!(rows[0].task_id, format!("t{}", MAX_TASKS / 10 + 1));
        let again = TaskRow {
            standing: Standing::Done,
            ..row(MAX_TASKS)
        };
        append(dir.path(), &again).unwrap();
        let rows = load(dir.path());
        assert_eq!(rows.len(), MAX_TASKS, "the same task once");
        assert_eq!(rows.last().unwrap().standing, Standing::Done);
        std::fs::write(
            dir.path().join(HISTORY_FILE),
            std::fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap() + "{\"torn",
        )
        .unwrap();
        assert_eq!(load(dir.path()).len(), MAX_TASKS, "a torn line is skipped");
    }

    #[test]
    fn a_line_that_is_not_text_hides_no_later_row() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &row(1)).unwrap();
        let path = dir.path().join(HISTORY_FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"task\":\"torn \xf0\x9f\n");
        std::fs::write(&path, text).unwrap();
        append(dir.path(), &row(2)).unwrap();
        append(dir.path(), &row(3)).unwrap();
        let ids: Vec<String> = load(dir.path()).into_iter().map(|r| r.task_id).collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
    }

    #[test]
    fn a_history_that_is_no_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(HISTORY_FILE)).unwrap();
        assert!(load(dir.path()).is_empty());
    }
}

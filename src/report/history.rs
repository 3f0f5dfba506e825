//! A worker's task history, `history.jsonl`: one row per task that ended, written by the
//! daemon as the task ends, from the event log as it is then. The event log rotates
//! away a busy worker's earlier days; the history keeps its newest [`MAX_TASKS`].

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use super::TaskRow;
use super::fold::Ledger;
use super::landing;
use crate::state_file;

pub const HISTORY_FILE: &str = "history.jsonl";
/// Tasks a worker's history keeps; it is cut back to this once it grows a tenth over.
pub const MAX_TASKS: usize = 1000;
/// Far above what a row takes (about 1 KB, its task verbatim): a longer line is no row
/// of leash's, and is skipped rather than read whole.
pub const MAX_LINE: usize = 1 << 20;

/// One writer at a time in this process.
static WRITING: Mutex<()> = Mutex::new(());

/// The worker's event logs folded, the rotated one first. Both are opened before
/// either is read, so a rotation meanwhile loses nothing. A log that is no regular file
/// is refused (an error naming it), never waited on.
pub fn fold_logs(state_dir: &Path) -> io::Result<Ledger> {
    let mut ledger = Ledger::new();
    crate::eventlog::each_line(state_dir, |line| ledger.line(line))?;
    Ok(ledger)
}

/// The rows of tasks that ended, as the worker's event logs tell them, added to its
/// history: the logs are folded once for all of them. Each task comes with its branch.
/// What could not be recorded is said, and returned.
pub fn record(
    state_dir: &Path,
    worker: &str,
    ended: &[(String, Option<String>)],
) -> Result<(), String> {
    let _one = WRITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = state_dir.join(HISTORY_FILE);
    let ledger = fold_logs(state_dir)
        .map_err(|e| format!("cannot add the task to {}: {e}", path.display()))?;
    // What the history cannot give (it is no file yet, or unreadable) the log's rows
    // stand without; writing to it says what is wrong.
    let kept = load(state_dir).map(|h| h.rows).unwrap_or_default();
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
        // A log that lost the task's beginning tells only what came after (a landing
        // the morning after): the kept row takes it in, never gives way to it.
        let mut rows: Vec<TaskRow> = kept
            .iter()
            .filter(|r| r.task_id == *task_id)
            .cloned()
            .collect();
        merge(&mut rows, row);
        let Some(row) = rows.pop() else {
            continue;
        };
        let row = TaskRow {
            worker: worker.to_string(),
            branch: branch.clone().or(row.branch),
            ..row
        };
        append(state_dir, &row)
            .map_err(|e| format!("cannot add the task to {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A row folded from the logs, merged with the history's.
pub fn merge(rows: &mut Vec<TaskRow>, folded: TaskRow) {
    match rows.iter_mut().find(|r| r.task_id == folded.task_id) {
        // The log saw the whole task: its word is the latest (the branch it was
        // recorded on stays: the worker may be elsewhere now).
        Some(kept) if folded.started_ms <= kept.started_ms => {
            let branch = kept.branch.take();
            *kept = folded;
            kept.branch = kept.branch.take().or(branch);
        }
        Some(kept) => {
            landing::take_newer(kept, &folded);
            // The log lost the task's beginning, and saw it go on after it was kept:
            // the kept figures stand, the latest judgement is the log's.
            if folded.last_ms > kept.last_ms && folded.verdict.is_some() {
                kept.standing = folded.standing;
                kept.verdict = folded.verdict;
                kept.exit_code = folded.exit_code;
                kept.message = folded.message;
                kept.phase = folded.phase;
                kept.cost_usd = folded.cost_usd;
                if folded.host.is_some() {
                    kept.host = folded.host;
                }
                kept.reached(folded.last_ms);
            }
        }
        None => rows.push(folded),
    }
}

/// Adds a row; past a tenth over [`MAX_TASKS`], the oldest go. A torn last line (a
/// daemon killed as it wrote) is left on a line of its own. A history that is a symlink
/// (or anything but a regular file) is refused: nothing is written through it.
pub fn append(state_dir: &Path, row: &TaskRow) -> io::Result<()> {
    let path = state_dir.join(HISTORY_FILE);
    let mut file = state_file::open_append(&path)?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.read_exact_at(&mut last, len - 1)?;
    }
    let mut line = if last[0] == b'\n' {
        String::new()
    } else {
        "\n".to_string()
    };
    line.push_str(&serde_json::to_string(row).map_err(io::Error::other)?);
    line.push('\n');
    file.write_all(line.as_bytes())?;
    drop(file);
    trim(&path)
}

/// Cuts the history back to its newest [`MAX_TASKS`] lines once it holds a tenth more.
fn trim(path: &Path) -> io::Result<()> {
    let Some(file) = state_file::open(path)? else {
        return Ok(());
    };
    let mut newest: VecDeque<Vec<u8>> = VecDeque::with_capacity(MAX_TASKS + 1);
    let mut lines = 0;
    state_file::each_line(file, MAX_LINE, |line| {
        if line.is_empty() {
            return;
        }
        lines += 1;
        if newest.len() == MAX_TASKS {
            newest.pop_front();
        }
        newest.push_back(line.to_vec());
    })?;
    if lines <= MAX_TASKS + MAX_TASKS / 10 {
        return Ok(());
    }
    let mut kept = Vec::new();
    for line in newest {
        kept.extend_from_slice(&line);
        kept.push(b'\n');
    }
    crate::state_file::write_atomic(path, &kept)
}

/// A worker's history as read: its rows, and how many lines were too long to be rows.
#[derive(Debug, Default)]
pub struct History {
    pub rows: Vec<TaskRow>,
    pub skipped: u64,
}

/// The history's rows, oldest first; a task recorded more than once (it ended, then
/// went on) keeps its latest. A torn or unreadable line is passed over, an oversized
/// one skipped and counted; a history that is no regular file is refused.
pub fn load(state_dir: &Path) -> io::Result<History> {
    let Some(file) = state_file::open(&state_dir.join(HISTORY_FILE))? else {
        return Ok(History::default());
    };
    let mut rows: Vec<TaskRow> = Vec::new();
    let skipped = state_file::each_line(file, MAX_LINE, |line| {
        let Ok(row) = serde_json::from_slice::<TaskRow>(line) else {
            return;
        };
        rows.retain(|r| r.task_id != row.task_id);
        rows.push(row);
    })?;
    Ok(History { rows, skipped })
}

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
        let rows = load(dir.path()).unwrap().rows;
        assert_eq!(rows.len(), MAX_TASKS);
        assert_eq!(rows[0].task_id, format!("t{}", MAX_TASKS / 10 + 1));
        let again = TaskRow {
            standing: Standing::Done,
            ..row(MAX_TASKS)
        };
        append(dir.path(), &again).unwrap();
        let rows = load(dir.path()).unwrap().rows;
        assert_eq!(rows.len(), MAX_TASKS, "the same task once");
        assert_eq!(rows.last().unwrap().standing, Standing::Done);
        std::fs::write(
            dir.path().join(HISTORY_FILE),
            std::fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap() + "{\"torn",
        )
        .unwrap();
        assert_eq!(
            load(dir.path()).unwrap().rows.len(),
            MAX_TASKS,
            "a torn line is skipped"
        );
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
        let ids: Vec<String> = load(dir.path())
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.task_id)
            .collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
    }

    #[test]
    fn a_history_that_is_no_file_is_refused_and_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(HISTORY_FILE)).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a symlink"), "{e}");
        let elsewhere = dir.path().join("elsewhere.jsonl");
        std::fs::write(&elsewhere, "").unwrap();
        std::fs::remove_file(dir.path().join(HISTORY_FILE)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(HISTORY_FILE)).unwrap();
        assert!(append(dir.path(), &row(1)).is_err());
        assert_eq!(
            std::fs::read(&elsewhere).unwrap(),
            b"",
            "the target untouched"
        );
    }

    #[test]
    fn an_oversized_first_line_hides_no_later_row() {
        let dir = tempfile::tempdir().unwrap();
        let huge = format!("{{\"task\":\"{}\"}}\n", "x".repeat(MAX_LINE + 1));
        std::fs::write(dir.path().join(HISTORY_FILE), huge).unwrap();
        append(dir.path(), &row(1)).unwrap();
        append(dir.path(), &row(2)).unwrap();
        let history = load(dir.path()).unwrap();
        let ids: Vec<&str> = history.rows.iter().map(|r| r.task_id.as_str()).collect();
        assert_eq!(ids, ["t1", "t2"]);
        assert_eq!(history.skipped, 1);
    }
}

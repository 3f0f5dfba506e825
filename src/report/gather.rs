//! A worker's tasks as the report shows them: its history, its event logs for what the
//! history does not hold yet (a task under way) or holds an older word on, the codes
//! its loops exited with, and what its daemon runs now.

use std::path::Path;

use super::{Standing, TaskRow, exits, history};
use crate::error::Error;
use crate::state_file;

/// What the report knows of a worker besides its files.
pub struct WorkerFacts {
    pub worker: String,
    /// The branch it works on now.
    pub branch: Option<String>,
    /// The repository it works in.
    pub repository: Option<String>,
    /// The step its daemon runs now, if one answers and runs one.
    pub current_turn: Option<u64>,
}

/// A worker's rows, how many of its history's rows were too far off to be true, and
/// how many of its lines were too long to be rows.
pub struct Gathered {
    pub rows: Vec<TaskRow>,
    pub skipped: usize,
    pub long_lines: u64,
}

/// 2020-01-01, UTC: no task of leash's began before.
const EARLIEST_MS: u64 = 1_577_836_800_000;
const DAY_MS: u64 = 86_400_000;

/// Whether a row's times can be true: a damaged history row (a time of `u64::MAX`)
/// would stretch the picture's axis over millions of years.
pub fn plausible(row: &TaskRow, now_ms: u64) -> bool {
    let latest = now_ms.saturating_add(DAY_MS);
    (EARLIEST_MS..=latest).contains(&row.started_ms)
        && (row.started_ms..=latest).contains(&row.last_ms)
}

/// A worker's tasks; a history or event log that is no regular file, or cannot be
/// read, is an error naming it (never waited on).
pub fn tasks(state_dir: &Path, worker: &WorkerFacts, now_ms: u64) -> Result<Gathered, Error> {
    let history = history::load(state_dir).map_err(|e| {
        state_file::error(
            format!(
                "cannot read {}",
                state_dir.join(history::HISTORY_FILE).display()
            ),
            e,
        )
    })?;
    let long_lines = history.skipped;
    let mut rows: Vec<TaskRow> = history.rows;
    let before = rows.len();
    rows.retain(|r| plausible(r, now_ms));
    let skipped = before - rows.len();
    let ledger = history::fold_logs(state_dir).map_err(|e| {
        state_file::error(
            format!("cannot read the event log in {}", state_dir.display()),
            e,
        )
    })?;
    let open_steps = ledger.open_steps();
    for folded in ledger.rows() {
        merge(&mut rows, folded);
    }
    // Running: the daemon is on a step of the task now (not on a plain `session send`).
    let running = worker.current_turn.and_then(|turn| {
        open_steps
            .into_iter()
            .find(|(step, _)| *step == turn)
            .map(|(_, task)| task)
    });
    let exits = exits::load(state_dir);
    for row in &mut rows {
        if row.worker.is_empty() {
            row.worker.clone_from(&worker.worker);
        }
        if row.branch.is_none() {
            row.branch.clone_from(&worker.branch);
        }
        row.repository.clone_from(&worker.repository);
        if running.as_deref() == Some(row.task_id.as_str()) {
            row.standing = Standing::Running;
            row.exit_code = None;
            // Its time goes on while it runs.
            row.duration_ms = now_ms.saturating_sub(row.started_ms);
        } else {
            exits::apply(&exits, row);
        }
    }
    super::attempts::attach(state_dir, &mut rows);
    Ok(Gathered {
        rows,
        skipped,
        long_lines,
    })
}

/// A row folded from the logs, merged with the history's.
fn merge(rows: &mut Vec<TaskRow>, folded: TaskRow) {
    match rows.iter_mut().find(|r| r.task_id == folded.task_id) {
        // The log saw the whole task: its word is the latest (the branch it was
        // recorded on stays: the worker may be elsewhere now).
        Some(kept) if folded.started_ms <= kept.started_ms => {
            let branch = kept.branch.take();
            *kept = folded;
            kept.branch = kept.branch.take().or(branch);
        }
        // The log lost the task's beginning, and saw it go on after it was kept: the
        // kept figures stand, the latest judgement is the log's.
        Some(kept) if folded.last_ms > kept.last_ms && folded.verdict.is_some() => {
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
        Some(_) => {}
        None => rows.push(folded),
    }
}

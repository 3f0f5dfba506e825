//! A best-of-N task in the report: the task once, its attempts as its sub-rows. The
//! rows of the attempts that lost (and of the turns that planned and judged them) are
//! kept in the winner's state dir, `attempt_rows.json`, before their own state dirs go;
//! the report hangs them under the task and counts their cost in it.

use std::path::Path;

use super::TaskRow;
use crate::worker::attempts::{AttemptSet, attempt_name};

pub const ATTEMPT_ROWS: &str = "attempt_rows.json";

/// Keeps `row` (an attempt's, or the planner's) in `state_dir`'s attempt rows; a row of
/// the same worker and task replaces the one before (a rename run again).
pub fn record(state_dir: &Path, row: TaskRow) -> Result<(), String> {
    let path = state_dir.join(ATTEMPT_ROWS);
    let mut rows = load(state_dir);
    rows.retain(|r| !(r.worker == row.worker && r.task_id == row.task_id));
    rows.push(row);
    let bytes = serde_json::to_vec(&rows).map_err(|e| e.to_string())?;
    crate::state_file::write_atomic(&path, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load(state_dir: &Path) -> Vec<TaskRow> {
    let path = state_dir.join(ATTEMPT_ROWS);
    crate::state_file::read(&path, crate::state_file::MAX_RECORD_BYTES)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The worker's best-of-N task gets its attempts as sub-rows (the winner's own work is
/// the task's row), their cost and the planner's added to its own, and a message that
/// says how it was chosen.
pub fn attach(state_dir: &Path, rows: &mut [TaskRow]) {
    let Ok(Some(set)) = AttemptSet::load(state_dir) else {
        return;
    };
    let kept = load(state_dir);
    let Some(row) = rows.iter_mut().find(|r| r.task_id == set.task_id) else {
        return;
    };
    let (planner, mut losers): (Vec<TaskRow>, Vec<TaskRow>) = kept
        .into_iter()
        .filter(|r| r.task_id == set.task_id)
        .partition(|r| r.worker == row.worker);
    let extra: f64 = planner.iter().chain(&losers).map(|r| r.cost_usd).sum();
    if let Some(chosen) = &set.chosen {
        losers.push(TaskRow {
            worker: attempt_name(&row.worker, chosen.k),
            attempts: Vec::new(),
            ..row.clone()
        });
        row.message = Some(format!(
            "best of {}: {} green, winner {}{}",
            set.attempts,
            set.green().len(),
            chosen.k,
            row.message
                .as_deref()
                .map(|m| format!("; {m}"))
                .unwrap_or_default()
        ));
    }
    losers.sort_by(|a, b| super::natural_cmp(&a.worker, &b.worker));
    row.cost_usd += extra;
    row.attempts = losers;
}

/// The rows the picture draws: each task, and each attempt of a best-of-N task on a
/// lane of its own (the winner's is the task's).
pub fn lanes(rows: &[TaskRow]) -> Vec<TaskRow> {
    rows.iter()
        .flat_map(|row| {
            let others = row
                .attempts
                .iter()
                .filter(|a| a.spans != row.spans)
                .cloned();
            std::iter::once(row.clone()).chain(others)
        })
        .collect()
}

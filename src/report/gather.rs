//! A worker's tasks as the report shows them: its history, its event logs for what the
//! history does not hold yet (a task under way) or holds an older word on, the codes
//! its loops exited with, and what its daemon runs now.

use std::path::Path;

use super::history::merge;
use super::landing::Landing;
use super::{Standing, TaskRow, exits, history};
use crate::error::Error;
use crate::state_file;
use crate::worker::Step;

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
            .find(|(id, ..)| *id == turn)
            .map(|(_, task, step)| (task, step))
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
        let runs = running.as_ref().filter(|(task, _)| *task == row.task_id);
        if let Some((_, Step::Land)) = runs {
            // A landing under way: the task stays as its work ended.
            row.landing = Some(Landing::under_way(now_ms));
            exits::apply(&exits, row);
        } else if runs.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A task done, then a landing step its daemon runs now.
    #[test]
    fn a_landing_under_way_leaves_its_task_done_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::worker::WorkerState::default();
        let judgement = crate::worker::machine::judgement(
            &state,
            Step::Implement,
            crate::worker::Verdict::Committed,
            "done".into(),
        );
        let judged = crate::protocol::Event::<serde_json::Value> {
            seq: 2,
            ts: 1_600_000_000_500,
            turn: Some(1),
            body: crate::protocol::EventBody::Judged { judgement },
        };
        let lines = [
            r#"{"type":"step_started","seq":1,"ts":1600000000000,"turn":1,"step":"implement","task_id":"t","task":"add x"}"#.to_string(),
            serde_json::to_string(&judged).unwrap(),
            r#"{"type":"step_started","seq":3,"ts":1600000001000,"turn":2,"step":"land","task_id":"t","task":"add x"}"#.to_string(),
        ];
        let log = dir.path().join(crate::eventlog::LOG_FILE);
        std::fs::write(log, lines.join("\n") + "\n").unwrap();
        let facts = |turn| WorkerFacts {
            worker: "w".into(),
            branch: None,
            repository: None,
            current_turn: Some(turn),
        };
        let now = 1_600_000_002_000;
        let landing = tasks(dir.path(), &facts(2), now).unwrap().rows.remove(0);
        assert_eq!(landing.standing, Standing::Done, "{landing:#?}");
        assert_eq!(landing.exit_code, Some(0));
        assert_eq!(landing.landing, Some(Landing::under_way(now)));
        let other = tasks(dir.path(), &facts(3), now).unwrap().rows.remove(0);
        assert_eq!(other.landing, None, "no step of it runs");
    }
}

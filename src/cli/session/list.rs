//! `leash session list`: every worker of this user, one row each.

use std::io::IsTerminal;
use std::time::Duration;

use crate::cli::Output;
use crate::cli::json::WorkerRow;
use crate::client::Target;
use crate::error::Error;
use crate::paths::Dirs;
use crate::protocol::{SessionState, SessionStatus};
use crate::record::SessionRecord;
use crate::table::{Column, Fitted};
use crate::worker::{Phase, Step, WorkerState};

use super::status::{context_percent, or_dash};

fn running(s: SessionStatus) -> WorkerRow {
    WorkerRow {
        worktree: None,
        branch: None,
        phase: None,
        context_percent: context_percent(&s),
        worker: s.worker,
        state: s.state,
        daemon_pid: Some(s.daemon_pid),
        session_id: Some(s.session_id),
        model: s.model.or(s.requested_model),
        turns: s.turns,
        cost_usd: s.cost_usd,
        cwd: Some(s.cwd),
        host: s.host,
        waiting_until_ms: s.waiting_until_ms,
        step: s.step,
    }
}

fn stopped(worker: String, record: Option<SessionRecord>) -> WorkerRow {
    WorkerRow {
        worker,
        state: SessionState::Stopped,
        daemon_pid: None,
        session_id: record.as_ref().map(|r| r.conversation.session_id.clone()),
        model: record
            .as_ref()
            .and_then(|r| r.conversation.spawn.model.clone()),
        turns: record.as_ref().map_or(0, |r| r.turns),
        cost_usd: record.as_ref().map_or(0.0, |r| r.cost_usd),
        context_percent: None,
        cwd: record.map(|r| r.conversation.cwd),
        worktree: None,
        branch: None,
        phase: None,
        host: None,
        waiting_until_ms: None,
        step: None,
    }
}

/// Where the worker works, on which branch, and how far its task is.
fn placed(row: WorkerRow, target: &Target) -> WorkerRow {
    let dir = row.cwd.clone().or_else(|| target.worktree_path());
    // A stopped worker last ran where its daemon's lock record says.
    let host = row.host.clone().or_else(|| {
        let lock = std::fs::read_to_string(target.state_dir.join(crate::paths::LOCK_FILE));
        crate::paths::lock_holder(&lock.ok()?)?.host
    });
    WorkerRow {
        host,
        worktree: target.worktree_path(),
        branch: dir.as_deref().and_then(crate::worktree::branch_at),
        phase: WorkerState::load(&target.state_dir)
            .ok()
            .map(|s| s.phase)
            .filter(|p| *p != Phase::Idle),
        cwd: dir,
        ..row
    }
}

/// A running worker's status, if it answers within a bound.
pub(crate) async fn running_status(target: &Target) -> Option<SessionStatus> {
    let ask = async {
        let conn = target.open().await.ok()??;
        conn.status().await.ok()
    };
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .flatten()
}

/// Each target's status, in order, every daemon asked at once: one slow to answer holds
/// back no other.
pub(crate) async fn running_statuses(targets: &[Target]) -> Vec<Option<SessionStatus>> {
    let mut asks = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        asks.spawn(async move { (i, running_status(&target).await) });
    }
    let mut statuses = vec![None; targets.len()];
    while let Some(asked) = asks.join_next().await {
        if let Ok((i, status)) = asked {
            statuses[i] = status;
        }
    }
    statuses
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Redraw the list in place as the workers' events arrive (`q` or Ctrl-C quits)
    #[arg(long)]
    pub watch: bool,
}

/// A worker's row: as its running daemon says (`status`), else as it was left.
pub fn row_of(target: &Target, status: Option<SessionStatus>) -> WorkerRow {
    let row = match status {
        Some(status) => running(status),
        None => stopped(
            target.worker.to_string(),
            SessionRecord::load(&target.state_dir).ok().flatten(),
        ),
    };
    placed(row, target)
}

pub async fn run(args: ListArgs, out: &Output) -> Result<u8, Error> {
    if args.watch {
        // `--watch` where it can draw never reaches here (see `session`'s dispatch).
        out.note("not a terminal: the list is printed once (`--watch` redraws it on a terminal)");
    }
    let dirs = Dirs::from_env()?;
    let targets = dirs
        .known_workers()
        .into_iter()
        .map(|worker| Target::for_worker(dirs.clone(), worker))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<WorkerRow> = targets
        .iter()
        .zip(running_statuses(&targets).await)
        .map(|(target, status)| row_of(target, status))
        .collect();
    if out.json {
        for row in &rows {
            out.json(row);
        }
        return Ok(0);
    }
    if rows.is_empty() {
        out.note("no workers yet; start one with `leash session start`");
        return Ok(0);
    }
    let width = std::io::stdout()
        .is_terminal()
        .then(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(_, w)| usize::from(w))
        })
        .flatten();
    for line in table(&rows, width) {
        out.data(line);
    }
    Ok(0)
}

const COLUMNS: [Column; 11] = [
    Column::text("WORKER"),
    Column::text("STATE"),
    Column::number("PID"),
    Column::text("MODEL"),
    Column::text("PHASE"),
    Column::number("TURNS"),
    Column::number("COST"),
    Column::number("CTX"),
    Column::text("BRANCH"),
    Column::text("HOST"),
    Column::text("CWD"),
];
const HOST: usize = 9;
/// The column that gives way first: the directory.
const CWD: usize = 10;

/// The rows as lines for a terminal `width` columns wide (`None`: as wide as they
/// take). Models and paths come from outside: shown, never obeyed.
fn table(rows: &[WorkerRow], width: Option<usize>) -> Vec<String> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            [
                row.worker.clone(),
                state_of(row, crate::time::now_ms()),
                or_dash(row.daemon_pid),
                or_dash(row.model.clone()),
                or_dash(row.phase),
                row.turns.to_string(),
                crate::human::usd(row.cost_usd),
                or_dash(row.context_percent.map(|p| format!("{p}%"))),
                or_dash(row.branch.clone()),
                or_dash(row.host.clone()),
                or_dash(row.cwd.as_ref().map(|c| c.display().to_string())),
            ]
            .into_iter()
            .map(|cell| crate::human::safe(&cell).into_owned())
            .collect()
        })
        .collect();
    // Where each worker runs tells something only when they run on several machines.
    let mut wanted = vec![true; COLUMNS.len()];
    wanted[HOST] = several(rows.iter().map(|r| r.host.as_deref()));
    let fitted = Fitted::new(&COLUMNS, &cells, wanted, CWD, width);
    fitted.lines(&COLUMNS, &cells)
}

/// Whether the values are not all one.
fn several<'v>(mut values: impl Iterator<Item = Option<&'v str>>) -> bool {
    let first = values.next();
    values.any(|v| Some(v) != first)
}

/// A worker's state as a person reads it: a busy one pausing between nudges is
/// `waiting`, with how long it still waits; one on a landing step is `landing`.
pub(crate) fn state_of(row: &WorkerRow, now_ms: u64) -> String {
    if row.state != SessionState::Busy {
        return row.state.to_string();
    }
    let landing = row.step == Some(Step::Land);
    let waiting = row
        .waiting_until_ms
        .filter(|until| *until > now_ms)
        .map(|until| {
            let secs = (until - now_ms).div_ceil(1000);
            match secs {
                0..60 => format!("waiting {secs}s"),
                _ => format!("waiting {}m{:02}s", secs / 60, secs % 60),
            }
        });
    match (landing, waiting) {
        (true, Some(waiting)) => format!("landing, {waiting}"),
        (true, None) => "landing".to_string(),
        (false, Some(waiting)) => waiting,
        (false, None) => row.state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: SessionState, step: Option<Step>, waiting_until_ms: Option<u64>) -> WorkerRow {
        WorkerRow {
            state,
            step,
            waiting_until_ms,
            ..stopped("w".into(), None)
        }
    }

    #[test]
    fn a_worker_on_a_landing_step_is_landing() {
        let now = 1_000_000;
        let busy = SessionState::Busy;
        let cases = [
            (row(busy, Some(Step::Land), None), "landing"),
            (
                row(busy, Some(Step::Land), Some(now + 12_000)),
                "landing, waiting 12s",
            ),
            (
                row(busy, Some(Step::Nudge), Some(now + 12_000)),
                "waiting 12s",
            ),
            (row(busy, Some(Step::Implement), None), "busy"),
            (row(busy, None, None), "busy"),
            (row(SessionState::Idle, Some(Step::Land), None), "idle"),
        ];
        for (row, said) in cases {
            assert_eq!(state_of(&row, now), said, "{:?} {:?}", row.step, row.state);
        }
    }
}

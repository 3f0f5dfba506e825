//! `leash status`: the worker's phase, task, plan, nudges and last judgement.

use crate::cli::common::{block_on, target};
use crate::cli::json::WorkerStatus;
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::record::SessionRecord;
use crate::report::exits;
use crate::worker::machine::{LoopNext, loop_next};
use crate::worker::{Judgement, WorkerState};

/// The first `n` non-empty lines of `text`, indented under a status row.
fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut shown = lines
        .iter()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join("\n            ");
    if lines.len() > n {
        shown.push_str(&format!(
            "\n            ... ({} more lines)",
            lines.len() - n
        ));
    }
    shown
}

pub fn run(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let state = WorkerState::load(&target.state_dir)?;
    let record = SessionRecord::load(&target.state_dir)?;
    let session_id = record.as_ref().map(|r| r.conversation.session_id.as_str());
    let (daemon_pid, step) = block_on(async {
        let Some(conn) = target.open().await? else {
            return Ok((None, None));
        };
        let pid = conn.daemon_pid;
        // What it runs now; a daemon slow to say still runs.
        let asked = tokio::time::timeout(std::time::Duration::from_secs(3), conn.status());
        let step = asked.await.ok().and_then(Result::ok).and_then(|s| s.step);
        Ok((Some(pid), step))
    })?;
    let dir = record
        .as_ref()
        .map(|r| r.conversation.cwd.clone())
        .or_else(|| target.worktree_path());
    let branch = dir.as_deref().and_then(crate::worktree::branch_at);
    let worktree = target.worktree_path();
    let died = loop_died(&target.state_dir, &state);
    if out.json {
        let told = state.last.as_ref().and_then(|last| match loop_next(last) {
            LoopNext::Finish(code, _) => Some(code),
            _ => None,
        });
        out.json(&WorkerStatus {
            worker: target.worker.to_string(),
            worktree,
            branch,
            running: daemon_pid.is_some(),
            daemon_pid,
            session_id: session_id.map(str::to_string),
            loop_exit_code: died.as_ref().map(|e| e.exit_code).or(told),
            step,
            state,
        });
        return Ok(0);
    }
    let session = match (daemon_pid, session_id) {
        (Some(pid), Some(id)) => format!("running (daemon pid {pid}, session {id})"),
        (None, Some(id)) => format!("stopped (session {id} is kept)"),
        (_, None) => "none yet".to_string(),
    };
    let or_dash = |text: Option<&str>, n| text.map_or("-".into(), |t| first_lines(t, n));
    out.rows([
        ("worker", target.worker.to_string()),
        ("session", session),
        (
            "worktree",
            or_dash(worktree.map(|w| w.display().to_string()).as_deref(), 1),
        ),
        ("branch", or_dash(branch.as_deref(), 1)),
        ("phase", state.phase.to_string()),
        ("task", or_dash(state.task.text.as_deref(), 3)),
        ("plan", or_dash(state.task.plan.as_deref(), 5)),
        (
            "nudges",
            format!("{} of {}", state.run.nudges, state.run.max_nudges),
        ),
        ("cost", state.task.cost.describe()),
    ]);
    if let Some(head) = &state.run.head_at_start {
        out.rows([("head start", head[..head.len().min(12)].to_string())]);
    }
    for (i, check) in state.run.gates.checks.iter().enumerate() {
        let label = if i == 0 { "checks" } else { "" };
        let mark = if check.passed() { "pass" } else { "FAIL" };
        out.rows([(label, format!("{mark}  {}", check.describe()))]);
    }
    if let Some(review) = &state.run.gates.review {
        out.rows([("review", review.describe())]);
    }
    if state.task.rescopes > 0 {
        out.rows([(
            "rescopes",
            format!(
                "{} (earlier plans kept: {})",
                state.task.rescopes,
                state.task.earlier_plans.len()
            ),
        )]);
    }
    if let Some(last) = &state.last {
        out.rows([(
            "last",
            format!("{}: {} ({})", last.step, last.message, loop_after(last)),
        )]);
    }
    if let Some(landing) = landing_of(&target.state_dir, &state, step) {
        out.rows([("landing", landing)]);
    }
    if let Some(died) = died {
        let text = format!(
            "the last `leash loop` exited {} ({} {} UTC)",
            died.exit_code,
            crate::time::utc_date(died.at_ms),
            crate::report::clock_of_day(died.at_ms)
        );
        out.rows([("loop", text)]);
    }
    Ok(0)
}

/// The task's landing in a line: `landed 1a2b3c4d5e on main`, a landing under way, or
/// the latest one given up and why; `None` before any.
fn landing_of(
    state_dir: &std::path::Path,
    state: &WorkerState,
    step: Option<crate::worker::Step>,
) -> Option<String> {
    if step == Some(crate::worker::Step::Land) {
        return Some("landing under way (`leash land`)".to_string());
    }
    let row = state
        .task
        .id
        .as_deref()
        .and_then(|id| task_row(state_dir, id));
    match &state.task.landed {
        // The worker's state has the word on the commit; its log names the target.
        Some(commit) => {
            let told = row
                .as_ref()
                .filter(|r| r.landed.as_ref() == Some(commit))
                .and_then(|r| r.landing.as_ref()?.target.as_deref());
            Some(crate::report::landing::landed_text(commit, told))
        }
        None => crate::report::landing::describe(row.as_ref()?),
    }
}

/// The task's row, as the event logs and the history tell it.
fn task_row(state_dir: &std::path::Path, task_id: &str) -> Option<crate::report::TaskRow> {
    let mut rows: Vec<crate::report::TaskRow> = crate::report::history::load(state_dir)
        .ok()?
        .rows
        .into_iter()
        .filter(|r| r.task_id == task_id)
        .collect();
    let ledger = crate::report::history::fold_logs(state_dir).ok()?;
    if let Some(folded) = ledger.row(task_id) {
        crate::report::history::merge(&mut rows, folded);
    }
    rows.pop()
}

/// What `leash loop` does in this state: the code it ends with (the one a night's
/// script saw), or the step it takes next. Not the last step's own code: a nudge that
/// found the nudges spent exited 0 as a step, and its loop 10.
fn loop_after(last: &Judgement) -> String {
    match loop_next(last) {
        LoopNext::Finish(code, _) => format!("`leash loop` exits {code}"),
        LoopNext::Plan(_) => "`leash loop` plans next".to_string(),
        LoopNext::Implement => "`leash loop` implements next".to_string(),
        LoopNext::Nudge => "`leash loop` nudges next".to_string(),
    }
}

/// The task's last loop, when it died with a code no judgement tells.
fn loop_died(state_dir: &std::path::Path, state: &WorkerState) -> Option<exits::LoopExit> {
    let exit = latest_exit(state_dir, state.task.id.as_deref()?)?;
    let told = state.last.as_ref().map(|last| match loop_next(last) {
        LoopNext::Finish(code, _) => code,
        _ => 0,
    });
    (exit.exit_code != 0 && told != Some(exit.exit_code)).then_some(exit)
}

/// The latest exit of a task's loop, from the event log (its daemon was told) or the
/// state dir's file (none answered), whichever is newer.
fn latest_exit(state_dir: &std::path::Path, task_id: &str) -> Option<exits::LoopExit> {
    let logged = crate::report::history::fold_logs(state_dir)
        .ok()
        .and_then(|ledger| ledger.loop_exit(task_id).cloned());
    let kept = exits::of_task(&exits::load(state_dir), task_id).cloned();
    [logged, kept].into_iter().flatten().max_by_key(|e| e.at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_landing_under_way_is_said_before_any_landing_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = WorkerState {
            task: crate::worker::Task {
                landed: Some("f00dfeedbeef0123".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let landing = |step| landing_of(dir.path(), &state, step);
        assert_eq!(
            landing(Some(crate::worker::Step::Land)).as_deref(),
            Some("landing under way (`leash land`)")
        );
        assert_eq!(
            landing(None).as_deref(),
            Some("landed f00dfeedbe"),
            "no log names the target"
        );
        let never = landing_of(dir.path(), &WorkerState::default(), None);
        assert_eq!(never, None);
    }
}

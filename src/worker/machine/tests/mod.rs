//! The worker machine, step by step, without a daemon: every phase a step can start
//! in, crossed with every way its turn and the repository can turn out.

use super::*;
use crate::git::{CommitInfo, FileChange};
use crate::retry::RetryPolicy;
use crate::turn::{Outcome, TurnKind, TurnStatus};
use crate::worker::{
    GateConfig, NudgeConfig, Phase, Run, Step, Task, TurnConfig, Verdict, WorkerConfig,
    WorkerState, WorkerStep,
};

const NOW: u64 = 1_000_000;

/// A case: what the turn said, the commits made during it, the phase's commits and the
/// loose changes after it, and the verdict, phase and exit code expected.
type ImplementCase<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    Verdict,
    Phase,
    u8,
);
/// A case: the changes before a nudge, the commits it made, the phase's commits and the
/// changes after it, and the verdict and phase expected.
type NudgeCase<'a> = (
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    Verdict,
    Phase,
);

fn config() -> WorkerConfig {
    WorkerConfig {
        turns: TurnConfig {
            plan_model: "opus".into(),
            implement_model: "sonnet".into(),
            plan_permission_mode: "plan".into(),
            implement_permission_mode: "acceptEdits".into(),
            allowed_tools: vec!["Bash(git:*)".into()],
        },
        nudges: NudgeConfig {
            max_nudges: 3,
            nudge_backoff_ms: 1_000,
            nudge_backoff_max_ms: 8_000,
        },
        retry: RetryPolicy::NONE,
        compact_at: 80,
        task_budget_usd: None,
        gates: GateConfig {
            checks: Vec::new(),
            check_timeout_ms: 60_000,
            review: false,
            max_reviews: 2,
            rescopes: 0,
            branch: None,
        },
    }
}

fn commit(id: &str) -> CommitInfo {
    CommitInfo {
        id: id.to_string(),
        summary: format!("commit {id}"),
        author: "someone".to_string(),
    }
}

fn change(path: &str) -> FileChange {
    FileChange {
        code: "??".to_string(),
        path: path.to_string(),
    }
}

fn outcome(status: TurnStatus, result: &str) -> Outcome {
    Outcome {
        status,
        exit_code: status.exit_code(),
        turn: 1,
        result: (status == TurnStatus::Success).then(|| result.to_string()),
        message: (status != TurnStatus::Success).then(|| format!("the turn {status:?}")),
        session_id: "s".into(),
        model: None,
        cost_usd: None,
        duration_ms: 0,
        api_error_status: None,
        retries: 0,
    }
}

fn ok(result: &str) -> Seen {
    turn(outcome(TurnStatus::Success, result), &[])
}

fn turn(outcome: Outcome, made: &[&str]) -> Seen {
    Seen::Turn {
        outcome,
        made: made.iter().map(|s| s.to_string()).collect(),
        foreign: Vec::new(),
        head: made.first().map(|s| s.to_string()),
    }
}

/// git as it looks: HEAD, the phase's commits (newest first), loose changes.
fn git(head: &str, commits: &[&str], changes: &[&str]) -> Seen {
    Seen::Git(GitView {
        head: Some(head.to_string()),
        branch: Some("main".to_string()),
        commits: commits.iter().map(|c| commit(c)).collect(),
        new_commits: commits.iter().map(|c| commit(c)).collect(),
        changes: changes.iter().map(|c| change(c)).collect(),
    })
}

fn state(phase: Phase) -> WorkerState {
    WorkerState {
        phase,
        task: Task {
            text: Some("add a --version flag".into()),
            plan: matches!(phase, Phase::Planned | Phase::Implementing | Phase::Done)
                .then(|| "1. add it".to_string()),
            ..Task::default()
        },
        run: Run {
            head_at_start: (phase != Phase::Idle).then(|| "h0".to_string()),
            last_seen_head: (phase != Phase::Idle).then(|| "h0".to_string()),
            max_nudges: 3,
            implement_sent: matches!(
                phase,
                Phase::Implementing | Phase::Done | Phase::Blocked | Phase::OutOfNudges
            ),
            ..Run::default()
        },
        ..WorkerState::default()
    }
}

/// Feeds `seen` in order; returns every action, the last being the judgement.
fn drive(step: WorkerStep, state: &mut WorkerState, seen: Vec<Seen>) -> Vec<Action> {
    let mut machine = StepMachine::new(step, config(), None);
    let mut actions = vec![machine.advance(state, Seen::Start, NOW)];
    for seen in seen {
        assert!(
            !matches!(actions.last(), Some(Action::Finish(_))),
            "fed {seen:?} after the step finished: {actions:?}"
        );
        actions.push(machine.advance(state, seen, NOW));
    }
    actions
}

fn judged(actions: &[Action]) -> &Judgement {
    match actions.last() {
        Some(Action::Finish(judgement)) => judgement,
        other => panic!("the step did not finish: {other:?} in {actions:?}"),
    }
}

fn sent(actions: &[Action]) -> Vec<(TurnKind, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { kind, prompt, .. } => Some((*kind, prompt.clone())),
            _ => None,
        })
        .collect()
}

const PLAN: fn() -> WorkerStep = || WorkerStep::Plan {
    task: "add a --version flag".into(),
    replace: false,
};

fn plan_of(task: &str, replace: bool) -> WorkerStep {
    WorkerStep::Plan {
        task: task.into(),
        replace,
    }
}
const IMPLEMENT: WorkerStep = WorkerStep::Implement { restart: false };

fn nudge(reason: Option<&str>) -> WorkerStep {
    WorkerStep::Nudge {
        reasons: reason.map(str::to_string).into_iter().collect(),
        events: Vec::new(),
    }
}

const ALL_PHASES: [Phase; 7] = [
    Phase::Idle,
    Phase::Planning,
    Phase::Planned,
    Phase::Implementing,
    Phase::Done,
    Phase::Blocked,
    Phase::OutOfNudges,
];

fn drive_machine(
    mut machine: StepMachine,
    state: &mut WorkerState,
    seen: Vec<Seen>,
) -> Vec<Action> {
    let mut actions = vec![machine.advance(state, Seen::Start, NOW)];
    for seen in seen {
        assert!(
            !matches!(actions.last(), Some(Action::Finish(_))),
            "fed {seen:?} after the step finished: {actions:?}"
        );
        actions.push(machine.advance(state, seen, NOW));
    }
    actions
}

fn ok_made(result: &str, made: &[&str]) -> Seen {
    turn(outcome(TurnStatus::Success, result), made)
}

fn with_task(phase: Phase, task: Option<&str>) -> WorkerState {
    WorkerState {
        phase,
        task: Task {
            text: task.map(str::to_string),
            ..Task::default()
        },
        ..WorkerState::default()
    }
}

mod budgets;
mod compaction;
mod gates;
mod implement;
mod judge;
mod landing;
mod looping;
mod nudge;
mod plan;
mod resume;

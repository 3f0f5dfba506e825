//! The rules `leash loop` strings steps with: where a (re)started loop begins, and
//! what follows a judgement.

use super::*;

/// What `leash loop` does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopNext {
    Plan(String),
    Implement,
    Nudge,
    /// Stop with this exit code; the message says why when no step just said it.
    Finish(u8, Option<String>),
}

impl LoopNext {
    /// The request for the next step (a plan replacing the task under way when
    /// `fresh`), or the exit code and message the loop ends with.
    pub fn into_step(self, fresh: bool) -> Result<WorkerStep, (u8, Option<String>)> {
        match self {
            LoopNext::Plan(task) => Ok(WorkerStep::Plan {
                task,
                replace: fresh,
            }),
            LoopNext::Implement => Ok(WorkerStep::Implement { restart: false }),
            LoopNext::Nudge => Ok(WorkerStep::Nudge {
                reasons: Vec::new(),
                events: Vec::new(),
            }),
            LoopNext::Finish(code, message) => Err((code, message)),
        }
    }

    /// For `loop --step`: what is about to happen.
    pub fn describe(&self, config: &WorkerConfig) -> String {
        match self {
            LoopNext::Plan(_) => format!("plan the task on {}", config.turns.plan_model),
            LoopNext::Implement => format!("implement on {}", config.turns.implement_model),
            LoopNext::Nudge => "nudge the worker".to_string(),
            LoopNext::Finish(..) => "finish".to_string(),
        }
    }
}

/// Where a (re)started loop begins, from the persisted phase; `None` when there is no
/// task to work on. A worker out of nudges with rescopes left (`config`) is nudged:
/// the nudge plans the task again.
pub fn loop_start(
    state: &WorkerState,
    task: Option<String>,
    fresh: bool,
    config: &WorkerConfig,
) -> Option<LoopNext> {
    let same_task = task.is_none() || task == state.task.text;
    if let Some(task) = task.clone()
        && (!same_task || fresh)
    {
        return Some(LoopNext::Plan(task));
    }
    let task = task.or_else(|| state.task.text.clone());
    Some(match (state.phase, task) {
        (_, Some(task)) if fresh => LoopNext::Plan(task),
        (Phase::Idle | Phase::Planning, Some(task)) => LoopNext::Plan(task),
        (Phase::Idle | Phase::Planning, None) => return None,
        // A nudge its daemon died during goes on as a nudge.
        (Phase::Implementing, _) if matches!(state.in_flight, Some(InFlight::Nudge { .. })) => {
            LoopNext::Nudge
        }
        (Phase::Planned | Phase::Implementing, _) => LoopNext::Implement,
        (Phase::Done, _) => LoopNext::Finish(
            0,
            Some("the task is already done (`--fresh` starts it over)".into()),
        ),
        (Phase::Blocked, _) => LoopNext::Finish(
            Verdict::Blocked.exit_code(),
            Some(
                "the worker is blocked; answer it with `leash nudge --reason ...`, or `--fresh`"
                    .into(),
            ),
        ),
        (Phase::OutOfNudges, _) if state.task.rescopes < config.gates.rescopes => LoopNext::Nudge,
        (Phase::OutOfNudges, _) => LoopNext::Finish(
            Verdict::OutOfNudges.exit_code(),
            Some(
                "the worker ran out of nudges; `leash implement --restart` or `--fresh` starts over"
                    .into(),
            ),
        ),
    })
}

/// The loop's step after a judgement.
pub fn loop_next(judgement: &Judgement) -> LoopNext {
    match judgement.verdict {
        Verdict::Planned => LoopNext::Implement,
        Verdict::Uncommitted
        | Verdict::NoChanges
        | Verdict::ChecksFailed
        | Verdict::ChangesRequested => LoopNext::Nudge,
        Verdict::Rescoped => LoopNext::Implement,
        Verdict::NothingToDo if judgement.phase != Phase::Done => LoopNext::Implement,
        // A step that failed says why in its own code (a state it could not save: 1).
        Verdict::TurnFailed => LoopNext::Finish(judgement.exit_code, None),
        verdict => LoopNext::Finish(verdict.exit_code(), None),
    }
}

/// Whether the task ends with this judgement, for now: a loop would stop on it, and it
/// is about the work (done, blocked, out of nudges, over budget, failed, interrupted).
pub fn ends_the_task(judgement: &Judgement) -> bool {
    judgement.verdict.concerns_the_work() && matches!(loop_next(judgement), LoopNext::Finish(..))
}

//! Judgements: of the work as git shows it, of a turn that failed, and of a step that
//! had nothing to do.

use super::*;

/// The plan is in; unless the agent says it is blocked.
pub(super) fn planned(state: &mut WorkerState, plan: String) -> Judgement {
    if let Some(reason) = blocked_reason(&plan) {
        state.phase = Phase::Blocked;
        state.task.blocked_in = Some(Phase::Planning);
        return Judgement {
            blocked_reason: Some(reason.clone()),
            ..judgement(
                state,
                Step::Plan,
                Verdict::Blocked,
                format!("the agent is blocked: {reason}"),
            )
        };
    }
    state.task.plan = Some(plan);
    state.phase = Phase::Planned;
    judgement(state, Step::Plan, Verdict::Planned, "planned".to_string())
}

/// The judgement for a turn that did not complete, if it did not.
pub(super) fn failed_turn(state: &WorkerState, step: Step, outcome: &Outcome) -> Option<Judgement> {
    let verdict = match outcome.status {
        TurnStatus::Success => return None,
        TurnStatus::ProviderError => Verdict::ProviderError,
        TurnStatus::Interrupted => Verdict::Interrupted,
        TurnStatus::Error | TurnStatus::Crashed | TurnStatus::Hung => Verdict::TurnFailed,
    };
    let message = outcome
        .message
        .clone()
        .unwrap_or_else(|| format!("the turn ended {:?}", outcome.status));
    Some(Judgement {
        exit_code: outcome.exit_code,
        ..judgement(state, step, verdict, message)
    })
}

/// A judgement of the worker as it stands.
pub fn judgement(state: &WorkerState, step: Step, verdict: Verdict, message: String) -> Judgement {
    Judgement {
        step,
        verdict,
        exit_code: verdict.exit_code(),
        phase: state.phase,
        message,
        nudges_used: state.run.nudges,
        max_nudges: state.run.max_nudges,
        commits: Vec::new(),
        uncommitted: Vec::new(),
        plan: state.task.plan.clone(),
        blocked_reason: None,
        task_id: state.task.id.clone(),
        task_cost_usd: state.task.cost.total_usd(),
        checks: state.run.gates.checks.clone(),
        pick: None,
    }
}

/// A nudge that was still waiting when the work was done: it is not sent.
pub fn dropped_nudge(state: &WorkerState) -> Judgement {
    judgement(
        state,
        Step::Nudge,
        Verdict::NothingToDo,
        "dropped: the work is already committed".to_string(),
    )
}

pub(super) fn last_blocked_reason(state: &WorkerState) -> String {
    state
        .last
        .as_ref()
        .and_then(|j| j.blocked_reason.clone())
        .unwrap_or_else(|| "no reason given".to_string())
}

/// Judges the implement phase from git and the agent's last words, and moves the
/// phase accordingly. `result` is `None` when no turn ran (a re-judge).
pub(super) fn judge(
    state: &mut WorkerState,
    step: Step,
    view: &GitView,
    result: Option<&str>,
) -> Judgement {
    let own: Vec<CommitInfo> = view
        .commits
        .iter()
        .filter(|c| state.run.own_commits.contains(&c.id))
        .cloned()
        .collect();
    let changes = &view.changes;
    let mut blocked = result.and_then(blocked_reason);
    if result.is_none() && state.phase == Phase::Blocked {
        blocked = Some(last_blocked_reason(state));
    }
    let mut verdict = judge_work(&own, changes, blocked.as_deref());
    if own.is_empty() && blocked.is_none() && state.run.nudges >= state.run.max_nudges {
        verdict = Verdict::OutOfNudges;
    }
    if verdict == Verdict::Blocked && result.is_some() {
        state.task.blocked_in = Some(Phase::Implementing);
    }
    state.phase = match verdict {
        Verdict::Committed => Phase::Done,
        Verdict::Blocked => Phase::Blocked,
        Verdict::OutOfNudges => Phase::OutOfNudges,
        _ => Phase::Implementing,
    };
    let files = || {
        let names: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        crate::human::first_of(&names, 5)
    };
    let message = match verdict {
        Verdict::Committed => format!(
            "committed: {} new commit(s), latest {}",
            own.len(),
            own.first().map(CommitInfo::short).unwrap_or_default()
        ),
        Verdict::Uncommitted => format!(
            "not committed yet: {} changed file(s): {}",
            changes.len(),
            files()
        ),
        Verdict::NoChanges => "no changes at all since the implement phase began".to_string(),
        Verdict::Blocked => format!(
            "the agent is blocked: {}",
            blocked.clone().unwrap_or_default()
        ),
        _ => format!(
            "still not committed after {} nudge(s){}",
            state.run.nudges,
            if changes.is_empty() {
                String::new()
            } else {
                format!("; changed: {}", files())
            }
        ),
    };
    Judgement {
        commits: own,
        uncommitted: changes.clone(),
        blocked_reason: blocked,
        ..judgement(state, step, verdict, message)
    }
}

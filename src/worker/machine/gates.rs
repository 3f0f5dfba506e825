//! The gates committed work goes through before it is done (its checks at HEAD, then a
//! review by the plan model), the rescope when the nudges ran out, and the budget.

use super::*;

impl StepMachine {
    pub(super) fn gates_on(&self) -> bool {
        !self.config.gates.checks.is_empty()
            || self.config.gates.review
            || self.config.gates.branch.is_some()
    }

    /// Committed work is done only once it passes its gates.
    pub(super) fn gate(&mut self, state: &mut WorkerState, action: Action, now_ms: u64) -> Action {
        match action {
            Action::Finish(judged)
                if judged.verdict == Verdict::Committed && self.gates_on() && !self.gated =>
            {
                self.gate_committed(state, judged, Then::Finish, now_ms)
            }
            other => other,
        }
    }

    /// The gates of committed work, in order: the checks at HEAD, then a review of the
    /// change by the plan model. Each runs once per commit; a failure goes back to the
    /// agent in the next nudge.
    pub(super) fn gate_committed(
        &mut self,
        state: &mut WorkerState,
        judged: Judgement,
        then: Then,
        now_ms: u64,
    ) -> Action {
        let head = self.head.clone();
        let commit = head
            .as_deref()
            .map_or("?", crate::git::short_id)
            .to_string();
        if let Some(expected) = self.config.gates.branch.clone()
            && self.on_branch.as_deref() != Some(expected.as_str())
        {
            let actual = match &self.on_branch {
                Some(branch) => format!("branch {branch}"),
                None => "a detached HEAD".to_string(),
            };
            let what = format!("the work is on {actual}, not on {expected}");
            let feedback = crate::worker::prompts::off_branch(&actual, &expected);
            return self.gate_failed(
                state,
                judged,
                then,
                (Verdict::ChecksFailed, what, feedback),
                now_ms,
            );
        }
        let mut passed = Vec::new();
        if !self.config.gates.checks.is_empty() {
            let ran_here = state
                .run
                .gates
                .checked
                .as_ref()
                .is_some_and(|c| c.head == head && c.commands == self.config.gates.checks);
            if !ran_here {
                state.phase = Phase::Implementing;
                self.stage = Stage::Checking {
                    judged: Box::new(judged),
                    then,
                };
                return Action::RunChecks {
                    commands: self.config.gates.checks.clone(),
                    timeout_ms: self.config.gates.check_timeout_ms,
                };
            }
            if let Some(failed) = state.run.gates.checks.iter().find(|c| !c.passed()).cloned() {
                let what = format!("the check {}", failed.describe());
                let feedback = failed.feedback(&commit);
                return self.gate_failed(
                    state,
                    judged,
                    then,
                    (Verdict::ChecksFailed, what, feedback),
                    now_ms,
                );
            }
            passed.push(format!("{} check(s) passed", state.run.gates.checks.len()));
        }
        if self.config.gates.review {
            let here = state.run.gates.review.clone().filter(|r| r.head == head);
            match here {
                Some(review) if review.approved => passed.push("approved by review".to_string()),
                Some(review) => {
                    let what = format!("review {} asked for changes", review.round);
                    let feedback = review_feedback(&review, self.config.gates.max_reviews);
                    return self.gate_failed(
                        state,
                        judged,
                        then,
                        (Verdict::ChangesRequested, what, feedback),
                        now_ms,
                    );
                }
                None if state.run.gates.reviews >= self.config.gates.max_reviews => {
                    passed.push(format!(
                        "accepted without approval after {} review round(s) (max_reviews)",
                        state.run.gates.reviews
                    ))
                }
                None => {
                    state.phase = Phase::Implementing;
                    self.stage = Stage::ReviewDiff {
                        judged: Box::new(judged),
                        then,
                    };
                    return Action::Diff;
                }
            }
        }
        self.gated = true;
        state.phase = Phase::Done;
        state.run.gates.feedback = None;
        let message = match passed.is_empty() {
            true => judged.message.clone(),
            false => format!("{}; {}", judged.message, passed.join(", ")),
        };
        Action::Finish(Judgement {
            phase: Phase::Done,
            message,
            checks: state.run.gates.checks.clone(),
            ..judged
        })
    }

    /// Committed work failed a gate: the next nudge tells the agent `feedback`; a
    /// nudge not sent yet goes out now; with no nudges left, the phase is over.
    pub(super) fn gate_failed(
        &mut self,
        state: &mut WorkerState,
        judged: Judgement,
        then: Then,
        (verdict, what, feedback): (Verdict, String, String),
        now_ms: u64,
    ) -> Action {
        state.run.gates.feedback = Some(feedback);
        let out_of_nudges = state.run.nudges >= state.run.max_nudges;
        if then == Then::Nudge && !out_of_nudges {
            state.phase = Phase::Implementing;
            return self.nudge_backoff(state, now_ms);
        }
        self.gated = true;
        let (verdict, phase, left) = match out_of_nudges {
            true => (
                Verdict::OutOfNudges,
                Phase::OutOfNudges,
                format!("; no nudges left ({} used)", state.run.nudges),
            ),
            false => (verdict, Phase::Implementing, String::new()),
        };
        state.phase = phase;
        // A nudge that went out reports that (exit 0); a step that judged reports this.
        let exit_code = match judged.step {
            Step::Nudge => judged.exit_code,
            _ => verdict.exit_code(),
        };
        Action::Finish(Judgement {
            verdict,
            phase,
            exit_code,
            message: format!("{}, but {what}{left}", judged.message),
            checks: state.run.gates.checks.clone(),
            ..judged
        })
    }

    /// The nudges ran out: with rescopes left, the plan model plans the task again
    /// from what was tried, and implementing starts over with the new plan.
    pub(super) fn rescope(&mut self, state: &mut WorkerState, action: Action) -> Action {
        match action {
            Action::Finish(judged)
                if judged.verdict == Verdict::OutOfNudges
                    && state.task.rescopes < self.config.gates.rescopes
                    && state.task.text.is_some() =>
            {
                let task = state.task.text.clone().unwrap_or_default();
                let mut tried = state.task.history.clone();
                tried.push(format!("{}: {}", judged.step, judged.message));
                let prompt = rescope_prompt(&task, state.task.plan.as_deref(), &tried);
                self.stage = Stage::RescopeTurn {
                    after: Box::new(judged),
                };
                self.send(TurnKind::Plan, prompt)
            }
            other => other,
        }
    }

    /// What a turn that just ended cost, if `seen` is one.
    pub(super) fn cost_of(&self, seen: &Seen) -> Option<f64> {
        match seen {
            Seen::Turn { outcome, .. } | Seen::Compacted(outcome) => outcome.cost_usd,
            _ => None,
        }
    }

    /// The kind of turn the step waits for (a compaction counts as the turn after it).
    pub(super) fn turn_kind(&self) -> TurnKind {
        match &self.stage {
            Stage::PlanTurn | Stage::ReplanTurn | Stage::RescopeTurn { .. } => TurnKind::Plan,
            Stage::ReviewTurn { .. } => TurnKind::Review,
            Stage::JudgeTurn { .. } => TurnKind::Judge,
            Stage::NudgeTurn { .. } => TurnKind::Nudge,
            Stage::Land(_) => TurnKind::Land,
            Stage::Compacting { kind, .. } => *kind,
            _ => TurnKind::Implement,
        }
    }

    /// Once the task has spent its budget, no further turn is sent, and work that is
    /// not done says so instead of asking for a nudge that would not be sent either.
    pub(super) fn within_budget(&self, state: &WorkerState, action: Action) -> Action {
        if !state.task.cost.exhausted() {
            return action;
        }
        let spent = format!(
            "budget exhausted: the task spent {} of its {} budget",
            usd(state.task.cost.total_usd()),
            usd(state.task.cost.budget_usd.unwrap_or_default())
        );
        match action {
            Action::Send { .. } | Action::Compact { .. } | Action::Pause { .. } => {
                Action::Finish(judgement(
                    state,
                    self.step(),
                    Verdict::BudgetExhausted,
                    format!("{spent}; no further turn is sent (a larger --budget goes on)"),
                ))
            }
            Action::Finish(judged)
                if matches!(judged.verdict, Verdict::Uncommitted | Verdict::NoChanges) =>
            {
                Action::Finish(Judgement {
                    verdict: Verdict::BudgetExhausted,
                    exit_code: Verdict::BudgetExhausted.exit_code(),
                    message: format!("{}; {spent}", judged.message),
                    ..judged
                })
            }
            other => other,
        }
    }
}

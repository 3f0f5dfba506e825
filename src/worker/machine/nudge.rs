//! A nudge: whether the phase takes one, the pause before it, what it says, and a
//! person's answer to a blocker.

use super::*;

impl StepMachine {
    /// Whether the phase takes a nudge at all. A person's answer to a blocker goes
    /// back to the phase that was blocked, and is no nudge of the worker's budget.
    pub(super) fn nudge_wanted(&mut self, state: &mut WorkerState, has_reason: bool) -> Action {
        if state.phase == Phase::Blocked && has_reason {
            self.answering = true;
            if state.task.blocked_in == Some(Phase::Planning) {
                return self.replan(state);
            }
        }
        let refused = match state.phase {
            Phase::Implementing => None,
            // A person answering the blocker: the nudge carries the answer.
            Phase::Blocked if has_reason => None,
            Phase::Blocked => {
                let reason = last_blocked_reason(state);
                Some(Judgement {
                    blocked_reason: Some(reason.clone()),
                    ..judgement(
                        state,
                        Step::Nudge,
                        Verdict::Blocked,
                        format!(
                            "the agent is blocked ({reason}); answer it with `leash nudge --reason ...`"
                        ),
                    )
                })
            }
            Phase::OutOfNudges => Some(judgement(
                state,
                Step::Nudge,
                Verdict::OutOfNudges,
                format!(
                    "no nudges left ({} used); `leash implement --restart` starts the phase over",
                    state.run.max_nudges
                ),
            )),
            phase => Some(judgement(
                state,
                Step::Nudge,
                Verdict::NothingToDo,
                format!("nothing to nudge: the worker is {phase}"),
            )),
        };
        match refused {
            Some(judgement) => Action::Finish(judgement),
            None => {
                self.stage = Stage::NudgeCheck;
                Action::Look
            }
        }
    }

    pub(super) fn replan(&mut self, state: &mut WorkerState) -> Action {
        let WorkerStep::Nudge { reasons, .. } = &self.step else {
            return self.lost(state, Stage::Begin, &Seen::Start);
        };
        let answer = reasons.join("\n");
        let task = state.task.text.clone().unwrap_or_default();
        state.phase = Phase::Planning;
        state.task.blocked_in = None;
        self.stage = Stage::ReplanTurn;
        self.send(TurnKind::Plan, replan_prompt(&task, &answer))
    }

    /// Before a nudge: no nudge for committed work that passes its gates, nor with no
    /// nudges left; then the backoff since the last nudge.
    pub(super) fn nudge_check(
        &mut self,
        state: &mut WorkerState,
        view: &GitView,
        now_ms: u64,
    ) -> Action {
        self.observe(state, view);
        let blocked = state.phase == Phase::Blocked;
        let before = judge(state, Step::Nudge, view, None);
        if before.verdict == Verdict::Committed {
            let judged = Judgement {
                message: format!("no nudge needed: {}", before.message),
                ..before
            };
            if !self.gates_on() {
                return Action::Finish(judged);
            }
            return self.gate_committed(state, judged, Then::Nudge, now_ms);
        }
        if before.verdict == Verdict::OutOfNudges {
            return Action::Finish(before);
        }
        if blocked {
            state.phase = Phase::Implementing;
        }
        self.nudge_backoff(state, now_ms)
    }

    /// The pause a nudge waits since the last one (none for a person's answer).
    pub(super) fn nudge_backoff(&mut self, state: &mut WorkerState, now_ms: u64) -> Action {
        let used = state.run.nudges;
        let since_last = state
            .run
            .last_nudge_ms
            .map_or(u64::MAX, |at| now_ms.saturating_sub(at));
        let wait = if self.answering {
            0
        } else {
            self.config.nudges.delay_ms(used).saturating_sub(since_last)
        };
        if wait == 0 {
            self.stage = Stage::NudgeLook;
            return Action::Look;
        }
        self.stage = Stage::NudgeWait;
        Action::Pause {
            ms: wait,
            why: format!(
                "waiting {} before nudge {} (backoff)",
                crate::human::duration(std::time::Duration::from_millis(wait)),
                used + 1
            ),
        }
    }

    /// The nudge itself, from a fresh look: the wait may have changed things.
    pub(super) fn nudge_send(
        &mut self,
        state: &mut WorkerState,
        view: &GitView,
        reasons: &[String],
        events: &[String],
    ) -> Action {
        self.observe(state, view);
        let foreign: Vec<CommitInfo> = std::mem::take(&mut state.run.foreign_commits);
        let number = (!self.answering).then_some(state.run.nudges + 1);
        let reason = (!reasons.is_empty()).then(|| reasons.join("\n"));
        let feedback = state.run.gates.feedback.take();
        let prompt = nudge_prompt(&NudgeContext {
            feedback: feedback.as_deref(),
            verdict: if view.changes.is_empty() {
                Verdict::NoChanges
            } else {
                Verdict::Uncommitted
            },
            changes: &view.changes,
            reason: reason.as_deref(),
            events,
            foreign_commits: &foreign,
            count: number.map(|n| (n, state.run.max_nudges)),
        });
        self.stage = Stage::NudgeTurn { number };
        self.send(TurnKind::Nudge, prompt)
    }

    /// A move of HEAD since the last look that the worker did not make is someone
    /// else's commit: remembered, and told to the agent in the next nudge.
    pub(super) fn observe(&mut self, state: &mut WorkerState, view: &GitView) {
        if state.phase != Phase::Implementing || view.head == state.run.last_seen_head {
            return;
        }
        if view.head.is_some() {
            let foreign: Vec<CommitInfo> = view
                .new_commits
                .iter()
                .filter(|c| !state.run.own_commits.contains(&c.id))
                .cloned()
                .collect();
            if !foreign.is_empty() {
                self.note(format!(
                    "{} commit(s) by someone else since the last turn",
                    foreign.len()
                ));
                state.run.foreign_commits.extend(foreign);
            }
            state.run.last_seen_head = view.head.clone();
        }
    }
}

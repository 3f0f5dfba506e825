//! The worker's phase machine, pure: no process, no git, no clock of its own. A step
//! ([`StepMachine`]) is fed what the daemon saw ([`Seen`]: the step began, git as it is
//! now, how a turn ended, a pause) and answers what to do next ([`Action`]: look at
//! git, pause, send this turn, or finish with this judgement). The daemon carries out
//! the actions; the rules live here, tested here.
//!
//! [`loop_start`] and [`loop_next`] are the rules `leash loop` strings steps with.

use crate::error::Error;
use crate::git::{CommitInfo, Diff, FileChange};
use crate::human::usd;
use crate::turn::{Outcome, TurnKind, TurnSettings, TurnStatus};

use super::checks::CheckResult;
use super::prompts::{
    NudgeContext, ReviewContext, compact_instructions, implement_prompt, nudge_prompt, plan_prompt,
    replan_prompt, rescope_prompt, review_feedback, review_prompt,
};
use super::{
    Checked, Judgement, Phase, Review, Step, Verdict, WorkerConfig, WorkerState, WorkerStep,
    blocked_reason, judge_work, review_approves,
};

/// The repository as git shows it now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GitView {
    pub head: Option<String>,
    /// Commits since the implement phase began (`head_at_start`), newest first.
    pub commits: Vec<CommitInfo>,
    /// Commits since leash last looked (`last_seen_head`), newest first.
    pub new_commits: Vec<CommitInfo>,
    /// Changed, staged and untracked files.
    pub changes: Vec<FileChange>,
}

/// What the daemon saw, fed to the machine.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The step begins.
    Start,
    /// The answer to [`Action::Look`].
    Git(GitView),
    /// [`Action::Look`] failed: no repository, or git could not read it.
    GitFailed(Error),
    /// The answer to [`Action::Send`]: how the turn ended, the commits that appeared
    /// while it ran, the worker's (ids) and anyone else's, and HEAD after it.
    Turn {
        outcome: Outcome,
        made: Vec<String>,
        foreign: Vec<CommitInfo>,
        head: Option<String>,
    },
    /// The answer to [`Action::Pause`]: the pause ran its course.
    Waited,
    /// The pause was interrupted.
    Interrupted,
    /// The answer to [`Action::Compact`]: how the compaction turn ended.
    Compacted(Outcome),
    /// The answer to [`Action::RunChecks`]: each check run, in order, up to the first
    /// that failed.
    Checked(Vec<CheckResult>),
    /// The answer to [`Action::Diff`].
    Diff(Diff),
}

/// What happened that people and scripts should hear of, taken by the daemon after
/// each action: notices for the log, and the events of checks, reviews and rescopes.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Info(String),
    ChecksRan(Vec<CheckResult>),
    Reviewed(Review),
    Rescoped { number: u32, of: u32, plan: String },
}

/// What the machine wants done next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Look at git and answer with [`Seen::Git`].
    Look,
    /// Wait this long (serving clients), then answer [`Seen::Waited`].
    Pause { ms: u64, why: String },
    /// Run this turn in the worker's conversation, with these settings.
    Send {
        kind: TurnKind,
        prompt: String,
        settings: TurnSettings,
    },
    /// Compact the conversation first, keeping what `instructions` name; answer
    /// [`Seen::Compacted`].
    Compact { instructions: String },
    /// Run these checks at the repository root, one after the other until one fails,
    /// each within `timeout_ms`; answer [`Seen::Checked`] ([`Seen::Interrupted`] if
    /// the step is interrupted meanwhile).
    RunChecks {
        commands: Vec<String>,
        timeout_ms: u64,
    },
    /// The change from the phase's start to HEAD, for a review; answer [`Seen::Diff`].
    Diff,
    /// The step is over.
    Finish(Judgement),
}

/// Where a step is between actions.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Begin,
    /// Implement: looked at git to decide between judging again and sending.
    ImplementLook,
    ImplementTurn,
    ImplementJudge {
        result: String,
    },
    /// Nudge: the first look (is a nudge needed?), the pause, the look before sending.
    NudgeCheck,
    NudgeWait,
    NudgeLook,
    /// `number`: which nudge; `None` for a person's answer to a blocker.
    NudgeTurn {
        number: Option<u32>,
    },
    NudgeJudge {
        number: Option<u32>,
        result: String,
    },
    PlanTurn,
    /// A person answered a blocker raised while planning: planning again.
    ReplanTurn,
    /// Compacting before a turn; `then` is the turn's stage and the turn itself.
    Compacting {
        then: Box<Stage>,
        kind: TurnKind,
        prompt: String,
    },
    /// Committed work goes through its gates (checks, review) before it is done;
    /// `judged` is the judgement it gets if it passes.
    Checking {
        judged: Box<Judgement>,
        then: Then,
    },
    ReviewDiff {
        judged: Box<Judgement>,
        then: Then,
    },
    ReviewTurn {
        judged: Box<Judgement>,
        then: Then,
    },
    /// The nudges ran out: planning the task again; `after` is the judgement that said so.
    RescopeTurn {
        after: Box<Judgement>,
    },
    Over,
}

/// What follows a gate that committed work did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The step ends with the failure (the next nudge tells the agent).
    Finish,
    /// The step is a nudge that had not been sent yet: it goes out, telling it.
    Nudge,
}

/// One step of the worker, from its request to its judgement.
pub struct StepMachine {
    step: WorkerStep,
    config: WorkerConfig,
    /// The task the command works on (`None`: whatever the worker's task is).
    task_id: Option<String>,
    /// This nudge is a person's answer to a blocker: not one of the worker's nudges.
    answering: bool,
    /// How full the conversation is, in percent of the window, when known.
    context_percent: Option<u32>,
    stage: Stage,
    /// HEAD as the step saw it last.
    head: Option<String>,
    /// The gates already decided this step's judgement.
    gated: bool,
    /// Taken by the daemon after each action.
    notes: Vec<Note>,
}

impl StepMachine {
    pub fn new(step: WorkerStep, config: WorkerConfig, task_id: Option<String>) -> StepMachine {
        StepMachine {
            step,
            config,
            task_id,
            answering: false,
            context_percent: None,
            stage: Stage::Begin,
            head: None,
            gated: false,
            notes: Vec::new(),
        }
    }

    /// How full the conversation is as the step begins (percent of the window).
    #[must_use]
    pub fn with_context(mut self, percent: Option<u32>) -> StepMachine {
        self.context_percent = percent;
        self
    }

    pub fn step(&self) -> Step {
        self.step.step()
    }

    /// A phase's first turn (plan, implement) goes after a compaction when the context
    /// is at `compact_at`, so the worker never runs into the window mid-work.
    fn phase_turn(
        &mut self,
        state: &WorkerState,
        then: Stage,
        kind: TurnKind,
        prompt: String,
    ) -> Action {
        let full = self.config.compact_at > 0
            && self
                .context_percent
                .is_some_and(|p| p >= self.config.compact_at);
        if !full {
            self.stage = then;
            return self.send(kind, prompt);
        }
        // Once per step: after it, the context is what it is.
        self.context_percent = None;
        let instructions = compact_instructions(
            state.task.text.as_deref(),
            state.task.plan.as_deref(),
            state.last.as_ref().map(|j| j.message.as_str()),
            (state.run.nudges, state.run.max_nudges),
        );
        self.stage = Stage::Compacting {
            then: Box::new(then),
            kind,
            prompt,
        };
        Action::Compact { instructions }
    }

    /// What happened that people should read in the log.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// Takes the step on from what was seen; `now_ms` is Unix milliseconds.
    pub fn advance(&mut self, state: &mut WorkerState, seen: Seen, now_ms: u64) -> Action {
        if let Seen::Start = seen
            && let Some(refused) = self.refusal(state)
        {
            self.stage = Stage::Over;
            return Action::Finish(refused);
        }
        if let Some(cost) = self.cost_of(&seen) {
            let kind = self.turn_kind();
            state.task.cost.add(kind, cost);
        }
        match &seen {
            Seen::Git(view) => self.head.clone_from(&view.head),
            Seen::Turn {
                head: Some(head), ..
            } => self.head = Some(head.clone()),
            _ => {}
        }
        let action = match seen {
            Seen::GitFailed(e) => self.errored(state, e),
            Seen::Turn {
                outcome,
                made,
                foreign,
                head,
            } => self.turn_ended(state, &outcome, (made, foreign), head, now_ms),
            seen => self.next(state, seen, now_ms),
        };
        let action = self.gate(state, action, now_ms);
        let action = self.rescope(state, action);
        // The budget this step runs under (a new task begins without a cost).
        state.task.cost.budget_usd = self.config.task_budget_usd;
        let action = self.within_budget(state, action);
        if let Action::Finish(judged) = &action {
            self.stage = Stage::Over;
            if judged.verdict.concerns_the_work() {
                state.remember(format!("{}: {}", judged.step, judged.message));
            }
        }
        action
    }

    fn next(&mut self, state: &mut WorkerState, seen: Seen, now_ms: u64) -> Action {
        let step = self.step.clone();
        match (std::mem::replace(&mut self.stage, Stage::Over), step, seen) {
            (Stage::Begin, WorkerStep::Plan { task, .. }, Seen::Start) => {
                state.begin_plan(task.clone());
                self.phase_turn(state, Stage::PlanTurn, TurnKind::Plan, plan_prompt(&task))
            }
            (Stage::Compacting { then, kind, prompt }, _, Seen::Compacted(outcome)) => {
                if outcome.status != TurnStatus::Success {
                    self.note("the compaction failed; the turn goes on without it".to_string());
                }
                self.stage = *then;
                self.send(kind, prompt)
            }
            (Stage::Begin, WorkerStep::Implement { .. }, Seen::Start) => {
                self.stage = Stage::ImplementLook;
                Action::Look
            }
            (Stage::ImplementLook, WorkerStep::Implement { restart }, Seen::Git(view)) => {
                self.implement(state, restart, &view)
            }
            (Stage::ImplementJudge { result }, _, Seen::Git(view)) => {
                Action::Finish(judge(state, Step::Implement, &view, Some(&result)))
            }
            (Stage::Begin, WorkerStep::Nudge { reasons, .. }, Seen::Start) => {
                self.nudge_wanted(state, !reasons.is_empty())
            }
            (Stage::NudgeCheck, _, Seen::Git(view)) => self.nudge_check(state, &view, now_ms),
            (Stage::NudgeWait, _, Seen::Waited) => {
                self.stage = Stage::NudgeLook;
                Action::Look
            }
            (Stage::NudgeWait, _, Seen::Interrupted) => Action::Finish(judgement(
                state,
                Step::Nudge,
                Verdict::Interrupted,
                "interrupted while waiting to nudge".to_string(),
            )),
            (Stage::NudgeLook, WorkerStep::Nudge { reasons, events }, Seen::Git(view)) => {
                self.nudge_send(state, &view, &reasons, &events)
            }
            (Stage::NudgeJudge { number, result }, _, Seen::Git(view)) => {
                let judged = judge(state, Step::Nudge, &view, Some(&result));
                let sent = match number {
                    Some(number) => format!("nudge {number} of {} sent", state.run.max_nudges),
                    None => "the answer was sent".to_string(),
                };
                // The nudge went out: that is what this command reports with its exit code.
                Action::Finish(Judgement {
                    exit_code: 0,
                    message: format!("{sent}; {}", judged.message),
                    ..judged
                })
            }
            (Stage::Checking { judged, then }, _, Seen::Checked(checks)) => {
                state.run.gates.checked = Some(Checked {
                    head: self.head.clone(),
                    commands: self.config.checks.clone(),
                });
                state.run.gates.checks = checks.clone();
                self.notes.push(Note::ChecksRan(checks));
                self.gate_committed(state, *judged, then, now_ms)
            }
            (Stage::Checking { .. }, _, Seen::Interrupted) => Action::Finish(judgement(
                state,
                self.step(),
                Verdict::Interrupted,
                "interrupted while the checks ran".to_string(),
            )),
            (Stage::ReviewDiff { judged, then }, _, Seen::Diff(diff)) => {
                let prompt = review_prompt(&ReviewContext {
                    task: state.task.text.as_deref(),
                    plan: state.task.plan.as_deref(),
                    diff: &diff,
                    checks: &state.run.gates.checks,
                    round: state.run.gates.reviews + 1,
                    max_rounds: self.config.max_reviews,
                });
                self.stage = Stage::ReviewTurn { judged, then };
                self.send(TurnKind::Review, prompt)
            }
            (stage, _, seen) => self.lost(state, stage, &seen),
        }
    }

    /// A turn, on the model and in the mode its kind runs in.
    fn send(&self, kind: TurnKind, prompt: String) -> Action {
        Action::Send {
            kind,
            prompt,
            settings: self.config.turn_settings(kind),
        }
    }

    fn note(&mut self, text: String) {
        self.notes.push(Note::Info(text));
    }

    fn gates_on(&self) -> bool {
        !self.config.checks.is_empty() || self.config.review
    }

    /// Committed work is done only once it passes its gates.
    fn gate(&mut self, state: &mut WorkerState, action: Action, now_ms: u64) -> Action {
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
    fn gate_committed(
        &mut self,
        state: &mut WorkerState,
        judged: Judgement,
        then: Then,
        now_ms: u64,
    ) -> Action {
        let head = self.head.clone();
        let commit = head
            .as_deref()
            .map_or("?", |h| &h[..h.len().min(10)])
            .to_string();
        let mut passed = Vec::new();
        if !self.config.checks.is_empty() {
            let ran_here = state
                .run
                .gates
                .checked
                .as_ref()
                .is_some_and(|c| c.head == head && c.commands == self.config.checks);
            if !ran_here {
                state.phase = Phase::Implementing;
                self.stage = Stage::Checking {
                    judged: Box::new(judged),
                    then,
                };
                return Action::RunChecks {
                    commands: self.config.checks.clone(),
                    timeout_ms: self.config.check_timeout_ms,
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
        if self.config.review {
            let here = state.run.gates.review.clone().filter(|r| r.head == head);
            match here {
                Some(review) if review.approved => passed.push("approved by review".to_string()),
                Some(review) => {
                    let what = format!("review {} asked for changes", review.round);
                    let feedback = review_feedback(&review, self.config.max_reviews);
                    return self.gate_failed(
                        state,
                        judged,
                        then,
                        (Verdict::ChangesRequested, what, feedback),
                        now_ms,
                    );
                }
                None if state.run.gates.reviews >= self.config.max_reviews => passed.push(format!(
                    "accepted without approval after {} review round(s) (max_reviews)",
                    state.run.gates.reviews
                )),
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
    fn gate_failed(
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
    fn rescope(&mut self, state: &mut WorkerState, action: Action) -> Action {
        match action {
            Action::Finish(judged)
                if judged.verdict == Verdict::OutOfNudges
                    && state.task.rescopes < self.config.rescopes
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
    fn cost_of(&self, seen: &Seen) -> Option<f64> {
        match seen {
            Seen::Turn { outcome, .. } | Seen::Compacted(outcome) => outcome.cost_usd,
            _ => None,
        }
    }

    /// The kind of turn the step waits for (a compaction counts as the turn after it).
    fn turn_kind(&self) -> TurnKind {
        match &self.stage {
            Stage::PlanTurn | Stage::ReplanTurn | Stage::RescopeTurn { .. } => TurnKind::Plan,
            Stage::ReviewTurn { .. } => TurnKind::Review,
            Stage::NudgeTurn { .. } => TurnKind::Nudge,
            Stage::Compacting { kind, .. } => *kind,
            _ => TurnKind::Implement,
        }
    }

    /// Once the task has spent its budget, no further turn is sent, and work that is
    /// not done says so instead of asking for a nudge that would not be sent either.
    fn within_budget(&self, state: &WorkerState, action: Action) -> Action {
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

    /// An answer the step did not ask for: a bug in leash, reported, never a hang.
    fn lost(&self, state: &WorkerState, stage: Stage, seen: &Seen) -> Action {
        Action::Finish(Judgement {
            exit_code: crate::error::ErrorKind::Internal.exit_code(),
            ..judgement(
                state,
                self.step(),
                Verdict::TurnFailed,
                format!("leash lost its place in the step ({stage:?} saw {seen:?})"),
            )
        })
    }

    /// Starts the implement phase, or judges it again when it is under way (the
    /// prompt is never sent twice). An implementation turn that failed (provider,
    /// crash) is sent again in the same phase.
    fn implement(&mut self, state: &mut WorkerState, restart: bool, view: &GitView) -> Action {
        let under_way = matches!(
            state.phase,
            Phase::Implementing | Phase::Done | Phase::Blocked | Phase::OutOfNudges
        );
        if under_way && state.run.implement_sent && !restart {
            return Action::Finish(judge(state, Step::Implement, view, None));
        }
        let resend = state.phase == Phase::Implementing && !state.run.implement_sent;
        if restart || !resend {
            state.begin_implement(view.head.clone(), self.config.max_nudges);
        } else {
            self.observe(state, view);
        }
        let prompt = implement_prompt(state.task.text.as_deref(), state.task.plan.is_some());
        self.phase_turn(state, Stage::ImplementTurn, TurnKind::Implement, prompt)
    }

    /// One task at a time: a step for a task that was replaced, or a new task while
    /// another is under way (without `replace`), is refused.
    fn refusal(&self, state: &WorkerState) -> Option<Judgement> {
        let current = || {
            let task = state.task.text.as_deref().unwrap_or("no task");
            let first = task.lines().next().unwrap_or(task);
            let short: String = first.chars().take(80).collect();
            format!("{short:?} ({})", state.phase)
        };
        if let Some(mine) = &self.task_id
            && state.task.id.as_deref() != Some(mine.as_str())
        {
            return Some(judgement(
                state,
                self.step(),
                Verdict::Replaced,
                format!(
                    "this command's task was replaced: the worker now works on {}; what it does is not this command's outcome",
                    current()
                ),
            ));
        }
        if let WorkerStep::Plan {
            task,
            replace: false,
        } = &self.step
            && state.task_under_way()
            && state.task.text.as_deref() != Some(task.as_str())
        {
            return Some(judgement(
                state,
                Step::Plan,
                Verdict::Busy,
                format!(
                    "the worker is busy with another task: {}; wait for it, use another --worker, or --fresh to replace it",
                    current()
                ),
            ));
        }
        None
    }

    /// Whether the phase takes a nudge at all. A person's answer to a blocker goes
    /// back to the phase that was blocked, and is no nudge of the worker's budget.
    fn nudge_wanted(&mut self, state: &mut WorkerState, has_reason: bool) -> Action {
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

    fn replan(&mut self, state: &mut WorkerState) -> Action {
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
    fn nudge_check(&mut self, state: &mut WorkerState, view: &GitView, now_ms: u64) -> Action {
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
    fn nudge_backoff(&mut self, state: &mut WorkerState, now_ms: u64) -> Action {
        let used = state.run.nudges;
        let since_last = state
            .run
            .last_nudge_ms
            .map_or(u64::MAX, |at| now_ms.saturating_sub(at));
        let wait = if self.answering {
            0
        } else {
            self.config.nudge_delay_ms(used).saturating_sub(since_last)
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
    fn nudge_send(
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

    fn turn_ended(
        &mut self,
        state: &mut WorkerState,
        outcome: &Outcome,
        (made, foreign): (Vec<String>, Vec<CommitInfo>),
        head: Option<String>,
        now_ms: u64,
    ) -> Action {
        // The worker's own commits count for its work; anyone else's that landed
        // meanwhile are told to it in the next nudge.
        if state.phase == Phase::Implementing && !(made.is_empty() && foreign.is_empty()) {
            if !foreign.is_empty() {
                self.note(format!(
                    "{} commit(s) by someone else during the turn",
                    foreign.len()
                ));
            }
            state.run.own_commits.extend(made);
            state.run.foreign_commits.extend(foreign);
            state.run.last_seen_head = head;
        }
        let result = outcome.result.clone().unwrap_or_default();
        match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::PlanTurn => {
                if let Some(failed) = failed_turn(state, Step::Plan, outcome) {
                    return Action::Finish(failed);
                }
                Action::Finish(planned(state, result))
            }
            Stage::ImplementTurn => {
                if let Some(failed) = failed_turn(state, Step::Implement, outcome) {
                    return Action::Finish(failed);
                }
                state.run.implement_sent = true;
                self.stage = Stage::ImplementJudge { result };
                Action::Look
            }
            Stage::ReplanTurn => {
                if let Some(failed) = failed_turn(state, Step::Nudge, outcome) {
                    return Action::Finish(failed);
                }
                let planned = planned(state, result);
                let message = format!("the answer went back to planning: {}", planned.message);
                Action::Finish(Judgement {
                    step: Step::Nudge,
                    message,
                    ..planned
                })
            }
            Stage::ReviewTurn { judged, then } => {
                if let Some(failed) = failed_turn(state, self.step(), outcome) {
                    return Action::Finish(failed);
                }
                let approved = review_approves(&result);
                let review = Review {
                    approved,
                    text: result,
                    head: self.head.clone(),
                    round: state.run.gates.reviews + 1,
                };
                if !approved {
                    state.run.gates.reviews += 1;
                }
                state.run.gates.review = Some(review.clone());
                self.notes.push(Note::Reviewed(review));
                self.gate_committed(state, *judged, then, now_ms)
            }
            Stage::RescopeTurn { after } => {
                if let Some(failed) = failed_turn(state, self.step(), outcome) {
                    return Action::Finish(failed);
                }
                if blocked_reason(&result).is_some() {
                    return Action::Finish(planned(state, result));
                }
                state.task.earlier_plans.extend(state.task.plan.take());
                state.task.plan = Some(result.clone());
                state.task.rescopes += 1;
                state.phase = Phase::Planned;
                state.run.implement_sent = false;
                self.notes.push(Note::Rescoped {
                    number: state.task.rescopes,
                    of: self.config.rescopes,
                    plan: result,
                });
                let exit_code = match self.step() {
                    Step::Nudge => 0,
                    _ => Verdict::Rescoped.exit_code(),
                };
                Action::Finish(Judgement {
                    exit_code,
                    ..judgement(
                        state,
                        self.step(),
                        Verdict::Rescoped,
                        format!(
                            "{}; planned again (rescope {} of {}): implementing starts over with the new plan",
                            after.message, state.task.rescopes, self.config.rescopes
                        ),
                    )
                })
            }
            Stage::NudgeTurn { number } => {
                // A provider that fails the turn is not the agent stalling, and a
                // person's answer is no nudge: neither spends one.
                if outcome.status != TurnStatus::ProviderError && number.is_some() {
                    state.run.nudges += 1;
                }
                state.run.last_nudge_ms = Some(now_ms);
                if let Some(failed) = failed_turn(state, Step::Nudge, outcome) {
                    return Action::Finish(failed);
                }
                self.stage = Stage::NudgeJudge { number, result };
                Action::Look
            }
            stage => {
                let seen = Seen::Turn {
                    outcome: outcome.clone(),
                    made: Vec::new(),
                    foreign: Vec::new(),
                    head: None,
                };
                self.lost(state, stage, &seen)
            }
        }
    }

    /// git failed us (no repository, an unreadable one): the step ends with its error.
    fn errored(&mut self, state: &WorkerState, e: Error) -> Action {
        Action::Finish(Judgement {
            exit_code: e.exit_code(),
            ..judgement(state, self.step(), Verdict::TurnFailed, e.message)
        })
    }

    /// A move of HEAD since the last look that the worker did not make is someone
    /// else's commit: remembered, and told to the agent in the next nudge.
    fn observe(&mut self, state: &mut WorkerState, view: &GitView) {
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

/// The plan is in; unless the agent says it is blocked.
fn planned(state: &mut WorkerState, plan: String) -> Judgement {
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
fn failed_turn(state: &WorkerState, step: Step, outcome: &Outcome) -> Option<Judgement> {
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

fn last_blocked_reason(state: &WorkerState) -> String {
    state
        .last
        .as_ref()
        .and_then(|j| j.blocked_reason.clone())
        .unwrap_or_else(|| "no reason given".to_string())
}

/// Judges the implement phase from git and the agent's last words, and moves the
/// phase accordingly. `result` is `None` when no turn ran (a re-judge).
fn judge(state: &mut WorkerState, step: Step, view: &GitView, result: Option<&str>) -> Judgement {
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
        let names: Vec<&str> = changes.iter().take(5).map(|c| c.path.as_str()).collect();
        let more = changes.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{more}", names.join(", "))
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
            LoopNext::Plan(_) => format!("plan the task on {}", config.plan_model),
            LoopNext::Implement => format!("implement on {}", config.implement_model),
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
        (Phase::OutOfNudges, _) if state.task.rescopes < config.rescopes => LoopNext::Nudge,
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
        verdict => LoopNext::Finish(verdict.exit_code(), None),
    }
}

#[cfg(test)]
mod tests;

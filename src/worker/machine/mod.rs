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
use super::land::LandOrder;
use super::prompts::{
    CONTINUE_AFTER_RESTART, NudgeContext, ReviewContext, compact_instructions, implement_prompt,
    judge_again_prompt, judge_prompt, nudge_prompt, plan_prompt, replan_prompt, rescope_prompt,
    review_feedback, review_prompt,
};
use super::{
    Checked, InFlight, Judgement, Phase, Review, Step, Verdict, WorkerConfig, WorkerState,
    WorkerStep, blocked_reason, judge_work, review_approves,
};

/// The repository as git shows it now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GitView {
    pub head: Option<String>,
    /// The branch HEAD is on (`None`: detached).
    pub branch: Option<String>,
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
    /// The answer to [`Action::Land`].
    Land(LandSeen),
}

/// What happened that people and scripts should hear of, taken by the daemon after
/// each action: notices for the log, and the events of checks, reviews and rescopes.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Info(String),
    ChecksRan(Vec<CheckResult>),
    Reviewed(Review),
    Rescoped {
        number: u32,
        of: u32,
        plan: String,
    },
    /// The task's work landed: the target's `commit` holds it.
    Landed {
        task_id: String,
        commit: String,
        target: String,
    },
}

/// What the machine wants done next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Look at git and answer with [`Seen::Git`].
    Look,
    /// Wait this long (serving clients), then answer [`Seen::Waited`].
    Pause { ms: u64, why: String },
    /// Run this turn in the worker's conversation, with these settings. `resumed`: the
    /// turn continues one a daemon died during (its commits count from the HEAD leash
    /// last saw, not from HEAD now). `continue_on_crash`: a claude that dies during the
    /// turn is started again and told to continue. `cut_off_prompt`: the turn goes on
    /// from one cut off, whose prompt this is; sent instead of `prompt` (which tells
    /// claude to continue) when claude's conversation does not hold it.
    Send {
        kind: TurnKind,
        prompt: String,
        settings: TurnSettings,
        resumed: bool,
        continue_on_crash: bool,
        cut_off_prompt: Option<String>,
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
    /// What git must do for a landing; answer [`Seen::Land`].
    Land(LandGit),
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
    /// Judging a best-of-N loop's green attempts; `asked` again after an answer that
    /// named none of them.
    JudgeTurn {
        green: Vec<u32>,
        asked: bool,
    },
    /// A landing, by its own rules.
    Land(Box<landing::Landing>),
    Over,
}

/// A turn of `kind` with its settings. Every turn of a worker's step goes on after a
/// crash: a step is unattended work.
fn sending(config: &WorkerConfig, kind: TurnKind, prompt: String) -> Action {
    Action::Send {
        kind,
        prompt,
        settings: config.turns.settings(kind),
        resumed: false,
        continue_on_crash: true,
        cut_off_prompt: None,
    }
}

/// A turn of `kind` that goes on from one a dead daemon cut off: `continuation` tells
/// claude to continue, and the cut-off turn's prompt (when leash kept it) is sent
/// instead if claude's conversation does not hold it.
fn going_on(
    config: &WorkerConfig,
    kind: TurnKind,
    continuation: String,
    cut_off_prompt: Option<String>,
) -> Action {
    Action::Send {
        kind,
        prompt: continuation,
        settings: config.turns.settings(kind),
        resumed: true,
        continue_on_crash: true,
        cut_off_prompt,
    }
}

/// The in-flight marker of the turn a stage sends.
fn marker_of(stage: &Stage) -> Option<InFlight> {
    match stage {
        Stage::PlanTurn => Some(InFlight::Plan),
        Stage::ReplanTurn => Some(InFlight::Replan),
        Stage::ImplementTurn => Some(InFlight::Implement),
        Stage::NudgeTurn { number } => Some(InFlight::Nudge { number: *number }),
        Stage::ReviewTurn { .. } => Some(InFlight::Review),
        Stage::RescopeTurn { .. } => Some(InFlight::Rescope),
        Stage::JudgeTurn { .. } => Some(InFlight::Judge),
        Stage::Land(landing) => landing.marker(),
        _ => None,
    }
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
    /// The branch HEAD was on when the step last looked at git.
    on_branch: Option<String>,
    /// The gates already decided this step's judgement.
    gated: bool,
    /// Taken by the daemon after each action.
    notes: Vec<Note>,
    /// A review or rescope a dead daemon cut off, and its prompt: the step continues
    /// it when it comes to that turn again, rather than sending a second one.
    cut_off: Option<(InFlight, String)>,
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
            on_branch: None,
            gated: false,
            notes: Vec::new(),
            cut_off: None,
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
        // A work turn cut off before it ended (interrupted, as a stopping daemon does;
        // claude dead or hung past the restarts) stays in flight: the next step of its
        // phase continues it rather than sending its prompt again.
        let cut_off = matches!(&seen, Seen::Turn { outcome, .. } if matches!(
            outcome.status,
            TurnStatus::Interrupted | TurnStatus::Crashed | TurnStatus::Hung
        ));
        if let Some(cost) = self.cost_of(&seen) {
            let kind = self.turn_kind();
            state.task.cost.add(kind, cost);
        }
        match &seen {
            Seen::Git(view) => {
                self.head.clone_from(&view.head);
                self.on_branch.clone_from(&view.branch);
            }
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
        let cut = cut_off && matches!(action, Action::Finish(_));
        if !cut {
            // A review or rescope cut off stays marked until the step continues it.
            state.in_flight = self
                .in_flight(&action)
                .or_else(|| self.cut_off.as_ref().map(|(marker, _)| *marker));
            state.in_flight_prompt = match (&state.in_flight, &action) {
                (
                    Some(_),
                    Action::Send {
                        prompt,
                        cut_off_prompt,
                        ..
                    },
                ) => Some(cut_off_prompt.as_ref().unwrap_or(prompt).clone()),
                (Some(_), _) => self.cut_off.as_ref().map(|(_, prompt)| prompt.clone()),
                _ => None,
            };
        }
        if let Action::Finish(judged) = &action {
            self.stage = Stage::Over;
            if judged.verdict.concerns_the_work() {
                state.remember(format!("{}: {}", judged.step, judged.message));
            }
        }
        action
    }

    fn next(&mut self, state: &mut WorkerState, seen: Seen, now_ms: u64) -> Action {
        if matches!((&self.stage, &seen), (Stage::Begin, Seen::Start))
            && let Some(resumed) = self.resume(state)
        {
            return resumed;
        }
        let step = self.step.clone();
        match (std::mem::replace(&mut self.stage, Stage::Over), step, seen) {
            // A plan of the task under way (a loop run again while its plan step
            // still ran): the step before this one planned it meanwhile.
            (Stage::Begin, WorkerStep::Plan { .. }, Seen::Start)
                if self.task_id.is_some()
                    && self.task_id == state.task.id
                    && state.phase != Phase::Planning
                    && state.task.plan.is_some() =>
            {
                Action::Finish(judgement(
                    state,
                    Step::Plan,
                    Verdict::NothingToDo,
                    "the task was planned meanwhile, by the step before this one".to_string(),
                ))
            }
            (Stage::Begin, WorkerStep::Land { order }, Seen::Start) => {
                let (stage, action) = landing::begin(&mut landing::Ctx {
                    state,
                    config: &self.config,
                    order: &order,
                    notes: &mut self.notes,
                });
                self.stage = stage;
                action
            }
            (Stage::Land(landing), WorkerStep::Land { order }, seen) => {
                let was = Stage::Land(landing.clone());
                let mut ctx = landing::Ctx {
                    state,
                    config: &self.config,
                    order: &order,
                    notes: &mut self.notes,
                };
                match landing::next(*landing, &mut ctx, seen) {
                    Ok((stage, action)) => {
                        self.stage = stage;
                        action
                    }
                    Err(seen) => self.lost(state, was, &seen),
                }
            }
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
            (Stage::Begin, WorkerStep::Judge { candidates }, Seen::Start) => {
                self.stage = Stage::JudgeTurn {
                    green: candidates.iter().map(|c| c.k).collect(),
                    asked: false,
                };
                let prompt = judge_prompt(
                    state.task.text.as_deref(),
                    state.task.plan.as_deref(),
                    &candidates,
                );
                self.send(TurnKind::Judge, prompt)
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
                    commands: self.config.gates.checks.clone(),
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
                    max_rounds: self.config.gates.max_reviews,
                });
                self.stage = Stage::ReviewTurn { judged, then };
                self.send(TurnKind::Review, prompt)
            }
            (stage, _, seen) => self.lost(state, stage, &seen),
        }
    }

    /// A turn, on the model and in the mode its kind runs in; a review or rescope that
    /// goes on from one a dead daemon cut off continues it.
    fn send(&mut self, kind: TurnKind, prompt: String) -> Action {
        let cut_off = self
            .cut_off
            .take_if(|(marker, _)| Some(*marker) == marker_of(&self.stage));
        match cut_off {
            Some((_, cut_off)) => going_on(
                &self.config,
                kind,
                CONTINUE_AFTER_RESTART.to_string(),
                Some(cut_off),
            ),
            None => sending(&self.config, kind, prompt),
        }
    }

    /// The turn of the work `action` sends, saved before it goes out so that a daemon
    /// dying during it leaves word. Compactions are not saved: a step that finds one
    /// interrupted simply begins again.
    fn in_flight(&self, action: &Action) -> Option<InFlight> {
        if !matches!(action, Action::Send { .. }) {
            return None;
        }
        marker_of(&self.stage)
    }

    /// A step that finds a turn of its own kind in flight (its daemon died during it)
    /// goes on from that turn: claude resumes the conversation and, if the conversation
    /// holds the turn's prompt, is told, as after a crash, to check its work and
    /// continue; if it does not (claude never answered it), the prompt is sent again.
    /// Another step leaves it behind.
    fn resume(&mut self, state: &WorkerState) -> Option<Action> {
        let in_flight = state.in_flight?;
        let kind = in_flight.kind();
        if matches!(in_flight, InFlight::Review | InFlight::Rescope) {
            // The step comes to that turn again after git, the checks and the diff:
            // there it is continued (or sent as itself, if claude never answered it).
            self.cut_off = state.in_flight_prompt.clone().map(|p| (in_flight, p));
            self.note(format!(
                "the session daemon died during the {kind} turn; the step goes on to it again"
            ));
            return None;
        }
        let stage = match (&self.step, in_flight) {
            // The same task's plan, `--fresh` or not: a step sent again after its
            // daemon died must not plan it twice.
            (WorkerStep::Plan { task, .. }, InFlight::Plan | InFlight::Replan)
                if state.task.text.as_deref() == Some(task.as_str()) =>
            {
                Some(Stage::PlanTurn)
            }
            (WorkerStep::Implement { restart: false }, InFlight::Implement) => {
                Some(Stage::ImplementTurn)
            }
            (WorkerStep::Nudge { .. }, InFlight::Replan) => Some(Stage::ReplanTurn),
            (WorkerStep::Nudge { .. }, InFlight::Nudge { number }) => {
                Some(Stage::NudgeTurn { number })
            }
            (WorkerStep::Judge { candidates }, InFlight::Judge) => Some(Stage::JudgeTurn {
                green: candidates.iter().map(|c| c.k).collect(),
                asked: false,
            }),
            (
                WorkerStep::Land {
                    order: LandOrder::Resolve { .. },
                },
                InFlight::Land { number },
            ) => Some(Stage::Land(Box::new(landing::Landing::cut_off(number)))),
            _ => None,
        };
        let Some(stage) = stage else {
            self.note(format!(
                "the session daemon died during a {kind} turn; this {} step begins anew",
                self.step()
            ));
            return None;
        };
        self.note(format!(
            "the session daemon died during the {kind} turn; it goes on in the resumed conversation"
        ));
        self.stage = stage;
        // What a person or a hook says now still reaches the agent.
        let prompt = match &self.step {
            WorkerStep::Nudge { reasons, events } if !(reasons.is_empty() && events.is_empty()) => {
                let said: Vec<&str> = reasons.iter().chain(events).map(String::as_str).collect();
                format!("{CONTINUE_AFTER_RESTART}\n\nAlso: {}", said.join("\n"))
            }
            _ => CONTINUE_AFTER_RESTART.to_string(),
        };
        // Saved before leash kept the prompt, it is continued, as leash did then.
        Some(going_on(
            &self.config,
            kind,
            prompt,
            state.in_flight_prompt.clone(),
        ))
    }

    fn note(&mut self, text: String) {
        self.notes.push(Note::Info(text));
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
            state.begin_implement(view.head.clone(), self.config.nudges.max_nudges);
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
        if let Some(landed) = &state.task.landed
            && matches!(
                self.step,
                WorkerStep::Nudge { .. } | WorkerStep::Implement { restart: false }
            )
        {
            return Some(judgement(
                state,
                self.step(),
                Verdict::NothingToDo,
                format!(
                    "nothing to do: the task's work landed at {}",
                    crate::git::short_id(landed)
                ),
            ));
        }
        if matches!(self.step, WorkerStep::Implement { .. }) && state.task.text.is_none() {
            return Some(judgement(
                state,
                Step::Implement,
                Verdict::NoTask,
                "the worker has no task to implement: plan one first (`leash plan --task ...`, or `leash loop --task ...`)".to_string(),
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
                    of: self.config.gates.rescopes,
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
                            after.message, state.task.rescopes, self.config.gates.rescopes
                        ),
                    )
                })
            }
            Stage::JudgeTurn { green, asked } => {
                if let Some(failed) = failed_turn(state, Step::Judge, outcome) {
                    return Action::Finish(failed);
                }
                let named = super::attempts::named_winner(&result, &green);
                if named.is_none() && !asked {
                    let prompt = judge_again_prompt(&green);
                    self.stage = Stage::JudgeTurn { green, asked: true };
                    return self.send(TurnKind::Judge, prompt);
                }
                let said = match named {
                    Some(k) => format!("the judge chose attempt {k}"),
                    None => "the judge named none of the green attempts".to_string(),
                };
                Action::Finish(Judgement {
                    pick: Some(super::attempts::Pick {
                        k: named,
                        reason: result,
                    }),
                    ..judgement(state, Step::Judge, Verdict::Judged, said)
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
            Stage::Land(landing) => {
                let WorkerStep::Land { order } = self.step.clone() else {
                    return self.lost(state, Stage::Land(landing), &Seen::Start);
                };
                let (stage, action) = landing::turn_ended(
                    *landing,
                    &mut landing::Ctx {
                        state,
                        config: &self.config,
                        order: &order,
                        notes: &mut self.notes,
                    },
                    outcome,
                );
                self.stage = stage;
                action
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
}

mod gates;
mod judge;
mod landing;
mod looping;
mod nudge;

pub use judge::{dropped_nudge, judgement};
use judge::{failed_turn, judge, last_blocked_reason, planned};
pub use landing::{Gate, LandGit, LandSeen, landing_gate};
pub use looping::{LoopNext, ends_the_task, loop_next, loop_start};

#[cfg(test)]
mod tests;

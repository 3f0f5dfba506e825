//! The autonomous worker on top of a session: plan -> implement -> nudge, each step its
//! own command, the phase persisted in the worker's state dir so any terminal, script
//! or git hook can take the next step. The daemon runs the steps (it owns the
//! conversation and this state) as the pure [`machine`] decides; `leash loop` strings
//! them together by the same machine's rules.

pub mod attempts;
pub mod checks;
pub mod land;
pub mod machine;
pub mod observe;
pub(crate) mod prompts;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::checks::CheckResult;
use crate::error::{Error, ErrorKind};
use crate::git::{CommitInfo, FileChange};
use crate::human::usd;
use crate::paths::WORKER_FILE;
use crate::retry::RetryPolicy;
use crate::state_file::write_atomic;
use crate::turn::{TurnKind, TurnSettings};

/// Where the worker is in its task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No task yet.
    #[default]
    Idle,
    /// A planning turn was sent (or failed).
    Planning,
    /// The plan is saved; implementing comes next.
    Planned,
    /// The implement phase runs: turns and nudges until a commit.
    Implementing,
    /// The implementation committed.
    Done,
    /// The agent declared itself blocked; a nudge with `--reason` answers it.
    Blocked,
    /// The nudge cap was reached without a commit.
    OutOfNudges,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Idle => "idle",
            Phase::Planning => "planning",
            Phase::Planned => "planned",
            Phase::Implementing => "implementing",
            Phase::Done => "done",
            Phase::Blocked => "blocked",
            Phase::OutOfNudges => "out of nudges",
        })
    }
}

/// Which worker step it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Plan,
    Implement,
    Nudge,
    /// A landing by `leash land`: a branch handed back, or the landed work taken in.
    Land,
    /// Judging a best-of-N loop's green attempts.
    Judge,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Plan => "plan",
            Step::Implement => "implement",
            Step::Nudge => "nudge",
            Step::Land => "land",
            Step::Judge => "judge",
        })
    }
}

/// What a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The plan is saved.
    Planned,
    /// New commit(s) by the worker since the phase began.
    Committed,
    /// Changes exist but are not committed.
    Uncommitted,
    /// Nothing changed at all.
    NoChanges,
    /// The agent said it cannot go on (the blocked marker).
    Blocked,
    /// Not committed after the nudge cap.
    OutOfNudges,
    /// Nothing to do in this phase (for example a nudge after the work was done).
    NothingToDo,
    /// The task spent its budget before it was done: no further turn was sent.
    BudgetExhausted,
    /// The worker committed, but a check failed: the next nudge tells it.
    ChecksFailed,
    /// The worker committed and the checks pass, but the review asked for changes:
    /// the next nudge carries the review.
    ChangesRequested,
    /// The nudges ran out and the task was planned again: implementing starts over.
    Rescoped,
    /// The plan model chose among a best-of-N loop's green attempts.
    Judged,
    /// Another task is under way on this worker: the step was refused.
    Busy,
    /// The worker has no task to implement: the step was refused (plan one first).
    NoTask,
    /// The task this command worked on was replaced by another one.
    Replaced,
    /// The API kept failing (429/529/5xx).
    ProviderError,
    /// claude reported an error, crashed or hung.
    TurnFailed,
    Interrupted,
    /// A landing: the target holds the task's work; the branch and worktree hold it
    /// rebased.
    Landed,
    /// A landing: the branch, handed back, now descends from the target and passes the
    /// landing checks; `leash land` lands it next.
    Landable,
    /// A landing was given up (the worker could not resolve it, or the branch was not
    /// as `land` saw it); the branch and worktree are back as they were.
    NotLanded,
}

impl Verdict {
    /// Whether the verdict is about the worker's task (and so becomes its last word
    /// in `leash status`): a step with nothing to do, refused, or about another task
    /// is not.
    pub fn concerns_the_work(self) -> bool {
        !matches!(
            self,
            Verdict::NothingToDo
                | Verdict::Busy
                | Verdict::Replaced
                | Verdict::NoTask
                | Verdict::Landed
                | Verdict::Landable
                | Verdict::NotLanded
                | Verdict::Judged
        )
    }

    /// The exit code of a command whose last word is this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Planned
            | Verdict::Committed
            | Verdict::NothingToDo
            | Verdict::Landed
            | Verdict::Landable
            | Verdict::Judged => 0,
            Verdict::NotLanded => ErrorKind::NotLanded.exit_code(),
            Verdict::Uncommitted
            | Verdict::NoChanges
            | Verdict::ChecksFailed
            | Verdict::ChangesRequested
            | Verdict::Rescoped => ErrorKind::NotYetCommitted.exit_code(),
            Verdict::Blocked => ErrorKind::Blocked.exit_code(),
            Verdict::OutOfNudges => ErrorKind::NotCommitted.exit_code(),
            Verdict::Busy | Verdict::Replaced => ErrorKind::Busy.exit_code(),
            Verdict::NoTask => ErrorKind::Usage.exit_code(),
            Verdict::BudgetExhausted => ErrorKind::BudgetExhausted.exit_code(),
            Verdict::ProviderError => ErrorKind::Provider.exit_code(),
            Verdict::TurnFailed => ErrorKind::TurnFailed.exit_code(),
            Verdict::Interrupted => ErrorKind::Interrupted.exit_code(),
        }
    }
}

/// The end of a worker step: what was found, what it means for the phase, and the
/// exit code of the command that asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Judgement {
    pub step: Step,
    pub verdict: Verdict,
    /// The exit code of the command that ran the step.
    pub exit_code: u8,
    /// The phase after the step.
    pub phase: Phase,
    /// The verdict in a sentence.
    pub message: String,
    pub nudges_used: u32,
    pub max_nudges: u32,
    /// The worker's commits in this phase.
    pub commits: Vec<CommitInfo>,
    /// What the work tree holds that is not committed.
    pub uncommitted: Vec<FileChange>,
    /// The plan the worker follows.
    pub plan: Option<String>,
    /// Why the agent says it cannot go on, when it said so.
    pub blocked_reason: Option<String>,
    /// The task the step belongs to (`leash loop` sends it with its next steps).
    #[serde(default)]
    pub task_id: Option<String>,
    /// What the task's turns cost so far (US dollars).
    #[serde(default)]
    pub task_cost_usd: f64,
    /// The checks of the worker's latest commit (empty when none ran).
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// A judge step's answer: the attempt it named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<attempts::Pick>,
}

/// One worker step as a client asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerStep {
    /// Begin a task. Refused while another task is under way, unless `replace`.
    Plan {
        task: String,
        #[serde(default)]
        replace: bool,
    },
    /// Start the implement phase, or judge it again if it is under way (`restart`
    /// starts it over).
    Implement { restart: bool },
    /// Nudges queued while another waits are merged into it, so these are lists.
    Nudge {
        reasons: Vec<String>,
        /// The git hooks that fired the nudge.
        events: Vec<String>,
    },
    /// What `leash land` asks of the worker's branch.
    Land { order: land::LandOrder },
    /// Choose among a best-of-N loop's green attempts, in the conversation that
    /// planned them.
    Judge {
        candidates: Vec<attempts::Candidate>,
    },
}

/// What a merged nudge carries at most: hooks firing all day must not grow it without
/// bound, and the latest words matter most.
pub const MAX_MERGED: usize = 10;

impl WorkerStep {
    /// A nudge waiting to run takes in another's reasons and events (at most one nudge
    /// waits per worker); false when this step is no nudge.
    pub fn merge_nudge(&mut self, reasons: &[String], events: &[String]) -> bool {
        let WorkerStep::Nudge {
            reasons: pending_reasons,
            events: pending_events,
        } = self
        else {
            return false;
        };
        merge_into(pending_reasons, reasons);
        merge_into(pending_events, events);
        true
    }

    /// A plan begins a new task, which replaces a damaged `worker.json` (kept aside);
    /// every other step reports the damage.
    pub fn replaces_damaged_state(&self) -> bool {
        matches!(self, WorkerStep::Plan { .. })
    }

    pub fn step(&self) -> Step {
        match self {
            WorkerStep::Plan { .. } => Step::Plan,
            WorkerStep::Implement { .. } => Step::Implement,
            WorkerStep::Nudge { .. } => Step::Nudge,
            WorkerStep::Land { .. } => Step::Land,
            WorkerStep::Judge { .. } => Step::Judge,
        }
    }
}

/// Adds what is new to a pending nudge's list, keeping the latest [`MAX_MERGED`].
fn merge_into(pending: &mut Vec<String>, new: &[String]) {
    for item in new {
        if !pending.contains(item) {
            pending.push(item.clone());
        }
    }
    let excess = pending.len().saturating_sub(MAX_MERGED);
    pending.drain(..excess);
}

/// How the steps run; resolved by the client from flags, environment and config, and
/// sent with every step so the daemon holds no configuration of its own. Its parts
/// are flattened on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerConfig {
    #[serde(flatten)]
    pub turns: TurnConfig,
    #[serde(flatten)]
    pub nudges: NudgeConfig,
    pub retry: RetryPolicy,
    /// Compact before a plan or implement turn once the context is this full
    /// (percent of the window; 0 never).
    #[serde(default)]
    pub compact_at: u32,
    /// No further turn once the task's turns cost this much (US dollars).
    #[serde(default)]
    pub task_budget_usd: Option<f64>,
    #[serde(flatten)]
    pub gates: GateConfig,
}

/// Which model, permission mode and tools each kind of turn runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnConfig {
    pub plan_model: String,
    pub implement_model: String,
    pub plan_permission_mode: String,
    pub implement_permission_mode: String,
    /// Passed to claude as `--allowedTools` (at spawn; a change restarts claude on the
    /// same conversation).
    pub allowed_tools: Vec<String>,
}

/// How many nudges an implement phase has, and how they are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NudgeConfig {
    pub max_nudges: u32,
    pub nudge_backoff_ms: u64,
    pub nudge_backoff_max_ms: u64,
}

/// What committed work must pass before it is done.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GateConfig {
    /// Commands the worker's commit must pass, run with `sh -c` at the repository root.
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub check_timeout_ms: u64,
    /// A read-only turn on the plan model reviews committed work that passed its checks.
    #[serde(default)]
    pub review: bool,
    /// Review rounds that may ask for changes before the work is accepted anyway.
    #[serde(default)]
    pub max_reviews: u32,
    /// Plan the task again when the nudges run out, this many times per task.
    #[serde(default)]
    pub rescopes: u32,
    /// The branch the work is taken from (a worktree worker's own): commits made on
    /// another branch, or on a detached HEAD, are not done until they are on it.
    #[serde(default)]
    pub branch: Option<String>,
}

impl TurnConfig {
    /// What a turn of `kind` runs with: planning and reviews on the planning model,
    /// read-only; everything else on the implementation model and permission mode,
    /// with the implementing tools.
    pub fn settings(&self, kind: TurnKind) -> TurnSettings {
        match kind {
            TurnKind::Plan | TurnKind::Review | TurnKind::Judge => TurnSettings {
                model: Some(self.plan_model.clone()),
                permission_mode: Some(self.plan_permission_mode.clone()),
                allowed_tools: None,
            },
            TurnKind::Implement
            | TurnKind::Nudge
            | TurnKind::User
            | TurnKind::Compact
            | TurnKind::Land => TurnSettings {
                model: Some(self.implement_model.clone()),
                permission_mode: Some(self.implement_permission_mode.clone()),
                allowed_tools: Some(self.allowed_tools.clone()),
            },
        }
    }
}

impl NudgeConfig {
    /// The pause before nudge number `used + 1`: none before the first, then
    /// exponential with jitter.
    pub fn delay_ms(&self, used: u32) -> u64 {
        if used == 0 {
            return 0;
        }
        RetryPolicy {
            max_retries: 0,
            base_delay_ms: self.nudge_backoff_ms,
            max_delay_ms: self.nudge_backoff_max_ms,
            max_wait_ms: 0,
        }
        .delay_ms(used - 1)
    }
}

/// `worker.json`: the worker's phase and what it knows, written atomically by the daemon.
/// Its parts nest (a task; the implement run under way, with its gates) and are
/// flattened on disk and in `--json`, so starting a new run is one assignment and the
/// file keeps its shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerState {
    pub phase: Phase,
    #[serde(flatten)]
    pub task: Task,
    #[serde(flatten)]
    pub run: Run,
    /// The judgement of the last step.
    pub last: Option<Judgement>,
    /// A turn of the work that was sent and has not ended yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
    /// The worker this one is an attempt of (`loop --attempts`), while it is one: never
    /// a candidate for `land --all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_of: Option<String>,
    /// The prompt of the turn in flight, as it was sent: a step that goes on from the
    /// turn continues it if claude's conversation holds this, else sends it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_prompt: Option<String>,
    /// Where claude's transcript ended when that prompt was sent: it is looked for from
    /// there on (the same words may be there from an earlier turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_since: Option<u64>,
}

/// A turn of the work under way, saved before it is sent. A daemon that finds one when
/// a step begins is not the daemon that sent it: that one died during the turn. The
/// step then goes on from that turn (claude, resumed, is told to continue) instead of
/// sending its prompt again. Its `turn` says which turn it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "turn", rename_all = "snake_case")]
pub enum InFlight {
    Plan,
    /// Planning again, with a person's answer to a blocker.
    Replan,
    Implement,
    /// A nudge; its `number` says which (null for a person's answer to a blocker).
    Nudge {
        number: Option<u32>,
    },
    /// A review of the committed work.
    Review,
    /// Planning the task again after the nudges ran out.
    Rescope,
    /// Judging a best-of-N loop's green attempts.
    Judge,
    /// A landing turn; its `number` says which of the hand-back.
    Land {
        number: u32,
    },
}

impl InFlight {
    /// The kind of turn it is.
    pub fn kind(self) -> TurnKind {
        match self {
            InFlight::Plan | InFlight::Replan | InFlight::Rescope => TurnKind::Plan,
            InFlight::Implement => TurnKind::Implement,
            InFlight::Nudge { .. } => TurnKind::Nudge,
            InFlight::Review => TurnKind::Review,
            InFlight::Judge => TurnKind::Judge,
            InFlight::Land { .. } => TurnKind::Land,
        }
    }
}

/// The task the worker works on, from its plan to its end.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Task {
    /// The task, verbatim.
    #[serde(rename = "task")]
    pub text: Option<String>,
    /// Which task this is: a new one gets a new id.
    #[serde(default, rename = "task_id")]
    pub id: Option<String>,
    /// The phase the agent declared itself blocked in: an answer goes back there.
    #[serde(default)]
    pub blocked_in: Option<Phase>,
    /// The plan the planning turn answered.
    pub plan: Option<String>,
    /// What the task's turns cost so far.
    #[serde(default)]
    pub cost: TaskCost,
    /// Rescopes of this task so far.
    #[serde(default)]
    pub rescopes: u32,
    /// The plans a rescope replaced, oldest first.
    #[serde(default)]
    pub earlier_plans: Vec<String>,
    /// The task's verdicts so far, oldest first (the last [`HISTORY`]), for a rescope.
    #[serde(default)]
    pub history: Vec<String>,
    /// The target's commit that holds the task's work, once `leash land` moved the
    /// target to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<String>,
}

/// One implement phase of the task: from HEAD when it began to its judgement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    /// HEAD when the implement phase began.
    pub head_at_start: Option<String>,
    /// HEAD when leash last looked; a move between turns is someone else's doing.
    pub last_seen_head: Option<String>,
    /// Commits that appeared during the worker's own turns in this phase.
    pub own_commits: Vec<String>,
    /// Commits by others since the worker last heard of them; told in the next nudge.
    pub foreign_commits: Vec<CommitInfo>,
    /// Nudges sent in this phase.
    pub nudges: u32,
    /// The nudge cap of this phase.
    pub max_nudges: u32,
    /// The implementation prompt got a complete turn in this phase.
    pub implement_sent: bool,
    /// Unix ms when the last nudge's turn ended, for the backoff.
    pub last_nudge_ms: Option<u64>,
    #[serde(flatten)]
    pub gates: Gates,
}

/// What committed work went through in this phase: its checks and reviews.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gates {
    /// The checks of the latest commit, and where they ran.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    #[serde(default)]
    pub checked: Option<Checked>,
    /// Reviews in this phase that asked for changes.
    #[serde(default)]
    pub reviews: u32,
    /// The latest review.
    #[serde(default)]
    pub review: Option<Review>,
    /// What the next nudge tells the agent verbatim: a failed check, a review's changes.
    #[serde(default)]
    pub feedback: Option<String>,
}

/// The commit checks ran at, with which commands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checked {
    pub head: Option<String>,
    pub commands: Vec<String>,
}

/// A review of the worker's committed work, by the plan model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Review {
    pub approved: bool,
    /// The reviewer's answer, verbatim.
    pub text: String,
    /// The commit it reviewed.
    pub head: Option<String>,
    /// Which round of the phase (1 for the first review).
    pub round: u32,
}

/// How many verdicts a task remembers for a rescope.
pub const HISTORY: usize = 20;

/// What a task's turns cost, by phase (US dollars, as claude reported them). A
/// compaction before a turn counts with that turn's phase.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskCost {
    /// Planning turns, a re-plan after an answer included.
    pub plan_usd: f64,
    /// The implementation turns (the first prompt, and its re-sends).
    pub implement_usd: f64,
    /// Nudges, and a person's answers to a blocker.
    pub nudges_usd: f64,
    /// Reviews of committed work.
    #[serde(default)]
    pub review_usd: f64,
    /// Landing turns: the branch handed back by `leash land` (a conflict, a check
    /// failing on the target).
    #[serde(default)]
    pub land_usd: f64,
    /// Judging a best-of-N loop's attempts.
    #[serde(default)]
    pub judge_usd: f64,
    /// The budget the latest step ran under, if it had one.
    #[serde(default)]
    pub budget_usd: Option<f64>,
}

impl TaskCost {
    /// The whole task so far.
    pub fn total_usd(&self) -> f64 {
        self.plan_usd
            + self.implement_usd
            + self.nudges_usd
            + self.review_usd
            + self.land_usd
            + self.judge_usd
    }

    /// Adds a turn's cost to the phase its kind belongs to.
    pub fn add(&mut self, kind: crate::turn::TurnKind, usd: f64) {
        use crate::turn::TurnKind;
        let phase = match kind {
            TurnKind::Plan => &mut self.plan_usd,
            TurnKind::Nudge => &mut self.nudges_usd,
            TurnKind::Review => &mut self.review_usd,
            TurnKind::Land => &mut self.land_usd,
            TurnKind::Judge => &mut self.judge_usd,
            TurnKind::Implement | TurnKind::User | TurnKind::Compact => &mut self.implement_usd,
        };
        *phase += usd;
    }

    /// The budget is spent: nothing more may be sent for the task.
    pub fn exhausted(&self) -> bool {
        self.budget_usd
            .is_some_and(|budget| self.total_usd() >= budget)
    }

    /// `$0.42 (plan $0.10, implement $0.25, nudges $0.07) of a $1.00 budget`.
    pub fn describe(&self) -> String {
        let budget = self
            .budget_usd
            .map(|b| format!(" of a {} budget", usd(b)))
            .unwrap_or_default();
        let review = match self.review_usd {
            0.0 => String::new(),
            review => format!(", review {}", usd(review)),
        };
        let judge = match self.judge_usd {
            0.0 => String::new(),
            judge => format!(", judge {}", usd(judge)),
        };
        let land = match self.land_usd {
            0.0 => String::new(),
            land => format!(", landing {}", usd(land)),
        };
        format!(
            "{} (plan {}, implement {}, nudges {}{review}{judge}{land}){budget}",
            usd(self.total_usd()),
            usd(self.plan_usd),
            usd(self.implement_usd),
            usd(self.nudges_usd)
        )
    }
}

impl WorkerState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(WORKER_FILE)
    }

    /// A missing file is a fresh worker; a damaged one is reported.
    pub fn load(state_dir: &Path) -> Result<WorkerState, Error> {
        let path = Self::path(state_dir);
        match crate::state_file::read(&path, crate::state_file::MAX_RECORD_BYTES) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::setup(format!("{} is damaged ({e})", path.display()))
                    .hint("`leash loop --fresh --task ...` starts over and keeps it aside")
            }),
            Ok(None) => Ok(WorkerState::default()),
            Err(e) => Err(
                crate::state_file::error(format!("cannot read {}", path.display()), e)
                    .hint("`leash loop --fresh --task ...` starts over and keeps it aside"),
            ),
        }
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), Error> {
        let path = Self::path(state_dir);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode the worker state: {e}")))?;
        write_atomic(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    /// Starts a new task: everything about the previous one is forgotten.
    pub fn begin_plan(&mut self, task: String) {
        *self = WorkerState {
            phase: Phase::Planning,
            task: Task {
                text: Some(task),
                id: Some(uuid::Uuid::new_v4().to_string()),
                ..Task::default()
            },
            ..WorkerState::default()
        };
    }

    /// A task is under way: planning or implementing it has begun and has not ended.
    pub fn task_under_way(&self) -> bool {
        matches!(
            self.phase,
            Phase::Planning | Phase::Planned | Phase::Implementing
        )
    }

    /// Starts the implement phase at `head`: a new run, nothing of the last one kept.
    pub fn begin_implement(&mut self, head: Option<String>, max_nudges: u32) {
        self.phase = Phase::Implementing;
        self.run = Run {
            head_at_start: head.clone(),
            last_seen_head: head,
            max_nudges,
            ..Run::default()
        };
    }

    /// A step's judgement: one about the work becomes the worker's last word (a step
    /// with nothing to do, refused, or about another task does not hide the verdict
    /// before it). True when the work is done, so nudges still waiting are moot.
    pub fn judged(&mut self, judgement: &Judgement) -> bool {
        if !judgement.verdict.concerns_the_work() {
            return false;
        }
        self.last = Some(judgement.clone());
        judgement.phase == Phase::Done
    }

    /// Remembers a verdict of the task, for a rescope.
    pub fn remember(&mut self, verdict: String) {
        let history = &mut self.task.history;
        history.push(verdict);
        if history.len() > HISTORY {
            history.remove(0);
        }
    }
}

/// What the agent writes, alone on a line, when it cannot go on.
pub const BLOCKED_MARKER: &str = "LEASH-BLOCKED:";

impl Review {
    /// `review 1: approved`, `review 2 asked for changes: <its first line>`.
    pub fn describe(&self) -> String {
        if self.approved {
            return format!("review {}: approved", self.round);
        }
        let first = self
            .text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no answer)");
        let short: String = first.trim().chars().take(160).collect();
        format!("review {} asked for changes: {short}", self.round)
    }
}

/// What a reviewer ends its answer with.
pub const APPROVED_MARKER: &str = "LEASH-APPROVED";
pub const CHANGES_MARKER: &str = "LEASH-CHANGES:";

/// Whether a review approves: its last line with a marker says `LEASH-APPROVED`.
/// `LEASH-CHANGES: ...`, or no marker at all, asks for changes.
pub fn review_approves(text: &str) -> bool {
    text.lines()
        .rev()
        .map(|line| line.trim().trim_matches(['*', '`', '>', ' ', '_']))
        .find(|line| line.starts_with(APPROVED_MARKER) || line.starts_with(CHANGES_MARKER))
        .is_some_and(|line| line.starts_with(APPROVED_MARKER))
}

/// The reason after the blocked marker, if the text declares the agent blocked.
pub fn blocked_reason(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().trim_start_matches(['*', '`', '>', ' ']);
        rest.strip_prefix(BLOCKED_MARKER).map(|reason| {
            let reason = reason.trim().trim_matches(['*', '`']).trim();
            if reason.is_empty() {
                "no reason given".to_string()
            } else {
                reason.to_string()
            }
        })
    })
}

/// The implementation's state as git shows it, judged: blocked beats committed (the
/// agent's own words are the most specific), committed beats loose changes.
pub fn judge_work(
    own_commits: &[CommitInfo],
    changes: &[FileChange],
    blocked: Option<&str>,
) -> Verdict {
    if blocked.is_some() {
        Verdict::Blocked
    } else if !own_commits.is_empty() {
        Verdict::Committed
    } else if !changes.is_empty() {
        Verdict::Uncommitted
    } else {
        Verdict::NoChanges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_nudges_stay_bounded_and_keep_the_latest() {
        let mut pending = vec!["a".to_string()];
        merge_into(&mut pending, &["a".to_string(), "b".to_string()]);
        assert_eq!(pending, ["a", "b"]);
        let many: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
        merge_into(&mut pending, &many);
        assert_eq!(pending.len(), MAX_MERGED);
        assert_eq!(pending.last().unwrap(), "r24");
    }

    #[test]
    fn only_a_nudge_takes_in_another_nudges_words() {
        let mut nudge = WorkerStep::Nudge {
            reasons: vec!["r1".into()],
            events: Vec::new(),
        };
        assert!(nudge.merge_nudge(&["r2".into()], &["post-commit".into()]));
        assert_eq!(
            nudge,
            WorkerStep::Nudge {
                reasons: vec!["r1".into(), "r2".into()],
                events: vec!["post-commit".into()],
            }
        );
        let mut implement = WorkerStep::Implement { restart: false };
        assert!(!implement.merge_nudge(&["r".into()], &[]));
    }

    #[test]
    fn blocked_marker_is_found_on_its_own_line() {
        assert_eq!(
            blocked_reason("I tried.\nLEASH-BLOCKED: the API key is missing\n"),
            Some("the API key is missing".to_string())
        );
        assert_eq!(
            blocked_reason("**LEASH-BLOCKED:** need access"),
            Some("need access".to_string())
        );
        assert_eq!(
            blocked_reason("LEASH-BLOCKED:"),
            Some("no reason given".to_string())
        );
        assert_eq!(blocked_reason("all good, not blocked"), None);
    }

    #[test]
    fn judging_prefers_blocked_then_commits_then_changes() {
        let commit = CommitInfo {
            id: "a".into(),
            summary: "s".into(),
            author: "x".into(),
        };
        let change = FileChange {
            code: "??".into(),
            path: "f".into(),
        };
        assert_eq!(
            judge_work(
                std::slice::from_ref(&commit),
                std::slice::from_ref(&change),
                Some("r")
            ),
            Verdict::Blocked
        );
        assert_eq!(
            judge_work(&[commit], std::slice::from_ref(&change), None),
            Verdict::Committed
        );
        assert_eq!(judge_work(&[], &[change], None), Verdict::Uncommitted);
        assert_eq!(judge_work(&[], &[], None), Verdict::NoChanges);
    }

    #[test]
    fn nudges_back_off_exponentially_from_the_second() {
        let config = NudgeConfig {
            nudge_backoff_ms: 100,
            nudge_backoff_max_ms: 10_000,
            max_nudges: 5,
        };
        assert_eq!(config.delay_ms(0), 0);
        for used in 1..6 {
            let cap = (100u64 << (used - 1)).min(10_000);
            let d = config.delay_ms(used);
            assert!(d >= cap / 2 && d <= cap, "{used}: {d}");
        }
    }

    #[test]
    fn a_review_approves_only_with_the_marker_last() {
        assert!(review_approves("Looks right.\n\nLEASH-APPROVED"));
        assert!(review_approves("**LEASH-APPROVED**"));
        assert!(!review_approves(
            "LEASH-CHANGES: the test does not cover empty input"
        ));
        assert!(!review_approves(
            "LEASH-APPROVED?\nLEASH-CHANGES: rename it"
        ));
        assert!(
            !review_approves("Looks fine to me."),
            "no marker is changes"
        );
    }

    #[test]
    fn worker_json_keeps_its_flat_shape() {
        // A file as leash wrote it before the state was nested.
        let old = r#"{"phase":"implementing","task":"t","task_id":"id1","blocked_in":null,
            "plan":"p","head_at_start":"h0","last_seen_head":"h1","own_commits":["c1"],
            "foreign_commits":[],"nudges":2,"max_nudges":5,"implement_sent":true,
            "last_nudge_ms":7,"cost":{"plan_usd":0.1,"implement_usd":0.2,"nudges_usd":0.0},
            "checks":[],"checked":null,"reviews":1,"review":null,"feedback":"f",
            "rescopes":1,"earlier_plans":["p0"],"history":["h"],"last":null}"#;
        let state: WorkerState = serde_json::from_str(old).unwrap();
        assert_eq!(state.task.text.as_deref(), Some("t"));
        assert_eq!(state.task.id.as_deref(), Some("id1"));
        assert_eq!(state.run.nudges, 2);
        assert_eq!(state.run.gates.reviews, 1);
        assert_eq!(state.run.gates.feedback.as_deref(), Some("f"));
        let written = serde_json::to_value(&state).unwrap();
        let old: serde_json::Value = serde_json::from_str(old).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&written), keys(&old), "the same keys, all at the top");
    }

    #[test]
    fn a_new_implement_run_forgets_the_last_one_but_not_the_task() {
        let mut state = WorkerState::default();
        state.begin_plan("the task".into());
        state.task.plan = Some("plan".into());
        state.run.nudges = 3;
        state.run.gates.feedback = Some("fix it".into());
        state.run.own_commits.push("c1".into());
        state.begin_implement(Some("h1".into()), 5);
        assert_eq!(state.phase, Phase::Implementing);
        assert_eq!(
            state.run,
            Run {
                head_at_start: Some("h1".into()),
                last_seen_head: Some("h1".into()),
                max_nudges: 5,
                ..Run::default()
            }
        );
        assert_eq!(state.task.plan.as_deref(), Some("plan"));
    }

    #[test]
    fn exit_codes_follow_the_table() {
        assert_eq!(Verdict::Committed.exit_code(), 0);
        assert_eq!(Verdict::OutOfNudges.exit_code(), 10);
        assert_eq!(Verdict::Blocked.exit_code(), 11);
        assert_eq!(Verdict::Uncommitted.exit_code(), 12);
        assert_eq!(Verdict::ProviderError.exit_code(), 5);
    }
}

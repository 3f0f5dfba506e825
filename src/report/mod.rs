//! What every worker did with its tasks: one row per task, folded from the worker's
//! event log ([`fold`]), kept beyond the log's rotation in a bounded per-worker history
//! ([`history`]), and drawn as a timeline ([`svg`]). `leash report` shows them; the
//! daemon writes a task's row to its history when the task ends.

pub mod attempts;
pub mod exits;
pub mod fold;
pub mod gather;
pub mod history;
pub mod landing;
pub mod svg;
pub mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::git::CommitInfo;
use crate::protocol::Fault;
use crate::worker::{Phase, TaskCost, Verdict};
use landing::Landing;

// A task in a table, a picture or `session watch` reads on one line as any text does.
pub use crate::human::{clock_of_day, one_line};

/// One task of a worker, from its first step to its end (or to now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskRow {
    /// The worker that worked on it.
    pub worker: String,
    /// The repository the worker works in (its directory's name), as the report found
    /// it; `null` when the worker's record names none.
    #[serde(default)]
    pub repository: Option<String>,
    /// The branch the worker was on when the task ended (for a task under way, the
    /// one it is on now).
    pub branch: Option<String>,
    /// Which task it is (a new task gets a new id; `worker.json`'s `task_id`).
    pub task_id: String,
    /// The task, verbatim.
    pub task: String,
    /// How the task stands.
    pub standing: Standing,
    /// The last step's verdict, as the command reported it; `null` before any.
    pub verdict: Option<Verdict>,
    /// For a task that ended, the exit code `leash loop` ends with for it (10 out of
    /// nudges, 14 replaced, ...); for one under way, its last step's; `null` before any
    /// step and while a step runs.
    pub exit_code: Option<u8>,
    /// The last step's message.
    pub message: Option<String>,
    /// The worker's phase after the last step.
    pub phase: Option<Phase>,
    /// Unix ms when its first step began.
    pub started_ms: u64,
    /// Unix ms of its last event.
    pub last_ms: u64,
    /// The worker's commits for the task.
    pub commits: u32,
    /// The newest of them.
    pub latest_commit: Option<CommitInfo>,
    /// Checks that passed, over every run of them.
    pub checks_passed: u32,
    /// Checks that failed (or timed out, or disturbed the work tree).
    pub checks_failed: u32,
    /// Reviews by the plan model.
    pub reviews: u32,
    /// Nudges sent.
    pub nudges: u32,
    /// Times the task was planned again.
    pub rescopes: u32,
    /// What the task cost, as its last step reported it (US dollars); for a task
    /// another worker planned (a fork's), what this worker's turns cost, so totals count
    /// every turn once.
    pub cost_usd: f64,
    /// Its turns' cost by phase, as claude reported each turn.
    pub cost: TaskCost,
    /// Turns sent for it.
    pub turns: u32,
    /// From its first step to its last event.
    pub duration_ms: u64,
    /// What went wrong on the way, counted.
    pub faults: Faults,
    /// Where its time went, for the picture (the latest 200 stretches).
    pub spans: Vec<Span>,
    /// When each fault happened (the latest 100).
    pub markers: Vec<Marker>,
    /// When each nudge was sent (Unix ms, the latest 100).
    #[serde(default)]
    pub nudged_ms: Vec<u64>,
    /// The machine its last step ran on; `null` when its log did not say.
    #[serde(default)]
    pub host: Option<String>,
    /// The target's commit that holds the task's work, once `leash land` moved the
    /// target to it (as land recorded it, never guessed from git); else `null`.
    #[serde(default)]
    pub landed: Option<String>,
    /// The task's latest landing by `leash land`; `null` before any. It is no verdict
    /// on the work: `standing`, `verdict` and `exit_code` stay the task's own.
    #[serde(default)]
    pub landing: Option<Landing>,
    /// A best-of-N task's attempts (`loop --attempts`), each a row of its own; the
    /// task's `cost_usd` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<TaskRow>,
}

impl TaskRow {
    /// The task's time reached `at_ms` (its last event so far); its duration follows.
    pub fn reached(&mut self, at_ms: u64) {
        self.last_ms = self.last_ms.max(at_ms);
        self.duration_ms = self.last_ms.saturating_sub(self.started_ms);
    }
}

/// The rows of each worker, in the order given, workers by name as a person counts
/// (`task-2` before `task-10`).
pub fn by_worker(rows: &[TaskRow]) -> Vec<(&str, Vec<&TaskRow>)> {
    let mut workers: BTreeMap<&str, Vec<&TaskRow>> = BTreeMap::new();
    for row in rows {
        workers.entry(row.worker.as_str()).or_default().push(row);
    }
    let mut workers: Vec<(&str, Vec<&TaskRow>)> = workers.into_iter().collect();
    workers.sort_by(|a, b| natural_cmp(a.0, b.0));
    workers
}

/// Names in the order a person counts: runs of digits compare as numbers, so `task-2`
/// comes before `task-10`; names alike but for leading zeros fall back to the text.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(text: &str) -> impl Iterator<Item = &str> {
        let mut rest = text;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(end);
            rest = after;
            Some(run)
        })
    }
    let number = |run: &str| {
        let run = run.trim_start_matches('0');
        (run.len(), run.to_string())
    };
    let mut left = runs(a);
    let mut right = runs(b);
    loop {
        let order = match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y))
                if x.starts_with(|c: char| c.is_ascii_digit())
                    && y.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                number(x).cmp(&number(y))
            }
            (Some(x), Some(y)) => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
}

/// How a task stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Committed, and through its gates.
    Done,
    /// The agent is blocked: it needs an answer.
    Blocked,
    /// Not committed after the nudge cap.
    OutOfNudges,
    /// Its budget is spent.
    OverBudget,
    /// Another task replaced it.
    Replaced,
    /// The API or claude kept failing; its loop resumes it.
    Failed,
    /// Interrupted; its loop resumes it.
    Interrupted,
    /// A step of it runs now.
    Running,
    /// Under way, but nothing runs it now (a step ended with more to do, or its
    /// command was stopped).
    Unfinished,
}

impl Standing {
    /// How a task stands after a step's verdict.
    pub fn after(verdict: Verdict) -> Standing {
        match verdict {
            Verdict::Committed => Standing::Done,
            Verdict::Blocked => Standing::Blocked,
            Verdict::OutOfNudges => Standing::OutOfNudges,
            Verdict::BudgetExhausted => Standing::OverBudget,
            Verdict::Replaced => Standing::Replaced,
            Verdict::ProviderError | Verdict::TurnFailed => Standing::Failed,
            Verdict::Interrupted => Standing::Interrupted,
            _ => Standing::Unfinished,
        }
    }

    /// The task is over (for now: a failed or interrupted one resumes when asked).
    pub fn ended(self) -> bool {
        !matches!(self, Standing::Running | Standing::Unfinished)
    }

    /// A person should look at it.
    pub fn needs_you(self) -> bool {
        matches!(
            self,
            Standing::Blocked
                | Standing::OutOfNudges
                | Standing::OverBudget
                | Standing::Failed
                | Standing::Interrupted
        )
    }

    /// Its name in markup (`out_of_nudges`), where the picture and the page style it.
    pub fn class(self) -> String {
        self.label().replace(' ', "_")
    }

    pub fn label(self) -> &'static str {
        match self {
            Standing::Done => "done",
            Standing::Blocked => "blocked",
            Standing::OutOfNudges => "out of nudges",
            Standing::OverBudget => "over budget",
            Standing::Replaced => "replaced",
            Standing::Failed => "failed",
            Standing::Interrupted => "interrupted",
            Standing::Running => "running",
            Standing::Unfinished => "unfinished",
        }
    }
}

/// What went wrong on a task's way, counted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Faults {
    /// claude died or hung and was restarted to continue.
    pub crashes: u32,
    /// The daemon died and a new one took over.
    pub daemon_restarts: u32,
    /// The conversation was compacted (by claude, or by leash before a phase).
    pub compactions: u32,
    /// The conversation was full and went on in a new one.
    pub hand_offs: u32,
    /// Provider errors (429/529/5xx) waited out.
    pub provider_errors: u32,
    /// The task spent its budget.
    pub budget: bool,
}

impl Faults {
    pub fn count(&mut self, fault: Fault) {
        match fault {
            Fault::Crash => self.crashes += 1,
            Fault::DaemonRestart => self.daemon_restarts += 1,
            Fault::Compaction => self.compactions += 1,
            Fault::HandOff => self.hand_offs += 1,
            Fault::ProviderError => self.provider_errors += 1,
            Fault::Budget => self.budget = true,
        }
    }

    pub fn add(&mut self, other: &Faults) {
        self.crashes = self.crashes.saturating_add(other.crashes);
        self.daemon_restarts = self.daemon_restarts.saturating_add(other.daemon_restarts);
        self.compactions = self.compactions.saturating_add(other.compactions);
        self.hand_offs = self.hand_offs.saturating_add(other.hand_offs);
        self.provider_errors = self.provider_errors.saturating_add(other.provider_errors);
        self.budget |= other.budget;
    }

    /// `2 crashes, 1 hand-off`; empty when nothing went wrong.
    pub fn describe(&self) -> String {
        let counted = [
            (self.crashes, "crash", "crashes"),
            (self.daemon_restarts, "daemon restart", "daemon restarts"),
            (self.compactions, "compaction", "compactions"),
            (self.hand_offs, "hand-off", "hand-offs"),
            (self.provider_errors, "provider error", "provider errors"),
        ];
        let mut parts: Vec<String> = counted
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect();
        if self.budget {
            parts.push("budget".to_string());
        }
        parts.join(", ")
    }
}

/// Where a stretch of a task's time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpanPhase {
    Planning,
    Implementing,
    Checks,
    Review,
    /// Landing turns: the branch handed back by `leash land`.
    Landing,
}

/// A stretch of a task's time in one phase (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Span {
    pub phase: SpanPhase,
    /// When it began.
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
    /// For checks that failed: the first that did, how it ended and the first line of
    /// its failure (`` `cargo test` failed (exit 101): error[E0308]: mismatched types ``).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A fault, and when it happened (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Marker {
    pub fault: Fault,
    /// When it happened.
    pub at_ms: u64,
}

/// Spans and markers a row keeps: a night of one task needs far fewer.
pub const MAX_SPANS: usize = 200;
pub const MAX_MARKERS: usize = 100;

/// Tasks added up: a worker's (`worker` set), or everyone's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, schemars::JsonSchema)]
pub struct Totals {
    /// The worker, or `null` for every worker of the report.
    pub worker: Option<String>,
    /// Tasks in the report.
    pub tasks: u32,
    /// Tasks done.
    pub done: u32,
    /// Tasks blocked, out of nudges, over budget, failed or interrupted.
    pub need_you: u32,
    /// Tasks a step runs now.
    pub running: u32,
    /// Tasks under way that nothing runs now.
    pub unfinished: u32,
    /// Tasks another task replaced.
    pub replaced: u32,
    /// Tasks whose work `leash land` moved a target to.
    pub landed: u32,
    /// Tasks not landed, whose latest landing was given up.
    pub not_landed: u32,
    /// The workers' commits.
    pub commits: u32,
    /// What the tasks cost (US dollars).
    pub cost_usd: f64,
    /// Turns sent.
    pub turns: u32,
    /// The tasks' durations added up.
    pub duration_ms: u64,
    /// What went wrong, added up.
    pub faults: Faults,
}

impl Totals {
    pub fn of<'r>(worker: Option<String>, rows: impl IntoIterator<Item = &'r TaskRow>) -> Totals {
        let mut totals = Totals {
            worker,
            ..Totals::default()
        };
        for row in rows {
            totals.tasks += 1;
            match row.standing {
                Standing::Done => totals.done += 1,
                Standing::Running => totals.running += 1,
                Standing::Unfinished => totals.unfinished += 1,
                Standing::Replaced => totals.replaced += 1,
                _ => totals.need_you += 1,
            }
            match (&row.landed, row.landing.as_ref().and_then(|l| l.verdict)) {
                (Some(_), _) => totals.landed += 1,
                (None, Some(Verdict::NotLanded)) => totals.not_landed += 1,
                _ => {}
            }
            totals.commits = totals.commits.saturating_add(row.commits);
            totals.cost_usd += row.cost_usd;
            totals.turns = totals.turns.saturating_add(row.turns);
            totals.duration_ms = totals.duration_ms.saturating_add(row.duration_ms);
            totals.faults.add(&row.faults);
        }
        // Dollars added up in binary floating point: no 0.009000000000000001.
        totals.cost_usd = (totals.cost_usd * 1e9).round() / 1e9;
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ordered_as_a_person_counts() {
        let mut names = [
            "task-10", "task-2", "task-1", "task-11", "b", "a9", "a10", "task-02",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "a9", "a10", "b", "task-1", "task-02", "task-2", "task-10", "task-11"
            ]
        );
    }
}

//! Every JSON line a command prints of its own (the daemon's events and replies are in
//! `protocol`), declared once: its fields, its `type`, and who prints it. docs/json.md
//! is generated from these and from the protocol types.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::git::HookChange;
use crate::protocol::{SessionState, SessionStatus};
use crate::settings::Scope;
use crate::worker::{Phase, Step, WorkerState};

/// A line `--json` prints: its fields are the type's, its `type` is [`JsonLine::TYPE`].
pub trait JsonLine: Serialize + JsonSchema {
    const TYPE: &'static str;
    /// Which commands print it, and when.
    const PRINTED_BY: &'static str;
}

/// A line with its `type` first.
#[derive(Serialize)]
pub struct Typed<'a, T> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub body: &'a T,
}

impl JsonLine for SessionStatus {
    const TYPE: &'static str = "status";
    const PRINTED_BY: &'static str = "`session start`, `session status`";
}

/// One worker of `session list`.
#[derive(Serialize, JsonSchema)]
pub struct WorkerRow {
    pub worker: String,
    /// `cold`, `idle`, `busy`, `failed`, or `stopped` when no daemon runs.
    pub state: SessionState,
    pub daemon_pid: Option<u32>,
    pub session_id: Option<String>,
    /// The model claude confirmed, else the one asked for.
    pub model: Option<String>,
    pub turns: u64,
    pub cost_usd: f64,
    /// How full the conversation is, in percent of the model's window, when known.
    pub context_percent: Option<u64>,
    pub cwd: Option<PathBuf>,
    /// The worker's own worktree (`--worktree`), else `null`.
    pub worktree: Option<PathBuf>,
    /// The branch checked out where it works.
    pub branch: Option<String>,
    /// Its phase, once it has had a task.
    pub phase: Option<Phase>,
    /// The machine its daemon runs on, or last ran on (`gethostname()`); `null` when
    /// no record tells.
    pub host: Option<String>,
    /// Until when (Unix ms) its running step pauses between nudges (`state` stays
    /// `busy`); `null` while it works.
    pub waiting_until_ms: Option<u64>,
    /// The worker step running now (`land`: a landing under way); `null` while none
    /// runs.
    pub step: Option<Step>,
}

impl JsonLine for WorkerRow {
    const TYPE: &'static str = "worker";
    const PRINTED_BY: &'static str = "`session list` (one per worker)";
}

/// A worker `session rm` removed.
#[derive(Serialize, JsonSchema)]
pub struct Removed {
    pub worker: String,
    /// Its daemon was running and was stopped.
    pub stopped: bool,
    /// The worktree removed with it, if it had one.
    pub worktree: Option<PathBuf>,
    /// Its branch, if it had one.
    pub branch: Option<String>,
    /// The branch was merged into the branch it came from, and deleted.
    pub branch_deleted: bool,
}

impl JsonLine for Removed {
    const TYPE: &'static str = "removed";
    const PRINTED_BY: &'static str = "`session rm`";
}

/// A worker `session stop` stopped.
#[derive(Serialize, JsonSchema)]
pub struct Stopped {
    pub worker: String,
    pub daemon_pid: u32,
}

impl JsonLine for Stopped {
    const TYPE: &'static str = "stopped";
    const PRINTED_BY: &'static str = "`session stop` (one per worker stopped)";
}

/// The worker: its session and its phase state (`worker.json`).
#[derive(Serialize, JsonSchema)]
pub struct WorkerStatus {
    pub worker: String,
    /// The worker's own worktree (`--worktree`), else `null`.
    pub worktree: Option<PathBuf>,
    /// The branch checked out where it works.
    pub branch: Option<String>,
    /// A daemon serves the worker.
    pub running: bool,
    pub daemon_pid: Option<u32>,
    pub session_id: Option<String>,
    /// The code `leash loop` ends with for the task as it stands (the one a night's
    /// script saw): its last loop's when that loop died with no judgement saying so,
    /// else the one the last verdict makes (10 out of nudges, 0 done); `null` while a
    /// loop would go on.
    pub loop_exit_code: Option<u8>,
    /// The worker step its daemon runs now (`land`: a landing under way); `null` while
    /// none runs.
    pub step: Option<Step>,
    #[serde(flatten)]
    pub state: WorkerState,
}

impl JsonLine for WorkerStatus {
    const TYPE: &'static str = "worker_status";
    const PRINTED_BY: &'static str = "`status`";
}

impl JsonLine for crate::report::TaskRow {
    const TYPE: &'static str = "task";
    const PRINTED_BY: &'static str = "`report` (one per task)";
}

impl JsonLine for crate::report::Totals {
    const TYPE: &'static str = "totals";
    const PRINTED_BY: &'static str =
        "`report`: one per worker when there are several, then one for all (the last line)";
}

impl JsonLine for crate::land::Landing {
    const TYPE: &'static str = "landing";
    const PRINTED_BY: &'static str = "`land` (one per candidate, as it ends)";
}

impl JsonLine for HookChange {
    const TYPE: &'static str = "hook";
    const PRINTED_BY: &'static str = "`hooks install`, `hooks uninstall` (one per hook)";
}

/// How a check of `leash doctor` came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// One thing `leash doctor` checked.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Check {
    pub check: &'static str,
    pub status: CheckStatus,
    pub message: String,
    /// What to do about a warning or a failure.
    pub fix: Option<String>,
}

impl JsonLine for Check {
    const TYPE: &'static str = "check";
    const PRINTED_BY: &'static str = "`doctor` (one per check)";
}

/// One setting, its value and where it came from.
#[derive(Serialize, JsonSchema)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    /// `default`, the config file's path, `env VAR`, or `flag`.
    pub source: String,
    pub env: &'static str,
    pub default: &'static str,
    pub scope: Scope,
    pub help: &'static str,
}

impl JsonLine for Setting {
    const TYPE: &'static str = "setting";
    const PRINTED_BY: &'static str = "`config` (one per setting)";
}

/// Why `leash loop` stopped.
#[derive(Serialize, JsonSchema)]
pub struct Finished {
    pub exit_code: u8,
    pub phase: Phase,
    /// Why the loop stopped.
    pub message: String,
}

impl JsonLine for Finished {
    const TYPE: &'static str = "finished";
    const PRINTED_BY: &'static str =
        "the last line of `loop` (with `--attempts`: the winner's phase)";
}

/// One attempt of `loop --attempts`, as it ended.
#[derive(Serialize, JsonSchema)]
pub struct AttemptLine {
    /// Which attempt (1 to N).
    pub k: u32,
    /// Its worker, `NAME-k`.
    pub worker: String,
    /// Its branch, `leash/NAME-k`.
    pub branch: String,
    /// The attempt's phase when its loop ended (`done`: green).
    pub outcome: Phase,
    /// The code its own loop ended with (0: green).
    pub exit_code: u8,
    /// How its loop ended, in a sentence.
    pub message: String,
    /// The checks of its last commit.
    pub checks: Vec<crate::worker::checks::CheckResult>,
    /// What its own turns cost (the shared plan not included).
    pub cost_usd: f64,
    /// Lines added and removed since the branch point.
    pub changed_lines: u64,
}

impl JsonLine for AttemptLine {
    const TYPE: &'static str = "attempt";
    const PRINTED_BY: &'static str = "`loop --attempts` (one per attempt, as it ends)";
}

/// The attempt `loop --attempts` kept: it is the worker now.
#[derive(Serialize, JsonSchema)]
pub struct WinnerLine {
    /// Which attempt won.
    pub k: u32,
    /// The worker it became.
    pub worker: String,
    /// Its branch now, `leash/NAME`.
    pub branch: String,
    pub chosen_by: crate::worker::attempts::ChosenBy,
    /// The judge's answer, or why no judge was asked.
    pub reason: String,
}

impl JsonLine for WinnerLine {
    const TYPE: &'static str = "winner";
    const PRINTED_BY: &'static str = "`loop --attempts`, once the winner is kept";
}

/// What went wrong, as the last line of a failed command.
#[derive(Serialize, JsonSchema)]
pub struct ErrorLine {
    pub kind: ErrorKind,
    pub exit_code: u8,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl From<&Error> for ErrorLine {
    fn from(err: &Error) -> Self {
        ErrorLine {
            kind: err.kind,
            exit_code: err.exit_code(),
            message: err.message.clone(),
            hint: err.hint.clone(),
        }
    }
}

impl JsonLine for ErrorLine {
    const TYPE: &'static str = "error";
    const PRINTED_BY: &'static str = "any command that fails, as its last line";
}

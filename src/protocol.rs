//! The socket protocol between the `leash` client and a worker's daemon.
//!
//! Newline-delimited JSON over a Unix socket. A client opens a connection, sends
//! [`Request::Hello`] with [`PROTOCOL_VERSION`] and then one request; the daemon answers
//! with [`Reply`] lines and, for turns and log follows, streams [`Event`] lines. Events
//! are the same objects the daemon appends to the worker's event log, so `--json`
//! output, `leash session logs` and the log file all read alike.
//!
//! Every line carries a `type` field; new fields may be added, existing ones keep their
//! meaning. A change that breaks that promise bumps [`PROTOCOL_VERSION`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claude::conversation::Compaction;
use crate::claude::conversation::ForkOf;
pub use crate::claude::conversation::SessionChange;
use crate::claude::limits::RateLimit;
use crate::error::{Error, ErrorKind};
use crate::turn::{Outcome, TurnKind, TurnSpec};
use crate::worker::checks::CheckResult;
use crate::worker::{Judgement, Review, Step, WorkerConfig, WorkerState, WorkerStep};

pub const PROTOCOL_VERSION: u32 = 2;

/// Requests carry whole prompts (task files), so the bound is generous; anything larger
/// is refused without being buffered.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// What a client asks of the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first line of every connection.
    Hello {
        version: u32,
    },
    Status,
    /// Set the session up (a new conversation, or changes to the worker's) and, with
    /// `warm`, answer once claude has answered `initialize`.
    Start(StartSpec),
    /// Queue one turn; the connection then streams its events and ends with
    /// [`Event::TurnEnded`].
    Send(TurnSpec),
    /// Interrupt the running turn, or the named one (a queued turn is dropped).
    Interrupt {
        turn: Option<u64>,
    },
    /// Compact the conversation now (`/compact`), keeping what `instructions` name;
    /// streamed like a turn.
    Compact {
        #[serde(default)]
        instructions: Option<String>,
    },
    /// Switch model between turns, keeping the conversation.
    SetModel {
        model: String,
    },
    /// claude's own count of the conversation's context (`get_context_usage`), between
    /// turns.
    Context,
    /// A new claude process on the same conversation, after the running turn; answered
    /// with the status once the new one runs.
    Restart {
        /// The claude binary to start, as the client resolved it.
        #[serde(default)]
        claude: Option<PathBuf>,
    },
    /// Stream every event after `after_seq` (from the log, then live).
    Follow {
        after_seq: Option<u64>,
    },
    /// The person's answer to claude's request to use a tool, sent on the connection
    /// that streams the turn.
    Permission {
        request_id: String,
        allow: bool,
        /// Allow this tool for the rest of the session without asking.
        #[serde(default)]
        always: bool,
        /// Why not, told to claude.
        #[serde(default)]
        message: Option<String>,
    },
    /// One worker step (plan, implement, nudge). With `wait`, the connection streams
    /// the step's events and ends with [`Event::Judged`]; without, it ends once queued.
    Worker(WorkerRequest),
    /// `leash loop` ends with `exit_code` on this task: the daemon tells it in the
    /// event log (`loop_ended`), where `report` and `status` read it.
    LoopEnded {
        task_id: String,
        exit_code: u8,
    },
    Stop,
}

/// What the daemon needs to set a session up: the client resolves it where the user
/// runs the command (its directory, its environment, its config file), the daemon
/// alone writes it into the worker's session record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSpec {
    /// Begin a new conversation even if the worker has one.
    pub fresh: bool,
    /// Answer only once claude runs and has answered `initialize`.
    pub warm: bool,
    /// What a new conversation is made of.
    pub new: NewSession,
    /// Changes `session start` asks for (all optional); an autostart asks none.
    pub change: SessionChange,
}

/// A new conversation's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    /// Where claude works: the repository root, else the current directory.
    pub cwd: PathBuf,
    pub claude: PathBuf,
    pub model: String,
    pub permission_allow: Vec<String>,
    /// `--allowedTools` from the first spawn (a worker's implementing tools).
    pub allowed_tools: Vec<String>,
    /// `session fork`: the conversation starts as a copy of this one.
    #[serde(default)]
    pub fork_of: Option<ForkOf>,
    /// `session fork`: the worker starts with this state (the original's).
    #[serde(default)]
    pub worker: Option<Box<WorkerState>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub step: WorkerStep,
    pub config: WorkerConfig,
    pub wait: bool,
    /// As [`TurnSpec::interactive`].
    #[serde(default)]
    pub interactive: bool,
    /// As [`TurnSpec::claude`]; `None` keeps the binary the session has.
    #[serde(default)]
    pub claude: Option<PathBuf>,
    /// The task the command works on (`leash loop` after its plan); a step for a task
    /// that was replaced meanwhile is refused. `None`: the worker's task, whatever it is.
    #[serde(default)]
    pub task_id: Option<String>,
}

/// Non-event answers from the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        version: u32,
        daemon_pid: u32,
        worker: String,
    },
    Status(Box<SessionStatus>),
    /// The request was accepted; the first line of `send` and of each worker step.
    Queued {
        /// The turn's (or step's) id.
        turn: u64,
        /// Turns running or waiting before it.
        ahead: usize,
    },
    /// A request was done; what the daemon did, in a sentence.
    Ok {
        message: String,
    },
    Error {
        kind: ErrorKind,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
}

impl Reply {
    pub fn error(err: &Error) -> Reply {
        Reply::Error {
            kind: err.kind,
            message: err.message.clone(),
            hint: err.hint.clone(),
        }
    }

    /// The error an error reply carries.
    pub fn into_error(self) -> Result<Reply, Error> {
        match self {
            Reply::Error {
                kind,
                message,
                hint,
            } => Err(Error {
                kind,
                message,
                hint,
            }),
            reply => Ok(reply),
        }
    }
}

/// claude's own message in a `claude` event line, as the text it came in: what a
/// client that only shows such a line reads of it, without building the rest.
pub fn claude_msg(line: &str) -> Option<&serde_json::value::RawValue> {
    #[derive(Deserialize)]
    struct Claude<'a> {
        #[serde(borrow)]
        msg: &'a serde_json::value::RawValue,
    }
    serde_json::from_str::<Claude>(line).ok().map(|c| c.msg)
}

/// What happened in a session, in order: an envelope (where the event sits in the
/// worker's log, when, and which turn it belongs to) around what happened. The body's
/// fields sit beside the envelope's in the JSON, one flat object with a `type`.
///
/// `M` is the type of claude's own message: the daemon writes borrowed raw JSON so a
/// line from claude passes through byte for byte; readers get a [`Value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event<M = Value> {
    #[serde(flatten)]
    pub body: EventBody<M>,
    /// The event's place in the worker's log.
    pub seq: u64,
    /// When it happened, Unix milliseconds.
    pub ts: u64,
    /// The turn (or worker step) it belongs to; `null` outside a turn.
    pub turn: Option<u64>,
}

/// What happened; each variant is one `type` of event line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody<M = Value> {
    /// A turn begins (a prompt goes to claude).
    TurnStarted {
        kind: TurnKind,
        /// The prompt as sent.
        prompt: String,
        /// The turn continues one that was cut off after claude had its prompt: the
        /// prompt tells claude to continue (absent in logs written before leash said so).
        #[serde(default)]
        continuation: bool,
    },
    /// A line claude wrote on stdout, untouched.
    Claude {
        /// claude's own stream-json object (`system`/`init`, `system`/`api_retry`,
        /// `assistant`, `user`, `result`, `control_request`, and any type claude adds).
        msg: M,
    },
    /// A line claude wrote on stderr.
    Stderr { line: String },
    /// claude asks to use a tool and the person at the turn's terminal decides: the
    /// answer (a `permission` request) goes on the connection that streams the turn.
    PermissionAsked {
        /// What the answer names.
        request_id: String,
        /// The tool claude wants to use.
        tool: String,
        /// What claude wants to run it with.
        input: Value,
    },
    /// claude began compacting the conversation (it may be silent for minutes).
    Compacting,
    /// claude compacted the conversation.
    Compacted { compaction: Compaction },
    /// claude could not compact the conversation.
    CompactFailed {
        /// claude's reason (`compact_error`).
        reason: String,
    },
    /// claude reported the provider's rate limit (its `rate_limit_event`, relayed as
    /// a `claude` event too): how much of which window is used, and when it resets.
    RateLimit { limit: RateLimit },
    /// A worker's step waits before its next nudge (a `notice` says why), until then:
    /// Unix time in ms.
    Waiting { until_ms: u64 },
    /// One of the worker's checks begins (at its new commit, in order).
    CheckStarted {
        /// The check's shell command.
        command: String,
    },
    /// The worker's checks ran at its new commit, in order, up to the first that failed.
    ChecksRan { checks: Vec<CheckResult> },
    /// The plan model reviewed the worker's committed work.
    Reviewed { review: Review },
    /// The nudges ran out and the task was planned again.
    Rescoped {
        /// Which rescope of the task, of how many allowed.
        number: u32,
        of: u32,
        /// The new plan.
        plan: String,
    },
    /// Something the daemon did or saw: a respawn, a retry, a dropped client.
    Notice {
        level: Level,
        message: String,
        /// The fault it tells of, when it tells of one (`leash report` counts them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<Fault>,
    },
    /// A worker step begins, on this task (`turn` is the step's id).
    StepStarted {
        step: Step,
        /// The task the step works on (a plan's new task has its new id).
        task_id: Option<String>,
        /// The task, verbatim.
        task: Option<String>,
        /// The machine the step runs on (`gethostname()`); absent in logs written
        /// before leash said so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A turn's end; the last line of `session send`.
    TurnEnded { outcome: Outcome },
    /// A worker step's end: the verdict on the work and the phase after it; the last
    /// line of `plan`, `implement`, `nudge` (and of each step of `loop`).
    Judged { judgement: Judgement },
    /// `leash loop` ended on this task with this exit code, the one its caller saw (a
    /// loop that died on claude, its daemon or its setup leaves no judgement saying so).
    LoopEnded { task_id: String, exit_code: u8 },
    /// `leash land` moved the target to `commit`, which holds the task's work.
    Landed {
        task_id: String,
        /// The target's commit that holds the task's work.
        commit: String,
        /// The target branch.
        target: String,
    },
}

impl<M> EventBody<M> {
    /// What `turn` means on this line, for docs/json.md: whether it is always set, and
    /// what it names.
    pub fn turn_meaning(kind: &str) -> (bool, &'static str) {
        match kind {
            "turn_started" | "turn_ended" => (true, "The turn (or worker step) id."),
            "judged" => (true, "The step id."),
            "permission_asked" => (false, "The turn it belongs to."),
            "checks_ran" | "check_started" | "reviewed" | "rescoped" => {
                (false, "The step it belongs to.")
            }
            "step_started" => (true, "The step id."),
            "loop_ended" => (false, "Always `null`: the loop ended between steps."),
            _ => (false, "The turn it belongs to; `null` outside a turn."),
        }
    }
}

/// What went wrong on a worker's way through a task, as `leash report` counts and
/// draws it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// claude died or hung during a turn and was restarted to continue it.
    Crash,
    /// The daemon died (killed, out of memory, a reboot) and a new one took over.
    DaemonRestart,
    /// The conversation was compacted (by claude near its window, or by leash).
    Compaction,
    /// The conversation was full and went on in a new one.
    HandOff,
    /// The API failed (429/529/5xx) and the turn was sent again after a wait.
    ProviderError,
    /// The task spent its budget.
    Budget,
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Routine: a spawn, a switch. Shown with `-v`.
    Info,
    /// Something went wrong and leash handled it: a crash, a retry, a dropped client.
    Warn,
}

/// Anything the daemon sends: clients parse a line into this.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ServerLine {
    Event(Event),
    Reply(Reply),
}

/// The worker's session as its daemon sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionStatus {
    pub worker: String,
    pub state: SessionState,
    pub daemon_pid: u32,
    /// `null` while no claude runs.
    pub claude_pid: Option<u32>,
    /// The claude binary that runs, or runs next (the latest command's choice).
    pub claude: Option<PathBuf>,
    /// The conversation: passed to claude as `--session-id`, later `--resume`.
    pub session_id: String,
    /// The model claude reported in its latest init line.
    pub model: Option<String>,
    /// The model leash asked for (an alias such as `sonnet`).
    pub requested_model: Option<String>,
    /// claude's permission mode (as it reported it, else as asked for).
    pub permission_mode: Option<String>,
    /// Where claude works.
    pub cwd: PathBuf,
    /// The turn or step running now.
    pub current_turn: Option<u64>,
    /// The worker step running now (`land`: a landing under way); `null` while none
    /// runs.
    #[serde(default)]
    pub step: Option<Step>,
    /// Turns and steps waiting behind it.
    pub queued: usize,
    /// Turns run in this conversation.
    pub turns: u64,
    /// What the conversation's turns cost, as claude reported it.
    pub cost_usd: f64,
    /// How full the conversation is, in tokens, after claude's last message.
    pub context_tokens: Option<u64>,
    /// The model's context window, when claude told it.
    pub context_window: Option<u64>,
    /// Compactions of this conversation.
    pub compactions: u32,
    pub last_compaction: Option<Compaction>,
    /// Conversations this worker retired because they were full, oldest first.
    pub previous_session_ids: Vec<String>,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The event log (`leash session logs`).
    pub log: PathBuf,
    /// Set when leash gave up on claude (repeated crashes); `session start` retries.
    pub failure: Option<String>,
    /// The provider's rate limit, as claude reported it last (only with subscription
    /// or gateway auth: an API key gets no such reports).
    pub rate_limit: Option<RateLimit>,
    /// Until when (Unix milliseconds) leash waits for a rate limit to reset before it
    /// sends the refused turn again; `null` when it does not wait.
    pub rate_limited_until: Option<u64>,
    /// What claude's process uses in memory (resident set, from /proc), while it runs.
    pub claude_rss_bytes: Option<u64>,
    /// The machine the daemon runs on (`gethostname()`); `null` when it cannot tell.
    #[serde(default)]
    pub host: Option<String>,
    /// Until when (Unix milliseconds) the running step pauses before its next turn
    /// (between nudges); `null` while it works or nothing runs. `state` stays `busy`.
    #[serde(default)]
    pub waiting_until_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// No claude child yet; one is spawned for the next turn.
    Cold,
    /// claude runs and waits for a turn.
    Idle,
    /// A turn or step runs.
    Busy,
    /// leash gave up on claude after repeated crashes; `session start` tries again.
    Failed,
    /// No daemon runs (`session list` only).
    Stopped,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionState::Cold => "cold",
            SessionState::Idle => "idle",
            SessionState::Busy => "busy",
            SessionState::Failed => "failed",
            SessionState::Stopped => "stopped",
        })
    }
}

/// Reads one request line, or says in one line what is wrong with it.
pub fn decode_request(line: &[u8]) -> Result<Request, Error> {
    serde_json::from_slice(line).map_err(|e| {
        Error::usage(format!("malformed request: {e}"))
            .hint("send one JSON object per line, as docs/json.md and protocol.rs describe")
    })
}

/// Serializes one protocol line, newline included.
pub fn to_line<T: Serialize>(value: &T) -> String {
    // Our own types hold only strings, numbers, maps and already-valid raw JSON, so
    // serialization cannot fail.
    let mut line = serde_json::to_string(value).unwrap_or_else(|e| {
        format!(
            r#"{{"type":"error","kind":"internal","message":{}}}"#,
            Value::String(e.to_string())
        )
    });
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_claude_lines_pass_through_untouched() {
        let raw = r#"{"type":"assistant","zeta":1,"alpha":{"b":[1,2]},"new_field":"kept"}"#;
        let msg: &serde_json::value::RawValue = serde_json::from_str(raw).unwrap();
        let line = to_line(&Event {
            seq: 7,
            ts: 1,
            turn: Some(3),
            body: EventBody::Claude { msg },
        });
        assert!(line.contains(raw), "{line}");
        let back: ServerLine = serde_json::from_str(&line).unwrap();
        let ServerLine::Event(Event {
            seq,
            body: EventBody::Claude { msg },
            ..
        }) = back
        else {
            panic!("not a claude event: {line}");
        };
        assert_eq!(seq, 7);
        assert_eq!(msg["new_field"], "kept");
    }

    #[test]
    fn an_event_is_one_flat_object_with_its_envelope() {
        let line = to_line(&Event::<Value> {
            seq: 3,
            ts: 40,
            turn: None,
            body: EventBody::Notice {
                level: Level::Warn,
                message: "m".into(),
                fault: None,
            },
        });
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "notice", "seq": 3, "ts": 40, "turn": null, "level": "warn", "message": "m"})
        );
        let compacting = to_line(&Event::<Value> {
            seq: 4,
            ts: 41,
            turn: Some(2),
            body: EventBody::Compacting,
        });
        assert_eq!(
            compacting,
            "{\"type\":\"compacting\",\"seq\":4,\"ts\":41,\"turn\":2}\n"
        );
        let back: Event = serde_json::from_str(&compacting).unwrap();
        assert_eq!(back.body, EventBody::Compacting);
    }

    #[test]
    fn replies_and_events_are_told_apart() {
        let line = to_line(&Reply::Queued { turn: 4, ahead: 1 });
        assert_eq!(
            serde_json::from_str::<ServerLine>(&line).unwrap(),
            ServerLine::Reply(Reply::Queued { turn: 4, ahead: 1 })
        );
    }
}

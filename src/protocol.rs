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

use crate::error::{Error, ErrorKind};
use crate::worker::{Judgement, WorkerConfig};

pub const PROTOCOL_VERSION: u32 = 1;

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
    /// Spawn claude if needed and answer once it has answered `initialize`.
    Warmup,
    /// Queue one turn; the connection then streams its events and ends with
    /// [`Event::TurnEnded`].
    Send(TurnSpec),
    /// Interrupt the running turn, or the named one (a queued turn is dropped).
    Interrupt {
        turn: Option<u64>,
    },
    /// Switch model between turns, keeping the conversation.
    SetModel {
        model: String,
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
    Stop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub step: WorkerStep,
    pub config: WorkerConfig,
    pub wait: bool,
    /// As [`TurnSpec::interactive`].
    #[serde(default)]
    pub interactive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerStep {
    Plan {
        task: String,
    },
    /// Start the implement phase, or judge it again if it is under way (`restart`
    /// starts it over).
    Implement {
        restart: bool,
    },
    /// Nudges queued while another waits are merged into it, so these are lists.
    Nudge {
        reasons: Vec<String>,
        /// The git hooks that fired the nudge.
        events: Vec<String>,
    },
}

/// One turn as a client wants it run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSpec {
    pub prompt: String,
    #[serde(default)]
    pub kind: TurnKind,
    /// Switch to this model before the turn (kept for later turns).
    #[serde(default)]
    pub model: Option<String>,
    /// Switch to this permission mode before the turn (kept for later turns).
    #[serde(default)]
    pub permission_mode: Option<String>,
    /// The client has a person at a terminal who answers claude's tool requests.
    #[serde(default)]
    pub interactive: bool,
    /// How often leash itself re-sends the turn after claude gave up on a provider
    /// error (429/529/5xx), and the backoff between tries.
    #[serde(default)]
    pub retry: RetryPolicy,
}

impl TurnSpec {
    pub fn user(prompt: impl Into<String>) -> TurnSpec {
        TurnSpec {
            prompt: prompt.into(),
            kind: TurnKind::User,
            model: None,
            permission_mode: None,
            interactive: false,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    #[default]
    User,
    Plan,
    Implement,
    Nudge,
}

impl std::fmt::Display for TurnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TurnKind::User => "user",
            TurnKind::Plan => "plan",
            TurnKind::Implement => "implement",
            TurnKind::Nudge => "nudge",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 0,
            base_delay_ms: 2_000,
            max_delay_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter over the upper half, so workers that hit
    /// the same rate limit do not retry in lockstep.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms);
        exp / 2 + fastrand::u64(0..=exp / 2)
    }
}

/// Non-event answers from the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        version: u32,
        daemon_pid: u32,
        worker: String,
    },
    Status(Box<SessionStatus>),
    /// The turn was accepted; `ahead` turns run before it.
    Queued {
        turn: u64,
        ahead: usize,
    },
    Ok {
        message: String,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Reply {
    pub fn error(err: &Error) -> Reply {
        Reply::Error {
            kind: err.kind,
            message: err.message.clone(),
        }
    }
}

/// What happened in a session, in order. `seq` increases by one per event for the
/// life of the worker's log; `ts` is Unix time in milliseconds.
///
/// `M` is the type of claude's own message: the daemon writes borrowed raw JSON so a
/// line from claude passes through byte for byte; readers get a [`Value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<M = Value> {
    TurnStarted {
        seq: u64,
        ts: u64,
        turn: u64,
        kind: TurnKind,
        prompt: String,
    },
    /// A line claude wrote on stdout, untouched.
    Claude {
        seq: u64,
        ts: u64,
        turn: Option<u64>,
        msg: M,
    },
    /// A line claude wrote on stderr.
    Stderr {
        seq: u64,
        ts: u64,
        turn: Option<u64>,
        line: String,
    },
    /// Something the daemon did or saw: a respawn, a retry, a dropped client.
    Notice {
        seq: u64,
        ts: u64,
        turn: Option<u64>,
        level: Level,
        message: String,
    },
    TurnEnded {
        seq: u64,
        ts: u64,
        turn: u64,
        outcome: Outcome,
    },
    /// The end of a worker step: the verdict on the work and the phase after it.
    Judged {
        seq: u64,
        ts: u64,
        turn: u64,
        judgement: Judgement,
    },
}

impl<M> Event<M> {
    pub fn seq(&self) -> u64 {
        match self {
            Event::TurnStarted { seq, .. }
            | Event::Claude { seq, .. }
            | Event::Stderr { seq, .. }
            | Event::Notice { seq, .. }
            | Event::TurnEnded { seq, .. }
            | Event::Judged { seq, .. } => *seq,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// How a turn ended; the last line of `leash session send --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: TurnStatus,
    pub exit_code: u8,
    pub turn: u64,
    /// claude's final text, when it gave one.
    pub result: Option<String>,
    /// Why the turn did not succeed, in one line.
    pub message: Option<String>,
    pub session_id: String,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
    pub api_error_status: Option<u16>,
    /// Provider-error retries leash spent on this turn.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Success,
    /// claude answered with an error result.
    Error,
    /// The API kept failing (429/529/5xx) after claude's and leash's retries.
    ProviderError,
    Interrupted,
    /// claude exited or could not be started during the turn.
    Crashed,
    /// claude went silent for longer than the silence timeout.
    Hung,
}

impl TurnStatus {
    pub fn error_kind(self) -> Option<ErrorKind> {
        match self {
            TurnStatus::Success => None,
            TurnStatus::ProviderError => Some(ErrorKind::Provider),
            TurnStatus::Interrupted => Some(ErrorKind::Interrupted),
            TurnStatus::Error | TurnStatus::Crashed | TurnStatus::Hung => {
                Some(ErrorKind::TurnFailed)
            }
        }
    }

    pub fn exit_code(self) -> u8 {
        self.error_kind().map_or(0, ErrorKind::exit_code)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub worker: String,
    pub state: SessionState,
    pub daemon_pid: u32,
    pub claude_pid: Option<u32>,
    pub session_id: String,
    /// The model claude reported in its latest init line.
    pub model: Option<String>,
    /// The model leash asked for (an alias such as `sonnet`).
    pub requested_model: Option<String>,
    pub permission_mode: Option<String>,
    pub cwd: PathBuf,
    pub current_turn: Option<u64>,
    pub queued: usize,
    pub turns: u64,
    pub cost_usd: f64,
    pub uptime_secs: u64,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// Set when leash gave up on claude (repeated crashes); `session start` retries.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// No claude child yet; one is spawned for the next turn.
    Cold,
    Idle,
    Busy,
    Failed,
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

/// The `type` of a JSON line, read without building the rest: most lines on a hot path
/// are only relayed, and parsing them whole would cost more than relaying them.
pub fn peek_type(line: &str) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Peek>(line).ok().map(|p| p.kind)
}

/// Reads one request line, or says in one line what is wrong with it.
pub fn decode_request(line: &[u8]) -> Result<Request, Error> {
    serde_json::from_slice(line).map_err(|e| Error::usage(format!("malformed request: {e}")))
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

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_claude_lines_pass_through_untouched() {
        let raw = r#"{"type":"assistant","zeta":1,"alpha":{"b":[1,2]},"new_field":"kept"}"#;
        let msg: &serde_json::value::RawValue = serde_json::from_str(raw).unwrap();
        let line = to_line(&Event::Claude {
            seq: 7,
            ts: 1,
            turn: Some(3),
            msg,
        });
        assert!(line.contains(raw), "{line}");
        let back: ServerLine = serde_json::from_str(&line).unwrap();
        let ServerLine::Event(Event::Claude { seq, msg, .. }) = back else {
            panic!("not a claude event: {line}");
        };
        assert_eq!(seq, 7);
        assert_eq!(msg["new_field"], "kept");
    }

    #[test]
    fn replies_and_events_are_told_apart() {
        let line = to_line(&Reply::Queued { turn: 4, ahead: 1 });
        assert_eq!(
            serde_json::from_str::<ServerLine>(&line).unwrap(),
            ServerLine::Reply(Reply::Queued { turn: 4, ahead: 1 })
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay_ms: 100,
            max_delay_ms: 1_000,
        };
        for attempt in 0..30 {
            let d = policy.delay_ms(attempt);
            let cap = (100u64 << attempt.min(20)).min(1_000);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d}");
        }
    }
}

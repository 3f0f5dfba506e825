//! A turn: one prompt in the worker's conversation and everything until its result.
//! What a client asks for ([`TurnSpec`]) and how it ended ([`Outcome`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::retry::RetryPolicy;

/// Why a turn was sent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// `session send`.
    #[default]
    User,
    /// A worker's planning turn.
    Plan,
    /// A worker's implementing turn.
    Implement,
    /// A worker's nudge.
    Nudge,
    /// `session compact`, or leash compacting before a phase.
    Compact,
    /// A worker's review of its committed work (read-only, on the plan model).
    Review,
    /// A worker's landing turn: its branch, handed back by `leash land`, conflicts with
    /// the target or fails the landing checks on it.
    Land,
    /// Judging the green attempts of a best-of-N loop (read-only, on the plan model).
    Judge,
}

impl std::fmt::Display for TurnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TurnKind::User => "user",
            TurnKind::Plan => "plan",
            TurnKind::Implement => "implement",
            TurnKind::Nudge => "nudge",
            TurnKind::Compact => "compact",
            TurnKind::Review => "review",
            TurnKind::Land => "land",
            TurnKind::Judge => "judge",
        })
    }
}

/// What claude runs a turn with; what is `None` stays as it is. Each is kept for the
/// turns after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnSettings {
    /// Switch to this model before the turn.
    #[serde(default)]
    pub model: Option<String>,
    /// Switch to this permission mode before the turn.
    #[serde(default)]
    pub permission_mode: Option<String>,
    /// claude's `--allowedTools`, which it takes only at spawn: a change restarts
    /// claude on the same conversation before the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
}

/// One turn as a client wants it run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSpec {
    pub prompt: String,
    #[serde(default)]
    pub kind: TurnKind,
    #[serde(flatten)]
    pub settings: TurnSettings,
    /// The client has a person at a terminal who answers claude's tool requests.
    #[serde(default)]
    pub interactive: bool,
    /// How often leash itself re-sends the turn after claude gave up on a provider
    /// error (429/529/5xx), and the backoff between tries.
    #[serde(default = "no_retries")]
    pub retry: RetryPolicy,
    /// The claude binary the client resolved (flag, environment, config, PATH): a
    /// spawn for this turn uses it.
    #[serde(default)]
    pub claude: Option<PathBuf>,
    /// When claude dies during the turn, restart it with `--resume` and tell it to
    /// continue (within the crash limit), instead of ending the turn as crashed.
    #[serde(default)]
    pub continue_on_crash: bool,
    /// The turn goes on from one that was cut off (its daemon or claude died, it was
    /// interrupted), whose prompt this is; `prompt` tells claude to continue. When
    /// claude's conversation does not hold this prompt (claude never answered it), it is
    /// sent instead, as itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_off_prompt: Option<String>,
    /// Where claude's transcript ended when the cut-off prompt was sent: it is looked
    /// for from there on (`None`: anywhere, as a client that cannot know asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_off_since: Option<u64>,
}

fn no_retries() -> RetryPolicy {
    RetryPolicy::NONE
}

impl TurnSpec {
    pub fn user(prompt: impl Into<String>) -> TurnSpec {
        TurnSpec {
            prompt: prompt.into(),
            kind: TurnKind::User,
            settings: TurnSettings::default(),
            interactive: false,
            retry: RetryPolicy::NONE,
            claude: None,
            continue_on_crash: false,
            cut_off_prompt: None,
            cut_off_since: None,
        }
    }
}

/// How a turn ended; the last line of `leash session send --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    pub status: TurnStatus,
    /// The exit code of `session send` for this turn.
    pub exit_code: u8,
    /// The turn's id.
    pub turn: u64,
    /// claude's final text, when it gave one.
    pub result: Option<String>,
    /// Why the turn did not succeed, in one line.
    pub message: Option<String>,
    /// The conversation it ran in.
    pub session_id: String,
    /// The model claude reported (else the one asked for).
    pub model: Option<String>,
    /// What the turn cost, retries included: its share of claude's running total.
    pub cost_usd: Option<f64>,
    /// From the turn's start to its end, retries included.
    pub duration_ms: u64,
    /// The HTTP status of a provider error (429, 529, 5xx).
    pub api_error_status: Option<u16>,
    /// Provider-error retries leash spent on this turn.
    pub retries: u32,
}

/// How a turn came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    /// claude answered.
    Success,
    /// claude answered with an error result.
    Error,
    /// The API kept failing (429/529/5xx) after claude's and leash's retries.
    ProviderError,
    /// Ctrl-C, `session interrupt`, or a stop.
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

    /// How a person reads it: "turn 3 crashed".
    pub fn describe(self) -> &'static str {
        match self {
            TurnStatus::Success => "succeeded",
            TurnStatus::Error => "failed",
            TurnStatus::ProviderError => "hit a provider error",
            TurnStatus::Interrupted => "was interrupted",
            TurnStatus::Crashed => "crashed",
            TurnStatus::Hung => "hung",
        }
    }
}

//! What the fake API answers: one scripted reply per request.

use super::*;

/// One scripted answer to one `/v1/messages` request.
#[derive(Clone)]
pub enum Reply {
    /// A plain assistant text answer, `stop_reason: "end_turn"`.
    Text(String),
    /// Text streamed in chunks, sleeping `delay_per_chunk` before each chunk
    /// (for interrupt tests). Non-streaming requests get the joined text after
    /// the total delay.
    SlowText {
        chunks: Vec<String>,
        delay_per_chunk: Duration,
    },
    /// A `tool_use` block (id `toolu_fake_<n>`), `stop_reason: "tool_use"`. The CLI
    /// runs the tool and sends a new request carrying the `tool_result`; the next
    /// queued reply answers that one.
    ToolUse { name: String, input: Value },
    /// An HTTP error with Anthropic's error JSON:
    /// `{"type":"error","error":{"type":<error_type>,"message":<message>}}`.
    /// `retry_after` (seconds) adds a `retry-after` header.
    Error {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<u64>,
    },
    /// HTTP 200 SSE that streams `text` and then an `event: error` (mid-stream
    /// failure, as the real API does when it becomes overloaded while streaming);
    /// a non-streaming request gets HTTP 529 with the error JSON. CLI 2.1.332
    /// answers a mid-stream error by retrying the turn once without streaming
    /// (`stream:false`, `max_tokens` 64000, even with `CLAUDE_CODE_MAX_RETRIES=0`),
    /// and that request takes the next queued reply.
    StreamError {
        text: String,
        error_type: String,
        message: String,
    },
    /// Wait before answering with the inner reply (before any response header).
    Delay(Duration, Box<Reply>),
    /// The inner reply, reporting this many input tokens in its usage (the size of
    /// the conversation as the API saw it).
    Usage(u64, Box<Reply>),
    /// Compute the reply from the request.
    Dynamic(ReplyFn),
}

impl Reply {
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Text(s.into())
    }
    pub fn slow<S: Into<String>>(
        chunks: impl IntoIterator<Item = S>,
        delay_per_chunk: Duration,
    ) -> Reply {
        Reply::SlowText {
            chunks: chunks.into_iter().map(Into::into).collect(),
            delay_per_chunk,
        }
    }
    pub fn tool_use(name: impl Into<String>, input: Value) -> Reply {
        Reply::ToolUse {
            name: name.into(),
            input,
        }
    }
    /// The `Bash` tool running `command`.
    pub fn bash(command: impl Into<String>) -> Reply {
        Reply::tool_use(
            "Bash",
            json!({"command": command.into(), "description": "run a command"}),
        )
    }
    /// An error with the type and message the real API uses for `status`
    /// (529 overloaded_error, 429 rate_limit_error, 500 api_error, ...).
    pub fn error(status: u16) -> Reply {
        let (error_type, message) = error_kind(status);
        Reply::Error {
            status,
            error_type: error_type.into(),
            message: message.into(),
            retry_after: None,
        }
    }
    /// A mid-stream `overloaded_error` after some text.
    pub fn stream_overloaded(text: impl Into<String>) -> Reply {
        Reply::StreamError {
            text: text.into(),
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        }
    }
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delay(delay, Box::new(reply))
    }
    /// `reply`, reporting `input_tokens` as the conversation's size.
    pub fn with_usage(input_tokens: u64, reply: Reply) -> Reply {
        Reply::Usage(input_tokens, Box::new(reply))
    }
    /// What the API answers a conversation that no longer fits.
    pub fn prompt_too_long() -> Reply {
        Reply::Error {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "prompt is too long: 1000123 tokens > 1000000 maximum".into(),
            retry_after: None,
        }
    }
    pub fn dynamic(f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::Dynamic(Arc::new(f))
    }
    /// The default turn reply: `echo: <last user text>`.
    pub fn echo(req: &RecordedRequest) -> Reply {
        Reply::Text(format!("echo: {}", last_user_text(req).unwrap_or_default()))
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Reply::Text(t) => format!("text {:?}", trunc(t, 60)),
            Reply::SlowText {
                chunks,
                delay_per_chunk,
            } => {
                format!("slow {} chunks x {:?}", chunks.len(), delay_per_chunk)
            }
            Reply::ToolUse { name, .. } => format!("tool_use {name}"),
            Reply::Error {
                status, error_type, ..
            } => format!("error {status} {error_type}"),
            Reply::StreamError { error_type, .. } => format!("stream error {error_type}"),
            Reply::Delay(d, r) => format!("after {d:?}: {}", r.describe()),
            Reply::Usage(n, r) => format!("{} (usage {n})", r.describe()),
            Reply::Dynamic(_) => "dynamic".into(),
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The error type and message of the real API for an HTTP status.
pub fn error_kind(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "Invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "Not found"),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    }
}

//! What the fake API was asked, as recorded, and how a request is classified.

use super::*;

/// How a request was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/messages` that answers a conversation turn (has `tools`).
    Turn,
    /// `POST /v1/messages` asking for a conversation summary (compaction).
    Compact,
    /// `POST /v1/messages` made by the CLI for itself (no `tools`).
    Side,
    /// Any other method or path.
    Other,
}

/// Markers of the CLI's compaction prompt (the last user message).
pub const COMPACT_MARKERS: &[&str] = &[
    "CRITICAL: Respond with TEXT ONLY",
    "Your task is to create a detailed summary of the conversation",
];

/// The default classifier for `POST /v1/messages` bodies (see the module docs).
pub fn classify(body: &Value) -> RequestKind {
    let last_user_text = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .map(|m| {
            blocks(m)
                .into_iter()
                .filter_map(|b| b.as_str().or_else(|| b.get("text")?.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    if COMPACT_MARKERS.iter().any(|m| last_user_text.contains(m)) {
        return RequestKind::Compact;
    }
    match body.get("tools").and_then(Value::as_array) {
        Some(tools) if !tools.is_empty() => RequestKind::Turn,
        _ => RequestKind::Side,
    }
}

/// The default reply to `Side` and `Compact` requests.
pub fn default_side_reply(req: &RecordedRequest) -> Reply {
    if req.kind == RequestKind::Compact {
        Reply::text(
            "<analysis>Fake analysis.</analysis>\n<summary>Fake summary of the conversation.</summary>",
        )
    } else {
        Reply::text("Fake reply")
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// 0-based arrival order over all requests (not reset by `clear_requests`).
    pub seq: usize,
    /// Arrival time since the server started.
    pub at: Duration,
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// Query string without `?`, e.g. `beta=true`.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub kind: RequestKind,
    pub model: Option<String>,
    /// The system prompt as text (blocks joined with `\n`).
    pub system: Option<String>,
    /// The `messages` array (`Value::Null` when absent).
    pub messages: Value,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    /// The raw body (lossy UTF-8).
    pub body: String,
    /// The parsed body (`Value::Null` when not JSON).
    pub json: Value,
    /// What the server answered (short description), for debugging.
    pub reply: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `role` of the last message.
    pub fn last_role(&self) -> Option<&str> {
        self.messages.as_array()?.last()?.get("role")?.as_str()
    }
    /// `tool_result` blocks in the last user message (as JSON).
    pub fn tool_results(&self) -> Vec<Value> {
        let Some(last) = self.messages.as_array().and_then(|m| m.last()) else {
            return vec![];
        };
        if last.get("role").and_then(Value::as_str) != Some("user") {
            return vec![];
        }
        blocks(last)
            .into_iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .cloned()
            .collect()
    }
}

fn blocks(msg: &Value) -> Vec<&Value> {
    match msg.get("content") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        _ => vec![],
    }
}

/// Tags whose whole `<tag>...</tag>` sections the CLI adds to user messages by
/// itself: reminders, and the records of local commands such as the `/model`
/// switch done by a `set_model` control request.
pub const CLI_TAGS: &[&str] = &[
    "system-reminder",
    "local-command-caveat",
    "command-name",
    "command-message",
    "command-args",
    "local-command-stdout",
    "local-command-stderr",
];

/// Removes every `<tag>...</tag>` section of the [`CLI_TAGS`] and trims.
pub fn strip_cli_sections(text: &str) -> String {
    let mut s = text.to_string();
    for tag in CLI_TAGS {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        while let Some(i) = s.find(&open) {
            let end = s[i..].find(&close).map_or(s.len(), |j| i + j + close.len());
            s.replace_range(i..end, "");
        }
    }
    s.trim().to_string()
}

/// The user's own text blocks in the latest user message that has any: text
/// blocks with `<system-reminder>` and local-command sections removed
/// ([`CLI_TAGS`]), empty blocks, `tool_result` and other non-text blocks, and the
/// CLI's `[Request interrupted by user]` notes skipped. Earlier user messages are
/// searched when the last one holds only tool results or reminders.
///
/// The CLI merges consecutive user messages into one: after failed turns (API
/// errors) or an interrupt, the last user message holds the texts of the
/// earlier turns too, one block each, oldest first.
pub fn user_texts(req: &RecordedRequest) -> Vec<String> {
    let Some(msgs) = req.messages.as_array() else {
        return vec![];
    };
    for msg in msgs.iter().rev() {
        if msg.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let texts: Vec<String> = blocks(msg)
            .into_iter()
            .filter_map(|b| match b {
                Value::String(s) => Some(s.as_str()),
                _ if b.get("type").and_then(Value::as_str) == Some("text") => {
                    b.get("text")?.as_str()
                }
                _ => None,
            })
            .map(strip_cli_sections)
            .filter(|t| !t.is_empty() && !t.starts_with("[Request interrupted by user"))
            .collect();
        if !texts.is_empty() {
            return texts;
        }
    }
    vec![]
}

/// The user's words of the current turn: the last of [`user_texts`].
pub fn last_user_text(req: &RecordedRequest) -> Option<String> {
    user_texts(req).pop()
}

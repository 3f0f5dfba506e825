//! claude's stream-json messages: typed for the fields leash reads, everything else
//! ignored here and passed through untouched by the daemon.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stdout line from claude.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    System(SystemMessage),
    Assistant(AssistantMessage),
    User(UserMessage),
    Result(ResultMessage),
    ControlRequest(IncomingControlRequest),
    ControlResponse(IncomingControlResponse),
    StreamEvent(StreamEventMessage),
    RateLimitEvent(RateLimitEvent),
    #[serde(other)]
    Other,
}

impl StreamMessage {
    /// One line, read by its `type` first and then straight into that type's struct.
    /// Deserializing the enum itself copies the whole line into a buffer before it
    /// reads a field (serde's internally tagged enums do), and claude's `init` and
    /// `result` lines are kilobytes, once every turn, on the path to the turn's answer.
    pub fn parse(line: &str) -> serde_json::Result<StreamMessage> {
        use serde_json::from_str;
        let kind = crate::framing::peek_type(line);
        Ok(match kind.as_deref() {
            Some("system") => StreamMessage::System(from_str(line)?),
            Some("assistant") => StreamMessage::Assistant(from_str(line)?),
            Some("user") => StreamMessage::User(from_str(line)?),
            Some("result") => StreamMessage::Result(from_str(line)?),
            Some("control_request") => StreamMessage::ControlRequest(from_str(line)?),
            Some("control_response") => StreamMessage::ControlResponse(from_str(line)?),
            Some("stream_event") => StreamMessage::StreamEvent(from_str(line)?),
            Some("rate_limit_event") => StreamMessage::RateLimitEvent(from_str(line)?),
            // Any other type, and a line with none: what the enum makes of it.
            _ => from_str(line)?,
        })
    }
}

/// What claude says of the provider's rate limits.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitEvent {
    #[serde(default)]
    pub rate_limit_info: super::limits::RateLimitInfo,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemMessage {
    #[serde(default)]
    pub subtype: String,
    pub session_id: Option<String>,
    pub model: Option<String>,
    #[serde(rename = "permissionMode")]
    pub permission_mode: Option<String>,
    /// `api_retry` fields.
    pub attempt: Option<u32>,
    pub max_retries: Option<u32>,
    pub retry_delay_ms: Option<f64>,
    pub error_status: Option<u16>,
    /// `status` lines: `"compacting"` while claude compacts, `null` when it ends.
    pub status: Option<String>,
    /// `status` lines that end a compaction: `"success"` or `"failed"`.
    pub compact_result: Option<String>,
    pub compact_error: Option<String>,
    /// `compact_boundary` lines.
    pub compact_metadata: Option<CompactMetadata>,
}

/// What a `compact_boundary` line says of the compaction.
#[derive(Debug, Clone, Deserialize)]
pub struct CompactMetadata {
    /// `auto` or `manual`.
    #[serde(default)]
    pub trigger: String,
    pub pre_tokens: Option<u64>,
    pub post_tokens: Option<u64>,
    /// What was kept word for word after the summary: the last reply and the new
    /// prompt. claude before 2.1.153 keeps nothing and drops the prompt of a turn that
    /// began with an auto-compaction.
    pub preserved_segment: Option<serde_json::Value>,
}

/// An assistant line read only for its usage, skipping its content.
#[derive(Debug, Clone, Deserialize)]
pub struct AssistantUsage {
    pub message: UsageOnly,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UsageOnly {
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssistantMessage {
    pub message: MessageBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserMessage {
    pub message: Option<MessageBody>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageBody {
    #[serde(default, deserialize_with = "content_blocks")]
    pub content: Vec<ContentBlock>,
    pub model: Option<String>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// The conversation's size as the API saw it for this message.
    pub fn context_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens
    }
}

impl MessageBody {
    /// claude reports API errors as assistant messages from the `<synthetic>` model; the
    /// turn's outcome says the same, so they are not the assistant's words.
    pub fn is_synthetic(&self) -> bool {
        self.model.as_deref() == Some("<synthetic>")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        #[serde(default)]
        is_error: bool,
    },
    #[serde(other)]
    Other,
}

/// `content` is a plain string in some user messages and a list of blocks elsewhere.
fn content_blocks<'de, D>(deserializer: D) -> Result<Vec<ContentBlock>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Blocks(Vec<ContentBlock>),
    }
    Ok(match Content::deserialize(deserializer)? {
        Content::Text(text) => vec![ContentBlock::Text { text }],
        Content::Blocks(blocks) => blocks,
    })
}

/// The line that ends a turn.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultMessage {
    #[serde(default)]
    pub subtype: String,
    #[serde(default)]
    pub is_error: bool,
    pub result: Option<String>,
    /// A running total: of the process (before 2.1.277), of the conversation after.
    pub total_cost_usd: Option<f64>,
    pub api_error_status: Option<u16>,
    pub terminal_reason: Option<String>,
    /// Per model, since the process began (carried over a resume from 2.1.277).
    #[serde(default, rename = "modelUsage")]
    pub model_usage: BTreeMap<String, ModelUsage>,
    /// Per model, since the previous result (2.1.309 and later).
    #[serde(default)]
    pub model_usage_since_last_result: Option<BTreeMap<String, ModelUsage>>,
}

/// What a result says of one model's use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelUsage {
    #[serde(rename = "costUSD")]
    pub cost_usd: Option<f64>,
    #[serde(rename = "contextWindow")]
    pub context_window: Option<u64>,
}

impl ResultMessage {
    /// What this result cost on its own, where claude says so (2.1.309 and later).
    pub fn own_cost(&self) -> Option<f64> {
        let since_last = self.model_usage_since_last_result.as_ref()?;
        Some(since_last.values().filter_map(|u| u.cost_usd).sum())
    }

    /// The context window of `model` (claude's model id), or of the only model used.
    pub fn context_window(&self, model: Option<&str>) -> Option<u64> {
        let usage = match model.and_then(|m| self.model_usage.get(m)) {
            Some(usage) => usage,
            None if self.model_usage.len() == 1 => self.model_usage.values().next()?,
            None => return None,
        };
        usage.context_window
    }

    /// claude reports provider failures as `subtype: "success"` with `is_error: true`
    /// and an `API Error: ...` text. 2.1.332 keeps `api_error_status` (429, 529, 5xx)
    /// even after its own retries ran out; older versions left it null then, so the
    /// text counts as well.
    pub fn is_provider_error(&self) -> bool {
        if !self.is_error {
            return false;
        }
        let status_says = self
            .api_error_status
            .is_some_and(|s| s == 429 || s == 529 || (500..600).contains(&s));
        let text_says = self
            .result
            .as_deref()
            .is_some_and(|t| t.trim_start().starts_with("API Error"));
        status_says || text_says
    }

    /// The conversation no longer fits: the API refused it as too long and claude's own
    /// compaction could not help (`prompt_too_long`), or compaction failed before the
    /// turn (`blocking_limit`). Resuming replays the same transcript: only a new
    /// conversation recovers. Older CLIs leave `terminal_reason` out; their 400 says so.
    pub fn is_overflow(&self) -> bool {
        if !self.is_error {
            return false;
        }
        let reason_says = matches!(
            self.terminal_reason.as_deref(),
            Some("prompt_too_long" | "blocking_limit")
        );
        let text_says = self.api_error_status == Some(400)
            && self
                .result
                .as_deref()
                .is_some_and(|t| t.to_lowercase().contains("prompt is too long"));
        reason_says || text_says
    }

    /// Why the turn ended badly, in claude's own terms (never its `subtype`, which
    /// says `success` for most errors).
    pub fn error_reason(&self) -> String {
        let mut parts = Vec::new();
        if let Some(status) = self.api_error_status {
            parts.push(format!("HTTP {status}"));
        }
        if let Some(reason) = self
            .terminal_reason
            .as_deref()
            .filter(|r| *r != "completed")
        {
            parts.push(reason.to_string());
        }
        if parts.is_empty() {
            "no reason given".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// An interrupt ends a turn with `aborted_streaming`, or `aborted_tools` when it
    /// lands while a tool runs.
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self.terminal_reason.as_deref(),
            Some("aborted_streaming" | "aborted_tools")
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IncomingControlRequest {
    pub request_id: String,
    #[serde(default)]
    pub request: Value,
}

impl IncomingControlRequest {
    pub fn subtype(&self) -> &str {
        self.request
            .get("subtype")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IncomingControlResponse {
    pub response: ControlResponseBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlResponseBody {
    #[serde(default)]
    pub subtype: String,
    #[serde(default)]
    pub request_id: String,
    pub error: Option<String>,
    pub response: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamEventMessage {
    #[serde(default)]
    pub event: Value,
}

impl StreamEventMessage {
    /// The text of a `content_block_delta` partial message, if this is one.
    pub fn text_delta(&self) -> Option<&str> {
        let delta = self.event.get("delta")?;
        (delta.get("type")?.as_str()? == "text_delta")
            .then(|| delta.get("text")?.as_str())
            .flatten()
    }
}

/// Control requests leash sends to claude.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum ControlRequest<'a> {
    Initialize,
    Interrupt,
    SetModel { model: &'a str },
    SetPermissionMode { mode: &'a str },
}

/// Any control request, as the control protocol has it: its `subtype` and the fields
/// beside it (`set_permission_mode` with `{"mode": "plan"}`, `get_context_usage` with
/// none). What claude answers is the `response` of its `control_response`.
#[derive(Debug, Clone, Serialize)]
pub struct ControlAsk {
    pub subtype: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

impl ControlAsk {
    /// `fields` is an object (`json!({"mode": mode})`); anything else is no fields.
    pub fn new(subtype: &str, fields: Value) -> ControlAsk {
        let fields = match fields {
            Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        ControlAsk {
            subtype: subtype.to_string(),
            fields,
        }
    }
}

/// The stdin line for one user turn.
pub fn user_line(text: &str) -> String {
    let mut line = serde_json::json!({
        "type": "user",
        "message": {"role": "user", "content": text},
    })
    .to_string();
    line.push('\n');
    line
}

pub fn control_request_line(request_id: &str, request: &impl Serialize) -> String {
    let mut line = serde_json::json!({
        "type": "control_request",
        "request_id": request_id,
        "request": request,
    })
    .to_string();
    line.push('\n');
    line
}

/// The answer to a control request claude sent us; `request_id` sits inside `response`.
pub fn control_response_line(request_id: &str, result: Result<Value, &str>) -> String {
    let response = match result {
        Ok(body) => serde_json::json!({
            "subtype": "success",
            "request_id": request_id,
            "response": body,
        }),
        Err(error) => serde_json::json!({
            "subtype": "error",
            "request_id": request_id,
            "error": error,
        }),
    };
    let mut line =
        serde_json::json!({"type": "control_response", "response": response}).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> StreamMessage {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn unknown_types_and_fields_are_tolerated() {
        assert!(matches!(
            parse(r#"{"type":"brand_new","x":1}"#),
            StreamMessage::Other
        ));
        let StreamMessage::System(init) = parse(
            r#"{"type":"system","subtype":"init","session_id":"s","model":"m","permissionMode":"plan","extra":{"a":1}}"#,
        ) else {
            panic!()
        };
        assert_eq!(init.permission_mode.as_deref(), Some("plan"));
    }

    #[test]
    fn provider_errors_are_recognised_by_status_or_text() {
        let StreamMessage::Result(r) = parse(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 Overloaded","api_error_status":null}"#,
        ) else {
            panic!()
        };
        assert!(r.is_provider_error());
        let StreamMessage::Result(r) = parse(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"terminal_reason":"aborted_streaming"}"#,
        ) else {
            panic!()
        };
        assert!(!r.is_provider_error());
        assert!(r.is_interrupted());
    }

    #[test]
    fn user_content_may_be_a_string_or_blocks() {
        let StreamMessage::User(u) = parse(
            r#"{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"}}"#,
        ) else {
            panic!()
        };
        assert!(
            matches!(&u.message.unwrap().content[0], ContentBlock::Text { text } if text.contains("interrupted"))
        );
        let StreamMessage::User(u) = parse(
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}}"#,
        ) else {
            panic!()
        };
        assert!(matches!(
            u.message.unwrap().content[0],
            ContentBlock::ToolResult { is_error: false }
        ));
    }

    #[test]
    fn control_lines_have_the_documented_shape() {
        let line = control_request_line("r1", &ControlRequest::SetModel { model: "opus" });
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request"]["subtype"], "set_model");
        assert_eq!(v["request"]["model"], "opus");
        let line = control_response_line("r2", Err("nope"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["response"]["request_id"], "r2");
        assert_eq!(v["response"]["subtype"], "error");
    }
}

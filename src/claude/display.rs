//! What one of claude's stream-json lines says to a person: the one place outside the
//! session where claude's messages are read, for the live printer and the log alike.

use serde::Deserialize;
use serde_json::Value;

use super::messages::{ContentBlock, StreamMessage};

/// What a line of claude's says.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// An assistant message: its words and the tools it uses, in order. A
    /// `synthetic` one is claude's report of an API error, not the assistant's words.
    Message {
        parts: Vec<Part>,
        output_tokens: u64,
        synthetic: bool,
    },
    /// Tool results came back (a user line).
    ToolsDone,
    /// A piece of the assistant's text as it streams (partial messages).
    Piece(String),
    /// A turn begins on this model and permission mode.
    Init {
        model: Option<String>,
        permission_mode: Option<String>,
    },
    /// claude retries an API request by itself.
    Retry {
        attempt: u32,
        max_retries: u32,
        delay_ms: f64,
        status: Option<u16>,
    },
    /// The turn's result.
    Result {
        is_error: bool,
        cost_usd: Option<f64>,
        text: Option<String>,
    },
    /// Anything else claude wrote.
    Other,
}

/// A piece of an assistant message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Tool { name: String, input: Value },
}

/// Reads one of claude's lines (as relayed in a `claude` event).
pub fn said(msg: &Value) -> Said {
    StreamMessage::deserialize(msg).map_or(Said::Other, of)
}

/// Reads one of claude's lines from its text, without building a [`Value`] of it: what
/// a turn's live printer does with every line claude writes.
pub fn said_in(line: &str) -> Said {
    StreamMessage::parse(line).map_or(Said::Other, of)
}

fn of(message: StreamMessage) -> Said {
    match message {
        StreamMessage::Assistant(assistant) => {
            let body = assistant.message;
            let synthetic = body.is_synthetic();
            Said::Message {
                output_tokens: body.usage.as_ref().map_or(0, |u| u.output_tokens),
                parts: body
                    .content
                    .into_iter()
                    .filter_map(|block| match block {
                        ContentBlock::Text { text } => Some(Part::Text(text)),
                        ContentBlock::ToolUse { name, input } => Some(Part::Tool { name, input }),
                        _ => None,
                    })
                    .collect(),
                synthetic,
            }
        }
        StreamMessage::User(_) => Said::ToolsDone,
        StreamMessage::StreamEvent(event) => match event.text_delta() {
            Some(delta) => Said::Piece(delta.to_string()),
            None => Said::Other,
        },
        StreamMessage::System(system) if system.subtype == "init" => Said::Init {
            model: system.model,
            permission_mode: system.permission_mode,
        },
        StreamMessage::System(system) if system.subtype == "api_retry" => Said::Retry {
            attempt: system.attempt.unwrap_or(0),
            max_retries: system.max_retries.unwrap_or(0),
            delay_ms: system.retry_delay_ms.unwrap_or(0.0),
            status: system.error_status,
        },
        StreamMessage::Result(result) => Said::Result {
            is_error: result.is_error,
            cost_usd: result.total_cost_usd,
            text: result.result,
        },
        _ => Said::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of reading a line, which must agree.
    fn read(line: &str) -> Said {
        let from_value = said(&serde_json::from_str(line).unwrap());
        assert_eq!(said_in(line), from_value, "{line}");
        from_value
    }

    #[test]
    fn an_assistant_message_is_its_words_and_tools_in_order() {
        let line = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Looking."},{"type":"tool_use","name":"Bash","input":{"command":"ls"}},{"type":"thinking","thinking":"hm"}],"usage":{"output_tokens":12}}}"#;
        let Said::Message {
            parts,
            output_tokens,
            synthetic,
        } = read(line)
        else {
            panic!()
        };
        assert_eq!(output_tokens, 12);
        assert!(!synthetic);
        assert_eq!(parts[0], Part::Text("Looking.".into()));
        assert!(matches!(&parts[1], Part::Tool { name, .. } if name == "Bash"));
        assert_eq!(parts.len(), 2, "thinking is not shown");
    }

    #[test]
    fn retries_results_and_unknown_lines() {
        assert_eq!(
            read(
                r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,"retry_delay_ms":500.0,"error_status":529}"#
            ),
            Said::Retry {
                attempt: 1,
                max_retries: 2,
                delay_ms: 500.0,
                status: Some(529)
            }
        );
        assert!(matches!(
            read(
                r#"{"type":"result","subtype":"success","is_error":false,"result":"hi","total_cost_usd":0.01}"#
            ),
            Said::Result {
                is_error: false,
                ..
            }
        ));
        assert_eq!(read(r#"{"type":"brand_new"}"#), Said::Other);
        assert_eq!(said_in(r#"{"type":"brand_new"}"#), Said::Other);
        assert_eq!(said_in("not json"), Said::Other);
        assert_eq!(said(&Value::Null), Said::Other);
    }
}

//! What an event says to a person, in lines: one description for the live printer of a
//! running turn and for `session logs`, each showing the lines its way. Text from
//! outside (claude's words, prompts, check output) is made safe for a terminal where
//! it is printed, not here.

use serde_json::Value;

use crate::claude::display::{Part, Said, said};
use crate::human::one_line;
use crate::protocol::{Event, EventBody, Level};

/// One line of what an event says.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: Kind,
    pub text: String,
}

/// How a line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// claude's words: live, on stdout.
    Words,
    /// A piece of claude's words as they stream: live only.
    Piece,
    /// A tool claude uses.
    Tool,
    /// Something went wrong and leash handled it: shown unless `-q`.
    Warn,
    /// News about the session (a compaction, a check): shown unless `-q`.
    News,
    /// Routine: shown with `-v`.
    Detail,
    /// The log's record of turns and steps (their prompts, results and judgements):
    /// live, the command itself reports them.
    Record,
    /// claude's plumbing: in the log with `-v`, never live.
    Raw,
}

fn line(kind: Kind, text: impl Into<String>) -> Line {
    Line {
        kind,
        text: text.into(),
    }
}

/// What an event says.
pub fn describe(event: &Event) -> Vec<Line> {
    let turn = event.turn.unwrap_or_default();
    let one = |kind, text| vec![line(kind, text)];
    match &event.body {
        EventBody::Claude { msg } => describe_said(&said(msg), msg),
        EventBody::TurnStarted { kind, prompt, .. } => one(
            Kind::Detail,
            format!("turn {turn} started ({kind}): {}", one_line(prompt, 120)),
        ),
        EventBody::TurnEnded { outcome } => one(
            Kind::Record,
            format!(
                "turn {turn} ended: {}{}",
                outcome.status.describe(),
                outcome
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        ),
        EventBody::Notice { level, message, .. } => one(
            match level {
                Level::Warn => Kind::Warn,
                Level::Info => Kind::Detail,
            },
            message.clone(),
        ),
        EventBody::Stderr { line } => one(Kind::Detail, format!("claude: {line}")),
        EventBody::PermissionAsked { tool, input, .. } => one(
            Kind::Record,
            format!("claude asks to use {}", tool_summary(tool, input)),
        ),
        EventBody::Compacting => one(Kind::News, "compacting...".to_string()),
        EventBody::Compacted { compaction } => one(Kind::News, compaction.describe()),
        EventBody::CompactFailed { reason } => {
            one(Kind::Warn, format!("compaction failed: {reason}"))
        }
        EventBody::RateLimit { limit } => one(
            match limit.status.as_str() {
                "allowed" => Kind::Detail,
                _ => Kind::Warn,
            },
            limit.describe(),
        ),
        EventBody::ChecksRan { checks } => checks
            .iter()
            .map(|check| {
                let kind = if check.passed() {
                    Kind::News
                } else {
                    Kind::Warn
                };
                line(kind, format!("check {}", check.describe()))
            })
            .collect(),
        EventBody::CheckStarted { command } => one(
            Kind::Detail,
            format!("check `{}` started", one_line(command, 120)),
        ),
        EventBody::Reviewed { review } => one(Kind::News, review.describe()),
        EventBody::Landed { commit, target, .. } => one(
            Kind::News,
            format!(
                "landed on {} at {}",
                one_line(target, 80),
                crate::git::short_id(commit)
            ),
        ),
        EventBody::Rescoped { number, of, .. } => one(
            Kind::Warn,
            format!("the nudges ran out; the task was planned again (rescope {number} of {of})"),
        ),
        EventBody::StepStarted { step, task, .. } => one(
            Kind::Detail,
            format!(
                "{step} step {turn} started{}",
                task.as_deref()
                    .map(|t| format!(": {}", one_line(t, 120)))
                    .unwrap_or_default()
            ),
        ),
        EventBody::Judged { judgement } => one(
            Kind::Record,
            format!(
                "{} judged: {} (phase {})",
                judgement.step, judgement.message, judgement.phase
            ),
        ),
        // The notice before it says why and for how long.
        EventBody::Waiting { .. } => Vec::new(),
        EventBody::LoopEnded { task_id, exit_code } => one(
            Kind::Record,
            format!("`leash loop` ended with exit code {exit_code} (task {task_id})"),
        ),
    }
}

/// What one of claude's lines says; `msg` is the line, for the raw view.
pub fn describe_said(said: &Said, msg: &dyn std::fmt::Display) -> Vec<Line> {
    match said {
        Said::Message {
            parts, synthetic, ..
        } => parts
            .iter()
            .map(|part| match (part, synthetic) {
                // claude's report of an API error: the turn's outcome says it.
                (Part::Text(text), true) => {
                    line(Kind::Record, format!("claude: {}", one_line(text, 200)))
                }
                (Part::Text(text), false) => line(Kind::Words, text.clone()),
                (Part::Tool { name, input }, _) => line(Kind::Tool, tool_summary(name, input)),
            })
            .collect(),
        Said::Piece(text) => vec![line(Kind::Piece, text.clone())],
        Said::ToolsDone => Vec::new(),
        Said::Init {
            model,
            permission_mode,
        } => vec![line(
            Kind::Record,
            format!(
                "claude init: model {}, permissions {}",
                model.as_deref().unwrap_or("?"),
                permission_mode.as_deref().unwrap_or("?")
            ),
        )],
        Said::Retry {
            attempt,
            max_retries,
            delay_ms,
            status,
        } => vec![line(
            Kind::Warn,
            format!(
                "API error{}; claude retries ({attempt}/{max_retries}) in {:.1} s",
                status.map(|s| format!(" {s}")).unwrap_or_default(),
                delay_ms / 1000.0
            ),
        )],
        Said::Result {
            is_error,
            cost_usd,
            text,
        } => vec![line(
            Kind::Record,
            format!(
                "result: {}{}{}",
                if *is_error { "error" } else { "success" },
                cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default(),
                text.as_deref()
                    .map(|t| format!(": {}", one_line(t, 120)))
                    .unwrap_or_default()
            ),
        )],
        Said::Other => vec![line(
            Kind::Raw,
            format!("claude: {}", one_line(&msg.to_string(), 200)),
        )],
    }
}

/// One short line for a tool call: the command, the file, or the input in brief.
pub fn tool_summary(name: &str, input: &Value) -> String {
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    let detail = field("command")
        .or_else(|| field("file_path"))
        .or_else(|| field("path"))
        .or_else(|| field("pattern"))
        .or_else(|| field("url"))
        .map(str::to_string)
        .unwrap_or_else(|| input.to_string());
    let detail: String = detail.replace('\n', " ");
    let mut short: String = detail.chars().take(100).collect();
    if short.len() < detail.len() {
        short.push('…');
    }
    format!("{name}: {short}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::conversation::Compaction;

    fn event(body: EventBody) -> Event {
        Event {
            body,
            seq: 1,
            ts: 0,
            turn: Some(3),
        }
    }

    #[test]
    fn claudes_words_and_tools_are_lines_of_their_own() {
        let msg = serde_json::json!({"type": "assistant", "message": {"content": [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "name": "Bash", "input": {"command": "ls -la"}},
        ]}});
        let lines = describe(&event(EventBody::Claude { msg }));
        assert_eq!(lines[0], line(Kind::Words, "Looking."));
        assert_eq!(lines[1], line(Kind::Tool, "Bash: ls -la"));
    }

    #[test]
    fn leash_says_what_it_saw_with_how_loud() {
        let compacted = describe(&event(EventBody::Compacted {
            compaction: Compaction {
                trigger: "auto".into(),
                pre_tokens: Some(995_000),
                post_tokens: Some(2_000),
                ts: 0,
            },
        }));
        assert_eq!(
            compacted,
            [line(Kind::News, "compacted 995k -> 2k tokens (auto)")]
        );
        let retry = serde_json::json!({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 2, "retry_delay_ms": 500.0, "error_status": 529});
        assert_eq!(
            describe(&event(EventBody::Claude { msg: retry })),
            [line(
                Kind::Warn,
                "API error 529; claude retries (1/2) in 0.5 s"
            )]
        );
        let routine = describe(&event(EventBody::Notice {
            fault: None,
            level: Level::Info,
            message: "started claude".into(),
        }));
        assert_eq!(routine[0].kind, Kind::Detail);
    }

    #[test]
    fn tool_lines_are_short_and_single_line() {
        let input =
            serde_json::json!({"command": format!("git commit -m 'x'\n{}", "y".repeat(300))});
        let line = tool_summary("Bash", &input);
        assert!(line.starts_with("Bash: git commit"));
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 110);
    }
}

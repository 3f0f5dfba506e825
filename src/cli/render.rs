//! How results reach the terminal or a script. Data goes to stdout, everything about
//! the data (notices, tool lines, errors) to stderr. With `--json`, stdout carries the
//! daemon's lines untouched, one JSON object per line.

use std::io::{self, Write};

use serde::Deserialize;
use serde_json::Value;

use crate::claude::messages::{ContentBlock, StreamMessage};
use crate::cli::Global;
use crate::error::Error;
use crate::protocol::{Event, Level, Outcome, ServerLine};

#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Output {
    pub fn new(global: &Global) -> Output {
        Output {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
        }
    }

    /// A line about what happened, for people. Silent with `--quiet`.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("leash: {message}");
        }
    }

    /// One JSON value as one stdout line.
    pub fn json_line<T: serde::Serialize>(&self, value: &T) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string(value).unwrap_or_default()
        );
    }

    /// How main reports a failed command: one line on stderr, and under `--json` a
    /// final `error` object on stdout as well.
    pub fn error(&self, err: &Error) {
        eprintln!("leash: error: {err}");
        if self.json {
            self.json_line(&serde_json::json!({
                "type": "error",
                "kind": err.kind,
                "exit_code": err.exit_code(),
                "message": err.message,
            }));
        }
    }
}

/// Prints a turn's stream as it arrives: the assistant's text on stdout, one short
/// line per tool call and per API retry on stderr.
pub struct TurnPrinter<'a> {
    out: &'a Output,
    stdout: io::BufWriter<io::Stdout>,
    /// Partial text already printed for the current message (with
    /// `--include-partial-messages`), so the whole message is not printed twice.
    streamed_text: bool,
    /// The cursor is not at the start of a line.
    mid_line: bool,
    pub printed_text: bool,
}

impl<'a> TurnPrinter<'a> {
    pub fn new(out: &'a Output) -> TurnPrinter<'a> {
        TurnPrinter {
            out,
            stdout: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            streamed_text: false,
            mid_line: false,
            printed_text: false,
        }
    }

    pub fn line(&mut self, raw: &str, parsed: &ServerLine) {
        if self.out.json {
            let _ = self.stdout.write_all(raw.as_bytes());
            let _ = self.stdout.write_all(b"\n");
            return;
        }
        let ServerLine::Event(event) = parsed else {
            return;
        };
        match event {
            Event::Claude { msg, .. } => self.claude(msg),
            Event::Notice { level, message, .. }
                if *level == Level::Warn && !self.out.quiet || self.out.verbose > 0 =>
            {
                self.aside(&format!("leash: {message}"));
            }
            Event::Stderr { line, .. } if self.out.verbose > 0 => {
                self.aside(&format!("claude: {line}"));
            }
            Event::TurnStarted { turn, kind, .. } if self.out.verbose > 0 => {
                self.aside(&format!("leash: turn {turn} ({kind:?}) started"));
            }
            _ => {}
        }
    }

    fn claude(&mut self, msg: &Value) {
        let Ok(message) = StreamMessage::deserialize(msg) else {
            return;
        };
        match message {
            StreamMessage::Assistant(assistant) if !assistant.message.is_synthetic() => {
                for block in assistant.message.content {
                    match block {
                        ContentBlock::Text { text } if !self.streamed_text => {
                            self.text(&text, true)
                        }
                        ContentBlock::ToolUse { name, input } => {
                            self.aside(&format!("  > {}", tool_summary(&name, &input)));
                        }
                        _ => {}
                    }
                }
                self.streamed_text = false;
            }
            StreamMessage::StreamEvent(event) => {
                if let Some(delta) = event.text_delta() {
                    self.streamed_text = true;
                    self.text(delta, false);
                }
            }
            StreamMessage::System(system) if system.subtype == "api_retry" && !self.out.quiet => {
                self.aside(&format!(
                    "leash: API error{}; claude retries ({}/{}) in {:.1} s",
                    system
                        .error_status
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default(),
                    system.attempt.unwrap_or(0),
                    system.max_retries.unwrap_or(0),
                    system.retry_delay_ms.unwrap_or(0.0) / 1000.0
                ));
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str, whole: bool) {
        if text.is_empty() {
            return;
        }
        let _ = self.stdout.write_all(text.as_bytes());
        self.mid_line = !text.ends_with('\n');
        if whole && self.mid_line {
            let _ = self.stdout.write_all(b"\n");
            self.mid_line = false;
        }
        self.printed_text = true;
    }

    fn aside(&mut self, line: &str) {
        // Keep stdout and stderr in order on a shared terminal.
        if self.mid_line {
            let _ = self.stdout.write_all(b"\n");
            self.mid_line = false;
        }
        let _ = self.stdout.flush();
        eprintln!("{line}");
    }

    /// Ends the turn's output: the final text if nothing was streamed, and a newline.
    pub fn finish(&mut self, outcome: &Outcome) {
        if !self.out.json
            && !self.printed_text
            && let Some(text) = &outcome.result
        {
            self.text(text, true);
        }
        if self.mid_line {
            let _ = self.stdout.write_all(b"\n");
            self.mid_line = false;
        }
        let _ = self.stdout.flush();
    }

    pub fn flush(&mut self) {
        let _ = self.stdout.flush();
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

//! A check: one of the project's commands (`cargo test`, `npm test`) that the worker's
//! commit must pass before its phase is done, as it came out, and how a failure is told
//! to the agent.

use serde::{Deserialize, Serialize};

/// How many lines, and bytes, of a check's output are kept.
pub const TAIL_LINES: usize = 200;
pub const TAIL_BYTES: usize = 16 * 1024;

/// One check, run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// As configured, run with `sh -c` at the repository root.
    pub command: String,
    /// `null` when it did not exit by itself (timed out, or killed by a signal).
    pub exit_code: Option<i32>,
    /// It ran past `check_timeout` and its process group was killed.
    pub timed_out: bool,
    pub duration_ms: u64,
    /// The end of its stdout and stderr, as they came: the last 200 lines, at most 16 KiB.
    pub output_tail: String,
    /// What it changed that a check must not: it moved HEAD, or left changes in the
    /// work tree (such a check fails, whatever its exit code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disturbed: Option<String>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && self.disturbed.is_none()
    }

    /// `passed`, `failed (exit 101)`, `timed out`, `failed: it moved HEAD ...`.
    pub fn outcome(&self) -> String {
        match (self.timed_out, self.exit_code, &self.disturbed) {
            (true, _, _) => "timed out".to_string(),
            (false, _, Some(disturbed)) => format!("failed: {disturbed}"),
            (false, Some(0), None) => "passed".to_string(),
            (false, Some(code), None) => format!("failed (exit {code})"),
            (false, None, None) => "was killed by a signal".to_string(),
        }
    }

    /// `` `cargo test` passed in 12.3 s ``.
    pub fn describe(&self) -> String {
        format!(
            "`{}` {} in {}",
            self.command,
            self.outcome(),
            crate::human::duration(std::time::Duration::from_millis(self.duration_ms))
        )
    }

    /// What the agent is told of a failed check: the command, how it ended and its
    /// output's tail, verbatim.
    pub fn feedback(&self, commit: &str) -> String {
        let how = if self.timed_out {
            "did not finish in time and was stopped".to_string()
        } else {
            self.outcome()
        };
        let output = if self.output_tail.trim().is_empty() {
            "It printed nothing.".to_string()
        } else {
            format!(
                "The end of its output:\n```\n{}\n```",
                self.output_tail.trim_end()
            )
        };
        format!(
            "The check `{}` {how} at your commit {commit}. {output}\nFix the cause, run the \
check yourself, and commit the fix.",
            self.command
        )
    }
}

/// The end of a stream of output: whole lines, the last [`TAIL_LINES`] of them and at
/// most [`TAIL_BYTES`], with the line being written kept apart per stream so that two
/// streams (stdout, stderr) interleave by line.
#[derive(Debug, Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    partial: [Vec<u8>; 2],
}

impl Tail {
    /// Output from stream 0 or 1.
    pub fn push(&mut self, stream: usize, data: &[u8]) {
        let stream = stream.min(1);
        for piece in data.split_inclusive(|b| *b == b'\n') {
            let partial = &mut self.partial[stream];
            partial.extend_from_slice(piece);
            if partial.ends_with(b"\n") {
                let line = std::mem::take(partial);
                self.add_line(&line[..line.len() - 1]);
            } else if partial.len() > TAIL_BYTES {
                // A line without end: only its end can be kept.
                partial.drain(..partial.len() - TAIL_BYTES);
            }
        }
    }

    fn add_line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
            }
        }
    }

    /// What is kept, lines unfinished at the end included.
    pub fn finish(mut self) -> String {
        for stream in 0..2 {
            let partial = std::mem::take(&mut self.partial[stream]);
            if !partial.is_empty() {
                self.add_line(&partial);
            }
        }
        let mut text: Vec<String> = self.lines.into_iter().collect();
        let joined = text.join("\n");
        if joined.len() <= TAIL_BYTES {
            return joined;
        }
        // One line longer than the whole budget: keep its end.
        let last = text.pop().unwrap_or_default();
        let cut = last.len() - TAIL_BYTES;
        let start = (cut..last.len())
            .find(|i| last.is_char_boundary(*i))
            .unwrap_or(last.len());
        last[start..].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_of_both_streams() {
        let mut tail = Tail::default();
        for i in 0..500 {
            tail.push(i % 2, format!("line {i}\n").as_bytes());
        }
        tail.push(1, b"no newline at the end");
        let text = tail.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 301");
        assert_eq!(lines[TAIL_LINES - 1], "no newline at the end");
    }

    #[test]
    fn the_tail_is_bounded_in_bytes() {
        let mut tail = Tail::default();
        let long = "x".repeat(1000);
        for _ in 0..50 {
            tail.push(0, format!("{long}\n").as_bytes());
        }
        assert!(tail.finish().len() <= TAIL_BYTES);
        let mut tail = Tail::default();
        tail.push(0, &vec![b'y'; 100_000]);
        tail.push(0, b"end");
        let text = tail.finish();
        assert!(
            text.len() <= TAIL_BYTES && text.ends_with("yend"),
            "{}",
            text.len()
        );
    }

    #[test]
    fn a_failure_is_told_with_its_output() {
        let failed = CheckResult {
            command: "cargo test".into(),
            exit_code: Some(101),
            timed_out: false,
            duration_ms: 1200,
            output_tail: "test foo ... FAILED\n".into(),
            disturbed: None,
        };
        assert!(!failed.passed());
        let text = failed.feedback("abc1234");
        assert!(text.contains("`cargo test` failed (exit 101) at your commit abc1234"));
        assert!(text.contains("```\ntest foo ... FAILED\n```"), "{text}");
        assert_eq!(failed.describe(), "`cargo test` failed (exit 101) in 1.2 s");
        let hung = CheckResult {
            exit_code: None,
            timed_out: true,
            output_tail: String::new(),
            ..failed
        };
        assert!(hung.feedback("abc").contains("did not finish in time"));
        assert_eq!(hung.outcome(), "timed out");
        let moved = CheckResult {
            exit_code: Some(0),
            timed_out: false,
            disturbed: Some("it moved HEAD from abc to def".into()),
            ..hung
        };
        assert!(!moved.passed(), "exit 0 is not enough");
        assert_eq!(moved.outcome(), "failed: it moved HEAD from abc to def");
    }
}

//! Reading newline-delimited lines with a size bound, from the socket and from claude.
//!
//! A peer that sends a line larger than the bound must not make us buffer it: the
//! excess is discarded as it streams in and the caller learns how long it was, so one
//! bad line costs a log entry, never the session.

use std::io;

use serde::Deserialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// `buf` holds one line, without its newline.
    Line,
    /// A line of this many bytes was longer than the bound and was skipped.
    TooLong(usize),
    Eof,
}

/// Splits a byte stream into lines of at most `max` bytes.
///
/// Cancel-safe: a partly read line stays in the reader, so `next` may sit in a
/// `select!` beside other futures.
pub struct LineReader {
    buf: Vec<u8>,
    skipped: Option<usize>,
    max: usize,
    done: bool,
    /// The last line ended at EOF, not at a newline.
    unterminated: bool,
}

impl LineReader {
    pub fn new(max: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            skipped: None,
            max,
            done: false,
            unterminated: false,
        }
    }

    /// The line returned by the last [`LineReader::next`] that gave [`LineRead::Line`].
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the last line read ended at EOF rather than at a newline: a peer that
    /// died in the middle of writing it leaves it torn.
    pub fn unterminated(&self) -> bool {
        self.unterminated
    }

    /// Reads the next line. A last line without a newline before EOF counts as a line
    /// (a torn write is the caller's to judge, with [`LineReader::unterminated`]).
    pub async fn next<R>(&mut self, reader: &mut R) -> io::Result<LineRead>
    where
        R: AsyncBufRead + Unpin,
    {
        if self.done {
            self.buf.clear();
            self.skipped = None;
            self.done = false;
        }
        loop {
            let available = reader.fill_buf().await?;
            if available.is_empty() {
                self.done = true;
                self.unterminated = !self.buf.is_empty();
                return Ok(match self.skipped {
                    Some(len) => LineRead::TooLong(len),
                    None if self.buf.is_empty() => LineRead::Eof,
                    None => LineRead::Line,
                });
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            match self.skipped.as_mut() {
                Some(len) => *len += chunk.len(),
                None if self.buf.len() + chunk.len() > self.max => {
                    self.skipped = Some(self.buf.len() + chunk.len());
                    self.buf.clear();
                    self.buf.shrink_to(64 * 1024);
                }
                None => self.buf.extend_from_slice(chunk),
            }
            let consumed = chunk.len() + usize::from(newline.is_some());
            reader.consume(consumed);
            if newline.is_some() {
                self.done = true;
                self.unterminated = false;
                return Ok(match self.skipped {
                    Some(len) => LineRead::TooLong(len),
                    None => LineRead::Line,
                });
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(LineRead, String)> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut lines = LineReader::new(max);
        let mut out = Vec::new();
        loop {
            let read = lines.next(&mut reader).await.unwrap();
            if read == LineRead::Eof {
                return out;
            }
            out.push((read, String::from_utf8_lossy(lines.line()).into_owned()));
        }
    }

    #[tokio::test]
    async fn splits_and_bounds_lines() {
        let got = lines(b"ab\n0123456789\ncd\ntorn", 5).await;
        assert_eq!(
            got,
            vec![
                (LineRead::Line, "ab".to_string()),
                (LineRead::TooLong(10), String::new()),
                (LineRead::Line, "cd".to_string()),
                (LineRead::Line, "torn".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn a_line_torn_at_eof_is_told_apart() {
        let mut reader = tokio::io::BufReader::with_capacity(4, &b"whole\n{\"type\":\"cl"[..]);
        let mut lines = LineReader::new(64);
        assert_eq!(lines.next(&mut reader).await.unwrap(), LineRead::Line);
        assert!(!lines.unterminated());
        assert_eq!(lines.next(&mut reader).await.unwrap(), LineRead::Line);
        assert!(lines.unterminated(), "{:?}", lines.line());
        assert_eq!(lines.next(&mut reader).await.unwrap(), LineRead::Eof);
    }

    #[tokio::test]
    async fn empty_lines_are_lines() {
        let got = lines(b"\n\nx\n", 5).await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (LineRead::Line, String::new()));
    }
}

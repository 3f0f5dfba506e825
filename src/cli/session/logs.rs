//! `leash session logs`: the event log as lines for people (or JSON lines), then,
//! with `--follow`, new events as they happen.

use std::io::Write;

use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};

use crate::claude::messages::{ContentBlock, StreamMessage};
use crate::cli::common::target;
use crate::cli::render::tool_summary;
use crate::cli::{Global, Output};
use crate::client::parse_line;
use crate::error::{Error, ErrorKind};
use crate::eventlog::{read_entries, seq_of};
use crate::framing::peek_type;
use crate::protocol::{Event, EventBody, Reply, Request, ServerLine};

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new events as they happen, like `tail -f`
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the latest events to show first (0 = all)
    #[arg(short = 'n', long, value_name = "N", default_value_t = 40)]
    pub lines: usize,
}

pub async fn run(args: LogsArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let dir = target.state_dir.clone();
    let entries = read_entries(&dir, None, None)
        .map_err(|e| Error::io(format!("cannot read the event log in {}", dir.display()), e))?;
    let last_seq = entries.last().and_then(|l| seq_of(l)).unwrap_or(0);
    let skip = if args.lines == 0 {
        0
    } else {
        entries.len().saturating_sub(args.lines)
    };
    let mut stdout = out.data_writer();
    for line in &entries[skip..] {
        print_log_line(&mut stdout, line, out);
    }
    drop(stdout);
    if !args.follow {
        return Ok(0);
    }
    let Some(mut conn) = target.open().await? else {
        out.note(format!(
            "worker {} is not running; nothing more to follow",
            target.worker
        ));
        return Ok(0);
    };
    conn.send(&Request::Follow {
        after_seq: Some(last_seq),
    })
    .await?;
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut stdout = out.data_writer();
    loop {
        if !conn.has_buffered() {
            let _ = stdout.flush();
        }
        let next = tokio::select! {
            line = conn.next_raw() => line?,
            _ = ctrl_c.recv() => return Ok(0),
        };
        let Some(raw) = next else {
            out.note("the daemon stopped; nothing more to follow");
            return Ok(0);
        };
        // Events are printed as they are; only an error reply needs reading.
        if peek_type(&raw).as_deref() != Some("error") {
            print_log_line(&mut stdout, &raw, out);
            continue;
        }
        let _ = stdout.flush();
        if let ServerLine::Reply(reply @ Reply::Error { .. }) = parse_line(&raw)?
            && let Err(e) = reply.into_error()
        {
            if e.kind == ErrorKind::NoSession {
                out.note(e.message);
                return Ok(0);
            }
            return Err(e);
        }
    }
}

fn print_log_line(stdout: &mut impl Write, line: &str, out: &Output) {
    if out.json {
        let _ = writeln!(stdout, "{line}");
        return;
    }
    let Ok(event) = serde_json::from_str::<Event>(line) else {
        return;
    };
    if let Some(text) = describe(&event, out.verbose) {
        let _ = writeln!(stdout, "{} {text}", clock(event.ts));
    }
}

/// One line per event for people; `None` for plumbing not worth a line.
fn describe(event: &Event, verbose: u8) -> Option<String> {
    let one_line = |text: &str, max: usize| {
        let flat = text.trim().replace('\n', " ⏎ ");
        let mut short: String = flat.chars().take(max).collect();
        if short.len() < flat.len() {
            short.push('…');
        }
        short
    };
    let turn = event.turn.unwrap_or_default();
    Some(match &event.body {
        EventBody::TurnStarted { kind, prompt } => {
            format!("turn {turn} started ({kind}): {}", one_line(prompt, 120))
        }
        EventBody::TurnEnded { outcome } => format!(
            "turn {turn} ended: {}{}",
            outcome.status.describe(),
            outcome
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        EventBody::Notice { message, .. } => format!("leash: {message}"),
        EventBody::Compacting => "compacting...".to_string(),
        EventBody::Compacted { compaction, .. } => compaction.describe(),
        EventBody::CompactFailed { reason, .. } => format!("compaction failed: {reason}"),
        EventBody::RateLimit { limit, .. } => limit.describe(),
        EventBody::ChecksRan { checks, .. } => format!(
            "checks: {}",
            checks
                .iter()
                .map(crate::worker::checks::CheckResult::describe)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        EventBody::Reviewed { review, .. } => review.describe(),
        EventBody::Rescoped { number, of, .. } => {
            format!("the task was planned again (rescope {number} of {of})")
        }
        EventBody::PermissionAsked { tool, input, .. } => {
            format!("claude asks to use {}", tool_summary(tool, input))
        }
        EventBody::Judged { judgement, .. } => format!(
            "{} judged: {} (phase {})",
            judgement.step, judgement.message, judgement.phase
        ),
        EventBody::Stderr { line, .. } => format!("stderr: {line}"),
        EventBody::Claude { msg, .. } => return describe_claude(msg, verbose, &one_line),
    })
}

fn describe_claude(
    msg: &Value,
    verbose: u8,
    one_line: &dyn Fn(&str, usize) -> String,
) -> Option<String> {
    let message = StreamMessage::deserialize(msg).ok()?;
    match message {
        StreamMessage::Assistant(a) => {
            let parts: Vec<String> = a
                .message
                .content
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::Text { text } => Some(format!("claude: {}", one_line(text, 200))),
                    ContentBlock::ToolUse { name, input } => {
                        Some(format!("tool: {}", tool_summary(name, input)))
                    }
                    _ => None,
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join(" | "))
        }
        StreamMessage::System(s) if s.subtype == "init" => Some(format!(
            "claude init: model {}, permissions {}",
            s.model.as_deref().unwrap_or("?"),
            s.permission_mode.as_deref().unwrap_or("?")
        )),
        StreamMessage::System(s) if s.subtype == "api_retry" => Some(format!(
            "api retry {}/{}{} in {:.1} s",
            s.attempt.unwrap_or(0),
            s.max_retries.unwrap_or(0),
            s.error_status
                .map(|e| format!(" after {e}"))
                .unwrap_or_default(),
            s.retry_delay_ms.unwrap_or(0.0) / 1000.0
        )),
        StreamMessage::Result(r) => Some(format!(
            "result: {}{}{}",
            if r.is_error { "error" } else { "success" },
            r.total_cost_usd
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default(),
            r.result
                .as_deref()
                .map(|t| format!(": {}", one_line(t, 120)))
                .unwrap_or_default()
        )),
        _ if verbose > 0 => Some(format!("claude: {}", one_line(&msg.to_string(), 200))),
        _ => None,
    }
}

/// Local wall-clock time of a log timestamp, `HH:MM:SS`.
fn clock(ts_ms: u64) -> String {
    let secs = (ts_ms / 1000) as libc::time_t;
    // SAFETY: localtime_r only writes the struct we hand it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return "--:--:--".to_string();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

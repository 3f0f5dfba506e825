//! `leash session status`: the worker's session as its daemon sees it.

use crate::cli::common::target;
use crate::cli::{Global, Output};
use crate::error::{Error, ErrorKind};
use crate::human::tokens;
use crate::protocol::SessionStatus;
use crate::record::SessionRecord;

pub async fn run(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let Some(conn) = target.open().await? else {
        let (detail, hint) = match SessionRecord::load(&target.state_dir)? {
            Some(r) => (
                format!(
                    " (session {}, {} turns so far)",
                    r.conversation.session_id, r.turns
                ),
                "`leash session start` resumes it",
            ),
            None => (String::new(), "start it with `leash session start`"),
        };
        return Err(Error::new(
            ErrorKind::NoSession,
            format!("worker {} is not running{detail}", target.worker),
        )
        .hint(hint));
    };
    let status = conn.status().await?;
    if out.json {
        out.json(&status);
        return Ok(0);
    }
    let model = match (&status.model, &status.requested_model) {
        (Some(confirmed), Some(requested)) if confirmed != requested => {
            format!("{confirmed} (asked for {requested})")
        }
        (Some(confirmed), _) => confirmed.clone(),
        (None, Some(requested)) => format!("{requested} (not yet confirmed by claude)"),
        (None, None) => "claude's default".to_string(),
    };
    let turns = match status.current_turn {
        Some(turn) => format!(
            "{} done, {turn} running, {} queued",
            status.turns, status.queued
        ),
        None => status.turns.to_string(),
    };
    out.rows([
        ("worker", status.worker.clone()),
        ("state", status.state.to_string()),
        ("daemon pid", status.daemon_pid.to_string()),
        ("claude pid", or_dash(status.claude_pid)),
        (
            "claude",
            or_dash(status.claude.as_ref().map(|c| c.display().to_string())),
        ),
        ("session id", status.session_id.clone()),
        ("model", model),
        (
            "permissions",
            status
                .permission_mode
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        ),
        ("cwd", status.cwd.display().to_string()),
        ("turns", turns),
        ("cost", crate::human::usd(status.cost_usd)),
        ("context", context(&status)),
        ("uptime", human_secs(status.uptime_secs)),
        ("socket", status.socket.display().to_string()),
        ("events", status.log.display().to_string()),
    ]);
    if let Some(rss) = status.claude_rss_bytes {
        out.rows([("memory", format!("{} (claude)", crate::human::bytes(rss)))]);
    }
    if let Some(limit) = &status.rate_limit {
        out.rows([(
            "rate limit",
            limit.describe().replacen("rate limit: ", "", 1),
        )]);
    }
    if let Some(until) = status.rate_limited_until {
        out.rows([(
            "waiting",
            format!(
                "for the rate limit to reset at {}",
                crate::human::clock(until)
            ),
        )]);
    }
    if let Some(failure) = &status.failure {
        out.rows([("failure", failure.clone())]);
    }
    Ok(0)
}

/// `812k of 1M tokens (81%), compacted 2 times`.
pub fn context(status: &SessionStatus) -> String {
    let size = match (status.context_tokens, status.context_window) {
        (Some(used), Some(window)) if window > 0 => format!(
            "{} of {} tokens ({}%)",
            tokens(used),
            tokens(window),
            used * 100 / window
        ),
        (Some(used), _) => format!("{} tokens", tokens(used)),
        (None, _) => "not measured yet".to_string(),
    };
    let compacted = match status.compactions {
        0 => String::new(),
        1 => ", compacted once".to_string(),
        n => format!(", compacted {n} times"),
    };
    let retired = match status.previous_session_ids.len() {
        0 => String::new(),
        n => format!(", {n} full conversation(s) handed off"),
    };
    format!("{size}{compacted}{retired}")
}

/// The context's share of the window, for `session list`.
pub fn context_percent(status: &SessionStatus) -> Option<u64> {
    let window = status.context_window.filter(|w| *w > 0)?;
    Some(status.context_tokens? * 100 / window)
}

pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or("-".to_string(), |v| v.to_string())
}

fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

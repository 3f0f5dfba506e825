//! `leash session restart`: a new claude process on the same conversation, after the
//! running turn (for example after upgrading claude, or to give back its memory).

use std::time::Duration;

use clap::Args;

use crate::cli::common::{resolve_claude, settings, target};
use crate::cli::{Global, Output};
use crate::client::unexpected;
use crate::error::{Error, ErrorKind};
use crate::protocol::{Reply, Request};

#[derive(Debug, Clone, Args)]
pub struct RestartArgs {
    /// How long to wait for a running turn to end first (the restart stays queued
    /// after that)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_wait)]
    pub wait: Duration,
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    crate::settings::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s, 10m or 1h"))
}

pub async fn run(args: RestartArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let (_, settings) = settings(&[])?;
    let claude = resolve_claude(&settings.claude)?;
    let Some(conn) = target.open().await? else {
        return Err(Error::new(
            ErrorKind::NoSession,
            format!(
                "worker {} is not running; nothing to restart",
                target.worker
            ),
        )
        .hint("`leash session start` starts claude on the worker's conversation"));
    };
    let request = Request::Restart {
        claude: Some(claude),
    };
    // The call's own bound is looser: the wait asked for decides.
    let call = conn.call_within(&request, args.wait.saturating_add(Duration::from_secs(5)));
    let status = match tokio::time::timeout(args.wait, call).await {
        Ok(Ok(Reply::Status(status))) => status,
        Ok(Ok(other)) => return Err(unexpected("restart", &other)),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(Error::new(ErrorKind::Busy, format!(
                "worker {} is still busy after {}; the restart stays queued and happens after the running turn",
                target.worker,
                crate::human::duration(args.wait)
            ))
            .hint("`leash session status` shows when claude's pid changes"));
        }
    };
    if out.json {
        out.json(&*status);
    } else {
        out.note(format!(
            "restarted claude (pid {}) on the same conversation {}",
            status
                .claude_pid
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            status.session_id
        ));
    }
    Ok(0)
}

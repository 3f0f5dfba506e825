//! `leash session stop`: claude and the daemon exit; the conversation is kept.

use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::common::target;
use crate::cli::json::Stopped;
use crate::cli::{Global, Output};
use crate::client::Target;
use crate::error::Error;
use crate::paths::Dirs;
use crate::protocol::Request;

/// How long `stop` waits for the daemon process to be gone after it said so.
const STOP_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Stop every running worker of this user
    #[arg(long)]
    pub all: bool,
}

pub async fn run(args: StopArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    if !args.all {
        let target = target(global)?;
        if !stop_one(&target, out).await? {
            crate::cli::say_done(out, format!("worker {} is not running", target.worker));
        }
        return Ok(0);
    }
    let dirs = Dirs::from_env()?;
    let mut stopped = 0;
    for worker in dirs.known_workers() {
        let target = Target::for_worker(dirs.clone(), worker)?;
        if stop_one(&target, out).await? {
            stopped += 1;
        }
    }
    if stopped == 0 {
        crate::cli::say_done(out, "no worker was running".to_string());
    }
    Ok(0)
}

/// Stops one worker; false when it was not running.
pub(crate) async fn stop_one(target: &Target, out: &Output) -> Result<bool, Error> {
    let Some(conn) = target.open().await? else {
        return Ok(false);
    };
    let pid = conn.daemon_pid;
    conn.call(&Request::Stop).await?;
    // The daemon answered after claude was gone; wait for the daemon itself.
    let deadline = Instant::now() + STOP_WAIT;
    while crate::process::alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if out.json {
        out.json(&Stopped {
            worker: target.worker.to_string(),
            daemon_pid: pid,
        });
    } else {
        out.note(format!("stopped worker {}", target.worker));
    }
    Ok(true)
}

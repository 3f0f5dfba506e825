//! `leash nudge`: a specific follow-up in the worker's conversation.

use std::time::Duration;

use clap::Args;

use super::run_step;
use crate::cli::common::{block_on, settings, target};
use crate::cli::{Global, Output};
use crate::client::Target;
use crate::error::Error;
use crate::protocol::{Reply, Request, WorkerRequest};
use crate::worker::WorkerStep;

pub const EXAMPLES: &str = "Examples:
  leash nudge --reason \"tests/api.rs still fails: run cargo test api\"
  until leash implement; do leash nudge || exit $?; done    # nudge until committed
  leash nudge --event post-commit --no-wait                  # what a git hook runs";

#[derive(Debug, Clone, Args)]
pub struct NudgeArgs {
    /// Why the worker is nudged, told to it verbatim
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The git hook that fires this nudge (post-commit, pre-commit, ...)
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// Queue the nudge and return at once; does nothing when no session runs
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub step: super::StepArgs,
    #[command(flatten)]
    pub gates: super::GateArgs,
}

/// How long a nudge from a git hook may take, all told: a hook never slows git.
const HOOK_BOUND: Duration = Duration::from_millis(500);

pub fn run(args: NudgeArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    // A hook fired by the worker's own git command (a commit it made, a check that
    // refused its commit) is no news to it: it saw the result in its own turn.
    if args.event.is_some()
        && std::env::var("LEASH_AGENT_WORKER").is_ok_and(|w| w == target.worker.as_str())
    {
        out.note("the worker's own git command; no nudge");
        return Ok(0);
    }
    let mut flags = vec![args.step.budget.flag()];
    flags.extend(args.gates.flags());
    let settings = settings(&flags)?;
    let step = WorkerStep::Nudge {
        reasons: args.reason.into_iter().collect(),
        events: args.event.into_iter().collect(),
    };
    block_on(async {
        if !args.no_wait {
            let judgement =
                run_step(&target, step, None, &settings, args.step.no_start, out).await?;
            return Ok(judgement.exit_code);
        }
        let request = Request::Worker(WorkerRequest {
            step,
            config: settings.1.worker_config(),
            wait: false,
            interactive: false,
            claude: None,
            task_id: None,
        });
        // From a hook: never start a session, never wait long, never fail git.
        match tokio::time::timeout(HOOK_BOUND, queue(&target, &request)).await {
            Ok(Ok(Some(Reply::Queued { turn, ahead }))) => {
                if out.json {
                    out.json_line(&Reply::Queued { turn, ahead });
                } else {
                    out.note(format!("nudge queued (step {turn}, {ahead} ahead)"));
                }
                Ok(0)
            }
            Ok(Ok(None)) => {
                out.note(format!("worker {} is not running; no nudge", target.worker));
                Ok(0)
            }
            Ok(Ok(Some(other))) => Err(crate::client::unexpected("a nudge", &other)),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                out.note(format!(
                    "worker {} did not answer within {} ms; no nudge",
                    target.worker,
                    HOOK_BOUND.as_millis()
                ));
                Ok(0)
            }
        }
    })
}

/// Queues a step without waiting for it; `None` when no daemon runs.
async fn queue(target: &Target, request: &Request) -> Result<Option<Reply>, Error> {
    let Some(conn) = target.open().await? else {
        return Ok(None);
    };
    conn.call(request).await.map(Some)
}

//! `leash session compact`: compact the conversation now, in the same conversation.

use clap::Args;

use crate::cli::common::target;
use crate::cli::stream::{Ending, daemon_died, stream};
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::protocol::Request;

use super::send::report_outcome;

#[derive(Debug, Clone, Args)]
pub struct CompactArgs {
    /// What the summary must keep (claude's `/compact` instructions)
    #[arg(long, value_name = "TEXT")]
    pub instructions: Option<String>,
}

pub async fn run(args: CompactArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let conn = target.connect().await?;
    let request = Request::Compact {
        instructions: args.instructions,
    };
    match stream(conn, &request, out, target.worker.as_str()).await? {
        Ending::Turn(outcome) => {
            if outcome.exit_code == 0 && !out.json {
                out.note(outcome.result.as_deref().unwrap_or("compacted"));
            }
            Ok(report_outcome(&outcome, out))
        }
        Ending::Step(judgement) => Ok(judgement.exit_code),
        Ending::DaemonDied { .. } => Err(daemon_died()),
    }
}

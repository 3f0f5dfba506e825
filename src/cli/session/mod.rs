//! `leash session ...`: start, stop, inspect and talk to a worker's session.

mod compact;
mod fork;
mod interrupt;
mod list;
pub mod logs;
mod model;
mod restart;
mod rm;
pub mod send;
mod start;
mod status;
mod stop;

use clap::Subcommand;

use super::common::block_on;
use super::{Global, Output};
use crate::error::Error;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Start the worker's daemon and claude; resumes the worker's conversation if it has one
    Start(start::StartArgs),
    /// Stop the worker's daemon and claude; the conversation is kept for the next start
    Stop(stop::StopArgs),
    /// Show the worker's session: pids, session id, model, state, turns, cost, uptime
    Status,
    /// List every worker of this user, one row each
    List,
    /// Send one turn in the worker's conversation and stream the reply
    #[command(after_help = send::EXAMPLES)]
    Send(send::SendArgs),
    /// Interrupt the running turn (a no-op when none is running)
    Interrupt,
    /// Compact the conversation now: claude summarises it, keeping what you name
    Compact(compact::CompactArgs),
    /// Switch model for the next turns, keeping the conversation
    Model(model::ModelArgs),
    /// Start a new claude process on the same conversation, after the running turn
    Restart(restart::RestartArgs),
    /// Stop and forget a worker; its worktree goes when clean, its branch when merged
    Rm(rm::RmArgs),
    /// A new worker whose conversation, task and plan are a copy of this worker's
    #[command(after_help = fork::EXAMPLES)]
    Fork(fork::ForkArgs),
    /// Show the session's event log: what claude said and did
    Logs(logs::LogsArgs),
}

pub fn run(command: SessionCommand, global: &Global, out: &Output) -> Result<u8, Error> {
    block_on(async {
        match command {
            SessionCommand::Start(args) => start::run(args, global, out).await,
            SessionCommand::Stop(args) => stop::run(args, global, out).await,
            SessionCommand::Status => status::run(global, out).await,
            SessionCommand::List => list::run(out).await,
            SessionCommand::Send(args) => send::run(args, global, out).await,
            SessionCommand::Interrupt => interrupt::run(global, out).await,
            SessionCommand::Compact(args) => compact::run(args, global, out).await,
            SessionCommand::Model(args) => model::run(args, global, out).await,
            SessionCommand::Restart(args) => restart::run(args, global, out).await,
            SessionCommand::Rm(args) => rm::run(args, global, out).await,
            SessionCommand::Fork(args) => fork::run(args, global, out).await,
            SessionCommand::Logs(args) => logs::run(args, global, out).await,
        }
    })
}

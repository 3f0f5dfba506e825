//! `leash session ...`: start, stop, inspect and talk to a worker's session.

mod compact;
mod context;
pub(crate) mod fork;
mod interrupt;
pub(crate) mod list;
pub mod logs;
mod model;
mod restart;
mod rm;
pub mod send;
mod start;
mod status;
pub(crate) mod stop;
mod watch;

use clap::Subcommand;

use super::common::block_on;
use super::deferred::Deferred;
use super::{Global, Output};
use crate::error::Error;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Start the worker's daemon and claude; resumes the worker's conversation if it has one
    Start(Deferred<start::StartArgs>),
    /// Stop the worker's daemon and claude; the conversation is kept for the next start
    Stop(Deferred<stop::StopArgs>),
    /// Show the worker's session: pids, session id, model, state, turns, cost, uptime
    Status,
    /// List every worker of this user, one row each
    List(Deferred<list::ListArgs>),
    /// Send one turn in the worker's conversation and stream the reply
    #[command(after_help = send::EXAMPLES)]
    Send(Deferred<send::SendArgs>),
    /// Interrupt the running turn (a no-op when none is running)
    Interrupt,
    /// Compact the conversation now: claude summarises it, keeping what you name
    Compact(Deferred<compact::CompactArgs>),
    /// Switch model for the next turns, keeping the conversation
    Model(Deferred<model::ModelArgs>),
    /// How full the conversation is, in claude's own count (claude starts if it does not run)
    Context,
    /// Start a new claude process on the same conversation, after the running turn
    Restart(Deferred<restart::RestartArgs>),
    /// Stop and forget a worker; its worktree goes when clean, its branch when merged
    Rm(Deferred<rm::RmArgs>),
    /// A new worker whose conversation, task and plan are a copy of this worker's
    #[command(after_help = fork::EXAMPLES)]
    Fork(Deferred<fork::ForkArgs>),
    /// Show the session's event log: what claude said and did
    Logs(Deferred<logs::LogsArgs>),
}

pub fn run(command: SessionCommand, global: &Global, out: &Output) -> Result<u8, Error> {
    block_on(async {
        match command {
            SessionCommand::Start(Deferred(args)) => start::run(args, global, out).await,
            SessionCommand::Stop(Deferred(args)) => stop::run(args, global, out).await,
            SessionCommand::Status => status::run(global, out).await,
            // The watch draws the list's rows: it stands above the list, and the list
            // knows nothing of it.
            SessionCommand::List(Deferred(args)) if args.watch && watch::possible(out) => {
                watch::run().await
            }
            SessionCommand::List(Deferred(args)) => list::run(args, out).await,
            SessionCommand::Send(Deferred(args)) => send::run(args, global, out).await,
            SessionCommand::Interrupt => interrupt::run(global, out).await,
            SessionCommand::Compact(Deferred(args)) => compact::run(args, global, out).await,
            SessionCommand::Model(Deferred(args)) => model::run(args, global, out).await,
            SessionCommand::Context => context::run(global, out).await,
            SessionCommand::Restart(Deferred(args)) => restart::run(args, global, out).await,
            SessionCommand::Rm(Deferred(args)) => rm::run(args, global, out).await,
            SessionCommand::Fork(Deferred(args)) => fork::run(args, global, out).await,
            SessionCommand::Logs(Deferred(args)) => logs::run(args, global, out).await,
        }
    })
}

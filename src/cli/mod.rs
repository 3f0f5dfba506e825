//! The command line: clap definitions (the single source for `--help`, the man pages
//! and the shell completions) and the dispatch to each command. Every leaf command is
//! a file of its own with its arguments and its `run`; what they share is in
//! [`common`], and everything they print goes through [`Output`].

mod common;
mod completions;
mod config;
mod deferred;
mod describe;
mod doctor;
mod hooks;
pub(crate) mod json;
mod land;
mod render;
mod report;
mod session;
mod stream;
mod worker;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::error::{EXIT_CODES, Error};
use crate::settings::KEYS;
use deferred::Deferred;

pub use json::ErrorLine;
pub use render::Output;

#[derive(Debug, Parser)]
#[command(
    name = "leash",
    version,
    about = "Keep one long-lived Claude Code process per coding worker and drive it step by step",
    long_about = "leash keeps one long-lived `claude` process per worker, owned by a background \
session daemon, and drives it over a Unix socket. The conversation persists between commands, \
so any step can be run by hand, composed in shell loops, or fired from git hooks.",
    after_long_help = exit_codes_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The worker to act on [default: one per repository, derived from where you run]
    #[arg(long, global = true, env = "LEASH_WORKER", value_name = "NAME")]
    pub worker: Option<String>,
    /// Machine-readable output: one JSON object per line, the last line is the outcome
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only what was asked for (no notices, no progress)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: daemon notices, claude's stderr (repeat for more)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The worker's session: its daemon, its claude process, its conversation
    #[command(subcommand)]
    Session(Deferred<session::SessionCommand>),
    /// Plan a task: a read-only turn on the planning model; the plan is saved
    Plan(Deferred<worker::plan::PlanArgs>),
    /// Implement the plan: a turn on the implementation model, done when a new commit lands
    Implement(Deferred<worker::implement::ImplementArgs>),
    /// Nudge the worker in the same conversation when its work stalls
    #[command(after_help = worker::nudge::EXAMPLES)]
    Nudge(Deferred<worker::nudge::NudgeArgs>),
    /// Run the whole worker: plan, implement, nudge until committed, blocked or out of nudges
    #[command(after_help = worker::run_loop::EXAMPLES)]
    Loop(Deferred<worker::run_loop::LoopArgs>),
    /// Show the worker: phase, task, plan, nudges used, last outcome, HEAD at start
    Status,
    /// Land the workers' branches on the target: a merge queue that hands conflicts back
    #[command(after_help = land::EXAMPLES)]
    Land(Deferred<land::LandArgs>),
    /// What each worker did with its tasks: a table, JSON, Markdown, or a picture
    #[command(after_help = report::EXAMPLES)]
    Report(Deferred<report::ReportArgs>),
    /// Git hooks that nudge the worker (after commits, on failing checks)
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Check claude, directories, sockets, workers, the repository and the environment
    Doctor,
    /// Show the effective settings and where each comes from
    Config,
    /// Print shell completions (bash, zsh, fish)
    Completions(Deferred<completions::CompletionsArgs>),
    /// Run a worker's session daemon in the foreground (`session start` does this)
    #[command(hide = true)]
    Daemon,
}

fn exit_codes_help() -> String {
    let mut help = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        help.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    help.push_str("\nEnvironment:\n");
    let settings = KEYS.iter().map(|key| {
        (
            key.env,
            format!(
                "{} (setting {}, default {:?})",
                key.doc, key.name, key.default
            ),
        )
    });
    let places = PATH_VARS
        .iter()
        .map(|(name, doc)| (*name, (*doc).to_string()));
    for (name, meaning) in places.chain(settings) {
        help.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    help
}

/// Where things live and which worker is meant: not settings, so not in `.leash.toml`.
const PATH_VARS: &[(&str, &str)] = &[
    ("LEASH_WORKER", "the worker, like --worker"),
    (
        "LEASH_RUNTIME_DIR",
        "sockets (default $XDG_RUNTIME_DIR/leash, else a per-user temp dir)",
    ),
    (
        "LEASH_STATE_DIR",
        "session records and logs (default $XDG_STATE_HOME/leash, else ~/.local/state/leash)",
    ),
];

pub use completions::script as completion_script;

/// A command that had nothing to do says so: a note for people, and with `--json`
/// an `ok` line, so the last line is the outcome there too.
fn say_done(out: &Output, message: String) {
    if out.json {
        out.json_line(&crate::protocol::Reply::Ok { message });
    } else {
        out.note(message);
    }
}

/// The clap command, every part of it built, for the man page and completion
/// generators.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// Runs a parsed command line; returns the exit code for success paths that are not 0.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let out = Output::new(&cli.global);
    let global = &cli.global;
    match cli.command {
        Command::Daemon => {
            let target = common::target(global)?;
            crate::daemon::run(&target.worker, &target.dirs).map(|()| 0)
        }
        Command::Session(Deferred(command)) => session::run(command, global, &out),
        Command::Plan(Deferred(args)) => worker::plan::run(args, global, &out),
        Command::Implement(Deferred(args)) => worker::implement::run(args, global, &out),
        Command::Nudge(Deferred(args)) => worker::nudge::run(args, global, &out),
        Command::Loop(Deferred(args)) => worker::run_loop::run(args, global, &out),
        Command::Status => worker::status::run(global, &out),
        Command::Land(Deferred(args)) => land::run(args, global, &out),
        Command::Report(Deferred(args)) => report::run(args, global, &out),
        Command::Hooks(command) => hooks::run(command, &out),
        Command::Doctor => doctor::run(global, &out),
        Command::Config => config::run(&out),
        Command::Completions(Deferred(args)) => completions::run(&args, &out),
    }
}

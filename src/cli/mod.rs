//! The command line: clap definitions (the single source for `--help`, the man pages
//! and the shell completions) and the dispatch to each command's implementation.

mod config;
mod doctor;
mod hooks;
mod logs;
mod render;
mod session;
mod stream;
mod worker;

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::error::{EXIT_CODES, Error};
use crate::settings::ENV_VARS;

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
    Session(SessionCommand),
    /// Plan a task: a read-only turn on the planning model; the plan is saved
    Plan(PlanArgs),
    /// Implement the plan: a turn on the implementation model, done when a new commit lands
    Implement(ImplementArgs),
    /// Nudge the worker in the same conversation when its work stalls
    Nudge(NudgeArgs),
    /// Run the whole worker: plan, implement, nudge until committed, blocked or out of nudges
    Loop(LoopArgs),
    /// Show the worker: phase, task, plan, nudges used, last outcome, HEAD at start
    Status,
    /// Git hooks that nudge the worker (after commits, on failing checks)
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Check claude, directories, sockets, workers, the repository and the environment
    Doctor,
    /// Show the effective settings and where each comes from
    Config,
    /// Print shell completions (bash, zsh, fish)
    Completions(CompletionsArgs),
    /// Run a worker's session daemon in the foreground (`session start` does this)
    #[command(hide = true)]
    Daemon,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Start the worker's daemon and claude; resumes the worker's conversation if it has one
    Start(StartArgs),
    /// Stop the worker's daemon and claude; the conversation is kept for the next start
    Stop(StopArgs),
    /// Show the worker's session: pids, session id, model, state, turns, cost, uptime
    Status,
    /// List every worker of this user, one row each
    List,
    /// Send one turn in the worker's conversation and stream the reply
    Send(SendArgs),
    /// Interrupt the running turn (a no-op when none is running)
    Interrupt,
    /// Switch model for the next turns, keeping the conversation
    Model(ModelArgs),
    /// Show the session's event log: what claude said and did
    Logs(LogsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Directory claude works in [default: the repository root, else the current directory]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Model for the session, an alias such as `sonnet` or `opus` or a full name [default: sonnet]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Replace claude's system prompt with this file's contents
    #[arg(long, value_name = "FILE")]
    pub system_prompt_file: Option<PathBuf>,
    /// claude's permission mode (default, acceptEdits, plan, bypassPermissions)
    #[arg(long, value_name = "MODE")]
    pub permission_mode: Option<String>,
    /// The claude executable [default: `claude` on PATH]
    #[arg(long, value_name = "PATH", env = "LEASH_CLAUDE")]
    pub claude: Option<PathBuf>,
    /// Start a new conversation instead of resuming the worker's
    #[arg(long)]
    pub fresh: bool,
    /// Ask the person at the terminal before claude uses a tool (Allow once / always / Deny)
    #[arg(long)]
    pub interactive_permissions: bool,
    /// Approve this tool when no one is attached to ask (repeat for more) [default: permission_allow]
    #[arg(long = "allow-tool", value_name = "TOOL")]
    pub allow_tools: Vec<String>,
    /// Extra arguments passed to claude as they are
    #[arg(last = true, value_name = "CLAUDE_ARGS")]
    pub claude_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Stop every running worker of this user
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The prompt, or `-` to read it from standard input
    #[arg(value_name = "PROMPT")]
    pub prompt: String,
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
    /// Re-send the turn this many times after provider errors (429/529/5xx)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: an alias such as `opus`, `sonnet`, `haiku`, or a full model name
    #[arg(value_name = "MODEL")]
    pub model: String,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new events as they happen, like `tail -f`
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the latest events to show first (0 = all)
    #[arg(short = 'n', long, value_name = "N", default_value_t = 40)]
    pub lines: usize,
}

/// Where a task comes from.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    /// The task, verbatim
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["task_file", "stdin"])]
    pub task: Option<String>,
    /// Read the task from this file
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    pub task_file: Option<PathBuf>,
    /// `-` reads the task from standard input
    #[arg(value_name = "-", value_parser = ["-"])]
    pub stdin: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Model for the planning turn [default: plan_model, `opus`]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ImplementArgs {
    /// Model for implementing [default: implement_model, `sonnet`]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Start the implement phase over even if it is under way
    #[arg(long)]
    pub restart: bool,
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
}

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
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoopArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Nudges per implement phase before giving up with exit code 10
    #[arg(long, value_name = "N")]
    pub max_nudges: Option<u32>,
    /// Ask before each phase (needs a terminal)
    #[arg(long)]
    pub step: bool,
    /// Model for planning [default: plan_model, `opus`]
    #[arg(long, value_name = "MODEL")]
    pub plan_model: Option<String>,
    /// Model for implementing and nudging [default: implement_model, `sonnet`]
    #[arg(long, value_name = "MODEL")]
    pub implement_model: Option<String>,
    /// Start the task over even if the worker already finished or gave up on it
    #[arg(long)]
    pub fresh: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install hooks in this repository that run `leash nudge --event <hook> --no-wait`
    Install(HooksArgs),
    /// Remove the hooks leash installed, restoring any hook that was there before
    Uninstall(HooksArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HooksArgs {
    /// Which hooks [default: post-commit; also post-merge, post-rewrite, post-checkout,
    /// pre-commit, pre-push, commit-msg]
    #[arg(long = "hook", value_name = "HOOK")]
    pub hooks: Vec<String>,
}

fn exit_codes_help() -> String {
    let mut help = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        help.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    help.push_str("\nEnvironment:\n");
    for (name, meaning) in PATH_VARS.iter().chain(ENV_VARS) {
        help.push_str(&format!("  {name:<22} {meaning}\n"));
    }
    help
}

/// Where things live and which worker and claude are meant.
const PATH_VARS: &[(&str, &str)] = &[
    ("LEASH_WORKER", "the worker, like --worker"),
    ("LEASH_CLAUDE", "the claude executable, like --claude"),
    (
        "LEASH_RUNTIME_DIR",
        "sockets (default $XDG_RUNTIME_DIR/leash, else a per-user temp dir)",
    ),
    (
        "LEASH_STATE_DIR",
        "session records and logs (default $XDG_STATE_HOME/leash, else ~/.local/state/leash)",
    ),
];

/// Commands are short-lived clients: one thread is all they need.
fn block_on<T>(future: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?
        .block_on(future)
}

/// The settings for a command run here: `.leash.toml`, environment, then `flags`.
fn settings(flags: &[(&str, String)]) -> Result<crate::config::Resolved, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    crate::config::Resolved::load(&cwd, flags)
}

/// The clap command, for the man page and completion generators.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs a parsed command line; returns the exit code for success paths that are not 0.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let out = Output::new(&cli.global);
    match cli.command {
        Command::Daemon => {
            let target = session::target(&cli.global)?;
            crate::daemon::run(&target.worker, &target.dirs).map(|()| 0)
        }
        Command::Session(command) => session::run(command, &cli.global, &out),
        Command::Plan(args) => worker::plan(args, &cli.global, &out),
        Command::Implement(args) => worker::implement(args, &cli.global, &out),
        Command::Nudge(args) => worker::nudge(args, &cli.global, &out),
        Command::Loop(args) => worker::run_loop(args, &cli.global, &out),
        Command::Status => worker::status(&cli.global, &out),
        Command::Hooks(command) => hooks::run(command, &cli.global, &out),
        Command::Doctor => doctor::run(&cli.global, &out),
        Command::Config => config::run(&out),
        Command::Completions(args) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&crate::docs::completion(args.shell));
            Ok(0)
        }
    }
}

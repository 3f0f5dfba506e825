//! `leash plan|implement|nudge|loop|status`: the worker's steps, run by the daemon in
//! the worker's conversation. What they share: where the task comes from, running one
//! step and reporting its judgement.

pub mod attempts;
mod drive;
pub mod implement;
pub mod nudge;
pub mod plan;
pub mod run_loop;
pub mod status;

use crate::cli::common::with_default;
use std::path::PathBuf;

use clap::Args;

use super::Output;
use super::common::{Autostart, connect_or_start, read_stdin, resolve_claude};
use super::stream::{Ending, Survive, daemon_died, stream_surviving};
use crate::client::Target;
use crate::error::Error;
use crate::protocol::{Request, WorkerRequest};
use crate::settings::Name;
use crate::settings::{Resolved, Settings};
use crate::worker::{Judgement, Step, WorkerStep};

const NO_TASK: &str = "no task was given";
const NO_TASK_HINT: &str =
    "give --task TEXT, --task-file FILE, or - to read it from standard input";

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
    #[arg(value_name = "-", value_parser = stdin_marker)]
    pub stdin: Option<String>,
}

/// The one word a step takes where a task could be: `-`. A task typed there instead
/// (`leash loop "Add a flag"`) is told how to give it.
fn stdin_marker(word: &str) -> Result<String, String> {
    if word == "-" {
        return Ok(word.to_string());
    }
    let quoted: String = crate::human::safe(word)
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Err(format!(
        "a task is given with --task: `--task \"{quoted}\"` (or `-` reads it from standard input)"
    ))
}

impl TaskArgs {
    /// The task, if one was given.
    fn read(&self) -> Result<Option<String>, Error> {
        let task = if let Some(task) = &self.task {
            task.clone()
        } else if let Some(file) = &self.task_file {
            std::fs::read_to_string(file).map_err(|e| {
                Error::usage(format!("cannot read --task-file {}: {e}", file.display()))
                    .hint("give a readable file, or the task itself with --task")
            })?
        } else if self.stdin.is_some() {
            read_stdin("the task")?
        } else {
            return Ok(None);
        };
        if task.trim().is_empty() {
            return Err(Error::usage("the task is empty").hint(NO_TASK_HINT));
        }
        Ok(Some(task.trim_end().to_string()))
    }
}

/// A task's budget, for every step that may send a turn.
#[derive(Debug, Clone, Args)]
pub struct BudgetArgs {
    #[arg(long, value_name = "USD", help = with_default(
        "Send no further turn once the task's turns cost this many US dollars; exit code 13",
        Name::task_budget_usd,
    ))]
    pub budget: Option<String>,
}

impl BudgetArgs {
    /// The setting the flag sets.
    fn flag(&self) -> (Name, Option<String>) {
        (Name::task_budget_usd, self.budget.clone())
    }
}

/// The flags of one step (plan, implement, nudge): whether it may start a session, and
/// the task's budget. `leash loop` always may start one, so it takes the budget alone.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// How committed work is judged, for every step that judges it.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    #[arg(long = "check", value_name = "CMD", help = with_default(
        "A check the commit must pass, run with `sh -c` at the repository root (repeatable); \
         the checks given replace those of .leash.toml for this task",
        Name::checks,
    ))]
    pub checks: Vec<String>,
    #[arg(long, help = with_default(
        "Have the plan model review committed work that passed its checks",
        Name::review,
    ))]
    pub review: bool,
    #[arg(long, value_name = "N", help = with_default(
        "Plan the task again when its nudges run out, up to N times",
        Name::rescopes,
    ))]
    pub rescopes: Option<u32>,
}

impl GateArgs {
    /// The settings the flags set.
    fn flags(&self) -> [(Name, Option<String>); 3] {
        [
            (
                Name::checks,
                (!self.checks.is_empty()).then(|| self.checks.join("\n")),
            ),
            (Name::review, self.review.then(|| "true".to_string())),
            (Name::rescopes, self.rescopes.map(|n| n.to_string())),
        ]
    }
}

fn no_task() -> Error {
    Error::usage(NO_TASK).hint(NO_TASK_HINT)
}

/// Runs one step of the task `task_id` (any task when `None`) and streams it; returns
/// its judgement.
async fn run_step(
    target: &Target,
    step: WorkerStep,
    task_id: Option<String>,
    (resolved, settings): &(Resolved, Settings),
    no_start: bool,
    out: &Output,
) -> Result<Judgement, Error> {
    let dir = worker_dir(target)?;
    if !dir.exists() {
        return Err(target.directory_gone(&dir));
    }
    crate::git::work_tree(&dir)?;
    let mut config = settings.worker_config();
    config.gates.branch = target.worktree.as_ref().map(|w| w.branch.clone());
    // A session the worker starts allows its implementing tools from the first spawn.
    let autostart = (!no_start).then(|| Autostart {
        resolved,
        settings,
        allowed_tools: config.turns.allowed_tools.clone(),
    });
    let conn = connect_or_start(target, autostart.clone()).await?;
    let survive = autostart.map(|autostart| Survive {
        autostart,
        max_deaths: settings.max_crashes,
    });
    let request = Request::Worker(WorkerRequest {
        step,
        config,
        wait: true,
        interactive: out.interactive(),
        claude: Some(resolve_claude(&settings.claude)?),
        task_id,
    });
    let ending = stream_surviving(target, conn, request, out, survive)
        .await
        // A step that failed because its directory went away says so.
        .map_err(|e| {
            if dir.exists() {
                e
            } else {
                target.directory_gone(&dir)
            }
        })?;
    match ending {
        Ending::Step(judgement) if judgement.exit_code != 0 && !dir.exists() => {
            Err(target.directory_gone(&dir))
        }
        Ending::Step(judgement) => {
            report(&judgement, out);
            Ok(judgement)
        }
        Ending::Turn(_) => Err(Error::internal(
            "the daemon ended a worker step without judging it",
        )),
        Ending::DaemonDied { .. } => Err(daemon_died()),
    }
}

/// Where the worker works: its conversation's directory, or for a new worker the
/// repository it would be started in.
fn worker_dir(target: &Target) -> Result<PathBuf, Error> {
    match crate::record::SessionRecord::load(&target.state_dir)? {
        Some(record) => Ok(record.conversation.cwd),
        None => Ok(target.workdir(&super::common::current_dir()?)),
    }
}

/// One line on stderr about the step (the JSON `judged` line is already out).
fn report(judgement: &Judgement, out: &Output) {
    if out.json || (out.quiet && judgement.exit_code == 0) {
        return;
    }
    let nudges = match judgement.step {
        Step::Plan => String::new(),
        _ => format!(
            ", nudges {}/{}",
            judgement.nudges_used, judgement.max_nudges
        ),
    };
    out.say(format!(
        "{}: {} [phase: {}{nudges}]",
        judgement.step, judgement.message, judgement.phase,
    ));
}

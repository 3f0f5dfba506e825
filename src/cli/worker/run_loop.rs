//! `leash loop`: the whole worker, step after step, by the worker machine's rules.

use crate::cli::common::with_default;
use std::io::IsTerminal;

use clap::Args;

use super::{TaskArgs, no_task, run_step};
use crate::cli::common::{block_on, settings, target};
use crate::cli::json::Finished;
use crate::cli::{Global, Output};
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::protocol::Request;
use crate::settings::Name;
use crate::worker::machine::{loop_next, loop_start};
use crate::worker::{Phase, WorkerState, WorkerStep};

pub const EXAMPLES: &str = "Examples:
  leash loop --task \"Add a --version flag\"
  leash loop --task-file TASK.md --max-nudges 3
  leash loop --step                      # ask before each phase
  leash loop --check \"cargo test\" --review --rescopes 1 --task \"...\"   # done means green
  leash loop --json --task \"...\" | jq -c 'select(.type == \"judged\") | .judgement.verdict'
  # the same by hand, in bash:
  leash plan --task \"Fix the flaky test\" && until leash implement; do leash nudge || exit $?; done";

#[derive(Debug, Clone, Args)]
pub struct LoopArgs {
    #[command(flatten)]
    pub worktree: crate::cli::common::WorktreeArg,
    #[command(flatten)]
    pub task: TaskArgs,
    #[arg(long, value_name = "N", help = with_default("Nudges per implement phase before giving up with exit code 10", Name::max_nudges))]
    pub max_nudges: Option<u32>,
    /// Ask before each phase (needs a terminal)
    #[arg(long)]
    pub step: bool,
    #[arg(long, value_name = "MODEL", help = with_default("Model for planning", Name::plan_model))]
    pub plan_model: Option<String>,
    #[arg(long, value_name = "MODEL", help = with_default("Model for implementing and nudging", Name::implement_model))]
    pub implement_model: Option<String>,
    /// Start the task over even if the worker already finished or gave up on it
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub budget: super::BudgetArgs,
    #[command(flatten)]
    pub gates: super::GateArgs,
}

pub fn run(args: LoopArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    if args.step && !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "--step asks before each phase and needs a terminal on standard input",
        )
        .hint("run it in a terminal, or drop --step"));
    }
    let task = args.task.read()?;
    let mut flags = vec![
        (Name::plan_model, args.plan_model.clone()),
        (Name::implement_model, args.implement_model.clone()),
        (Name::max_nudges, args.max_nudges.map(|n| n.to_string())),
        args.budget.flag(),
    ];
    flags.extend(args.gates.flags());
    let settings = settings(&flags)?;
    let config = settings.1.worker_config();
    let target = args.worktree.apply(target(global)?, global, &settings.1)?;
    // A new task replaces a damaged state (the daemon keeps the file aside).
    let state = match WorkerState::load(&target.state_dir) {
        Err(_) if args.fresh => WorkerState::default(),
        loaded => loaded?,
    };
    // A loop run again on the task whose plan is under way resumes that plan, by its id:
    // the daemon may still run the first loop's plan step, and the task is planned once.
    let same_task = task.is_none() || task == state.task.text;
    let mut resume_plan_of = (state.phase == Phase::Planning && same_task && !args.fresh)
        .then(|| state.task.id.clone())
        .flatten();
    let mut next = loop_start(&state, task, args.fresh, &config).ok_or_else(no_task)?;
    // The task this loop works on: the one under way, until it plans its own.
    let mut task_id = state.task.id.clone();

    let mut phase = state.phase;
    let mut last_message = state.last.map(|j| j.message).unwrap_or_default();
    let ended = block_on(async {
        loop {
            let description = next.describe(&config);
            let step = match next.into_step(args.fresh) {
                Ok(step) => step,
                Err((code, message)) => {
                    if out.json {
                        out.json(&Finished {
                            exit_code: code,
                            phase,
                            message: message.unwrap_or(last_message),
                        });
                    } else if let Some(message) = message {
                        out.note(message);
                    }
                    return Ok(code);
                }
            };
            if args.step && !confirm(&format!("next: {description}. Go on?"))? {
                out.note("stopped before the next phase; `leash loop` resumes here");
                return Ok(ErrorKind::Interrupted.exit_code());
            }
            let planning = matches!(step, WorkerStep::Plan { .. });
            // A plan starts the task this loop works on: it names no earlier one (sent
            // again after its daemon died, it must find its own task, not be refused),
            // but the plan under way it resumes.
            let mine = match planning {
                false => task_id.clone(),
                true => resume_plan_of.take(),
            };
            let judgement = run_step(&target, step, mine, &settings, false, out).await?;
            if planning && judgement.verdict.concerns_the_work() {
                task_id.clone_from(&judgement.task_id);
            }
            phase = judgement.phase;
            last_message = judgement.message.clone();
            next = loop_next(&judgement);
        }
    });
    record_exit(&target, task_id, &ended);
    ended
}

/// Keeps the code this loop exits with beside its task, for `report` and `status`: a
/// loop that dies leaves no judgement saying so. A loop that died planning knows no
/// task yet; the worker's state names the one it began. The daemon, when one answers,
/// writes it into the event log; else it is kept in the state dir, under its lock (no
/// daemon is started just for this).
fn record_exit(target: &Target, task_id: Option<String>, ended: &Result<u8, Error>) {
    let state_dir = &target.state_dir;
    let exit_code = match ended {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    let task_id = task_id.or_else(|| WorkerState::load(state_dir).ok()?.task.id);
    let Some(task_id) = task_id else {
        return;
    };
    let told = block_on(tell_daemon(target, &task_id, exit_code));
    if told.is_ok_and(|told| told) {
        return;
    }
    let exit = crate::report::exits::LoopExit {
        task_id,
        exit_code,
        at_ms: crate::time::now_ms(),
    };
    // The exit code itself is what matters to the caller; a state dir that cannot be
    // written now only costs the report this detail.
    let _ = crate::report::exits::record(state_dir, exit);
}

/// Tells the worker's daemon how the loop ended; `false` when none answers.
async fn tell_daemon(target: &Target, task_id: &str, exit_code: u8) -> Result<bool, Error> {
    let Some(conn) = target.open().await? else {
        return Ok(false);
    };
    let request = Request::LoopEnded {
        task_id: task_id.to_string(),
        exit_code,
    };
    conn.call(&request).await?;
    Ok(true)
}

fn confirm(prompt: &str) -> Result<bool, Error> {
    dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(true)
        .interact()
        .map_err(|e| Error::new(ErrorKind::Interrupted, format!("no answer: {e}")))
}

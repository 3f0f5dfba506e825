//! `leash loop`: the whole worker, step after step, by the worker machine's rules.

use crate::cli::common::with_default;
use std::io::IsTerminal;

use clap::Args;

use super::drive::{Drive, record_exit};
use super::{TaskArgs, no_task};
use crate::cli::common::{block_on, settings, target};
use crate::cli::json::Finished;
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::settings::Name;
use crate::worker::machine::loop_start;
use crate::worker::{Phase, WorkerState};

pub const EXAMPLES: &str = "Examples:
  leash loop --task \"Add a --version flag\"
  leash loop --task-file TASK.md --max-nudges 3
  leash loop --step                      # ask before each phase
  leash loop --check \"cargo test\" --review --rescopes 1 --task \"...\"   # done means green
  leash --worker parser loop --attempts 3 --check \"cargo test\" --task \"Speed up the parser\"   # best of three
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
    #[arg(long, conflicts_with = "attempts")]
    pub step: bool,
    /// Best of N (2 to 8): plan once, fork the plan into workers NAME-1 … NAME-N, each
    /// in its own worktree, implement them side by side, have the plan model judge the
    /// green ones, and keep the winner as NAME (implies --worktree)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=8))]
    pub attempts: Option<u32>,
    /// With --attempts: at most N attempts at a time [default: all of them]
    #[arg(long, value_name = "N", requires = "attempts", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// With --attempts: keep the losing attempts as workers NAME-k (their tips are kept
    /// under refs/leash/attempts/ either way)
    #[arg(long, requires = "attempts")]
    pub keep_attempts: bool,
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
    if let Some(n) = args.attempts {
        let how = super::attempts::AttemptArgs {
            n,
            parallel: args.parallel,
            keep: args.keep_attempts,
            fresh: args.fresh,
        };
        return super::attempts::run(&how, task, &settings, global, out);
    }
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
    let resume_plan_of = (state.phase == Phase::Planning && same_task && !args.fresh)
        .then(|| state.task.id.clone())
        .flatten();
    let next = loop_start(&state, task, args.fresh, &config).ok_or_else(no_task)?;
    // The task this loop works on: the one under way, until it plans its own.
    let mut task_id = state.task.id.clone();

    let mut run = Drive {
        target: &target,
        settings: &settings,
        out,
        fresh: args.fresh,
        ask: args.step,
        budget: None,
    };
    let ended = block_on(async {
        let ended = run
            .steps(
                next,
                &mut task_id,
                resume_plan_of,
                state.phase,
                state.last.map(|j| j.message),
            )
            .await?;
        if out.json {
            out.json(&Finished {
                exit_code: ended.code,
                phase: ended.phase,
                message: ended.message.clone(),
            });
        } else if let Some(said) = &ended.said {
            out.note(said);
        }
        Ok(ended.code)
    });
    record_exit(&target, task_id, &ended);
    ended
}

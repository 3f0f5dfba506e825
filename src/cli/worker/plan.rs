//! `leash plan`: a read-only planning turn on the planning model; the plan is saved.

use crate::cli::common::with_default;
use clap::Args;

use super::{TaskArgs, no_task, run_step};
use crate::cli::common::{block_on, settings, target};
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::settings::Name;
use crate::worker::WorkerStep;

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub worktree: crate::cli::common::WorktreeArg,
    #[command(flatten)]
    pub task: TaskArgs,
    #[arg(long, value_name = "MODEL", help = with_default("Model for the planning turn", Name::plan_model))]
    pub model: Option<String>,
    /// Replace the task under way with this one (otherwise a plan waits its turn:
    /// refused with exit code 14 while another task is under way)
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub step: super::StepArgs,
}

pub fn run(args: PlanArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let task = args.task.read()?.ok_or_else(no_task)?;
    let settings = settings(&[(Name::plan_model, args.model), args.step.budget.flag()])?;
    let target = args.worktree.apply(target(global)?, global, &settings.1)?;
    block_on(async {
        let step = WorkerStep::Plan {
            task,
            replace: args.fresh,
        };
        let judgement = run_step(&target, step, None, &settings, args.step.no_start, out).await?;
        Ok(judgement.exit_code)
    })
}

//! `leash implement`: a turn on the implementation model, done when a new commit lands.

use crate::cli::common::with_default;
use clap::Args;

use super::run_step;
use crate::cli::common::{block_on, settings, target};
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::settings::Name;
use crate::worker::WorkerStep;

#[derive(Debug, Clone, Args)]
pub struct ImplementArgs {
    #[command(flatten)]
    pub worktree: crate::cli::common::WorktreeArg,
    #[arg(long, value_name = "MODEL", help = with_default("Model for implementing", Name::implement_model))]
    pub model: Option<String>,
    /// Start the implement phase over even if it is under way
    #[arg(long)]
    pub restart: bool,
    #[command(flatten)]
    pub step: super::StepArgs,
    #[command(flatten)]
    pub gates: super::GateArgs,
}

pub fn run(args: ImplementArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let mut flags = vec![(Name::implement_model, args.model), args.step.budget.flag()];
    flags.extend(args.gates.flags());
    let settings = settings(&flags)?;
    let target = args.worktree.apply(target(global)?, global, &settings.1)?;
    block_on(async {
        let step = WorkerStep::Implement {
            restart: args.restart,
        };
        let judgement = run_step(&target, step, None, &settings, args.step.no_start, out).await?;
        Ok(judgement.exit_code)
    })
}

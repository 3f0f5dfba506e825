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
use crate::settings::{Resolved, Settings};
use crate::worker::machine::{LoopNext, loop_next, loop_start};
use crate::worker::{Phase, WorkerState, WorkerStep};

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
        return super::attempts::run(&args, n, task, &settings, global, out);
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
            .steps(next, &mut task_id, resume_plan_of, state.phase, state.last.map(|j| j.message))
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

/// How a run of steps ended: its exit code, the phase, and why (`said`: when no step
/// just said it).
pub(super) struct Ended {
    pub code: u8,
    pub phase: Phase,
    pub message: String,
    pub said: Option<String>,
}

/// Runs a worker's steps by the loop's rules, from `next` until one ends the loop.
pub(super) struct Drive<'a> {
    pub target: &'a Target,
    pub settings: &'a (Resolved, Settings),
    pub out: &'a Output,
    /// A plan replaces the task under way.
    pub fresh: bool,
    /// Ask before each phase (`--step`).
    pub ask: bool,
    /// What the task may still spend, asked before each step (a best-of-N attempt's
    /// share of the shared pool); `None`: the task's own `--budget`.
    pub budget: Option<&'a (dyn Fn() -> f64 + Sync)>,
}

impl Drive<'_> {
    /// `task_id` is the task this run works on, until it plans its own (then it is
    /// set); `resume_plan_of`: the plan under way it resumes.
    pub async fn steps(
        &mut self,
        mut next: LoopNext,
        task_id: &mut Option<String>,
        mut resume_plan_of: Option<String>,
        mut phase: Phase,
        last_message: Option<String>,
    ) -> Result<Ended, Error> {
        let mut last_message = last_message.unwrap_or_default();
        let config = self.settings.1.worker_config();
        loop {
            let description = next.describe(&config);
            let step = match next.into_step(self.fresh) {
                Ok(step) => step,
                Err((code, said)) => {
                    return Ok(Ended {
                        code,
                        phase,
                        message: said.clone().unwrap_or(last_message),
                        said,
                    });
                }
            };
            if self.ask && !confirm(&format!("next: {description}. Go on?"))? {
                self.out
                    .note("stopped before the next phase; `leash loop` resumes here");
                return Ok(Ended {
                    code: ErrorKind::Interrupted.exit_code(),
                    phase,
                    message: "stopped before the next phase".to_string(),
                    said: None,
                });
            }
            let planning = matches!(step, WorkerStep::Plan { .. });
            // A plan starts the task this loop works on: it names no earlier one (sent
            // again after its daemon died, it must find its own task, not be refused),
            // but the plan under way it resumes.
            let mine = match planning {
                false => task_id.clone(),
                true => resume_plan_of.take(),
            };
            let judgement = match self.budget {
                Some(left) => {
                    let (resolved, mut settings) = self.settings.clone();
                    settings.task_budget_usd = Some(left());
                    run_step(self.target, step, mine, &(resolved, settings), false, self.out).await?
                }
                None => run_step(self.target, step, mine, self.settings, false, self.out).await?,
            };
            if planning && judgement.verdict.concerns_the_work() {
                task_id.clone_from(&judgement.task_id);
            }
            phase = judgement.phase;
            last_message = judgement.message.clone();
            next = loop_next(&judgement);
        }
    }
}

/// Keeps the code this loop exits with beside its task, for `report` and `status`: a
/// loop that dies leaves no judgement saying so. A loop that died planning knows no
/// task yet; the worker's state names the one it began. The daemon, when one answers,
/// writes it into the event log; else it is kept in the state dir, under its lock (no
/// daemon is started just for this).
pub(super) fn record_exit(target: &Target, task_id: Option<String>, ended: &Result<u8, Error>) {
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

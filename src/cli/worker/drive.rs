//! A worker's steps by the loop's rules, from one step until one ends the loop: what
//! `leash loop` runs for a worker, and what each best-of-N attempt runs for its own.

use crate::cli::Output;
use crate::cli::common::block_on;
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::protocol::Request;
use crate::settings::{Resolved, Settings};
use crate::worker::machine::{LoopNext, loop_next};
use crate::worker::{Phase, WorkerState, WorkerStep};

use super::run_step;

/// How a run of steps ended: its exit code, the phase, and why (`said`: when no step
/// just said it).
pub struct Ended {
    pub code: u8,
    pub phase: Phase,
    pub message: String,
    pub said: Option<String>,
}

/// Runs a worker's steps by the loop's rules, from `next` until one ends the loop.
pub struct Drive<'a> {
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
                    run_step(
                        self.target,
                        step,
                        mine,
                        &(resolved, settings),
                        false,
                        self.out,
                    )
                    .await?
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
pub fn record_exit(target: &Target, task_id: Option<String>, ended: &Result<u8, Error>) {
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

//! `leash loop --attempts N`: best of N. The task is planned once in the worker NAME's
//! conversation, forked into workers NAME-1 … NAME-N (each in its own worktree), each
//! implemented by the loop's rules, the green ones judged by the plan model in NAME's
//! conversation, and the winner renamed to NAME. What comes next is decided by
//! [`AttemptSet::next`] from the set saved in NAME's state dir; this carries it out.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use super::drive::{Drive, record_exit};
use super::{no_task, run_step};
use crate::cli::common::block_on;
use crate::cli::json::{AttemptLine, Finished, WinnerLine};
use crate::cli::session::fork::{Fork, fork_worker};
use crate::cli::{Global, Output};
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::paths::{RECORD_FILE, WorkerName};
use crate::record::SessionRecord;
use crate::settings::{Resolved, Settings};
use crate::worker::attempts::{
    ATTEMPTS_REFS, AttemptEnd, AttemptSet, Candidate, Chosen, Next, Pick, attempt_name, budget_of,
};
use crate::worker::machine::loop_start;
use crate::worker::observe::MAX_REVIEW_DIFF;
use crate::worker::{Phase, Verdict, WorkerState, WorkerStep};
use crate::worktree::Worktree;

/// What every part of the run needs.
struct Attempts<'a> {
    /// The worker NAME: it plans, judges, and becomes the winner.
    name: Target,
    settings: &'a (Resolved, Settings),
    /// The repository's main work tree.
    repo: PathBuf,
    /// How many attempts.
    n: u32,
    parallel: usize,
    keep: bool,
    out: &'a Output,
}

/// What `loop --attempts` was asked for.
pub struct AttemptArgs {
    /// How many attempts.
    pub n: u32,
    /// At most this many at a time (default: all).
    pub parallel: Option<u32>,
    /// Keep the losers as workers.
    pub keep: bool,
    /// Start the task over.
    pub fresh: bool,
}

pub fn run(
    args: &AttemptArgs,
    task: Option<String>,
    settings: &(Resolved, Settings),
    global: &Global,
    out: &Output,
) -> Result<u8, Error> {
    let name = crate::cli::common::target(global)?;
    let repo = crate::git::work_tree(&crate::cli::common::current_dir()?)?;
    let repo = main_work_tree(&repo);
    let ctx = Attempts {
        n: args.n,
        parallel: args.parallel.map_or(args.n as usize, |p| p.max(1) as usize),
        keep: args.keep,
        name,
        settings,
        repo,
        out,
    };
    let state = WorkerState::load(&ctx.name.state_dir)?;
    let same_task = task.is_none() || task == state.task.text;
    let saved = AttemptSet::load(&ctx.name.state_dir)?
        .filter(|set| same_task && !args.fresh && Some(&set.task_id) == state.task.id.as_ref());
    let set = match saved {
        Some(set) => set,
        None => {
            ctx.names_free(args.n)?;
            match block_on(ctx.plan(&state, task, args.fresh))? {
                Ok(set) => set,
                Err(code) => return Ok(code),
            }
        }
    };
    let task_id = Some(set.task_id.clone());
    let ended = block_on(ctx.carry_out(set));
    record_exit(&ctx.name, task_id, &ended);
    ended
}

/// The work tree whose `.leash/worktrees` holds the workers' worktrees: the main one,
/// also when the command runs in a linked worktree.
fn main_work_tree(dir: &Path) -> PathBuf {
    let common = git2::Repository::discover(dir)
        .ok()
        .and_then(|repo| repo.commondir().canonicalize().ok());
    match common {
        Some(common) if common.file_name().is_some_and(|name| name == ".git") => common
            .parent()
            .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
        _ => dir.to_path_buf(),
    }
}

impl Attempts<'_> {
    fn attempt_target(&self, k: u32) -> Result<Target, Error> {
        let name = WorkerName::parse(&attempt_name(self.name.worker.as_str(), k))?;
        Target::for_worker(self.name.dirs.clone(), name)
    }

    /// Before any turn: NAME can become the winner (no worktree or branch of that name
    /// is in the way), and every attempt's name is valid and free (no such worker or
    /// branch).
    fn names_free(&self, n: u32) -> Result<(), Error> {
        let name = &self.name.worker;
        let branch = format!("leash/{name}");
        let in_the_way = if self.name.worktree.is_some() {
            Some(format!("worker {name} works in a worktree of its own"))
        } else if crate::git::branch_tip(&self.repo, &branch)?.is_some() {
            Some(format!("a branch {branch} exists"))
        } else {
            let path = self
                .repo
                .join(crate::paths::LEASH_DIR)
                .join(crate::paths::WORKTREES)
                .join(name.as_str());
            path.exists().then(|| format!("{} exists", path.display()))
        };
        if let Some(why) = in_the_way {
            return Err(Error::usage(format!(
                "the winner of the attempts becomes worker {name} on {branch}, but {why}"
            ))
            .hint(format!(
                "use another --worker, or `leash session rm {name}` (and `git branch -D {branch}`) first"
            )));
        }
        for k in 1..=n {
            let worker = attempt_name(self.name.worker.as_str(), k);
            let target = self.attempt_target(k).map_err(|e| {
                Error::usage(format!(
                    "attempt {k} cannot be named {worker}: {}",
                    e.message
                ))
                .hint("use a shorter --worker name")
            })?;
            let branch = format!("leash/{worker}");
            let taken = if crate::paths::holds_worker(&target.state_dir) || target.socket.exists() {
                Some(format!("a worker {worker} exists"))
            } else if crate::git::branch_tip(&self.repo, &branch)?.is_some() {
                Some(format!("a branch {branch} exists"))
            } else {
                None
            };
            if let Some(taken) = taken {
                return Err(Error::usage(format!(
                    "attempt {k} of {} needs the name {worker}, but {taken}",
                    self.name.worker
                ))
                .hint(format!(
                    "use another --worker, or remove it first (`leash session rm {worker}`, `git branch -D {branch}`)"
                )));
            }
        }
        Ok(())
    }

    /// Plans the task once, in NAME's conversation (a plan under way, or done, is not
    /// sent again), and saves the attempt set; `Err(code)`: the plan did not come.
    async fn plan(
        &self,
        state: &WorkerState,
        task: Option<String>,
        fresh: bool,
    ) -> Result<Result<AttemptSet, u8>, Error> {
        let n = self.n;
        let same_task = task.is_none() || task == state.task.text;
        let planned = same_task && !fresh && state.phase == Phase::Planned;
        let task_id = if planned {
            state.task.id.clone()
        } else {
            let task = task
                .or_else(|| state.task.text.clone())
                .ok_or_else(no_task)?;
            let resume = (state.phase == Phase::Planning && same_task && !fresh)
                .then(|| state.task.id.clone())
                .flatten();
            let step = WorkerStep::Plan {
                task,
                replace: fresh,
            };
            let judged = run_step(&self.name, step, resume, self.settings, false, self.out).await?;
            if judged.verdict != Verdict::Planned {
                self.finished(judged.exit_code, judged.phase, judged.message);
                return Ok(Err(judged.exit_code));
            }
            judged.task_id
        };
        let task_id = task_id.ok_or_else(|| Error::internal("the plan named no task"))?;
        let planner = WorkerState::load(&self.name.state_dir)?;
        let mut set = AttemptSet::new(task_id, n);
        set.plan_usd = planner.task.cost.total_usd();
        set.base = SessionRecord::load(&self.name.state_dir)?
            .map(|r| crate::git::head(&r.conversation.cwd))
            .transpose()?
            .flatten();
        set.save(&self.name.state_dir)?;
        Ok(Ok(set))
    }

    /// Does what the set says comes next until it is done.
    async fn carry_out(&self, mut set: AttemptSet) -> Result<u8, Error> {
        loop {
            match set.next() {
                Next::Run(pending) => {
                    if let Some(code) = self.run_attempts(&mut set, pending).await? {
                        let said = "interrupted: `leash loop --attempts` run again goes on with the attempts that did not end";
                        self.out.note(said);
                        self.finished(code, Phase::Implementing, said.to_string());
                        return Ok(code);
                    }
                }
                Next::Judge(green) => {
                    let pick = self.judge(&set, &green).await?;
                    set.chosen = set.after_judge(pick.as_ref());
                    set.save(&self.name.state_dir)?;
                }
                Next::Keep(k) => {
                    if set.chosen.is_none() {
                        set.chosen = set.alone();
                        set.save(&self.name.state_dir)?;
                    }
                    self.keep(&mut set, k).await?;
                }
                Next::Finish(code) => {
                    self.tidy(&set);
                    return Ok(self.end(&set, code));
                }
            }
        }
    }

    /// The last lines: the winner (when there is one), then the usual final line.
    fn end(&self, set: &AttemptSet, code: u8) -> u8 {
        let name = self.name.worker.to_string();
        if let Some(chosen) = set.chosen.as_ref().filter(|_| code == 0) {
            let branch = format!("leash/{name}");
            if self.out.json {
                self.out.json(&WinnerLine {
                    k: chosen.k,
                    worker: name.clone(),
                    branch: branch.clone(),
                    chosen_by: chosen.by,
                    reason: chosen.reason.clone(),
                });
            } else {
                self.out.note(format!(
                    "attempt {} won ({}): it is worker {name} now, on {branch}",
                    chosen.k,
                    describe(chosen)
                ));
                if chosen.by == crate::worker::attempts::ChosenBy::Judge {
                    self.out.note(format!(
                        "the judge: {}",
                        crate::human::one_line(&chosen.reason, 200)
                    ));
                }
            }
            let phase = WorkerState::load(&self.name.state_dir)
                .map(|s| s.phase)
                .unwrap_or(Phase::Done);
            self.finished(code, phase, format!("attempt {} won", chosen.k));
            return code;
        }
        let message = format!(
            "no attempt passed; every attempt is kept for a look (`leash session list`): {}",
            (1..=set.attempts)
                .map(|k| attempt_name(&name, k))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !self.out.json {
            self.out.say(&message);
        }
        self.finished(code, Phase::OutOfNudges, message);
        code
    }

    fn finished(&self, exit_code: u8, phase: Phase, message: String) {
        if self.out.json {
            self.out.json(&Finished {
                exit_code,
                phase,
                message,
            });
        }
    }

    /// Forks the attempts that do not exist yet, then runs the pending ones, at most
    /// `parallel` at a time, each in its own thread and daemon; each one's end is saved
    /// as it comes. `Some(code)`: interrupted, the set saved as far as it got.
    async fn run_attempts(
        &self,
        set: &mut AttemptSet,
        pending: Vec<u32>,
    ) -> Result<Option<u8>, Error> {
        for &k in &pending {
            self.fork_if_missing(k).await?;
        }
        // Each attempt runs on a thread of its own, with a runtime of its own; this one
        // only waits for them.
        let queue = Mutex::new(pending.iter().copied().collect::<VecDeque<u32>>());
        let (tx, rx) = mpsc::channel::<(u32, Result<AttemptEnd, Error>)>();
        let set_now = Mutex::new(set.clone());
        let mut interrupted = None;
        std::thread::scope(|scope| {
            for _ in 0..self.parallel.min(pending.len()) {
                let tx = tx.clone();
                let queue = &queue;
                let set_now = &set_now;
                scope.spawn(move || {
                    loop {
                        let Some(k) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                            return;
                        };
                        let ended =
                            block_on(self.attempt(k, set_now)).map(|(end, target, task)| {
                                // Outside the attempt's runtime: it tells the daemon on one of its own.
                                record_exit(&target, task, &Ok(end.exit_code));
                                end
                            });
                        if tx.send((k, ended)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for &k in &pending {
                self.out.note(format!(
                    "attempt {k} ({}): implementing",
                    attempt_name(self.name.worker.as_str(), k)
                ));
            }
            for (k, ended) in rx {
                let end = match ended {
                    Ok(end) if end.exit_code != ErrorKind::Interrupted.exit_code() => end,
                    Ok(_) => {
                        interrupted = Some(ErrorKind::Interrupted.exit_code());
                        continue;
                    }
                    Err(e) if e.kind == ErrorKind::Interrupted => {
                        interrupted = Some(e.exit_code());
                        continue;
                    }
                    Err(e) => self.failed_attempt(k, &e),
                };
                self.report(&end);
                if let Ok(mut now) = set_now.lock() {
                    now.end(end);
                    if let Err(e) = now.save(&self.name.state_dir) {
                        self.out
                            .say(format!("{} (the attempt runs again next time)", e.message));
                    }
                }
            }
        });
        *set = set_now
            .into_inner()
            .map_err(|_| Error::internal("an attempt's thread panicked"))?;
        Ok(interrupted)
    }

    /// An attempt whose loop failed outright (its daemon could not be started, git
    /// failed): it ended with that error's code.
    fn failed_attempt(&self, k: u32, e: &Error) -> AttemptEnd {
        AttemptEnd {
            k,
            exit_code: e.exit_code(),
            phase: Phase::Implementing,
            message: e.message.clone(),
            checks: Vec::new(),
            cost_usd: 0.0,
            changed_lines: 0,
            tip: None,
        }
    }

    /// The attempt's `attempt` line, or its status line on a terminal.
    fn report(&self, end: &AttemptEnd) {
        let worker = attempt_name(self.name.worker.as_str(), end.k);
        if self.out.json {
            self.out.json(&AttemptLine {
                k: end.k,
                branch: format!("leash/{worker}"),
                worker,
                outcome: end.phase,
                exit_code: end.exit_code,
                message: end.message.clone(),
                checks: end.checks.clone(),
                cost_usd: end.cost_usd,
                changed_lines: end.changed_lines,
            });
            return;
        }
        let verdict = match end.exit_code {
            0 => "green".to_string(),
            code => format!("exit {code}"),
        };
        self.out.note(format!(
            "attempt {} ({worker}): {verdict}, {} line(s) changed, {}: {}",
            end.k,
            end.changed_lines,
            crate::human::usd(end.cost_usd),
            end.message
        ));
    }

    /// Attempt `k` forked from NAME's planned conversation into its own worktree, unless
    /// it exists (a run cut off after forking it).
    async fn fork_if_missing(&self, k: u32) -> Result<(), Error> {
        let target = self.attempt_target(k)?;
        if target.state_dir.join(RECORD_FILE).is_file() {
            return Ok(());
        }
        // A fork cut off after its worktree was made: the worktree is reused.
        Worktree::forget(&target.state_dir);
        let fork = Fork {
            worktree: true,
            reuse_branch: true,
            attempt_of: Some(self.name.worker.to_string()),
        };
        fork_worker(&self.name, target.worker, &fork).await?;
        Ok(())
    }

    /// One attempt's loop, from where its worker is, to its end.
    async fn attempt(
        &self,
        k: u32,
        set: &Mutex<AttemptSet>,
    ) -> Result<(AttemptEnd, Target, Option<String>), Error> {
        let target = self.attempt_target(k)?;
        let state = WorkerState::load(&target.state_dir)?;
        let config = self.settings.1.worker_config();
        let next = loop_start(&state, None, false, &config).ok_or_else(no_task)?;
        let mut task_id = state.task.id.clone();
        let muted = Output::muted();
        let (plan_usd, pool) = match set.lock() {
            Ok(set) => (set.plan_usd, self.settings.1.task_budget_usd),
            Err(_) => return Err(Error::internal("an attempt's thread panicked")),
        };
        // Asked before each step: the others spend meanwhile.
        let budget = || {
            budget_of(
                pool.unwrap_or(f64::INFINITY),
                &self.own_costs(plan_usd, Some(k)),
            )
        };
        let mut drive = Drive {
            target: &target,
            settings: self.settings,
            out: &muted,
            fresh: false,
            ask: false,
            budget: pool.map(|_| &budget as &(dyn Fn() -> f64 + Sync)),
        };
        let ended = drive
            .steps(next, &mut task_id, None, state.phase, None)
            .await?;
        let after = WorkerState::load(&target.state_dir)?;
        let branch = format!("leash/{}", target.worker);
        let tip = crate::git::branch_tip(&self.repo, &branch)?;
        let base = set.lock().ok().and_then(|s| s.base.clone());
        let changed_lines = match (&base, &tip) {
            (Some(base), Some(tip)) => crate::git::changed_lines(&self.repo, base, tip)?,
            _ => 0,
        };
        let end = AttemptEnd {
            k,
            exit_code: ended.code,
            phase: ended.phase,
            message: ended.message,
            checks: after.run.gates.checks.clone(),
            cost_usd: (after.task.cost.total_usd() - plan_usd).max(0.0),
            changed_lines,
            tip,
        };
        Ok((end, target, task_id))
    }

    /// What each attempt's own turns cost so far (`but`: leave that one out).
    fn own_costs(&self, plan_usd: f64, but: Option<u32>) -> Vec<f64> {
        (1..=self.n)
            .filter(|k| Some(*k) != but)
            .filter_map(|k| {
                let target = self.attempt_target(k).ok()?;
                let state = WorkerState::load(&target.state_dir).ok()?;
                Some((state.task.cost.total_usd() - plan_usd).max(0.0))
            })
            .collect()
    }

    /// Shows the green attempts to the plan model in NAME's conversation; its pick,
    /// `None` when the judge turn could not be had (failed, over budget).
    async fn judge(&self, set: &AttemptSet, green: &[u32]) -> Result<Option<Pick>, Error> {
        let share = MAX_REVIEW_DIFF / green.len().max(1);
        let mut candidates = Vec::new();
        for &k in green {
            let Some(end) = set.ended_of(k) else { continue };
            let tip = end.tip.clone().unwrap_or_default();
            let diff = crate::git::diff_between(&self.repo, set.base.as_deref(), &tip, share)?;
            let target = self.attempt_target(k)?;
            let turns = SessionRecord::load(&target.state_dir)?.map_or(0, |r| r.turns);
            candidates.push(Candidate {
                k,
                stat: diff.stat,
                patch: diff.patch,
                truncated: diff.truncated,
                checks: end.checks.iter().map(|c| c.command.clone()).collect(),
                cost_usd: end.cost_usd,
                turns,
            });
        }
        self.out.note(format!(
            "{} attempts passed; the plan model judges them",
            green.len()
        ));
        let (resolved, mut settings) = self.settings.clone();
        if let Some(pool) = settings.task_budget_usd {
            let spent: Vec<f64> = set.ended.iter().map(|e| e.cost_usd).collect();
            settings.task_budget_usd = Some(budget_of(pool, &spent));
        }
        let step = WorkerStep::Judge { candidates };
        let judged = run_step(
            &self.name,
            step,
            Some(set.task_id.clone()),
            &(resolved, settings),
            false,
            &Output::muted(),
        )
        .await?;
        Ok(judged.pick.filter(|_| judged.verdict == Verdict::Judged))
    }

    /// The winner becomes NAME: the losers' tips kept under `refs/leash/attempts/`, the
    /// losers removed (unless kept), the winner's worktree, branch, state and
    /// conversation moved to NAME's. Each part is skipped once done, and the state dirs
    /// change places in one atomic exchange at the end, so a run cut off anywhere is
    /// finished by running it again.
    async fn keep(&self, set: &mut AttemptSet, k: u32) -> Result<(), Error> {
        let muted = Output::muted();
        let winner = self.attempt_target(k)?;
        // NAME's set is not done yet: the state dirs have not changed places.
        crate::cli::session::stop::stop_one(&self.name, &muted).await?;
        for j in (1..=set.attempts).filter(|j| *j != k) {
            self.settle_loser(set, j, &muted).await?;
        }
        #[cfg(debug_assertions)]
        die_here_for_tests("settled");
        if winner.state_dir.exists() {
            crate::cli::session::stop::stop_one(&winner, &muted).await?;
            self.rename_winner(set, &winner)?;
        }
        set.done = true;
        Ok(())
    }

    /// The planner's dir, exchanged into the winner's old name, goes: its work is done
    /// (and a run cut off before it went removes it now).
    fn tidy(&self, set: &AttemptSet) {
        let Some(chosen) = set.chosen.as_ref().filter(|_| set.done) else {
            return;
        };
        let Ok(old) = self.attempt_target(chosen.k) else {
            return;
        };
        if let Ok(Some(left)) = AttemptSet::load(&old.state_dir)
            && left.task_id == set.task_id
            && !left.done
        {
            let _ = std::fs::remove_dir_all(&old.state_dir);
        }
    }

    /// A losing attempt: its tip kept, then (unless `--keep-attempts`) its rows folded
    /// into the winner's history and the worker, worktree and branch removed. A worktree
    /// holding what git could not give back is kept, and said so.
    async fn settle_loser(&self, set: &AttemptSet, j: u32, muted: &Output) -> Result<(), Error> {
        let target = self.attempt_target(j)?;
        let branch = format!("leash/{}", target.worker);
        if let Some(tip) = crate::git::branch_tip(&self.repo, &branch)? {
            let kept = format!("{ATTEMPTS_REFS}/{}", target.worker);
            crate::git::keep_at(&self.repo, &kept, &tip)?;
        }
        if self.keep || !target.state_dir.exists() {
            return Ok(());
        }
        crate::cli::session::stop::stop_one(&target, muted).await?;
        if let Some(worktree) = &target.worktree {
            if let Err(e) = worktree.ensure_clean() {
                self.out.say(format!(
                    "attempt {j} is kept as worker {}: {}",
                    target.worker, e.message
                ));
                return Ok(());
            }
            worktree.remove(false)?;
        }
        self.fold_rows(&target, set);
        crate::git::delete_branch(&self.repo, &branch)?;
        remove_dir(&target.state_dir)
    }

    /// The task's rows of a dir that goes (a loser's, the planner's) are kept in the
    /// dir that becomes NAME's (the winner's, until the exchange), so the report keeps
    /// every attempt and every turn's cost.
    fn fold_rows(&self, loser: &Target, set: &AttemptSet) {
        let into = self.attempt_target_dir(set);
        let Ok(ledger) = crate::report::history::fold_logs(&loser.state_dir) else {
            return;
        };
        if let Some(row) = ledger.row(&set.task_id) {
            let row = crate::report::TaskRow {
                worker: loser.worker.to_string(),
                branch: Some(format!("leash/{}", loser.worker)),
                ..row
            };
            if let Err(why) = crate::report::attempts::record(&into, row) {
                self.out
                    .say(format!("the report loses attempt {}: {why}", loser.worker));
            }
        }
    }

    /// The state dir that becomes NAME's: the winner's before the exchange, NAME's after.
    fn attempt_target_dir(&self, set: &AttemptSet) -> PathBuf {
        let k = set.chosen.as_ref().map_or(0, |c| c.k);
        match self.attempt_target(k) {
            Ok(winner) if winner.state_dir.join(RECORD_FILE).is_file() => winner.state_dir,
            _ => self.name.state_dir.clone(),
        }
    }

    /// Moves the winner's worktree, branch, state and conversation to NAME.
    fn rename_winner(&self, set: &mut AttemptSet, winner: &Target) -> Result<(), Error> {
        let name = &self.name.worker;
        let worktree = winner
            .worktree
            .as_ref()
            .ok_or_else(|| Error::internal(format!("attempt {} has no worktree", winner.worker)))?;
        let moved = worktree.rename_to(name)?;
        #[cfg(debug_assertions)]
        die_here_for_tests("moved");
        moved.save(&winner.state_dir)?;
        if let Some(mut record) = SessionRecord::load(&winner.state_dir)? {
            let conversation = &mut record.conversation;
            if let Err(why) = crate::claude::transcript::carry(
                &conversation.session_id,
                &conversation.cwd,
                &moved.path,
            ) {
                self.out.say(format!(
                    "the conversation's transcript was not copied ({why}); claude must find it by itself"
                ));
            }
            conversation.cwd = moved.path.clone();
            conversation.worker = name.to_string();
            record.save(&winner.state_dir)?;
        }
        let mut state = WorkerState::load(&winner.state_dir)?;
        state.attempt_of = None;
        state.save(&winner.state_dir)?;
        self.fold_rows(&self.name, set);
        let mut done = set.clone();
        done.done = true;
        done.save(&winner.state_dir)?;
        #[cfg(debug_assertions)]
        die_here_for_tests("recorded");
        exchange(&self.name.state_dir, &winner.state_dir)?;
        #[cfg(debug_assertions)]
        die_here_for_tests("exchanged");
        Ok(())
    }
}

/// Test-only, and in debug builds only: `loop --attempts` SIGKILLs itself where the
/// winner is being kept, at the point `LEASH_TEST_ATTEMPTS_DIE_AT` names (`settled`,
/// `moved`, `recorded`, `exchanged`), as a run killed there. No release build reads it.
#[cfg(debug_assertions)]
fn die_here_for_tests(point: &str) {
    if std::env::var_os("LEASH_TEST_ATTEMPTS_DIE_AT").is_some_and(|at| at == point) {
        // SAFETY: signalling this very process has no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// How the winner was chosen, in words.
fn describe(chosen: &Chosen) -> &'static str {
    match chosen.by {
        crate::worker::attempts::ChosenBy::Alone => "the only green attempt",
        crate::worker::attempts::ChosenBy::Judge => "chosen by the plan model",
        crate::worker::attempts::ChosenBy::FewestLines => {
            "the judge named none: the fewest changed lines"
        }
    }
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    std::fs::remove_dir_all(dir).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(Error::io(format!("cannot remove {}", dir.display()), e)),
    })
}

/// Swaps two directories in one step (`renameat2(RENAME_EXCHANGE)`): there is never a
/// moment without a state dir under either name.
fn exchange(a: &Path, b: &Path) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    let (Some(ca), Some(cb)) = (cstr(a), cstr(b)) else {
        return Err(Error::internal("a state dir's path holds a NUL byte"));
    };
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(Error::io(
        format!("cannot exchange {} and {}", a.display(), b.display()),
        std::io::Error::last_os_error(),
    ))
}

//! Running a worker step: the pure machine in `worker::machine` decides, this carries
//! its actions out (looking at git, pausing, running turns in the conversation,
//! running checks) and feeds back what it saw, until the step's judgement.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::checks;
use super::job::{Wait, Wake};
use super::parts::{Parts, Saving};
use super::turn::{Progress, TurnRun};
use crate::claude::session::Cancel;
use crate::error::Error;
use crate::git;
use crate::landing_git;
use crate::protocol::{EventBody, WorkerRequest};
use crate::time::now_ms;
use crate::turn::{TurnKind, TurnSpec};
use crate::worker::machine::{Action, LandGit, LandSeen, Note, Seen, StepMachine, ends_the_task};
use crate::worker::observe::attribute;
use crate::worker::{Judgement, Verdict};

/// A turn the step runs, and what the step needs to judge it.
struct StepTurn {
    run: TurnRun,
    /// A compaction before a phase's turn, not a turn of the work.
    compaction: bool,
    /// HEAD before the turn, when it could be read.
    head_before: Option<Option<String>>,
}

pub struct StepRun {
    id: u64,
    request: WorkerRequest,
    machine: Option<StepMachine>,
    turn: Option<StepTurn>,
    /// `step_started` went out (after the machine's first answer: a plan's new task
    /// has its id by then).
    announced: bool,
    /// The task under way when the step began: one a new task replaces ends here.
    under_way: Option<String>,
    /// The step ended with the worker's work done.
    work_done: bool,
    /// The checks of the run under way, one at a time.
    checking: Option<checks::Checking>,
}

impl StepRun {
    pub fn new(id: u64, request: WorkerRequest) -> StepRun {
        StepRun {
            id,
            request,
            machine: None,
            turn: None,
            announced: false,
            under_way: None,
            work_done: false,
            checking: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn request(&self) -> &WorkerRequest {
        &self.request
    }

    pub fn request_mut(&mut self) -> &mut WorkerRequest {
        &mut self.request
    }

    /// The step ended with the worker's work done.
    pub fn work_done(&self) -> bool {
        self.work_done
    }

    pub fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.under_way = parts.worker().task_under_way();
        if let Err(e) = ready_for(parts, &self.request) {
            let judged = Judgement {
                exit_code: e.exit_code(),
                ..parts
                    .worker()
                    .judgement(self.request.step.step(), Verdict::TurnFailed, e.message)
            };
            self.work_done = end_step(parts, self.id, judged);
            return Wait::Finished;
        }
        let context = parts.session().view().context_percent();
        self.machine = Some(
            StepMachine::new(
                self.request.step.clone(),
                self.request.config.clone(),
                self.request.task_id.clone(),
            )
            .with_context(context),
        );
        self.drive(parts, Seen::Start, cancel)
    }

    pub fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Wait {
        if let Some(mut turn) = self.turn.take() {
            return match turn.run.wake(parts, wake, cancel) {
                Progress::Wait(wait) => {
                    self.turn = Some(turn);
                    wait
                }
                Progress::Ended(outcome) if turn.compaction => {
                    self.drive(parts, Seen::Compacted(outcome), cancel)
                }
                Progress::Ended(outcome) => {
                    let seen = turn_seen(parts, turn.head_before, outcome);
                    self.drive(parts, seen, cancel)
                }
            };
        }
        let seen = match wake {
            Wake::Timer => Seen::Waited,
            Wake::Cancelled => {
                // The checks left to run do not run.
                self.checking = None;
                Seen::Interrupted
            }
            Wake::CheckRan(result) => match self.checking.take() {
                Some(mut checking) => {
                    checking.ended(result);
                    match next_check(parts, &mut checking) {
                        Some(wait) => {
                            self.checking = Some(checking);
                            return wait;
                        }
                        None => Seen::Checked(checking.results()),
                    }
                }
                None => Seen::Checked(vec![result]),
            },
            Wake::Session(done) => Seen::GitFailed(Error::internal(format!(
                "leash lost its place in the step (the session answered {done:?})"
            ))),
        };
        self.drive(parts, seen, cancel)
    }

    /// Feeds what was seen to the machine and carries out its actions until one has
    /// to wait.
    fn drive(&mut self, parts: &mut Parts, mut seen: Seen, cancel: &Cancel) -> Wait {
        let Some(machine) = self.machine.as_mut() else {
            return Wait::Finished;
        };
        loop {
            let transcript_length = parts.session().view().transcript_length();
            let action =
                match parts
                    .worker_mut()
                    .advance(machine, (seen, now_ms()), transcript_length)
                {
                    Ok(action) => action,
                    Err(e) => {
                        let failed = unsaved(parts, machine.step(), e);
                        self.work_done = end_step(parts, self.id, failed);
                        return Wait::Finished;
                    }
                };
            if !self.announced {
                self.announced = true;
                let (task_id, task) = parts.worker().task();
                let replaced = self
                    .under_way
                    .take()
                    .filter(|old| task_id.as_ref() != Some(old));
                let body = EventBody::StepStarted {
                    step: machine.step(),
                    task_id,
                    task,
                    host: crate::pid_record::host(),
                };
                parts.emit(body);
                if let Some(old) = replaced {
                    parts.record_task(old);
                }
            }
            for note in machine.take_notes() {
                emit_note(parts, note);
            }
            seen = match action {
                Action::Finish(judged) => {
                    self.work_done = end_step(parts, self.id, judged);
                    return Wait::Finished;
                }
                Action::Look => look(parts),
                Action::Diff => diff(parts),
                Action::Land(op) => land_git(parts, op),
                Action::Pause { ms, why } => {
                    parts.info(why);
                    let until_ms = now_ms().saturating_add(ms);
                    parts.emit(EventBody::Waiting { until_ms });
                    return Wait::Until(Instant::now() + Duration::from_millis(ms));
                }
                Action::Compact { instructions } => {
                    let spec = TurnSpec {
                        kind: TurnKind::Compact,
                        ..TurnSpec::user(format!("/compact {instructions}"))
                    };
                    return self.run_turn(parts, spec, true, None, cancel);
                }
                Action::Send {
                    kind,
                    prompt,
                    settings,
                    resumed,
                    continue_on_crash,
                    cut_off_prompt,
                } => {
                    let spec = TurnSpec {
                        prompt,
                        kind,
                        settings,
                        interactive: self.request.interactive,
                        retry: self.request.config.retry,
                        claude: self.request.claude.clone(),
                        continue_on_crash,
                        cut_off_since: cut_off_prompt
                            .as_ref()
                            .and(parts.worker().in_flight_since()),
                        cut_off_prompt,
                    };
                    let since = resumed.then(|| parts.worker().last_seen_head());
                    return self.run_turn(parts, spec, false, since, cancel);
                }
                Action::RunChecks {
                    commands,
                    timeout_ms,
                } => match start_checks(parts, commands, timeout_ms) {
                    Ok(mut checking) => match next_check(parts, &mut checking) {
                        Some(wait) => {
                            self.checking = Some(checking);
                            return wait;
                        }
                        None => Seen::Checked(Vec::new()),
                    },
                    Err(e) => Seen::GitFailed(e),
                },
            };
        }
    }

    /// A turn of the step (or a compaction before one). The commits that appear during
    /// it count from `since` when it goes on from a turn a dead daemon left, else from
    /// HEAD now.
    fn run_turn(
        &mut self,
        parts: &mut Parts,
        spec: TurnSpec,
        compaction: bool,
        since: Option<Option<String>>,
        cancel: &Cancel,
    ) -> Wait {
        let head_before = (!compaction).then(|| {
            since.unwrap_or_else(|| cwd(parts).and_then(|cwd| git::head(&cwd).ok().flatten()))
        });
        let mut run = TurnRun::new(self.id, spec, parts);
        let wait = run.begin(parts, cancel);
        self.turn = Some(StepTurn {
            run,
            compaction,
            head_before,
        });
        wait
    }
}

/// A step needs a work tree to judge commits in, and the worker's state: a new task
/// replaces a damaged one, anything else reports it.
fn ready_for(parts: &mut Parts, request: &WorkerRequest) -> Result<(), Error> {
    let cwd = cwd(parts).ok_or_else(|| {
        Error::usage("this worker has no session yet").hint("start one with `leash session start`")
    })?;
    git::work_tree(&cwd)?;
    if request.step.replaces_damaged_state()
        && let Some(note) = parts.worker_mut().replace_damaged()
    {
        parts.warn(note);
    }
    match parts.worker().damage() {
        Some(e) => Err(Error::setup(e.message.clone())
            .hint("`leash loop --fresh --task ...` starts over (the damaged file is kept aside)")),
        None => Ok(()),
    }
}

/// Records the step's judgement and tells its clients; true when the work is done
/// (the nudges still waiting are then dropped). A judgement that cannot be saved (a
/// full disk) fails the step, naming the file.
pub fn end_step(parts: &mut Parts, id: u64, judged: Judgement) -> bool {
    let saved = parts
        .worker_mut()
        .judged(&judged)
        .and_then(|done| parts.save_record(Saving::Now).map(|()| done));
    let (judged, work_done) = match saved {
        Ok(done) => (judged, done),
        Err(e) => (unsaved(parts, judged.step, e), false),
    };
    let ended = ends_the_task(&judged)
        .then(|| judged.task_id.clone())
        .flatten();
    parts.out().emit(
        Some(id),
        EventBody::<serde_json::Value>::Judged { judgement: judged },
    );
    if let Some(task_id) = ended {
        parts.record_task(task_id);
    }
    work_done
}

/// A step whose state could not be saved (a full disk) fails with why, naming the
/// file: what it did is not on disk, so it must not be reported as done.
fn unsaved(parts: &Parts, step: crate::worker::Step, e: Error) -> Judgement {
    Judgement {
        exit_code: e.exit_code(),
        ..parts
            .worker()
            .judgement(step, Verdict::TurnFailed, e.message)
    }
}

/// What a step's machine said happened, as notices and events.
fn emit_note(parts: &mut Parts, note: Note) {
    match note {
        Note::Info(message) => parts.info(message),
        Note::ChecksRan(checks) => parts.emit(EventBody::ChecksRan { checks }),
        Note::Reviewed(review) => parts.emit(EventBody::Reviewed { review }),
        Note::Rescoped { number, of, plan } => parts.emit(EventBody::Rescoped { number, of, plan }),
        Note::Landed {
            task_id,
            commit,
            target,
        } => {
            parts.emit(EventBody::Landed {
                task_id: task_id.clone(),
                commit,
                target,
            });
            // The task's row in the history is folded again, now with its landing.
            parts.record_task(task_id);
        }
    }
}

fn cwd(parts: &Parts) -> Option<PathBuf> {
    parts.session().view().cwd()
}

/// How a turn of the step ended, with the commits that appeared meanwhile: the
/// worker's and anyone else's.
fn turn_seen(
    parts: &Parts,
    head_before: Option<Option<String>>,
    outcome: crate::turn::Outcome,
) -> Seen {
    let cwd = cwd(parts);
    let after = cwd.as_deref().and_then(|cwd| git::head(cwd).ok().flatten());
    let (made, foreign) = match (&cwd, &head_before, &after) {
        (Some(cwd), Some(before), Some(after)) if before.as_deref() != Some(after.as_str()) => {
            attribute(cwd, &parts.place().worker, before.as_deref(), after)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Seen::Turn {
        outcome,
        made,
        foreign,
        head: after,
    }
}

/// The checks, one after the other at the repository root; an interrupt stops them
/// (their process groups are killed).
fn start_checks(
    parts: &mut Parts,
    commands: Vec<String>,
    timeout_ms: u64,
) -> Result<checks::Checking, Error> {
    let root = match cwd(parts) {
        Some(cwd) => git::work_tree(&cwd)?,
        None => return Err(Error::internal("the worker lost its session")),
    };
    parts.info(format!(
        "running {} check(s) in {}",
        commands.len(),
        root.display()
    ));
    let timeout = Duration::from_millis(timeout_ms);
    let record = checks::record_file(&parts.place().state_dir);
    Ok(checks::Checking::new(commands, &root, timeout, &record))
}

/// Starts the next check, told to the step's clients (`check_started`); `None` when
/// the checks are over.
fn next_check(parts: &mut Parts, checking: &mut checks::Checking) -> Option<Wait> {
    let (command, run) = checking.next()?;
    parts.emit(EventBody::CheckStarted { command });
    Some(Wait::Work(Box::pin(
        async move { Wake::CheckRan(run.await) },
    )))
}

/// The change from the implement phase's start to HEAD, bounded, for a review.
fn diff(parts: &Parts) -> Seen {
    let Some(cwd) = cwd(parts) else {
        return Seen::GitFailed(Error::internal("the worker lost its session"));
    };
    match parts.worker().review_diff(&cwd) {
        Ok(diff) => Seen::Diff(diff),
        Err(e) => Seen::GitFailed(e),
    }
}

/// What git must do for a landing, in the worker's worktree (hooks off: nothing it
/// does nudges the worker).
fn land_git(parts: &Parts, op: LandGit) -> Seen {
    let Some(cwd) = cwd(parts) else {
        return Seen::GitFailed(Error::internal("the worker lost its session"));
    };
    let worker = parts.place().worker.as_str();
    let seen = match op {
        LandGit::Keep { branch } => landing_git::keep(&cwd, &branch, worker).map(LandSeen::Kept),
        LandGit::Look { branch, target_tip } => {
            landing_git::look(&cwd, &branch, &target_tip).map(LandSeen::Looked)
        }
        LandGit::Restore { branch } => {
            landing_git::restore(&cwd, &branch, worker).map(LandSeen::Restored)
        }
        LandGit::Adopt {
            branch,
            branch_tip,
            expected_tip,
            since,
        } => landing_git::adopt(
            &cwd,
            &branch,
            worker,
            (&branch_tip, &expected_tip),
            since.as_deref(),
        )
        .map(LandSeen::Adopted),
    };
    match seen {
        Ok(seen) => Seen::Land(seen),
        Err(e) => Seen::GitFailed(e),
    }
}

/// The worker's repository as it is now, for the machine.
fn look(parts: &mut Parts) -> Seen {
    let Some(cwd) = cwd(parts) else {
        return Seen::GitFailed(Error::internal("the worker lost its session"));
    };
    // A git killed with claude or with an earlier daemon left its lock: the worker's
    // next commit would fail on it.
    if let Some(removed) = crate::worktree::clear_index_lock_of_dead_git(&cwd) {
        parts.info(removed);
    }
    match parts.worker().look(&cwd) {
        Ok(view) => Seen::Git(view),
        Err(e) => Seen::GitFailed(e),
    }
}

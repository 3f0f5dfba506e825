//! Running a worker step: the pure machine in `worker::machine` decides, this carries
//! its actions out (looking at git, pausing, running turns in the conversation,
//! running checks) and feeds back what it saw, until the step's judgement.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::checks;
use super::job::{Wait, Wake};
use super::parts::Parts;
use super::turn::{Progress, TurnRun};
use crate::claude::session::Cancel;
use crate::error::Error;
use crate::git;
use crate::protocol::{EventBody, WorkerRequest};
use crate::time::now_ms;
use crate::turn::{TurnKind, TurnSpec};
use crate::worker::machine::{
    Action, GitView, Note, Seen, StepMachine, dropped_nudge, ends_the_task, judgement,
};
use crate::worker::{Judgement, Verdict, WorkerState};

/// How much of a diff a reviewer is shown.
const MAX_REVIEW_DIFF: usize = 64 * 1024;

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

    pub fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        let before = parts.worker.state();
        self.under_way = before
            .task_under_way()
            .then(|| before.task.id.clone())
            .flatten();
        if let Err(e) = ready_for(parts, &self.request) {
            let judged = Judgement {
                exit_code: e.exit_code(),
                ..judgement(
                    parts.worker.state(),
                    self.request.step.step(),
                    Verdict::TurnFailed,
                    e.message,
                )
            };
            end_step(parts, self.id, judged);
            return Wait::Finished;
        }
        let context = parts.session.view().context_percent();
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
            Wake::Cancelled => Seen::Interrupted,
            Wake::Checked(results) => Seen::Checked(results),
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
            let action = machine.advance(parts.worker.state_mut(), seen, now_ms());
            parts.worker.save();
            if !self.announced {
                self.announced = true;
                let task = &parts.worker.state().task;
                let body = EventBody::StepStarted {
                    step: machine.step(),
                    task_id: task.id.clone(),
                    task: task.text.clone(),
                };
                let replaced = self
                    .under_way
                    .take()
                    .filter(|old| task.id.as_ref() != Some(old));
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
                    end_step(parts, self.id, judged);
                    return Wait::Finished;
                }
                Action::Look => look(parts),
                Action::Diff => diff(parts),
                Action::Pause { ms, why } => {
                    parts.info(why);
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
                } => {
                    let spec = TurnSpec {
                        prompt,
                        kind,
                        settings,
                        interactive: self.request.interactive,
                        retry: self.request.config.retry,
                        claude: self.request.claude.clone(),
                        continue_on_crash: true,
                    };
                    let since = resumed.then(|| parts.worker.state().run.last_seen_head.clone());
                    return self.run_turn(parts, spec, false, since, cancel);
                }
                Action::RunChecks {
                    commands,
                    timeout_ms,
                } => match run_checks(parts, commands, timeout_ms) {
                    Ok(wait) => return wait,
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
        && let Some(note) = parts.worker.replace_damaged()
    {
        parts.warn(note);
    }
    match parts.worker.damage() {
        Some(e) => Err(Error::setup(e.message.clone())
            .hint("`leash loop --fresh --task ...` starts over (the damaged file is kept aside)")),
        None => Ok(()),
    }
}

/// Records the step's judgement and tells its clients. Once the work is done, nudges
/// still waiting are dropped.
pub fn end_step(parts: &mut Parts, id: u64, judged: Judgement) {
    let work_done = parts.worker.state_mut().judged(&judged);
    parts.worker.save();
    let ended = ends_the_task(&judged)
        .then(|| judged.task_id.clone())
        .flatten();
    parts.out.emit(
        Some(id),
        EventBody::<serde_json::Value>::Judged { judgement: judged },
    );
    if let Some(task_id) = ended {
        parts.record_task(task_id);
    }
    if !work_done {
        return;
    }
    for nudge in parts.queue.take_nudges() {
        let Some(nudge) = nudge.id() else { continue };
        let dropped = dropped_nudge(parts.worker.state());
        parts.out.emit(
            Some(nudge),
            EventBody::<serde_json::Value>::Judged { judgement: dropped },
        );
    }
}

/// What a step's machine said happened, as notices and events.
fn emit_note(parts: &mut Parts, note: Note) {
    match note {
        Note::Info(message) => parts.info(message),
        Note::ChecksRan(checks) => parts.emit(EventBody::ChecksRan { checks }),
        Note::Reviewed(review) => parts.emit(EventBody::Reviewed { review }),
        Note::Rescoped { number, of, plan } => parts.emit(EventBody::Rescoped { number, of, plan }),
    }
}

fn cwd(parts: &Parts) -> Option<PathBuf> {
    parts.session.view().cwd()
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
            attribute(cwd, &parts.place.worker, before.as_deref(), after)
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

/// The commits that appeared during a turn: the worker's (its tools' commits carry its
/// mark in HEAD's reflog) and anyone else's. Where the reflog is off, a commit made
/// during the turn counts as the worker's, as before there was one.
fn attribute(
    cwd: &Path,
    worker: &str,
    before: Option<&str>,
    after: &str,
) -> (Vec<String>, Vec<git::CommitInfo>) {
    let appeared = git::commits_between(cwd, before, after).unwrap_or_default();
    let made_by =
        git::made_by_worker(cwd, worker, &appeared).unwrap_or_else(|_| vec![None; appeared.len()]);
    let mut made = Vec::new();
    let mut foreign = Vec::new();
    for (commit, by_worker) in appeared.into_iter().zip(made_by) {
        match by_worker {
            Some(false) => foreign.push(commit),
            Some(true) | None => made.push(commit.id),
        }
    }
    (made, foreign)
}

/// The checks, one after the other at the repository root; an interrupt stops them
/// (their process groups are killed).
fn run_checks(parts: &mut Parts, commands: Vec<String>, timeout_ms: u64) -> Result<Wait, Error> {
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
    let record = checks::record_file(&parts.place.state_dir);
    Ok(Wait::Work(Box::pin(async move {
        Wake::Checked(checks::run_all(&commands, &root, timeout, &record).await)
    })))
}

/// The change from the implement phase's start to HEAD, bounded, for a review.
fn diff(parts: &Parts) -> Seen {
    let Some(cwd) = cwd(parts) else {
        return Seen::GitFailed(Error::internal("the worker lost its session"));
    };
    let from = parts.worker.state().run.head_at_start.clone();
    let diff = git::head(&cwd).and_then(|head| match head {
        Some(head) => git::diff_between(&cwd, from.as_deref(), &head, MAX_REVIEW_DIFF),
        None => Ok(git::Diff::default()),
    });
    match diff {
        Ok(diff) => Seen::Diff(diff),
        Err(e) => Seen::GitFailed(e),
    }
}

/// The worker's repository as it is now, for the machine.
fn look(parts: &Parts) -> Seen {
    let Some(cwd) = cwd(parts) else {
        return Seen::GitFailed(Error::internal("the worker lost its session"));
    };
    match git_view(&cwd, parts.worker.state()) {
        Ok(view) => Seen::Git(view),
        Err(e) => Seen::GitFailed(e),
    }
}

/// HEAD, the phase's commits, those since leash last looked, and the loose changes.
fn git_view(cwd: &Path, state: &WorkerState) -> Result<GitView, Error> {
    let head = git::head(cwd)?;
    let (commits, new_commits) = match &head {
        Some(head) => (
            git::commits_between(cwd, state.run.head_at_start.as_deref(), head)?,
            if state.run.last_seen_head.as_deref() == Some(head.as_str()) {
                Vec::new()
            } else {
                git::commits_between(cwd, state.run.last_seen_head.as_deref(), head)
                    .unwrap_or_default()
            },
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(GitView {
        branch: crate::worktree::branch_at(cwd),
        head,
        commits,
        new_commits,
        changes: git::changes(cwd)?,
    })
}

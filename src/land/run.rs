//! Carrying out the queue's decisions: builds in temporary worktrees, the landing
//! checks with the shared runner (each stopped when its stack is gone), the target's
//! compare-and-swap move after the journal, and the orders to the workers' daemons
//! (hand-backs running alongside the rest of the queue, adopts after a move).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinSet;

use super::candidates::Candidate;
use super::journal::Journal;
use super::queue::{Action, End, Id, Queue, Seen};
use super::stack::{Replay, Stacks};
use super::target::Move;
use super::{Landing, Outcome, git};
use crate::check_run::Checking;
use crate::client::Target;
use crate::error::Error;
use crate::worker::checks::CheckResult;
use crate::worker::land::LandOrder;
use crate::worker::{Judgement, Verdict};

/// A land order, sent to a worker's daemon (started on demand) and followed to its
/// judgement. The command provides it: it owns how daemons are started.
pub trait Orders {
    fn send(&self, worker: &Target, order: LandOrder) -> Sent;
}

/// An order on its way: run on the current thread's task set (`land` runs in a
/// `LocalSet`), alongside the rest of the queue.
pub type Sent = Pin<Box<dyn Future<Output = Result<Judgement, Error>>>>;

/// What one `land` lands, and on what.
pub struct Plan {
    pub root: PathBuf,
    pub target: String,
    pub parallel: usize,
    pub check_timeout: Duration,
    pub candidates: Vec<Candidate>,
}

/// A candidate as it stands on its stack.
struct Stacked {
    tip: String,
    /// Its branch's tip it was stacked from.
    branch_tip: String,
    worktree: PathBuf,
    commits: u32,
}

enum Event {
    Checked(Id, String, Vec<CheckResult>),
    CameBack(Id, Result<Judgement, Error>),
}

/// Why candidates end when Ctrl-C stops `land`.
pub const INTERRUPTED: &str = "land was interrupted (Ctrl-C)";

/// Lands the plan's candidates; `ended` is told of each as it ends. Runs inside a
/// `LocalSet`. Ctrl-C stops the checks, lands nothing more and ends every candidate
/// left (a hand-back is interrupted and given up by its order); true when it came.
pub async fn land(
    plan: &Plan,
    orders: &dyn Orders,
    mut ended: impl FnMut(Landing),
) -> Result<bool, Error> {
    let mut ctrl_c = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut interrupted = false;
    let root = &plan.root;
    let start = super::target::tip(root, &plan.target).map_err(Error::internal)?;
    let ids: Vec<Id> = (0..plan.candidates.len()).collect();
    let mut queue = Queue::new(ids, start, plan.parallel);
    for (id, candidate) in plan.candidates.iter().enumerate() {
        if candidate.handed_back {
            queue.still_away(id);
        }
    }
    let mut stacks = Stacks::new(root);
    let mut stacked: HashMap<Id, Stacked> = HashMap::new();
    let mut running: JoinSet<Event> = JoinSet::new();
    let mut checks: HashMap<(Id, String), tokio::task::AbortHandle> = HashMap::new();
    // What went wrong after a candidate landed (its worker did not take it in).
    let mut after: HashMap<Id, String> = HashMap::new();
    let mut told = 0;
    loop {
        let actions = queue.next();
        while told < queue.ended().len() {
            let (id, end) = queue.ended()[told].clone();
            told += 1;
            let mut landing = landing(plan, id, &end, stacked.get(&id));
            if let Some(note) = after.remove(&id) {
                landing.reason = Some(note);
            }
            ended(landing);
        }
        if actions.contains(&Action::Finish) {
            return Ok(interrupted);
        }
        if actions.is_empty() {
            let joined = tokio::select! {
                joined = running.join_next() => joined,
                _ = ctrl_c.recv(), if !interrupted => {
                    interrupted = true;
                    for (_, check) in checks.drain() {
                        check.abort();
                    }
                    queue.seen(Seen::Refused { reason: INTERRUPTED.to_string() });
                    continue;
                }
            };
            let Some(joined) = joined else {
                return Err(Error::internal(
                    "the landing queue stalled with nothing running",
                ));
            };
            // A check stopped because its stack is gone has nothing to say.
            let Ok(event) = joined else { continue };
            queue.seen(seen_of(event, &mut checks));
            continue;
        }
        for action in actions {
            match action {
                Action::Build { id, onto } => {
                    let seen = build(plan, &mut stacks, id, &onto, &mut stacked);
                    queue.seen(seen);
                }
                Action::Check { id, tip } => {
                    let Some(at) = stacked.get(&id) else { continue };
                    let run = run_checks(
                        plan.candidates[id].checks.clone(),
                        at.worktree.clone(),
                        plan.check_timeout,
                    );
                    let key = (id, tip.clone());
                    let handle =
                        running.spawn_local(async move { Event::Checked(id, tip, run.await) });
                    checks.insert(key, handle);
                }
                Action::Drop { id, tip } => {
                    if let Some(handle) = checks.remove(&(id, tip)) {
                        handle.abort();
                    }
                }
                Action::Move { ids, from, to } => {
                    let (seen, notes) = move_target(plan, orders, &ids, &from, &to, &stacked).await;
                    after.extend(notes);
                    queue.seen(seen);
                }
                Action::HandBack { id, onto, trouble } => {
                    let candidate = &plan.candidates[id];
                    let landed_since = landed_since(root, &onto, &candidate.worktree.branch);
                    let order = LandOrder::Resolve {
                        target: plan.target.clone(),
                        target_tip: onto,
                        trouble,
                        landed_since,
                    };
                    let sent = orders.send(&candidate.target, order);
                    running.spawn_local(async move { Event::CameBack(id, sent.await) });
                }
                Action::Finish => {}
            }
        }
    }
}

/// What a check or a hand-back that ended says to the queue.
fn seen_of(event: Event, checks: &mut HashMap<(Id, String), tokio::task::AbortHandle>) -> Seen {
    match event {
        Event::Checked(id, tip, results) => {
            checks.remove(&(id, tip.clone()));
            Seen::Checked {
                id,
                tip,
                checks: results,
            }
        }
        Event::CameBack(id, answer) => Seen::CameBack {
            id,
            answer: match answer {
                Ok(judgement) if judgement.verdict == Verdict::Landable => Ok(()),
                Ok(judgement) => Err(judgement.message),
                Err(e) => Err(e.message),
            },
        },
    }
}

fn build(
    plan: &Plan,
    stacks: &mut Stacks,
    id: Id,
    onto: &str,
    stacked: &mut HashMap<Id, Stacked>,
) -> Seen {
    let candidate = &plan.candidates[id];
    let branch = format!("refs/heads/{}", candidate.worktree.branch);
    let built = git(&plan.root, &["rev-parse", "--verify", "-q", &branch]).and_then(|branch_tip| {
        let base = git(&plan.root, &["merge-base", onto, &branch_tip])?;
        Ok((stacks.build(onto, &base, &branch_tip)?, branch_tip))
    });
    match built {
        Ok((
            Replay::Built {
                tip,
                worktree,
                commits,
            },
            branch_tip,
        )) => {
            stacked.insert(
                id,
                Stacked {
                    tip: tip.clone(),
                    branch_tip,
                    worktree,
                    commits,
                },
            );
            Seen::Built { id, tip }
        }
        Ok((Replay::Empty, _)) => Seen::Empty { id },
        Ok((Replay::Conflicted(files), _)) => Seen::Conflicted { id, files },
        Err(e) => Seen::Conflicted {
            id,
            files: vec![format!(
                "(leash could not stack it: {})",
                crate::human::one_line(&e, 200)
            )],
        },
    }
}

async fn run_checks(
    commands: Vec<String>,
    worktree: PathBuf,
    timeout: Duration,
) -> Vec<CheckResult> {
    let record = super::stack::check_record(&worktree);
    let mut checking = Checking::new(commands, &worktree, timeout, &record);
    while let Some((_, run)) = checking.next() {
        let result = run.await;
        checking.ended(result);
    }
    checking.results()
}

/// The target's one move for `ids`: each branch still where it was stacked from, the
/// journal written, the compare-and-swap, then each worker told.
async fn move_target(
    plan: &Plan,
    orders: &dyn Orders,
    ids: &[Id],
    from: &str,
    to: &str,
    stacked: &HashMap<Id, Stacked>,
) -> (Seen, Vec<(Id, String)>) {
    let root = &plan.root;
    let mut notes = Vec::new();
    let mut adopts = Vec::new();
    for id in ids {
        let candidate = &plan.candidates[*id];
        let Some(at) = stacked.get(id) else {
            return (Seen::BranchMoved { id: *id }, Vec::new());
        };
        let branch = format!("refs/heads/{}", candidate.worktree.branch);
        if git(root, &["rev-parse", "--verify", "-q", &branch])
            .ok()
            .as_deref()
            != Some(&at.branch_tip)
        {
            return (Seen::BranchMoved { id: *id }, Vec::new());
        }
        adopts.push((
            candidate.worker.to_string(),
            LandOrder::Adopt {
                target: plan.target.clone(),
                landed: to.to_string(),
                branch_tip: at.tip.clone(),
                expected_tip: at.branch_tip.clone(),
            },
        ));
    }
    let journal = Journal {
        target: plan.target.clone(),
        from: from.to_string(),
        to: to.to_string(),
        adopts,
    };
    if let Err(e) = journal.write(root) {
        return (Seen::Refused { reason: e }, Vec::new());
    }
    match super::target::move_target(root, &plan.target, from, to) {
        Ok(Move::Moved) => {}
        Ok(Move::Raced(tip)) => {
            Journal::remove(root);
            return (Seen::Raced { tip }, Vec::new());
        }
        Ok(Move::Refused(reason)) => {
            Journal::remove(root);
            return (Seen::Refused { reason }, Vec::new());
        }
        Err(reason) => {
            // The target moved, a work tree that has it did not follow: said with each
            // landing; the workers still take their work in.
            for id in ids {
                notes.push((*id, reason.clone()));
            }
        }
    }
    for (id, (_, order)) in ids.iter().zip(&journal.adopts) {
        let candidate = &plan.candidates[*id];
        if let Some(why) = adopt(orders, candidate, order.clone()).await {
            notes.push((*id, why));
        }
    }
    Journal::remove(root);
    (
        Seen::Moved {
            tip: to.to_string(),
        },
        notes,
    )
}

/// Tells a landed worker to take its work in: its branch and worktree become the
/// rebased commits, its task records the landing. One that cannot (its daemon fails,
/// its branch moved meanwhile) keeps its branch as it was, and says why: the target
/// holds the work either way.
async fn adopt(orders: &dyn Orders, candidate: &Candidate, order: LandOrder) -> Option<String> {
    match orders.send(&candidate.target, order).await {
        Ok(judgement) if judgement.verdict == Verdict::Landed => None,
        Ok(judgement) => Some(format!(
            "landed, but its worker did not take the rebased branch in: {}",
            judgement.message
        )),
        Err(e) => Some(format!(
            "landed, but its worker could not be told: {}",
            e.message
        )),
    }
}

/// The subjects of what landed on the target since the branch began, oldest first.
fn landed_since(root: &Path, target_tip: &str, branch: &str) -> Vec<String> {
    let branch = format!("refs/heads/{branch}");
    let Ok(base) = git(root, &["merge-base", target_tip, &branch]) else {
        return Vec::new();
    };
    let range = format!("{base}..{target_tip}");
    git(
        root,
        &["log", "--reverse", "--format=%s", "-n", "50", &range],
    )
    .map(|log| log.lines().map(str::to_string).collect())
    .unwrap_or_default()
}

fn landing(plan: &Plan, id: Id, end: &End, stacked: Option<&Stacked>) -> Landing {
    let candidate = &plan.candidates[id];
    let (outcome, reason, tip) = match end {
        End::Landed { tip } => (Outcome::Landed, None, Some(tip.clone())),
        End::Conflict { reason } => (Outcome::Conflict, Some(reason.clone()), None),
        End::ChecksFailed { reason } => (Outcome::ChecksFailed, Some(reason.clone()), None),
        End::Skipped { reason } => (Outcome::Skipped, Some(reason.clone()), None),
        End::AlreadyThere => (
            Outcome::Skipped,
            Some("nothing to land: the target holds its changes already".to_string()),
            None,
        ),
    };
    Landing {
        worker: candidate.worker.to_string(),
        branch: Some(candidate.worktree.branch.clone()),
        target: plan.target.clone(),
        counts: !matches!(end, End::Landed { .. } | End::AlreadyThere),
        outcome,
        reason,
        commits: match end {
            End::Landed { .. } => stacked.map_or(0, |s| s.commits),
            _ => 0,
        },
        target_tip: tip,
    }
}

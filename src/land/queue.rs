//! The merge queue's decisions, pure: candidates in order and what was observed (a
//! stack built or conflicted, its checks passed or failed, the target moved or raced, a
//! hand-back came back) in; what to do next out. The async code in [`super::run`] only
//! carries the actions out.
//!
//! Speculative stacks, as a merge queue builds them: the first candidate on the target's
//! tip, the second on the first's stacked tip, and so on, up to `parallel` deep, each
//! checked at once. When every stacked candidate passed, the target moves once, to the
//! last. A candidate that conflicts, or whose checks fail, drops out and goes back to its
//! worker; those stacked after it are stacked again without it. A move that finds the
//! target elsewhere (someone committed) stacks everything again on the new tip, never an
//! overwrite. A worker's branch that comes back landable joins the end of the queue.

use std::collections::VecDeque;

use crate::worker::checks::CheckResult;
use crate::worker::land::LandTrouble;

/// A candidate, by its place in the order `land` was given.
pub type Id = usize;

/// How often one candidate may go back to its worker before `land` gives it up: each
/// time it came back landable, something else landed first and it conflicted again.
pub const MAX_HANDBACKS: u32 = 3;

/// What the queue asks for next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Replay the candidate's commits (its merge base with the target .. its branch)
    /// onto `onto`, in a temporary worktree; answer `Built`, `Empty` or `Conflicted`.
    Build { id: Id, onto: String },
    /// Run the candidate's landing checks on its stacked `tip`; answer `Checked`.
    Check { id: Id, tip: String },
    /// Stop the candidate's check on `tip`, if it still runs: its stack is gone.
    Drop { id: Id, tip: String },
    /// Move the target from `from` to `to` (the last stacked tip), compare-and-swap,
    /// landing `ids`; answer `Moved`, `Raced`, `BranchMoved` or `Refused`.
    Move {
        ids: Vec<Id>,
        from: String,
        to: String,
    },
    /// Send the candidate back to its worker to resolve against the target at `onto`;
    /// answer `CameBack`.
    HandBack {
        id: Id,
        onto: String,
        trouble: LandTrouble,
    },
    /// Every candidate ended.
    Finish,
}

/// What was observed of an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Built {
        id: Id,
        tip: String,
    },
    /// Its commits are all on the stack already: nothing of it is left to land.
    Empty {
        id: Id,
    },
    Conflicted {
        id: Id,
        files: Vec<String>,
    },
    Checked {
        id: Id,
        tip: String,
        checks: Vec<CheckResult>,
    },
    /// The target is at `tip` now, holding every candidate of the move.
    Moved {
        tip: String,
    },
    /// The target was not where the queue saw it: it is at `tip`.
    Raced {
        tip: String,
    },
    /// The candidate's branch is no longer at the tip it was stacked from.
    BranchMoved {
        id: Id,
    },
    /// The target cannot move at all (a work tree that has it checked out is dirty).
    Refused {
        reason: String,
    },
    /// The worker answered its hand-back: `Ok` landable again, `Err` why not.
    CameBack {
        id: Id,
        answer: Result<(), String>,
    },
}

/// How a candidate ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The target moved to `tip`, which holds its work.
    Landed { tip: String },
    /// It conflicted with the target and its worker could not resolve it.
    Conflict { reason: String },
    /// Its landing checks failed and its worker could not fix them.
    ChecksFailed { reason: String },
    /// It was left as it was: the target could not move.
    Skipped { reason: String },
    /// Nothing of it is left to land: the target holds its changes already.
    AlreadyThere,
}

/// One candidate in the stack, from its build to its checks passing.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Building,
    Checking(String),
    Passed(String),
}

impl Slot {
    fn tip(&self) -> Option<&str> {
        match self {
            Slot::Building => None,
            Slot::Checking(tip) | Slot::Passed(tip) => Some(tip),
        }
    }
}

/// The queue: what waits, what is stacked, what is with its worker, what ended.
#[derive(Debug)]
pub struct Queue {
    parallel: usize,
    /// The target's tip as the queue last saw it.
    tip: String,
    waiting: VecDeque<Id>,
    stack: Vec<(Id, Slot)>,
    /// Candidates with their workers, and how often each went back.
    away: Vec<Id>,
    /// Candidates in trouble above others not landed yet, waiting for those to land.
    held: Vec<Id>,
    /// How often each candidate went back to its worker, and whether the last time
    /// was for a conflict (else for its checks), for its end.
    handbacks: Vec<(Id, u32, bool)>,
    moving: bool,
    /// Actions decided while taking in what was seen (a check for what was built, a
    /// hand-back, a check to stop), handed out by the next `next`.
    outbox: Vec<Action>,
    /// Why the target cannot move, once it cannot.
    refused: Option<String>,
    ended: Vec<(Id, End)>,
    finished: bool,
}

impl Queue {
    /// Candidates `order` (in the order they land) onto a target at `tip`, with up to
    /// `parallel` stacked and checked at once.
    pub fn new(order: Vec<Id>, tip: String, parallel: usize) -> Queue {
        Queue {
            parallel: parallel.max(1),
            tip,
            waiting: order.into(),
            stack: Vec::new(),
            away: Vec::new(),
            held: Vec::new(),
            handbacks: Vec::new(),
            moving: false,
            outbox: Vec::new(),
            refused: None,
            ended: Vec::new(),
            finished: false,
        }
    }

    /// A candidate a `land` that was cut off had handed back, still with its worker:
    /// asked again (its step goes on where it was), it rejoins like any other.
    pub fn still_away(&mut self, id: Id) {
        self.waiting.retain(|i| *i != id);
        self.hand_back(id, LandTrouble::Conflict { files: Vec::new() });
    }

    /// How the candidates ended so far, in the order they did.
    pub fn ended(&self) -> &[(Id, End)] {
        &self.ended
    }

    /// Takes in what was observed; a result about a stack that is gone is ignored.
    pub fn seen(&mut self, seen: Seen) {
        match seen {
            Seen::Built { id, tip } => self.built(id, tip),
            Seen::Empty { id } => {
                self.stack.retain(|(i, _)| *i != id);
                self.end(id, End::AlreadyThere);
            }
            Seen::Conflicted { id, files } => {
                if self.stack.last().map(|(i, _)| *i) == Some(id) {
                    let at = self.stack.len() - 1;
                    self.stack.pop();
                    self.trouble_at(at, id, LandTrouble::Conflict { files });
                }
            }
            Seen::Checked { id, tip, checks } => {
                let Some(at) = self.find(id, &tip) else {
                    return;
                };
                if checks.iter().all(CheckResult::passed) {
                    self.stack[at].1 = Slot::Passed(tip);
                } else {
                    self.drop_out(at);
                    self.trouble_at(at, id, LandTrouble::ChecksFailed { checks });
                }
            }
            Seen::Moved { tip } => {
                self.moving = false;
                self.release_held();
                self.tip = tip.clone();
                for (id, _) in std::mem::take(&mut self.stack) {
                    self.end(id, End::Landed { tip: tip.clone() });
                }
            }
            Seen::Raced { tip } => {
                self.moving = false;
                self.tip = tip;
                let again: Vec<Id> = self.stack.drain(..).map(|(id, _)| id).collect();
                for id in again.into_iter().rev() {
                    self.waiting.push_front(id);
                }
                self.release_held();
            }
            Seen::BranchMoved { id } => {
                self.moving = false;
                if let Some(at) = self.stack.iter().position(|(i, _)| *i == id) {
                    self.drop_out(at);
                    self.end(
                        id,
                        End::Skipped {
                            reason: "its branch moved while it was landing; run `leash land` again"
                                .into(),
                        },
                    );
                }
            }
            Seen::Refused { reason } => {
                self.moving = false;
                self.refused = Some(reason);
                self.release_held();
                let stacked: Vec<Id> = self.stack.drain(..).map(|(id, _)| id).collect();
                let waiting: Vec<Id> = self.waiting.drain(..).collect();
                for id in stacked.into_iter().chain(waiting) {
                    self.refuse(id);
                }
            }
            Seen::CameBack { id, answer } => {
                if !self.away.contains(&id) {
                    return;
                }
                self.away.retain(|i| *i != id);
                match answer {
                    Ok(()) if self.refused.is_some() => self.refuse(id),
                    Ok(()) => self.waiting.push_back(id),
                    Err(reason) => {
                        let conflict = self
                            .handbacks
                            .iter()
                            .find(|(i, _, _)| *i == id)
                            .is_none_or(|(_, _, conflict)| *conflict);
                        let end = match conflict {
                            true => End::Conflict { reason },
                            false => End::ChecksFailed { reason },
                        };
                        self.end(id, end);
                    }
                }
            }
        }
    }

    /// What to do now: builds (one at a time: each stands on the one before), the
    /// checks of what was built, the move once every stacked candidate passed, and
    /// `Finish` once every candidate ended. Actions already asked for are not asked again.
    pub fn next(&mut self) -> Vec<Action> {
        let mut actions = std::mem::take(&mut self.outbox);
        if self.finished || self.moving {
            return actions;
        }
        // Held behind a stack that is gone without a move: nothing is below them now.
        if self.stack.is_empty() {
            self.release_held();
        }
        let building = self.stack.iter().any(|(_, s)| *s == Slot::Building);
        if !building
            && self.refused.is_none()
            && self.stack.len() < self.parallel
            && let Some(id) = self.waiting.pop_front()
        {
            let onto = self
                .stack
                .last()
                .and_then(|(_, slot)| slot.tip())
                .unwrap_or(&self.tip)
                .to_string();
            self.stack.push((id, Slot::Building));
            actions.push(Action::Build { id, onto });
            return actions;
        }
        if building {
            return actions;
        }
        let all_passed = self.stack.iter().all(|(_, s)| matches!(s, Slot::Passed(_)));
        let full = self.stack.len() >= self.parallel || self.waiting.is_empty();
        if all_passed && full {
            if let Some((_, Slot::Passed(to))) = self.stack.last() {
                self.moving = true;
                actions.push(Action::Move {
                    ids: self.stack.iter().map(|(id, _)| *id).collect(),
                    from: self.tip.clone(),
                    to: to.clone(),
                });
            } else if self.away.is_empty() && self.waiting.is_empty() && self.held.is_empty() {
                self.finished = true;
                actions.push(Action::Finish);
            }
        }
        actions
    }

    /// A candidate built on the stack is checked there.
    fn built(&mut self, id: Id, tip: String) {
        if let Some((i, slot)) = self.stack.last_mut()
            && *i == id
            && *slot == Slot::Building
        {
            *slot = Slot::Checking(tip.clone());
            self.outbox.push(Action::Check { id, tip });
        }
    }

    /// A candidate in trouble at `at` in the stack. Right on the target's tip, the trouble
    /// is its own: it goes back to its worker. Above other candidates not landed yet, it
    /// may be theirs (or vanish without them): it waits for them to land, then is
    /// stacked again; a worker is never asked to build on work that is not the target's.
    fn trouble_at(&mut self, at: usize, id: Id, trouble: LandTrouble) {
        match at {
            0 => self.hand_back(id, trouble),
            _ => self.held.push(id),
        }
    }

    /// The candidates held for the stack below them rejoin, first in line, in order.
    fn release_held(&mut self) {
        for id in std::mem::take(&mut self.held).into_iter().rev() {
            self.waiting.push_front(id);
        }
    }

    /// The candidates stacked after `at` must be stacked again: their stacks held it.
    fn drop_out(&mut self, at: usize) {
        let after: Vec<(Id, Slot)> = self.stack.drain(at..).skip(1).collect();
        for (id, slot) in after.into_iter().rev() {
            if let Some(tip) = slot.tip() {
                self.outbox.push(Action::Drop {
                    id,
                    tip: tip.to_string(),
                });
            }
            self.waiting.push_front(id);
        }
    }

    fn find(&self, id: Id, tip: &str) -> Option<usize> {
        self.stack
            .iter()
            .position(|(i, slot)| *i == id && slot.tip() == Some(tip))
    }

    fn hand_back(&mut self, id: Id, trouble: LandTrouble) {
        let conflict = matches!(trouble, LandTrouble::Conflict { .. });
        let count = match self.handbacks.iter_mut().find(|(i, _, _)| *i == id) {
            Some((_, n, last)) => {
                *n += 1;
                *last = conflict;
                *n
            }
            None => {
                self.handbacks.push((id, 1, conflict));
                1
            }
        };
        if count > MAX_HANDBACKS {
            let reason = format!(
                "it went back to its worker {MAX_HANDBACKS} times and still did not land on the target"
            );
            let end = match conflict {
                true => End::Conflict { reason },
                false => End::ChecksFailed { reason },
            };
            self.end(id, end);
            return;
        }
        self.away.push(id);
        self.outbox.push(Action::HandBack {
            id,
            onto: self.tip.clone(),
            trouble,
        });
    }

    fn refuse(&mut self, id: Id) {
        let reason = self.refused.clone().unwrap_or_default();
        self.end(id, End::Skipped { reason });
    }

    fn end(&mut self, id: Id, end: End) {
        if !self.ended.iter().any(|(i, _)| *i == id) {
            self.ended.push((id, end));
        }
    }
}

#[cfg(test)]
mod tests;

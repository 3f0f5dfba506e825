//! The work waiting for the session, in order: turns, worker steps, and the session
//! changes that must wait for the running turn (a start, a model switch). Ids are
//! never reused within a worker's life.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::error::Error;
use crate::protocol::{SessionStatus, StartSpec, WorkerRequest};
use crate::turn::TurnSpec;
use crate::worker::WorkerStep;

/// What a merged nudge carries at most: hooks firing all day must not grow it without
/// bound, and the latest words matter most.
const MAX_MERGED: usize = 10;

pub enum Job {
    Turn {
        id: u64,
        spec: TurnSpec,
    },
    Step {
        id: u64,
        request: WorkerRequest,
    },
    Start {
        spec: StartSpec,
        reply: oneshot::Sender<Result<SessionStatus, Error>>,
    },
    SetModel {
        model: String,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    Restart {
        claude: Option<std::path::PathBuf>,
        reply: oneshot::Sender<Result<SessionStatus, Error>>,
    },
}

impl Job {
    /// The turn or step id, for jobs that have one.
    fn id(&self) -> Option<u64> {
        match self {
            Job::Turn { id, .. } | Job::Step { id, .. } => Some(*id),
            Job::Start { .. } | Job::SetModel { .. } | Job::Restart { .. } => None,
        }
    }

    fn is_nudge(&self) -> bool {
        matches!(
            self,
            Job::Step {
                request: WorkerRequest {
                    step: WorkerStep::Nudge { .. },
                    ..
                },
                ..
            }
        )
    }
}

pub struct Queue {
    jobs: VecDeque<Job>,
    last_id: u64,
    max: usize,
}

impl Queue {
    /// `last_id`: the last id handed out in the worker's life; `max`: turns and steps
    /// that may wait.
    pub fn new(last_id: u64, max: usize) -> Queue {
        Queue {
            jobs: VecDeque::new(),
            last_id,
            max,
        }
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Turns and steps waiting.
    pub fn waiting(&self) -> usize {
        self.jobs.iter().filter(|job| job.id().is_some()).count()
    }

    pub fn is_full(&self) -> bool {
        self.waiting() >= self.max
    }

    pub fn push(&mut self, job: Job) {
        self.jobs.push_back(job);
    }

    pub fn pop(&mut self) -> Option<Job> {
        self.jobs.pop_front()
    }

    /// Merges a nudge into the one already waiting, if any: at most one pending nudge
    /// per worker, however many hooks fire. Returns its id and place in the queue.
    pub fn merge_nudge(&mut self, reasons: &[String], events: &[String]) -> Option<(u64, usize)> {
        let (at, job) = self
            .jobs
            .iter_mut()
            .enumerate()
            .find(|(_, j)| j.is_nudge())?;
        let Job::Step {
            id,
            request:
                WorkerRequest {
                    step:
                        WorkerStep::Nudge {
                            reasons: pending_reasons,
                            events: pending_events,
                        },
                    ..
                },
        } = job
        else {
            return None;
        };
        merge_into(pending_reasons, reasons);
        merge_into(pending_events, events);
        Some((*id, at))
    }

    /// Takes the turn or step `id` out of the queue.
    pub fn remove(&mut self, id: u64) -> Option<Job> {
        let at = self.jobs.iter().position(|job| job.id() == Some(id))?;
        self.jobs.remove(at)
    }

    /// Takes every waiting nudge out of the queue (the work they were about is done).
    pub fn take_nudges(&mut self) -> Vec<u64> {
        let (nudges, rest): (VecDeque<Job>, VecDeque<Job>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(Job::is_nudge);
        self.jobs = rest;
        nudges.iter().filter_map(Job::id).collect()
    }

    pub fn drain(&mut self) -> Vec<Job> {
        self.jobs.drain(..).collect()
    }
}

/// Adds what is new to a pending nudge's list, keeping the latest [`MAX_MERGED`].
fn merge_into(pending: &mut Vec<String>, new: &[String]) {
    for item in new {
        if !pending.contains(item) {
            pending.push(item.clone());
        }
    }
    let excess = pending.len().saturating_sub(MAX_MERGED);
    pending.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_nudges_stay_bounded_and_keep_the_latest() {
        let mut pending = vec!["a".to_string()];
        merge_into(&mut pending, &["a".to_string(), "b".to_string()]);
        assert_eq!(pending, ["a", "b"]);
        let many: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
        merge_into(&mut pending, &many);
        assert_eq!(pending.len(), MAX_MERGED);
        assert_eq!(pending.last().unwrap(), "r24");
    }
}

//! The work waiting for the session, in order: turns, worker steps, and the session
//! changes that must wait for the running turn (a start, a model switch). It stands
//! beside the daemon's parts: the actor holds both and lends the parts to a job.

use std::collections::VecDeque;

use super::job::Job;

pub struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    max: usize,
}

impl Queue {
    /// `max`: turns and steps that may wait.
    pub fn new(max: usize) -> Queue {
        Queue {
            jobs: VecDeque::new(),
            max,
        }
    }

    /// Turns and steps waiting.
    pub fn waiting(&self) -> usize {
        self.jobs.iter().filter(|job| job.id().is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.waiting() >= self.max
    }

    pub fn push(&mut self, job: Box<dyn Job>) {
        self.jobs.push_back(job);
    }

    pub fn pop(&mut self) -> Option<Box<dyn Job>> {
        self.jobs.pop_front()
    }

    /// Merges a nudge into the one already waiting, if any. Returns its id and place.
    pub fn merge_nudge(&mut self, reasons: &[String], events: &[String]) -> Option<(u64, usize)> {
        let (at, job) = self
            .jobs
            .iter_mut()
            .enumerate()
            .find(|(_, job)| job.is_nudge())?;
        job.merge_nudge(reasons, events)
            .then(|| job.id().map(|id| (id, at)))
            .flatten()
    }

    /// Takes the turn or step `id` out of the queue.
    pub fn remove(&mut self, id: u64) -> Option<Box<dyn Job>> {
        let at = self.jobs.iter().position(|job| job.id() == Some(id))?;
        self.jobs.remove(at)
    }

    /// Takes every waiting nudge out of the queue (the work they were about is done).
    pub fn take_nudges(&mut self) -> Vec<Box<dyn Job>> {
        let mut nudges = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if job.is_nudge() {
                nudges.push(job);
            } else {
                self.jobs.push_back(job);
            }
        }
        nudges
    }

    pub fn drain(&mut self) -> Vec<Box<dyn Job>> {
        self.jobs.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::session::Cancel;
    use crate::daemon::job::{Wait, Wake};
    use crate::daemon::parts::Parts;

    /// A queued job that only says what it is.
    struct Stub {
        id: Option<u64>,
        nudge: Option<Vec<String>>,
    }

    impl Job for Stub {
        fn id(&self) -> Option<u64> {
            self.id
        }
        fn begin(&mut self, _: &mut Parts, _: &Cancel) -> Wait {
            Wait::Finished
        }
        fn wake(&mut self, _: &mut Parts, _: Wake, _: &Cancel) -> Wait {
            Wait::Finished
        }
        fn cancel(self: Box<Self>, _: &mut Parts, _: &str) {}
        fn merge_nudge(&mut self, reasons: &[String], _: &[String]) -> bool {
            match &mut self.nudge {
                Some(pending) => {
                    pending.extend_from_slice(reasons);
                    true
                }
                None => false,
            }
        }
        fn is_nudge(&self) -> bool {
            self.nudge.is_some()
        }
    }

    fn stub(id: Option<u64>, nudge: bool) -> Box<dyn Job> {
        Box::new(Stub {
            id,
            nudge: nudge.then(Vec::new),
        })
    }

    #[test]
    fn only_turns_and_steps_count_as_waiting_and_fill_the_queue() {
        let mut queue = Queue::new(2);
        queue.push(stub(None, false));
        queue.push(stub(Some(8), false));
        assert_eq!(queue.waiting(), 1);
        assert!(!queue.is_full());
        queue.push(stub(Some(9), false));
        assert!(queue.is_full());
    }

    #[test]
    fn a_nudge_merges_into_the_one_waiting_and_leaves_with_the_others() {
        let mut queue = Queue::new(10);
        assert_eq!(queue.merge_nudge(&["r".into()], &[]), None, "none waits");
        queue.push(stub(Some(1), false));
        queue.push(stub(Some(2), true));
        queue.push(stub(Some(3), false));
        assert_eq!(queue.merge_nudge(&["r".into()], &[]), Some((2, 1)));
        let nudges = queue.take_nudges();
        assert_eq!(nudges.len(), 1);
        assert_eq!(queue.waiting(), 2);
        assert!(queue.remove(3).is_some());
        assert!(queue.remove(3).is_none());
        assert_eq!(queue.drain().len(), 1);
    }
}

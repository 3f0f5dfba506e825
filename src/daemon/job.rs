//! What the actor runs, one at a time: a job, begun when it leaves the queue, woken by
//! what it waits for, until it says it is finished. A job owns its request and where
//! its answer goes; the actor owns everything else and lends it as [`Parts`].
//!
//! [`Parts`]: super::parts::Parts

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use super::answer::Answer;
use super::parts::Parts;
use crate::claude::session::{self, Cancel};
use crate::worker::checks::CheckResult;

/// What a job waits for next.
pub enum Wait {
    /// A session command is out; its end comes on the session's stream.
    Session,
    /// Until then (a backoff, a pause between nudges); an interrupt ends it early.
    Until(Instant),
    /// Work of its own (the checks); an interrupt drops it.
    Work(Pin<Box<dyn Future<Output = Wake> + Send>>),
    /// The job is over: its answer is given.
    Finished,
    /// The job is over: its answer is the session's status (which counts the queue
    /// beside the parts, so the actor gives it).
    AnswerStatus(Answer),
}

/// What woke a job.
#[derive(Debug)]
pub enum Wake {
    /// The session command it waited for ended.
    Session(session::Done),
    /// Its pause ran its course.
    Timer,
    /// It was interrupted while it waited for a pause or work of its own.
    Cancelled,
    /// One check ran (its step runs the rest, one by one).
    CheckRan(CheckResult),
}

pub trait Job: Send {
    /// The turn or step id the job's events carry, for jobs that have one.
    fn id(&self) -> Option<u64>;

    /// The worker step the job runs, for a worker step (`session status` tells it: a
    /// landing under way is `land`).
    fn step(&self) -> Option<crate::worker::Step> {
        None
    }

    /// The job leaves the queue and begins.
    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait;

    /// What it waited for happened.
    fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Wait;

    /// The job will not run (interrupted while queued, or the daemon stops): whoever
    /// waits for it is told why.
    fn cancel(self: Box<Self>, parts: &mut Parts, why: &str);

    /// A nudge waiting in the queue takes in another's reasons and events (at most one
    /// nudge waits per worker); false for jobs that are no nudge.
    fn merge_nudge(&mut self, _reasons: &[String], _events: &[String]) -> bool {
        false
    }

    /// Whether the job is a nudge (dropped from the queue once the work is done).
    fn is_nudge(&self) -> bool {
        false
    }

    /// The finished job did the worker's work: the nudges still waiting have nothing
    /// left to nudge.
    fn did_the_work(&self) -> bool {
        false
    }

    /// A waiting nudge is dropped because the work is done: whoever waits for it is
    /// told so.
    fn superseded(self: Box<Self>, _parts: &mut Parts) {}
}

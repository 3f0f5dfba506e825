//! One handler per request. A request from a connection reaches [`accept`], which hands
//! it to its handler: questions are answered at once (status, interrupt), work is
//! queued as a [`Job`] that carries its request and where its answer goes, and runs
//! when its turn comes. A request for the session (start, model, restart, a control
//! request to claude) is a [`SessionCommand`]: what it asks of the session and how its
//! end is answered.
//!
//! The handlers stand above the daemon's parts and its queue: nothing below imports
//! them.
//!
//! [`Job`]: super::job::Job

mod compact;
mod context;
mod follow;
mod interrupt;
mod loop_ended;
mod model;
mod permission;
mod restart;
mod send;
mod start;
mod status;
mod stop;
mod worker;

use super::answer::Answer;
use super::feed::{self, FeedReceiver};
use super::job::{Job, Wait, Wake};
use super::parts::Parts;
use super::queue::Queue;
use super::subscribers::Until;
use crate::claude::session::{Cancel, Done};
use crate::error::{Error, ErrorKind};
use crate::protocol::Request;

/// Takes one request to its handler.
pub fn accept(parts: &mut Parts, queue: &mut Queue, request: Request, answer: Answer) {
    // Asking how the session is does not keep it alive; giving it work does.
    if !matches!(
        request,
        Request::Status | Request::Interrupt { .. } | Request::LoopEnded { .. }
    ) {
        parts.life().touch();
    }
    match request {
        Request::Hello { .. } => {
            answer.error(&Error::usage("hello was already said").hint("send one request after it"))
        }
        Request::Status => status::handle(parts, queue, answer),
        Request::Start(spec) => queue_command(queue, start::Start::new(spec), answer),
        Request::Send(spec) => send::handle(parts, queue, spec, answer),
        Request::Compact { instructions } => compact::handle(parts, queue, instructions, answer),
        Request::Interrupt { turn } => interrupt::handle(parts, queue, turn, answer),
        Request::SetModel { model } => queue_command(queue, model::SetModel(model), answer),
        Request::Context => queue_command(queue, context::Context, answer),
        Request::Restart { claude } => queue_command(queue, restart::Restart(claude), answer),
        Request::Follow { after_seq } => follow::handle(parts, after_seq, answer),
        Request::Permission {
            request_id,
            allow,
            always,
            message,
        } => {
            let decision = super::permissions::Decision {
                allow,
                always,
                message,
            };
            permission::handle(parts, request_id, decision, answer);
        }
        Request::Worker(request) => worker::handle(parts, queue, request, answer),
        Request::LoopEnded { task_id, exit_code } => {
            loop_ended::handle(parts, task_id, exit_code, answer)
        }
        Request::Stop => stop::handle(parts, answer),
    }
}

/// New work is refused while the daemon stops, and when the queue is full.
fn accepting(parts: &mut Parts, queue: &Queue) -> Result<(), Error> {
    if parts.life().stopping() {
        return Err(Error::new(ErrorKind::NoSession, "the session is stopping")
            .hint("start it again with `leash session start`"));
    }
    if queue.is_full() {
        return Err(Error::new(
            ErrorKind::Busy,
            format!(
                "the session is busy: {} turns are already queued",
                queue.waiting()
            ),
        )
        .hint("retry later, or raise max_queue"));
    }
    Ok(())
}

/// Turns and steps that run before a new one.
fn ahead(parts: &Parts, queue: &Queue) -> usize {
    queue.waiting() + usize::from(parts.running().is_some())
}

/// A new turn or step's id, its events sent to a new feed from now until `until`.
fn subscribe(parts: &mut Parts, queue: &Queue, until: Until) -> (u64, usize, FeedReceiver) {
    let ahead = ahead(parts, queue);
    let id = parts.tally().next_id();
    let rx = follow_from_now(parts, id, until);
    (id, ahead, rx)
}

/// The events of turn or step `id` from now until `until`, on a new feed.
fn follow_from_now(parts: &mut Parts, id: u64, until: Until) -> FeedReceiver {
    let (feed, rx) = feed::channel(parts.limits().feed_budget);
    parts.out().subscribe(id, until, feed);
    rx
}

/// How a session command ended, as its client is answered.
pub enum Answering {
    Ok(String),
    /// With the session's status as it is now.
    Status,
    Error(Error),
}

/// A request that changes the session: handed to it when its turn in the queue comes,
/// answered when the session says how it went.
pub trait SessionCommand: Send + 'static {
    /// Hands the command to the session.
    fn send(&mut self, parts: &mut Parts, cancel: &Cancel);

    /// The session ended a command: how the client is answered, or `None` when the end
    /// is not this command's.
    fn ended(&mut self, parts: &mut Parts, done: Done) -> Option<Answering>;
}

/// Queues a session command behind whatever runs.
fn queue_command(queue: &mut Queue, command: impl SessionCommand, answer: Answer) {
    queue.push(Box::new(CommandJob {
        command,
        answer: Some(answer),
    }));
}

/// A session command as the queue runs it.
struct CommandJob<C> {
    command: C,
    answer: Option<Answer>,
}

impl<C: SessionCommand> Job for CommandJob<C> {
    fn id(&self) -> Option<u64> {
        None
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.command.send(parts, cancel);
        Wait::Session
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, _: &Cancel) -> Wait {
        let Wake::Session(done) = wake else {
            return Wait::Session;
        };
        let Some(answering) = self.command.ended(parts, done) else {
            return Wait::Session;
        };
        let Some(answer) = self.answer.take() else {
            return Wait::Finished;
        };
        match answering {
            Answering::Ok(message) => answer.ok(message),
            Answering::Status => return Wait::AnswerStatus(answer),
            Answering::Error(e) => answer.error(&e),
        }
        Wait::Finished
    }

    /// A queued command that will not run tells whoever waits for it.
    fn cancel(mut self: Box<Self>, _: &mut Parts, why: &str) {
        if let Some(answer) = self.answer.take() {
            answer.error(&Error::new(ErrorKind::NoSession, why));
        }
    }
}

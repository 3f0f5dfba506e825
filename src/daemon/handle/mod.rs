//! One handler per request. A request from a connection reaches [`accept`], which hands
//! it to its handler: questions are answered at once (status, interrupt), work is
//! queued as a [`Job`] that carries its request and where its answer goes, and runs
//! when its turn comes.
//!
//! [`Job`]: super::job::Job

mod compact;
mod follow;
mod interrupt;
mod model;
mod permission;
mod restart;
mod send;
mod start;
mod status;
mod step;
mod stop;

use tokio::sync::oneshot;

use super::feed::{self, FeedReceiver};
use super::parts::Parts;
use super::subscribers::Until;
use crate::error::{Error, ErrorKind};
use crate::protocol::{Reply, Request};

/// How a request is answered.
pub enum Answered {
    Reply(Reply),
    /// The request was queued (the reply says so); its events follow on the feed until
    /// its end.
    Stream(Reply, FeedReceiver),
    /// The log after `after` up to `upto`, then every event as it happens.
    Follow {
        after: Option<u64>,
        upto: u64,
        feed: FeedReceiver,
    },
}

/// Where a request's answer goes; a request sent while a turn streams (an interrupt,
/// a permission) has nobody waiting for one.
pub struct Answer(Option<oneshot::Sender<Answered>>);

impl Answer {
    pub fn new() -> (Answer, oneshot::Receiver<Answered>) {
        let (tx, rx) = oneshot::channel();
        (Answer(Some(tx)), rx)
    }

    /// Nobody waits for this answer.
    pub fn none() -> Answer {
        Answer(None)
    }

    /// Someone waits for this answer.
    pub fn awaited(&self) -> bool {
        self.0.is_some()
    }

    fn give(self, answered: Answered) {
        if let Some(tx) = self.0 {
            // The client may have left; the work was done all the same.
            let _ = tx.send(answered);
        }
    }

    pub fn reply(self, reply: Reply) {
        self.give(Answered::Reply(reply));
    }

    pub fn ok(self, message: String) {
        self.reply(Reply::Ok { message });
    }

    pub fn error(self, e: &Error) {
        self.reply(Reply::error(e));
    }

    fn stream(self, queued: Reply, feed: FeedReceiver) {
        self.give(Answered::Stream(queued, feed));
    }

    fn follow(self, after: Option<u64>, upto: u64, feed: FeedReceiver) {
        self.give(Answered::Follow { after, upto, feed });
    }
}

/// Takes one request to its handler.
pub fn accept(parts: &mut Parts, request: Request, answer: Answer) {
    // Asking how the session is does not keep it alive; giving it work does.
    if !matches!(request, Request::Status | Request::Interrupt { .. }) {
        parts.life.touch();
    }
    match request {
        Request::Hello { .. } => {
            answer.error(&Error::usage("hello was already said").hint("send one request after it"))
        }
        Request::Status => status::handle(parts, answer),
        Request::Start(spec) => start::handle(parts, spec, answer),
        Request::Send(spec) => send::handle(parts, spec, answer),
        Request::Compact { instructions } => compact::handle(parts, instructions, answer),
        Request::Interrupt { turn } => interrupt::handle(parts, turn, answer),
        Request::SetModel { model } => model::handle(parts, model, answer),
        Request::Restart { claude } => restart::handle(parts, claude, answer),
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
        Request::Worker(request) => step::handle(parts, request, answer),
        Request::Stop => stop::handle(parts, answer),
    }
}

/// New work is refused while the daemon stops, and when the queue is full.
fn accepting(parts: &Parts) -> Result<(), Error> {
    if parts.life.stopping() {
        return Err(Error::new(ErrorKind::NoSession, "the session is stopping")
            .hint("start it again with `leash session start`"));
    }
    if parts.queue.is_full() {
        return Err(Error::new(
            ErrorKind::Busy,
            format!(
                "the session is busy: {} turns are already queued",
                parts.queue.waiting()
            ),
        )
        .hint("retry later, or raise max_queue"));
    }
    Ok(())
}

/// Turns and steps that run before a new one.
fn ahead(parts: &Parts) -> usize {
    parts.queue.waiting() + usize::from(parts.running().is_some())
}

/// A new turn or step's id, its events sent to a new feed from now until `until`.
fn subscribe(parts: &mut Parts, until: Until) -> (u64, usize, FeedReceiver) {
    let ahead = ahead(parts);
    let id = parts.queue.next_id();
    let (feed, rx) = feed::channel(parts.limits.feed_budget);
    parts.out.subscribe(id, until, feed);
    (id, ahead, rx)
}

/// A queued job that will not run tells whoever waits for it: `session start`, `model`
/// and `restart` wait for their answer.
fn not_run(answer: Answer, why: &str) {
    answer.error(&Error::new(ErrorKind::NoSession, why));
}

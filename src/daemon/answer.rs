//! Where a request's answer goes: a reply, or a stream of the events of the work it
//! queued. Connections wait on it; handlers and jobs give it.

use tokio::sync::oneshot;

use super::feed::FeedReceiver;
use crate::error::Error;
use crate::protocol::Reply;

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

    pub fn stream(self, queued: Reply, feed: FeedReceiver) {
        self.give(Answered::Stream(queued, feed));
    }

    pub fn follow(self, after: Option<u64>, upto: u64, feed: FeedReceiver) {
        self.give(Answered::Follow { after, upto, feed });
    }
}

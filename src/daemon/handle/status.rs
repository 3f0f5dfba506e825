//! `status`: the session as it is now, answered at once.

use super::Answer;
use crate::daemon::parts::Parts;
use crate::daemon::queue::Queue;
use crate::protocol::Reply;

pub fn handle(parts: &mut Parts, queue: &Queue, answer: Answer) {
    answer.reply(Reply::Status(Box::new(parts.status(queue.waiting()))));
}

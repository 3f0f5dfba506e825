//! `follow`: every event from now on, after the log up to now (read by the connection,
//! so a long log never holds up the daemon).

use super::Answer;
use crate::daemon::feed;
use crate::daemon::parts::Parts;

pub fn handle(parts: &mut Parts, after_seq: Option<u64>, answer: Answer) {
    let (feed, rx) = feed::channel(parts.limits().feed_budget);
    let upto = parts.out().follow(feed);
    answer.follow(after_seq, upto, rx);
}

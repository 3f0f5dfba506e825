//! `permission`: the person's answer to claude's request to use a tool. It is taken only
//! from the connection that streams the turn (which waits for no answer to it).

use super::Answer;
use crate::daemon::parts::Parts;
use crate::daemon::permissions::Decision;
use crate::error::Error;

pub fn handle(parts: &mut Parts, request_id: String, decision: Decision, answer: Answer) {
    if answer.awaited() {
        return answer.error(
            &Error::usage("a tool request is answered on the connection that streams its turn")
                .hint("answer it where `leash session send` or the worker step runs"),
        );
    }
    parts.decide_permission(&request_id, decision);
}

//! `loop_ended`: `leash loop` tells the code it exits with; the daemon writes it into the
//! event log at once (made durable before the answer), outside any step.

use super::Answer;
use crate::daemon::parts::Parts;
use crate::protocol::EventBody;

pub fn handle(parts: &mut Parts, task_id: String, exit_code: u8, answer: Answer) {
    let body = EventBody::<serde_json::Value>::LoopEnded { task_id, exit_code };
    parts.out().emit(None, body);
    // The loop's caller may run `leash report` the next moment.
    parts.out().flush();
    answer.ok(format!("the loop's exit code {exit_code} is kept"));
}

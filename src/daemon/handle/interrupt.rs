//! `interrupt`: the running turn (or step) is interrupted; a queued one named by its id
//! is dropped before it starts.

use super::Answer;
use crate::daemon::parts::Parts;
use crate::daemon::queue::Queue;

pub fn handle(parts: &mut Parts, queue: &mut Queue, turn: Option<u64>, answer: Answer) {
    if let Some(current) = parts.running()
        && turn.is_none_or(|t| t == current)
    {
        parts.interrupt_running();
        return answer.ok(format!("interrupting turn {current}"));
    }
    if let Some(wanted) = turn
        && let Some(job) = queue.remove(wanted)
    {
        job.cancel(parts, "interrupted before it started");
        return answer.ok(format!("dropped queued turn {wanted}"));
    }
    answer.ok(match turn {
        Some(t) => format!("turn {t} is not running; nothing to interrupt"),
        None => "no turn is running; nothing to interrupt".to_string(),
    });
}

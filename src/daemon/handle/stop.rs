//! `stop`: whatever runs is interrupted, whatever waits is told it will not run, claude
//! is stopped the polite way, and the answer comes once the socket is gone.

use super::Answer;
use crate::daemon::parts::Parts;

pub fn handle(parts: &mut Parts, answer: Answer) {
    parts.life().request_stop(answer);
    parts.interrupt_running();
}

//! `send`: one turn, queued behind whatever runs; its events stream to the client until
//! `turn_ended`.

use super::{Answer, accepting, subscribe};
use crate::claude::session::Cancel;
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;
use crate::daemon::queue::Queue;
use crate::daemon::subscribers::Until;
use crate::daemon::turn::{Progress, TurnRun};
use crate::error::Error;
use crate::protocol::{EventBody, Reply};
use crate::turn::{Outcome, TurnSpec, TurnStatus};

pub fn handle(parts: &mut Parts, queue: &mut Queue, spec: TurnSpec, answer: Answer) {
    if spec.prompt.trim().is_empty() {
        return answer
            .error(&Error::usage("the prompt is empty").hint("send a prompt with some text"));
    }
    enqueue(parts, queue, spec, answer);
}

/// Queues a turn and streams it to the client.
pub(super) fn enqueue(parts: &mut Parts, queue: &mut Queue, spec: TurnSpec, answer: Answer) {
    if let Err(e) = accepting(parts, queue) {
        return answer.error(&e);
    }
    let (turn, ahead, feed) = subscribe(parts, queue, Until::TurnEnded);
    let run = TurnRun::new(turn, spec, parts);
    queue.push(Box::new(TurnJob { run }));
    answer.stream(Reply::Queued { turn, ahead }, feed);
}

struct TurnJob {
    run: TurnRun,
}

impl Job for TurnJob {
    fn id(&self) -> Option<u64> {
        Some(self.run.id())
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.run.begin(parts, cancel)
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Wait {
        match self.run.wake(parts, wake, cancel) {
            Progress::Wait(wait) => wait,
            Progress::Ended(_) => Wait::Finished,
        }
    }

    fn cancel(self: Box<Self>, parts: &mut Parts, why: &str) {
        let id = self.run.id();
        let outcome = Outcome {
            message: Some(why.to_string()),
            ..parts.outcome(id, TurnStatus::Interrupted, 0)
        };
        parts.out().emit(
            Some(id),
            EventBody::<serde_json::Value>::TurnEnded { outcome },
        );
    }
}

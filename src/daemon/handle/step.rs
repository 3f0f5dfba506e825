//! `worker`: one worker step (plan, implement, nudge), queued behind whatever runs.
//! With `wait` its events stream to the client until `judged`; without, the answer is
//! that it was queued. A nudge queued while another waits is merged into it.

use super::{Answer, accepting, ahead, subscribe};
use crate::claude::session::Cancel;
use crate::daemon::feed;
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;
use crate::daemon::queue::merge_into;
use crate::daemon::step::{StepRun, end_step};
use crate::daemon::subscribers::Until;
use crate::protocol::{Reply, WorkerRequest};
use crate::worker::machine::judgement;
use crate::worker::{Verdict, WorkerStep};

pub fn handle(parts: &mut Parts, request: WorkerRequest, answer: Answer) {
    if let Err(e) = accepting(parts) {
        return answer.error(&e);
    }
    let wait = request.wait;
    if let WorkerStep::Nudge { reasons, events } = &request.step
        && let Some((id, at)) = parts.queue.merge_nudge(reasons, events)
    {
        let queued = Reply::Queued {
            turn: id,
            ahead: at + usize::from(parts.running().is_some()),
        };
        if !wait {
            return answer.reply(queued);
        }
        let (feed, rx) = feed::channel(parts.limits.feed_budget);
        parts.out.subscribe(id, Until::Judged, feed);
        return answer.stream(queued, rx);
    }
    if !wait {
        let ahead = ahead(parts);
        let id = parts.queue.next_id();
        parts
            .queue
            .push(Box::new(StepJob(StepRun::new(id, request))));
        return answer.reply(Reply::Queued { turn: id, ahead });
    }
    let (id, ahead, rx) = subscribe(parts, Until::Judged);
    parts
        .queue
        .push(Box::new(StepJob(StepRun::new(id, request))));
    answer.stream(Reply::Queued { turn: id, ahead }, rx);
}

struct StepJob(StepRun);

impl Job for StepJob {
    fn id(&self) -> Option<u64> {
        Some(self.0.id())
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.0.begin(parts, cancel)
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Wait {
        self.0.wake(parts, wake, cancel)
    }

    fn cancel(self: Box<Self>, parts: &mut Parts, why: &str) {
        let step = self.0.request().step.step();
        let judged = judgement(
            parts.worker.state(),
            step,
            Verdict::Interrupted,
            why.to_string(),
        );
        end_step(parts, self.0.id(), judged);
    }

    fn merge_nudge(&mut self, reasons: &[String], events: &[String]) -> bool {
        let WorkerStep::Nudge {
            reasons: pending_reasons,
            events: pending_events,
        } = &mut self.0.request_mut().step
        else {
            return false;
        };
        merge_into(pending_reasons, reasons);
        merge_into(pending_events, events);
        true
    }

    fn is_nudge(&self) -> bool {
        matches!(self.0.request().step, WorkerStep::Nudge { .. })
    }
}

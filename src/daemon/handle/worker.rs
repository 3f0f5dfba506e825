//! `worker`: one worker step (plan, implement, nudge, land), queued behind whatever
//! runs; a landing is refused while anything runs, and owns the branch while it runs.
//! With `wait` its events stream to the client until `judged`; without, the answer is
//! that it was queued. A nudge queued while another waits is merged into it.

use super::{Answer, accepting, ahead, follow_from_now, subscribe};
use crate::claude::session::Cancel;
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;
use crate::daemon::queue::Queue;
use crate::daemon::subscribers::Until;
use crate::daemon::worker_step::{StepRun, end_step};
use crate::error::{Error, ErrorKind};
use crate::protocol::{Reply, WorkerRequest};
use crate::worker::{Step, Verdict, WorkerStep};

pub fn handle(parts: &mut Parts, queue: &mut Queue, request: WorkerRequest, answer: Answer) {
    if let Err(e) = accepting(parts, queue) {
        return answer.error(&e);
    }
    if matches!(request.step, WorkerStep::Land { .. }) && ahead(parts, queue) > 0 {
        return answer.error(
            &Error::new(
                ErrorKind::Busy,
                "the worker runs another step; a landing does not wait behind it",
            )
            .hint("run `leash land` again once the worker's step ended"),
        );
    }
    if hook_nudge_while_landing(parts, &request) {
        return drop_hook_nudge(parts, request.wait, answer);
    }
    let wait = request.wait;
    if let WorkerStep::Nudge { reasons, events } = &request.step
        && let Some((id, at)) = queue.merge_nudge(reasons, events)
    {
        let queued = Reply::Queued {
            turn: id,
            ahead: at + usize::from(parts.running().is_some()),
        };
        if !wait {
            return answer.reply(queued);
        }
        let rx = follow_from_now(parts, id, Until::Judged);
        return answer.stream(queued, rx);
    }
    if !wait {
        let ahead = ahead(parts, queue);
        let id = parts.tally().next_id();
        queue.push(Box::new(StepJob::new(id, request)));
        return answer.reply(Reply::Queued { turn: id, ahead });
    }
    let (id, ahead, rx) = subscribe(parts, queue, Until::Judged);
    queue.push(Box::new(StepJob::new(id, request)));
    answer.stream(Reply::Queued { turn: id, ahead }, rx);
}

/// A nudge a git hook fired while a landing step owns the branch: its commits are the
/// landing's (or a person's), nothing the worker is to be nudged about.
fn hook_nudge_while_landing(parts: &Parts, request: &WorkerRequest) -> bool {
    matches!(&request.step, WorkerStep::Nudge { reasons, events }
        if reasons.is_empty() && !events.is_empty())
        && parts.worker().landing()
}

/// Answers a dropped hook nudge as a step that had nothing to do, with a notice.
fn drop_hook_nudge(parts: &mut Parts, wait: bool, answer: Answer) {
    let id = parts.tally().next_id();
    let queued = Reply::Queued { turn: id, ahead: 0 };
    match wait {
        true => {
            let rx = follow_from_now(parts, id, Until::Judged);
            answer.stream(queued, rx);
        }
        false => answer.reply(queued),
    }
    let why = "a landing step owns the branch; a git hook's nudge meanwhile is dropped";
    parts.out().info(Some(id), why.to_string());
    let dropped =
        parts
            .worker()
            .judgement(Step::Nudge, Verdict::NothingToDo, format!("dropped: {why}"));
    parts.out().emit(
        Some(id),
        crate::protocol::EventBody::<serde_json::Value>::Judged { judgement: dropped },
    );
}

struct StepJob {
    run: StepRun,
    /// The step ended with the worker's work done.
    work_done: bool,
}

impl StepJob {
    fn new(id: u64, request: WorkerRequest) -> StepJob {
        StepJob {
            run: StepRun::new(id, request),
            work_done: false,
        }
    }
}

impl Job for StepJob {
    fn id(&self) -> Option<u64> {
        Some(self.run.id())
    }

    fn step(&self) -> Option<crate::worker::Step> {
        Some(self.run.request().step.step())
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        let wait = self.run.begin(parts, cancel);
        self.work_done = self.run.work_done();
        wait
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Wait {
        let wait = self.run.wake(parts, wake, cancel);
        self.work_done = self.run.work_done();
        wait
    }

    fn cancel(self: Box<Self>, parts: &mut Parts, why: &str) {
        let step = self.run.request().step.step();
        let judged = parts
            .worker()
            .judgement(step, Verdict::Interrupted, why.to_string());
        end_step(parts, self.run.id(), judged);
    }

    fn merge_nudge(&mut self, reasons: &[String], events: &[String]) -> bool {
        self.run.request_mut().step.merge_nudge(reasons, events)
    }

    fn is_nudge(&self) -> bool {
        matches!(self.run.request().step, WorkerStep::Nudge { .. })
    }

    fn did_the_work(&self) -> bool {
        self.work_done
    }

    fn superseded(self: Box<Self>, parts: &mut Parts) {
        let dropped = parts.worker().dropped_nudge();
        parts.out().emit(
            Some(self.run.id()),
            crate::protocol::EventBody::<serde_json::Value>::Judged { judgement: dropped },
        );
    }
}

//! `start`: the session set up as the client asked (a new conversation, or changes to
//! the worker's), after whatever runs; with `warm`, answered once claude answered
//! `initialize`. Also the explicit "try again" after leash gave up on claude.

use super::{Answer, not_run};
use crate::claude::session::{Cancel, Conversation, Done, StartAsk};
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;
use crate::protocol::{Reply, StartSpec};

pub fn handle(parts: &mut Parts, spec: StartSpec, answer: Answer) {
    parts.queue.push(Box::new(StartJob {
        spec: Some(spec),
        answer: Some(answer),
    }));
}

struct StartJob {
    spec: Option<StartSpec>,
    answer: Option<Answer>,
}

impl Job for StartJob {
    fn id(&self) -> Option<u64> {
        None
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        let Some(spec) = self.spec.take() else {
            return Wait::Finished;
        };
        let mut new = Conversation::new(
            &parts.place.worker,
            spec.new.cwd.clone(),
            spec.new.claude.clone(),
            crate::worker::prompts::system_prompt(),
        );
        new.spawn.model = Some(spec.new.model.clone());
        new.spawn.allowed_tools.clone_from(&spec.new.allowed_tools);
        new.fork_of.clone_from(&spec.new.fork_of);
        // What a new conversation begins with, kept until the session says whether
        // the start began one.
        self.spec = Some(spec.clone());
        let ask = StartAsk {
            fresh: spec.fresh,
            new,
            change: spec.change,
            warm: spec.warm,
        };
        parts.session.start(ask, cancel.clone());
        Wait::Session
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, _: &Cancel) -> Wait {
        let Wake::Session(Done::Started(started)) = wake else {
            return Wait::Session;
        };
        if let Some(spec) = self.spec.take() {
            if started.new_conversation {
                parts.tally.reset();
                parts.permissions.set_allow_list(spec.new.permission_allow);
                if let Some(state) = spec.new.worker {
                    parts.worker.begin_as(*state);
                }
            }
            if let Some(allow) = spec.change.permission_allow {
                parts.permissions.set_allow_list(allow);
            }
            parts.save_record();
        }
        if let Some(answer) = self.answer.take() {
            match started.result {
                Ok(()) => answer.reply(Reply::Status(Box::new(parts.status()))),
                Err(e) => answer.error(&e),
            }
        }
        Wait::Finished
    }

    fn cancel(mut self: Box<Self>, _: &mut Parts, why: &str) {
        if let Some(answer) = self.answer.take() {
            not_run(answer, why);
        }
    }
}

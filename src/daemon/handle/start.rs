//! `start`: the session set up as the client asked (a new conversation, or changes to
//! the worker's), after whatever runs; with `warm`, answered once claude answered
//! `initialize`. Also the explicit "try again" after leash gave up on claude.

use super::{Answering, SessionCommand};
use crate::claude::session::{Cancel, Conversation, Done, StartAsk};
use crate::daemon::parts::{Parts, Saving};
use crate::protocol::StartSpec;

pub struct Start {
    /// What a new conversation begins with, kept until the session says whether the
    /// start began one.
    spec: StartSpec,
}

impl Start {
    pub fn new(spec: StartSpec) -> Start {
        Start { spec }
    }
}

impl SessionCommand for Start {
    fn send(&mut self, parts: &mut Parts, cancel: &Cancel) {
        let spec = &self.spec;
        let mut new = Conversation::new(
            &parts.place().worker,
            spec.new.cwd.clone(),
            spec.new.claude.clone(),
            crate::worker::prompts::system_prompt(),
        );
        new.spawn.model = Some(spec.new.model.clone());
        new.spawn.allowed_tools.clone_from(&spec.new.allowed_tools);
        new.fork_of.clone_from(&spec.new.fork_of);
        let ask = StartAsk {
            fresh: spec.fresh,
            new,
            change: spec.change.clone(),
            warm: spec.warm,
        };
        parts.session().start(ask, cancel.clone());
    }

    fn ended(&mut self, parts: &mut Parts, done: Done) -> Option<Answering> {
        let Done::Started(started) = done else {
            return None;
        };
        let spec = &mut self.spec;
        if started.new_conversation {
            parts.tally().reset();
            parts.set_allow_list(std::mem::take(&mut spec.new.permission_allow));
            if let Some(state) = spec.new.worker.take() {
                parts.worker_mut().begin_as(*state);
            }
        }
        if let Some(allow) = spec.change.permission_allow.take() {
            parts.set_allow_list(allow);
        }
        let _ = parts.save_record(Saving::Background);
        Some(match started.result {
            Ok(()) => Answering::Status,
            Err(e) => Answering::Error(e),
        })
    }
}

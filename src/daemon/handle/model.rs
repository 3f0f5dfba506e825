//! `model`: the next turns on another model, same conversation; after whatever runs.

use super::{Answer, not_run};
use crate::claude::session::{Cancel, Done};
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;

pub fn handle(parts: &mut Parts, model: String, answer: Answer) {
    parts.queue.push(Box::new(ModelJob {
        model,
        answer: Some(answer),
    }));
}

struct ModelJob {
    model: String,
    answer: Option<Answer>,
}

impl Job for ModelJob {
    fn id(&self) -> Option<u64> {
        None
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        parts.session.set_model(self.model.clone(), cancel.clone());
        Wait::Session
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, _: &Cancel) -> Wait {
        let Wake::Session(Done::ModelSet(result)) = wake else {
            return Wait::Session;
        };
        let Some(answer) = self.answer.take() else {
            return Wait::Finished;
        };
        let model = &self.model;
        match result {
            Ok(()) if parts.session.view().pid.is_some() => {
                answer.ok(format!(
                    "model set to {model}; claude confirms it on the next turn"
                ));
            }
            Ok(()) => answer.ok(format!("model set to {model}; used from the next turn")),
            Err(e) => answer.error(&e),
        }
        Wait::Finished
    }

    fn cancel(mut self: Box<Self>, _: &mut Parts, why: &str) {
        if let Some(answer) = self.answer.take() {
            not_run(answer, why);
        }
    }
}

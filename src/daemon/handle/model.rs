//! `model`: the next turns on another model, same conversation; after whatever runs.

use super::{Answering, SessionCommand};
use crate::claude::session::{Cancel, Done};
use crate::daemon::parts::Parts;

pub struct SetModel(pub String);

impl SessionCommand for SetModel {
    fn send(&mut self, parts: &mut Parts, cancel: &Cancel) {
        parts.session().set_model(self.0.clone(), cancel.clone());
    }

    fn ended(&mut self, parts: &mut Parts, done: Done) -> Option<Answering> {
        let Done::ModelSet(result) = done else {
            return None;
        };
        let model = &self.0;
        Some(match result {
            Ok(()) if parts.session().view().pid.is_some() => Answering::Ok(format!(
                "model set to {model}; claude confirms it on the next turn"
            )),
            Ok(()) => Answering::Ok(format!("model set to {model}; used from the next turn")),
            Err(e) => Answering::Error(e),
        })
    }
}

//! `restart`: a new claude process on the same conversation, after whatever runs;
//! answered with the status once the new one runs.

use std::path::PathBuf;

use super::{Answering, SessionCommand};
use crate::claude::session::{Cancel, Done};
use crate::daemon::parts::Parts;

pub struct Restart(pub Option<PathBuf>);

impl SessionCommand for Restart {
    fn send(&mut self, parts: &mut Parts, cancel: &Cancel) {
        parts.session().restart(self.0.take(), cancel.clone());
    }

    fn ended(&mut self, _: &mut Parts, done: Done) -> Option<Answering> {
        let Done::Restarted(result) = done else {
            return None;
        };
        Some(match result {
            Ok(()) => Answering::Status,
            Err(e) => Answering::Error(e),
        })
    }
}

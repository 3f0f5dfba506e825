//! `restart`: a new claude process on the same conversation, after whatever runs;
//! answered with the status once the new one runs.

use std::path::PathBuf;

use super::{Answer, not_run};
use crate::claude::session::{Cancel, Done};
use crate::daemon::job::{Job, Wait, Wake};
use crate::daemon::parts::Parts;
use crate::protocol::Reply;

pub fn handle(parts: &mut Parts, claude: Option<PathBuf>, answer: Answer) {
    parts.queue.push(Box::new(RestartJob {
        claude,
        answer: Some(answer),
    }));
}

struct RestartJob {
    claude: Option<PathBuf>,
    answer: Option<Answer>,
}

impl Job for RestartJob {
    fn id(&self) -> Option<u64> {
        None
    }

    fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        parts.session.restart(self.claude.take(), cancel.clone());
        Wait::Session
    }

    fn wake(&mut self, parts: &mut Parts, wake: Wake, _: &Cancel) -> Wait {
        let Wake::Session(Done::Restarted(result)) = wake else {
            return Wait::Session;
        };
        if let Some(answer) = self.answer.take() {
            match result {
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

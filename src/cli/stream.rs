//! Sending a turn or a worker step and streaming it to the terminal until its end.
//! Ctrl-C interrupts the turn (never the daemon); a second Ctrl-C stops waiting.

use tokio::signal::unix::{SignalKind, signal};

use super::render::{Output, TurnPrinter};
use crate::client::Connection;
use crate::error::{Error, ErrorKind};
use crate::protocol::{Event, Outcome, Reply, Request, ServerLine};
use crate::worker::Judgement;

/// How a streamed request ended.
pub enum Ending {
    Turn(Outcome),
    Step(Judgement),
}

pub async fn stream(
    mut conn: Connection,
    request: &Request,
    out: &Output,
) -> Result<Ending, Error> {
    let until_judged = matches!(request, Request::Worker(_));
    conn.send(request).await?;
    let mut printer = TurnPrinter::new(out);
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut turn = None;
    let mut interrupted = false;
    loop {
        if !conn.has_buffered() {
            printer.flush();
        }
        let next = tokio::select! {
            line = conn.next() => Some(line?),
            _ = ctrl_c.recv() => None,
        };
        let Some(next) = next else {
            if interrupted {
                printer.flush();
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    "stopped waiting for the interrupted turn",
                ));
            }
            interrupted = true;
            out.note("interrupting the turn (Ctrl-C again to stop waiting)");
            conn.send(&Request::Interrupt { turn }).await?;
            continue;
        };
        let Some((raw, parsed)) = next else {
            printer.flush();
            return Err(Error::turn_failed(
                "the session daemon went away during the turn; run the command again to continue the conversation",
            ));
        };
        match &parsed {
            ServerLine::Reply(Reply::Error { kind, message }) => {
                printer.flush();
                return Err(Error::new(*kind, message.clone()));
            }
            ServerLine::Reply(Reply::Queued {
                turn: queued,
                ahead,
            }) => {
                turn = Some(*queued);
                if *ahead > 0 {
                    out.note(format!("turn {queued} waits behind {ahead} other turn(s)"));
                }
            }
            _ => {}
        }
        printer.line(&raw, &parsed);
        match parsed {
            ServerLine::Event(Event::TurnEnded { outcome, .. }) => {
                printer.finish(&outcome);
                if !until_judged {
                    return Ok(Ending::Turn(outcome));
                }
            }
            ServerLine::Event(Event::Judged { judgement, .. }) => {
                printer.flush();
                return Ok(Ending::Step(judgement));
            }
            _ => {}
        }
    }
}

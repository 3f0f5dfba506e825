//! Sending a turn or a worker step and streaming it to the terminal until its end.
//! Ctrl-C interrupts the turn (never the daemon); a second Ctrl-C stops waiting.

use tokio::signal::unix::{SignalKind, signal};

use console::{Term, style};
use dialoguer::{Input, Select};
use serde_json::Value;

use super::render::{Output, TurnPrinter, tool_summary};
use crate::client::{Connection, parse_line};
use crate::error::{Error, ErrorKind};
use crate::framing::peek_type;
use crate::protocol::{Event, EventBody, Reply, Request, ServerLine};
use crate::turn::Outcome;
use crate::worker::Judgement;

/// Whether the client acts on this line beyond printing it.
fn needs_reading(raw: &str) -> bool {
    !matches!(
        peek_type(raw).as_deref(),
        Some("claude" | "turn_started" | "notice" | "stderr")
    )
}

/// claude asking to use a tool, as the daemon relays it to the person deciding.
struct Question {
    request_id: String,
    tool: String,
    input: Value,
}

fn permission_request(line: &ServerLine) -> Option<Question> {
    let ServerLine::Event(Event {
        body:
            EventBody::PermissionAsked {
                request_id,
                tool,
                input,
            },
        ..
    }) = line
    else {
        return None;
    };
    Some(Question {
        request_id: request_id.clone(),
        tool: tool.clone(),
        input: input.clone(),
    })
}

/// Asks the person at the terminal; anything but a clear answer is a no.
fn ask(question: &Question) -> Request {
    let term = Term::stderr();
    let _ = term.write_line(&format!(
        "{} claude wants to use {}",
        style("leash:").yellow().for_stderr(),
        style(tool_summary(&question.tool, &question.input))
            .bold()
            .for_stderr()
    ));
    let always = format!("Allow {} always (this session)", question.tool);
    let choice = Select::new()
        .with_prompt(format!("Allow {}?", question.tool))
        .items(["Allow once", always.as_str(), "Deny"])
        .default(0)
        .interact_on(&term);
    let (allow, always, message) = match choice {
        Ok(0) => (true, false, None),
        Ok(1) => (true, true, None),
        Ok(_) => {
            let reason: String = Input::new()
                .with_prompt("Reason for claude (optional)")
                .allow_empty(true)
                .interact_text_on(&term)
                .unwrap_or_default();
            (false, false, (!reason.trim().is_empty()).then_some(reason))
        }
        Err(_) => (false, false, Some("no answer from the user".to_string())),
    };
    Request::Permission {
        request_id: question.request_id.clone(),
        allow,
        always,
        message,
    }
}

/// How a streamed request ended.
pub enum Ending {
    Turn(Outcome),
    Step(Judgement),
}

pub async fn stream(
    mut conn: Connection,
    request: &Request,
    out: &Output,
    worker: &str,
) -> Result<Ending, Error> {
    let until_judged = matches!(request, Request::Worker(_));
    let interactive = match request {
        Request::Send(spec) => spec.interactive,
        Request::Worker(step) => step.interactive,
        _ => false,
    };
    conn.send(request).await?;
    let mut printer = TurnPrinter::new(out, worker);
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut turn = None;
    let mut interrupted = false;
    loop {
        if !conn.has_buffered() {
            printer.flush();
        }
        let next = tokio::select! {
            line = conn.next_raw() => Some(line?),
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
        let Some(raw) = next else {
            printer.flush();
            return Err(
                Error::turn_failed("the session daemon went away during the turn")
                    .hint("run the command again to continue the conversation"),
            );
        };
        // With --json most lines are only passed on: do not build what nobody reads.
        if out.json && !needs_reading(&raw) {
            printer.raw(&raw);
            continue;
        }
        let parsed = parse_line(&raw)?;
        if let ServerLine::Reply(reply @ Reply::Error { .. }) = &parsed
            && let Err(e) = reply.clone().into_error()
        {
            printer.flush();
            return Err(e);
        }
        if let ServerLine::Reply(Reply::Queued {
            turn: queued,
            ahead,
        }) = &parsed
        {
            turn = Some(*queued);
            if *ahead > 0 {
                out.note(format!("turn {queued} waits behind {ahead} other turn(s)"));
            }
        }
        printer.line(&raw, &parsed);
        if interactive && let Some(question) = permission_request(&parsed) {
            let answer = printer.suspend(|_| ask(&question));
            conn.send(&answer).await?;
        }
        match parsed {
            ServerLine::Event(Event {
                body: EventBody::TurnEnded { outcome },
                ..
            }) => {
                printer.finish(&outcome);
                if !until_judged {
                    return Ok(Ending::Turn(outcome));
                }
            }
            ServerLine::Event(Event {
                body: EventBody::Judged { judgement },
                ..
            }) => {
                printer.flush();
                return Ok(Ending::Step(judgement));
            }
            _ => {}
        }
    }
}

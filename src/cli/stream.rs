//! Sending a turn or a worker step and streaming it to the terminal until its end.
//! Ctrl-C interrupts the turn (never the daemon); a second Ctrl-C stops waiting.

use tokio::signal::unix::{SignalKind, signal};

use console::{Term, style};
use dialoguer::{Input, Select};
use serde_json::Value;

use std::time::Duration;

use super::common::{Autostart, connect_or_start};
use super::describe::tool_summary;
use super::render::{Output, TurnPrinter};
use crate::client::{Connection, Target, parse_line};
use crate::error::{Error, ErrorKind};
use crate::framing::peek_type;
use crate::protocol::{Event, EventBody, Reply, Request, ServerLine};
use crate::turn::Outcome;
use crate::worker::Judgement;
use crate::worker::prompts::CONTINUE_AFTER_RESTART;

/// Whether the client acts on a line of this type beyond printing it.
fn needs_reading(kind: Option<&str>) -> bool {
    !matches!(kind, Some("claude" | "notice" | "stderr"))
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
    /// The daemon died before the end; `started` when the request's turn had begun.
    DaemonDied {
        started: bool,
    },
}

/// The error of a request whose daemon died before its end.
pub fn daemon_died() -> Error {
    Error::turn_failed("the session daemon died during the turn").hint(
        "run the command again to continue the conversation (`session send --continue-on-crash` goes on by itself)",
    )
}

/// How long a daemon whose connection closed may take to be seen gone: its sockets
/// close before the kernel has it exit.
const DEATH_BOUND: Duration = Duration::from_secs(1);

/// Whether the daemon behind a connection that closed mid-stream died (rather than
/// closing on this client while it lives on).
async fn died(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + DEATH_BOUND;
    while tokio::time::Instant::now() < deadline {
        if !crate::process::alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    !crate::process::alive(pid)
}

/// What a request that goes on through its daemon's death starts a new daemon with,
/// and how many deaths in a row it goes on through.
pub struct Survive<'a> {
    pub autostart: Autostart<'a>,
    pub max_deaths: u32,
}

/// Streams `request` to its end. When its daemon dies on the way (killed, out of
/// memory), a new daemon resumes the conversation and is asked again, as after a
/// claude crash: a worker step with the same request (the new daemon finds the turn
/// that was in flight and has claude continue it), a turn that had begun with the
/// prompt that tells claude to continue, a turn still waiting with its own prompt.
/// Each death counts; past `max_deaths` in a row the command ends with exit 6.
pub async fn stream_surviving(
    target: &Target,
    mut conn: Connection,
    mut request: Request,
    out: &Output,
    survive: Option<Survive<'_>>,
) -> Result<Ending, Error> {
    let worker = target.worker.as_str();
    let mut deaths = Deaths::default();
    loop {
        let ending = stream(conn, &request, out, worker).await?;
        let Ending::DaemonDied { started } = ending else {
            return Ok(ending);
        };
        let Some(survive) = &survive else {
            return Err(daemon_died());
        };
        deaths.one_more(target, &request, survive, out, false)?;
        // The turn goes on: continued if claude's conversation holds its prompt, else
        // sent as itself (the new daemon decides, as for a worker's turn).
        if let Request::Send(spec) = &mut request
            && started
        {
            let cut_off = std::mem::replace(&mut spec.prompt, CONTINUE_AFTER_RESTART.to_string());
            spec.cut_off_prompt.get_or_insert(cut_off);
        }
        conn = loop {
            match connect_or_start(target, Some(survive.autostart.clone())).await {
                Ok(conn) => break conn,
                // Killed during its own startup: one more death, not a setup failure
                // (a daemon that cannot start at all exits with a code, and ends it).
                Err(e) if e.kind == ErrorKind::TurnFailed => {
                    deaths.one_more(target, &request, survive, out, true)?;
                }
                Err(e) => return Err(e),
            }
        };
    }
}

/// The daemon deaths of one request, in a row.
#[derive(Default)]
struct Deaths(u32);

impl Deaths {
    /// Counts a death (of a new daemon during its own startup, with `at_startup`) and
    /// says so; past `max_deaths`, the error that ends the command.
    fn one_more(
        &mut self,
        target: &Target,
        request: &Request,
        survive: &Survive<'_>,
        out: &Output,
        at_startup: bool,
    ) -> Result<(), Error> {
        self.0 += 1;
        let deaths = self.0;
        if deaths > survive.max_deaths {
            return Err(Error::turn_failed(format!(
                "the session daemon died {deaths} times during this {}; leash gave up (max_crashes {})",
                what(request),
                survive.max_deaths
            ))
            .hint(format!(
                "see {} for why it died",
                target.daemon_log().display()
            )));
        }
        let died = if at_startup {
            "a new session daemon died during its startup".to_string()
        } else {
            format!("the session daemon died during the {}", what(request))
        };
        out.note(format!(
            "{died}; a new one resumes the conversation ({deaths} of {})",
            survive.max_deaths
        ));
        Ok(())
    }
}

fn what(request: &Request) -> &'static str {
    match request {
        Request::Worker(_) => "step",
        _ => "turn",
    }
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
    // A daemon killed just before the request reaches it breaks the pipe: it died,
    // and the request goes on as through any other death of its daemon.
    if let Err(e) = conn.send(request).await {
        return match died(conn.daemon_pid).await {
            true => Ok(Ending::DaemonDied { started: false }),
            false => Err(e),
        };
    }
    let mut printer = TurnPrinter::new(out, worker);
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut turn = None;
    let mut started = false;
    let mut interrupted = false;
    loop {
        if !conn.has_buffered() {
            printer.flush();
        }
        let next = tokio::select! {
            line = conn.next_raw() => match line {
                Ok(line) => Some(line),
                // A reset connection: the daemon was killed mid-write.
                Err(_) if died(conn.daemon_pid).await => {
                    printer.flush();
                    return Ok(Ending::DaemonDied { started });
                }
                Err(e) => return Err(e),
            },
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
            // Asked to stop: a daemon that died meanwhile is not started again for it.
            if interrupted {
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    "the turn was interrupted and the session daemon went away",
                ));
            }
            if died(conn.daemon_pid).await {
                return Ok(Ending::DaemonDied { started });
            }
            return Err(Error::turn_failed(
                "the session daemon closed the connection during the turn",
            )
            .hint(format!(
                "it still runs (pid {}); see `leash session logs`, and run the command again",
                conn.daemon_pid
            )));
        };
        // Most lines are only passed on (--json) or shown: do not build what nobody
        // reads. claude's lines are most of the bytes, and kilobytes a turn.
        let kind = peek_type(&raw);
        if out.json && !needs_reading(kind.as_deref()) {
            printer.raw(&raw);
            continue;
        }
        if kind.as_deref() == Some("claude") {
            printer.claude(&raw);
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
        if let ServerLine::Event(Event {
            body: EventBody::TurnStarted { .. },
            turn: started_turn,
            ..
        }) = &parsed
            && turn.is_some()
            && *started_turn == turn
        {
            started = true;
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

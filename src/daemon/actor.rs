//! The actor: the one task that owns the daemon's parts and the queue of jobs beside
//! them. One `select!` takes whatever comes next (what the session reports, a client's
//! request, the end of what the running job waits for, a person's deadline, the idle
//! timeout) and hands it to the part or the job it is for. Jobs run one at a time, in
//! the order they were queued.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::mpsc;

use super::answer::Answer;
use super::handle;
use super::job::{Job, Wait, Wake};
use super::parts::{Parts, Saving};
use super::queue::Queue;
use crate::claude::session::{Cancel, CompactionNews, SessionEvent};
use crate::human::duration as human;
use crate::protocol::{EventBody, Fault, Request};

/// What connections and signals bring the actor.
pub enum Inbound {
    Request(Box<Request>, Answer),
    /// The client streaming this turn left: nobody is there to answer its questions.
    Left {
        turn: u64,
    },
}

/// What a job waits for besides the session: a pause, or work of its own.
type Awaited = Pin<Box<dyn Future<Output = Wake> + Send>>;

/// The job that runs, and what it waits for besides the session.
struct Running {
    job: Box<dyn Job>,
    cancel: Cancel,
    awaited: Option<Awaited>,
}

pub struct Actor {
    parts: Parts,
    queue: Queue,
    events: mpsc::Receiver<SessionEvent>,
    inbox: mpsc::Receiver<Inbound>,
    running: Option<Running>,
}

/// What a daemon that died left for this one to find.
pub struct Leftovers {
    /// The claude it left running, killed now.
    pub claude: Option<String>,
    /// Its pid.
    pub predecessor: Option<u32>,
}

impl Actor {
    pub fn new(
        parts: Parts,
        queue: Queue,
        events: mpsc::Receiver<SessionEvent>,
        inbox: mpsc::Receiver<Inbound>,
    ) -> Actor {
        Actor {
            parts,
            queue,
            events,
            inbox,
            running: None,
        }
    }

    /// Runs until stopped or idle for too long; returns who asked to stop, to answer
    /// once the socket is gone.
    pub async fn run(mut self, leftovers: Leftovers) -> Vec<Answer> {
        self.parts
            .info(format!("daemon started (pid {})", std::process::id()));
        if let Some(pid) = leftovers.predecessor {
            self.parts.fault(
                Fault::DaemonRestart,
                format!(
                    "the daemon before this one (pid {pid}) died without stopping (killed, out of memory, or the machine went down)"
                ),
            );
        }
        if let Some(what) = leftovers.claude {
            self.parts
                .warn(format!("killed {what} left running by a daemon that died"));
        }
        loop {
            if self.running.is_none() {
                if self.parts.life().stopping() {
                    break;
                }
                if !self.queue.is_empty() {
                    // The clients answered meanwhile (a queued step's caller, a hook)
                    // hear so before the job's own work holds this thread.
                    tokio::task::yield_now().await;
                    self.start_next();
                    continue;
                }
            }
            if self.events.is_empty() && self.inbox.is_empty() {
                // Nothing is ready: a good moment to make the log durable.
                self.parts.out().flush();
            }
            if self.next().await == Flow::Stop {
                break;
            }
        }
        self.shut_down().await
    }

    /// Waits for whatever comes next and hands it on.
    async fn next(&mut self) -> Flow {
        let person = self.parts.expire_permissions();
        let idle = self
            .parts
            .life()
            .idle_deadline()
            .filter(|_| self.running.is_none());
        let awaited = self.running.as_mut().and_then(|r| r.awaited.as_mut());
        tokio::select! {
            biased;
            event = self.events.recv() => match event {
                Some(event) => self.on_session(event),
                // The session ended: it never does while the daemon holds it.
                None => return Flow::Stop,
            },
            inbound = self.inbox.recv() => match inbound {
                Some(inbound) => self.on_inbound(inbound),
                // Every connection and signal is gone: nobody can ask for anything.
                None => self.parts.life().request_stop(Answer::none()),
            },
            wake = wait_for(awaited) => {
                if let Some(running) = self.running.as_mut() {
                    running.awaited = None;
                }
                self.wake(wake);
            }
            () = sleep_until(person) => {
                self.parts.expire_permissions();
            }
            () = sleep_until(idle) => {
                if self.parts.life().idle_expired() {
                    let idle = human(self.parts.life().idle_timeout());
                    self.parts.info(format!("idle for {idle}; stopping (the conversation is kept)"));
                    return Flow::Stop;
                }
            }
        }
        Flow::Go
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Request(request, answer) => {
                handle::accept(&mut self.parts, &mut self.queue, *request, answer);
            }
            Inbound::Left { turn } => self.parts.detach_permissions(turn),
        }
    }

    /// What the session reports goes to the log and the clients; the end of a command
    /// goes to the job that waits for it.
    fn on_session(&mut self, event: SessionEvent) {
        let turn = self.parts.running();
        let out = self.parts.out();
        match event {
            SessionEvent::Line(raw) => out.emit(turn, EventBody::Claude { msg: &*raw }),
            SessionEvent::Stderr(line) => out.emit(turn, EventBody::<Value>::Stderr { line }),
            SessionEvent::Info(message) => out.info(turn, message),
            SessionEvent::Warn(message) => out.warn(turn, message),
            SessionEvent::Compaction(news) => out.emit(
                turn,
                match news {
                    CompactionNews::Started => EventBody::<Value>::Compacting,
                    CompactionNews::Done(compaction) => EventBody::Compacted { compaction },
                    CompactionNews::Failed(reason) => EventBody::CompactFailed { reason },
                },
            ),
            SessionEvent::RateLimit(limit) => {
                out.emit(turn, EventBody::<Value>::RateLimit { limit })
            }
            SessionEvent::ToolRequest(request) => self.parts.ask_permission(request),
            // At once, not in the background: a command run after this turn's answer (`session
            // fork`) reads the conversation from the file. It changes when it begins, on a new
            // model, tools or binary, and on a compaction: never on a plain turn.
            SessionEvent::ConversationChanged => self.save_record_now(),
            SessionEvent::Done(done) => self.wake(Wake::Session(done)),
        }
    }

    /// The next queued job begins.
    fn start_next(&mut self) {
        let Some(mut job) = self.queue.pop() else {
            return;
        };
        let cancel = self.parts.job_began(job.id(), job.step());
        let wait = job.begin(&mut self.parts, &cancel);
        self.running = Some(Running {
            job,
            cancel,
            awaited: None,
        });
        self.wait(wait);
    }

    /// What the running job waited for happened.
    fn wake(&mut self, wake: Wake) {
        let Some(running) = self.running.as_mut() else {
            if let Wake::Session(done) = wake {
                self.parts.warn(format!(
                    "the session ended a command nobody waited for: {done:?}"
                ));
            }
            return;
        };
        let wait = running.job.wake(&mut self.parts, wake, &running.cancel);
        self.wait(wait);
    }

    fn wait(&mut self, wait: Wait) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let mut cancel = running.cancel.clone();
        let pause_ends_ms = match &wait {
            Wait::Until(at) => {
                let left = at.saturating_duration_since(tokio::time::Instant::now());
                Some(crate::time::now_ms() + left.as_millis() as u64)
            }
            _ => None,
        };
        self.parts.job_waits(pause_ends_ms);
        running.awaited = match wait {
            Wait::Finished => return self.finished(),
            Wait::AnswerStatus(answer) => {
                let status = self.parts.status(self.queue.waiting());
                answer.reply(crate::protocol::Reply::Status(Box::new(status)));
                return self.finished();
            }
            Wait::Session => None,
            Wait::Until(at) => Some(Box::pin(async move {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => Wake::Timer,
                    () = cancel.cancelled() => Wake::Cancelled,
                }
            })),
            Wait::Work(work) => Some(Box::pin(async move {
                tokio::select! {
                    wake = work => wake,
                    () = cancel.cancelled() => Wake::Cancelled,
                }
            })),
        };
    }

    /// The session record, saved now; a failure is told to `daemon.log` (the step that
    /// ends next saves it again, and fails with it).
    fn save_record_now(&mut self) {
        if let Err(e) = self.parts.save_record(Saving::Now) {
            log_line!("leash daemon: {e}");
        }
    }

    /// The running job is over. When it did the worker's work, the nudges still
    /// waiting have nothing left to nudge and are dropped.
    fn finished(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.parts.job_ended();
        if running.job.did_the_work() {
            for nudge in self.queue.take_nudges() {
                nudge.superseded(&mut self.parts);
            }
        }
    }

    /// The daemon stops: what waits is told it will not run, claude is stopped the
    /// polite way (what it says meanwhile still reaches the log), and the record saved.
    async fn shut_down(mut self) -> Vec<Answer> {
        for job in self.queue.drain() {
            job.cancel(
                &mut self.parts,
                "the session was stopped before this ran; start it again with `leash session start`",
            );
        }
        self.parts.close_session();
        while let Some(event) = self.events.recv().await {
            self.on_session(event);
        }
        self.save_record_now();
        self.parts.info("daemon stopped".to_string());
        self.parts.out().flush();
        self.parts.life().take_stop_replies()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

async fn wait_for(awaited: Option<&mut Awaited>) -> Wake {
    match awaited {
        Some(awaited) => awaited.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

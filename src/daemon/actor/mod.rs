//! The session actor: the one task that owns the claude child, the turn queue, the
//! event log and the session record. Connections talk to it through [`Command`]s;
//! everything it learns goes out as [`Event`] lines to the log and to subscribers.
//!
//! Turns run strictly one at a time. While one runs, the actor keeps serving commands
//! (status, queueing, interrupts) from the same loop, so nothing waits on a turn but
//! the turns behind it.

mod child;
mod events;
mod permissions;
mod turn;
mod worker;

pub use permissions::Decision;
use permissions::PendingPermission;

use worker::step_of;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::claude::child::{Child, ChildEvent, ExitInfo, SpawnSpec};
use crate::claude::messages::{
    ControlRequest, IncomingControlRequest, ResultMessage, StreamMessage, control_request_line,
    control_response_line, user_line,
};
use crate::daemon::feed::{Feed, Offer, Outgoing};
use crate::error::{Error, ErrorKind};
use crate::eventlog::EventLog;
use crate::protocol::{
    Event, Level, Outcome, SessionState, SessionStatus, TurnSpec, TurnStatus, WorkerRequest,
    now_ms, peek_type, to_line,
};
use crate::record::SessionRecord;
use crate::settings::Settings;
use crate::worker::{Verdict, WorkerState};

pub enum Command {
    Status(oneshot::Sender<SessionStatus>),
    Warmup(oneshot::Sender<Result<SessionStatus, Error>>),
    Submit {
        spec: TurnSpec,
        feed: Feed,
        reply: oneshot::Sender<Result<(u64, usize), Error>>,
    },
    Interrupt {
        turn: Option<u64>,
        reply: oneshot::Sender<String>,
    },
    SetModel {
        model: String,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    /// Queue a worker step; `feed` is `None` when the client does not wait for it.
    Worker {
        request: WorkerRequest,
        feed: Option<Feed>,
        reply: oneshot::Sender<Result<(u64, usize), Error>>,
    },
    /// Subscribe to every event; answers the seq of the newest event already in the
    /// (flushed) log, so the caller can replay the log up to it without a gap.
    Follow {
        feed: Feed,
        reply: oneshot::Sender<u64>,
    },
    /// The person's answer to a tool request.
    Permission {
        request_id: String,
        decision: Decision,
    },
    /// The client streaming this turn left.
    Detach {
        turn: u64,
    },
    Stop(Option<oneshot::Sender<()>>),
}

enum Job {
    Turn {
        turn: u64,
        spec: TurnSpec,
    },
    Warmup(oneshot::Sender<Result<SessionStatus, Error>>),
    SetModel {
        model: String,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    Worker {
        id: u64,
        request: WorkerRequest,
    },
}

struct Subscriber {
    /// `None` follows everything; `Some(turn)` only that turn (or worker step).
    turn: Option<u64>,
    until: Until,
    feed: Feed,
}

/// The event after which a subscriber's request is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    TurnEnded,
    Judged,
    Never,
}

/// What woke the actor; lives for one match, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Woke {
    Child(Option<ChildEvent>),
    Command(Option<Command>),
    Deadline,
}

enum Input {
    Child(ChildEvent),
    /// A command was served; it may have changed what the current job must do
    /// (interrupt, stop) or queued a job.
    Attention,
    Deadline,
}

/// How one attempt at a turn ended, before leash decides on retries.
enum Attempt {
    Result(ResultMessage),
    Exited(ExitInfo),
    /// claude did not finish an interrupted turn in time and was killed.
    Killed {
        hung: bool,
    },
    NotStarted(Error),
    InterruptedBeforeStart,
}

enum ControlError {
    Exited(ExitInfo),
    Timeout,
    Refused(String),
    Unwritable(String),
}

/// Counts connected clients; the idle timeout only runs while it is zero.
#[derive(Clone, Default)]
pub struct ClientCount(Arc<AtomicUsize>);

pub struct ClientGuard(Arc<AtomicUsize>);

impl ClientCount {
    pub fn enter(&self) -> ClientGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ClientGuard(self.0.clone())
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

const STDERR_TAIL: usize = 20;

/// What a daemon starts its actor with.
pub struct Setup {
    pub record: SessionRecord,
    pub worker: WorkerState,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub settings: Settings,
    pub log: EventLog,
    /// The claude a killed daemon left behind, which this one killed.
    pub stale_claude: Option<u32>,
}

pub struct Actor {
    record: SessionRecord,
    worker: WorkerState,
    state_dir: PathBuf,
    socket: PathBuf,
    settings: Settings,
    log: EventLog,
    commands: mpsc::Receiver<Command>,
    clients: ClientCount,
    child: Option<Child>,
    jobs: VecDeque<Job>,
    subscribers: Vec<Subscriber>,
    current_turn: Option<u64>,
    interrupt_requested: bool,
    stop_requested: bool,
    stop_replies: Vec<oneshot::Sender<()>>,
    confirmed_model: Option<String>,
    confirmed_mode: Option<String>,
    crashes: u32,
    failure: Option<String>,
    stderr_tail: VecDeque<String>,
    next_request_id: u64,
    started: Instant,
    last_activity: Instant,
    stale_claude: Option<u32>,
    /// The running turn whose client has a person to ask about tools.
    interactive_turn: Option<u64>,
    pending_permissions: Vec<PendingPermission>,
}

impl Actor {
    pub fn new(setup: Setup, commands: mpsc::Receiver<Command>, clients: ClientCount) -> Actor {
        let Setup {
            record,
            worker,
            state_dir,
            socket,
            settings,
            log,
            stale_claude,
        } = setup;
        Actor {
            record,
            worker,
            state_dir,
            socket,
            settings,
            log,
            commands,
            clients,
            child: None,
            jobs: VecDeque::new(),
            subscribers: Vec::new(),
            current_turn: None,
            interrupt_requested: false,
            stop_requested: false,
            stop_replies: Vec::new(),
            confirmed_model: None,
            confirmed_mode: None,
            crashes: 0,
            failure: None,
            stderr_tail: VecDeque::new(),
            next_request_id: 1,
            started: Instant::now(),
            last_activity: Instant::now(),
            stale_claude,
            interactive_turn: None,
            pending_permissions: Vec::new(),
        }
    }

    /// Runs until stopped or idle for too long; returns the stop requests to answer
    /// once the socket is gone.
    pub async fn run(mut self) -> Vec<oneshot::Sender<()>> {
        self.notice(None, format!("daemon started (pid {})", std::process::id()));
        if let Some(pid) = self.stale_claude.take() {
            self.warn(
                None,
                format!("killed claude (pid {pid}) left running by a daemon that died"),
            );
        }
        loop {
            if self.stop_requested {
                break;
            }
            if let Some(job) = self.jobs.pop_front() {
                self.run_job(job).await;
                self.last_activity = Instant::now();
                continue;
            }
            match self.next_input(self.idle_deadline()).await {
                Input::Child(event) => self.on_stray_child_event(event),
                Input::Attention => {}
                Input::Deadline => {
                    if self.clients.get() == 0 {
                        let idle = self.settings.idle_timeout;
                        self.notice(
                            None,
                            format!(
                                "idle for {}; stopping (the conversation is kept)",
                                human(idle)
                            ),
                        );
                        break;
                    }
                    self.last_activity = Instant::now();
                }
            }
        }
        self.drop_queued_jobs();
        self.shutdown_child().await;
        self.save_record();
        self.notice(None, "daemon stopped".to_string());
        let _ = self.log.flush();
        std::mem::take(&mut self.stop_replies)
    }

    fn idle_deadline(&self) -> Option<Instant> {
        (!self.settings.idle_timeout.is_zero())
            .then(|| self.last_activity + self.settings.idle_timeout)
    }

    /// The next thing the current job must react to. Commands are served here, so every
    /// wait in the actor keeps answering clients.
    async fn next_input(&mut self, deadline: Option<Instant>) -> Input {
        if let Some(event) = self.child.as_mut().and_then(Child::try_next_event) {
            return Input::Child(event);
        }
        if let Ok(command) = self.commands.try_recv() {
            self.handle_command(command);
            return Input::Attention;
        }
        // Nothing is ready: a good moment to make the log durable.
        if let Err(e) = self.log.flush() {
            eprintln!("leash daemon: cannot write the event log: {e}");
        }
        let woke = {
            let child = &mut self.child;
            let commands = &mut self.commands;
            tokio::select! {
                event = async {
                    match child.as_mut() {
                        Some(child) => child.next_event().await,
                        None => std::future::pending().await,
                    }
                } => Woke::Child(event),
                command = commands.recv() => Woke::Command(command),
                _ = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => Woke::Deadline,
            }
        };
        match woke {
            Woke::Child(event) => Input::Child(event.unwrap_or(ChildEvent::Exited(ExitInfo {
                code: None,
                signal: None,
            }))),
            Woke::Command(Some(command)) => {
                self.handle_command(command);
                Input::Attention
            }
            Woke::Command(None) => {
                self.stop_requested = true;
                Input::Attention
            }
            Woke::Deadline => Input::Deadline,
        }
    }

    fn handle_command(&mut self, command: Command) {
        // Asking how the session is does not keep it alive; giving it work does.
        if !matches!(command, Command::Status(_) | Command::Interrupt { .. }) {
            self.last_activity = Instant::now();
        }
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Warmup(reply) => {
                self.jobs.push_back(Job::Warmup(reply));
            }
            Command::Submit { spec, feed, reply } => {
                if let Err(e) = self.accepting() {
                    let _ = reply.send(Err(e));
                    return;
                }
                let queued_turns = self.queued_turns();
                let turn = self.next_job_id();
                self.subscribers.push(Subscriber {
                    turn: Some(turn),
                    until: Until::TurnEnded,
                    feed,
                });
                let ahead = queued_turns + usize::from(self.current_turn.is_some());
                self.jobs.push_back(Job::Turn { turn, spec });
                let _ = reply.send(Ok((turn, ahead)));
            }
            Command::Worker {
                request,
                feed,
                reply,
            } => {
                let _ = reply.send(self.submit_worker_step(request, feed));
            }
            Command::Interrupt { turn, reply } => self.interrupt(turn, reply),
            Command::SetModel { model, reply } => {
                self.jobs.push_back(Job::SetModel { model, reply });
            }
            Command::Follow { feed, reply } => {
                if let Err(e) = self.log.flush() {
                    eprintln!("leash daemon: cannot write the event log: {e}");
                }
                self.subscribers.push(Subscriber {
                    turn: None,
                    until: Until::Never,
                    feed,
                });
                let _ = reply.send(self.log.last_seq());
            }
            Command::Permission {
                request_id,
                decision,
            } => self.decide_permission(&request_id, decision),
            Command::Detach { turn } => self.detach(turn),
            Command::Stop(reply) => {
                self.stop_requested = true;
                self.stop_replies.extend(reply);
            }
        }
    }

    fn interrupt(&mut self, turn: Option<u64>, reply: oneshot::Sender<String>) {
        if let Some(current) = self.current_turn
            && turn.is_none_or(|t| t == current)
        {
            self.interrupt_requested = true;
            let _ = reply.send(format!("interrupting turn {current}"));
            return;
        }
        if let Some(wanted) = turn
            && let Some(index) = self.jobs.iter().position(|job| {
                matches!(job, Job::Turn { turn, .. } | Job::Worker { id: turn, .. } if *turn == wanted)
            })
        {
            if let Some(job) = self.jobs.remove(index) {
                self.cancel_job(job, "interrupted before it started");
            }
            let _ = reply.send(format!("dropped queued turn {wanted}"));
            return;
        }
        let _ = reply.send(match turn {
            Some(t) => format!("turn {t} is not running; nothing to interrupt"),
            None => "no turn is running; nothing to interrupt".to_string(),
        });
    }

    /// Turns and worker steps waiting behind the running job.
    fn queued_turns(&self) -> usize {
        self.jobs
            .iter()
            .filter(|job| matches!(job, Job::Turn { .. } | Job::Worker { .. }))
            .count()
    }

    /// Refuses new work while stopping or when the queue is full.
    fn accepting(&self) -> Result<(), Error> {
        if self.stop_requested {
            return Err(Error::new(
                ErrorKind::NoSession,
                "the session is stopping; start it again with `leash session start`",
            ));
        }
        let queued = self.queued_turns();
        if queued >= self.settings.max_queue {
            return Err(Error::new(
                ErrorKind::TurnFailed,
                format!("the session is busy: {queued} turns are already queued; retry later"),
            ));
        }
        Ok(())
    }

    /// Turn and step ids are never reused within a worker's life.
    fn next_job_id(&mut self) -> u64 {
        self.record.last_turn += 1;
        self.record.last_turn
    }

    fn status(&self) -> SessionStatus {
        let state = if self.failure.is_some() {
            SessionState::Failed
        } else if self.current_turn.is_some() {
            SessionState::Busy
        } else if self.child.is_some() {
            SessionState::Idle
        } else {
            SessionState::Cold
        };
        SessionStatus {
            worker: self.record.worker.clone(),
            state,
            daemon_pid: std::process::id(),
            claude_pid: self.child.as_ref().map(Child::pid),
            session_id: self.record.session_id.clone(),
            model: self.confirmed_model.clone(),
            requested_model: self.record.model.clone(),
            permission_mode: self
                .confirmed_mode
                .clone()
                .or_else(|| self.record.permission_mode.clone()),
            cwd: self.record.cwd.clone(),
            current_turn: self.current_turn,
            queued: self.queued_turns(),
            turns: self.record.turns,
            cost_usd: self.record.cost_usd,
            uptime_secs: self.started.elapsed().as_secs(),
            socket: self.socket.clone(),
            log: self.log.path(),
            failure: self.failure.clone(),
        }
    }

    async fn run_job(&mut self, job: Job) {
        match job {
            Job::Turn { turn, spec } => {
                self.run_turn(turn, spec).await;
            }
            Job::Worker { id, request } => self.run_worker_step(id, request).await,
            Job::Warmup(reply) => {
                // `session start` is the explicit "try again" after leash gave up.
                self.failure = None;
                self.crashes = 0;
                let result = self.ensure_child().await.map(|()| self.status());
                let _ = reply.send(result);
            }
            Job::SetModel { model, reply } => {
                let result = self.switch_model(&model).await.map(|()| match &self.child {
                    Some(_) => format!("model set to {model}; claude confirms it on the next turn"),
                    None => format!("model set to {model}; used from the next turn"),
                });
                let _ = reply.send(result);
            }
        }
    }

    fn drop_queued_jobs(&mut self) {
        for job in std::mem::take(&mut self.jobs) {
            self.cancel_job(
                job,
                "the session was stopped before this ran; start it again with `leash session start`",
            );
        }
    }

    /// Ends a job that will not run, telling whoever waits for it why.
    fn cancel_job(&mut self, job: Job, why: &str) {
        match job {
            Job::Turn { turn, .. } => {
                let outcome = Outcome {
                    message: Some(why.to_string()),
                    ..self.outcome(turn, TurnStatus::Interrupted, 0)
                };
                self.end_turn(turn, outcome);
            }
            Job::Worker { id, request } => {
                let judgement = self.judgement(
                    step_of(&request.step),
                    Verdict::Interrupted,
                    why.to_string(),
                );
                self.end_step(id, judgement);
            }
            Job::Warmup(reply) => {
                let _ = reply.send(Err(Error::new(ErrorKind::NoSession, why)));
            }
            Job::SetModel { reply, .. } => {
                let _ = reply.send(Err(Error::new(ErrorKind::NoSession, why)));
            }
        }
    }

    fn save_record(&mut self) {
        if let Err(e) = self.record.save(&self.state_dir) {
            eprintln!("leash daemon: {e}");
        }
    }
}

pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min", d.as_secs() / 60)
    }
}

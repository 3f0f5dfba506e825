//! The daemon's parts, each with its own state and a small API, held by the actor and
//! lent to the job that runs. What needs several of them at once (the status, the
//! session record, an outcome's common fields, a turn's beginning and end) is put
//! together here; the queue of jobs stands beside the parts, with the actor.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::history_file::HistoryFile;
use super::lifecycle::Lifecycle;
use super::permissions::{Decision, Permissions};
use super::record_file::RecordFile;
use super::subscribers::Subscribers;
use super::tally::Tally;
use super::worker_file::WorkerFile;
use crate::claude::session::{Cancel, Canceller, SessionHandle, ToolRequest};
use crate::error::Error;
use crate::protocol::{EventBody, Fault, SessionState, SessionStatus};
use crate::record::SessionRecord;
use crate::turn::{Outcome, TurnKind, TurnStatus};
use crate::worker::Step;

/// Where the daemon lives: its worker, its state dir, its socket.
pub struct Place {
    pub worker: String,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

/// The daemon's bounds that jobs need.
pub struct Limits {
    /// Bytes of events a client may fall behind before it is dropped.
    pub feed_budget: usize,
    /// For the message of a turn that went silent.
    pub silence_timeout: Duration,
    /// How often one turn may restart a claude that died or hung to continue it.
    pub restart_limit: u32,
}

/// When the session record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saving {
    Background,
    Now,
}

pub struct Parts {
    session: SessionHandle,
    out: Subscribers,
    permissions: Permissions,
    tally: Tally,
    worker: WorkerFile,
    life: Lifecycle,
    record: RecordFile,
    history: HistoryFile,
    place: Place,
    limits: Limits,
    /// The job running now, if any.
    current: Option<Current>,
}

/// The job running now: its turn or step id (what events are tagged with), and how it
/// is interrupted.
struct Current {
    id: Option<u64>,
    /// The worker step it runs, if it is one.
    step: Option<Step>,
    canceller: Canceller,
    /// Until when (Unix ms) it pauses (between nudges), while it does.
    waiting_until_ms: Option<u64>,
}

impl Parts {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: SessionHandle,
        out: Subscribers,
        permissions: Permissions,
        tally: Tally,
        worker: WorkerFile,
        life: Lifecycle,
        place: Place,
        limits: Limits,
    ) -> Parts {
        Parts {
            session,
            out,
            permissions,
            tally,
            worker,
            life,
            record: RecordFile::new(place.state_dir.clone()),
            history: HistoryFile::new(place.state_dir.clone(), place.worker.clone()),
            place,
            limits,
            current: None,
        }
    }

    pub fn session(&self) -> &SessionHandle {
        &self.session
    }

    /// claude is stopped the polite way; what it says meanwhile still comes.
    pub fn close_session(&mut self) {
        self.session.close();
    }

    /// Where events go: the log and the clients.
    pub fn out(&mut self) -> &mut Subscribers {
        &mut self.out
    }

    pub fn worker(&self) -> &WorkerFile {
        &self.worker
    }

    pub fn worker_mut(&mut self) -> &mut WorkerFile {
        &mut self.worker
    }

    pub fn tally(&mut self) -> &mut Tally {
        &mut self.tally
    }

    pub fn life(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where the daemon lives: its worker, its state dir, its socket.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// claude asks to use a tool during the job running now.
    pub fn ask_permission(&mut self, request: ToolRequest) {
        let turn = self.running();
        self.permissions.ask(request, turn, &mut self.out);
    }

    /// A person's answer to a tool request; the record is saved when it changes what
    /// is always allowed.
    pub fn decide_permission(&mut self, request_id: &str, decision: Decision) {
        if self.permissions.decide(request_id, decision, &mut self.out) {
            let _ = self.save_record(Saving::Background);
        }
    }

    /// Nobody is left to answer the questions of `turn`.
    pub fn detach_permissions(&mut self, turn: u64) {
        self.permissions.detach(turn, &mut self.out);
    }

    /// Denies the tool requests nobody answered in time; answers when the oldest one
    /// still unanswered expires.
    pub fn expire_permissions(&mut self) -> Option<tokio::time::Instant> {
        self.permissions.expire(&mut self.out);
        self.permissions.deadline()
    }

    pub fn set_allow_list(&mut self, allow: Vec<String>) {
        self.permissions.set_allow_list(allow);
    }

    /// A turn begins: its prompt is remembered (for a hand-off), its questions are
    /// asked of its client, and its clients hear of it.
    pub fn turn_began(&mut self, id: u64, kind: TurnKind, prompt: &str, interactive: bool) {
        self.tally.prompt_sent(kind, prompt);
        self.permissions.turn_started(id, interactive);
    }

    /// A turn's end, also for a turn that never ran: nobody is left to answer its
    /// questions, it is counted, and its clients are told.
    pub fn turn_ended(&mut self, outcome: Outcome) {
        let id = outcome.turn;
        self.detach_permissions(id);
        self.tally.turn_ended(outcome.cost_usd);
        self.out
            .emit(Some(id), EventBody::<Value>::TurnEnded { outcome });
        let _ = self.save_record(Saving::Background);
    }

    /// A job begins; what it is given to watch for an interrupt.
    pub fn job_began(&mut self, id: Option<u64>, step: Option<Step>) -> Cancel {
        let (canceller, cancel) = Canceller::new();
        // The daemon is stopping: whatever still runs is interrupted at once.
        if self.life.stopping() {
            canceller.cancel();
        }
        self.current = Some(Current {
            id,
            step,
            canceller,
            waiting_until_ms: None,
        });
        // What failed to reach the disk between jobs is told to this job's command.
        if let Some(failure) = self.history.take_failure() {
            self.warn(format!("a task's row is not in the history: {failure}"));
        }
        if let Some(failure) = self.out.take_untold() {
            self.warn(failure);
        }
        cancel
    }

    /// The running job pauses until `until_ms` (Unix ms), or, with `None`, works.
    pub fn job_waits(&mut self, until_ms: Option<u64>) {
        if let Some(current) = self.current.as_mut() {
            current.waiting_until_ms = until_ms;
        }
    }

    pub fn job_ended(&mut self) {
        self.current = None;
        self.life.touch();
    }

    /// The turn or step running now.
    pub fn running(&self) -> Option<u64> {
        self.current.as_ref().and_then(|c| c.id)
    }

    /// Interrupts the job running now.
    pub fn interrupt_running(&self) {
        if let Some(current) = &self.current {
            current.canceller.cancel();
        }
    }

    pub fn emit(&mut self, body: EventBody<Value>) {
        self.out.emit(self.running(), body);
    }

    pub fn info(&mut self, message: String) {
        self.out.info(self.running(), message);
    }

    pub fn warn(&mut self, message: String) {
        self.out.warn(self.running(), message);
    }

    /// A warning that tells of a fault on the worker's way (`leash report` counts it).
    pub fn fault(&mut self, fault: Fault, message: String) {
        self.out.fault(self.running(), fault, message);
    }

    /// A task ended (or was replaced): its row goes into the worker's history, folded
    /// from the event log in the background once the log is on disk.
    pub fn record_task(&mut self, task_id: String) {
        self.out.flush();
        self.history.task_ended(task_id, self.session.view().cwd());
    }

    /// Saves the session record: in the background, or now when the daemon is about
    /// to exit or a command the client runs next must find the conversation on disk.
    /// A save now that failed (a full disk) is returned; one in the background tells
    /// `daemon.log`, and the step that ends next saves now.
    pub fn save_record(&mut self, when: Saving) -> Result<(), Error> {
        let Some(conversation) = self.session.view().conversation.clone() else {
            return Ok(());
        };
        let record = SessionRecord {
            permission_allow: self.permissions.allow_list().to_vec(),
            always_allow: self.permissions.always_list().to_vec(),
            last_turn: self.tally.last_id(),
            turns: self.tally.turns(),
            cost_usd: self.tally.cost_usd(),
            ..SessionRecord::new(conversation)
        };
        match when {
            Saving::Background => {
                self.record.save(record);
                Ok(())
            }
            Saving::Now => self.record.save_now(record),
        }
    }

    /// The session as `session status` shows it, with `queued` turns and steps waiting.
    pub fn status(&self, queued: usize) -> SessionStatus {
        let view = self.session.view();
        let conversation = view.conversation.as_ref();
        let state = if view.failure.is_some() {
            SessionState::Failed
        } else if self.running().is_some() {
            SessionState::Busy
        } else if view.pid.is_some() {
            SessionState::Idle
        } else {
            SessionState::Cold
        };
        SessionStatus {
            worker: self.place.worker.clone(),
            state,
            daemon_pid: std::process::id(),
            claude_pid: view.pid,
            claude: conversation.map(|c| c.spawn.claude.clone()),
            session_id: conversation
                .map(|c| c.session_id.clone())
                .unwrap_or_default(),
            model: view.model.clone(),
            requested_model: conversation.and_then(|c| c.spawn.model.clone()),
            permission_mode: view
                .permission_mode
                .clone()
                .or_else(|| conversation.and_then(|c| c.spawn.permission_mode.clone())),
            cwd: conversation.map(|c| c.cwd.clone()).unwrap_or_default(),
            current_turn: self.running(),
            step: self.current.as_ref().and_then(|c| c.step),
            queued,
            turns: self.tally.turns(),
            cost_usd: self.tally.cost_usd(),
            context_tokens: conversation.and_then(|c| c.tally.context_tokens),
            context_window: view.context_window,
            compactions: conversation.map_or(0, |c| c.tally.compactions),
            last_compaction: conversation.and_then(|c| c.tally.last_compaction.clone()),
            previous_session_ids: conversation
                .map(|c| c.previous_session_ids.clone())
                .unwrap_or_default(),
            uptime_secs: self.life.uptime_secs(),
            host: crate::pid_record::host(),
            waiting_until_ms: self.current.as_ref().and_then(|c| c.waiting_until_ms),
            socket: self.place.socket.clone(),
            log: self.out.log_path(),
            failure: view.failure.clone(),
            rate_limit: view.rate_limit.clone(),
            rate_limited_until: self.tally.rate_limited_until(),
            claude_rss_bytes: view.pid.and_then(crate::process::rss_bytes),
        }
    }

    /// An outcome of this session, before the details of how it ended.
    pub fn outcome(&self, turn: u64, status: TurnStatus, retries: u32) -> Outcome {
        let view = self.session.view();
        let conversation = view.conversation.as_ref();
        Outcome {
            status,
            exit_code: status.exit_code(),
            turn,
            result: None,
            message: None,
            session_id: conversation
                .map(|c| c.session_id.clone())
                .unwrap_or_default(),
            model: view
                .model
                .clone()
                .or_else(|| conversation.and_then(|c| c.spawn.model.clone())),
            cost_usd: None,
            duration_ms: 0,
            api_error_status: None,
            retries,
        }
    }
}

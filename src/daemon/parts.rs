//! The daemon's parts, each with its own state and a small API, held by the actor and
//! lent to the job that runs. What needs several of them at once (the status, the
//! session record, an outcome's common fields) is put together here.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::history_file::HistoryFile;
use super::lifecycle::Lifecycle;
use super::permissions::Permissions;
use super::queue::Queue;
use super::record_file::RecordFile;
use super::subscribers::Subscribers;
use super::tally::Tally;
use super::worker_file::WorkerFile;
use crate::claude::session::{Cancel, Canceller, SessionHandle};
use crate::protocol::{EventBody, Fault, SessionState, SessionStatus};
use crate::record::SessionRecord;
use crate::turn::{Outcome, TurnStatus};

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

pub struct Parts {
    pub session: SessionHandle,
    pub out: Subscribers,
    pub permissions: Permissions,
    pub tally: Tally,
    pub worker: WorkerFile,
    pub queue: Queue,
    pub life: Lifecycle,
    pub record: RecordFile,
    history: HistoryFile,
    pub place: Place,
    pub limits: Limits,
    /// The job running now, if any.
    current: Option<Current>,
}

/// The job running now: its turn or step id (what events are tagged with), and how it
/// is interrupted.
struct Current {
    id: Option<u64>,
    canceller: Canceller,
}

impl Parts {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: SessionHandle,
        out: Subscribers,
        permissions: Permissions,
        tally: Tally,
        worker: WorkerFile,
        queue: Queue,
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
            queue,
            life,
            record: RecordFile::new(place.state_dir.clone()),
            history: HistoryFile::new(place.state_dir.clone(), place.worker.clone()),
            place,
            limits,
            current: None,
        }
    }

    /// A job begins; what it is given to watch for an interrupt.
    pub fn job_began(&mut self, id: Option<u64>) -> Cancel {
        let (canceller, cancel) = Canceller::new();
        // The daemon is stopping: whatever still runs is interrupted at once.
        if self.life.stopping() {
            canceller.cancel();
        }
        self.current = Some(Current { id, canceller });
        // What failed to reach the disk between jobs is told to this job's command.
        if let Some(failure) = self.history.take_failure() {
            self.warn(format!("a task's row is not in the history: {failure}"));
        }
        if let Some(failure) = self.out.take_untold() {
            self.warn(failure);
        }
        cancel
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

    /// The session record as it stands.
    fn record_now(&self) -> Option<SessionRecord> {
        let conversation = self.session.view().conversation.clone()?;
        Some(SessionRecord {
            permission_allow: self.permissions.allow_list().to_vec(),
            always_allow: self.permissions.always_list().to_vec(),
            last_turn: self.queue.last_id(),
            turns: self.tally.turns(),
            cost_usd: self.tally.cost_usd(),
            ..SessionRecord::new(conversation)
        })
    }

    /// Saves the session record (in the background).
    pub fn save_record(&mut self) {
        if let Some(record) = self.record_now() {
            self.record.save(record);
        }
    }

    /// Saves the session record now: the daemon is about to exit, or a command the
    /// client runs next must find the conversation on disk.
    pub fn save_record_now(&mut self) {
        if let Err(e) = self.save_session_now() {
            log_line!("leash daemon: {e}");
        }
    }

    /// Saves the session record now, and says why it could not be saved.
    pub fn save_session_now(&mut self) -> Result<(), crate::error::Error> {
        match self.record_now() {
            Some(record) => self.record.save_now(record),
            None => Ok(()),
        }
    }

    /// The session as `session status` shows it.
    pub fn status(&self) -> SessionStatus {
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
            queued: self.queue.waiting(),
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

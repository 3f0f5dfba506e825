//! Everything of the daemon's that is not the claude session: the commands from
//! connections, the turn queue, the subscribers, the permission questions, the worker's
//! state and the session record. It is the session's [`Host`]: it relays what the
//! session reports, keeps what the session confirmed (for status, for the record), and
//! serves commands whenever the session waits, so a running turn never blocks a
//! status, an interrupt or a queued request.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::feed::Feed;
use super::permissions::{Decision, Permissions};
use super::queue::{Job, Queue};
use super::subscribers::{Subscribers, Until};
use crate::claude::context::CompactionNews;
use crate::claude::session::{Conversation, Host, Report, Served, View};
use crate::error::{Error, ErrorKind};
use crate::protocol::{EventBody, SessionState, SessionStatus, StartSpec, WorkerRequest};
use crate::record::SessionRecord;
use crate::turn::{Outcome, TurnKind, TurnSpec, TurnStatus};
use crate::worker::machine::{Note, judgement};
use crate::worker::{Judgement, Phase, Step, Verdict, WorkerState, WorkerStep};

/// What connections ask of the daemon; each is answered by one handler below.
pub enum Command {
    Status(oneshot::Sender<SessionStatus>),
    Start {
        spec: StartSpec,
        reply: oneshot::Sender<Result<SessionStatus, Error>>,
    },
    Send {
        spec: TurnSpec,
        feed: Feed,
        reply: Submitted,
    },
    /// `feed` is `None` when the client does not wait for the step.
    Step {
        request: WorkerRequest,
        feed: Option<Feed>,
        reply: Submitted,
    },
    SetModel {
        model: String,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    Restart {
        claude: Option<PathBuf>,
        reply: oneshot::Sender<Result<SessionStatus, Error>>,
    },
    Interrupt {
        turn: Option<u64>,
        reply: oneshot::Sender<String>,
    },
    Follow {
        feed: Feed,
        reply: oneshot::Sender<u64>,
    },
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

/// Prompts a hand-off repeats, at most, and how much of each.
const RECENT_PROMPTS: usize = 4;
const PROMPT_KEPT: usize = 4_000;

/// Where the daemon answers a queued turn or step: its id and how many are ahead.
pub type Submitted = oneshot::Sender<Result<(u64, usize), Error>>;

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

/// The worker's phase state, saved in `worker.json` whenever a step changes it. A
/// damaged file is kept (and reported to every step) until a new task replaces it.
struct WorkerFile {
    state: WorkerState,
    damaged: Option<Error>,
    dir: PathBuf,
}

impl WorkerFile {
    fn save(&self) {
        if self.damaged.is_some() {
            return;
        }
        if let Err(e) = self.state.save(&self.dir) {
            eprintln!("leash daemon: {e}");
        }
    }
}

/// What the session reported, kept for status and the record, and the turn tallies.
#[derive(Default)]
struct Mirror {
    conversation: Option<Conversation>,
    view: View,
    turns: u64,
    cost_usd: f64,
    rate_limited_until: Option<u64>,
}

/// The running turn (or step), and whether it was asked to stop.
#[derive(Default)]
struct Running {
    id: Option<u64>,
    interrupt: bool,
}

/// Where this daemon serves.
pub struct Place {
    pub worker: String,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

pub struct Hub {
    commands: mpsc::Receiver<Command>,
    queue: Queue,
    out: Subscribers,
    permissions: Permissions,
    worker: WorkerFile,
    mirror: Mirror,
    running: Running,
    stop_requested: bool,
    stop_replies: Vec<oneshot::Sender<()>>,
    place: Place,
    clients: ClientCount,
    idle_timeout: Duration,
    started: Instant,
    last_activity: Instant,
    /// The latest prompts, for the hand-off when a conversation is full.
    recent_prompts: VecDeque<String>,
}

/// How a hub starts.
pub struct HubSetup {
    pub commands: mpsc::Receiver<Command>,
    pub clients: ClientCount,
    pub place: Place,
    pub out: Subscribers,
    pub record: Option<SessionRecord>,
    /// `worker.json` as loaded: its state, or why it could not be read.
    pub worker: Result<WorkerState, Error>,
    pub idle_timeout: Duration,
    pub permission_timeout: Duration,
    pub max_queue: usize,
}

impl Hub {
    pub fn new(setup: HubSetup) -> Hub {
        let HubSetup {
            commands,
            clients,
            place,
            out,
            record,
            worker,
            idle_timeout,
            permission_timeout,
            max_queue,
        } = setup;
        let (mirror, permissions, last_id) = match record {
            Some(r) => (
                Mirror {
                    conversation: Some(r.conversation),
                    view: View::default(),
                    turns: r.turns,
                    cost_usd: r.cost_usd,
                    rate_limited_until: None,
                },
                Permissions::new(r.permission_allow, r.always_allow, permission_timeout),
                r.last_turn,
            ),
            None => (
                Mirror::default(),
                Permissions::new(Vec::new(), Vec::new(), permission_timeout),
                0,
            ),
        };
        Hub {
            commands,
            queue: Queue::new(last_id, max_queue),
            out,
            permissions,
            worker: {
                let (state, damaged) = match worker {
                    Ok(state) => (state, None),
                    Err(e) => (WorkerState::default(), Some(e)),
                };
                WorkerFile {
                    state,
                    damaged,
                    dir: place.state_dir.clone(),
                }
            },
            mirror,
            running: Running::default(),
            stop_requested: false,
            stop_replies: Vec::new(),
            place,
            clients,
            idle_timeout,
            started: Instant::now(),
            last_activity: Instant::now(),
            recent_prompts: VecDeque::new(),
        }
    }

    // ---- the daemon's life -------------------------------------------------------

    pub fn stopping(&self) -> bool {
        self.stop_requested
    }

    pub fn take_stop_replies(&mut self) -> Vec<oneshot::Sender<()>> {
        std::mem::take(&mut self.stop_replies)
    }

    /// When the daemon stops for lack of use; `None` never.
    pub fn idle_deadline(&self) -> Option<Instant> {
        (!self.idle_timeout.is_zero()).then(|| self.last_activity + self.idle_timeout)
    }

    /// The idle deadline passed: true when the daemon should stop (no client is
    /// connected), else the clock starts over.
    pub fn idle_expired(&mut self) -> bool {
        if self.clients.get() == 0 {
            return true;
        }
        self.last_activity = Instant::now();
        false
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub fn worker_name(&self) -> &str {
        &self.place.worker
    }

    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    pub fn next_job(&mut self) -> Option<Job> {
        self.queue.pop()
    }

    pub fn info(&mut self, message: String) {
        self.out.info(self.running.id, message);
    }

    pub fn warn(&mut self, message: String) {
        self.out.warn(self.running.id, message);
    }

    /// What a worker step's machine said happened, as notices and events.
    pub fn worker_note(&mut self, note: Note) {
        let turn = self.running.id;
        match note {
            Note::Info(message) => self.out.info(turn, message),
            Note::ChecksRan(checks) => self
                .out
                .emit(turn, EventBody::<Value>::ChecksRan { checks }),
            Note::Reviewed(review) => self.out.emit(turn, EventBody::<Value>::Reviewed { review }),
            Note::Rescoped { number, of, plan } => self
                .out
                .emit(turn, EventBody::<Value>::Rescoped { number, of, plan }),
        }
    }

    /// The session record as it stands, written by the daemon alone.
    pub fn save_record(&mut self) {
        let Some(conversation) = self.mirror.conversation.clone() else {
            return;
        };
        let record = SessionRecord {
            permission_allow: self.permissions.allow_list().to_vec(),
            always_allow: self.permissions.always_list().to_vec(),
            last_turn: self.queue.last_id(),
            turns: self.mirror.turns,
            cost_usd: self.mirror.cost_usd,
            ..SessionRecord::new(conversation)
        };
        if let Err(e) = record.save(&self.place.state_dir) {
            eprintln!("leash daemon: {e}");
        }
    }

    pub fn flush(&mut self) {
        self.out.flush();
    }

    // ---- commands ----------------------------------------------------------------

    fn handle(&mut self, command: Command) {
        // Asking how the session is does not keep it alive; giving it work does.
        if !matches!(command, Command::Status(_) | Command::Interrupt { .. }) {
            self.touch();
        }
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Start { spec, reply } => self.queue.push(Job::Start { spec, reply }),
            Command::Send { spec, feed, reply } => {
                let _ = reply.send(self.submit_turn(spec, feed));
            }
            Command::Step {
                request,
                feed,
                reply,
            } => {
                let _ = reply.send(self.submit_step(request, feed));
            }
            Command::SetModel { model, reply } => self.queue.push(Job::SetModel { model, reply }),
            Command::Restart { claude, reply } => self.queue.push(Job::Restart { claude, reply }),
            Command::Interrupt { turn, reply } => {
                let _ = reply.send(self.interrupt(turn));
            }
            Command::Follow { feed, reply } => {
                let _ = reply.send(self.out.follow(feed));
            }
            Command::Permission {
                request_id,
                decision,
            } => {
                if self
                    .permissions
                    .decide(&request_id, decision, &mut self.out)
                {
                    self.save_record();
                }
            }
            Command::Detach { turn } => self.permissions.detach(turn, &mut self.out),
            Command::Stop(reply) => {
                self.stop_requested = true;
                self.stop_replies.extend(reply);
            }
        }
    }

    /// Refuses new work while stopping or when the queue is full.
    fn accepting(&self) -> Result<(), Error> {
        if self.stop_requested {
            return Err(Error::new(ErrorKind::NoSession, "the session is stopping")
                .hint("start it again with `leash session start`"));
        }
        if self.queue.is_full() {
            return Err(Error::new(
                ErrorKind::TurnFailed,
                format!(
                    "the session is busy: {} turns are already queued",
                    self.queue.waiting()
                ),
            )
            .hint("retry later"));
        }
        Ok(())
    }

    /// Turns and steps that run before a new one.
    fn ahead(&self) -> usize {
        self.queue.waiting() + usize::from(self.running.id.is_some())
    }

    fn submit_turn(&mut self, spec: TurnSpec, feed: Feed) -> Result<(u64, usize), Error> {
        self.accepting()?;
        let ahead = self.ahead();
        let id = self.queue.next_id();
        self.out.subscribe(id, Until::TurnEnded, feed);
        self.queue.push(Job::Turn { id, spec });
        Ok((id, ahead))
    }

    /// Queues a step. A nudge while another nudge waits is merged into it: at most one
    /// pending nudge per worker, however many hooks fire.
    fn submit_step(
        &mut self,
        request: WorkerRequest,
        feed: Option<Feed>,
    ) -> Result<(u64, usize), Error> {
        self.accepting()?;
        let running = usize::from(self.running.id.is_some());
        if let WorkerStep::Nudge { reasons, events } = &request.step
            && let Some((id, at)) = self.queue.merge_nudge(reasons, events)
        {
            if let Some(feed) = feed {
                self.out.subscribe(id, Until::Judged, feed);
            }
            return Ok((id, at + running));
        }
        let ahead = self.ahead();
        let id = self.queue.next_id();
        if let Some(feed) = feed {
            self.out.subscribe(id, Until::Judged, feed);
        }
        self.queue.push(Job::Step { id, request });
        Ok((id, ahead))
    }

    fn interrupt(&mut self, turn: Option<u64>) -> String {
        if let Some(current) = self.running.id
            && turn.is_none_or(|t| t == current)
        {
            self.running.interrupt = true;
            return format!("interrupting turn {current}");
        }
        if let Some(wanted) = turn
            && let Some(job) = self.queue.remove(wanted)
        {
            self.cancel(job, "interrupted before it started");
            return format!("dropped queued turn {wanted}");
        }
        match turn {
            Some(t) => format!("turn {t} is not running; nothing to interrupt"),
            None => "no turn is running; nothing to interrupt".to_string(),
        }
    }

    /// Ends a job that will not run, telling whoever waits for it why.
    pub fn cancel(&mut self, job: Job, why: &str) {
        match job {
            Job::Turn { id, .. } => {
                let outcome = Outcome {
                    message: Some(why.to_string()),
                    ..self.outcome(id, TurnStatus::Interrupted, 0)
                };
                self.emit_turn_ended(id, outcome);
            }
            Job::Step { id, request } => {
                let judgement = judgement(
                    &self.worker.state,
                    request.step.step(),
                    Verdict::Interrupted,
                    why.to_string(),
                );
                self.end_step(id, judgement);
            }
            Job::Start { reply, .. } => {
                let _ = reply.send(Err(Error::new(ErrorKind::NoSession, why)));
            }
            Job::SetModel { reply, .. } => {
                let _ = reply.send(Err(Error::new(ErrorKind::NoSession, why)));
            }
            Job::Restart { reply, .. } => {
                let _ = reply.send(Err(Error::new(ErrorKind::NoSession, why)));
            }
        }
    }

    /// Everything still queued when the daemon stops.
    pub fn cancel_queued(&mut self) {
        for job in self.queue.drain() {
            self.cancel(
                job,
                "the session was stopped before this ran; start it again with `leash session start`",
            );
        }
    }

    pub fn status(&self) -> SessionStatus {
        let view = &self.mirror.view;
        let conversation = self.mirror.conversation.as_ref();
        let state = if view.failure.is_some() {
            SessionState::Failed
        } else if self.running.id.is_some() {
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
            claude: conversation.map(|c| c.claude.clone()),
            session_id: conversation
                .map(|c| c.session_id.clone())
                .unwrap_or_default(),
            model: view.model.clone(),
            requested_model: conversation.and_then(|c| c.model.clone()),
            permission_mode: view
                .permission_mode
                .clone()
                .or_else(|| conversation.and_then(|c| c.permission_mode.clone())),
            cwd: conversation.map(|c| c.cwd.clone()).unwrap_or_default(),
            current_turn: self.running.id,
            queued: self.queue.waiting(),
            turns: self.mirror.turns,
            cost_usd: self.mirror.cost_usd,
            context_tokens: conversation.and_then(|c| c.context_tokens),
            context_window: view.context_window,
            compactions: conversation.map_or(0, |c| c.compactions),
            last_compaction: conversation.and_then(|c| c.last_compaction.clone()),
            previous_session_ids: conversation
                .map(|c| c.previous_session_ids.clone())
                .unwrap_or_default(),
            uptime_secs: self.started.elapsed().as_secs(),
            socket: self.place.socket.clone(),
            log: self.out.log_path(),
            failure: view.failure.clone(),
            rate_limit: view.rate_limit.clone(),
            rate_limited_until: self.mirror.rate_limited_until,
            claude_rss_bytes: view.pid.and_then(crate::process::rss_bytes),
        }
    }

    /// leash waits for a rate limit to reset until then (Unix ms), or no longer.
    pub fn set_rate_limited_until(&mut self, until: Option<u64>) {
        self.mirror.rate_limited_until = until;
    }

    // ---- the session's conversation ----------------------------------------------

    pub fn conversation(&self) -> Option<&Conversation> {
        self.mirror.conversation.as_ref()
    }

    /// A start begins anew: the tallies are the new conversation's.
    pub fn reset_tallies(&mut self) {
        self.mirror.turns = 0;
        self.mirror.cost_usd = 0.0;
    }

    pub fn set_permission_allow(&mut self, allow: Vec<String>) {
        self.permissions.set_allow_list(allow);
    }

    // ---- turns and steps ---------------------------------------------------------

    /// A turn or step begins: it is what events are tagged with until it ends.
    pub fn begin(&mut self, id: u64) {
        self.running = Running {
            id: Some(id),
            interrupt: false,
        };
    }

    pub fn interrupted(&self) -> bool {
        self.running.interrupt || self.stop_requested
    }

    pub fn begin_turn(&mut self, id: u64, kind: TurnKind, prompt: &str, interactive: bool) {
        self.begin(id);
        if kind != TurnKind::Compact {
            if self.recent_prompts.len() == RECENT_PROMPTS {
                self.recent_prompts.pop_front();
            }
            self.recent_prompts
                .push_back(prompt.chars().take(PROMPT_KEPT).collect());
        }
        self.permissions.turn_started(id, interactive);
        self.out.emit(
            Some(id),
            EventBody::<Value>::TurnStarted {
                kind,
                prompt: prompt.to_string(),
            },
        );
    }

    /// A turn's end: its questions are over, it is counted, and its clients told.
    pub fn end_turn(&mut self, id: u64, outcome: Outcome, finishes: bool) {
        // Nobody is left to answer questions of a turn that ended.
        self.permissions.detach(id, &mut self.out);
        self.mirror.turns += 1;
        if let Some(cost) = outcome.cost_usd {
            self.mirror.cost_usd += cost;
        }
        self.save_record();
        self.emit_turn_ended(id, outcome);
        if finishes {
            self.running = Running::default();
        }
    }

    fn emit_turn_ended(&mut self, id: u64, outcome: Outcome) {
        self.out
            .emit(Some(id), EventBody::<Value>::TurnEnded { outcome });
    }

    /// An outcome of this session, before the details of how it ended.
    pub fn outcome(&self, turn: u64, status: TurnStatus, retries: u32) -> Outcome {
        let conversation = self.mirror.conversation.as_ref();
        Outcome {
            status,
            exit_code: status.exit_code(),
            turn,
            result: None,
            message: None,
            session_id: conversation
                .map(|c| c.session_id.clone())
                .unwrap_or_default(),
            model: self
                .mirror
                .view
                .model
                .clone()
                .or_else(|| conversation.and_then(|c| c.model.clone())),
            cost_usd: None,
            duration_ms: 0,
            api_error_status: None,
            retries,
        }
    }

    /// How full the conversation is, in percent of the window, when both are known.
    pub fn context_percent(&self) -> Option<u32> {
        let tokens = self.mirror.conversation.as_ref()?.context_tokens?;
        let window = self.mirror.view.context_window.filter(|w| *w > 0)?;
        u32::try_from(tokens * 100 / window).ok()
    }

    /// The prompts before the latest one, oldest first.
    pub fn earlier_prompts(&self) -> Vec<String> {
        let n = self.recent_prompts.len().saturating_sub(1);
        self.recent_prompts.iter().take(n).cloned().collect()
    }

    pub fn worker(&mut self) -> &mut WorkerState {
        &mut self.worker.state
    }

    /// Why `worker.json` could not be read, if it could not.
    pub fn worker_damage(&self) -> Option<&Error> {
        self.worker.damaged.as_ref()
    }

    /// A new task replaces a damaged `worker.json`: the file is kept aside.
    pub fn replace_damaged_worker(&mut self) {
        if self.worker.damaged.take().is_none() {
            return;
        }
        let path = WorkerState::path(&self.worker.dir);
        let aside = path.with_extension(format!("json.damaged-{}", crate::time::now_ms()));
        let note = match std::fs::rename(&path, &aside) {
            Ok(()) => format!(
                "the damaged {} was replaced by a new task; it is kept as {}",
                path.display(),
                aside.display()
            ),
            Err(e) => format!("cannot move the damaged {} aside: {e}", path.display()),
        };
        self.warn(note);
        self.worker.state = WorkerState::default();
    }

    /// A new worker begins with this state (a fork's copy of its original's).
    pub fn begin_worker_as(&mut self, state: WorkerState) {
        self.worker.damaged = None;
        self.worker.state = state;
        self.worker.save();
    }

    pub fn save_worker(&self) {
        self.worker.save();
    }

    /// Records the step's judgement and tells its clients. Once the work is committed,
    /// nudges still waiting are dropped.
    pub fn end_step(&mut self, id: u64, verdict: Judgement) {
        let done = verdict.phase == Phase::Done && verdict.verdict.concerns_the_work();
        // A step with nothing to do (a nudge after the work was done), or refused,
        // does not hide the verdict before it.
        if verdict.verdict.concerns_the_work() {
            self.worker.state.last = Some(verdict.clone());
            self.worker.save();
        }
        self.out
            .emit(Some(id), EventBody::<Value>::Judged { judgement: verdict });
        if self.running.id == Some(id) {
            self.running = Running::default();
        }
        if !done {
            return;
        }
        for nudge in self.queue.take_nudges() {
            let dropped = judgement(
                &self.worker.state,
                Step::Nudge,
                Verdict::NothingToDo,
                "dropped: the work is already committed".to_string(),
            );
            self.end_step(nudge, dropped);
        }
    }
}

impl Host for Hub {
    fn report(&mut self, report: Report<'_>) {
        let turn = self.running.id;
        match report {
            Report::Line(raw) => self.out.emit(turn, EventBody::Claude { msg: raw }),
            Report::Stderr(line) => self.out.emit(turn, EventBody::<Value>::Stderr { line }),
            Report::Info(message) => self.out.info(turn, message),
            Report::Warn(message) => self.out.warn(turn, message),
            Report::Conversation(conversation) => {
                self.mirror.conversation = Some(conversation.clone());
                self.save_record();
            }
            Report::Tallies(conversation) => {
                self.mirror.conversation = Some(conversation.clone());
            }
            Report::View(view) => self.mirror.view = view,
            Report::RateLimit(limit) => {
                self.out.emit(turn, EventBody::<Value>::RateLimit { limit })
            }
            Report::Compaction(news) => self.out.emit(
                turn,
                match news {
                    CompactionNews::Started => EventBody::<Value>::Compacting,
                    CompactionNews::Done(compaction) => EventBody::Compacted { compaction },
                    CompactionNews::Failed(reason) => EventBody::CompactFailed { reason },
                },
            ),
            Report::ToolRequest {
                request_id,
                tool,
                input,
                stdin,
            } => self
                .permissions
                .ask(request_id, tool, input, stdin, turn, &mut self.out),
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupted()
    }

    fn person_deadline(&self) -> Option<Instant> {
        self.permissions.deadline()
    }

    fn person_timed_out(&mut self) {
        self.permissions.expire(&mut self.out);
    }

    fn try_serve(&mut self) -> bool {
        match self.commands.try_recv() {
            Ok(command) => {
                self.handle(command);
                true
            }
            Err(_) => false,
        }
    }

    async fn serve(&mut self, deadline: Option<Instant>) -> Served {
        // Nothing is ready: a good moment to make the log durable.
        self.out.flush();
        let command = tokio::select! {
            command = self.commands.recv() => command,
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => return Served::Deadline,
        };
        match command {
            Some(command) => self.handle(command),
            // Every sender is gone: nobody can ask for anything any more.
            None => self.stop_requested = true,
        }
        Served::Input
    }
}

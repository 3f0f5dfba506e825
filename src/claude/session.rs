//! The claude session: one conversation and the process that holds it. It spawns
//! claude with the right arguments, waits for the `initialize` answer, sends control
//! requests with bounded waits, runs a turn to its result (watching for silence, not
//! length), backs off after crashes, respawns with `--resume`, and stops claude the
//! polite way first. Its state is one private enum; only its own methods change it.
//!
//! The session does not know the daemon. Whoever owns it is its [`Host`]: the session
//! reports what claude said and did, asks whether the turn was cancelled, and lets the
//! host serve its own inputs whenever it waits, so nothing waits on claude but the work
//! behind it.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::child::{Child, ChildEvent, ExitInfo, Stdin};
use super::context::{CompactionNews, Context};
pub use super::conversation::Conversation;
use super::cost::CostMeter;
use super::limits::RateLimit;
use super::messages::{
    ControlRequest, ResultMessage, StreamMessage, control_request_line, control_response_line,
    user_line,
};
use crate::error::{Error, ErrorKind};
use crate::framing::peek_type;
use crate::human::duration as human;

/// The session's bounds: every wait it makes has one.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub init_timeout: Duration,
    pub control_timeout: Duration,
    pub silence_timeout: Duration,
    pub interrupt_grace: Duration,
    pub stop_grace: Duration,
    pub max_crashes: u32,
    pub crash_backoff: Duration,
    /// While claude compacts it may be silent this long (instead of the silence
    /// timeout): on the real service a compaction can take minutes.
    pub compact_timeout: Duration,
    /// Restart claude before a turn once it uses more memory than this (0: never).
    pub max_rss: u64,
}

/// The process's lifecycle.
enum State {
    /// No claude yet; one is spawned for the next turn.
    Cold,
    Running {
        child: Child,
        crashes: u32,
    },
    /// claude died or could not start `crashes` times in a row; the next spawn waits.
    BackingOff {
        crashes: u32,
    },
    /// leash gave up on claude; `retry` (from `session start`) tries again.
    Failed(String),
}

/// The session as its owner shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub pid: Option<u32>,
    /// Why leash gave up on claude, when it did.
    pub failure: Option<String>,
    /// The model claude reported in its latest init line.
    pub model: Option<String>,
    /// The permission mode claude reported last.
    pub permission_mode: Option<String>,
    /// The model's context window, as claude told it.
    pub context_window: Option<u64>,
    /// The provider's rate limit, as claude reported it last.
    pub rate_limit: Option<RateLimit>,
}

/// What the session tells its host.
pub enum Report<'a> {
    /// A stdout line from claude, to relay untouched.
    Line(&'a RawValue),
    Stderr(String),
    /// Something the session did or saw: routine.
    Info(String),
    /// Something went wrong and the session handled it.
    Warn(String),
    /// The conversation's saved facts changed: to be saved at once.
    Conversation(&'a Conversation),
    /// Only the conversation's running tallies changed (its cost, its context): saved
    /// with the turn that ends.
    Tallies(&'a Conversation),
    /// The process or what claude confirmed changed.
    View(View),
    /// claude compacts the conversation, or finished, or failed to.
    Compaction(CompactionNews),
    /// claude reported the provider's rate limit.
    RateLimit(RateLimit),
    /// claude asks to use a tool; the answer goes to `stdin`. Every request must be
    /// answered: claude waits forever otherwise.
    ToolRequest {
        request_id: String,
        tool: String,
        input: Value,
        stdin: Stdin,
    },
}

/// What the session needs from its owner while it works.
pub trait Host {
    fn report(&mut self, report: Report<'_>);
    /// The running turn was interrupted or the daemon is stopping.
    fn cancelled(&self) -> bool;
    /// While a person decides about a tool claude is silent by design: when the oldest
    /// question runs out of time.
    fn person_deadline(&self) -> Option<Instant>;
    /// The person did not answer in time.
    fn person_timed_out(&mut self);
    /// Serves one of the host's own inputs if one is ready; true if it did.
    fn try_serve(&mut self) -> bool;
    /// Waits for one of the host's own inputs and serves it, or for `deadline`.
    fn serve(&mut self, deadline: Option<Instant>) -> impl Future<Output = Served>;
}

/// What [`Host::serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// An input was served; it may have changed what the session must do.
    Input,
    Deadline,
}

/// How one attempt at a turn ended.
#[derive(Debug)]
pub enum TurnEnd {
    Result(ResultMessage),
    /// claude exited during the turn.
    Exited(String),
    /// claude went silent past its bound and the turn was stopped (interrupted, or
    /// claude killed when it would not stop): a hang, not a person's interrupt.
    Silent,
    /// claude did not end an interrupted turn in time and was killed.
    Killed,
    /// claude could not be started or prepared for the turn.
    NotStarted(Error),
    /// Cancelled before claude received the prompt.
    Cancelled,
}

/// How a turn that claude had to be killed for ended: a hang, or a person's interrupt.
fn stopped(hung: bool) -> TurnEnd {
    if hung {
        TurnEnd::Silent
    } else {
        TurnEnd::Killed
    }
}

/// What claude should run a turn with.
#[derive(Debug, Clone, Default)]
pub struct TurnAsk<'a> {
    pub prompt: &'a str,
    pub model: Option<&'a str>,
    pub permission_mode: Option<&'a str>,
}

enum ControlError {
    Exited,
    Timeout,
    Refused(String),
    Unwritable(String),
}

/// What woke a wait.
enum Woke {
    Child(ChildEvent),
    Served,
    Deadline,
}

const STDERR_TAIL: usize = 20;
const MAX_CRASH_DELAY: Duration = Duration::from_secs(60);

pub struct Session {
    /// `None` until the daemon is told what conversation to hold.
    conversation: Option<Conversation>,
    bounds: Bounds,
    state: State,
    /// Where the running claude's pid is kept, so a daemon killed without stopping it
    /// lets the next one kill it.
    pid_file: PathBuf,
    stderr_tail: VecDeque<String>,
    next_request: u64,
    confirmed_model: Option<String>,
    confirmed_mode: Option<String>,
    context: Context,
    cost: CostMeter,
    rate_limit: Option<RateLimit>,
}

impl Session {
    pub fn new(conversation: Option<Conversation>, bounds: Bounds, pid_file: PathBuf) -> Session {
        Session {
            conversation,
            bounds,
            state: State::Cold,
            pid_file,
            stderr_tail: VecDeque::new(),
            next_request: 1,
            confirmed_model: None,
            confirmed_mode: None,
            context: Context::default(),
            cost: CostMeter::default(),
            rate_limit: None,
        }
    }

    pub fn conversation(&self) -> Option<&Conversation> {
        self.conversation.as_ref()
    }

    fn conversation_mut(&mut self) -> Result<&mut Conversation, Error> {
        self.conversation.as_mut().ok_or_else(|| {
            Error::new(ErrorKind::NoSession, "this worker has no session yet")
                .hint("start one with `leash session start`")
        })
    }

    /// Reports the conversation's saved facts after a change.
    fn conversation_changed(&self, host: &mut impl Host) {
        if let Some(conversation) = &self.conversation {
            host.report(Report::Conversation(conversation));
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    pub fn view(&self) -> View {
        View {
            pid: self.child().map(Child::pid),
            failure: match &self.state {
                State::Failed(why) => Some(why.clone()),
                _ => None,
            },
            model: self.confirmed_model.clone(),
            permission_mode: self.confirmed_mode.clone(),
            context_window: self.context.window(),
            rate_limit: self.rate_limit.clone(),
        }
    }

    fn child(&self) -> Option<&Child> {
        match &self.state {
            State::Running { child, .. } => Some(child),
            _ => None,
        }
    }

    fn crashes(&self) -> u32 {
        match self.state {
            State::Running { crashes, .. } | State::BackingOff { crashes } => crashes,
            State::Cold | State::Failed(_) => 0,
        }
    }

    /// Replaces the conversation's settings while claude is not running (a start
    /// with new flags, or a new conversation). False when claude runs: it keeps the
    /// conversation it has.
    pub fn replace_conversation(
        &mut self,
        conversation: Conversation,
        host: &mut impl Host,
    ) -> bool {
        if self.is_running() {
            return false;
        }
        self.conversation = Some(conversation);
        self.conversation_changed(host);
        true
    }

    /// The claude binary for the next spawns, as the latest command resolved it. A
    /// running claude goes on; one leash gave up on is tried again with another binary.
    pub fn use_binary(&mut self, claude: PathBuf, host: &mut impl Host) {
        let Some(conversation) = self.conversation.as_mut() else {
            return;
        };
        if conversation.claude == claude {
            return;
        }
        host.report(Report::Info(format!(
            "claude is now {} (was {})",
            claude.display(),
            conversation.claude.display()
        )));
        conversation.claude = claude;
        self.conversation_changed(host);
        self.retry(host);
    }

    /// After leash gave up (or is backing off), `session start` tries again at once.
    pub fn retry(&mut self, host: &mut impl Host) {
        if matches!(self.state, State::Failed(_) | State::BackingOff { .. }) {
            self.state = State::Cold;
            host.report(Report::View(self.view()));
        }
    }

    /// A new claude process on the same conversation (`session restart`, for example
    /// after claude was upgraded): the running one is stopped the polite way and a new
    /// one started with `--resume`; one leash gave up on is tried again.
    pub async fn restart(&mut self, host: &mut impl Host) -> Result<(), Error> {
        self.conversation_mut()?;
        if self.is_running() {
            host.report(Report::Info(
                "restarting claude on the same conversation, as asked".to_string(),
            ));
            self.stop(host).await;
        }
        self.retry(host);
        self.ensure_running(host).await
    }

    /// claude is a long-lived Node process and some versions leak: one that grew past
    /// the bound is restarted on the same conversation between turns, never in one.
    async fn restart_if_bloated(&mut self, host: &mut impl Host) {
        let max = self.bounds.max_rss;
        let Some(pid) = self.child().map(Child::pid).filter(|_| max > 0) else {
            return;
        };
        let Some(rss) = crate::process::rss_bytes(pid).filter(|rss| *rss > max) else {
            return;
        };
        host.report(Report::Warn(format!(
            "claude (pid {pid}) uses {}, over claude_max_rss ({}); restarting it on the same conversation before the next turn",
            crate::human::bytes(rss),
            crate::human::bytes(max)
        )));
        self.stop(host).await;
    }

    /// Starts claude unless it runs, backing off after crashes and giving up after too
    /// many in a row.
    pub async fn ensure_running(&mut self, host: &mut impl Host) -> Result<(), Error> {
        let crashes = match &self.state {
            State::Running { .. } => return Ok(()),
            State::Failed(failure) => return Err(Error::turn_failed(failure.clone())),
            State::Cold => 0,
            State::BackingOff { crashes } => *crashes,
        };
        if crashes >= self.bounds.max_crashes {
            let failure = format!(
                "claude failed {crashes} times in a row; leash gave up{}",
                self.stderr_hint()
            );
            host.report(Report::Warn(format!(
                "{failure} (see `leash session logs`; `leash session start` tries again)"
            )));
            self.state = State::Failed(failure.clone());
            host.report(Report::View(self.view()));
            return Err(Error::turn_failed(failure)
                .hint("see `leash session logs`; `leash session start` tries again"));
        }
        if crashes > 0 {
            let delay = self
                .bounds
                .crash_backoff
                .saturating_mul(1 << (crashes - 1).min(10))
                .min(MAX_CRASH_DELAY);
            host.report(Report::Warn(format!(
                "claude failed {crashes} time(s) in a row; restarting it in {}",
                human(delay)
            )));
            if self.pause(delay, host).await {
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    "interrupted while waiting to restart claude",
                ));
            }
        }
        self.spawn(crashes, host).await
    }

    /// Starts claude on the conversation. claude keeps its own list of the
    /// conversations it has; where leash's record disagrees (a daemon killed after
    /// sending the first turn but before claude answered it), claude's word wins, once.
    async fn spawn(&mut self, crashes: u32, host: &mut impl Host) -> Result<(), Error> {
        let Err(e) = self.spawn_once(crashes, host).await else {
            return Ok(());
        };
        let started = self.conversation_mut()?.started;
        let said = |needle: &str| self.stderr_tail.iter().any(|line| line.contains(needle));
        let claude_knows = if !started && said("already in use") {
            true
        } else if started && said("No conversation found") {
            false
        } else {
            return Err(e);
        };
        host.report(Report::Warn(if claude_knows {
            "claude already has this conversation; resuming it".to_string()
        } else {
            "claude has no record of this conversation; starting it anew under the same id"
                .to_string()
        }));
        self.conversation_mut()?.started = claude_knows;
        self.conversation_changed(host);
        // The refused start was leash's mistake, not a crash of claude.
        self.spawn_once(crashes, host).await
    }

    async fn spawn_once(&mut self, crashes: u32, host: &mut impl Host) -> Result<(), Error> {
        let conversation = self.conversation_mut()?;
        if !conversation.cwd.is_dir() {
            let gone = format!(
                "the worker's directory {} is gone",
                conversation.cwd.display()
            );
            host.report(Report::Warn(gone.clone()));
            self.state = State::Failed(gone.clone());
            host.report(Report::View(self.view()));
            return Err(Error::setup(gone)
                .hint("move it back, or start the worker over with `leash session start --fresh --cwd DIR`"));
        }
        if let Some(fork) = conversation
            .fork_of
            .as_ref()
            .filter(|f| f.cwd != conversation.cwd)
            && let Err(why) =
                super::transcript::link(&fork.session_id, &fork.cwd, &conversation.cwd)
        {
            host.report(Report::Info(format!(
                "the fork's original transcript is not linked into {} ({why}); claude must find it by itself",
                conversation.cwd.display()
            )));
        }
        let conversation = self.conversation_mut()?;
        let spec = conversation.spawn_spec();
        let how = if conversation.started {
            "resuming"
        } else {
            "new"
        };
        let what = format!(
            "{how} session {}, model {}",
            conversation.session_id,
            conversation.model.as_deref().unwrap_or("default")
        );
        let child = match Child::spawn(&spec) {
            Ok(child) => child,
            Err(e) => {
                self.state = State::BackingOff {
                    crashes: crashes + 1,
                };
                let message = format!("cannot start {}: {e}", spec.program.display());
                host.report(Report::Warn(format!(
                    "{message}; check --claude / LEASH_CLAUDE"
                )));
                return Err(Error::setup(message).hint("check --claude / LEASH_CLAUDE"));
            }
        };
        host.report(Report::Info(format!(
            "started claude (pid {}, {}, {what})",
            child.pid(),
            spec.program.display()
        )));
        crate::process::record_claude(&self.pid_file, child.pid());
        self.stderr_tail.clear();
        self.confirmed_mode = None;
        self.cost.process_started();
        self.state = State::Running { child, crashes };
        host.report(Report::View(self.view()));
        let timeout = self.bounds.init_timeout;
        match self
            .control(ControlRequest::Initialize, timeout, host)
            .await
        {
            Ok(_) | Err(ControlError::Refused(_)) => Ok(()),
            Err(ControlError::Exited) => Err(Error::setup(format!(
                "claude ({}) exited before answering initialize{}",
                spec.program.display(),
                self.stderr_hint()
            ))
            .hint("`leash session logs` shows what it said; `leash doctor` checks the setup")),
            Err(ControlError::Timeout) => {
                self.stop(host).await;
                self.state = State::BackingOff {
                    crashes: crashes + 1,
                };
                Err(Error::setup(format!(
                    "claude did not answer initialize within {}{}",
                    human(timeout),
                    self.stderr_hint()
                ))
                .hint("check `claude --version` by hand; LEASH_INIT_TIMEOUT sets the bound"))
            }
            Err(ControlError::Unwritable(e)) => {
                self.stop(host).await;
                self.state = State::BackingOff {
                    crashes: crashes + 1,
                };
                Err(Error::setup(format!("cannot talk to claude: {e}"))
                    .hint("`leash session logs` shows what it said"))
            }
        }
    }

    /// Switches the model, keeping the conversation: `set_model` if claude runs (a
    /// respawn with `--resume --model` if it does not confirm in time), else from the
    /// next spawn.
    pub async fn set_model(&mut self, model: &str, host: &mut impl Host) -> Result<(), Error> {
        let previous = self.conversation_mut()?.model.replace(model.to_string());
        self.conversation_changed(host);
        if previous.as_deref() != Some(model) {
            self.confirmed_model = None;
        }
        self.switch(
            ControlRequest::SetModel { model },
            &format!("model {model}"),
            host,
        )
        .await
    }

    pub async fn set_permission_mode(
        &mut self,
        mode: &str,
        host: &mut impl Host,
    ) -> Result<(), Error> {
        self.conversation_mut()?.permission_mode = Some(mode.to_string());
        self.conversation_changed(host);
        let what = format!("permission mode {mode}");
        self.switch(ControlRequest::SetPermissionMode { mode }, &what, host)
            .await
    }

    /// Asks a running claude to switch (a not running one takes the new setting at its
    /// next spawn).
    async fn switch(
        &mut self,
        request: ControlRequest<'_>,
        what: &str,
        host: &mut impl Host,
    ) -> Result<(), Error> {
        if !self.is_running() {
            return Ok(());
        }
        let timeout = self.bounds.control_timeout;
        let result = self.control(request, timeout, host).await;
        self.after_switch(result, what, host).await
    }

    /// claude takes its allowed tools only at spawn: when they change, a running
    /// claude is restarted on the same conversation.
    pub async fn set_allowed_tools(&mut self, tools: &[String], host: &mut impl Host) {
        let Ok(conversation) = self.conversation_mut() else {
            return;
        };
        if conversation.allowed_tools == tools {
            return;
        }
        conversation.allowed_tools = tools.to_vec();
        self.conversation_changed(host);
        if self.is_running() {
            host.report(Report::Info(format!(
                "restarting claude to allow tools {tools:?} (same conversation)"
            )));
            self.stop(host).await;
        }
    }

    /// A switch claude did not confirm is done the sure way: restart claude with the
    /// new settings on the same conversation.
    async fn after_switch(
        &mut self,
        result: Result<Value, ControlError>,
        what: &str,
        host: &mut impl Host,
    ) -> Result<(), Error> {
        let why = match result {
            Ok(_) => {
                host.report(Report::Info(format!("switched to {what}")));
                return Ok(());
            }
            Err(ControlError::Exited) => return self.ensure_running(host).await,
            Err(ControlError::Timeout) => format!(
                "claude did not confirm {what} within {}",
                human(self.bounds.control_timeout)
            ),
            Err(ControlError::Refused(e)) => format!("claude refused {what}: {e}"),
            Err(ControlError::Unwritable(e)) => format!("cannot ask claude for {what}: {e}"),
        };
        host.report(Report::Warn(format!(
            "{why}; restarting it on the same conversation"
        )));
        let crashes = self.crashes();
        self.stop(host).await;
        self.spawn(crashes, host).await
    }

    /// One attempt at a turn: claude started and switched to the turn's model and
    /// mode, the prompt sent, its output read until the turn's result.
    pub async fn turn(&mut self, ask: &TurnAsk<'_>, host: &mut impl Host) -> TurnEnd {
        self.restart_if_bloated(host).await;
        if let Err(e) = self.ensure_running(host).await {
            return TurnEnd::NotStarted(e);
        }
        let current = |pick: fn(&Conversation) -> Option<&str>| {
            self.conversation
                .as_ref()
                .and_then(pick)
                .map(str::to_string)
        };
        let (model_now, mode_now) = (
            current(|c| c.model.as_deref()),
            current(|c| c.permission_mode.as_deref()),
        );
        if let Some(model) = ask.model
            && model_now.as_deref() != Some(model)
            && let Err(e) = self.set_model(model, host).await
        {
            return TurnEnd::NotStarted(e);
        }
        if let Some(mode) = ask.permission_mode
            && mode_now.as_deref() != Some(mode)
            && let Err(e) = self.set_permission_mode(mode, host).await
        {
            return TurnEnd::NotStarted(e);
        }
        if host.cancelled() {
            return TurnEnd::Cancelled;
        }
        self.context.turn_started();
        if let Err(e) = self.write(user_line(ask.prompt)) {
            return TurnEnd::NotStarted(e);
        }
        self.stream(host).await
    }

    /// Reads claude's output until the turn's result. Watches for silence, not for
    /// length: a turn that keeps streaming is never cut short.
    async fn stream(&mut self, host: &mut impl Host) -> TurnEnd {
        let mut last_output = Instant::now();
        let mut interrupt_sent: Option<Instant> = None;
        let mut hung = false;
        loop {
            if host.cancelled() && interrupt_sent.is_none() {
                interrupt_sent = Some(Instant::now());
                if let Some(end) = self.interrupt_or_kill(hung, host).await {
                    return end;
                }
            }
            let person = host.person_deadline();
            // A compaction is silent by nature; it has a bound of its own.
            let deadline = match (interrupt_sent, person, self.context.compacting_since()) {
                (Some(at), _, _) => at + self.bounds.interrupt_grace,
                (None, Some(at), _) => at,
                (None, None, Some(since)) => since.max(last_output) + self.bounds.compact_timeout,
                (None, None, None) => last_output + self.bounds.silence_timeout,
            };
            match self.next(host, Some(deadline)).await {
                Woke::Child(ChildEvent::Stdout(line)) => {
                    last_output = Instant::now();
                    if let Some(StreamMessage::Result(result)) = self.read_line(line, host) {
                        if hung {
                            return TurnEnd::Silent;
                        }
                        if !result.is_error
                            && let State::Running { crashes, .. } = &mut self.state
                        {
                            *crashes = 0;
                        }
                        return TurnEnd::Result(result);
                    }
                }
                Woke::Child(ChildEvent::Exited(info)) => {
                    let said = self.stderr_hint();
                    self.on_exit(info, host);
                    return TurnEnd::Exited(format!("{info}{said}"));
                }
                Woke::Child(other) => {
                    last_output = Instant::now();
                    self.on_child_event(other, host);
                }
                // The person's answer restarts the silence clock.
                Woke::Served if person.is_some() && host.person_deadline().is_none() => {
                    last_output = Instant::now();
                }
                Woke::Served => {}
                Woke::Deadline if interrupt_sent.is_none() && person.is_some() => {
                    host.person_timed_out();
                    last_output = Instant::now();
                }
                Woke::Deadline if interrupt_sent.is_some() => {
                    host.report(Report::Warn(format!(
                        "claude did not end the interrupted turn within {}; killing it so no late result reaches the next turn",
                        human(self.bounds.interrupt_grace)
                    )));
                    self.stop(host).await;
                    return stopped(hung);
                }
                Woke::Deadline => {
                    hung = true;
                    let silent = match self.context.compacting_since() {
                        Some(_) => format!(
                            "claude compacted for over {}",
                            human(self.bounds.compact_timeout)
                        ),
                        None => format!(
                            "claude wrote nothing for {}",
                            human(self.bounds.silence_timeout)
                        ),
                    };
                    host.report(Report::Warn(format!("{silent}; interrupting the turn")));
                    interrupt_sent = Some(Instant::now());
                    if let Some(end) = self.interrupt_or_kill(hung, host).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Asks claude to end the turn; a claude that cannot be asked is killed, and the
    /// turn ends so.
    async fn interrupt_or_kill(&mut self, hung: bool, host: &mut impl Host) -> Option<TurnEnd> {
        let Err(e) = self.send_interrupt() else {
            return None;
        };
        host.report(Report::Warn(format!(
            "cannot interrupt claude ({e}); killing it"
        )));
        self.stop(host).await;
        Some(stopped(hung))
    }

    /// Waits `delay` while the host serves its inputs; true if the work was cancelled
    /// meanwhile.
    pub async fn pause(&mut self, delay: Duration, host: &mut impl Host) -> bool {
        let until = Instant::now() + delay;
        loop {
            if host.cancelled() {
                return true;
            }
            match self.next(host, Some(until)).await {
                Woke::Child(event) => self.on_stray(event, host),
                Woke::Served => {}
                Woke::Deadline => return false,
            }
        }
    }

    /// Runs `work` to its end while the host's inputs are served and claude's stray
    /// output recorded; `None` (and `work` dropped) once the host's work is cancelled.
    pub async fn serve_while<T>(
        &mut self,
        work: impl Future<Output = T>,
        host: &mut impl Host,
    ) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            if host.cancelled() {
                return None;
            }
            tokio::select! {
                done = &mut work => return Some(done),
                woke = self.next(host, None) => {
                    if let Woke::Child(event) = woke {
                        self.on_stray(event, host);
                    }
                }
            }
        }
    }

    /// Waits while idle: claude's stray output is recorded, the host's inputs served.
    /// Returns once an input was served or at `deadline`.
    pub async fn idle(&mut self, deadline: Option<Instant>, host: &mut impl Host) -> Served {
        loop {
            match self.next(host, deadline).await {
                Woke::Child(event) => self.on_stray(event, host),
                Woke::Served => return Served::Input,
                Woke::Deadline => return Served::Deadline,
            }
        }
    }

    /// Stops claude the polite way first: stdin closed, then SIGTERM, then SIGKILL to
    /// its whole group, each after a bounded wait. The child is always reaped. A crash
    /// count survives the stop: a restart to switch settings is not a fresh start.
    pub async fn stop(&mut self, host: &mut impl Host) {
        let (mut child, crashes) = match std::mem::replace(&mut self.state, State::Cold) {
            State::Running { child, crashes } => (child, crashes),
            other => {
                self.state = other;
                return;
            }
        };
        if crashes > 0 {
            self.state = State::BackingOff { crashes };
        }
        let pid = child.pid();
        let grace = self.bounds.stop_grace;
        self.context.process_ended();
        child.close_stdin();
        let mut exit = self.drain_until_exit(&mut child, grace, host).await;
        if exit.is_none() {
            child.signal_group(libc::SIGTERM);
            exit = self.drain_until_exit(&mut child, grace, host).await;
        }
        if exit.is_none() {
            child.signal_group(libc::SIGKILL);
            exit = self.drain_until_exit(&mut child, grace, host).await;
        }
        self.after_exit(pid);
        let how = exit.map_or("did not exit".to_string(), |e| e.to_string());
        host.report(Report::Info(format!("claude (pid {pid}) stopped: {how}")));
        host.report(Report::View(self.view()));
    }

    async fn drain_until_exit(
        &mut self,
        child: &mut Child,
        wait: Duration,
        host: &mut impl Host,
    ) -> Option<ExitInfo> {
        let until = Instant::now() + wait;
        loop {
            let event = tokio::select! {
                event = child.next_event() => event,
                _ = tokio::time::sleep_until(until) => return None,
            };
            match event {
                Some(ChildEvent::Exited(info)) => return Some(info),
                Some(other) => self.on_child_event(other, host),
                None => return Some(ExitInfo::UNKNOWN),
            }
        }
    }

    /// The next thing to react to: claude's output first, then the host's inputs.
    async fn next(&mut self, host: &mut impl Host, deadline: Option<Instant>) -> Woke {
        let mut child = match &mut self.state {
            State::Running { child, .. } => Some(child),
            _ => None,
        };
        if let Some(event) = child.as_mut().and_then(|c| c.try_next_event()) {
            return Woke::Child(event);
        }
        if host.try_serve() {
            return Woke::Served;
        }
        tokio::select! {
            event = async {
                match child {
                    Some(child) => child.next_event().await,
                    None => std::future::pending().await,
                }
            } => Woke::Child(event.unwrap_or(ChildEvent::Exited(ExitInfo::UNKNOWN))),
            served = host.serve(deadline) => match served {
                Served::Input => Woke::Served,
                Served::Deadline => Woke::Deadline,
            },
        }
    }

    /// Sends a control request and waits (bounded) for its answer, recording whatever
    /// else claude says meanwhile.
    async fn control(
        &mut self,
        request: ControlRequest<'_>,
        timeout: Duration,
        host: &mut impl Host,
    ) -> Result<Value, ControlError> {
        let id = self.request_id();
        self.write(control_request_line(&id, &request))
            .map_err(|e| ControlError::Unwritable(e.message))?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(host, Some(deadline)).await {
                Woke::Child(ChildEvent::Stdout(line)) => {
                    if let Some(StreamMessage::ControlResponse(answer)) = self.read_line(line, host)
                        && answer.response.request_id == id
                    {
                        return if answer.response.subtype == "success" {
                            Ok(answer.response.response.unwrap_or(Value::Null))
                        } else {
                            Err(ControlError::Refused(
                                answer.response.error.unwrap_or_default(),
                            ))
                        };
                    }
                }
                Woke::Child(ChildEvent::Exited(info)) => {
                    self.on_exit(info, host);
                    return Err(ControlError::Exited);
                }
                Woke::Child(other) => self.on_child_event(other, host),
                Woke::Served => {}
                Woke::Deadline => return Err(ControlError::Timeout),
            }
        }
    }

    fn write(&self, line: String) -> Result<(), Error> {
        match self.child() {
            Some(child) => child
                .stdin()
                .write(line)
                .map_err(|e| Error::turn_failed(e.to_string())),
            None => Err(Error::turn_failed("claude is not running")),
        }
    }

    fn send_interrupt(&mut self) -> Result<(), Error> {
        let id = self.request_id();
        self.write(control_request_line(&id, &ControlRequest::Interrupt))
    }

    fn request_id(&mut self) -> String {
        let id = format!("leash-{}-{}", std::process::id(), self.next_request);
        self.next_request += 1;
        id
    }

    /// Output that arrives while no turn reads it.
    fn on_stray(&mut self, event: ChildEvent, host: &mut impl Host) {
        if let ChildEvent::Stdout(line) = event {
            if let Some(StreamMessage::Result(_)) = self.read_line(line, host) {
                host.report(Report::Warn(
                    "dropped a result that arrived outside any turn".to_string(),
                ));
            }
            return;
        }
        self.on_child_event(event, host);
    }

    fn on_child_event(&mut self, event: ChildEvent, host: &mut impl Host) {
        match event {
            ChildEvent::Stdout(line) => {
                self.read_line(line, host);
            }
            ChildEvent::Stderr(line) => {
                if self.stderr_tail.len() == STDERR_TAIL {
                    self.stderr_tail.pop_front();
                }
                self.stderr_tail.push_back(line.clone());
                host.report(Report::Stderr(line));
            }
            ChildEvent::Oversized(len) => {
                host.report(Report::Warn(format!(
                    "skipped a {len}-byte line from claude (too long)"
                )));
            }
            ChildEvent::Exited(info) => self.on_exit(info, host),
        }
    }

    /// claude exited on its own: a crash.
    fn on_exit(&mut self, info: ExitInfo, host: &mut impl Host) {
        let State::Running { child, crashes } = std::mem::replace(&mut self.state, State::Cold)
        else {
            return;
        };
        let pid = child.pid();
        self.after_exit(pid);
        self.context.process_ended();
        self.state = State::BackingOff {
            crashes: crashes + 1,
        };
        host.report(Report::Warn(format!(
            "claude (pid {pid}, {}) exited unexpectedly ({info}){}",
            child.program().display(),
            self.stderr_hint()
        )));
        host.report(Report::View(self.view()));
    }

    /// claude is gone: tools it started may outlive it in its group, and its pid is no
    /// longer one a later daemon should kill.
    fn after_exit(&self, pid: u32) {
        crate::process::signal_group(pid, libc::SIGKILL);
        crate::process::forget_claude(&self.pid_file);
    }

    /// Reports one stdout line, acts on what the session must know (init, claude's
    /// control requests), and hands the parsed message back (`Other` for the
    /// assistant and user lines leash only relays).
    fn read_line(&mut self, line: String, host: &mut impl Host) -> Option<StreamMessage> {
        let raw = serde_json::from_str::<&RawValue>(&line);
        let kind = peek_type(&line);
        let reply = kind.as_deref() == Some("assistant");
        let message = match kind.as_deref() {
            // Relayed, never inspected: reading their type is enough.
            Some("assistant" | "user" | "stream_event") => Ok(StreamMessage::Other),
            _ => serde_json::from_str::<StreamMessage>(&line),
        };
        let (Ok(message), Ok(raw)) = (message, raw) else {
            let preview: String = line.chars().take(200).collect();
            host.report(Report::Info(format!(
                "claude wrote a malformed line ({} bytes), skipped: {preview}",
                line.len()
            )));
            return None;
        };
        host.report(Report::Line(raw));
        if reply {
            // Kept (not parsed) until the turn's result needs its usage.
            self.context.saw_reply(line);
            return Some(message);
        }
        match &message {
            StreamMessage::System(system) if system.subtype == "init" => self.on_init(system, host),
            StreamMessage::System(system) => self.on_system(system, host),
            StreamMessage::ControlRequest(request) => self.on_control_request(request, host),
            StreamMessage::Result(result) => self.on_result(result, host),
            StreamMessage::RateLimitEvent(event) => {
                let limit = RateLimit::from_info(&event.rate_limit_info, crate::time::now_ms());
                self.rate_limit = Some(limit.clone());
                host.report(Report::RateLimit(limit));
                host.report(Report::View(self.view()));
            }
            _ => {}
        }
        Some(message)
    }

    /// A compaction starts, ends or fails.
    fn on_system(&mut self, system: &super::messages::SystemMessage, host: &mut impl Host) {
        let Some(news) = self.context.saw_system(system, crate::time::now_ms()) else {
            return;
        };
        if let (CompactionNews::Done(compaction), Some(conversation)) =
            (&news, self.conversation.as_mut())
        {
            conversation.compactions += 1;
            conversation.context_tokens = compaction.post_tokens.or(conversation.context_tokens);
            conversation.last_compaction = Some(compaction.clone());
            self.conversation_changed(host);
        }
        host.report(Report::Compaction(news));
    }

    /// A turn ended: what it cost, how full the conversation is now and how big the
    /// model's window is.
    fn on_result(&mut self, result: &ResultMessage, host: &mut impl Host) {
        let tokens = self.context.tokens_at_result();
        let window = result.context_window(self.confirmed_model.as_deref());
        if window.is_some_and(|w| Some(w) != self.context.window()) {
            self.context.saw_window(window);
            host.report(Report::View(self.view()));
        }
        let Some(conversation) = self.conversation.as_mut() else {
            return;
        };
        self.cost.saw_result(
            result.total_cost_usd,
            result.own_cost(),
            conversation.reported_cost_usd,
        );
        if result.total_cost_usd.is_some() {
            conversation.reported_cost_usd = result.total_cost_usd;
        }
        if tokens.is_some() {
            conversation.context_tokens = tokens;
        }
        host.report(Report::Tallies(conversation));
    }

    /// The provider's rate limit as claude reported it last.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.rate_limit.as_ref()
    }

    /// What claude spent since the last call: the turn that just ended, its retries,
    /// and any result that arrived between turns.
    pub fn take_cost(&mut self) -> Option<f64> {
        self.cost.take()
    }

    /// claude compacted by itself as the turn began and dropped its prompt (claude
    /// before 2.1.153 does): the answer is to the summary, not to the prompt.
    pub fn dropped_prompt(&self) -> bool {
        self.context.dropped_prompt()
    }

    /// How a compaction during the turn that just ended came out, if there was one.
    pub fn take_turn_compaction(&mut self) -> Option<CompactionNews> {
        self.context.take_turn_compaction()
    }

    /// The conversation is full: the worker goes on in a new one (a new session id,
    /// claude started anew for it). Returns the new id.
    pub async fn retire_conversation(&mut self, host: &mut impl Host) -> Option<String> {
        self.stop(host).await;
        let conversation = self.conversation.as_mut()?;
        let old = conversation.retire();
        let new = conversation.session_id.clone();
        self.context.forget();
        self.conversation_changed(host);
        host.report(Report::Info(format!(
            "the conversation {old} is full; the worker goes on in a new one: {new}"
        )));
        Some(new)
    }

    fn on_init(&mut self, init: &super::messages::SystemMessage, host: &mut impl Host) {
        if let Some(model) = &init.model {
            self.confirmed_model = Some(model.clone());
        }
        if let Some(mode) = &init.permission_mode {
            self.confirmed_mode = Some(mode.clone());
        }
        let Some(conversation) = self.conversation.as_mut() else {
            return;
        };
        let mut changed = false;
        if let Some(id) = &init.session_id
            && *id != conversation.session_id
        {
            let old = std::mem::replace(&mut conversation.session_id, id.clone());
            host.report(Report::Warn(format!(
                "claude changed the session id from {old} to {id}"
            )));
            changed = true;
        }
        if !conversation.started {
            conversation.started = true;
            conversation.fork_of = None;
            changed = true;
        }
        if changed {
            self.conversation_changed(host);
        }
        host.report(Report::View(self.view()));
    }

    /// claude waits forever for an answer to its own control requests, so every one
    /// gets an answer, even if it is "no".
    fn on_control_request(
        &mut self,
        request: &super::messages::IncomingControlRequest,
        host: &mut impl Host,
    ) {
        let Some(child) = self.child() else { return };
        let stdin = child.stdin();
        if request.subtype() == "can_use_tool" {
            let field = |name: &str| request.request.get(name);
            host.report(Report::ToolRequest {
                request_id: request.request_id.clone(),
                tool: field("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or("a tool")
                    .to_string(),
                input: field("input").cloned().unwrap_or(Value::Null),
                stdin,
            });
            return;
        }
        let error = format!(
            "leash does not handle {:?} control requests",
            request.subtype()
        );
        let line = control_response_line(&request.request_id, Err(&error));
        if let Err(e) = stdin.write(line) {
            host.report(Report::Warn(format!(
                "cannot answer claude's control request: {e}"
            )));
        }
    }

    /// claude's last word on stderr, for error messages.
    pub fn stderr_hint(&self) -> String {
        match self.stderr_tail.back() {
            Some(line) => format!("; claude said: {}", line.trim()),
            None => String::new(),
        }
    }
}

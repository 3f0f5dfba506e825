//! The session's task: it owns the conversation and the claude process, takes the
//! daemon's commands one at a time, and between them records what claude writes on
//! its own. Every wait has a bound: `initialize` and control answers, silence in a
//! turn (a compaction has its own), an interrupted turn's end, each step of a stop.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::super::child::{Child, ChildEvent, ExitInfo};
use super::super::messages::{
    ControlRequest, IncomingControlRequest, StreamMessage, control_request_line,
    control_response_line, user_line,
};
use super::process::{Process, Spawn};
use super::reader::{Reader, Reporter, classify};
use super::tools::UnansweredRequests;
use super::{
    Bounds, Cancel, Command, Conversation, Done, SessionEvent, StartAsk, Started, TurnAsk, TurnEnd,
    TurnReport, View,
};
use crate::error::{Error, ErrorKind};
use crate::human::duration as human;

enum ControlError {
    Exited(ExitInfo),
    Timeout,
    Refused(String),
    Unwritable(String),
}

impl ControlError {
    /// Why claude did not do `what`, which leash asked with a bound of `timeout`.
    fn why(&self, what: &str, timeout: Duration) -> String {
        match self {
            ControlError::Exited(info) => {
                format!("claude exited before it answered {what} ({info})")
            }
            ControlError::Timeout => {
                format!("claude did not confirm {what} within {}", human(timeout))
            }
            ControlError::Refused(e) => format!("claude refused {what}: {e}"),
            ControlError::Unwritable(e) => format!("cannot ask claude for {what}: {e}"),
        }
    }
}

/// How a start of claude that did not fail for good ended.
enum Startup {
    Ready,
    /// claude was killed by a signal before it answered `initialize`: a crash like any
    /// other (counted), so it is started again within `max_crashes`.
    Killed,
}

/// What woke a wait.
enum Woke {
    Child(ChildEvent),
    /// A tool request was answered (and the answer given to claude).
    Answered,
    Cancelled,
    Deadline,
}

/// How a turn that claude had to be killed for ended: a hang, or a person's interrupt.
fn stopped(hung: bool) -> TurnEnd {
    if hung {
        TurnEnd::Silent
    } else {
        TurnEnd::Killed
    }
}

/// The conversation a command needs.
fn need(conversation: &mut Option<Conversation>) -> Result<&mut Conversation, Error> {
    conversation.as_mut().ok_or_else(|| {
        Error::new(ErrorKind::NoSession, "this worker has no session yet")
            .hint("start one with `leash session start`")
    })
}

pub(super) struct SessionTask {
    /// `None` until the daemon is told what conversation to hold.
    conversation: Option<Conversation>,
    bounds: Bounds,
    process: Process,
    reader: Reader,
    tools: UnansweredRequests,
    report: Reporter,
}

impl SessionTask {
    pub fn new(
        conversation: Option<Conversation>,
        bounds: Bounds,
        pid_file: PathBuf,
        events: mpsc::Sender<SessionEvent>,
        view: watch::Sender<View>,
    ) -> SessionTask {
        SessionTask {
            conversation,
            bounds,
            process: Process::new(pid_file),
            reader: Reader::default(),
            tools: UnansweredRequests::new(),
            report: Reporter::new(events, view),
        }
    }

    /// Takes commands until every handle is gone, then stops claude.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let command = tokio::select! {
                biased;
                command = commands.recv() => command,
                event = self.process.next_event() => {
                    self.on_stray(event).await;
                    continue;
                }
                answer = self.tools.next() => {
                    self.give_answer(answer).await;
                    continue;
                }
            };
            let Some(command) = command else { break };
            let done = self.execute(command).await;
            self.publish();
            self.report.send(SessionEvent::Done(done)).await;
        }
        self.stop().await;
    }

    async fn execute(&mut self, command: Command) -> Done {
        match command {
            Command::Turn(ask, mut cancel) => {
                Done::Turn(Box::new(self.turn(ask, &mut cancel).await))
            }
            Command::Start(ask, mut cancel) => Done::Started(self.start(*ask, &mut cancel).await),
            Command::SetModel(model, mut cancel) => {
                Done::ModelSet(self.set_model(&model, &mut cancel).await)
            }
            Command::Restart(claude, mut cancel) => {
                Done::Restarted(self.restart(claude, &mut cancel).await)
            }
            Command::Retire => Done::Retired(self.retire().await),
            // One control request, claude started for it if it does not run.
            Command::Control(ask, mut cancel) => {
                let timeout = self.bounds.control_timeout;
                let answer = match self.ensure_running(&mut cancel).await {
                    Ok(()) => self.control(&ask, timeout).await.map_err(|e| {
                        Error::turn_failed(e.why(&ask.subtype, timeout))
                            .hint("`leash session logs` shows what claude said")
                    }),
                    Err(e) => Err(e),
                };
                Done::Control(answer)
            }
        }
    }

    /// One attempt at a turn: claude started and switched to the turn's settings, the
    /// prompt sent, its output read until the turn's result.
    async fn turn(&mut self, ask: TurnAsk, cancel: &mut Cancel) -> TurnReport {
        if let Some(claude) = ask.claude.clone() {
            self.use_binary(claude).await;
        }
        // claude is a long-lived Node process and some versions leak: one that grew
        // past the bound is restarted on the same conversation between turns.
        if let Some(bloated) = self.process.bloated(self.bounds.max_rss) {
            self.report.warn(bloated).await;
            self.stop().await;
        }
        if let Some(tools) = &ask.settings.allowed_tools {
            self.set_allowed_tools(tools).await;
        }
        let end = match self.prepare(&ask, cancel).await {
            Err(e) => TurnEnd::NotStarted(e),
            Ok(()) if cancel.is_cancelled() => TurnEnd::Cancelled,
            Ok(()) => {
                self.reader.turn_started();
                match self.process.write(user_line(&ask.prompt)) {
                    Ok(()) => self.stream(cancel).await,
                    Err(e) => TurnEnd::NotStarted(e),
                }
            }
        };
        if matches!(end, TurnEnd::Answered(_)) {
            self.process.healthy();
        }
        self.reader.report(end)
    }

    /// claude running, on the turn's model and permission mode.
    async fn prepare(&mut self, ask: &TurnAsk, cancel: &mut Cancel) -> Result<(), Error> {
        self.ensure_running(cancel).await?;
        let current = self.conversation.as_ref();
        let model_now = current.and_then(|c| c.spawn.model.clone());
        let mode_now = current.and_then(|c| c.spawn.permission_mode.clone());
        if let Some(model) = &ask.settings.model
            && model_now.as_ref() != Some(model)
        {
            self.set_model(model, cancel).await?;
        }
        if let Some(mode) = &ask.settings.permission_mode
            && mode_now.as_ref() != Some(mode)
        {
            need(&mut self.conversation)?.spawn.permission_mode = Some(mode.clone());
            self.conversation_changed().await;
            let request = ControlRequest::SetPermissionMode { mode };
            self.switch(request, &format!("permission mode {mode}"), cancel)
                .await?;
        }
        Ok(())
    }

    /// Reads claude's output until the turn's result. Watches for silence, not for
    /// length: a turn that keeps streaming is never cut short.
    async fn stream(&mut self, cancel: &mut Cancel) -> TurnEnd {
        let mut last_output = Instant::now();
        let mut interrupt_sent: Option<Instant> = None;
        let mut hung = false;
        loop {
            if cancel.is_cancelled() && interrupt_sent.is_none() {
                interrupt_sent = Some(Instant::now());
                if let Some(end) = self.interrupt_or_kill(hung).await {
                    return end;
                }
            }
            // A person deciding about a tool is no silence of claude's (the daemon
            // bounds the wait for them); a compaction is silent by nature and has a
            // bound of its own.
            let deadline = match (interrupt_sent, self.reader.compacting_since()) {
                (Some(at), _) => Some(at + self.bounds.interrupt_grace),
                (None, _) if self.tools.any() => None,
                (None, Some(since)) => Some(since.max(last_output) + self.bounds.compact_timeout),
                (None, None) => Some(last_output + self.bounds.silence_timeout),
            };
            let watch_cancel = interrupt_sent.is_none().then_some(&mut *cancel);
            match self.next(watch_cancel, deadline).await {
                Woke::Child(ChildEvent::Stdout(line)) => {
                    last_output = Instant::now();
                    if let Some(StreamMessage::Result(result)) = self.read(line).await {
                        return if hung {
                            TurnEnd::Silent
                        } else {
                            classify(&result)
                        };
                    }
                }
                Woke::Child(ChildEvent::Exited(info)) => {
                    let said = self.process.stderr_hint();
                    self.on_exit(info).await;
                    return TurnEnd::Exited(format!("{info}{said}"));
                }
                Woke::Child(other) => {
                    last_output = Instant::now();
                    self.on_child_event(other).await;
                }
                // The person's answer restarts the silence clock.
                Woke::Answered => last_output = Instant::now(),
                Woke::Cancelled => {}
                Woke::Deadline if interrupt_sent.is_some() => {
                    self.report
                        .warn(format!(
                            "claude did not end the interrupted turn within {}; killing it so no late result reaches the next turn",
                            human(self.bounds.interrupt_grace)
                        ))
                        .await;
                    self.stop().await;
                    return stopped(hung);
                }
                Woke::Deadline => {
                    hung = true;
                    let silent = match self.reader.compacting_since() {
                        Some(_) => format!(
                            "claude compacted for over {}",
                            human(self.bounds.compact_timeout)
                        ),
                        None => format!(
                            "claude wrote nothing for {}",
                            human(self.bounds.silence_timeout)
                        ),
                    };
                    self.report
                        .warn(format!("{silent}; interrupting the turn"))
                        .await;
                    interrupt_sent = Some(Instant::now());
                    if let Some(end) = self.interrupt_or_kill(hung).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Asks claude to end the turn; a claude that cannot be asked is killed, and the
    /// turn ends so.
    async fn interrupt_or_kill(&mut self, hung: bool) -> Option<TurnEnd> {
        let id = self.process.request_id();
        let Err(e) = self
            .process
            .write(control_request_line(&id, &ControlRequest::Interrupt))
        else {
            return None;
        };
        self.report
            .warn(format!("cannot interrupt claude ({e}); killing it"))
            .await;
        self.stop().await;
        Some(stopped(hung))
    }

    /// Starts claude unless it runs, backing off after crashes and giving up after too
    /// many in a row. A claude killed during its startup is one more crash.
    async fn ensure_running(&mut self, cancel: &mut Cancel) -> Result<(), Error> {
        loop {
            let spawn = self
                .process
                .before_spawn(self.bounds.max_crashes, self.bounds.crash_backoff);
            let crashes = match spawn {
                None => return Ok(()),
                Some(Spawn::Failed(failure)) => return Err(Error::turn_failed(failure)),
                Some(Spawn::GiveUp(failure)) => {
                    let hint = "see `leash session logs`; `leash session start` tries again";
                    self.report.warn(format!("{failure} ({hint})")).await;
                    self.process.give_up(failure.clone());
                    self.publish();
                    return Err(Error::turn_failed(failure).hint(hint));
                }
                Some(Spawn::After { crashes, delay }) => {
                    self.report
                        .warn(format!(
                            "claude failed {crashes} time(s) in a row; restarting it in {}",
                            human(delay)
                        ))
                        .await;
                    if self.wait(delay, cancel).await {
                        return Err(Error::new(
                            ErrorKind::Interrupted,
                            "interrupted while waiting to restart claude",
                        ));
                    }
                    crashes
                }
                Some(Spawn::Now { crashes }) => crashes,
            };
            match self.spawn(crashes).await? {
                Startup::Ready => return Ok(()),
                Startup::Killed => {}
            }
        }
    }

    /// Starts claude on the conversation. claude keeps its own list of the
    /// conversations it has; where leash's record disagrees (a daemon killed after
    /// sending the first turn but before claude answered it), claude's word wins, once.
    async fn spawn(&mut self, crashes: u32) -> Result<Startup, Error> {
        let e = match self.spawn_once(crashes).await {
            Err(e) => e,
            started => return started,
        };
        let started = need(&mut self.conversation)?.started;
        let claude_knows = if !started && self.process.said("already in use") {
            true
        } else if started && self.process.said("No conversation found") {
            false
        } else {
            return Err(e);
        };
        self.report
            .warn(if claude_knows {
                "claude already has this conversation; resuming it".to_string()
            } else {
                "claude has no record of this conversation; starting it anew under the same id"
                    .to_string()
            })
            .await;
        need(&mut self.conversation)?.started = claude_knows;
        self.conversation_changed().await;
        // The refused start was leash's mistake, not a crash of claude.
        self.spawn_once(crashes).await
    }

    async fn spawn_once(&mut self, crashes: u32) -> Result<Startup, Error> {
        let conversation = need(&mut self.conversation)?;
        if !conversation.cwd.is_dir() {
            let gone = format!(
                "the worker's directory {} is gone",
                conversation.cwd.display()
            );
            self.report.warn(gone.clone()).await;
            self.process.give_up(gone.clone());
            self.publish();
            return Err(Error::setup(gone).hint(
                "move it back, or start the worker over with `leash session start --fresh --cwd DIR`",
            ));
        }
        if let Some(why) = conversation.link_fork() {
            self.report.info(why).await;
        }
        let conversation = need(&mut self.conversation)?;
        let spec = conversation.spawn_spec();
        let what = format!(
            "{} session {}, model {}",
            if conversation.started {
                "resuming"
            } else {
                "new"
            },
            conversation.session_id,
            conversation.spawn.model.as_deref().unwrap_or("default")
        );
        let pid = match self.process.spawn(&spec, crashes) {
            Ok(pid) => pid,
            Err(e) => {
                self.report
                    .warn(format!("{}; check --claude / LEASH_CLAUDE", e.message))
                    .await;
                return Err(e);
            }
        };
        self.report
            .info(format!(
                "started claude (pid {pid}, {}, {what})",
                spec.program.display()
            ))
            .await;
        self.reader.process_started();
        self.publish();
        let timeout = self.bounds.init_timeout;
        let failed = match self.control(&ControlRequest::Initialize, timeout).await {
            Ok(_) | Err(ControlError::Refused(_)) => return Ok(Startup::Ready),
            // Killed (the OOM killer, a person, a reboot's stragglers): on_exit counted
            // the crash. An exit with a code is claude refusing its setup.
            Err(ControlError::Exited(info)) if info.signal.is_some() => {
                return Ok(Startup::Killed);
            }
            Err(ControlError::Exited(_)) => {
                return Err(Error::setup(format!(
                    "claude ({}) exited before answering initialize{}",
                    spec.program.display(),
                    self.process.stderr_hint()
                ))
                .hint("`leash session logs` shows what it said; `leash doctor` checks the setup"));
            }
            Err(ControlError::Timeout) => Error::setup(format!(
                "claude did not answer initialize within {}{}",
                human(timeout),
                self.process.stderr_hint()
            ))
            .hint("check `claude --version` by hand; LEASH_INIT_TIMEOUT sets the bound"),
            Err(ControlError::Unwritable(e)) => Error::setup(format!("cannot talk to claude: {e}"))
                .hint("`leash session logs` shows what it said"),
        };
        self.stop().await;
        self.process.count_failure(crashes);
        Err(failed)
    }

    /// Sends a control request and waits (bounded) for its answer, recording whatever
    /// else claude says meanwhile.
    async fn control(
        &mut self,
        request: &impl Serialize,
        timeout: Duration,
    ) -> Result<Value, ControlError> {
        let id = self.process.request_id();
        self.process
            .write(control_request_line(&id, request))
            .map_err(|e| ControlError::Unwritable(e.message))?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(None, Some(deadline)).await {
                Woke::Child(ChildEvent::Stdout(line)) => {
                    if let Some(StreamMessage::ControlResponse(answer)) = self.read(line).await
                        && answer.response.request_id == id
                    {
                        return if answer.response.subtype == "success" {
                            Ok(answer.response.response.unwrap_or_default())
                        } else {
                            Err(ControlError::Refused(
                                answer.response.error.unwrap_or_default(),
                            ))
                        };
                    }
                }
                Woke::Child(ChildEvent::Exited(info)) => {
                    self.on_exit(info).await;
                    return Err(ControlError::Exited(info));
                }
                Woke::Child(other) => self.on_child_event(other).await,
                Woke::Answered | Woke::Cancelled => {}
                Woke::Deadline => return Err(ControlError::Timeout),
            }
        }
    }

    /// Asks a running claude to switch (a claude that does not run takes the new
    /// setting at its next spawn). A switch claude did not confirm is done the sure
    /// way: claude restarted with the new settings on the same conversation.
    async fn switch(
        &mut self,
        request: ControlRequest<'_>,
        what: &str,
        cancel: &mut Cancel,
    ) -> Result<(), Error> {
        if !self.process.is_running() {
            return Ok(());
        }
        let timeout = self.bounds.control_timeout;
        let why = match self.control(&request, timeout).await {
            Ok(_) => {
                self.report.info(format!("switched to {what}")).await;
                return Ok(());
            }
            Err(ControlError::Exited(_)) => return self.ensure_running(cancel).await,
            Err(e) => e.why(what, timeout),
        };
        self.report
            .warn(format!("{why}; restarting it on the same conversation"))
            .await;
        let crashes = self.process.crashes();
        self.stop().await;
        match self.spawn(crashes).await? {
            Startup::Ready => Ok(()),
            Startup::Killed => self.ensure_running(cancel).await,
        }
    }

    /// Switches the model, keeping the conversation: `set_model` if claude runs (a
    /// respawn with `--resume --model` if it does not confirm in time), else from the
    /// next spawn.
    async fn set_model(&mut self, model: &str, cancel: &mut Cancel) -> Result<(), Error> {
        let previous = need(&mut self.conversation)?
            .spawn
            .model
            .replace(model.to_string());
        self.conversation_changed().await;
        if previous.as_deref() != Some(model) {
            self.reader.model_changed();
        }
        let request = ControlRequest::SetModel { model };
        self.switch(request, &format!("model {model}"), cancel)
            .await
    }

    /// claude takes its allowed tools only at spawn: when they change, a running
    /// claude is restarted on the same conversation.
    async fn set_allowed_tools(&mut self, tools: &[String]) {
        let Ok(conversation) = need(&mut self.conversation) else {
            return;
        };
        if conversation.spawn.allowed_tools == tools {
            return;
        }
        conversation.spawn.allowed_tools = tools.to_vec();
        self.conversation_changed().await;
        if self.process.is_running() {
            self.report
                .info(format!(
                    "restarting claude to allow tools {tools:?} (same conversation)"
                ))
                .await;
            self.stop().await;
        }
    }

    /// The claude binary for the next spawns, as the latest command resolved it. A
    /// running claude goes on; one leash gave up on is tried again with another binary.
    async fn use_binary(&mut self, claude: PathBuf) {
        let Some(conversation) = self.conversation.as_mut() else {
            return;
        };
        if conversation.spawn.claude == claude {
            return;
        }
        let was = std::mem::replace(&mut conversation.spawn.claude, claude);
        let now = conversation.spawn.claude.display().to_string();
        self.report
            .info(format!("claude is now {now} (was {})", was.display()))
            .await;
        self.conversation_changed().await;
        self.process.retry();
    }

    /// A new claude process on the same conversation (`session restart`, for example
    /// after claude was upgraded): the running one is stopped the polite way and a new
    /// one started with `--resume`; one leash gave up on is tried again.
    async fn restart(&mut self, claude: Option<PathBuf>, cancel: &mut Cancel) -> Result<(), Error> {
        if let Some(claude) = claude {
            self.use_binary(claude).await;
        }
        need(&mut self.conversation)?;
        if self.process.is_running() {
            self.report
                .info("restarting claude on the same conversation, as asked".to_string())
                .await;
            self.stop().await;
        }
        self.process.retry();
        self.ensure_running(cancel).await
    }

    /// Sets the session up as asked: a new conversation, or changes to the worker's
    /// while claude does not run; with `warm`, claude started. Also the explicit "try
    /// again" after leash gave up on claude.
    async fn start(&mut self, ask: StartAsk, cancel: &mut Cancel) -> Started {
        let mut new_conversation = false;
        let result = async {
            if let Some(claude) = &ask.change.claude
                && self.conversation.is_some()
            {
                self.use_binary(claude.clone()).await;
            }
            if !self.process.is_running() || ask.fresh {
                let (conversation, new) = Conversation::for_start(
                    self.conversation.as_ref(),
                    ask.fresh,
                    ask.new,
                    &ask.change,
                )?;
                new_conversation = new;
                // A fresh start of a running session: the old claude goes first.
                self.stop().await;
                self.conversation = Some(conversation);
                self.conversation_changed().await;
            }
            self.process.retry();
            if ask.warm {
                self.ensure_running(cancel).await?;
            }
            Ok(())
        }
        .await;
        Started {
            new_conversation,
            result,
        }
    }

    /// The conversation is full: the worker goes on in a new one (a new session id,
    /// claude started anew for it). Returns the new id.
    async fn retire(&mut self) -> Option<String> {
        self.stop().await;
        let conversation = self.conversation.as_mut()?;
        let old = conversation.retire();
        let new = conversation.session_id.clone();
        self.reader.forget_context();
        self.conversation_changed().await;
        self.report
            .info(format!(
                "the conversation {old} is full; the worker goes on in a new one: {new}"
            ))
            .await;
        Some(new)
    }

    /// Stops claude the polite way first: stdin closed, then SIGTERM, then SIGKILL to
    /// its whole group, each after a bounded wait. The child is always reaped.
    async fn stop(&mut self) {
        let Some(mut child) = self.process.take_for_stop() else {
            return;
        };
        let pid = child.pid();
        let grace = self.bounds.stop_grace;
        self.reader.process_ended();
        self.tools.forget();
        child.close_stdin();
        let mut exit = self.drain_until_exit(&mut child, grace).await;
        if exit.is_none() {
            child.signal_group(libc::SIGTERM);
            exit = self.drain_until_exit(&mut child, grace).await;
        }
        if exit.is_none() {
            child.signal_group(libc::SIGKILL);
            exit = self.drain_until_exit(&mut child, grace).await;
        }
        self.process.after_exit(pid);
        let how = exit.map_or("did not exit".to_string(), |e| e.to_string());
        self.report
            .info(format!("claude (pid {pid}) stopped: {how}"))
            .await;
        self.publish();
    }

    async fn drain_until_exit(&mut self, child: &mut Child, wait: Duration) -> Option<ExitInfo> {
        let until = Instant::now() + wait;
        loop {
            let event = tokio::select! {
                event = child.next_event() => event,
                _ = tokio::time::sleep_until(until) => return None,
            };
            match event {
                Some(ChildEvent::Exited(info)) => return Some(info),
                Some(other) => self.on_child_event(other).await,
                None => return Some(ExitInfo::UNKNOWN),
            }
        }
    }

    /// claude exited on its own: a crash.
    async fn on_exit(&mut self, info: ExitInfo) {
        let said = self.process.stderr_hint();
        let Some((pid, program)) = self.process.exited() else {
            return;
        };
        self.reader.process_ended();
        self.tools.forget();
        self.report
            .warn(format!(
                "claude (pid {pid}, {}) exited unexpectedly ({info}){said}",
                program.display()
            ))
            .await;
        self.publish();
    }

    async fn on_child_event(&mut self, event: ChildEvent) {
        match event {
            ChildEvent::Stdout(line) => {
                self.read(line).await;
            }
            ChildEvent::Stderr(line) => {
                self.process.saw_stderr(&line);
                self.report.send(SessionEvent::Stderr(line)).await;
            }
            ChildEvent::Oversized(len) => {
                self.report
                    .warn(format!("skipped a {len}-byte line from claude (too long)"))
                    .await;
            }
            ChildEvent::Exited(info) => self.on_exit(info).await,
        }
    }

    /// Output that arrives while no command reads it.
    async fn on_stray(&mut self, event: ChildEvent) {
        let ChildEvent::Stdout(line) = event else {
            return self.on_child_event(event).await;
        };
        if let Some(StreamMessage::Result(_)) = self.read(line).await {
            self.report
                .warn("dropped a result that arrived outside any turn".to_string())
                .await;
        }
    }

    /// One stdout line: relayed, taken in, and claude's own requests answered.
    async fn read(&mut self, line: String) -> Option<StreamMessage> {
        let message = self
            .reader
            .read(line, &mut self.conversation, &self.report)
            .await?;
        if self.reader.take_conversation_changed() {
            self.conversation_changed().await;
        }
        match &message {
            // Only relayed: nothing of the session changed.
            StreamMessage::Other => return Some(message),
            StreamMessage::ControlRequest(request) => self.on_control_request(request).await,
            _ => {}
        }
        self.publish();
        Some(message)
    }

    /// claude waits forever for an answer to its own control requests, so every one
    /// gets an answer, even if it is "no".
    async fn on_control_request(&mut self, request: &IncomingControlRequest) {
        let Some(stdin) = self.process.stdin() else {
            return;
        };
        if request.subtype() == "can_use_tool" {
            let field = |name: &str| request.request.get(name);
            let tool = field("tool_name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("a tool")
                .to_string();
            let input = field("input").cloned().unwrap_or_default();
            let asked = self.tools.ask(request.request_id.clone(), tool, input);
            self.report.send(SessionEvent::ToolRequest(asked)).await;
            return;
        }
        let error = format!(
            "leash does not handle {:?} control requests",
            request.subtype()
        );
        let line = control_response_line(&request.request_id, Err(&error));
        if let Err(e) = stdin.write(line) {
            self.report
                .warn(format!("cannot answer claude's control request: {e}"))
                .await;
        }
    }

    /// An answer to one of claude's tool requests, for claude.
    async fn give_answer(&mut self, answer: Option<String>) {
        let Some(line) = answer else { return };
        if let Err(e) = self.process.write(line) {
            self.report
                .warn(format!("cannot answer claude's tool request: {e}"))
                .await;
        }
    }

    /// The next thing to react to: claude's output first, then the answers to its
    /// requests, an interrupt (with `cancel`), or `deadline`.
    async fn next(&mut self, cancel: Option<&mut Cancel>, deadline: Option<Instant>) -> Woke {
        if let Some(event) = self.process.try_next_event() {
            return Woke::Child(event);
        }
        let cancelled = async {
            match cancel {
                Some(cancel) => cancel.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let answer = tokio::select! {
            biased;
            event = self.process.next_event() => return Woke::Child(event),
            answer = self.tools.next() => answer,
            () = cancelled => return Woke::Cancelled,
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => return Woke::Deadline,
        };
        self.give_answer(answer).await;
        Woke::Answered
    }

    /// Waits `delay` while recording claude's stray output; true if cancelled meanwhile.
    async fn wait(&mut self, delay: Duration, cancel: &mut Cancel) -> bool {
        let until = Instant::now() + delay;
        loop {
            if cancel.is_cancelled() {
                return true;
            }
            match self.next(Some(cancel), Some(until)).await {
                Woke::Child(event) => self.on_stray(event).await,
                Woke::Deadline => return false,
                Woke::Answered | Woke::Cancelled => {}
            }
        }
    }

    /// The conversation's saved facts changed: the daemon saves them.
    /// The view is published first: the daemon saves what the view shows when it
    /// hears of the change.
    async fn conversation_changed(&mut self) {
        self.publish();
        self.report.send(SessionEvent::ConversationChanged).await;
    }

    /// Shows the session as it is now to whoever reads its view.
    fn publish(&self) {
        let mut view = View {
            conversation: self.conversation.clone(),
            pid: self.process.pid(),
            failure: self.process.failure(),
            ..View::default()
        };
        self.reader.view(&mut view);
        self.report.publish(view);
    }
}

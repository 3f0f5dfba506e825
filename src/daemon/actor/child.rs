//! The actor's side of the claude child: spawning it with the right arguments, control
//! requests with bounded waits, switches, stopping it, and recording what it says.

use super::*;

impl Actor {
    pub(super) async fn ensure_child(&mut self) -> Result<(), Error> {
        if self.child.is_some() {
            return Ok(());
        }
        if let Some(failure) = &self.failure {
            return Err(Error::turn_failed(failure.clone()));
        }
        if self.crashes >= self.settings.max_crashes {
            let failure = format!(
                "claude failed {} times in a row; leash gave up{} (see `leash session logs`; `leash session start` tries again)",
                self.crashes,
                self.stderr_hint()
            );
            self.warn(None, failure.clone());
            self.failure = Some(failure.clone());
            return Err(Error::turn_failed(failure));
        }
        if self.crashes > 0 {
            let delay = self
                .settings
                .crash_backoff
                .saturating_mul(1 << (self.crashes - 1).min(10))
                .min(Duration::from_secs(60));
            self.warn(
                self.current_turn,
                format!(
                    "claude failed {} time(s) in a row; restarting it in {}",
                    self.crashes,
                    human(delay)
                ),
            );
            if self.pause(delay).await {
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    "interrupted while waiting to restart claude",
                ));
            }
        }
        self.spawn_child().await
    }

    pub(super) fn spawn_spec(&self) -> SpawnSpec {
        let r = &self.record;
        let mut args: Vec<String> = [
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        .map(String::from)
        .to_vec();
        if r.conversation_started {
            args.extend(["--resume".to_string(), r.session_id.clone()]);
        } else {
            args.extend(["--session-id".to_string(), r.session_id.clone()]);
        }
        if let Some(model) = &r.model {
            args.extend(["--model".to_string(), model.clone()]);
        }
        if let Some(mode) = &r.permission_mode {
            args.extend(["--permission-mode".to_string(), mode.clone()]);
        }
        if let Some(file) = &r.system_prompt_file {
            args.extend([
                "--system-prompt-file".to_string(),
                file.to_string_lossy().into_owned(),
            ]);
        }
        if !r.allowed_tools.is_empty() {
            args.push("--allowedTools".to_string());
            args.extend(r.allowed_tools.iter().cloned());
        }
        if r.interactive_permissions {
            args.extend(["--permission-prompt-tool".to_string(), "stdio".to_string()]);
        }
        if let Some(text) = &r.append_system_prompt {
            args.extend(["--append-system-prompt".to_string(), text.clone()]);
        }
        args.extend(r.extra_args.iter().cloned());
        SpawnSpec {
            program: r.claude.clone(),
            args,
            cwd: r.cwd.clone(),
            env: vec![
                ("LEASH_WORKER".to_string(), r.worker.clone()),
                // Lets a git hook tell the worker's own commits from anyone else's.
                ("LEASH_AGENT_WORKER".to_string(), r.worker.clone()),
            ],
        }
    }

    /// Starts claude on the worker's conversation. claude keeps its own list of the
    /// conversations it has; where leash's record disagrees (a daemon killed after
    /// sending the first turn but before claude answered it), claude's word wins, once.
    pub(super) async fn spawn_child(&mut self) -> Result<(), Error> {
        let result = self.spawn_once().await;
        let Err(e) = result else {
            return Ok(());
        };
        let said = |needle: &str| self.stderr_tail.iter().any(|line| line.contains(needle));
        let started = self.record.conversation_started;
        let claude_knows = if !started && said("already in use") {
            true
        } else if started && said("No conversation found") {
            false
        } else {
            return Err(e);
        };
        self.warn(
            self.current_turn,
            if claude_knows {
                "claude already has this conversation; resuming it".to_string()
            } else {
                "claude has no record of this conversation; starting it anew under the same id"
                    .to_string()
            },
        );
        self.record.conversation_started = claude_knows;
        self.save_record();
        // The refused start was leash's mistake, not a crash of claude.
        self.crashes = self.crashes.saturating_sub(1);
        self.spawn_once().await
    }

    async fn spawn_once(&mut self) -> Result<(), Error> {
        let spec = self.spawn_spec();
        let child = match Child::spawn(&spec) {
            Ok(child) => child,
            Err(e) => {
                self.crashes += 1;
                let message = format!(
                    "cannot start {}: {e}; check --claude / LEASH_CLAUDE",
                    spec.program.display()
                );
                self.warn(self.current_turn, message.clone());
                return Err(Error::setup(message));
            }
        };
        let how = if self.record.conversation_started {
            "resuming"
        } else {
            "new"
        };
        self.notice(
            self.current_turn,
            format!(
                "started claude (pid {}, {how} session {}, model {})",
                child.pid(),
                self.record.session_id,
                self.record.model.as_deref().unwrap_or("default")
            ),
        );
        crate::process::record_claude(&self.state_dir, child.pid());
        self.child = Some(child);
        self.stderr_tail.clear();
        self.confirmed_mode = None;
        match self
            .control(ControlRequest::Initialize, self.settings.init_timeout)
            .await
        {
            Ok(_) | Err(ControlError::Refused(_)) => Ok(()),
            Err(ControlError::Exited(info)) => Err(Error::setup(format!(
                "claude exited ({info}) before answering initialize{}",
                self.stderr_hint()
            ))),
            Err(ControlError::Timeout) => {
                self.crashes += 1;
                self.shutdown_child().await;
                Err(Error::setup(format!(
                    "claude did not answer initialize within {}{}",
                    human(self.settings.init_timeout),
                    self.stderr_hint()
                )))
            }
            Err(ControlError::Unwritable(e)) => {
                self.crashes += 1;
                self.shutdown_child().await;
                Err(Error::setup(format!("cannot talk to claude: {e}")))
            }
        }
    }

    pub(super) fn write_child(&mut self, line: String) -> Result<(), Error> {
        match self.child.as_ref() {
            Some(child) => child
                .write(line)
                .map_err(|e| Error::turn_failed(e.to_string())),
            None => Err(Error::turn_failed("claude is not running")),
        }
    }

    pub(super) fn send_interrupt(&mut self) -> Result<(), Error> {
        let id = self.request_id();
        self.write_child(control_request_line(&id, &ControlRequest::Interrupt))
    }

    pub(super) fn request_id(&mut self) -> String {
        let id = format!("leash-{}-{}", std::process::id(), self.next_request_id);
        self.next_request_id += 1;
        id
    }

    /// Sends a control request and waits (bounded) for its answer, recording whatever
    /// else claude says meanwhile.
    pub(super) async fn control(
        &mut self,
        request: ControlRequest<'_>,
        timeout: Duration,
    ) -> Result<Value, ControlError> {
        let id = self.request_id();
        self.write_child(control_request_line(&id, &request))
            .map_err(|e| ControlError::Unwritable(e.message))?;
        let deadline = Instant::now() + timeout;
        let turn = self.current_turn;
        loop {
            match self.next_input(Some(deadline)).await {
                Input::Child(ChildEvent::Stdout(line)) => {
                    if let Some(StreamMessage::ControlResponse(answer)) =
                        self.record_stdout(line, turn)
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
                Input::Child(ChildEvent::Exited(info)) => {
                    self.on_child_exit(info, turn);
                    return Err(ControlError::Exited(info));
                }
                Input::Child(other) => self.record_child_event(other, turn),
                Input::Attention => {}
                Input::Deadline => return Err(ControlError::Timeout),
            }
        }
    }

    pub(super) async fn switch_model(&mut self, model: &str) -> Result<(), Error> {
        let previous = self.record.model.replace(model.to_string());
        self.save_record();
        if previous.as_deref() != Some(model) {
            self.confirmed_model = None;
        }
        if self.child.is_none() {
            return Ok(());
        }
        let result = self
            .control(
                ControlRequest::SetModel { model },
                self.settings.control_timeout,
            )
            .await;
        self.after_switch(result, &format!("model {model}")).await
    }

    pub(super) async fn switch_permission_mode(&mut self, mode: &str) -> Result<(), Error> {
        self.record.permission_mode = Some(mode.to_string());
        self.save_record();
        if self.child.is_none() {
            return Ok(());
        }
        let result = self
            .control(
                ControlRequest::SetPermissionMode { mode },
                self.settings.control_timeout,
            )
            .await;
        self.after_switch(result, &format!("permission mode {mode}"))
            .await
    }

    /// A switch claude did not confirm is done the sure way: restart claude with the
    /// new settings on the same conversation.
    pub(super) async fn after_switch(
        &mut self,
        result: Result<Value, ControlError>,
        what: &str,
    ) -> Result<(), Error> {
        let why = match result {
            Ok(_) => {
                self.notice(self.current_turn, format!("switched to {what}"));
                return Ok(());
            }
            Err(ControlError::Exited(_)) => return self.ensure_child().await,
            Err(ControlError::Timeout) => format!(
                "claude did not confirm {what} within {}",
                human(self.settings.control_timeout)
            ),
            Err(ControlError::Refused(e)) => format!("claude refused {what}: {e}"),
            Err(ControlError::Unwritable(e)) => format!("cannot ask claude for {what}: {e}"),
        };
        self.warn(
            self.current_turn,
            format!("{why}; restarting it on the same conversation"),
        );
        self.shutdown_child().await;
        self.spawn_child().await
    }

    /// Stops claude the polite way first: stdin closed, then SIGTERM, then SIGKILL to
    /// its whole group, each after a bounded wait. The child is always reaped.
    pub(super) async fn shutdown_child(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.pid();
        let grace = self.settings.stop_grace;
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
        self.after_claude(pid);
        let how = exit.map_or("did not exit".to_string(), |e| e.to_string());
        self.notice(
            self.current_turn,
            format!("claude (pid {pid}) stopped: {how}"),
        );
    }

    pub(super) async fn drain_until_exit(
        &mut self,
        child: &mut Child,
        wait: Duration,
    ) -> Option<ExitInfo> {
        let until = Instant::now() + wait;
        loop {
            let event = tokio::select! {
                event = child.next_event() => event,
                _ = tokio::time::sleep_until(until) => return None,
            };
            match event {
                Some(ChildEvent::Exited(info)) => return Some(info),
                Some(other) => self.record_child_event(other, self.current_turn),
                None => {
                    return Some(ExitInfo {
                        code: None,
                        signal: None,
                    });
                }
            }
        }
    }

    /// claude is gone: tools it started may outlive it in its group, and its pid is no
    /// longer one a later daemon should kill.
    fn after_claude(&self, pid: u32) {
        crate::process::signal_group(pid, libc::SIGKILL);
        crate::process::forget_claude(&self.state_dir);
    }

    pub(super) fn on_child_exit(&mut self, info: ExitInfo, turn: Option<u64>) {
        let pid = self.child.take().map_or(0, |c| c.pid());
        self.after_claude(pid);
        self.crashes += 1;
        self.warn(
            turn,
            format!(
                "claude (pid {pid}) exited unexpectedly ({info}){}",
                self.stderr_hint()
            ),
        );
    }

    /// Output that arrives while no turn is reading it.
    pub(super) fn on_stray_child_event(&mut self, event: ChildEvent) {
        match event {
            ChildEvent::Stdout(line) => {
                if let Some(StreamMessage::Result(_)) = self.record_stdout(line, self.current_turn)
                {
                    self.warn(
                        self.current_turn,
                        "dropped a result that arrived outside any turn".to_string(),
                    );
                }
            }
            ChildEvent::Exited(info) => self.on_child_exit(info, self.current_turn),
            other => self.record_child_event(other, self.current_turn),
        }
    }

    pub(super) fn record_child_event(&mut self, event: ChildEvent, turn: Option<u64>) {
        match event {
            ChildEvent::Stdout(line) => {
                self.record_stdout(line, turn);
            }
            ChildEvent::Stderr(line) => {
                if self.stderr_tail.len() == STDERR_TAIL {
                    self.stderr_tail.pop_front();
                }
                self.stderr_tail.push_back(line.clone());
                self.emit(turn, |seq, ts| Event::<Value>::Stderr {
                    seq,
                    ts,
                    turn,
                    line,
                });
            }
            ChildEvent::Oversized(len) => {
                self.warn(
                    turn,
                    format!("skipped a {len}-byte line from claude (too long)"),
                );
            }
            ChildEvent::Exited(info) => self.on_child_exit(info, turn),
        }
    }

    /// Logs and relays one stdout line, acts on what leash must know (init, control
    /// requests), and hands the parsed message back (`Other` for the assistant and user
    /// lines leash only relays).
    pub(super) fn record_stdout(
        &mut self,
        line: String,
        turn: Option<u64>,
    ) -> Option<StreamMessage> {
        let raw = serde_json::from_str::<&RawValue>(&line);
        let message = match peek_type(&line).as_deref() {
            // Relayed, never inspected: reading their type is enough.
            Some("assistant" | "user" | "stream_event") => Ok(StreamMessage::Other),
            _ => serde_json::from_str::<StreamMessage>(&line),
        };
        let (Ok(message), Ok(raw)) = (message, raw) else {
            let preview: String = line.chars().take(200).collect();
            self.notice(
                turn,
                format!(
                    "claude wrote a malformed line ({} bytes), skipped: {preview}",
                    line.len()
                ),
            );
            return None;
        };
        self.emit(turn, |seq, ts| Event::Claude {
            seq,
            ts,
            turn,
            msg: raw,
        });
        match &message {
            StreamMessage::System(system) if system.subtype == "init" => {
                if let Some(model) = &system.model {
                    self.confirmed_model = Some(model.clone());
                }
                if let Some(mode) = &system.permission_mode {
                    self.confirmed_mode = Some(mode.clone());
                }
                if let Some(id) = &system.session_id
                    && *id != self.record.session_id
                {
                    let old = std::mem::replace(&mut self.record.session_id, id.clone());
                    self.warn(
                        turn,
                        format!("claude changed the session id from {old} to {id}"),
                    );
                }
                if !self.record.conversation_started {
                    self.record.conversation_started = true;
                    self.save_record();
                }
            }
            StreamMessage::ControlRequest(request) => self.answer_control_request(request, turn),
            _ => {}
        }
        Some(message)
    }

    /// claude waits forever for an answer to its own control requests, so every one
    /// gets an answer, even if it is "no".
    pub(super) fn answer_control_request(
        &mut self,
        request: &IncomingControlRequest,
        turn: Option<u64>,
    ) {
        let subtype = request.subtype();
        if subtype == "can_use_tool" {
            return self.on_permission_request(request, turn);
        }
        let error = format!("leash does not handle {subtype:?} control requests");
        let line = control_response_line(&request.request_id, Err(&error));
        if let Err(e) = self.write_child(line) {
            self.warn(turn, format!("cannot answer claude's control request: {e}"));
        }
    }

    pub(super) fn stderr_hint(&self) -> String {
        match self.stderr_tail.back() {
            Some(line) => format!("; claude said: {}", line.trim()),
            None => String::new(),
        }
    }
}

//! Running one turn: prepare claude, send the prompt, read until the result, retry
//! provider errors, judge the outcome.

use super::*;

impl Actor {
    /// Runs one turn to its end and returns its outcome (also sent as `turn_ended`).
    pub(super) async fn run_turn(&mut self, turn: u64, spec: TurnSpec) -> Outcome {
        let started = Instant::now();
        self.current_turn = Some(turn);
        self.interrupt_requested = false;
        self.emit(Some(turn), |seq, ts| Event::<Value>::TurnStarted {
            seq,
            ts,
            turn,
            kind: spec.kind,
            prompt: spec.prompt.clone(),
        });
        let head_before = self.observe_head(turn);
        self.interactive_turn = spec.interactive.then_some(turn);
        let mut retries = 0;
        let outcome = loop {
            let attempt = self.attempt_turn(turn, &spec).await;
            if let Attempt::Result(result) = &attempt
                && result.is_provider_error()
                && retries < spec.retry.max_retries
                && !self.interrupt_requested
                && !self.stop_requested
            {
                let delay = Duration::from_millis(spec.retry.delay_ms(retries));
                retries += 1;
                self.warn(
                    Some(turn),
                    format!(
                        "provider error ({}); retrying in {} (retry {retries} of {})",
                        result.result.as_deref().unwrap_or("no details"),
                        human(delay),
                        spec.retry.max_retries
                    ),
                );
                if self.pause(delay).await {
                    break Outcome {
                        message: Some("interrupted while waiting to retry".to_string()),
                        ..self.outcome(turn, TurnStatus::Interrupted, retries)
                    };
                }
                continue;
            }
            break self.judge(turn, attempt, retries);
        };
        let outcome = Outcome {
            duration_ms: started.elapsed().as_millis() as u64,
            ..outcome
        };
        self.attribute_commits(head_before);
        // Nobody is left to answer questions of a turn that ended.
        self.detach(turn);
        self.record.turns += 1;
        self.save_record();
        self.end_turn(turn, outcome.clone());
        self.current_turn = None;
        self.interrupt_requested = false;
        outcome
    }

    pub(super) async fn attempt_turn(&mut self, turn: u64, spec: &TurnSpec) -> Attempt {
        if let Err(e) = self.ensure_child().await {
            return Attempt::NotStarted(e);
        }
        if let Some(model) = &spec.model
            && self.record.model.as_deref() != Some(model.as_str())
            && let Err(e) = self.switch_model(model).await
        {
            return Attempt::NotStarted(e);
        }
        if let Some(mode) = &spec.permission_mode
            && self.record.permission_mode.as_deref() != Some(mode.as_str())
            && let Err(e) = self.switch_permission_mode(mode).await
        {
            return Attempt::NotStarted(e);
        }
        if self.interrupt_requested || self.stop_requested {
            return Attempt::InterruptedBeforeStart;
        }
        if let Err(e) = self.write_child(user_line(&spec.prompt)) {
            return Attempt::NotStarted(e);
        }
        self.stream_turn(turn).await
    }

    /// Reads claude's output until the turn's result. Watches for silence, not for
    /// length: a turn that keeps streaming is never cut short.
    pub(super) async fn stream_turn(&mut self, turn: u64) -> Attempt {
        let mut last_output = Instant::now();
        let mut interrupt_sent: Option<Instant> = None;
        let mut hung = false;
        loop {
            if (self.interrupt_requested || self.stop_requested) && interrupt_sent.is_none() {
                interrupt_sent = Some(Instant::now());
                if let Err(e) = self.send_interrupt() {
                    self.warn(
                        Some(turn),
                        format!("cannot interrupt claude ({e}); killing it"),
                    );
                    self.shutdown_child().await;
                    return Attempt::Killed { hung };
                }
            }
            // While a person decides about a tool, claude is silent by design.
            let deadline = match (interrupt_sent, self.permission_deadline()) {
                (Some(at), _) => at + self.settings.interrupt_grace,
                (None, Some(at)) => at,
                (None, None) => last_output + self.settings.silence_timeout,
            };
            let waiting_for_a_person = self.has_pending_permissions();
            let input = self.next_input(Some(deadline)).await;
            if waiting_for_a_person && !self.has_pending_permissions() {
                // The answer restarts the silence clock.
                last_output = Instant::now();
            }
            match input {
                Input::Child(ChildEvent::Stdout(line)) => {
                    last_output = Instant::now();
                    if let Some(StreamMessage::Result(result)) =
                        self.record_stdout(line, Some(turn))
                    {
                        return Attempt::Result(result);
                    }
                }
                Input::Child(ChildEvent::Exited(info)) => {
                    self.on_child_exit(info, Some(turn));
                    return Attempt::Exited(info);
                }
                Input::Child(other) => {
                    last_output = Instant::now();
                    self.record_child_event(other, Some(turn));
                }
                Input::Attention => {}
                Input::Deadline if interrupt_sent.is_none() && self.has_pending_permissions() => {
                    self.expire_permissions();
                    last_output = Instant::now();
                }
                Input::Deadline if interrupt_sent.is_some() => {
                    self.warn(
                        Some(turn),
                        format!(
                            "claude did not end the interrupted turn within {}; killing it so no late result reaches the next turn",
                            human(self.settings.interrupt_grace)
                        ),
                    );
                    self.shutdown_child().await;
                    return Attempt::Killed { hung };
                }
                Input::Deadline => {
                    hung = true;
                    self.warn(
                        Some(turn),
                        format!(
                            "claude wrote nothing for {}; interrupting the turn",
                            human(self.settings.silence_timeout)
                        ),
                    );
                    self.interrupt_requested = true;
                }
            }
        }
    }

    /// Turns how an attempt ended into the turn's outcome.
    pub(super) fn judge(&mut self, turn: u64, attempt: Attempt, retries: u32) -> Outcome {
        let interrupted = self.interrupt_requested || self.stop_requested;
        match attempt {
            Attempt::Result(result) => {
                if let Some(cost) = result.total_cost_usd {
                    self.record.cost_usd += cost;
                }
                let status = if !result.is_error {
                    TurnStatus::Success
                } else if result.is_interrupted() || interrupted {
                    TurnStatus::Interrupted
                } else if result.is_provider_error() {
                    TurnStatus::ProviderError
                } else {
                    TurnStatus::Error
                };
                if status == TurnStatus::Success {
                    self.crashes = 0;
                }
                let message = match status {
                    TurnStatus::Success => None,
                    TurnStatus::Interrupted => Some("the turn was interrupted".to_string()),
                    // claude reports these with subtype "success": name the HTTP status.
                    TurnStatus::ProviderError => Some(format!(
                        "the API failed{}: {}",
                        result
                            .api_error_status
                            .map(|s| format!(" with HTTP {s}"))
                            .unwrap_or_default(),
                        result.result.as_deref().unwrap_or("no details")
                    )),
                    _ => Some(format!(
                        "claude reported an error ({}): {}",
                        result.subtype,
                        result.result.as_deref().unwrap_or("no details")
                    )),
                };
                Outcome {
                    result: result.result.clone(),
                    message,
                    cost_usd: result.total_cost_usd,
                    api_error_status: result.api_error_status,
                    ..self.outcome(turn, status, retries)
                }
            }
            Attempt::Exited(info) => Outcome {
                message: Some(format!(
                    "claude exited during the turn ({info}){}; the next turn restarts it with --resume",
                    self.stderr_hint()
                )),
                ..self.outcome(turn, TurnStatus::Crashed, retries)
            },
            Attempt::Killed { hung } => {
                let status = if hung {
                    TurnStatus::Hung
                } else {
                    TurnStatus::Interrupted
                };
                Outcome {
                    message: Some(if hung {
                        format!(
                            "claude went silent for {} and was restarted; the next turn resumes the conversation",
                            human(self.settings.silence_timeout)
                        )
                    } else {
                        "the turn was interrupted (claude had to be restarted)".to_string()
                    }),
                    ..self.outcome(turn, status, retries)
                }
            }
            Attempt::NotStarted(e) if e.kind == ErrorKind::Interrupted => Outcome {
                message: Some(e.message),
                ..self.outcome(turn, TurnStatus::Interrupted, retries)
            },
            Attempt::NotStarted(e) => Outcome {
                message: Some(e.message),
                ..self.outcome(turn, TurnStatus::Crashed, retries)
            },
            Attempt::InterruptedBeforeStart => Outcome {
                message: Some("interrupted before claude received the turn".to_string()),
                ..self.outcome(turn, TurnStatus::Interrupted, retries)
            },
        }
    }

    pub(super) fn outcome(&self, turn: u64, status: TurnStatus, retries: u32) -> Outcome {
        Outcome {
            status,
            exit_code: status.exit_code(),
            turn,
            result: None,
            message: None,
            session_id: self.record.session_id.clone(),
            model: self
                .confirmed_model
                .clone()
                .or_else(|| self.record.model.clone()),
            cost_usd: None,
            duration_ms: 0,
            api_error_status: None,
            retries,
        }
    }

    pub(super) fn end_turn(&mut self, turn: u64, outcome: Outcome) {
        self.emit(Some(turn), |seq, ts| Event::<Value>::TurnEnded {
            seq,
            ts,
            turn,
            outcome,
        });
    }

    /// Waits `delay` while serving commands; true if the turn was interrupted meanwhile.
    pub(super) async fn pause(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            if self.interrupt_requested || self.stop_requested {
                return true;
            }
            match self.next_input(Some(until)).await {
                Input::Child(event) => self.on_stray_child_event(event),
                Input::Attention => {}
                Input::Deadline => return false,
            }
        }
    }
}

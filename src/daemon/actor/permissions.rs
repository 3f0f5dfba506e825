//! claude's requests to use a tool (`can_use_tool`, with `--permission-prompt-tool
//! stdio`). A person at the turn's terminal decides; tools they allowed "always", and
//! the session's allow-list, are approved without asking; with no one there to ask the
//! answer is no. Every request is answered, within a bound: claude waits forever for
//! an answer it does not get.

use super::*;

/// A request waiting for the person at the turn's terminal.
pub(super) struct PendingPermission {
    request_id: String,
    tool: String,
    input: Value,
    turn: Option<u64>,
    asked_at: Instant,
}

/// What the person decided.
pub struct Decision {
    pub allow: bool,
    pub always: bool,
    pub message: Option<String>,
}

impl Actor {
    pub(super) fn on_permission_request(
        &mut self,
        request: &IncomingControlRequest,
        turn: Option<u64>,
    ) {
        let tool = request
            .request
            .get("tool_name")
            .and_then(Value::as_str)
            .unwrap_or("a tool")
            .to_string();
        let input = request.request.get("input").cloned().unwrap_or(Value::Null);
        let approved = self.record.always_allow.contains(&tool)
            || self.record.permission_allow.contains(&tool);
        if approved {
            self.notice(turn, format!("allowed {tool} (allow-list)"));
            self.send_permission(&request.request_id, &tool, input, Ok(()), turn);
        } else if turn.is_some() && turn == self.interactive_turn {
            self.pending_permissions.push(PendingPermission {
                request_id: request.request_id.clone(),
                tool,
                input,
                turn,
                asked_at: Instant::now(),
            });
        } else {
            self.warn(
                turn,
                format!("denied {tool}: no one is attached to approve it"),
            );
            let why = format!(
                "leash: no one is attached to approve {tool}; allow it with `leash session start --allow-tool {tool}` or a permission mode that covers it"
            );
            self.send_permission(&request.request_id, &tool, input, Err(why), turn);
        }
    }

    /// The person's answer, relayed by their connection.
    pub(super) fn decide_permission(&mut self, request_id: &str, decision: Decision) {
        let Some(at) = self
            .pending_permissions
            .iter()
            .position(|p| p.request_id == request_id)
        else {
            return;
        };
        let pending = self.pending_permissions.remove(at);
        if decision.allow && decision.always && !self.record.always_allow.contains(&pending.tool) {
            self.record.always_allow.push(pending.tool.clone());
            self.save_record();
        }
        let verdict = if decision.allow {
            Ok(())
        } else {
            Err(decision
                .message
                .unwrap_or_else(|| "the user denied this".to_string()))
        };
        let how = match (&verdict, decision.always) {
            (Ok(()), true) => "allowed always",
            (Ok(()), false) => "allowed once",
            (Err(_), _) => "denied",
        };
        self.notice(pending.turn, format!("{how}: {}", pending.tool));
        self.send_permission(
            &pending.request_id,
            &pending.tool,
            pending.input,
            verdict,
            pending.turn,
        );
    }

    /// The person left: nobody will answer what they were asked.
    pub(super) fn detach(&mut self, turn: u64) {
        if self.interactive_turn == Some(turn) {
            self.interactive_turn = None;
        }
        self.deny_pending(|p| p.turn == Some(turn), "the user at the terminal left");
    }

    /// When the oldest question runs out of time.
    pub(super) fn permission_deadline(&self) -> Option<Instant> {
        self.pending_permissions
            .iter()
            .map(|p| p.asked_at + self.settings.permission_timeout)
            .min()
    }

    pub(super) fn expire_permissions(&mut self) {
        let now = Instant::now();
        let timeout = self.settings.permission_timeout;
        let why = format!("no answer within {}", human(timeout));
        self.deny_pending(|p| p.asked_at + timeout <= now, &why);
    }

    pub(super) fn has_pending_permissions(&self) -> bool {
        !self.pending_permissions.is_empty()
    }

    fn deny_pending(&mut self, which: impl Fn(&PendingPermission) -> bool, why: &str) {
        let (denied, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_permissions)
            .into_iter()
            .partition(|p| which(p));
        self.pending_permissions = kept;
        for p in denied {
            self.warn(p.turn, format!("denied {}: {why}", p.tool));
            self.send_permission(
                &p.request_id,
                &p.tool,
                p.input,
                Err(format!("leash: {why}")),
                p.turn,
            );
        }
    }

    fn send_permission(
        &mut self,
        request_id: &str,
        tool: &str,
        input: Value,
        verdict: Result<(), String>,
        turn: Option<u64>,
    ) {
        let body = match verdict {
            Ok(()) => serde_json::json!({"behavior": "allow", "updatedInput": input}),
            Err(message) => serde_json::json!({"behavior": "deny", "message": message}),
        };
        if let Err(e) = self.write_child(control_response_line(request_id, Ok(body))) {
            self.warn(turn, format!("cannot answer claude about {tool}: {e}"));
        }
    }
}

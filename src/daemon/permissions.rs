//! claude's requests to use a tool. A person at the turn's terminal decides; tools they
//! allowed "always", and the session's allow-list, are approved without asking; with no
//! one there to ask the answer is no. Every request is answered within a bound.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::subscribers::Subscribers;
use crate::claude::session::ToolRequest;
use crate::human::duration as human;
use crate::protocol::EventBody;

/// A request waiting for the person at the turn's terminal.
struct Question {
    request: ToolRequest,
    turn: Option<u64>,
    asked_at: Instant,
}

/// What the person decided.
pub struct Decision {
    pub allow: bool,
    pub always: bool,
    pub message: Option<String>,
}

pub struct Permissions {
    pending: Vec<Question>,
    /// Tools approved when no one is attached to approve.
    allow: Vec<String>,
    /// Tools a person allowed "always" in this session.
    always: Vec<String>,
    /// The running turn whose client has a person to ask.
    interactive_turn: Option<u64>,
    timeout: Duration,
}

impl Permissions {
    pub fn new(allow: Vec<String>, always: Vec<String>, timeout: Duration) -> Permissions {
        Permissions {
            pending: Vec::new(),
            allow,
            always,
            interactive_turn: None,
            timeout,
        }
    }

    pub fn allow_list(&self) -> &[String] {
        &self.allow
    }

    pub fn always_list(&self) -> &[String] {
        &self.always
    }

    pub fn set_allow_list(&mut self, allow: Vec<String>) {
        self.allow = allow;
    }

    /// The turn now running, and whether its client has a person to ask.
    pub fn turn_started(&mut self, turn: u64, interactive: bool) {
        self.interactive_turn = interactive.then_some(turn);
    }

    /// claude asks to use a tool, during `turn`.
    pub fn ask(&mut self, request: ToolRequest, turn: Option<u64>, out: &mut Subscribers) {
        let tool = request.tool().to_string();
        if self.always.contains(&tool) || self.allow.contains(&tool) {
            out.info(turn, format!("allowed {tool} (allow-list)"));
            request.allow();
        } else if turn.is_some() && turn == self.interactive_turn {
            out.emit(
                turn,
                EventBody::<Value>::PermissionAsked {
                    request_id: request.request_id().to_string(),
                    tool,
                    input: request.input().clone(),
                },
            );
            self.pending.push(Question {
                request,
                turn,
                asked_at: Instant::now(),
            });
        } else {
            out.warn(
                turn,
                format!("denied {tool}: no one is attached to approve it"),
            );
            request.deny(&format!(
                "leash: no one is attached to approve {tool}; allow it with `leash session start --allow-tool {tool}` or a permission mode that covers it"
            ));
        }
    }

    /// The person's answer, relayed by their connection. True when the "always" list
    /// changed (the session record keeps it).
    pub fn decide(&mut self, request_id: &str, decision: Decision, out: &mut Subscribers) -> bool {
        let Some(at) = self
            .pending
            .iter()
            .position(|p| p.request.request_id() == request_id)
        else {
            return false;
        };
        let Question { request, turn, .. } = self.pending.remove(at);
        let tool = request.tool().to_string();
        let remember = decision.allow && decision.always && !self.always.contains(&tool);
        if remember {
            self.always.push(tool.clone());
        }
        let how = match (decision.allow, decision.always) {
            (true, true) => "allowed always",
            (true, false) => "allowed once",
            (false, _) => "denied",
        };
        out.info(turn, format!("{how}: {tool}"));
        if decision.allow {
            request.allow();
        } else {
            let why = decision
                .message
                .unwrap_or_else(|| "the user denied this".to_string());
            request.deny(&why);
        }
        remember
    }

    /// The person left (or the turn ended): nobody will answer what they were asked.
    pub fn detach(&mut self, turn: u64, out: &mut Subscribers) {
        if self.interactive_turn == Some(turn) {
            self.interactive_turn = None;
        }
        self.deny(
            |p| p.turn == Some(turn),
            "the user at the terminal left",
            out,
        );
    }

    /// When the oldest question runs out of time.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.asked_at + self.timeout).min()
    }

    /// Denies what nobody answered in time.
    pub fn expire(&mut self, out: &mut Subscribers) {
        let now = Instant::now();
        let timeout = self.timeout;
        let why = format!("no answer within {}", human(timeout));
        self.deny(|p| p.asked_at + timeout <= now, &why, out);
    }

    fn deny(&mut self, which: impl Fn(&Question) -> bool, why: &str, out: &mut Subscribers) {
        let (denied, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| which(p));
        self.pending = kept;
        for p in denied {
            out.warn(p.turn, format!("denied {}: {why}", p.request.tool()));
            p.request.deny(&format!("leash: {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::session::stub_request;
    use crate::eventlog::EventLog;

    fn out(dir: &std::path::Path) -> Subscribers {
        Subscribers::new(EventLog::open(dir, 1 << 20).unwrap())
    }

    fn logged(dir: &std::path::Path, out: &mut Subscribers) -> String {
        out.flush();
        std::fs::read_to_string(dir.join(crate::eventlog::LOG_FILE)).unwrap()
    }

    #[test]
    fn tools_on_the_allow_list_are_allowed_without_asking() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out(dir.path());
        let mut permissions =
            Permissions::new(vec!["Bash".into()], Vec::new(), Duration::from_secs(60));
        let (request, mut answered) = stub_request("Bash");
        permissions.ask(request, Some(1), &mut out);
        assert_eq!(answered().unwrap()["behavior"], "allow");
        assert!(logged(dir.path(), &mut out).contains("allowed Bash (allow-list)"));
    }

    #[test]
    fn with_nobody_to_ask_the_answer_is_no_and_says_how_to_allow() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out(dir.path());
        let mut permissions = Permissions::new(Vec::new(), Vec::new(), Duration::from_secs(60));
        permissions.turn_started(1, false);
        let (request, mut answered) = stub_request("Write");
        permissions.ask(request, Some(1), &mut out);
        let answer = answered().unwrap();
        assert_eq!(answer["behavior"], "deny");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("--allow-tool Write")
        );
        assert_eq!(permissions.deadline(), None, "nothing waits");
    }

    #[test]
    fn a_person_decides_and_always_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out(dir.path());
        let mut permissions = Permissions::new(Vec::new(), Vec::new(), Duration::from_secs(60));
        permissions.turn_started(4, true);
        let (request, mut answered) = stub_request("Bash");
        permissions.ask(request, Some(4), &mut out);
        assert!(answered().is_none(), "waits for the person");
        assert!(logged(dir.path(), &mut out).contains("permission_asked"));
        assert!(!permissions.decide("someone-else", decision(true, true), &mut out));
        assert!(permissions.decide("req-Bash", decision(true, true), &mut out));
        assert_eq!(answered().unwrap()["behavior"], "allow");
        assert_eq!(permissions.always_list(), ["Bash"]);
        let (again, mut answered) = stub_request("Bash");
        permissions.ask(again, Some(4), &mut out);
        assert_eq!(
            answered().unwrap()["behavior"],
            "allow",
            "always means always"
        );
    }

    #[test]
    fn a_person_who_leaves_or_does_not_answer_is_a_no() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out(dir.path());
        let mut permissions = Permissions::new(Vec::new(), Vec::new(), Duration::ZERO);
        permissions.turn_started(2, true);
        let (left, mut left_answer) = stub_request("Bash");
        permissions.ask(left, Some(2), &mut out);
        permissions.detach(2, &mut out);
        assert_eq!(left_answer().unwrap()["behavior"], "deny");
        permissions.turn_started(3, true);
        let (slow, mut slow_answer) = stub_request("Edit");
        permissions.ask(slow, Some(3), &mut out);
        assert!(permissions.deadline().is_some());
        permissions.expire(&mut out);
        let answer = slow_answer().unwrap();
        assert_eq!(answer["behavior"], "deny");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("no answer within")
        );
        assert_eq!(permissions.deadline(), None);
    }

    fn decision(allow: bool, always: bool) -> Decision {
        Decision {
            allow,
            always,
            message: None,
        }
    }
}

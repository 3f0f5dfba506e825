//! claude's requests to use a tool (`can_use_tool`, with `--permission-prompt-tool
//! stdio`). claude waits forever for an answer, so every request gets one: whoever
//! holds a [`ToolRequest`] allows or denies it, and one dropped unanswered is denied.

use std::collections::HashSet;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::claude::messages::control_response_line;

/// One request of claude's to use a tool, to allow or deny.
#[derive(Debug)]
pub struct ToolRequest {
    request_id: String,
    tool: String,
    input: Value,
    answers: mpsc::UnboundedSender<Answer>,
    answered: bool,
}

/// A decision on a request, on its way back to the session.
#[derive(Debug)]
pub(super) struct Answer {
    request_id: String,
    body: Value,
}

impl ToolRequest {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn tool(&self) -> &str {
        &self.tool
    }

    pub fn input(&self) -> &Value {
        &self.input
    }

    /// claude may use the tool, with the input it asked for.
    pub fn allow(mut self) {
        let input = std::mem::take(&mut self.input);
        self.answer(serde_json::json!({"behavior": "allow", "updatedInput": input}));
    }

    /// claude may not use the tool; `why` is told to it.
    pub fn deny(mut self, why: &str) {
        self.answer(serde_json::json!({"behavior": "deny", "message": why}));
    }

    fn answer(&mut self, body: Value) {
        self.answered = true;
        // The session is gone with its claude: nobody waits for the answer.
        let _ = self.answers.send(Answer {
            request_id: std::mem::take(&mut self.request_id),
            body,
        });
    }
}

impl Drop for ToolRequest {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(serde_json::json!({
                "behavior": "deny",
                "message": "leash: nobody answered this request",
            }));
        }
    }
}

/// The requests claude waits on, and where their answers arrive.
pub(super) struct UnansweredRequests {
    waiting: HashSet<String>,
    tx: mpsc::UnboundedSender<Answer>,
    rx: mpsc::UnboundedReceiver<Answer>,
}

impl UnansweredRequests {
    pub fn new() -> UnansweredRequests {
        let (tx, rx) = mpsc::unbounded_channel();
        UnansweredRequests {
            waiting: HashSet::new(),
            tx,
            rx,
        }
    }

    /// A request claude made, to hand to whoever decides.
    pub fn ask(&mut self, request_id: String, tool: String, input: Value) -> ToolRequest {
        self.waiting.insert(request_id.clone());
        ToolRequest {
            request_id,
            tool,
            input,
            answers: self.tx.clone(),
            answered: false,
        }
    }

    /// A person is deciding: claude is silent by design meanwhile.
    pub fn any(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The next answer, as the control response line claude reads; `None` for an
    /// answer to a request of a claude that is gone.
    pub async fn next(&mut self) -> Option<String> {
        let answer = self.rx.recv().await?;
        self.waiting
            .remove(&answer.request_id)
            .then(|| control_response_line(&answer.request_id, Ok(answer.body)))
    }

    /// claude stopped: what it asked is moot.
    pub fn forget(&mut self) {
        self.waiting.clear();
    }
}

/// A request as claude would make it, and what it was answered, for tests of whoever
/// decides.
#[cfg(test)]
pub fn stub_request(tool: &str) -> (ToolRequest, impl FnMut() -> Option<Value>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Answer>();
    let request = ToolRequest {
        request_id: format!("req-{tool}"),
        tool: tool.to_string(),
        input: serde_json::json!({"command": "ls"}),
        answers: tx,
        answered: false,
    };
    (request, move || {
        rx.try_recv().ok().map(|answer| answer.body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_is_answered_even_when_dropped() {
        let mut pending = UnansweredRequests::new();
        let allowed = pending.ask(
            "r1".into(),
            "Bash".into(),
            serde_json::json!({"command": "ls"}),
        );
        let dropped = pending.ask("r2".into(), "Write".into(), Value::Null);
        assert!(pending.any());
        allowed.allow();
        let line = pending.next().await.unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["response"]["request_id"], "r1");
        assert_eq!(value["response"]["response"]["behavior"], "allow");
        assert_eq!(
            value["response"]["response"]["updatedInput"]["command"],
            "ls"
        );
        drop(dropped);
        let line = pending.next().await.unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["response"]["response"]["behavior"], "deny");
        assert!(!pending.any());
    }

    #[tokio::test]
    async fn an_answer_for_a_claude_that_is_gone_is_dropped() {
        let mut pending = UnansweredRequests::new();
        let request = pending.ask("r1".into(), "Bash".into(), Value::Null);
        pending.forget();
        request.deny("no");
        assert_eq!(pending.next().await, None);
    }
}

//! Reading claude's stdout: every line is relayed untouched, and what the session must
//! know is taken in: the model and mode claude confirms, how full the conversation is,
//! compactions, what each turn cost, the provider's rate limits.

use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::super::context::{CompactionNews, Context};
use super::super::cost::CostMeter;
use super::super::limits::RateLimit;
use super::super::messages::{ResultMessage, StreamMessage, SystemMessage};
use super::{Conversation, Failure, FailureClass, SessionEvent, TurnEnd, TurnReport, View};
use crate::framing::peek_type;
use crate::time::now_ms;

/// Where the session reports: its events, in order, and its view.
pub(super) struct Reporter {
    events: mpsc::Sender<SessionEvent>,
    view: watch::Sender<View>,
}

impl Reporter {
    pub fn new(events: mpsc::Sender<SessionEvent>, view: watch::Sender<View>) -> Reporter {
        Reporter { events, view }
    }

    pub async fn send(&self, event: SessionEvent) {
        // The daemon reads until the session ends; a closed stream means it exits.
        let _ = self.events.send(event).await;
    }

    pub async fn info(&self, message: String) {
        self.send(SessionEvent::Info(message)).await;
    }

    pub async fn warn(&self, message: String) {
        self.send(SessionEvent::Warn(message)).await;
    }

    /// The view, made anew from what the session is now, when it changed.
    pub fn publish(&self, view: View) {
        self.view.send_if_modified(|current| {
            let changed = *current != view;
            if changed {
                *current = view;
            }
            changed
        });
    }
}

/// What the session knows from claude's lines.
#[derive(Default)]
pub(super) struct Reader {
    context: Context,
    cost: CostMeter,
    rate_limit: Option<RateLimit>,
    confirmed_model: Option<String>,
    confirmed_mode: Option<String>,
    /// When the running attempt began, Unix ms: a refusal reported since is its own.
    attempt_started: u64,
    /// A line changed the conversation's saved facts: the session publishes its view,
    /// then tells the daemon (which saves what the view shows).
    conversation_changed: bool,
}

impl Reader {
    /// Whether the lines read since the last ask changed the conversation.
    pub fn take_conversation_changed(&mut self) -> bool {
        std::mem::take(&mut self.conversation_changed)
    }

    /// Reports one stdout line, takes in what the session must know, and hands the
    /// parsed message back (`Other` for the assistant and user lines leash only
    /// relays); `None` for a malformed line.
    pub async fn read(
        &mut self,
        line: String,
        conversation: &mut Option<Conversation>,
        report: &Reporter,
    ) -> Option<StreamMessage> {
        let kind = peek_type(&line).map(|k| k.into_owned());
        let message = match kind.as_deref() {
            // Relayed, never inspected: reading their type is enough.
            Some("assistant" | "user" | "stream_event") => Ok(StreamMessage::Other),
            _ => StreamMessage::parse(&line),
        };
        let raw = serde_json::from_str::<&RawValue>(&line).map(|raw| raw.to_owned());
        let (Ok(message), Ok(raw)) = (message, raw) else {
            let preview: String = line.chars().take(200).collect();
            report
                .info(format!(
                    "claude wrote a malformed line ({} bytes), skipped: {preview}",
                    line.len()
                ))
                .await;
            return None;
        };
        report.send(SessionEvent::Line(raw)).await;
        if kind.as_deref() == Some("assistant") {
            // Kept (not parsed) until the turn's result needs its usage.
            self.context.saw_reply(line);
            return Some(message);
        }
        match &message {
            StreamMessage::System(system) if system.subtype == "init" => {
                self.on_init(system, conversation, report).await;
            }
            StreamMessage::System(system) => self.on_system(system, conversation, report).await,
            StreamMessage::Result(result) => self.on_result(result, conversation),
            StreamMessage::RateLimitEvent(event) => {
                let limit = RateLimit::from_info(&event.rate_limit_info, now_ms());
                self.rate_limit = Some(limit.clone());
                report.send(SessionEvent::RateLimit(limit)).await;
            }
            _ => {}
        }
        Some(message)
    }

    async fn on_init(
        &mut self,
        init: &SystemMessage,
        conversation: &mut Option<Conversation>,
        report: &Reporter,
    ) {
        if let Some(model) = &init.model {
            self.confirmed_model = Some(model.clone());
        }
        if let Some(mode) = &init.permission_mode {
            self.confirmed_mode = Some(mode.clone());
        }
        let Some(conversation) = conversation.as_mut() else {
            return;
        };
        let mut changed = false;
        if let Some(id) = &init.session_id
            && *id != conversation.session_id
        {
            let old = std::mem::replace(&mut conversation.session_id, id.clone());
            report
                .warn(format!("claude changed the session id from {old} to {id}"))
                .await;
            changed = true;
        }
        if !conversation.started {
            conversation.started = true;
            conversation.fork_of = None;
            changed = true;
        }
        self.conversation_changed |= changed;
    }

    /// A compaction starts, ends or fails.
    async fn on_system(
        &mut self,
        system: &SystemMessage,
        conversation: &mut Option<Conversation>,
        report: &Reporter,
    ) {
        let Some(news) = self.context.saw_system(system, now_ms()) else {
            return;
        };
        if let (CompactionNews::Done(compaction), Some(conversation)) =
            (&news, conversation.as_mut())
        {
            conversation.tally.compactions += 1;
            conversation.tally.context_tokens =
                compaction.post_tokens.or(conversation.tally.context_tokens);
            conversation.tally.last_compaction = Some(compaction.clone());
            self.conversation_changed = true;
        }
        report.send(SessionEvent::Compaction(news)).await;
    }

    /// A turn ended: what it cost, how full the conversation is now and how big the
    /// model's window is.
    fn on_result(&mut self, result: &ResultMessage, conversation: &mut Option<Conversation>) {
        let tokens = self.context.tokens_at_result();
        let window = result.context_window(self.confirmed_model.as_deref());
        self.context.saw_window(window);
        let Some(conversation) = conversation.as_mut() else {
            return;
        };
        self.cost.saw_result(
            result.total_cost_usd,
            result.own_cost(),
            conversation.tally.reported_cost_usd,
        );
        if result.total_cost_usd.is_some() {
            conversation.tally.reported_cost_usd = result.total_cost_usd;
        }
        if tokens.is_some() {
            conversation.tally.context_tokens = tokens;
        }
    }

    /// An attempt at a turn begins.
    pub fn turn_started(&mut self) {
        self.context.turn_started();
        self.attempt_started = now_ms();
    }

    /// How the attempt ended, with what it cost and what happened on the way.
    pub fn report(&mut self, end: TurnEnd) -> TurnReport {
        let started = self.attempt_started;
        TurnReport {
            dropped_prompt: matches!(end, TurnEnd::Answered(_)) && self.context.dropped_prompt(),
            end,
            cost_usd: self.cost.take(),
            compaction: self.context.take_turn_compaction(),
            rejected_by: self
                .rate_limit
                .clone()
                .filter(|limit| limit.rejected() && limit.ts >= started),
        }
    }

    /// Since when claude compacts, if it does.
    pub fn compacting_since(&self) -> Option<Instant> {
        self.context.compacting_since()
    }

    /// A new claude process: it confirms its mode again, and its running cost total
    /// starts anew.
    pub fn process_started(&mut self) {
        self.confirmed_mode = None;
        self.cost.process_started();
    }

    /// A compaction in a process that ended is over.
    pub fn process_ended(&mut self) {
        self.context.process_ended();
    }

    /// A new conversation: nothing known of its context yet.
    pub fn forget_context(&mut self) {
        self.context.forget();
    }

    /// A switch to another model: claude confirms it on its next init line.
    pub fn model_changed(&mut self) {
        self.confirmed_model = None;
    }

    /// What the view shows of what claude confirmed.
    pub fn view(&self, view: &mut View) {
        view.model.clone_from(&self.confirmed_model);
        view.permission_mode.clone_from(&self.confirmed_mode);
        view.context_window = self.context.window();
        view.rate_limit.clone_from(&self.rate_limit);
    }
}

/// How a turn's result is classified.
pub(super) fn classify(result: &ResultMessage) -> TurnEnd {
    if !result.is_error {
        return TurnEnd::Answered(result.result.clone());
    }
    let class = if result.is_interrupted() {
        FailureClass::Interrupted
    } else if result.is_overflow() {
        FailureClass::Overflow
    } else if result.is_provider_error() {
        FailureClass::Provider
    } else {
        FailureClass::Other
    };
    TurnEnd::Failed(Failure {
        class,
        text: result.result.clone(),
        api_error_status: result.api_error_status,
        reason: result.error_reason(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(line: &str) -> ResultMessage {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn results_are_classified_in_claudes_terms() {
        let answered = result(r#"{"subtype":"success","is_error":false,"result":"hi"}"#);
        assert_eq!(classify(&answered), TurnEnd::Answered(Some("hi".into())));
        let cases = [
            (
                r#"{"subtype":"error_during_execution","is_error":true,"terminal_reason":"aborted_streaming"}"#,
                FailureClass::Interrupted,
            ),
            (
                r#"{"subtype":"success","is_error":true,"api_error_status":400,"terminal_reason":"prompt_too_long","result":"Prompt is too long"}"#,
                FailureClass::Overflow,
            ),
            (
                r#"{"subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: 529 Overloaded"}"#,
                FailureClass::Provider,
            ),
            (
                r#"{"subtype":"error_max_turns","is_error":true}"#,
                FailureClass::Other,
            ),
        ];
        for (line, class) in cases {
            let TurnEnd::Failed(failure) = classify(&result(line)) else {
                panic!("{line}")
            };
            assert_eq!(failure.class, class, "{line}");
        }
    }
}

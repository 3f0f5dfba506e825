//! How full the conversation is, and what claude does about it: the size of the
//! context after each turn (the usage of claude's last main-thread message), the
//! model's window (the `contextWindow` of the model in the result's `modelUsage`,
//! which 2.1.110 and 2.1.332 both report; `get_context_usage` would cost 2.1.110
//! sixteen count-tokens requests each time), and compactions as claude reports them.

use tokio::time::Instant;

use super::conversation::Compaction;
use super::messages::{AssistantUsage, SystemMessage};

/// A compaction, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum CompactionNews {
    Started,
    Done(Compaction),
    Failed(String),
}

#[derive(Default)]
pub(super) struct Context {
    /// claude's last main-thread assistant line this turn, read for its usage when
    /// the turn ends (its content is never parsed).
    last_main_reply: Option<String>,
    window: Option<u64>,
    compacting_since: Option<Instant>,
    /// How a compaction in the running turn ended.
    turn_compaction: Option<CompactionNews>,
    /// claude compacted by itself at the start of the running turn and kept nothing
    /// after the summary: the turn's prompt never reached the model.
    dropped_prompt: bool,
}

/// Sub-agents' messages carry the id of the tool call that started them.
const MAIN_THREAD: &str = r#""parent_tool_use_id":null"#;

impl Context {
    /// A turn begins.
    pub fn turn_started(&mut self) {
        self.last_main_reply = None;
        self.turn_compaction = None;
        self.dropped_prompt = false;
    }

    /// An assistant line; kept when it is the main thread's.
    pub fn saw_reply(&mut self, line: String) {
        if line.contains(MAIN_THREAD) {
            self.last_main_reply = Some(line);
        }
    }

    /// The context's size at the end of a turn, when claude reported it.
    pub fn tokens_at_result(&mut self) -> Option<u64> {
        let line = self.last_main_reply.take()?;
        let reply: AssistantUsage = serde_json::from_str(&line).ok()?;
        reply.message.usage.map(|u| u.context_tokens())
    }

    /// What a `system` line says of a compaction, if anything.
    pub fn saw_system(&mut self, system: &SystemMessage, now_ms: u64) -> Option<CompactionNews> {
        let news = match system.subtype.as_str() {
            "status" if system.status.as_deref() == Some("compacting") => {
                // claude repeats it while it waits for the summary.
                if self.compacting_since.is_some() {
                    return None;
                }
                self.compacting_since = Some(Instant::now());
                CompactionNews::Started
            }
            "status" if system.compact_result.as_deref() == Some("failed") => {
                self.compacting_since = None;
                CompactionNews::Failed(
                    system
                        .compact_error
                        .clone()
                        .unwrap_or_else(|| "no reason given".to_string()),
                )
            }
            "compact_boundary" => {
                self.compacting_since = None;
                let meta = system.compact_metadata.as_ref();
                self.dropped_prompt =
                    meta.is_some_and(|m| m.trigger == "auto" && m.preserved_segment.is_none());
                CompactionNews::Done(Compaction {
                    trigger: meta.map_or_else(|| "auto".to_string(), |m| m.trigger.clone()),
                    pre_tokens: meta.and_then(|m| m.pre_tokens),
                    post_tokens: meta.and_then(|m| m.post_tokens),
                    ts: now_ms,
                })
            }
            _ => return None,
        };
        if !matches!(news, CompactionNews::Started) {
            self.turn_compaction = Some(news.clone());
        }
        Some(news)
    }

    /// Since when claude compacts, if it does.
    pub fn compacting_since(&self) -> Option<Instant> {
        self.compacting_since
    }

    /// The running turn's prompt was dropped by claude's own compaction.
    pub fn dropped_prompt(&self) -> bool {
        self.dropped_prompt
    }

    /// How a compaction in the turn that just ended came out.
    pub fn take_turn_compaction(&mut self) -> Option<CompactionNews> {
        self.turn_compaction.take()
    }

    /// The model's window, when claude told it.
    pub fn window(&self) -> Option<u64> {
        self.window
    }

    /// The window of the model a result reported, when it did.
    pub fn saw_window(&mut self, window: Option<u64>) {
        if window.is_some() {
            self.window = window;
        }
    }

    /// A compaction in a process that ended is over.
    pub fn process_ended(&mut self) {
        self.compacting_since = None;
    }

    /// A new conversation: nothing known of its context yet.
    pub fn forget(&mut self) {
        *self = Context::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(line: &str) -> SystemMessage {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn the_context_is_the_last_main_thread_usage() {
        let mut context = Context::default();
        context.turn_started();
        context.saw_reply(
            r#"{"type":"assistant","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":500,"cache_creation_input_tokens":200,"output_tokens":5}},"parent_tool_use_id":null}"#.into(),
        );
        // A sub-agent's message is not the conversation's size.
        context.saw_reply(
            r#"{"type":"assistant","message":{"usage":{"input_tokens":99999}},"parent_tool_use_id":"toolu_1"}"#.into(),
        );
        assert_eq!(context.tokens_at_result(), Some(710));
        assert_eq!(context.tokens_at_result(), None, "read once");
    }

    #[test]
    fn compactions_start_end_and_fail() {
        let mut context = Context::default();
        let compacting = system(r#"{"subtype":"status","status":"compacting"}"#);
        assert_eq!(
            context.saw_system(&compacting, 1),
            Some(CompactionNews::Started)
        );
        assert!(context.compacting_since().is_some());
        assert_eq!(context.saw_system(&compacting, 2), None, "a heartbeat");
        let done = system(
            r#"{"subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":995000,"post_tokens":3000}}"#,
        );
        let Some(CompactionNews::Done(c)) = context.saw_system(&done, 3) else {
            panic!()
        };
        assert_eq!(
            (c.trigger.as_str(), c.pre_tokens, c.post_tokens),
            ("auto", Some(995_000), Some(3_000))
        );
        assert!(context.compacting_since().is_none());
        assert!(matches!(
            context.take_turn_compaction(),
            Some(CompactionNews::Done(_))
        ));
        let failed = system(
            r#"{"subtype":"status","status":null,"compact_result":"failed","compact_error":"exhausted"}"#,
        );
        assert_eq!(
            context.saw_system(&failed, 4),
            Some(CompactionNews::Failed("exhausted".into()))
        );
    }

    #[test]
    fn an_auto_compaction_that_keeps_nothing_dropped_the_prompt() {
        let mut context = Context::default();
        context.turn_started();
        let old = system(
            r#"{"subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":195004,"post_tokens":180}}"#,
        );
        context.saw_system(&old, 1);
        assert!(context.dropped_prompt(), "claude 2.1.110 to 2.1.152");
        context.turn_started();
        assert!(!context.dropped_prompt());
        let new = system(
            r#"{"subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":995053,"post_tokens":2608,"preserved_segment":{"head_uuid":"a","anchor_uuid":"b","tail_uuid":"a"}}}"#,
        );
        context.saw_system(&new, 2);
        assert!(!context.dropped_prompt(), "2.1.153 and later keep it");
        let manual = system(
            r#"{"subtype":"compact_boundary","compact_metadata":{"trigger":"manual","pre_tokens":150050,"post_tokens":2604}}"#,
        );
        context.saw_system(&manual, 3);
        assert!(
            !context.dropped_prompt(),
            "a compaction asked for has no prompt"
        );
    }

    #[test]
    fn the_window_is_kept_until_a_result_says_otherwise() {
        let mut context = Context::default();
        context.saw_window(Some(1_000_000));
        context.saw_window(None);
        assert_eq!(context.window(), Some(1_000_000));
        context.saw_window(Some(200_000));
        assert_eq!(context.window(), Some(200_000));
    }
}

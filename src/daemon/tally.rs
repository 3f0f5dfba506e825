//! What the daemon counts of the session beyond what the session shows: the turns of
//! the conversation and what they cost, the latest prompts (for a hand-off), and how
//! long leash waits for a rate limit.

use std::collections::VecDeque;

use crate::record::SessionRecord;
use crate::turn::TurnKind;

/// Prompts a hand-off repeats, at most, and how much of each.
const RECENT_PROMPTS: usize = 4;
const PROMPT_KEPT: usize = 4_000;

#[derive(Debug, Default)]
pub struct Tally {
    /// The last turn or step id handed out: ids are never reused within a worker's life.
    last_id: u64,
    turns: u64,
    cost_usd: f64,
    /// Until when (Unix ms) leash waits for a rate limit to reset.
    rate_limited_until: Option<u64>,
    recent_prompts: VecDeque<String>,
}

impl Tally {
    /// The tallies a worker's record kept.
    pub fn from_record(record: Option<&SessionRecord>) -> Tally {
        record.map_or_else(Tally::default, |r| Tally {
            last_id: r.last_turn,
            turns: r.turns,
            cost_usd: r.cost_usd,
            ..Tally::default()
        })
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// The id of a new turn or step.
    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// A new conversation: its tallies begin at nothing (its ids go on).
    pub fn reset(&mut self) {
        self.turns = 0;
        self.cost_usd = 0.0;
    }

    /// A prompt goes to claude; a compaction's is no prompt worth repeating.
    pub fn prompt_sent(&mut self, kind: TurnKind, prompt: &str) {
        if kind == TurnKind::Compact {
            return;
        }
        if self.recent_prompts.len() == RECENT_PROMPTS {
            self.recent_prompts.pop_front();
        }
        self.recent_prompts
            .push_back(prompt.chars().take(PROMPT_KEPT).collect());
    }

    /// The prompts before the latest one, oldest first.
    pub fn earlier_prompts(&self) -> Vec<String> {
        let n = self.recent_prompts.len().saturating_sub(1);
        self.recent_prompts.iter().take(n).cloned().collect()
    }

    /// The latest prompt was refused with its conversation: no later conversation
    /// hears of it.
    pub fn forget_latest_prompt(&mut self) {
        self.recent_prompts.pop_back();
    }

    pub fn turn_ended(&mut self, cost_usd: Option<f64>) {
        self.turns += 1;
        self.cost_usd += cost_usd.unwrap_or(0.0);
    }

    pub fn set_rate_limited_until(&mut self, until: Option<u64>) {
        self.rate_limited_until = until;
    }

    pub fn turns(&self) -> u64 {
        self.turns
    }

    pub fn cost_usd(&self) -> f64 {
        self.cost_usd
    }

    pub fn rate_limited_until(&self) -> Option<u64> {
        self.rate_limited_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_on_from_the_workers_last() {
        let record = SessionRecord {
            last_turn: 7,
            ..SessionRecord::new(crate::claude::conversation::Conversation::new(
                "w",
                std::path::PathBuf::from("/tmp"),
                std::path::PathBuf::from("claude"),
                String::new(),
            ))
        };
        let mut tally = Tally::from_record(Some(&record));
        assert_eq!(tally.next_id(), 8, "ids go on from the worker's last");
        tally.reset();
        assert_eq!(tally.next_id(), 9, "a new conversation reuses no id");
        assert_eq!(tally.last_id(), 9);
    }

    #[test]
    fn a_hand_off_repeats_the_latest_prompts_before_the_failing_one() {
        let mut tally = Tally::default();
        for i in 0..6 {
            tally.prompt_sent(TurnKind::User, &format!("p{i}"));
        }
        tally.prompt_sent(TurnKind::Compact, "/compact");
        assert_eq!(tally.earlier_prompts(), ["p2", "p3", "p4"]);
        tally.prompt_sent(TurnKind::User, &"x".repeat(10_000));
        assert_eq!(tally.earlier_prompts().last().unwrap(), "p5");
        tally.forget_latest_prompt();
        tally.prompt_sent(TurnKind::User, "next");
        assert_eq!(tally.earlier_prompts(), ["p3", "p4", "p5"]);
    }

    #[test]
    fn turns_and_cost_add_up_until_a_new_conversation() {
        let mut tally = Tally::default();
        tally.turn_ended(Some(0.25));
        tally.turn_ended(None);
        assert_eq!((tally.turns(), tally.cost_usd()), (2, 0.25));
        tally.reset();
        assert_eq!((tally.turns(), tally.cost_usd()), (0, 0.0));
    }
}

//! How often and how patiently something is tried again: leash's re-sends of a turn
//! after provider errors, and the pause between nudges.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// The longest wait for a rate limit to reset, when claude said when it does.
    #[serde(default)]
    pub max_wait_ms: u64,
}

impl RetryPolicy {
    /// Never retries.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_retries: 0,
        base_delay_ms: 0,
        max_delay_ms: 0,
        max_wait_ms: 0,
    };

    /// Exponential backoff with full jitter over the upper half, so workers that hit
    /// the same rate limit do not retry in lockstep.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms);
        exp / 2 + fastrand::u64(0..=exp / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            max_wait_ms: 0,
        };
        for attempt in 0..30 {
            let d = policy.delay_ms(attempt);
            let cap = (100u64 << attempt.min(20)).min(1_000);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d}");
        }
    }
}

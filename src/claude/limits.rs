//! The provider's rate limits as claude reports them: a `rate_limit_event` line
//! whenever what the API's `anthropic-ratelimit-unified-*` headers say changes (only
//! with subscription or gateway auth; an API key never gets them). Measured shape:
//! `{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning",
//! "resetsAt":1795634672,"rateLimitType":"five_hour","utilization":0.92,
//! "unifiedWindows":{"five_hour":{"utilization":0.92,"resetsAt":...}}}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `rate_limit_info`, as claude writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitInfo {
    pub status: Option<String>,
    /// Unix seconds.
    pub resets_at: Option<u64>,
    pub rate_limit_type: Option<String>,
    /// 0 to 1; set at the top level only for a warning.
    pub utilization: Option<f64>,
    #[serde(default)]
    pub unified_windows: BTreeMap<String, WindowInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowInfo {
    pub utilization: Option<f64>,
    pub resets_at: Option<u64>,
}

/// The rate limit claude reported last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RateLimit {
    /// `allowed`, `allowed_warning` or `rejected`.
    pub status: String,
    /// The window that limits: `five_hour`, `seven_day`, ...
    pub window: Option<String>,
    /// How much of the window is used, from 0 to 1.
    pub utilization: Option<f64>,
    /// When the window resets, Unix milliseconds.
    pub resets_at: Option<u64>,
    /// When claude reported it, Unix milliseconds.
    pub ts: u64,
}

impl RateLimit {
    pub fn from_info(info: &RateLimitInfo, now_ms: u64) -> RateLimit {
        let window = info.rate_limit_type.clone();
        let of_window = window.as_ref().and_then(|w| info.unified_windows.get(w));
        RateLimit {
            status: info.status.clone().unwrap_or_else(|| "allowed".to_string()),
            utilization: info
                .utilization
                .or_else(|| of_window.and_then(|w| w.utilization)),
            resets_at: info
                .resets_at
                .or_else(|| of_window.and_then(|w| w.resets_at))
                .map(|secs| secs.saturating_mul(1000)),
            window,
            ts: now_ms,
        }
    }

    /// The API refuses requests until the window resets.
    pub fn rejected(&self) -> bool {
        self.status == "rejected"
    }

    /// `rate limit: 5-hour window at 92%, resets 14:00` (`reached` when refused).
    pub fn describe(&self) -> String {
        let window = self.window.as_deref().map_or_else(
            || "rate limit".to_string(),
            |w| format!("{} window", window_name(w)),
        );
        let usage = match (self.rejected(), self.utilization) {
            (true, _) => " reached".to_string(),
            (false, Some(u)) => format!(" at {:.0}%", u * 100.0),
            (false, None) => String::new(),
        };
        let resets = self
            .resets_at
            .map(|ms| format!(", resets {}", crate::human::clock(ms)))
            .unwrap_or_default();
        format!("rate limit: {window}{usage}{resets}")
    }
}

/// `five_hour` -> `5-hour`.
fn window_name(window: &str) -> String {
    match window {
        "five_hour" => "5-hour".to_string(),
        "seven_day" => "7-day".to_string(),
        "seven_day_opus" => "7-day Opus".to_string(),
        "seven_day_sonnet" => "7-day Sonnet".to_string(),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(line: &str) -> RateLimitInfo {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_warning_names_its_window_use_and_reset() {
        let limit = RateLimit::from_info(
            &info(
                r#"{"status":"allowed_warning","resetsAt":1795634672,"rateLimitType":"five_hour","utilization":0.92,"isUsingOverage":false,"surpassedThreshold":0.9,"unifiedWindows":{"five_hour":{"utilization":0.92,"resetsAt":1795634672,"surpassedThreshold":0.9},"seven_day":{"utilization":0.2,"resetsAt":1795890272}}}"#,
            ),
            7,
        );
        assert_eq!(limit.window.as_deref(), Some("five_hour"));
        assert_eq!(limit.utilization, Some(0.92));
        assert_eq!(limit.resets_at, Some(1_795_634_672_000));
        assert_eq!(limit.ts, 7);
        let text = limit.describe();
        assert!(
            text.starts_with("rate limit: 5-hour window at 92%, resets "),
            "{text}"
        );
    }

    #[test]
    fn the_windows_use_is_read_when_only_the_window_has_it() {
        let limit = RateLimit::from_info(
            &info(
                r#"{"status":"rejected","resetsAt":1795634679,"rateLimitType":"five_hour","unifiedWindows":{"five_hour":{"utilization":1,"resetsAt":1795634679}}}"#,
            ),
            0,
        );
        assert!(limit.rejected());
        assert_eq!(limit.utilization, Some(1.0));
        assert!(
            limit
                .describe()
                .starts_with("rate limit: 5-hour window reached, resets")
        );
        let bare = RateLimit::from_info(&info(r#"{"status":"allowed","isUsingOverage":false}"#), 0);
        assert_eq!(bare.describe(), "rate limit: rate limit");
    }
}

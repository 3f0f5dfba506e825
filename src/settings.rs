//! The daemon's timing and size bounds. Every wait in the daemon has one of these as
//! its bound; all can be tuned with environment variables (tests shorten them).

use std::time::Duration;

use crate::error::Error;
use crate::eventlog::DEFAULT_MAX_BYTES;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Stop the daemon after this long with no client and no turn (0 = never).
    pub idle_timeout: Duration,
    /// Interrupt a turn whose claude wrote nothing for this long.
    pub silence_timeout: Duration,
    /// Wait this long for claude to answer `initialize` after a spawn.
    pub init_timeout: Duration,
    /// Wait this long for other control answers (`set_model`, ...) before respawning.
    pub control_timeout: Duration,
    /// After an interrupt, wait this long for the turn's result, then kill claude.
    pub interrupt_grace: Duration,
    /// Each step of stopping claude (stdin closed, SIGTERM, SIGKILL) waits this long.
    pub stop_grace: Duration,
    /// Give up on claude after this many crashes in a row.
    pub max_crashes: u32,
    /// First delay before respawning a crashed claude; doubles per crash.
    pub crash_backoff: Duration,
    pub log_max_bytes: u64,
    /// Turns waiting behind the running one; more are refused as busy.
    pub max_queue: usize,
    /// A client must say hello and make its request within this time.
    pub client_timeout: Duration,
    /// Bytes of events a client may fall behind before it is dropped.
    pub client_buffer: usize,
    /// How long a tool request waits for the person at the terminal before it is denied.
    pub permission_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            idle_timeout: Duration::from_secs(30 * 60),
            silence_timeout: Duration::from_secs(30 * 60),
            init_timeout: Duration::from_secs(60),
            control_timeout: Duration::from_secs(10),
            interrupt_grace: Duration::from_secs(10),
            stop_grace: Duration::from_secs(3),
            max_crashes: 5,
            crash_backoff: Duration::from_secs(1),
            log_max_bytes: DEFAULT_MAX_BYTES,
            max_queue: 256,
            client_timeout: Duration::from_secs(10),
            client_buffer: 32 << 20,
            permission_timeout: Duration::from_secs(600),
        }
    }
}

/// `(variable, what it sets)`, for `--help` and the README.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "LEASH_IDLE_TIMEOUT",
        "stop an unused daemon after this long (default 30m; 0 = never)",
    ),
    (
        "LEASH_SILENCE_TIMEOUT",
        "interrupt a turn silent for this long (default 30m)",
    ),
    (
        "LEASH_INIT_TIMEOUT",
        "wait for claude to answer initialize (default 60s)",
    ),
    (
        "LEASH_CONTROL_TIMEOUT",
        "wait for set_model and similar answers before respawning (default 10s)",
    ),
    (
        "LEASH_INTERRUPT_GRACE",
        "wait for an interrupted turn to end before killing claude (default 10s)",
    ),
    (
        "LEASH_STOP_GRACE",
        "each step of stopping claude (default 3s)",
    ),
    (
        "LEASH_MAX_CRASHES",
        "crashes in a row before leash gives up on claude (default 5)",
    ),
    (
        "LEASH_CRASH_BACKOFF",
        "first respawn delay after a crash, doubling (default 1s)",
    ),
    (
        "LEASH_LOG_MAX_BYTES",
        "rotate the event log at this size (default 64 MiB)",
    ),
    (
        "LEASH_CLIENT_TIMEOUT",
        "drop a client that sends no request for this long (default 10s)",
    ),
    (
        "LEASH_PERMISSION_TIMEOUT",
        "deny a tool request nobody answered for this long (default 10m)",
    ),
    (
        "LEASH_CLIENT_BUFFER",
        "bytes of events a client may fall behind before it is dropped (default 32 MiB)",
    ),
];

impl Settings {
    pub fn from_env() -> Result<Settings, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let mut s = Settings::default();
        let duration = |name: &str, slot: &mut Duration| -> Result<(), Error> {
            if let Some(value) = lookup(name) {
                *slot = parse_duration(&value).ok_or_else(|| {
                    Error::usage(format!(
                        "{name}={value:?} is not a duration; use e.g. 30s, 500ms, 10m, 2h"
                    ))
                })?;
            }
            Ok(())
        };
        duration("LEASH_IDLE_TIMEOUT", &mut s.idle_timeout)?;
        duration("LEASH_SILENCE_TIMEOUT", &mut s.silence_timeout)?;
        duration("LEASH_INIT_TIMEOUT", &mut s.init_timeout)?;
        duration("LEASH_CONTROL_TIMEOUT", &mut s.control_timeout)?;
        duration("LEASH_INTERRUPT_GRACE", &mut s.interrupt_grace)?;
        duration("LEASH_STOP_GRACE", &mut s.stop_grace)?;
        duration("LEASH_CRASH_BACKOFF", &mut s.crash_backoff)?;
        duration("LEASH_CLIENT_TIMEOUT", &mut s.client_timeout)?;
        duration("LEASH_PERMISSION_TIMEOUT", &mut s.permission_timeout)?;
        if let Some(value) = lookup("LEASH_MAX_CRASHES") {
            s.max_crashes = value.trim().parse().map_err(|_| {
                Error::usage(format!("LEASH_MAX_CRASHES={value:?} is not a whole number"))
            })?;
        }
        if let Some(value) = lookup("LEASH_CLIENT_BUFFER") {
            s.client_buffer = value.trim().parse().map_err(|_| {
                Error::usage(format!("LEASH_CLIENT_BUFFER={value:?} is not a byte count"))
            })?;
        }
        if let Some(value) = lookup("LEASH_LOG_MAX_BYTES") {
            s.log_max_bytes = value.trim().parse().map_err(|_| {
                Error::usage(format!("LEASH_LOG_MAX_BYTES={value:?} is not a byte count"))
            })?;
        }
        Ok(s)
    }
}

/// Parses `90`, `90s`, `1.5s`, `250ms`, `10m`, `2h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "x", "-1", "5 years", "1e400"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_environment_values_are_usage_errors() {
        let err = Settings::from_lookup(|n| (n == "LEASH_STOP_GRACE").then(|| "soon".into()))
            .unwrap_err();
        assert!(err.message.contains("LEASH_STOP_GRACE"), "{err}");
    }
}

//! The worker's settings and where each comes from. Later layers win:
//! built-in default < environment variable < command-line flag.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::protocol::RetryPolicy;
use crate::settings::parse_duration;
use crate::worker::WorkerConfig;

/// One setting: its key, its environment variable, what it does, its default.
pub struct Key {
    pub name: &'static str,
    pub env: &'static str,
    pub help: &'static str,
    pub default: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "plan_model",
        env: "LEASH_PLAN_MODEL",
        help: "model for planning turns",
        default: "opus",
    },
    Key {
        name: "implement_model",
        env: "LEASH_IMPLEMENT_MODEL",
        help: "model for implementing and nudge turns",
        default: "sonnet",
    },
    Key {
        name: "plan_permission_mode",
        env: "LEASH_PLAN_PERMISSION_MODE",
        help: "claude's permission mode while planning (read-only)",
        default: "plan",
    },
    Key {
        name: "implement_permission_mode",
        env: "LEASH_IMPLEMENT_PERMISSION_MODE",
        help: "claude's permission mode while implementing",
        default: "acceptEdits",
    },
    Key {
        name: "allowed_tools",
        env: "LEASH_ALLOWED_TOOLS",
        help: "tools allowed while implementing, comma-separated (claude's --allowedTools)",
        default: "Bash(git:*)",
    },
    Key {
        name: "max_nudges",
        env: "LEASH_MAX_NUDGES",
        help: "nudges per implement phase before giving up",
        default: "5",
    },
    Key {
        name: "nudge_backoff",
        env: "LEASH_NUDGE_BACKOFF",
        help: "pause before the second nudge, doubling after",
        default: "5s",
    },
    Key {
        name: "nudge_backoff_max",
        env: "LEASH_NUDGE_BACKOFF_MAX",
        help: "longest pause between nudges",
        default: "2m",
    },
    Key {
        name: "provider_retries",
        env: "LEASH_PROVIDER_RETRIES",
        help: "re-sends of a turn after provider errors (429/529/5xx)",
        default: "3",
    },
    Key {
        name: "provider_backoff",
        env: "LEASH_PROVIDER_BACKOFF",
        help: "pause before the first provider retry, doubling after",
        default: "5s",
    },
    Key {
        name: "provider_backoff_max",
        env: "LEASH_PROVIDER_BACKOFF_MAX",
        help: "longest pause between provider retries",
        default: "60s",
    },
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Default,
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Flag => f.write_str("flag"),
        }
    }
}

/// Every setting's effective value (as text) and where it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Resolved {
    /// Resolves every key from the environment (`env`) and the flags given for this
    /// command (`flags`: key name and value).
    pub fn resolve(env: impl Fn(&str) -> Option<String>, flags: &[(&str, String)]) -> Resolved {
        let values = KEYS
            .iter()
            .map(|key| {
                let flag = flags.iter().find(|(name, _)| *name == key.name);
                let value = match (flag, env(key.env).filter(|v| !v.trim().is_empty())) {
                    (Some((_, value)), _) => (value.clone(), Source::Flag),
                    (None, Some(value)) => (value, Source::Env(key.env.to_string())),
                    (None, None) => (key.default.to_string(), Source::Default),
                };
                (key.name, value)
            })
            .collect();
        Resolved { values }
    }

    pub fn from_process(flags: &[(&str, String)]) -> Resolved {
        Self::resolve(|name| std::env::var(name).ok(), flags)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str, &Source)> {
        self.values.iter().map(|(k, (v, s))| (*k, v.as_str(), s))
    }

    fn text(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |(v, _)| v.as_str())
    }

    fn bad(&self, key: &str, what: &str) -> Error {
        let (value, source) = &self.values[key];
        Error::usage(format!("{key} = {value:?} (from {source}) is not {what}"))
    }

    fn number(&self, key: &str) -> Result<u32, Error> {
        self.text(key)
            .trim()
            .parse()
            .map_err(|_| self.bad(key, "a whole number"))
    }

    fn millis(&self, key: &str) -> Result<u64, Error> {
        parse_duration(self.text(key))
            .map(|d| d.as_millis() as u64)
            .ok_or_else(|| self.bad(key, "a duration such as 5s, 500ms or 2m"))
    }

    fn word(&self, key: &str) -> Result<String, Error> {
        let value = self.text(key).trim();
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(self.bad(key, "a single word"));
        }
        Ok(value.to_string())
    }

    pub fn worker_config(&self) -> Result<WorkerConfig, Error> {
        Ok(WorkerConfig {
            plan_model: self.word("plan_model")?,
            implement_model: self.word("implement_model")?,
            plan_permission_mode: self.word("plan_permission_mode")?,
            implement_permission_mode: self.word("implement_permission_mode")?,
            allowed_tools: self
                .text("allowed_tools")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            max_nudges: self.number("max_nudges")?,
            nudge_backoff_ms: self.millis("nudge_backoff")?,
            nudge_backoff_max_ms: self.millis("nudge_backoff_max")?,
            retry: RetryPolicy {
                max_retries: self.number("provider_retries")?,
                base_delay_ms: self.millis("provider_backoff")?,
                max_delay_ms: self.millis("provider_backoff_max")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_defaults() {
        let env = |name: &str| match name {
            "LEASH_PLAN_MODEL" => Some("haiku".to_string()),
            "LEASH_MAX_NUDGES" => Some("9".to_string()),
            _ => None,
        };
        let resolved = Resolved::resolve(env, &[("max_nudges", "2".to_string())]);
        let config = resolved.worker_config().unwrap();
        assert_eq!(config.plan_model, "haiku");
        assert_eq!(config.max_nudges, 2);
        assert_eq!(config.implement_model, "sonnet");
        let sources: BTreeMap<_, _> = resolved.entries().map(|(k, _, s)| (k, s.clone())).collect();
        assert_eq!(
            sources["plan_model"],
            Source::Env("LEASH_PLAN_MODEL".into())
        );
        assert_eq!(sources["max_nudges"], Source::Flag);
        assert_eq!(sources["implement_model"], Source::Default);
    }

    #[test]
    fn defaults_match_the_worker_defaults() {
        let config = Resolved::resolve(|_| None, &[]).worker_config().unwrap();
        assert_eq!(config, WorkerConfig::default());
    }

    #[test]
    fn bad_values_name_their_source() {
        let env = |name: &str| (name == "LEASH_NUDGE_BACKOFF").then(|| "soon".to_string());
        let err = Resolved::resolve(env, &[]).worker_config().unwrap_err();
        assert!(
            err.message.contains("nudge_backoff") && err.message.contains("LEASH_NUDGE_BACKOFF"),
            "{err}"
        );
    }
}

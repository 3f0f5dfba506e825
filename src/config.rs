//! leash's settings and where each comes from. Later layers win: built-in default <
//! `.leash.toml` at the repository root < environment variable < command-line flag.
//! `leash config` shows the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// The per-repository config file, at the repository root.
pub const CONFIG_FILE: &str = ".leash.toml";

pub const KEYS: &[Key] = &[
    Key {
        name: "model",
        env: "LEASH_MODEL",
        help: "model of a session started without --model (`leash session`)",
        default: "sonnet",
    },
    Key {
        name: "permission_allow",
        env: "LEASH_PERMISSION_ALLOW",
        help: "tools approved when no one is attached to approve, comma-separated; others are denied",
        default: "",
    },
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
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
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
    /// Resolves every key from the config file, the environment (`env`) and the flags
    /// given for this command (`flags`: key name and value).
    pub fn resolve(
        file: Option<&ConfigFile>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&str, String)],
    ) -> Resolved {
        let values = KEYS
            .iter()
            .map(|key| {
                let flag = flags.iter().find(|(name, _)| *name == key.name);
                let from_file = file.and_then(|f| f.values.get(key.name).map(|v| (v, &f.path)));
                let value = match (
                    flag,
                    env(key.env).filter(|v| !v.trim().is_empty()),
                    from_file,
                ) {
                    (Some((_, value)), _, _) => (value.clone(), Source::Flag),
                    (None, Some(value), _) => (value, Source::Env(key.env.to_string())),
                    (None, None, Some((value, path))) => {
                        (value.clone(), Source::File(path.clone()))
                    }
                    (None, None, None) => (key.default.to_string(), Source::Default),
                };
                (key.name, value)
            })
            .collect();
        Resolved { values }
    }

    /// The settings for a command run in `dir`: its repository's `.leash.toml`, this
    /// process's environment, and `flags`.
    pub fn load(dir: &Path, flags: &[(&str, String)]) -> Result<Resolved, Error> {
        let file = ConfigFile::find(dir)?;
        Ok(Self::resolve(
            file.as_ref(),
            |name| std::env::var(name).ok(),
            flags,
        ))
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

    /// The model for sessions started without `--model`.
    pub fn session_model(&self) -> Result<String, Error> {
        self.word("model")
    }

    /// Tools approved by policy when no one is attached to approve.
    pub fn permission_allow(&self) -> Vec<String> {
        self.list("permission_allow")
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.text(key)
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn worker_config(&self) -> Result<WorkerConfig, Error> {
        Ok(WorkerConfig {
            plan_model: self.word("plan_model")?,
            implement_model: self.word("implement_model")?,
            plan_permission_mode: self.word("plan_permission_mode")?,
            implement_permission_mode: self.word("implement_permission_mode")?,
            allowed_tools: self.list("allowed_tools"),
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

/// `.leash.toml`, its values as text (lists joined with commas).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    values: BTreeMap<String, String>,
}

impl ConfigFile {
    /// The config file of the repository around `dir`, if it has one.
    pub fn find(dir: &Path) -> Result<Option<ConfigFile>, Error> {
        let path = crate::paths::project_root(dir).join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, Error> {
        let bad = |what: String| Error::usage(format!("{}: {what}", path.display()));
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            if !KEYS.iter().any(|k| k.name == key) {
                let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
                return Err(bad(format!(
                    "unknown key {key:?} (known: {})",
                    known.join(", ")
                )));
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("{key} must be a list of strings")))?
                    .join(","),
                other => {
                    return Err(bad(format!(
                        "{key} is a {}; use a string, a number or a list of strings",
                        other.type_str()
                    )));
                }
            };
            values.insert(key, text);
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
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
        let resolved = Resolved::resolve(None, env, &[("max_nudges", "2".to_string())]);
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
        let config = Resolved::resolve(None, |_| None, &[])
            .worker_config()
            .unwrap();
        assert_eq!(config, WorkerConfig::default());
    }

    #[test]
    fn bad_values_name_their_source() {
        let env = |name: &str| (name == "LEASH_NUDGE_BACKOFF").then(|| "soon".to_string());
        let err = Resolved::resolve(None, env, &[])
            .worker_config()
            .unwrap_err();
        assert!(
            err.message.contains("nudge_backoff") && err.message.contains("LEASH_NUDGE_BACKOFF"),
            "{err}"
        );
    }

    #[test]
    fn the_file_sits_between_defaults_and_the_environment() {
        let file = ConfigFile::parse(
            Path::new(".leash.toml"),
            "implement_model = \"haiku\"\nmax_nudges = 2\nallowed_tools = [\"Bash\", \"Read\"]\nplan_model = \"sonnet\"\n",
        )
        .unwrap();
        let env = |name: &str| (name == "LEASH_PLAN_MODEL").then(|| "opus".to_string());
        let resolved = Resolved::resolve(Some(&file), env, &[]);
        let config = resolved.worker_config().unwrap();
        assert_eq!(config.implement_model, "haiku");
        assert_eq!(config.max_nudges, 2);
        assert_eq!(config.allowed_tools, vec!["Bash", "Read"]);
        assert_eq!(config.plan_model, "opus", "the environment beats the file");
    }

    #[test]
    fn unknown_keys_and_bad_types_are_refused() {
        let err = ConfigFile::parse(Path::new("c"), "max_nudgez = 2").unwrap_err();
        assert!(err.message.contains("unknown key \"max_nudgez\""), "{err}");
        let err = ConfigFile::parse(Path::new("c"), "max_nudges = true").unwrap_err();
        assert!(err.message.contains("max_nudges"), "{err}");
        let err = ConfigFile::parse(Path::new("c"), "max_nudges = [").unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Usage);
    }
}

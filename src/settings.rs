//! Every setting leash has, declared once: its key, environment variable, default,
//! parser and one line of doc. `.leash.toml`, the environment list in `--help`,
//! `leash config` and the README's table all come from [`KEYS`].
//!
//! Later layers win: built-in default < `.leash.toml` at the repository root <
//! environment variable < command-line flag. Commands resolve every setting where they
//! run; a daemon they start gets the [`Scope::Daemon`] ones in its environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::worker::{GateConfig, NudgeConfig, TurnConfig, WorkerConfig};

/// The per-repository config file, at the repository root.
pub const CONFIG_FILE: &str = ".leash.toml";

/// Who reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The command: sent with each request (models, nudges, retries).
    Command,
    /// The worker's daemon, at its start: its bounds and timeouts.
    Daemon,
}

/// One setting's declaration.
#[derive(Debug)]
pub struct Key {
    /// The setting, for a flag that sets it.
    pub id: Name,
    pub name: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    pub scope: Scope,
    /// What a value must look like, for error messages.
    pub expects: &'static str,
}

/// Declares the settings: the [`Settings`] struct and the [`KEYS`] table, from one list.
macro_rules! settings {
    ($( $name:ident : $ty:ty = $parser:ident($default:literal), $env:literal, $scope:ident, $doc:literal; )*) => {
        /// Every setting, typed.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $( #[doc = $doc] pub $name: $ty, )*
        }

        /// Every setting by name, so a command's flag names a setting that exists.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Name {
            $( #[doc = $doc] $name, )*
        }

        pub const KEYS: &[Key] = &[
            $( Key {
                id: Name::$name,
                name: stringify!($name),
                env: $env,
                default: $default,
                doc: $doc,
                scope: Scope::$scope,
                expects: parse::$parser::EXPECTS,
            }, )*
        ];

        impl Resolved {
            /// Every value parsed, or the first one that is not usable, named with
            /// where it came from.
            pub fn settings(&self) -> Result<Settings, Error> {
                Ok(Settings {
                    $( $name: self.parse(stringify!($name), parse::$parser::parse)?, )*
                })
            }
        }
    };
}

settings! {
    model: String = word("sonnet"), "LEASH_MODEL", Command,
        "model of a session started without --model (`leash session`)";
    claude: String = text("claude"), "LEASH_CLAUDE", Command,
        "the claude executable: a path, or a name looked up on PATH";
    permission_allow: Vec<String> = list(""), "LEASH_PERMISSION_ALLOW", Command,
        "tools approved when no one is attached to approve, comma-separated; others are denied";
    plan_model: String = word("opus"), "LEASH_PLAN_MODEL", Command,
        "model for planning turns";
    implement_model: String = word("sonnet"), "LEASH_IMPLEMENT_MODEL", Command,
        "model for implementing and nudge turns";
    plan_permission_mode: String = word("plan"), "LEASH_PLAN_PERMISSION_MODE", Command,
        "claude's permission mode while planning (read-only)";
    implement_permission_mode: String = word("acceptEdits"), "LEASH_IMPLEMENT_PERMISSION_MODE", Command,
        "claude's permission mode while implementing";
    allowed_tools: Vec<String> = list("Bash(git:*)"), "LEASH_ALLOWED_TOOLS", Command,
        "tools allowed while implementing, comma-separated (claude's --allowedTools)";
    max_nudges: u32 = count("5"), "LEASH_MAX_NUDGES", Command,
        "nudges per implement phase before giving up (0: judged once, never nudged)";
    nudge_backoff: Duration = duration("5s"), "LEASH_NUDGE_BACKOFF", Command,
        "pause before the second nudge, doubling after";
    nudge_backoff_max: Duration = duration("2m"), "LEASH_NUDGE_BACKOFF_MAX", Command,
        "longest pause between nudges";
    provider_retries: u32 = count("3"), "LEASH_PROVIDER_RETRIES", Command,
        "re-sends of a turn after provider errors (429/529/5xx); 0 none";
    provider_backoff: Duration = duration("5s"), "LEASH_PROVIDER_BACKOFF", Command,
        "pause before the first provider retry, doubling after";
    provider_backoff_max: Duration = duration("60s"), "LEASH_PROVIDER_BACKOFF_MAX", Command,
        "longest pause between provider retries";
    compact_at: u32 = percent("80"), "LEASH_COMPACT_AT", Command,
        "compact before a plan or implement turn once the context is this full (percent of the window; 0 never)";
    checks: Vec<String> = commands(""), "LEASH_CHECKS", Command,
        "commands the worker's commit must pass, run with `sh -c` at the repository root (one per line in the environment)";
    check_timeout: Duration = some_time("10m"), "LEASH_CHECK_TIMEOUT", Command,
        "stop a check (its whole process group) that runs longer than this";
    review: bool = switch("false"), "LEASH_REVIEW", Command,
        "have the plan model review committed work that passed its checks (read-only)";
    max_reviews: u32 = count("2"), "LEASH_MAX_REVIEWS", Command,
        "review rounds that may ask for changes before the work is accepted with a note (0: accepted without one)";
    rescopes: u32 = count("0"), "LEASH_RESCOPES", Command,
        "plan a task again when its nudges run out, this many times, before giving up";
    worktree_base: Option<String> = optional_text(""), "LEASH_WORKTREE_BASE", Command,
        "the branch or commit a new worker worktree starts from (`--worktree`) [default: HEAD]";
    task_budget_usd: Option<f64> = money(""), "LEASH_TASK_BUDGET_USD", Command,
        "stop a task once its turns cost this many US dollars (exit code 13); empty for no budget";
    provider_max_wait: Duration = duration("1h"), "LEASH_PROVIDER_MAX_WAIT", Command,
        "longest wait for a rate limit to reset before re-sending a turn refused with 429 (0 never waits)";
    idle_timeout: Duration = duration("30m"), "LEASH_IDLE_TIMEOUT", Daemon,
        "stop an unused daemon after this long (0 = never)";
    silence_timeout: Duration = some_time("30m"), "LEASH_SILENCE_TIMEOUT", Daemon,
        "interrupt a turn whose claude wrote nothing for this long";
    init_timeout: Duration = some_time("60s"), "LEASH_INIT_TIMEOUT", Daemon,
        "wait this long for claude to answer initialize after a spawn";
    control_timeout: Duration = some_time("10s"), "LEASH_CONTROL_TIMEOUT", Daemon,
        "wait this long for set_model and similar answers before respawning claude";
    interrupt_grace: Duration = some_time("10s"), "LEASH_INTERRUPT_GRACE", Daemon,
        "wait this long for an interrupted turn to end before killing claude";
    stop_grace: Duration = some_time("3s"), "LEASH_STOP_GRACE", Daemon,
        "each step of stopping claude (stdin closed, SIGTERM, SIGKILL) waits this long";
    max_crashes: u32 = some_count("5"), "LEASH_MAX_CRASHES", Daemon,
        "crashes in a row before leash gives up on claude";
    crash_backoff: Duration = duration("1s"), "LEASH_CRASH_BACKOFF", Daemon,
        "first respawn delay after a crash, doubling (0: at once)";
    claude_max_rss: u64 = bytes("4GiB"), "LEASH_CLAUDE_MAX_RSS", Daemon,
        "restart claude on the same conversation before a turn once it uses this much memory (0 = never)";
    log_max_bytes: u64 = some_bytes("64MiB"), "LEASH_LOG_MAX_BYTES", Daemon,
        "rotate the event log at this many bytes";
    max_queue: u32 = some_count("256"), "LEASH_MAX_QUEUE", Daemon,
        "turns that may wait behind the running one; more are refused as busy";
    client_timeout: Duration = some_time("10s"), "LEASH_CLIENT_TIMEOUT", Daemon,
        "drop a client that sends no request for this long";
    client_buffer: u64 = some_bytes("32MiB"), "LEASH_CLIENT_BUFFER", Daemon,
        "bytes of events a client may fall behind before it is dropped";
    permission_timeout: Duration = some_time("10m"), "LEASH_PERMISSION_TIMEOUT", Daemon,
        "deny a tool request nobody answered for this long";
    compact_timeout: Duration = some_time("30m"), "LEASH_COMPACT_TIMEOUT", Daemon,
        "how long claude may compact in silence before the turn counts as hung";
}

impl Settings {
    /// Every setting at its built-in default.
    pub fn defaults() -> Settings {
        Resolved::resolve(None, |_| None, &[])
            .settings()
            .expect("the built-in defaults parse (tested)")
    }

    /// How the worker's steps run, as the daemon is told with every step.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            turns: TurnConfig {
                plan_model: self.plan_model.clone(),
                implement_model: self.implement_model.clone(),
                plan_permission_mode: self.plan_permission_mode.clone(),
                implement_permission_mode: self.implement_permission_mode.clone(),
                allowed_tools: self.allowed_tools.clone(),
            },
            nudges: NudgeConfig {
                max_nudges: self.max_nudges,
                nudge_backoff_ms: millis(self.nudge_backoff),
                nudge_backoff_max_ms: millis(self.nudge_backoff_max),
            },
            retry: self.provider_retry(),
            compact_at: self.compact_at,
            task_budget_usd: self.task_budget_usd,
            gates: GateConfig {
                checks: self.checks.clone(),
                check_timeout_ms: millis(self.check_timeout),
                review: self.review,
                max_reviews: self.max_reviews,
                rescopes: self.rescopes,
                // The worker's, not a setting: the client names it with each step.
                branch: None,
            },
        }
    }

    /// leash's own re-sends of a turn after provider errors.
    pub fn provider_retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.provider_retries,
            base_delay_ms: millis(self.provider_backoff),
            max_delay_ms: millis(self.provider_backoff_max),
            max_wait_ms: millis(self.provider_max_wait),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A value as written: text, or a list from `.leash.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    Text(String),
    List(Vec<String>),
}

impl std::fmt::Display for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Text(text) => f.write_str(text),
            Raw::List(items) => f.write_str(&items.join(",")),
        }
    }
}

/// Where a value came from.
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

/// Every setting's value as written and where it came from, before parsing.
#[derive(Debug, Clone)]
pub struct Resolved {
    values: BTreeMap<&'static str, (Raw, Source)>,
    /// Settings whose environment variable is not UTF-8: refused by name when parsed.
    not_text: Vec<&'static str>,
}

impl Resolved {
    /// Resolves every key from the config file, the environment (`env`) and the flags
    /// given for this command (`flags`: the setting and its value).
    pub fn resolve(
        file: Option<&ConfigFile>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(Name, String)],
    ) -> Resolved {
        let values = KEYS
            .iter()
            .map(|key| {
                let flag = flags.iter().find(|(name, _)| *name == key.id);
                let from_env = env(key.env).filter(|v| !v.trim().is_empty());
                let from_file = file.and_then(|f| f.values.get(key.name).map(|v| (v, &f.path)));
                let value = match (flag, from_env, from_file) {
                    (Some((_, value)), _, _) => (Raw::Text(value.clone()), Source::Flag),
                    (None, Some(value), _) => (Raw::Text(value), Source::Env(key.env.to_string())),
                    (None, None, Some((value, path))) => {
                        (value.clone(), Source::File(path.clone()))
                    }
                    (None, None, None) => (Raw::Text(key.default.to_string()), Source::Default),
                };
                (key.name, value)
            })
            .collect();
        Resolved {
            values,
            not_text: Vec::new(),
        }
    }

    /// The settings for a command run in `dir`: its repository's `.leash.toml`, this
    /// process's environment, and `flags`.
    pub fn load(dir: &Path, flags: &[(Name, String)]) -> Result<Resolved, Error> {
        let file = ConfigFile::find(dir)?;
        Ok(Self::resolve(file.as_ref(), process_env, flags).marking_not_text())
    }

    /// The settings of a daemon: its environment over the defaults (the command that
    /// started it exported what it resolved).
    pub fn from_env() -> Resolved {
        Self::resolve(None, process_env, &[]).marking_not_text()
    }

    /// Marks the settings taken from an environment variable that is not UTF-8.
    fn marking_not_text(mut self) -> Resolved {
        self.not_text = KEYS
            .iter()
            .filter(|key| matches!(self.values.get(key.name), Some((_, Source::Env(_)))))
            .filter(|key| std::env::var_os(key.env).is_some_and(|v| v.to_str().is_none()))
            .map(|key| key.name)
            .collect();
        self
    }

    /// `(key, value, source)` for every setting, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static Key, &Raw, &Source)> {
        KEYS.iter().filter_map(|key| {
            let (raw, source) = self.values.get(key.name)?;
            Some((key, raw, source))
        })
    }

    /// The daemon's settings as environment variables, for the daemon a command starts.
    pub fn daemon_env(&self) -> Vec<(&'static str, String)> {
        self.entries()
            .filter(|(key, _, _)| key.scope == Scope::Daemon)
            .map(|(key, raw, _)| (key.env, raw.to_string()))
            .collect()
    }

    fn parse<T>(&self, name: &'static str, parse: fn(&Raw) -> Option<T>) -> Result<T, Error> {
        let Some((key, raw, source)) = self.entries().find(|(key, _, _)| key.name == name) else {
            unreachable!("every key is resolved");
        };
        let value = if self.not_text.contains(&name) {
            None
        } else {
            parse(raw)
        };
        value.ok_or_else(|| {
            let expects = if self.not_text.contains(&name) {
                "valid UTF-8"
            } else {
                key.expects
            };
            Error::usage(format!(
                "{name} = {:?} (from {source}) is not {expects}",
                raw.to_string(),
            ))
            .hint(format!(
                "fix it where it comes from ({}); `leash config` shows every setting",
                match source {
                    Source::Env(var) => format!("the environment variable {var}"),
                    Source::File(path) => path.display().to_string(),
                    Source::Flag => "the command line".to_string(),
                    Source::Default => "a bug in leash".to_string(),
                }
            ))
        })
    }
}

/// A variable of this process's environment, as settings read it: one that is not
/// UTF-8 is taken with its bad bytes replaced (and marked, see
/// [`Resolved::marking_not_text`]), so it is refused by name as `abc` is, never
/// silently ignored.
fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// How each kind of value is read.
mod parse {
    use super::Raw;
    use std::time::Duration;

    /// A list's items, trimmed, the empty ones dropped; `split` cuts a text into items.
    fn items(raw: &Raw, split: impl Fn(&str) -> Vec<&str>) -> Vec<String> {
        let items: Vec<&str> = match raw {
            Raw::List(items) => items.iter().map(String::as_str).collect(),
            Raw::Text(text) => split(text),
        };
        items
            .iter()
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn text_of(raw: &Raw) -> Option<&str> {
        match raw {
            Raw::Text(text) => Some(text.trim()),
            Raw::List(_) => None,
        }
    }

    pub mod duration {
        pub const EXPECTS: &str = "a duration such as 5s, 500ms, 10m or 2h";
        pub fn parse(raw: &super::Raw) -> Option<super::Duration> {
            super::super::parse_duration(super::text_of(raw)?)
        }
    }

    pub mod count {
        pub const EXPECTS: &str = "a whole number";
        pub fn parse(raw: &super::Raw) -> Option<u32> {
            super::text_of(raw)?.parse().ok()
        }
    }

    /// A bound a wait or a queue cannot do without: zero would make leash useless.
    pub mod some_time {
        pub const EXPECTS: &str = "a duration above zero, such as 5s, 500ms, 10m or 2h";
        pub fn parse(raw: &super::Raw) -> Option<super::Duration> {
            super::duration::parse(raw).filter(|d| !d.is_zero())
        }
    }

    pub mod some_count {
        pub const EXPECTS: &str = "a whole number above zero";
        pub fn parse(raw: &super::Raw) -> Option<u32> {
            super::count::parse(raw).filter(|n| *n > 0)
        }
    }

    pub mod some_bytes {
        pub const EXPECTS: &str = "a size above zero, such as 4GiB, 512MiB or 1048576 (bytes)";
        pub fn parse(raw: &super::Raw) -> Option<u64> {
            super::bytes::parse(raw).filter(|n| *n > 0)
        }
    }

    pub mod percent {
        pub const EXPECTS: &str = "a percentage from 0 to 100";
        pub fn parse(raw: &super::Raw) -> Option<u32> {
            let text = super::text_of(raw)?;
            let n: u32 = text.trim_end_matches('%').trim().parse().ok()?;
            (n <= 100).then_some(n)
        }
    }

    pub mod bytes {
        pub const EXPECTS: &str = "a size such as 4GiB, 512MiB or 1048576 (bytes)";
        pub fn parse(raw: &super::Raw) -> Option<u64> {
            super::super::parse_bytes(super::text_of(raw)?)
        }
    }

    pub mod commands {
        pub const EXPECTS: &str = "a list of commands (one per line in the environment)";
        pub fn parse(raw: &super::Raw) -> Option<Vec<String>> {
            Some(super::items(raw, |text| text.lines().collect()))
        }
    }

    pub mod switch {
        pub const EXPECTS: &str = "true or false";
        pub fn parse(raw: &super::Raw) -> Option<bool> {
            match super::text_of(raw)?.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            }
        }
    }

    pub mod money {
        pub const EXPECTS: &str =
            "an amount of US dollars above zero, such as 2.50, or empty for none";
        pub fn parse(raw: &super::Raw) -> Option<Option<f64>> {
            let text = super::text_of(raw)?.trim_start_matches('$').trim();
            if text.is_empty() || text.eq_ignore_ascii_case("none") {
                return Some(None);
            }
            let usd: f64 = text.parse().ok()?;
            (usd.is_finite() && usd > 0.0).then_some(Some(usd))
        }
    }

    pub mod word {
        pub const EXPECTS: &str = "a single word";
        pub fn parse(raw: &super::Raw) -> Option<String> {
            let word = super::text_of(raw)?;
            (!word.is_empty() && !word.contains(char::is_whitespace)).then(|| word.to_string())
        }
    }

    pub mod text {
        pub const EXPECTS: &str = "a non-empty text";
        pub fn parse(raw: &super::Raw) -> Option<String> {
            let text = super::text_of(raw)?;
            (!text.is_empty()).then(|| text.to_string())
        }
    }

    pub mod optional_text {
        pub const EXPECTS: &str = "a text, or empty for none";
        pub fn parse(raw: &super::Raw) -> Option<Option<String>> {
            let text = super::text_of(raw)?;
            Some((!text.is_empty()).then(|| text.to_string()))
        }
    }

    pub mod list {
        pub const EXPECTS: &str = "a comma-separated list";
        pub fn parse(raw: &super::Raw) -> Option<Vec<String>> {
            Some(super::items(raw, |text| text.split(',').collect()))
        }
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
        "d" => number * 86_400.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

/// Parses `1048576`, `512KiB`, `64MiB`, `4GiB` (also `K`, `M`, `G`, binary as well).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" | "KB" => 10,
        "M" | "MiB" | "MB" => 20,
        "G" | "GiB" | "GB" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// `.leash.toml`, its values as written.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    values: BTreeMap<String, Raw>,
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
        let bad = |what: String| {
            Error::usage(format!("{}: {what}", path.display()))
                .hint("`leash config -v` lists every key with what it takes")
        };
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
            let raw = match value {
                toml::Value::String(s) => Raw::Text(s),
                toml::Value::Integer(i) => Raw::Text(i.to_string()),
                toml::Value::Float(x) => Raw::Text(x.to_string()),
                toml::Value::Boolean(b) => Raw::Text(b.to_string()),
                toml::Value::Array(items) => Raw::List(
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad(format!("{key} must be a list of strings")))?,
                ),
                other => {
                    return Err(bad(format!(
                        "{key} is a {}; use a string, a number or a list of strings",
                        other.type_str()
                    )));
                }
            };
            values.insert(key, raw);
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
    fn every_default_parses_and_names_are_unique() {
        let defaults = Settings::defaults();
        assert_eq!(defaults.provider_backoff, Duration::from_secs(5));
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut envs: Vec<&str> = KEYS.iter().map(|k| k.env).collect();
        names.sort_unstable();
        names.dedup();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(names.len(), KEYS.len());
        assert_eq!(envs.len(), KEYS.len());
        assert!(KEYS.iter().all(|k| k.env.starts_with("LEASH_")));
    }

    #[test]
    fn flags_beat_environment_beat_defaults() {
        let env = |name: &str| match name {
            "LEASH_PLAN_MODEL" => Some("haiku".to_string()),
            "LEASH_MAX_NUDGES" => Some("9".to_string()),
            _ => None,
        };
        let resolved = Resolved::resolve(None, env, &[(Name::max_nudges, "2".to_string())]);
        let settings = resolved.settings().unwrap();
        assert_eq!(settings.plan_model, "haiku");
        assert_eq!(settings.max_nudges, 2);
        assert_eq!(settings.implement_model, "sonnet");
        let sources: BTreeMap<_, _> = resolved
            .entries()
            .map(|(k, _, s)| (k.name, s.clone()))
            .collect();
        assert_eq!(
            sources["plan_model"],
            Source::Env("LEASH_PLAN_MODEL".into())
        );
        assert_eq!(sources["max_nudges"], Source::Flag);
        assert_eq!(sources["implement_model"], Source::Default);
    }

    #[test]
    fn bad_values_name_their_source_and_how_to_fix_them() {
        let env = |name: &str| (name == "LEASH_NUDGE_BACKOFF").then(|| "soon".to_string());
        let err = Resolved::resolve(None, env, &[]).settings().unwrap_err();
        assert!(
            err.message.contains("nudge_backoff") && err.message.contains("LEASH_NUDGE_BACKOFF"),
            "{err}"
        );
        assert!(err.hint.unwrap().contains("leash config"));
        let env = |name: &str| (name == "LEASH_STOP_GRACE").then(|| "soon".to_string());
        let err = Resolved::resolve(None, env, &[]).settings().unwrap_err();
        assert!(err.message.contains("stop_grace"), "{err}");
    }

    #[test]
    fn the_file_sits_between_defaults_and_the_environment() {
        let file = ConfigFile::parse(
            Path::new(".leash.toml"),
            "implement_model = \"haiku\"\nmax_nudges = 2\nallowed_tools = [\"Bash\", \"Read\"]\nplan_model = \"sonnet\"\nsilence_timeout = \"1h\"\n",
        )
        .unwrap();
        let env = |name: &str| (name == "LEASH_PLAN_MODEL").then(|| "opus".to_string());
        let resolved = Resolved::resolve(Some(&file), env, &[]);
        let settings = resolved.settings().unwrap();
        assert_eq!(settings.implement_model, "haiku");
        assert_eq!(settings.max_nudges, 2);
        assert_eq!(settings.allowed_tools, vec!["Bash", "Read"]);
        assert_eq!(
            settings.plan_model, "opus",
            "the environment beats the file"
        );
        assert!(
            resolved
                .daemon_env()
                .contains(&("LEASH_SILENCE_TIMEOUT", "1h".to_string())),
            "the daemon a command starts gets the file's bounds"
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_refused() {
        let err = ConfigFile::parse(Path::new("c"), "max_nudgez = 2").unwrap_err();
        assert!(err.message.contains("unknown key \"max_nudgez\""), "{err}");
        let err = ConfigFile::parse(Path::new("c"), "max_nudges = {a = 1}").unwrap_err();
        assert!(err.message.contains("max_nudges"), "{err}");
        let err = ConfigFile::parse(Path::new("c"), "max_nudges = [").unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Usage);
    }

    #[test]
    fn checks_and_switches_parse() {
        let file = ConfigFile::parse(
            Path::new(".leash.toml"),
            "checks = [\"cargo test\", \"cargo clippy -- -D warnings\"]\nreview = true\n",
        )
        .unwrap();
        let settings = Resolved::resolve(Some(&file), |_| None, &[])
            .settings()
            .unwrap();
        assert_eq!(
            settings.checks,
            ["cargo test", "cargo clippy -- -D warnings"]
        );
        assert!(settings.review);
        let env = |name: &str| (name == "LEASH_CHECKS").then(|| "make a,b\n\nmake c\n".to_string());
        let settings = Resolved::resolve(None, env, &[]).settings().unwrap();
        assert_eq!(settings.checks, ["make a,b", "make c"], "commas are kept");
        let env = |name: &str| (name == "LEASH_REVIEW").then(|| "maybe".to_string());
        assert!(Resolved::resolve(None, env, &[]).settings().is_err());
        let defaults = Settings::defaults();
        assert!(defaults.checks.is_empty() && !defaults.review);
        assert_eq!((defaults.max_reviews, defaults.rescopes), (2, 0));
    }

    #[test]
    fn sizes_and_budgets_parse() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("4GiB"), Some(4 << 30));
        assert_eq!(parse_bytes("4 G"), Some(4 << 30));
        for bad in ["", "x", "-1", "1.5GiB", "4TiB", "99999999999999999999"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        let money = |t: &str| parse::money::parse(&Raw::Text(t.to_string()));
        assert_eq!(money(""), Some(None));
        assert_eq!(money("2.50"), Some(Some(2.5)));
        assert_eq!(money("$3"), Some(Some(3.0)));
        assert_eq!(money("-1"), None);
        assert_eq!(money("lots"), None);
        assert_eq!(Settings::defaults().task_budget_usd, None);
        assert_eq!(Settings::defaults().claude_max_rss, 4 << 30);
    }

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
}

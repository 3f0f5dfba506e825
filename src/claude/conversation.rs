//! The conversation a worker holds: its id, where it lives, and how claude is started
//! on it. Saved by the daemon in `session.json`; the session spawns claude from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::child::SpawnSpec;
use crate::error::Error;

/// What identifies the conversation, how claude is started on it, and what leash knows
/// of its size and cost; saved by the daemon in `session.json` (its parts flattened)
/// whenever the session reports a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub worker: String,
    /// Chosen by leash, passed as `--session-id` and later `--resume`.
    pub session_id: String,
    /// Whether claude has stored a conversation under `session_id` yet: only then can
    /// a spawn `--resume` it.
    #[serde(rename = "conversation_started")]
    pub started: bool,
    /// claude keeps conversations per directory, so a worker's cwd never changes.
    pub cwd: PathBuf,
    #[serde(flatten)]
    pub spawn: Spawn,
    #[serde(flatten)]
    pub tally: SizeAndCost,
    /// Conversations this worker retired because they were full, oldest first.
    #[serde(default)]
    pub previous_session_ids: Vec<String>,
    /// A fork not started yet: claude's first spawn copies this conversation.
    #[serde(default)]
    pub fork_of: Option<ForkOf>,
}

/// How claude is started on the conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Spawn {
    pub claude: PathBuf,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub system_prompt_file: Option<PathBuf>,
    pub append_system_prompt: Option<String>,
    pub extra_args: Vec<String>,
    /// Passed as `--allowedTools` (the worker sets them for implementing).
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// claude asks leash before using tools (`--permission-prompt-tool stdio`), and
    /// leash asks the person at the turn's terminal.
    #[serde(default)]
    pub interactive_permissions: bool,
}

/// What leash knows of the conversation's size and cost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SizeAndCost {
    /// How full the conversation is, as of claude's last main-thread message.
    #[serde(default)]
    pub context_tokens: Option<u64>,
    /// Compactions of this conversation, by claude (auto) or asked for (manual).
    #[serde(default)]
    pub compactions: u32,
    #[serde(default)]
    pub last_compaction: Option<Compaction>,
    /// The running total claude reported last for this conversation (`total_cost_usd`),
    /// to tell what a resumed claude's first result cost.
    #[serde(default)]
    pub reported_cost_usd: Option<f64>,
}

/// What `session start` changes in the worker's conversation, kept for later spawns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionChange {
    /// `--cwd`: must be where the conversation lives.
    pub cwd: Option<PathBuf>,
    pub claude: Option<PathBuf>,
    pub model: Option<String>,
    pub system_prompt_file: Option<PathBuf>,
    pub permission_mode: Option<String>,
    /// Extra arguments for claude (replacing earlier ones when not empty).
    pub claude_args: Vec<String>,
    pub interactive_permissions: bool,
    pub permission_allow: Option<Vec<String>>,
}

/// The conversation a fork copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkOf {
    pub session_id: String,
    /// Where it ran.
    pub cwd: PathBuf,
}

/// One compaction of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Compaction {
    /// `auto` (claude compacted by itself) or `manual` (asked for).
    pub trigger: String,
    /// The context before and after, in tokens.
    pub pre_tokens: Option<u64>,
    pub post_tokens: Option<u64>,
    /// When it ended, Unix milliseconds.
    pub ts: u64,
}

impl Compaction {
    /// `compacted 995k -> 3k tokens (auto)`.
    pub fn describe(&self) -> String {
        let size = |t: Option<u64>| t.map_or("?".to_string(), crate::human::tokens);
        format!(
            "compacted {} -> {} tokens ({})",
            size(self.pre_tokens),
            size(self.post_tokens),
            self.trigger
        )
    }
}

impl Conversation {
    /// A new conversation under a new id; `append_system_prompt` is added to claude's
    /// system prompt at every spawn, so it survives compaction.
    pub fn new(
        worker: &str,
        cwd: PathBuf,
        claude: PathBuf,
        append_system_prompt: String,
    ) -> Conversation {
        Conversation {
            worker: worker.to_string(),
            session_id: uuid::Uuid::new_v4().to_string(),
            started: false,
            cwd,
            spawn: Spawn {
                claude,
                append_system_prompt: Some(append_system_prompt),
                ..Spawn::default()
            },
            tally: SizeAndCost::default(),
            previous_session_ids: Vec::new(),
            fork_of: None,
        }
    }

    /// Retires this conversation (it is full): the worker goes on under a new id,
    /// remembering the old one.
    pub fn retire(&mut self) -> String {
        let old = std::mem::replace(&mut self.session_id, uuid::Uuid::new_v4().to_string());
        self.previous_session_ids.push(old.clone());
        self.started = false;
        self.tally = SizeAndCost::default();
        old
    }

    /// The conversation a start asks for: `current` with the changes asked for, or
    /// `new` (and true) when there is none or `fresh` was given.
    pub fn for_start(
        current: Option<&Conversation>,
        fresh: bool,
        new: Conversation,
        change: &SessionChange,
    ) -> Result<(Conversation, bool), Error> {
        let (mut conversation, is_new) = match current.filter(|_| !fresh) {
            Some(current) => {
                if let Some(cwd) = &change.cwd
                    && *cwd != current.cwd
                {
                    return Err(Error::usage(format!(
                        "worker {}'s conversation lives in {}, not in {}",
                        current.worker,
                        current.cwd.display(),
                        cwd.display()
                    ))
                    .hint("use --fresh to start a new conversation there, or another --worker"));
                }
                (current.clone(), false)
            }
            None => {
                let mut new = new;
                if let Some(cwd) = &change.cwd {
                    new.cwd.clone_from(cwd);
                }
                (new, true)
            }
        };
        let spawn = &mut conversation.spawn;
        if let Some(claude) = &change.claude {
            spawn.claude.clone_from(claude);
        }
        if let Some(model) = &change.model {
            spawn.model = Some(model.clone());
        }
        if let Some(file) = &change.system_prompt_file {
            spawn.system_prompt_file = Some(file.clone());
        }
        if let Some(mode) = &change.permission_mode {
            spawn.permission_mode = Some(mode.clone());
        }
        if !change.claude_args.is_empty() {
            spawn.extra_args.clone_from(&change.claude_args);
        }
        if change.interactive_permissions {
            spawn.interactive_permissions = true;
        }
        Ok((conversation, is_new))
    }

    /// A fork's first spawn in another directory: claude (2.1.110) finds the original
    /// only in the project folder of the directory it runs in, so its transcript is
    /// linked there first. Says why when it could not be.
    pub(super) fn link_fork(&self) -> Option<String> {
        let fork = self.fork_of.as_ref().filter(|f| f.cwd != self.cwd)?;
        let why = super::transcript::link(&fork.session_id, &fork.cwd, &self.cwd).err()?;
        Some(format!(
            "the fork's original transcript is not linked into {} ({why}); claude must find it by itself",
            self.cwd.display()
        ))
    }

    /// How claude is started on this conversation.
    pub(super) fn spawn_spec(&self) -> SpawnSpec {
        let spawn = &self.spawn;
        let mut args: Vec<String> = [
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        .map(String::from)
        .to_vec();
        // A fork's first spawn copies the original, under the id leash chose.
        let conversation: Vec<String> = match (&self.fork_of, self.started) {
            (_, true) => vec!["--resume".into(), self.session_id.clone()],
            (Some(fork), false) => vec![
                "--resume".into(),
                fork.session_id.clone(),
                "--fork-session".into(),
                "--session-id".into(),
                self.session_id.clone(),
            ],
            (None, false) => vec!["--session-id".into(), self.session_id.clone()],
        };
        args.extend(conversation);
        let mut add = |flag: &str, value: String| {
            args.push(flag.to_string());
            args.push(value);
        };
        if let Some(model) = &spawn.model {
            add("--model", model.clone());
        }
        if let Some(mode) = &spawn.permission_mode {
            add("--permission-mode", mode.clone());
        }
        if let Some(file) = &spawn.system_prompt_file {
            add("--system-prompt-file", file.to_string_lossy().into_owned());
        }
        if !spawn.allowed_tools.is_empty() {
            args.push("--allowedTools".to_string());
            args.extend(spawn.allowed_tools.iter().cloned());
        }
        if spawn.interactive_permissions {
            args.extend(["--permission-prompt-tool".to_string(), "stdio".to_string()]);
        }
        if let Some(text) = &spawn.append_system_prompt {
            args.extend(["--append-system-prompt".to_string(), text.clone()]);
        }
        args.extend(spawn.extra_args.iter().cloned());
        SpawnSpec {
            program: spawn.claude.clone(),
            args,
            cwd: self.cwd.clone(),
            env: vec![
                ("LEASH_WORKER".to_string(), self.worker.clone()),
                // Lets a git hook tell the worker's own git commands from anyone else's.
                ("LEASH_AGENT_WORKER".to_string(), self.worker.clone()),
                // Marks the worker's own commits in HEAD's reflog.
                (
                    "GIT_REFLOG_ACTION".to_string(),
                    crate::git::reflog_action(&self.worker),
                ),
            ],
        }
    }
}

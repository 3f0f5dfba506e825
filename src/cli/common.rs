//! What the commands share: where they run, which worker they mean, the settings
//! that apply there, reading input, and starting a session on demand.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Global;
use crate::client::{Connection, Launch, Target};
use crate::error::Error;
use crate::protocol::{NewSession, SessionChange, StartSpec};
use crate::settings::{Name, Resolved, Settings};

/// Commands are short-lived clients: one thread is all they need.
/// A flag's help with the built-in default of the setting it sets: `[default: 5]`.
/// The value in force (after `.leash.toml` and the environment) is `leash config`'s
/// to show; the help stays the same everywhere, as the generated man pages are.
pub fn with_default(help: &str, name: Name) -> String {
    let default = crate::settings::KEYS
        .iter()
        .find(|key| key.id == name)
        .map_or("", |key| key.default);
    let default = match default {
        "" => "none",
        value => value,
    };
    format!("{help} [default: {default}]")
}

pub fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?
        .block_on(future)
}

pub fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))
}

/// The worker a command means: `--worker`/`LEASH_WORKER`, else the repository's.
pub fn target(global: &Global) -> Result<Target, Error> {
    Target::resolve(global.worker.as_deref(), &current_dir()?)
}

/// The settings where the command runs (`.leash.toml`, environment), with the flags
/// that were given (`None` ones were not).
pub fn settings(flags: &[(Name, Option<String>)]) -> Result<(Resolved, Settings), Error> {
    let flags: Vec<(Name, String)> = flags
        .iter()
        .filter_map(|(key, value)| value.clone().map(|v| (*key, v)))
        .collect();
    let resolved = Resolved::load(&current_dir()?, &flags)?;
    let settings = resolved.settings()?;
    Ok((resolved, settings))
}

/// All of standard input, as `what` (for the message when it cannot be read).
pub fn read_stdin(what: &str) -> Result<String, Error> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        Error::usage(format!("cannot read {what} from standard input: {e}"))
            .hint("pipe UTF-8 text into it")
    })?;
    Ok(text)
}

/// The claude executable: a path, or a name looked up on PATH.
pub fn resolve_claude(wanted: &str) -> Result<PathBuf, Error> {
    let found = which::which(wanted).map_err(|_| {
        let what = if wanted == "claude" {
            "claude was not found on PATH".to_string()
        } else {
            format!("{wanted} is not an executable")
        };
        Error::setup(what).hint(
            "install Claude Code with `npm install -g @anthropic-ai/claude-code`, or point --claude / LEASH_CLAUDE at it",
        )
    })?;
    std::path::absolute(&found).map_err(|e| Error::io("cannot resolve the claude path", e))
}

/// What a new conversation started from here is made of: the worker's worktree or
/// this repository, this claude, the configured model and allow-list, and
/// `allowed_tools` from the first spawn.
pub fn new_session(
    target: &Target,
    settings: &Settings,
    allowed_tools: Vec<String>,
) -> Result<NewSession, Error> {
    Ok(NewSession {
        cwd: target.workdir(&current_dir()?),
        claude: resolve_claude(&settings.claude)?,
        model: settings.model.clone(),
        permission_allow: settings.permission_allow.clone(),
        allowed_tools,
        fork_of: None,
        worker: None,
    })
}

/// `--worktree` on the commands that can start a worker.
#[derive(Debug, Clone, clap::Args)]
pub struct WorktreeArg {
    /// Work in the worker's own git worktree, `.leash/worktrees/NAME` on branch
    /// `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker
    #[arg(long)]
    pub worktree: bool,
    /// With --worktree: continue on a branch `leash/NAME` an earlier worker of that name
    /// left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)
    #[arg(long, requires = "worktree")]
    pub reuse_branch: bool,
}

impl WorktreeArg {
    /// The target, with its worktree created or reused when `--worktree` was given.
    pub fn apply(
        &self,
        mut target: Target,
        global: &Global,
        settings: &Settings,
    ) -> Result<Target, Error> {
        if !self.worktree {
            return Ok(target);
        }
        let cwd = current_dir()?;
        let in_a_worktree = crate::paths::worktree_worker(&crate::paths::project_root(&cwd));
        if global.worker.is_none() && in_a_worktree.is_none() {
            return Err(Error::usage("--worktree needs a worker name")
                .hint("name it: `leash --worker fix-parser loop --worktree --task ...`"));
        }
        let worktree = crate::worktree::Worktree::ensure(
            &cwd,
            &target.worker,
            settings.worktree_base.as_deref(),
            self.reuse_branch,
        )?;
        let worker_lock = target.state_dir.join(crate::paths::LOCK_FILE);
        if let Some(removed) = crate::worktree::clear_dead_index_lock(&worktree.path, &worker_lock)
        {
            eprintln!("leash: {}", crate::human::safe(&removed));
        }
        if let Some(record) = crate::record::SessionRecord::load(&target.state_dir)?
            && record.conversation.cwd != worktree.path
        {
            return Err(Error::usage(format!(
                "worker {} already works in {}, not in a worktree of its own",
                target.worker,
                record.conversation.cwd.display()
            ))
            .hint("use another --worker for the worktree, or `leash session rm` this one first"));
        }
        target.adopt_worktree(worktree)?;
        Ok(target)
    }
}

/// How a command that needs a session gets one when none runs.
#[derive(Clone)]
pub struct Autostart<'a> {
    pub resolved: &'a Resolved,
    pub settings: &'a Settings,
    /// Tools claude allows from its first spawn (a worker's implementing tools).
    pub allowed_tools: Vec<String>,
}

/// Connects to the worker's daemon; with `autostart`, starts one first when none runs
/// (`None` fails with "not running").
pub async fn connect_or_start(
    target: &Target,
    autostart: Option<Autostart<'_>>,
) -> Result<Connection, Error> {
    let Some(autostart) = autostart else {
        return target.connect_running().await;
    };
    target
        .connect_or_start(|| {
            Ok(Launch {
                env: autostart.resolved.daemon_env(),
                spec: StartSpec {
                    fresh: false,
                    warm: false,
                    new: new_session(target, autostart.settings, autostart.allowed_tools)?,
                    change: SessionChange::default(),
                },
            })
        })
        .await
}

/// A directory given on the command line, made absolute; it must exist.
pub fn existing_dir(flag: &str, dir: &Path) -> Result<PathBuf, Error> {
    let path = dir.canonicalize().map_err(|e| {
        Error::usage(format!("{flag} {}: {e}", dir.display())).hint("give an existing directory")
    })?;
    if !path.is_dir() {
        return Err(
            Error::usage(format!("{flag} {} is not a directory", path.display()))
                .hint("give an existing directory"),
        );
    }
    Ok(path)
}

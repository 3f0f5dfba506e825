//! `leash session start`: the worker's daemon and claude, on the worker's conversation
//! (or a new one).

use crate::cli::common::with_default;
use std::path::PathBuf;

use clap::Args;

use crate::cli::common::{existing_dir, new_session, resolve_claude, settings, target};
use crate::cli::{Global, Output};
use crate::client::{Connection, Launch};
use crate::error::{Error, ErrorKind};
use crate::protocol::{SessionChange, SessionState, StartSpec};
use crate::settings::Name;
use crate::settings::Settings;

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Directory claude works in [default: the repository root, else the current directory]
    #[arg(long, value_name = "DIR", conflicts_with = "worktree")]
    pub cwd: Option<PathBuf>,
    #[arg(long, value_name = "MODEL", help = with_default(
        "Model for the session, an alias such as `sonnet` or `opus` or a full name",
        Name::model,
    ))]
    pub model: Option<String>,
    /// Replace claude's system prompt with this file's contents
    #[arg(long, value_name = "FILE")]
    pub system_prompt_file: Option<PathBuf>,
    /// claude's permission mode (default, acceptEdits, plan, bypassPermissions)
    #[arg(long, value_name = "MODE")]
    pub permission_mode: Option<String>,
    #[arg(long, value_name = "PATH", help = with_default(
        "The claude executable, a path or a name on PATH",
        Name::claude,
    ))]
    pub claude: Option<String>,
    /// Start a new conversation instead of resuming the worker's
    #[arg(long)]
    pub fresh: bool,
    /// Ask the person at the terminal before claude uses a tool (Allow once / always / Deny)
    #[arg(long)]
    pub interactive_permissions: bool,
    #[arg(long = "allow-tool", value_name = "TOOL", help = with_default(
        "Approve this tool when no one is attached to ask (repeat for more)",
        Name::permission_allow,
    ))]
    pub allow_tools: Vec<String>,
    #[command(flatten)]
    pub worktree: crate::cli::common::WorktreeArg,
    /// Extra arguments passed to claude as they are
    #[arg(last = true, value_name = "CLAUDE_ARGS")]
    pub claude_args: Vec<String>,
}

impl StartArgs {
    /// The flags a running worker does not take: they shape a claude being started.
    fn ignored_while_running(&self) -> Vec<&'static str> {
        [
            ("--cwd", self.cwd.is_some()),
            ("--model", self.model.is_some()),
            ("--system-prompt-file", self.system_prompt_file.is_some()),
            ("--permission-mode", self.permission_mode.is_some()),
            ("--interactive-permissions", self.interactive_permissions),
            ("--allow-tool", !self.allow_tools.is_empty()),
            ("claude arguments", !self.claude_args.is_empty()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

pub async fn run(args: StartArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let (resolved, settings) = settings(&[(Name::claude, args.claude.clone())])?;
    let claude = resolve_claude(&settings.claude)?;
    let target = args.worktree.apply(target, global, &settings)?;
    if let Some(conn) = target.open().await? {
        if args.fresh {
            return Err(Error::usage(format!(
                "worker {} is running: --fresh would start a new conversation, and it keeps its own",
                target.worker
            ))
            .hint("`leash session stop` first (its conversation is kept for --resume), then start --fresh"));
        }
        let ignored = args.ignored_while_running();
        if !ignored.is_empty() {
            out.note(format!(
                "{} not applied: the worker is running (`leash session stop` first; `session model` switches the model)",
                ignored.join(", ")
            ));
        }
        return already_running(conn, &target, &settings, claude, out).await;
    }
    let cwd = args
        .cwd
        .as_deref()
        .map(|dir| existing_dir("--cwd", dir))
        .transpose()?;
    let system_prompt_file = args
        .system_prompt_file
        .as_deref()
        .map(|file| {
            file.canonicalize().map_err(|e| {
                Error::usage(format!("--system-prompt-file {}: {e}", file.display()))
                    .hint("give a readable file")
            })
        })
        .transpose()?;
    let spec = StartSpec {
        fresh: args.fresh,
        warm: true,
        new: new_session(&target, &settings, Vec::new())?,
        change: SessionChange {
            cwd,
            claude: Some(claude),
            model: args.model,
            system_prompt_file,
            permission_mode: args.permission_mode,
            claude_args: args.claude_args,
            interactive_permissions: args.interactive_permissions,
            permission_allow: (!args.allow_tools.is_empty()).then_some(args.allow_tools),
        },
    };
    let env = resolved.daemon_env();
    let status = match target.launch(Launch { env, spec }).await {
        Ok(status) => status,
        Err(e) => {
            let kind = match e.kind {
                ErrorKind::Internal => ErrorKind::Setup,
                kind => kind,
            };
            return Err(Error {
                kind,
                message: format!("claude did not start: {}", e.message),
                hint: e.hint,
            });
        }
    };
    if out.json {
        out.json(&status);
    } else if !out.quiet {
        out.data(format!(
            "started worker {} (daemon pid {}, claude pid {}, session {})",
            status.worker,
            status.daemon_pid,
            status.claude_pid.map_or("-".to_string(), |p| p.to_string()),
            status.session_id
        ));
        out.data(format!("  socket  {}", status.socket.display()));
        out.data(format!("  events  {}", status.log.display()));
        out.data(format!("  daemon  {}", target.daemon_log().display()));
    }
    Ok(0)
}

/// A running worker keeps its conversation; it takes this claude for its next spawns,
/// and after leash gave up on its claude, starting is the way to try again.
async fn already_running(
    conn: Connection,
    target: &crate::client::Target,
    settings: &Settings,
    claude: PathBuf,
    out: &Output,
) -> Result<u8, Error> {
    let socket = conn.socket().to_path_buf();
    let failed = conn.status().await?.state == SessionState::Failed;
    let conn = Connection::open(&socket).await?.ok_or_else(|| {
        Error::new(ErrorKind::NoSession, "the daemon went away")
            .hint("run `leash session start` again")
    })?;
    let spec = StartSpec {
        fresh: false,
        warm: failed,
        new: new_session(target, settings, Vec::new())?,
        change: SessionChange {
            claude: Some(claude),
            ..SessionChange::default()
        },
    };
    let status = conn.start(spec).await?;
    if failed {
        out.note(format!(
            "worker {} is running again (claude pid {})",
            status.worker,
            status.claude_pid.unwrap_or(0)
        ));
    } else {
        out.note(format!(
            "worker {} is already running (daemon pid {}, session {})",
            status.worker, status.daemon_pid, status.session_id
        ));
    }
    if out.json {
        out.json(&status);
    }
    Ok(0)
}

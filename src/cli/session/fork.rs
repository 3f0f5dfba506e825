//! `leash session fork NEW [--worktree]`: a new worker whose conversation is a copy of
//! this worker's as it is now (claude's `--resume A --fork-session --session-id NEW`,
//! with NEW chosen by leash), its task, plan and phase copied too. The copy is taken
//! when the fork's claude starts, which `fork` waits for; the original goes on
//! untouched.

use clap::Args;

use crate::claude::conversation::ForkOf;
use crate::cli::common::{resolve_claude, settings, target};
use crate::cli::{Global, Output};
use crate::client::{Launch, Target};
use crate::error::{Error, ErrorKind};
use crate::paths::WorkerName;
use crate::protocol::{NewSession, SessionChange, SessionStatus, StartSpec};
use crate::record::SessionRecord;
use crate::worker::WorkerState;
use crate::worktree::Worktree;

pub const EXAMPLES: &str =
    "Examples (best of three by hand; `leash loop --attempts 3` does it all):
  leash plan --task \"Speed up the parser\"
  for i in 1 2 3; do leash session fork \"try$i\" --worktree; done
  for i in 1 2 3; do leash --worker \"try$i\" implement & done; wait";

#[derive(Debug, Clone, Args)]
pub struct ForkArgs {
    /// The new worker's name
    #[arg(value_name = "NEW")]
    pub name: String,
    /// Give the new worker its own worktree, `.leash/worktrees/NEW` on branch
    /// `leash/NEW`, from the original's HEAD (or `worktree_base`)
    #[arg(long)]
    pub worktree: bool,
    /// With --worktree: continue on a branch `leash/NEW` an earlier worker of that name
    /// left, instead of refusing to
    #[arg(long, requires = "worktree")]
    pub reuse_branch: bool,
}

pub async fn run(args: ForkArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let original = target(global)?;
    let name = WorkerName::parse(&args.name)?;
    let fork = Fork {
        worktree: args.worktree,
        reuse_branch: args.reuse_branch,
        attempt_of: None,
    };
    let (fork, status, original_session) = fork_worker(&original, name, &fork).await?;
    if out.json {
        out.json(&status);
        return Ok(0);
    }
    let place = match &fork.worktree {
        Some(w) => format!(", worktree {} on branch {}", w.path.display(), w.branch),
        None => format!(", in {}", status.cwd.display()),
    };
    out.note(format!(
        "forked worker {} into {}: conversation {} is a copy of {original_session}{place}",
        original.worker, fork.worker, status.session_id
    ));
    Ok(0)
}

/// How a fork is made.
pub struct Fork {
    pub worktree: bool,
    pub reuse_branch: bool,
    /// The fork is an attempt of this worker (`loop --attempts`).
    pub attempt_of: Option<String>,
}

/// Forks `original`'s conversation, task and phase into a new worker `name`, started
/// and warm; returns it, its status and the original's session id.
pub async fn fork_worker(
    original: &Target,
    name: WorkerName,
    how: &Fork,
) -> Result<(Target, SessionStatus, String), Error> {
    let record = SessionRecord::load(&original.state_dir)?
        .filter(|r| r.conversation.started)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NoSession,
                format!("worker {} has no conversation to fork yet", original.worker),
            )
            .hint("send it a turn first (`leash session send ...`, `leash plan ...`)")
        })?;
    if name == original.worker {
        return Err(
            Error::usage(format!("worker {name} cannot be a fork of itself"))
                .hint("give the fork another name"),
        );
    }
    let mut fork = Target::for_worker(original.dirs.clone(), name)?;
    if exists(&fork).await? {
        return Err(
            Error::usage(format!("worker {} exists already", fork.worker))
                .hint("give the fork another name, or `leash session rm` that worker first"),
        );
    }
    let (resolved, settings) = settings(&[])?;
    let conversation = &record.conversation;
    if how.worktree {
        let worktree = Worktree::ensure(
            &conversation.cwd,
            &fork.worker,
            settings.worktree_base.as_deref(),
            how.reuse_branch,
        )?;
        fork.adopt_worktree(worktree)?;
    }
    // A damaged state is not copied: the fork begins without a task.
    let worker = WorkerState::load(&original.state_dir).ok().map(|state| {
        Box::new(WorkerState {
            attempt_of: how.attempt_of.clone(),
            ..state
        })
    });
    let spec = StartSpec {
        fresh: false,
        warm: true,
        new: NewSession {
            cwd: fork
                .worktree
                .as_ref()
                .map_or_else(|| conversation.cwd.clone(), |w| w.path.clone()),
            claude: resolve_claude(&settings.claude)?,
            model: conversation
                .spawn
                .model
                .clone()
                .unwrap_or_else(|| settings.model.clone()),
            permission_allow: record.permission_allow.clone(),
            allowed_tools: conversation.spawn.allowed_tools.clone(),
            fork_of: Some(ForkOf {
                session_id: conversation.session_id.clone(),
                cwd: conversation.cwd.clone(),
            }),
            worker,
        },
        change: SessionChange {
            system_prompt_file: conversation.spawn.system_prompt_file.clone(),
            permission_mode: conversation.spawn.permission_mode.clone(),
            claude_args: conversation.spawn.extra_args.clone(),
            interactive_permissions: conversation.spawn.interactive_permissions,
            ..SessionChange::default()
        },
    };
    let env = resolved.daemon_env();
    let status = match fork.launch(Launch { env, spec }).await {
        Ok(status) => status,
        Err(e) => {
            return Err(Error {
                message: format!("the fork did not start: {}", e.message),
                ..e
            });
        }
    };
    Ok((fork, status, conversation.session_id.clone()))
}

/// A worker of that name has state or runs.
async fn exists(target: &Target) -> Result<bool, Error> {
    if crate::paths::holds_worker(&target.state_dir) {
        return Ok(true);
    }
    Ok(target.open().await?.is_some())
}

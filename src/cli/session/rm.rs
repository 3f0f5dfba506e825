//! `leash session rm NAME`: the worker is stopped and forgotten; its worktree goes
//! when clean, its branch only when merged into the branch it came from. claude's own
//! transcript of the conversation stays where claude keeps it.

use clap::Args;

use crate::cli::json::Removed;
use crate::cli::{Global, Output};
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::paths::{Dirs, WorkerName};
use crate::worktree::BranchFate;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// The worker to remove
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Remove its worktree even when it holds work git could not give back, or is locked
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: RmArgs, _global: &Global, out: &Output) -> Result<u8, Error> {
    let worker = WorkerName::parse(&args.name)?;
    let target = Target::for_worker(Dirs::from_env()?, worker)?;
    let known = target.state_dir.exists() || target.open().await?.is_some();
    if !known {
        return Err(Error::new(
            ErrorKind::NoSession,
            format!("there is no worker {}", target.worker),
        )
        .hint("`leash session list` shows the workers there are"));
    }
    // A dirty worktree is refused before anything is stopped: nothing is lost.
    if let Some(worktree) = target.worktree.as_ref().filter(|_| !args.force) {
        worktree.ensure_clean()?;
    }
    let stopped = super::stop::stop_one(&target, out).await?;
    let fate = match &target.worktree {
        Some(worktree) => Some(worktree.remove(args.force)?),
        None => None,
    };
    std::fs::remove_dir_all(&target.state_dir).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(Error::io(
            format!("cannot remove {}", target.state_dir.display()),
            e,
        )),
    })?;
    let (branch, branch_deleted) = match &fate {
        Some(BranchFate::Deleted(branch)) => (Some(branch.clone()), true),
        Some(BranchFate::Kept { branch, .. }) => (Some(branch.clone()), false),
        _ => (None, false),
    };
    if out.json {
        out.json(&Removed {
            worker: target.worker.to_string(),
            stopped,
            worktree: target.worktree_path(),
            branch,
            branch_deleted,
        });
        return Ok(0);
    }
    let mut said = vec![format!("removed worker {}", target.worker)];
    if let Some(worktree) = &target.worktree {
        said.push(format!("its worktree {}", worktree.path.display()));
    }
    match &fate {
        Some(BranchFate::Deleted(branch)) => {
            said.push(format!("and its branch {branch} (merged)"));
        }
        Some(BranchFate::Kept { branch, base }) => said.push(format!(
            "kept its branch {branch}: it has commits {base} lacks (merge it, or `git branch -D {branch}`)"
        )),
        _ => {}
    }
    out.note(said.join(", "));
    Ok(0)
}

//! `leash land`: the night's branches onto the target, as a merge queue does it.
//! Candidates ([`candidates`]) in order go through the pure [`queue`]; [`run`] carries
//! its actions out: stacks in temporary worktrees ([`stack`]) checked by the shared
//! check runner, the target moved compare-and-swap ([`target`]) after a [`journal`]
//! says what is being landed, the workers told through their daemons, and one `land`
//! per repository at a time ([`lock`]). Every git operation of land's own fires no hook
//! (`core.hooksPath=/dev/null`): a worker being landed gets no nudge from it.

pub mod candidates;
pub mod journal;
pub mod lock;
pub mod queue;
pub mod run;
pub mod stack;
pub mod target;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::client::Target;
use crate::error::Error;
use crate::paths::{Dirs, WorkerName};

/// The repository's main work tree and the branch land lands on.
#[derive(Debug, Clone)]
pub struct Place {
    pub root: PathBuf,
    pub target: String,
}

/// The repository around `cwd` and its target: `onto`, else the branch its main work
/// tree has checked out.
pub fn place(cwd: &Path, onto: Option<&str>) -> Result<Place, Error> {
    let bare = |dir: &Path| {
        Error::usage(format!("{} is a bare repository", dir.display()))
            .hint("land from a repository with a work tree: its workers' worktrees come from one")
    };
    match git(cwd, &["rev-parse", "--is-bare-repository"]) {
        Err(_) => {
            return Err(
                Error::usage(format!("{} is not in a git repository", cwd.display()))
                    .hint("run `leash land` in the repository whose workers you land"),
            );
        }
        Ok(answer) if answer == "true" => return Err(bare(cwd)),
        Ok(_) => {}
    }
    let list = git(cwd, &["worktree", "list", "--porcelain"]).map_err(Error::internal)?;
    let mut lines = list.lines();
    let root = lines
        .next()
        .and_then(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .ok_or_else(|| Error::internal("git listed no work tree"))?;
    if lines.take_while(|l| !l.is_empty()).any(|l| l == "bare") {
        return Err(bare(&root));
    }
    let target = match onto {
        Some(branch) => branch.to_string(),
        None => git(&root, &["symbolic-ref", "-q", "--short", "HEAD"]).map_err(|_| {
            Error::usage(format!(
                "the main work tree {} has no branch checked out (a detached HEAD)",
                root.display()
            ))
            .hint("name the branch to land on with --onto BRANCH")
        })?,
    };
    if target::tip(&root, &target).is_err() {
        return Err(
            Error::usage(format!("there is no branch {target} to land on"))
                .hint("name an existing branch with --onto BRANCH (`git branch` lists them)"),
        );
    }
    Ok(Place { root, target })
}

/// What a `land` that was cut off left, set right: the adopts of a move it made and
/// did not finish, its temporary worktrees and refs removed. Returns what was done,
/// in sentences.
pub async fn recover(root: &Path, dirs: &Dirs, orders: &dyn run::Orders) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(journal) = journal::Journal::read(root) {
        let moved = target::tip(root, &journal.target).is_ok_and(|tip| {
            tip == journal.to
                || git(root, &["merge-base", "--is-ancestor", &journal.to, &tip]).is_ok()
        });
        if moved {
            for (worker, order) in &journal.adopts {
                let Ok(name) = WorkerName::parse(worker) else {
                    continue;
                };
                let Ok(target_of) = Target::for_worker(dirs.clone(), name) else {
                    continue;
                };
                let _ = orders.send(&target_of, order.clone()).await;
            }
            notes.push(format!(
                "finished what a `leash land` that was cut off landed on {}: {} worker(s) told",
                journal.target,
                journal.adopts.len()
            ));
        }
        journal::Journal::remove(root);
    }
    stack::clear(root);
    notes
}

/// Where land keeps its temporary worktrees, its journal and its check records:
/// `<repo>/.leash/land/`.
pub fn land_dir(root: &Path) -> PathBuf {
    root.join(crate::paths::LEASH_DIR).join("land")
}

/// Runs git in `dir` with no hook; its standard output trimmed, or its standard error
/// as the failure.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = crate::landing_git::command(dir, args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
        Err(format!("git {}: {err}", args.join(" ")))
    }
}

/// How a candidate came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target holds its work.
    Landed,
    /// It conflicted with the target, and its worker did not resolve it.
    Conflict,
    /// Its landing checks failed on the target, and its worker did not fix them.
    ChecksFailed,
    /// Left as it was (not done, a step running, nothing to land, a dirty work tree...).
    Skipped,
}

/// One candidate of `leash land`, as it ended.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Landing {
    /// The worker whose branch it is.
    pub worker: String,
    /// Its branch (`leash/NAME`); `null` for a worker with no worktree.
    pub branch: Option<String>,
    /// The branch it lands on.
    pub target: String,
    pub outcome: Outcome,
    /// Why it did not land (or what went wrong after it did); `null` when nothing did.
    pub reason: Option<String>,
    /// Its commits the target took in.
    pub commits: u32,
    /// The target's tip after it landed; `null` when it did not.
    pub target_tip: Option<String>,
    /// Whether it changes `land`'s exit code: a worker named and skipped, or any
    /// candidate not landed; a worker `--all` skipped does not.
    #[serde(skip)]
    pub counts: bool,
}

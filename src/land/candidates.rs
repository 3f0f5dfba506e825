//! Which workers `land` takes, in which order, and why it leaves the others: a worktree
//! worker of this repository whose task is done (committed, checks green, review
//! approved) and whose branch holds commits the target lacks, with a clean worktree and
//! no step running. Oldest-ended first; named workers as named.

use std::path::{Path, PathBuf};

use crate::client::Target;
use crate::paths::{Dirs, WorkerName};
use crate::worker::{Phase, Verdict, WorkerState};
use crate::worktree::Worktree;

use super::git;

/// A worker whose branch goes into the queue.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub worker: WorkerName,
    pub target: Target,
    pub worktree: Worktree,
    /// The checks its task was judged with: its landing checks.
    pub checks: Vec<String>,
    /// It was being handed back when a `land` was cut off (`refs/leash/pre-land/NAME`).
    pub handed_back: bool,
}

/// A worker left as it was, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    pub worker: String,
    pub branch: Option<String>,
    pub reason: String,
    /// It was named: its skip changes the exit code.
    pub named: bool,
}

/// What `land` was asked to take.
pub enum Wanted {
    All,
    Named(Vec<WorkerName>),
}

/// The candidates and the skipped, for the repository at `root` landing on `target`.
pub async fn gather(
    dirs: &Dirs,
    root: &Path,
    target: &str,
    wanted: &Wanted,
) -> (Vec<Candidate>, Vec<Skip>) {
    let (names, named) = match wanted {
        Wanted::All => (dirs.known_workers(), false),
        Wanted::Named(names) => (names.clone(), true),
    };
    let mut found: Vec<(u64, Candidate)> = Vec::new();
    let mut skipped = Vec::new();
    for (place, worker) in names.into_iter().enumerate() {
        let Ok(target_of) = Target::for_worker(dirs.clone(), worker.clone()) else {
            continue;
        };
        let worktree = target_of.worktree.clone();
        let branch = worktree.as_ref().map(|w| w.branch.clone());
        let skip = |reason: String| Skip {
            worker: worker.to_string(),
            branch: branch.clone(),
            reason,
            named,
        };
        let Some(worktree) = worktree else {
            // With --all, workers of other repositories are none of this land's business.
            if named {
                skipped.push(skip(
                    "not a worktree worker (`loop --worktree` makes one)".into(),
                ));
            }
            continue;
        };
        if !same_dir(&worktree.repo, root) {
            if named {
                skipped.push(skip(format!(
                    "its worktree belongs to another repository ({})",
                    worktree.repo.display()
                )));
            }
            continue;
        }
        match judge(&target_of, &worktree, root, target).await {
            Ok((checks, handed_back, task_id)) => {
                let order = match named {
                    true => place as u64,
                    false => ended_ms(&target_of.state_dir, task_id.as_deref()),
                };
                found.push((
                    order,
                    Candidate {
                        worker,
                        target: target_of,
                        worktree,
                        checks,
                        handed_back,
                    },
                ));
            }
            Err(reason) => skipped.push(skip(reason)),
        }
    }
    found.sort_by_key(|(order, _)| *order);
    (found.into_iter().map(|(_, c)| c).collect(), skipped)
}

/// The landing checks and whether it was being handed back, or why it is skipped.
async fn judge(
    target_of: &Target,
    worktree: &Worktree,
    root: &Path,
    target: &str,
) -> Result<(Vec<String>, bool, Option<String>), String> {
    let state = WorkerState::load(&target_of.state_dir).map_err(|e| e.message)?;
    let pre_land = format!("refs/leash/pre-land/{}", target_of.worker);
    let handed_back = git(root, &["rev-parse", "--verify", "-q", &pre_land]).is_ok();
    let done = state.phase == Phase::Done
        && state
            .last
            .as_ref()
            .is_some_and(|j| j.verdict == Verdict::Committed && j.exit_code == 0);
    if !done && !handed_back {
        return Err(format!("its task is not done (phase: {})", state.phase));
    }
    if let Some(of) = &state.attempt_of {
        return Err(format!(
            "an attempt of {of}'s best of N, kept for a look (not the one chosen)"
        ));
    }
    if !handed_back && step_running(target_of).await {
        return Err("a step is running on it".into());
    }
    let range = format!("refs/heads/{target}..refs/heads/{}", worktree.branch);
    let ahead = git(root, &["rev-list", "--count", &range]).map_err(|e| e.to_string())?;
    if ahead == "0" && !handed_back {
        return Err(format!(
            "nothing to land: {target} holds its branch already"
        ));
    }
    if !handed_back && let Some(why) = busy_worktree(&worktree.path) {
        return Err(why);
    }
    let checks = state
        .run
        .gates
        .checked
        .clone()
        .map(|checked| checked.commands)
        .unwrap_or_default();
    Ok((checks, handed_back, state.task.id))
}

/// A person's work in the worktree: uncommitted changes, or a rebase or merge.
fn busy_worktree(path: &Path) -> Option<String> {
    if !path.exists() {
        return Some(format!("its worktree {} is gone", path.display()));
    }
    if let Ok(Some(what)) = crate::landing_git::in_progress(path) {
        return Some(format!("a {what} is in progress in its worktree"));
    }
    match crate::git::changes(path) {
        Ok(changes) if changes.is_empty() => None,
        Ok(changes) => {
            let names: Vec<String> = changes.iter().map(ToString::to_string).collect();
            Some(format!(
                "its worktree has uncommitted changes ({})",
                crate::human::first_of(&names, 3)
            ))
        }
        Err(e) => Some(e.message),
    }
}

/// Whether the worker's daemon runs a turn or step now.
async fn step_running(target_of: &Target) -> bool {
    let Ok(Some(conn)) = target_of.open().await else {
        return false;
    };
    conn.status()
        .await
        .is_ok_and(|status| status.current_turn.is_some() || status.queued > 0)
}

/// When the worker's task ended (Unix ms): its row in the worker's history, else when
/// its state was last written.
fn ended_ms(state_dir: &Path, task_id: Option<&str>) -> u64 {
    if let Ok(history) = crate::report::history::load(state_dir)
        && let Some(row) = history
            .rows
            .iter()
            .rev()
            .find(|row| Some(row.task_id.as_str()) == task_id)
    {
        return row.last_ms;
    }
    std::fs::metadata(WorkerState::path(state_dir))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(u64::MAX, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| PathBuf::from(p));
    canon(a) == canon(b)
}

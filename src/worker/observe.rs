//! What the worker's rules read from git: the repository as a step sees it, whose the
//! commits of a turn are, and the change a reviewer is shown. The daemon asks; the
//! rules of what to read (from which HEAD, how much) live here.

use std::path::Path;

use super::WorkerState;
use super::machine::GitView;
use crate::error::Error;
use crate::git;

/// How much of a diff a reviewer is shown.
pub const MAX_REVIEW_DIFF: usize = 64 * 1024;

/// HEAD, the phase's commits, those since leash last looked, and the loose changes.
pub fn git_view(cwd: &Path, state: &WorkerState) -> Result<GitView, Error> {
    let head = git::head(cwd)?;
    let (commits, new_commits) = match &head {
        Some(head) => (
            git::commits_between(cwd, state.run.head_at_start.as_deref(), head)?,
            if state.run.last_seen_head.as_deref() == Some(head.as_str()) {
                Vec::new()
            } else {
                git::commits_between(cwd, state.run.last_seen_head.as_deref(), head)
                    .unwrap_or_default()
            },
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(GitView {
        branch: crate::worktree::branch_at(cwd),
        head,
        commits,
        new_commits,
        changes: git::changes(cwd)?,
    })
}

/// The change from the implement phase's start to HEAD, bounded, for a review.
pub fn review_diff(cwd: &Path, state: &WorkerState) -> Result<git::Diff, Error> {
    let from = state.run.head_at_start.as_deref();
    match git::head(cwd)? {
        Some(head) => git::diff_between(cwd, from, &head, MAX_REVIEW_DIFF),
        None => Ok(git::Diff::default()),
    }
}

/// The commits that appeared during a turn: the worker's (its tools' commits carry its
/// mark in HEAD's reflog) and anyone else's. Where the reflog is off, a commit made
/// during the turn counts as the worker's, as before there was one.
pub fn attribute(
    cwd: &Path,
    worker: &str,
    before: Option<&str>,
    after: &str,
) -> (Vec<String>, Vec<git::CommitInfo>) {
    let appeared = git::commits_between(cwd, before, after).unwrap_or_default();
    let made_by =
        git::made_by_worker(cwd, worker, &appeared).unwrap_or_else(|_| vec![None; appeared.len()]);
    let mut made = Vec::new();
    let mut foreign = Vec::new();
    for (commit, by_worker) in appeared.into_iter().zip(made_by) {
        match by_worker {
            Some(false) => foreign.push(commit),
            Some(true) | None => made.push(commit.id),
        }
    }
    (made, foreign)
}

/// The first message of the conversation that takes over from a full one, for a
/// worker's turn: the task and the state of its work, and the latest prompts.
pub fn handoff(state: &WorkerState, cwd: Option<&Path>, recent_prompts: &[String]) -> String {
    use super::prompts::{Handoff, handoff_prompt};
    if state.task.text.is_none() {
        return handoff_prompt(&Handoff {
            recent_prompts,
            ..Handoff::default()
        });
    }
    let (commits, uncommitted) = match cwd {
        Some(cwd) => (
            git::head(cwd)
                .ok()
                .flatten()
                .and_then(|head| {
                    git::commits_between(cwd, state.run.head_at_start.as_deref(), &head).ok()
                })
                .unwrap_or_default(),
            git::changes(cwd).unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    handoff_prompt(&Handoff {
        task: state.task.text.as_deref(),
        plan: state.task.plan.as_deref(),
        phase: Some(state.phase.to_string()),
        last_verdict: state.last.as_ref().map(|j| j.message.as_str()),
        nudges: Some((state.run.nudges, state.run.max_nudges)),
        head_at_start: state.run.head_at_start.as_deref(),
        commits: &commits,
        uncommitted: &uncommitted,
        recent_prompts,
    })
}

//! The target branch: its tip, and its one move per landing, compare-and-swap from the
//! tip land saw (`git update-ref NEW OLD`: a person's commit in the meantime fails it,
//! never overwritten), each work tree that has it checked out brought along as
//! `git merge --ff-only` would. A work tree with uncommitted changes there stops the
//! move before it happens.

use std::path::{Path, PathBuf};

use super::git;

/// How a move came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    Moved,
    /// The target was elsewhere: at this tip.
    Raced(String),
    /// It cannot move: why.
    Refused(String),
}

/// The target's tip.
pub fn tip(root: &Path, target: &str) -> Result<String, String> {
    git(
        root,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{target}^{{commit}}"),
        ],
    )
}

/// The work trees that have `target` checked out.
pub fn checked_out(root: &Path, target: &str) -> Vec<PathBuf> {
    let wanted = format!("branch refs/heads/{target}");
    let list = git(root, &["worktree", "list", "--porcelain"]).unwrap_or_default();
    let mut found = Vec::new();
    let mut path = None;
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            path = Some(PathBuf::from(p));
        } else if line == wanted
            && let Some(p) = path.take()
        {
            found.push(p);
        }
    }
    found
}

/// Why a work tree cannot be brought along: changes to tracked files, or a rebase or
/// merge in progress.
pub fn unclean(worktree: &Path) -> Option<String> {
    let changes = git(worktree, &["status", "--porcelain", "--untracked-files=no"]);
    match changes {
        Ok(changes) if changes.is_empty() => None,
        Ok(changes) => {
            let files: Vec<&str> = changes.lines().take(3).collect();
            Some(format!("uncommitted changes ({})", files.join(", ")))
        }
        Err(e) => Some(e),
    }
}

/// Moves `target` from `from` to `to` (a descendant of `from`).
pub fn move_target(root: &Path, target: &str, from: &str, to: &str) -> Result<Move, String> {
    let trees = checked_out(root, target);
    for tree in &trees {
        if let Some(why) = unclean(tree) {
            return Ok(Move::Refused(format!(
                "{} has {target} checked out and holds {}; land moves no branch under a person's work (commit or put it aside, then run `leash land` again)",
                tree.display(),
                crate::human::one_line(&why, 200)
            )));
        }
    }
    let name = format!("refs/heads/{target}");
    if git(root, &["update-ref", "-m", "leash land", &name, to, from]).is_err() {
        return Ok(Move::Raced(tip(root, target)?));
    }
    for tree in &trees {
        // As `git merge --ff-only` does: the index and files from the old tip to the new.
        git(tree, &["read-tree", "-m", "-u", from, to]).map_err(|e| {
            format!(
                "{target} moved to {}, but {} could not follow: {e}",
                crate::git::short_id(to),
                tree.display()
            )
        })?;
    }
    Ok(Move::Moved)
}

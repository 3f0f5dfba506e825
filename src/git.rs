//! What leash reads from git (through git2, never by parsing `git` output): HEAD, the
//! commits between two points, the work tree's changes; and the hooks leash installs.

use std::path::{Path, PathBuf};

use git2::{Repository, Status, StatusOptions};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A commit, as leash reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommitInfo {
    /// The full commit id.
    pub id: String,
    /// The first line of its message.
    pub summary: String,
    /// Its author's name.
    pub author: String,
}

impl CommitInfo {
    pub fn short(&self) -> String {
        format!("{} {} ({})", short_id(&self.id), self.summary, self.author)
    }
}

/// A commit id as people read it: its first ten characters.
pub fn short_id(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

/// One changed path in the work tree, with a `git status --short`-like code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileChange {
    /// Like `git status --short`: `??` untracked, ` M` modified, `A ` added, ...
    pub code: String,
    /// Relative to the repository root.
    pub path: String,
}

impl std::fmt::Display for FileChange {
    /// `?? notes.txt`, `M src/a.rs`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code.trim(), self.path)
    }
}

pub(crate) fn open(dir: &Path) -> Result<Repository, Error> {
    Repository::discover(dir).map_err(|e| {
        Error::usage(format!(
            "{} is not a git repository ({})",
            dir.display(),
            e.message()
        ))
        .hint("leash judges work by its commits: run it in a git repository (`git init` makes one)")
    })
}

pub(crate) fn git_error(what: &str, e: git2::Error) -> Error {
    Error::internal(format!("git: cannot {what}: {}", e.message()))
}

pub fn is_repository(dir: &Path) -> bool {
    Repository::discover(dir).is_ok()
}

/// The work tree of the repository around `dir`. A worker judges its work by commits
/// in a work tree: no repository, or a bare one, is a usage error.
pub fn work_tree(dir: &Path) -> Result<PathBuf, Error> {
    let repo = open(dir)?;
    repo.workdir().map(Path::to_path_buf).ok_or_else(|| {
        Error::usage(format!("{} is a bare repository", dir.display()))
            .hint("run the worker in a clone with a work tree (`git clone`, `git worktree add`)")
    })
}

/// The commit HEAD points at; `None` in a repository without commits.
pub fn head(dir: &Path) -> Result<Option<String>, Error> {
    let repo = open(dir)?;
    match repo.head() {
        Ok(head) => Ok(head.target().map(|oid| oid.to_string())),
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(git_error("read HEAD", e)),
    }
}

/// The commit branch `branch` points at, if there is such a branch.
pub fn branch_tip(dir: &Path, branch: &str) -> Result<Option<String>, Error> {
    let repo = open(dir)?;
    let found = repo.find_branch(branch, git2::BranchType::Local);
    Ok(found
        .ok()
        .and_then(|b| b.get().target())
        .map(|oid| oid.to_string()))
}

/// Points `reference` (a full name, `refs/...`) at `commit`, so the commit outlives
/// any branch that held it.
pub fn keep_at(dir: &Path, reference: &str, commit: &str) -> Result<(), Error> {
    let repo = open(dir)?;
    let oid = git2::Oid::from_str(commit).map_err(|e| git_error("parse a commit id", e))?;
    repo.reference(reference, oid, true, "leash: kept")
        .map_err(|e| git_error(&format!("write {reference}"), e))?;
    Ok(())
}

/// Deletes the branch, if it is there (its commits must be kept elsewhere first).
pub fn delete_branch(dir: &Path, branch: &str) -> Result<(), Error> {
    let repo = open(dir)?;
    match repo.find_branch(branch, git2::BranchType::Local) {
        Ok(mut found) => found
            .delete()
            .map_err(|e| git_error(&format!("delete the branch {branch}"), e)),
        Err(_) => Ok(()),
    }
}

/// Lines added and removed from `from` to `to`.
pub fn changed_lines(dir: &Path, from: &str, to: &str) -> Result<u64, Error> {
    let repo = open(dir)?;
    let (old, new) = (tree_of(&repo, from)?, tree_of(&repo, to)?);
    let stats = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .and_then(|d| d.stats())
        .map_err(|e| git_error("diff", e))?;
    Ok((stats.insertions() + stats.deletions()) as u64)
}

/// The tree of commit `id`.
fn tree_of<'r>(repo: &'r Repository, id: &str) -> Result<git2::Tree<'r>, Error> {
    let oid = git2::Oid::from_str(id).map_err(|e| git_error("parse a commit id", e))?;
    repo.find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|e| git_error("read a commit's tree", e))
}

/// The change between two commits, as a reviewer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// `git diff --stat`.
    pub stat: String,
    /// The patch, cut at the bound it was asked for.
    pub patch: String,
    /// The patch was longer than the bound.
    pub truncated: bool,
}

/// The change from `from` (the empty tree when `None`) to `to`, its patch at most
/// `max_bytes` long.
pub fn diff_between(
    dir: &Path,
    from: Option<&str>,
    to: &str,
    max_bytes: usize,
) -> Result<Diff, Error> {
    let repo = open(dir)?;
    // A `from` that is gone (history rewritten) diffs against nothing.
    let old = from.and_then(|id| tree_of(&repo, id).ok());
    let new = tree_of(&repo, to)?;
    let diff = repo
        .diff_tree_to_tree(old.as_ref(), Some(&new), None)
        .map_err(|e| git_error("diff", e))?;
    let stat = diff
        .stats()
        .and_then(|s| s.to_buf(git2::DiffStatsFormat::FULL, 80))
        .map_err(|e| git_error("diff", e))?;
    let mut patch = Vec::new();
    let mut truncated = false;
    // Errors only when the callback stops it: that is the bound.
    let _ = diff.print(git2::DiffFormat::Patch, |_, _, line| {
        let origin = line.origin();
        let prefix: &[u8] = match origin {
            '+' | '-' | ' ' => &[origin as u8],
            _ => b"",
        };
        if patch.len() + prefix.len() + line.content().len() > max_bytes {
            truncated = true;
            return false;
        }
        patch.extend_from_slice(prefix);
        patch.extend_from_slice(line.content());
        true
    });
    Ok(Diff {
        stat: String::from_utf8_lossy(&stat).into_owned(),
        patch: String::from_utf8_lossy(&patch).into_owned(),
        truncated,
    })
}

/// Commits reachable from `to` but not from `from`, newest first.
pub fn commits_between(dir: &Path, from: Option<&str>, to: &str) -> Result<Vec<CommitInfo>, Error> {
    let repo = open(dir)?;
    let mut walk = repo.revwalk().map_err(|e| git_error("walk history", e))?;
    let to = git2::Oid::from_str(to).map_err(|e| git_error("parse a commit id", e))?;
    walk.push(to).map_err(|e| git_error("walk history", e))?;
    if let Some(from) = from {
        let from = git2::Oid::from_str(from).map_err(|e| git_error("parse a commit id", e))?;
        // A `from` that is gone (history rewritten) hides nothing.
        let _ = walk.hide(from);
    }
    let mut commits = Vec::new();
    for oid in walk.take(1000) {
        let oid = oid.map_err(|e| git_error("walk history", e))?;
        let commit = repo
            .find_commit(oid)
            .map_err(|e| git_error("read a commit", e))?;
        commits.push(CommitInfo {
            id: oid.to_string(),
            summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
            author: commit.author().name().unwrap_or("unknown").to_string(),
        });
    }
    Ok(commits)
}

/// What claude's environment sets as `GIT_REFLOG_ACTION`, so that git records every
/// commit the worker's tools make, in HEAD's reflog, under the worker's mark.
pub fn reflog_action(worker: &str) -> String {
    format!("leash {worker}")
}

/// Who made each of `commits`, as HEAD's reflog tells: `Some(true)` the worker (its
/// mark), `Some(false)` someone else, `None` the reflog does not say (it is off).
pub fn made_by_worker(
    dir: &Path,
    worker: &str,
    commits: &[CommitInfo],
) -> Result<Vec<Option<bool>>, Error> {
    let repo = open(dir)?;
    let reflog = repo
        .reflog("HEAD")
        .map_err(|e| git_error("read HEAD's reflog", e))?;
    let mark = reflog_action(worker);
    let mut seen: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    // Newest first; a turn's commits are among the latest entries.
    for entry in reflog.iter().take(REFLOG_SCAN) {
        let message = entry.message().ok().flatten().unwrap_or("");
        let marked = message
            .strip_prefix(&mark)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(" ("));
        seen.entry(entry.id_new().to_string()).or_insert(marked);
    }
    Ok(commits.iter().map(|c| seen.get(&c.id).copied()).collect())
}

/// Reflog entries read to attribute a turn's commits.
const REFLOG_SCAN: usize = 2_000;

/// Changed, staged and untracked paths (ignored files excluded).
pub fn changes(dir: &Path) -> Result<Vec<FileChange>, Error> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    statuses(dir, options, |path, status| {
        (!status.contains(Status::IGNORED)).then(|| FileChange {
            code: short_code(status),
            path,
        })
    })
}

/// Files git ignores in the work tree (`.env`, build output): no commit has them, so
/// nothing could bring them back. An ignored directory is listed once, as a whole;
/// untracked directories are looked into (a new `conf/` may hold only a `.env`).
pub fn ignored(dir: &Path) -> Result<Vec<String>, Error> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(true)
        .recurse_ignored_dirs(false);
    statuses(dir, options, |path, status| {
        status.contains(Status::IGNORED).then_some(path)
    })
}

/// The work tree's status entries (submodules left out), each kept as `keep` makes it.
fn statuses<T>(
    dir: &Path,
    mut options: StatusOptions,
    keep: impl Fn(String, Status) -> Option<T>,
) -> Result<Vec<T>, Error> {
    let repo = open(dir)?;
    options.exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| git_error("read the work tree status", e))?;
    Ok(statuses
        .iter()
        .filter(|entry| !entry.status().is_empty())
        .filter_map(|entry| keep(entry.path().unwrap_or("?").to_string(), entry.status()))
        .collect())
}

/// Tracked files a person told git not to look at (`update-index --assume-unchanged`
/// or `--skip-worktree`) whose content differs from the index: status hides them, yet
/// they are edits no commit has.
pub fn hidden_changes(dir: &Path) -> Result<Vec<String>, Error> {
    const ASSUME_UNCHANGED: u16 = 0x8000;
    const SKIP_WORKTREE: u16 = 1 << 14;
    let repo = open(dir)?;
    let Some(workdir) = repo.workdir() else {
        return Ok(Vec::new());
    };
    let index = repo.index().map_err(|e| git_error("read the index", e))?;
    Ok(index
        .iter()
        .filter(|e| e.flags & ASSUME_UNCHANGED != 0 || e.flags_extended & SKIP_WORKTREE != 0)
        .filter_map(|e| {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            let file = workdir.join(&path);
            // A hidden file that is gone loses nothing: the index has it.
            let on_disk = git2::Oid::hash_file(git2::ObjectType::Blob, &file).ok()?;
            (on_disk != e.id).then_some(path)
        })
        .collect())
}

/// Submodules checked out in the work tree: each is a repository of its own whose
/// commits and files go with the worktree (git refuses to remove such a worktree too).
pub fn checked_out_submodules(dir: &Path) -> Result<Vec<String>, Error> {
    let repo = open(dir)?;
    let submodules = repo
        .submodules()
        .map_err(|e| git_error("list the submodules", e))?;
    Ok(submodules
        .iter()
        .filter(|s| s.open().is_ok())
        .map(|s| s.path().display().to_string())
        .collect())
}

/// The refs that belong to one worktree alone and go with it.
const PER_WORKTREE_REFS: [&str; 3] = ["refs/worktree/", "refs/bisect/", "refs/rewritten/"];

/// Commits that only the worktree holds: on its detached HEAD, or on refs of its own
/// (`refs/worktree/*`, `refs/bisect/*`), and on no branch, tag or other ref of the
/// repository, nor checked out in another worktree. Says which of its heads hold them
/// (`detached HEAD at 1a2b3c4d5e`) and the most commits any one of them holds alone.
pub fn unreferenced_commits(
    main: &Repository,
    worktree: &Repository,
) -> Result<Option<(usize, Vec<String>)>, Error> {
    let walk_error = |e| git_error("walk the history", e);
    let mut heads: Vec<(String, git2::Oid)> = Vec::new();
    if let Ok(head) = worktree.head()
        && !head.is_branch()
        && let Some(tip) = head.target()
    {
        heads.push(("detached HEAD".to_string(), tip));
    }
    own_refs(&worktree.path().join("refs"), "refs", &mut heads);
    let kept = kept_elsewhere(main, worktree)?;
    let mut count = 0;
    let mut holding = Vec::new();
    for (name, tip) in heads {
        let mut walk = worktree.revwalk().map_err(walk_error)?;
        walk.push(tip).map_err(walk_error)?;
        for oid in &kept {
            let _ = walk.hide(*oid);
        }
        let only_here = walk.flatten().count();
        if only_here > 0 {
            count = count.max(only_here);
            holding.push(format!("{name} at {}", short_id(&tip.to_string())));
        }
    }
    Ok((count > 0).then_some((count, holding)))
}

/// The tips that keep commits whatever becomes of `worktree`: the repository's shared
/// refs, and the HEADs of its other worktrees.
fn kept_elsewhere(main: &Repository, worktree: &Repository) -> Result<Vec<git2::Oid>, Error> {
    let mut kept: Vec<git2::Oid> = Vec::new();
    let references = main
        .references()
        .map_err(|e| git_error("list the references", e))?;
    for reference in references.flatten() {
        let name = reference.name().unwrap_or_default();
        if PER_WORKTREE_REFS.iter().any(|own| name.starts_with(own)) {
            continue;
        }
        kept.extend(reference.resolve().ok().and_then(|r| r.target()));
    }
    kept.extend(main.head().ok().and_then(|h| h.target()));
    let this = worktree.path().canonicalize().ok();
    let names = main
        .worktrees()
        .map_err(|e| git_error("list the worktrees", e))?;
    for name in names.iter() {
        let Some(Ok(other)) = name.ok().flatten().map(|name| main.find_worktree(name)) else {
            continue;
        };
        let Ok(other) = Repository::open_from_worktree(&other) else {
            continue;
        };
        if other.path().canonicalize().ok() != this {
            kept.extend(other.head().ok().and_then(|h| h.target()));
        }
    }
    Ok(kept)
}

/// The loose refs under a worktree's own `refs/` directory (git never packs them).
fn own_refs(dir: &Path, prefix: &str, found: &mut Vec<(String, git2::Oid)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            own_refs(&path, &name, found);
        } else if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(oid) = git2::Oid::from_str(text.trim())
        {
            found.push((name, oid));
        }
    }
}

fn short_code(status: Status) -> String {
    if status.contains(Status::WT_NEW) && !status.intersects(Status::INDEX_NEW) {
        return "??".to_string();
    }
    let index = if status.contains(Status::INDEX_NEW) {
        'A'
    } else if status.contains(Status::INDEX_MODIFIED) {
        'M'
    } else if status.contains(Status::INDEX_DELETED) {
        'D'
    } else if status.contains(Status::INDEX_RENAMED) {
        'R'
    } else {
        ' '
    };
    let tree = if status.contains(Status::WT_MODIFIED) {
        'M'
    } else if status.contains(Status::WT_DELETED) {
        'D'
    } else if status.contains(Status::WT_RENAMED) {
        'R'
    } else if status.contains(Status::CONFLICTED) {
        'U'
    } else {
        ' '
    };
    format!("{index}{tree}")
}

// ---- hooks ---------------------------------------------------------------------------

/// The line that marks a hook as leash's.
const HOOK_MARKER: &str = "# installed by `leash hooks install`";
/// Where a hook that was there before leash is kept, and run from leash's.
const CHAINED_SUFFIX: &str = ".leash-chained";
pub const DEFAULT_HOOKS: &[&str] = &["post-commit"];
pub const SUPPORTED_HOOKS: &[&str] = &[
    "post-commit",
    "post-merge",
    "post-rewrite",
    "post-checkout",
    "pre-commit",
    "pre-push",
    "commit-msg",
];

/// The hooks directory git uses: `core.hooksPath` if set, else the common `.git/hooks`.
pub fn hooks_dir(dir: &Path) -> Result<PathBuf, Error> {
    let repo = open(dir)?;
    let configured = repo
        .config()
        .ok()
        .and_then(|c| c.get_path("core.hooksPath").ok());
    Ok(match configured {
        Some(path) if path.is_absolute() => path,
        Some(path) => repo.workdir().unwrap_or_else(|| repo.path()).join(path),
        None => repo.commondir().join("hooks"),
    })
}

/// The hook script: run the hook that was there before (if any), keep its verdict, and
/// tell the worker. It never fails on leash's account and returns at once: the nudge is
/// queued (`--no-wait`), and with no session running it does nothing.
fn hook_script(hook: &str) -> String {
    let nudge = if hook.starts_with("pre-") || hook == "commit-msg" {
        // A failing check is fed back to the worker, with what it printed.
        format!(
            r#"if [ "$status" -ne 0 ]; then
  leash nudge --event {hook} --no-wait --reason "the {hook} hook failed (exit $status): $(printf '%s\n' "$out" | tail -n 20)" >/dev/null 2>&1
fi"#
        )
    } else {
        format!("leash nudge --event {hook} --no-wait >/dev/null 2>&1")
    };
    format!(
        r#"#!/bin/sh
{HOOK_MARKER}; `leash hooks uninstall` removes it
# and puts back any hook that was here before ({hook}{CHAINED_SUFFIX}).
status=0
out=
chained="$(dirname "$0")/{hook}{CHAINED_SUFFIX}"
if [ -x "$chained" ]; then
  out=$("$chained" "$@" 2>&1) || status=$?
  [ -n "$out" ] && printf '%s\n' "$out" >&2
fi
if command -v leash >/dev/null 2>&1; then
  {nudge}
fi
exit $status
"#
    )
}

fn is_leash_hook(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(HOOK_MARKER))
}

/// What `hooks install` or `uninstall` did to one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct HookChange {
    /// The hook's name (`post-commit`, ...).
    pub hook: String,
    /// The hook file.
    pub path: PathBuf,
    /// What was done to it, in words.
    pub action: String,
}

pub fn install_hooks(dir: &Path, hooks: &[String]) -> Result<Vec<HookChange>, Error> {
    let hooks_dir = hooks_dir(dir)?;
    std::fs::create_dir_all(&hooks_dir)
        .map_err(|e| Error::io(format!("cannot create {}", hooks_dir.display()), e))?;
    let mut changes = Vec::new();
    for hook in hooks {
        let path = hooks_dir.join(hook);
        let chained = hooks_dir.join(format!("{hook}{CHAINED_SUFFIX}"));
        let action = if is_leash_hook(&path) {
            "already installed"
        } else if path.exists() {
            std::fs::rename(&path, &chained)
                .map_err(|e| Error::io(format!("cannot move {} aside", path.display()), e))?;
            "installed, chaining the existing hook"
        } else {
            "installed"
        };
        if action != "already installed" {
            write_executable(&path, &hook_script(hook))?;
        }
        changes.push(HookChange {
            hook: hook.clone(),
            path,
            action: action.to_string(),
        });
    }
    Ok(changes)
}

pub fn uninstall_hooks(dir: &Path, hooks: &[String]) -> Result<Vec<HookChange>, Error> {
    let hooks_dir = hooks_dir(dir)?;
    let mut changes = Vec::new();
    for hook in hooks {
        let path = hooks_dir.join(hook);
        let chained = hooks_dir.join(format!("{hook}{CHAINED_SUFFIX}"));
        if !is_leash_hook(&path) {
            continue;
        }
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?;
        let action = if chained.exists() {
            std::fs::rename(&chained, &path)
                .map_err(|e| Error::io(format!("cannot restore {}", path.display()), e))?;
            "removed, the previous hook is back"
        } else {
            "removed"
        };
        changes.push(HookChange {
            hook: hook.clone(),
            path,
            action: action.to_string(),
        });
    }
    Ok(changes)
}

fn write_executable(path: &Path, text: &str) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(format!("cannot make {} executable", path.display()), e))
}

/// git for the unit tests of every module: run in `dir` as a test author, its output
/// trimmed; a failure fails the test.
#[cfg(test)]
pub(crate) fn test_git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[cfg(test)]
mod diff_tests {
    use super::test_git as git;
    use super::*;

    #[test]
    fn a_diff_has_its_stat_and_a_bounded_patch() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        git(dir, &["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "one\n").unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "first"]);
        let first = git(dir, &["rev-parse", "HEAD"]);
        std::fs::write(dir.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(dir.join("b.txt"), "x\n".repeat(1000)).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "second"]);
        let second = git(dir, &["rev-parse", "HEAD"]);
        let diff = diff_between(dir, Some(&first), &second, 1 << 20).unwrap();
        assert!(
            diff.stat.contains("a.txt") && diff.stat.contains("2 files changed"),
            "{}",
            diff.stat
        );
        assert!(diff.patch.contains("+two\n"), "{}", diff.patch);
        assert!(!diff.truncated);
        let short = diff_between(dir, Some(&first), &second, 300).unwrap();
        assert!(short.truncated && short.patch.len() <= 300);
        let all = diff_between(dir, None, &first, 1 << 20).unwrap();
        assert!(all.patch.contains("+one"), "{}", all.patch);
    }
}

#[cfg(test)]
mod tests {
    use super::test_git as git;
    use super::*;

    #[test]
    fn head_commits_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q"]);
        assert_eq!(head(d).unwrap(), None);
        std::fs::write(d.join("a"), "1").unwrap();
        git(d, &["add", "a"]);
        git(d, &["commit", "-q", "-m", "first"]);
        let first = head(d).unwrap().unwrap();
        std::fs::write(d.join("a"), "2").unwrap();
        std::fs::write(d.join("b"), "new").unwrap();
        let mut found = changes(d).unwrap();
        found.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(
            found,
            vec![
                FileChange {
                    code: " M".into(),
                    path: "a".into()
                },
                FileChange {
                    code: "??".into(),
                    path: "b".into()
                },
            ]
        );
        git(d, &["commit", "-q", "-am", "second"]);
        let second = head(d).unwrap().unwrap();
        let between = commits_between(d, Some(&first), &second).unwrap();
        assert_eq!(between.len(), 1);
        assert_eq!(between[0].summary, "second");
        assert_eq!(commits_between(d, None, &second).unwrap().len(), 2);
    }

    #[test]
    fn hooks_round_trip_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q"]);
        let hooks = hooks_dir(d).unwrap();
        std::fs::create_dir_all(&hooks).unwrap();
        write_executable(&hooks.join("post-commit"), "#!/bin/sh\necho mine\n").unwrap();
        let names = vec!["post-commit".to_string(), "pre-push".to_string()];
        let installed = install_hooks(d, &names).unwrap();
        assert_eq!(installed[0].action, "installed, chaining the existing hook");
        assert!(is_leash_hook(&hooks.join("post-commit")));
        assert_eq!(
            install_hooks(d, &names).unwrap()[0].action,
            "already installed"
        );
        uninstall_hooks(d, &names).unwrap();
        assert_eq!(
            std::fs::read_to_string(hooks.join("post-commit")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        assert!(!hooks.join("pre-push").exists());
    }
}

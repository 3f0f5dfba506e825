//! A worker's own git worktree: `<repo>/.leash/worktrees/NAME` on branch `leash/NAME`,
//! so workers side by side never edit the same files or commit onto the same branch.
//! Created (or reused) under a lock in the repository's git dir, so two commands that
//! create worktrees at the same moment do not race; removed only when clean, its
//! branch deleted only when merged into the branch it came from.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{BranchType, Repository, WorktreeAddOptions, WorktreeLockStatus, WorktreePruneOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::git::{git_error, open};
use crate::paths::{LEASH_DIR, WORKTREE_FILE, WORKTREES, WorkerName};
use crate::state_file::write_atomic;

/// How long a command waits for another to finish creating or removing a worktree.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A worker's worktree, as recorded in its state dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Worktree {
    /// `<repo>/.leash/worktrees/NAME`.
    pub path: PathBuf,
    /// `leash/NAME`.
    pub branch: String,
    /// The branch it came from (or the commit, when HEAD was detached): its branch is
    /// deleted on removal only when merged into this.
    pub base: String,
    /// The repository's main work tree.
    pub repo: PathBuf,
}

impl Worktree {
    pub fn load(state_dir: &Path) -> Option<Worktree> {
        let bytes = std::fs::read(state_dir.join(WORKTREE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), Error> {
        let path = state_dir.join(WORKTREE_FILE);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode {}: {e}", path.display())))?;
        write_atomic(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    pub fn forget(state_dir: &Path) {
        let _ = std::fs::remove_file(state_dir.join(WORKTREE_FILE));
    }

    /// Creates the worker's worktree from the HEAD of the repository around `from` (or
    /// from `base`, a branch or commit), or reuses the one it has. A branch `leash/NAME`
    /// left over from an earlier worker is continued only with `reuse_branch`.
    pub fn ensure(
        from: &Path,
        worker: &WorkerName,
        base: Option<&str>,
        reuse_branch: bool,
    ) -> Result<Worktree, Error> {
        let here = open(from)?;
        let main = main_repository(&here)?;
        let root = main.workdir().map(clean_path).ok_or_else(|| bare(from))?;
        let path = root.join(LEASH_DIR).join(WORKTREES).join(worker.as_str());
        let branch = format!("leash/{worker}");
        let _lock = lock(&main)?;
        exclude_leash_dir(&main)?;
        let (base_name, commit) = base_commit(&here, base)?;
        if path.exists() {
            return reuse(&path, branch, base_name, root);
        }
        let commit = main
            .find_commit(commit)
            .map_err(|e| git_error("read the base commit", e))?;
        let reference = match main.find_branch(&branch, BranchType::Local) {
            Ok(existing) if reuse_branch => existing,
            Ok(_) => {
                return Err(Error::usage(format!(
                    "the branch {branch} exists already, left by an earlier worker {worker}; a new worker starts from {base_name}, not on top of it"
                ))
                .hint(format!(
                    "`git branch -D {branch}` (or merge it) first, or continue it on purpose with --reuse-branch"
                )));
            }
            Err(_) => main
                .branch(&branch, &commit, false)
                .map_err(|e| git_error(&format!("create the branch {branch}"), e))?,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        let mut options = WorktreeAddOptions::new();
        options.reference(Some(reference.get()));
        main.worktree(&git_name(worker), &path, Some(&options))
            .map_err(|e| git_error(&format!("add the worktree {}", path.display()), e))?;
        Ok(Worktree {
            path,
            branch,
            base: base_name,
            repo: root,
        })
    }

    /// Removes the worktree when it holds nothing git cannot give back (or with
    /// `force`), then its branch when merged into its base. Says what became of the
    /// branch.
    pub fn remove(&self, force: bool) -> Result<BranchFate, Error> {
        let main = open(&self.repo)?;
        let _lock = lock(&main)?;
        if !force {
            self.ensure_clean_in(&main)?;
        }
        let path = self.place(&main);
        match registered(&main, &self.path).map(|(_, w)| w) {
            Some(worktree) => {
                let mut prune = WorktreePruneOptions::new();
                prune.valid(true).locked(force).working_tree(true);
                worktree
                    .prune(Some(&mut prune))
                    .map_err(|e| git_error("remove the worktree", e))?;
            }
            None => {
                // Not registered (removed by hand): what is left on disk goes.
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?;
        }
        self.settle_branch(&main)
    }

    /// This worktree and its branch become worker `to`'s: the worktree moves to
    /// `.leash/worktrees/TO` (`git worktree move`), its branch becomes `leash/TO` (`git
    /// branch -m`, which moves the worktree's HEAD along). A part already done is
    /// skipped, so a rename cut off is finished by running it again.
    pub fn rename_to(&self, to: &WorkerName) -> Result<Worktree, Error> {
        let main = open(&self.repo)?;
        let _lock = lock(&main)?;
        let path = self.repo.join(LEASH_DIR).join(WORKTREES).join(to.as_str());
        let branch = format!("leash/{to}");
        if self.path.exists() && !path.exists() {
            git_cli(&self.repo, &["worktree", "move"], &[&self.path, &path])?;
        }
        let has = |name: &str| main.find_branch(name, BranchType::Local).is_ok();
        if has(&self.branch) && !has(&branch) {
            git_cli(
                &self.repo,
                &["branch", "-m", &self.branch, &branch],
                &[] as &[&Path],
            )?;
        }
        Ok(Worktree {
            path: clean_path(&path),
            branch,
            base: self.base.clone(),
            repo: self.repo.clone(),
        })
    }

    /// Where the worktree is: where git knows it (it may have been moved with `git
    /// worktree move`), else where it was made.
    fn place(&self, main: &Repository) -> PathBuf {
        registered(main, &self.path)
            .map(|(_, w)| clean_path(w.path()))
            .unwrap_or_else(|| self.path.clone())
    }

    /// A worktree is kept when removing it would lose work: uncommitted changes (those
    /// git was told to overlook included), untracked or ignored files, checked-out
    /// submodules, commits only it holds; or when a person locked it, or moved it where
    /// git cannot see.
    pub fn ensure_clean(&self) -> Result<(), Error> {
        match open(&self.repo) {
            Ok(main) => self.ensure_clean_in(&main),
            // No repository any more: nothing of it is left to lose.
            Err(_) => Ok(()),
        }
    }

    fn ensure_clean_in(&self, main: &Repository) -> Result<(), Error> {
        let path = self.place(main);
        let Some((git_name, registered)) = registered(main, &self.path) else {
            return self.ensure_clean_files(&path);
        };
        if let Ok(WorktreeLockStatus::Locked(reason)) = registered.is_locked() {
            let reason = reason
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty());
            return Err(kept(
                &path,
                "a lock".to_string(),
                &[reason.unwrap_or_else(|| "git worktree lock".to_string())],
                &format!(
                    "`git worktree unlock {}` first, or `--force` removes it locked",
                    path.display()
                ),
            ));
        }
        // Its own git dir holds its HEAD and refs even when its files are gone.
        let own = main.path().join("worktrees").join(git_name);
        if let Ok(worktree) =
            Repository::open_from_worktree(&registered).or_else(|_| Repository::open(&own))
            && let Some((count, heads)) = crate::git::unreferenced_commits(main, &worktree)?
        {
            return Err(kept(
                &path,
                format!("{count} commit(s) that no branch or tag has"),
                &heads,
                &format!(
                    "keep them on a branch first (`git -C {} branch NAME`), or `--force` drops them",
                    path.display()
                ),
            ));
        }
        if !path.exists() {
            return Err(Error::new(
                ErrorKind::Dirty,
                format!(
                    "the worktree is not at {}, where git has it: moved by hand, or deleted; nothing was removed",
                    path.display()
                ),
            )
            .hint("moved: `git worktree repair NEW_PATH` tells git, then rm checks it there; deleted: `--force` forgets it"));
        }
        self.ensure_clean_files(&path)
    }

    fn ensure_clean_files(&self, path: &Path) -> Result<(), Error> {
        if !path.exists() {
            return Ok(());
        }
        let mut changes: Vec<String> = crate::git::changes(path)?
            .iter()
            .map(ToString::to_string)
            .collect();
        changes.extend(
            crate::git::hidden_changes(path)?
                .into_iter()
                .map(|file| format!("M {file} (marked unchanged)")),
        );
        if !changes.is_empty() {
            return Err(kept(
                path,
                format!("{} uncommitted change(s)", changes.len()),
                &changes,
                "commit or discard them there, or `--force` removes the worktree with them",
            ));
        }
        let submodules = crate::git::checked_out_submodules(path)?;
        if !submodules.is_empty() {
            return Err(kept(
                path,
                format!("{} checked-out submodule(s)", submodules.len()),
                &submodules,
                "their commits and files would go with it: push or copy what you need, then `--force`",
            ));
        }
        let ignored = crate::git::ignored(path)?;
        if !ignored.is_empty() {
            return Err(kept(
                path,
                format!("{} ignored file(s) no commit has", ignored.len()),
                &ignored,
                "move what you want to keep (a hand-made .env, local settings) out of it, or `--force` removes them too",
            ));
        }
        Ok(())
    }

    /// The worker's branch goes only when its base has all of it.
    fn settle_branch(&self, main: &Repository) -> Result<BranchFate, Error> {
        let Ok(mut branch) = main.find_branch(&self.branch, BranchType::Local) else {
            return Ok(BranchFate::Gone);
        };
        let tip = branch.get().target();
        let base = main
            .revparse_single(&self.base)
            .ok()
            .and_then(|o| o.peel_to_commit().ok())
            .map(|c| c.id());
        let merged = match (tip, base) {
            (Some(tip), Some(base)) => {
                tip == base || main.graph_descendant_of(base, tip).unwrap_or(false)
            }
            _ => false,
        };
        if !merged {
            return Ok(BranchFate::Kept {
                branch: self.branch.clone(),
                base: self.base.clone(),
            });
        }
        branch
            .delete()
            .map_err(|e| git_error(&format!("delete the branch {}", self.branch), e))?;
        Ok(BranchFate::Deleted(self.branch.clone()))
    }
}

/// Runs git at `repo` for what libgit2 cannot do (move a worktree, rename a branch
/// checked out in one); says git's own words when it fails.
fn git_cli(repo: &Path, args: &[&str], paths: &[&Path]) -> Result<(), Error> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .args(paths)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("cannot run git", e))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(Error::new(
        ErrorKind::Internal,
        format!("git {} failed: {}", args.join(" "), said.trim()),
    )
    .hint("see what git says, fix it, and run the command again: it goes on where it was"))
}

/// Why a worktree is kept: what it holds that git could not give back.
fn kept(path: &Path, what: String, items: &[String], hint: &str) -> Error {
    Error::new(
        ErrorKind::Dirty,
        format!(
            "the worktree {} holds {what} ({}); nothing was removed",
            path.display(),
            crate::human::first_of(items, 5)
        ),
    )
    .hint(hint)
}

/// What `session rm` did with the worker's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchFate {
    /// It was merged into its base and deleted.
    Deleted(String),
    /// It has commits its base lacks: kept.
    Kept { branch: String, base: String },
    /// There was none.
    Gone,
}

/// The current branch at `dir` (`None` when HEAD is detached or there is no repository).
pub fn branch_at(dir: &Path) -> Option<String> {
    let repo = Repository::discover(dir).ok()?;
    let head = repo.head().ok()?;
    head.is_branch()
        .then(|| head.shorthand().ok().map(str::to_string))
        .flatten()
}

fn bare(dir: &Path) -> Error {
    Error::usage(format!("{} is a bare repository", dir.display()))
        .hint("worktrees are made from a repository with a work tree")
}

/// The repository whose work tree holds `.leash/`: the main one, also from a worktree.
fn main_repository(repo: &Repository) -> Result<Repository, Error> {
    if !repo.is_worktree() {
        return Repository::open(repo.path()).map_err(|e| git_error("open the repository", e));
    }
    Repository::open(repo.commondir()).map_err(|e| git_error("open the main repository", e))
}

fn clean_path(path: &Path) -> PathBuf {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    PathBuf::from(path.to_string_lossy().trim_end_matches('/'))
}

/// git's own name for the worktree (`.git/worktrees/leash-NAME`).
fn git_name(worker: &WorkerName) -> String {
    format!("leash-{worker}")
}

/// The worktree git has at `path`: by the name leash gave it there, else (a worktree
/// moved there under its first name, as a best-of-N winner is) by where it is.
fn registered(main: &Repository, path: &Path) -> Option<(String, git2::Worktree)> {
    let name = git_name_of(path);
    if let Ok(worktree) = main.find_worktree(&name) {
        return Some((name, worktree));
    }
    let wanted = clean_path(path);
    let names = main.worktrees().ok()?;
    for name in names.iter().flatten().flatten() {
        if let Ok(worktree) = main.find_worktree(name)
            && clean_path(worktree.path()) == wanted
        {
            return Some((name.to_string(), worktree));
        }
    }
    None
}

fn git_name_of(path: &Path) -> String {
    format!(
        "leash-{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// The commit a new worktree starts from, and the name it is told by.
fn base_commit(here: &Repository, base: Option<&str>) -> Result<(String, git2::Oid), Error> {
    if let Some(base) = base {
        let commit = here
            .revparse_single(base)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| {
                Error::usage(format!(
                    "worktree_base {base:?} is not a commit here ({})",
                    e.message()
                ))
                .hint("set worktree_base to a branch or commit of this repository")
            })?;
        return Ok((base.to_string(), commit.id()));
    }
    let head = here.head().map_err(|e| {
        Error::usage(format!(
            "the repository has no commit to start a worktree from ({})",
            e.message()
        ))
        .hint("commit something first")
    })?;
    let commit = head
        .peel_to_commit()
        .map_err(|e| git_error("read HEAD", e))?;
    let name = match head.is_branch() {
        true => head.shorthand().ok().map(str::to_string),
        false => None,
    };
    Ok((name.unwrap_or_else(|| commit.id().to_string()), commit.id()))
}

/// A worktree already there: this worker's, on its branch, is reused.
fn reuse(path: &Path, branch: String, base: String, repo: PathBuf) -> Result<Worktree, Error> {
    let on = branch_at(path);
    if on.as_deref() != Some(branch.as_str()) {
        return Err(Error::usage(format!(
            "{} exists but is not the worktree of branch {branch} (it is on {})",
            path.display(),
            on.as_deref().unwrap_or("no branch")
        ))
        .hint("move it away, or use another --worker"));
    }
    Ok(Worktree {
        path: clean_path(path),
        branch,
        base,
        repo,
    })
}

/// `.leash/` in the repository's `info/exclude`, so the main work tree stays clean.
fn exclude_leash_dir(main: &Repository) -> Result<(), Error> {
    let path = main.commondir().join("info").join("exclude");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let line = format!("/{LEASH_DIR}/");
    if text.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("# leash's worktrees\n{line}\n"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Serializes worktree changes in one repository across processes.
fn lock(main: &Repository) -> Result<std::fs::File, Error> {
    let path = main.commondir().join("leash-worktrees.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let until = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::turn_failed(format!(
                    "another leash held {} for {} s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                ))
                .hint("retry; if it persists, a stuck leash holds it"));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), e));
            }
        }
    }
}

/// Removes the `index.lock` of the work tree at `dir` when no git runs there: claude
/// killed mid-commit takes the git in its process group with it, and the lock that git
/// left fails every commit after it (the worker's nudges then go by uncommitted). A
/// git of anyone's still working in the tree keeps it.
pub fn clear_index_lock_of_dead_git(dir: &Path) -> Option<String> {
    let index_lock = index_lock(dir)?;
    if git_runs_in(dir) {
        return None;
    }
    std::fs::remove_file(&index_lock).ok()?;
    Some(format!(
        "removed {}, left by a git that died (no git runs there now)",
        index_lock.display()
    ))
}

/// The `index.lock` of the work tree at `dir`, when there is one.
fn index_lock(dir: &Path) -> Option<PathBuf> {
    let index_lock = Repository::open(dir).ok()?.path().join("index.lock");
    index_lock.exists().then_some(index_lock)
}

/// Whether a git process works in `dir` or below it (its working directory there).
fn git_runs_in(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return true;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        let is_git =
            std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim() == "git");
        is_git && std::fs::read_link(path.join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
    })
}

/// Removes git's `index.lock` from a worker's worktree when nothing of the worker can
/// be running git there: no daemon holds the worker's lock (`worker_lock`, a file
/// lock every host sees), so the git that took it died with its daemon, its claude
/// or its whole node. Left in place, it makes every later commit there fail. Says
/// what it removed.
pub fn clear_dead_index_lock(worktree: &Path, worker_lock: &Path) -> Option<String> {
    let index_lock = index_lock(worktree)?;
    let lock = std::fs::File::open(worker_lock).ok()?;
    // Held for a moment only. A daemon of this worker started by another command in
    // that very moment takes it for another daemon's and exits; that command then
    // fails and runs again. The daemon, once it holds the lock, is the place without
    // even that window, and the one that also covers a daemon killed mid-git.
    lock.try_lock().ok()?;
    let removed = std::fs::remove_file(&index_lock).is_ok();
    drop(lock);
    removed.then(|| {
        format!(
            "removed {}, left by a git that died with an earlier run of this worker",
            index_lock.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::git::test_git as git;

    #[test]
    fn a_dead_gits_index_lock_goes_only_while_no_daemon_holds_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
        let worktree = dir.path().join("wt");
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "leash/w",
                &worktree.display().to_string(),
            ],
        );
        let index_lock = repo.join(".git/worktrees/wt/index.lock");
        std::fs::write(&index_lock, "").unwrap();
        let worker_lock = dir.path().join("daemon.lock");
        let daemon = std::fs::File::create(&worker_lock).unwrap();

        daemon.lock().unwrap();
        assert_eq!(clear_dead_index_lock(&worktree, &worker_lock), None);
        assert!(index_lock.exists(), "a serving daemon's git may hold it");

        daemon.unlock().unwrap();
        let said = clear_dead_index_lock(&worktree, &worker_lock).expect("removed");
        assert!(said.contains("index.lock"), "{said}");
        assert!(!index_lock.exists());
        assert_eq!(clear_dead_index_lock(&worktree, &worker_lock), None);
    }
}

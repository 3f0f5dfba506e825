//! Speculative stacks: a candidate's commits replayed onto a tip (the target's, or the
//! stack below it) in a temporary worktree under `.leash/land/`, its commit kept at a
//! ref under `refs/leash/land/` (never a worker's name or branch) while its checks run.

use std::path::{Path, PathBuf};

use super::{git, land_dir};

/// Where the stacks' refs live.
pub const REFS: &str = "refs/leash/land/";

/// How a replay came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The commits replayed onto the tip: the stack's tip, its worktree, and how many
    /// commits it added.
    Built {
        tip: String,
        worktree: PathBuf,
        commits: u32,
    },
    /// Nothing of the candidate is left once replayed: its changes are there already.
    Empty,
    /// The replay stopped on these files.
    Conflicted(Vec<String>),
}

/// The stacks of one `land`, numbered as they are made.
pub struct Stacks {
    root: PathBuf,
    made: u32,
}

impl Stacks {
    pub fn new(root: &Path) -> Stacks {
        Stacks {
            root: root.to_path_buf(),
            made: 0,
        }
    }

    /// Replays `base..branch_tip` onto `onto` in a new temporary worktree.
    pub fn build(&mut self, onto: &str, base: &str, branch_tip: &str) -> Result<Replay, String> {
        self.made += 1;
        let name = format!("s{}", self.made);
        let dir = land_dir(&self.root);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let worktree = dir.join(&name);
        let path = worktree.to_string_lossy().into_owned();
        // A branch that holds the tip already (one its worker merged the target into)
        // is stacked as it is: a fast-forward, merges and all.
        if git(
            &self.root,
            &["merge-base", "--is-ancestor", onto, branch_tip],
        )
        .is_ok()
        {
            let add = ["worktree", "add", "-q", "--detach", &path, branch_tip];
            git(&self.root, &add)?;
            return self.built(&name, worktree, onto, branch_tip);
        }
        git(
            &self.root,
            &["worktree", "add", "-q", "--detach", &path, onto],
        )?;
        let replayed = git(
            &worktree,
            &[
                "rebase",
                "-q",
                "--no-autostash",
                "--onto",
                onto,
                base,
                branch_tip,
            ],
        );
        if replayed.is_err() {
            let files =
                git(&worktree, &["diff", "--name-only", "--diff-filter=U"]).unwrap_or_default();
            let _ = git(&worktree, &["rebase", "--abort"]);
            self.remove(&worktree);
            let files: Vec<String> = files.lines().map(str::to_string).collect();
            if files.is_empty() {
                return Err(replayed.err().unwrap_or_default());
            }
            return Ok(Replay::Conflicted(files));
        }
        let tip = git(&worktree, &["rev-parse", "HEAD"])?;
        if tip == onto {
            self.remove(&worktree);
            return Ok(Replay::Empty);
        }
        self.built(&name, worktree, onto, &tip)
    }

    /// A stack made: its tip kept at its ref while its checks run.
    fn built(
        &self,
        name: &str,
        worktree: PathBuf,
        onto: &str,
        tip: &str,
    ) -> Result<Replay, String> {
        git(&self.root, &["update-ref", &format!("{REFS}{name}"), tip])?;
        let range = format!("{onto}..{tip}");
        let commits = git(&worktree, &["rev-list", "--count", &range])?
            .parse()
            .unwrap_or(0);
        Ok(Replay::Built {
            tip: tip.to_string(),
            worktree,
            commits,
        })
    }

    fn remove(&self, worktree: &Path) {
        let path = worktree.to_string_lossy();
        let _ = git(&self.root, &["worktree", "remove", "--force", &path]);
    }
}

/// Removes every temporary worktree and ref of land's (one left by a `land` that was
/// killed, or this one's at its end); a check still running in one is stopped first.
pub fn clear(root: &Path) {
    let dir = land_dir(root);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid") {
                crate::check_run::stop_left_behind(&path);
            }
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                let shown = path.to_string_lossy();
                let _ = git(root, &["worktree", "remove", "--force", &shown]);
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
    if let Ok(refs) = git(root, &["for-each-ref", "--format=%(refname)", REFS]) {
        for name in refs.lines() {
            let _ = git(root, &["update-ref", "-d", name]);
        }
    }
}

/// The record file of the check running in a stack's worktree.
pub fn check_record(worktree: &Path) -> PathBuf {
    let name = worktree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    worktree.with_file_name(format!("{name}.check.pid"))
}

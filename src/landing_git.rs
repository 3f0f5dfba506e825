//! The git a landing does, in a worker's worktree and for `leash land`: keeping a
//! branch's tip before it is rewritten, looking at a branch against the target, giving
//! a landing up (the branch and worktree back as they were, nothing lost) and taking
//! the landed work in. Every command runs with hooks off (`core.hooksPath=/dev/null`):
//! leash's own git operations nudge no worker.
//!
//! These run `git` itself: rebase, merge and their aborts are git's porcelain, which
//! git2 does not have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::git::{self, CommitInfo, FileChange};

/// Where a branch's tip is kept while `land` hands it back: until it lands, or is
/// given up and restored from here.
pub fn pre_land_ref(worker: &str) -> String {
    format!("refs/leash/pre-land/{worker}")
}

/// Where what a given-up landing left in the worktree is kept (a commit of the whole
/// worktree as it was, its parents the HEAD then and the leftovers kept before).
pub fn leftovers_ref(worker: &str) -> String {
    format!("refs/leash/land-leftovers/{worker}")
}

/// A git operation a person or an agent began and did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InProgress {
    Rebase,
    Merge,
    CherryPick,
}

impl std::fmt::Display for InProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InProgress::Rebase => "rebase",
            InProgress::Merge => "merge",
            InProgress::CherryPick => "cherry-pick",
        })
    }
}

/// A worker's branch against the target's tip, as the landing gate reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LandView {
    /// The branch's tip (`None`: the branch is gone).
    pub branch_tip: Option<String>,
    /// HEAD is the branch (not detached, not another branch).
    pub on_branch: bool,
    /// The branch's tip descends from the target's tip land saw.
    pub descends: bool,
    pub in_progress: Option<InProgress>,
    /// Changed, staged and untracked files.
    pub changes: Vec<FileChange>,
    /// Files with unresolved conflicts.
    pub conflicted: Vec<String>,
}

/// What keeping the branch's tip found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kept {
    /// The rebase or merge it aborted.
    pub aborted: Option<InProgress>,
    /// A landing that has not begun found these uncommitted: nothing was kept, and
    /// nothing may be touched (giving it up would reset them away).
    pub dirty: Vec<FileChange>,
}

/// What giving a landing up did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Restored {
    /// The rebase or merge it aborted.
    pub aborted: Option<InProgress>,
    /// The branch was reset to its kept tip (false: none was kept, nothing had moved).
    pub reset: bool,
    /// What the worktree had then, kept aside.
    pub leftovers: Option<Leftovers>,
}

/// A commit of what a given-up landing left in the worktree, and the ref it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftovers {
    pub reference: String,
    pub commit: String,
}

/// How taking the landed work in went.
#[derive(Debug, Clone, PartialEq)]
pub enum Adoption {
    /// The branch is at the landed tip, the worktree with it. `rebased`: the worker's
    /// commits as they landed, newest first; `base`: the commit they begin on.
    Adopted {
        rebased: Vec<CommitInfo>,
        base: Option<String>,
        /// It was already there (a `land` run again finishing its adopts).
        already: bool,
    },
    /// Not taken in, and why; nothing was changed.
    Refused(String),
}

/// `git -c core.hooksPath=/dev/null ARGS` in `dir`, reading nothing: no hook fires
/// (landing's own git operations, here and in `leash land`, nudge no one).
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut git = Command::new("git");
    git.args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null());
    git
}

fn output(mut git: Command, what: &str) -> Result<Output, Error> {
    git.output()
        .map_err(|e| Error::io(format!("cannot run git to {what}"), e))
}

/// Runs git; its stdout, trimmed, or an error naming what failed and why.
fn run(dir: &Path, args: &[&str], what: &str) -> Result<String, Error> {
    checked(command(dir, args), what)
}

fn checked(git: Command, what: &str) -> Result<String, Error> {
    let out = output(git, what)?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(Error::setup(format!(
            "git could not {what}: {}",
            crate::human::one_line(said.trim(), 300)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit `name` names, if it names one.
fn commit_of(dir: &Path, name: &str) -> Result<Option<String>, Error> {
    let spec = format!("{name}^{{commit}}");
    let out = output(
        command(dir, &["rev-parse", "-q", "--verify", &spec]),
        "read a ref",
    )?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// `ancestor` is `commit` or one of its ancestors.
fn descends(dir: &Path, ancestor: &str, commit: &str) -> Result<bool, Error> {
    let out = output(
        command(dir, &["merge-base", "--is-ancestor", ancestor, commit]),
        "compare commits",
    )?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(Error::setup(format!(
            "git could not compare {} with {}: {}",
            git::short_id(ancestor),
            git::short_id(commit),
            crate::human::one_line(String::from_utf8_lossy(&out.stderr).trim(), 300)
        ))),
    }
}

/// The worktree's own git path for `name` (a worktree has its own rebase state).
fn git_path(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let path = run(dir, &["rev-parse", "--git-path", name], "find the git dir")?;
    Ok(dir.join(path))
}

/// The rebase, merge or cherry-pick under way in the worktree, if one is.
pub fn in_progress(dir: &Path) -> Result<Option<InProgress>, Error> {
    for (name, what) in [
        ("rebase-merge", InProgress::Rebase),
        ("rebase-apply", InProgress::Rebase),
        ("MERGE_HEAD", InProgress::Merge),
        ("CHERRY_PICK_HEAD", InProgress::CherryPick),
    ] {
        if git_path(dir, name)?.exists() {
            return Ok(Some(what));
        }
    }
    Ok(None)
}

/// Aborts the rebase, merge or cherry-pick under way, if one is: the worktree goes
/// back to where it began.
pub fn abort_in_progress(dir: &Path) -> Result<Option<InProgress>, Error> {
    let Some(what) = in_progress(dir)? else {
        return Ok(None);
    };
    let verb = what.to_string();
    run(
        dir,
        &[&verb, "--abort"],
        &format!("abort the {what} under way"),
    )?;
    Ok(Some(what))
}

/// Keeps the branch's tip at [`pre_land_ref`] unless a tip is kept there already (a
/// landing handed back again goes on from the first one's), after aborting a rebase or
/// merge no landing turn is running. A landing that has not begun needs a clean
/// worktree: a dirty one is answered, and nothing kept.
pub fn keep(dir: &Path, branch: &str, worker: &str) -> Result<Kept, Error> {
    let aborted = abort_in_progress(dir)?;
    let kept = pre_land_ref(worker);
    if commit_of(dir, &kept)?.is_none() {
        let dirty = git::changes(dir)?;
        if !dirty.is_empty() {
            return Ok(Kept { aborted, dirty });
        }
        let Some(tip) = commit_of(dir, &branch_ref(branch))? else {
            return Err(Error::setup(format!("the branch {branch} is gone"))
                .hint("`leash session list` shows the worker's worktree and branch"));
        };
        run(
            dir,
            &["update-ref", "-m", "leash land: keep", &kept, &tip, ""],
            "keep the branch's tip",
        )?;
    }
    Ok(Kept {
        aborted,
        dirty: Vec::new(),
    })
}

/// The branch against the target's tip land saw.
pub fn look(dir: &Path, branch: &str, target_tip: &str) -> Result<LandView, Error> {
    let branch_tip = commit_of(dir, &branch_ref(branch))?;
    let head_ref = output(command(dir, &["symbolic-ref", "-q", "HEAD"]), "read HEAD")?;
    let on_branch = String::from_utf8_lossy(&head_ref.stdout).trim() == branch_ref(branch);
    let descends = match &branch_tip {
        Some(tip) => descends(dir, target_tip, tip)?,
        None => false,
    };
    let conflicted = run(
        dir,
        &["diff", "--name-only", "--diff-filter=U", "-z"],
        "list conflicted files",
    )?;
    Ok(LandView {
        branch_tip,
        on_branch,
        descends,
        in_progress: in_progress(dir)?,
        changes: git::changes(dir)?,
        conflicted: conflicted
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Gives a landing up: what the worktree holds beyond the kept tip is committed to
/// [`leftovers_ref`] (through an index of its own, so the worktree's index is not
/// touched), a rebase or merge under way is aborted, and the branch and worktree are
/// reset to the tip kept at [`pre_land_ref`], which is then dropped.
pub fn restore(dir: &Path, branch: &str, worker: &str) -> Result<Restored, Error> {
    // No tip kept: no landing began here, and what the worktree holds is not its.
    let Some(kept) = commit_of(dir, &pre_land_ref(worker))? else {
        return Ok(Restored::default());
    };
    let leftovers = match git::changes(dir)?.is_empty() {
        true => None,
        false => Some(keep_leftovers(dir, worker)?),
    };
    let aborted = abort_in_progress(dir)?;
    run(
        dir,
        &["checkout", "-q", "-f", "-B", branch, &kept],
        "reset the branch to its kept tip",
    )?;
    // What is removed here is in the leftovers commit.
    run(
        dir,
        &["clean", "-q", "-f", "-d"],
        "remove what the landing left",
    )?;
    drop_kept(dir, worker, Some(&kept))?;
    Ok(Restored {
        aborted,
        reset: true,
        leftovers,
    })
}

/// Drops the tip kept at [`pre_land_ref`] (only if it is still `kept`): the landing
/// is over.
fn drop_kept(dir: &Path, worker: &str, kept: Option<&str>) -> Result<(), Error> {
    let Some(kept) = kept else {
        return Ok(());
    };
    let kept_ref = pre_land_ref(worker);
    run(
        dir,
        &["update-ref", "-d", &kept_ref, kept],
        "drop the kept tip",
    )
    .map(drop)
}

/// The worktree as it is (tracked and untracked, not ignored), committed on top of
/// HEAD (and the leftovers kept before) at [`leftovers_ref`].
fn keep_leftovers(dir: &Path, worker: &str) -> Result<Leftovers, Error> {
    let index = git_path(dir, "leash-leftovers.index")?;
    let _ = std::fs::remove_file(&index);
    let with_index = |args: &[&str]| {
        let mut git = command(dir, args);
        git.env("GIT_INDEX_FILE", &index);
        git
    };
    let saved = checked(with_index(&["add", "-A"]), "save the worktree's leftovers")
        .and_then(|_| checked(with_index(&["write-tree"]), "save the worktree's leftovers"));
    let _ = std::fs::remove_file(&index);
    let tree = saved?;
    let reference = leftovers_ref(worker);
    let mut parents = Vec::new();
    for parent in ["HEAD", reference.as_str()] {
        if let Some(commit) = commit_of(dir, parent)? {
            parents.extend(["-p".to_string(), commit]);
        }
    }
    let mut args = vec!["commit-tree", tree.as_str()];
    args.extend(parents.iter().map(String::as_str));
    args.extend([
        "-m",
        "leash land: what a given-up landing left in the worktree",
    ]);
    let mut git = command(dir, &args);
    for (key, value) in [
        ("GIT_AUTHOR_NAME", "leash"),
        ("GIT_AUTHOR_EMAIL", "leash@localhost"),
        ("GIT_COMMITTER_NAME", "leash"),
        ("GIT_COMMITTER_EMAIL", "leash@localhost"),
    ] {
        git.env(key, value);
    }
    let commit = checked(git, "save the worktree's leftovers")?;
    run(
        dir,
        &[
            "update-ref",
            "-m",
            "leash land: leftovers",
            &reference,
            &commit,
        ],
        "keep the worktree's leftovers",
    )?;
    Ok(Leftovers { reference, commit })
}

/// Takes the landed work in: the branch moves from `expected_tip` to `branch_tip`
/// (compare-and-swap: a branch that moved meanwhile is refused, never overwritten),
/// the clean worktree follows as `git reset --keep` would, and the kept tip is dropped.
/// `since` is where the worker's commits began; they are answered as they landed.
pub fn adopt(
    dir: &Path,
    branch: &str,
    worker: &str,
    (branch_tip, expected_tip): (&str, &str),
    since: Option<&str>,
) -> Result<Adoption, Error> {
    let refused = |why: String| Ok(Adoption::Refused(why));
    let Some(tip) = commit_of(dir, &branch_ref(branch))? else {
        return refused(format!("the branch {branch} is gone"));
    };
    let Some(landed_tip) = commit_of(dir, branch_tip)? else {
        return refused(format!(
            "the landed commit {} is not in the repository",
            git::short_id(branch_tip)
        ));
    };
    if let Some(what) = in_progress(dir)? {
        return refused(format!("a {what} is under way in the worktree"));
    }
    let kept = commit_of(dir, &pre_land_ref(worker))?;
    let expected = commit_of(dir, expected_tip)?;
    if tip == landed_tip && expected.as_deref() != Some(tip.as_str()) {
        // Taken in before (a `land` run again finishing its adopts).
        drop_kept(dir, worker, kept.as_deref())?;
        let (rebased, base) = landed_commits(dir, since, &tip, &tip)?;
        return Ok(Adoption::Adopted {
            rebased,
            base,
            already: true,
        });
    }
    if expected.as_deref() != Some(tip.as_str()) {
        return refused(format!(
            "the branch {branch} moved: it is at {}, land expected {}",
            git::short_id(&tip),
            git::short_id(expected_tip)
        ));
    }
    if let Some(why) = unfit_to_move(dir, branch)? {
        return refused(why);
    }
    // The worker's commits, counted as they were before any landing rewrote them.
    let original = kept.clone().unwrap_or_else(|| tip.clone());
    let (rebased, base) = landed_commits(dir, since, &original, &landed_tip)?;
    if tip != landed_tip
        && let Err(why) = move_branch(dir, branch, &tip, &landed_tip)?
    {
        return refused(why);
    }
    drop_kept(dir, worker, kept.as_deref())?;
    Ok(Adoption::Adopted {
        rebased,
        base,
        already: false,
    })
}

/// Why the worktree cannot follow its branch, if it cannot: not on it, or dirty.
fn unfit_to_move(dir: &Path, branch: &str) -> Result<Option<String>, Error> {
    let head_ref = output(command(dir, &["symbolic-ref", "-q", "HEAD"]), "read HEAD")?;
    if String::from_utf8_lossy(&head_ref.stdout).trim() != branch_ref(branch) {
        return Ok(Some(format!("the worktree is not on {branch}")));
    }
    let changes = git::changes(dir)?;
    if changes.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = changes.iter().map(ToString::to_string).collect();
    Ok(Some(format!(
        "the worktree has uncommitted changes: {}",
        crate::human::first_of(&names, 5)
    )))
}

/// Moves the branch from `from` to `to` (compare-and-swap), and the worktree with it
/// as a branch switch does: a two-tree merge of its index from the old tip to the new
/// one. `Ok(Err(why))` when it could not: nothing moved.
fn move_branch(
    dir: &Path,
    branch: &str,
    from: &str,
    to: &str,
) -> Result<Result<(), String>, Error> {
    let swap = [
        "update-ref",
        "-m",
        "leash land: adopt",
        &branch_ref(branch),
        to,
        from,
    ];
    if !output(command(dir, &swap), "move the branch")?
        .status
        .success()
    {
        return Ok(Err(format!(
            "the branch {branch} moved while it was adopted"
        )));
    }
    if let Err(e) = run(
        dir,
        &["read-tree", "-m", "-u", from, to],
        "update the worktree",
    ) {
        let _ = run(
            dir,
            &["update-ref", &branch_ref(branch), from, to],
            "move the branch back",
        );
        return Ok(Err(e.message));
    }
    Ok(Ok(()))
}

/// The worker's commits as they landed: as many as `original` held since `since`,
/// from `landed` down its first parents; and the commit below them.
fn landed_commits(
    dir: &Path,
    since: Option<&str>,
    original: &str,
    landed: &str,
) -> Result<(Vec<CommitInfo>, Option<String>), Error> {
    let count = git::commits_between(dir, since, original)?.len();
    if count == 0 {
        return Ok((Vec::new(), since.map(str::to_string)));
    }
    let base = commit_of(dir, &format!("{landed}~{count}"))?;
    let rebased = git::commits_between(dir, base.as_deref(), landed)?;
    Ok((rebased, base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_git as git;

    fn commit(dir: &Path, file: &str, text: &str) -> String {
        std::fs::write(dir.join(file), text).unwrap();
        git(dir, &["add", file]);
        git(dir, &["commit", "-q", "-m", file]);
        git(dir, &["rev-parse", "HEAD"])
    }

    /// A repository on `main` and a branch `leash/w` off it that conflicts with it.
    fn conflicting() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        commit(d, "shared", "base\n");
        git(d, &["checkout", "-q", "-b", "leash/w"]);
        let branch = commit(d, "shared", "mine\n");
        git(d, &["checkout", "-q", "main"]);
        let target = commit(d, "shared", "theirs\n");
        git(d, &["checkout", "-q", "leash/w"]);
        (dir, branch, target)
    }

    #[test]
    fn a_given_up_landing_gives_back_the_branch_and_keeps_the_leftovers() {
        let (dir, branch, target) = conflicting();
        let d = dir.path();
        assert_eq!(keep(d, "leash/w", "w").unwrap(), Kept::default());
        let rebase = command(d, &["rebase", "main"]).output().unwrap();
        assert!(!rebase.status.success(), "it conflicts");
        std::fs::write(d.join("notes.txt"), "half a thought\n").unwrap();
        let view = look(d, "leash/w", &target).unwrap();
        assert_eq!(view.in_progress, Some(InProgress::Rebase));
        assert_eq!(view.conflicted, ["shared"]);
        assert!(!view.on_branch && !view.descends);
        let restored = restore(d, "leash/w", "w").unwrap();
        assert_eq!(restored.aborted, Some(InProgress::Rebase));
        assert!(restored.reset);
        assert_eq!(git(d, &["rev-parse", "leash/w"]), branch);
        assert_eq!(git(d, &["status", "--porcelain"]), "");
        assert_eq!(std::fs::read_to_string(d.join("shared")).unwrap(), "mine\n");
        let leftovers = restored.leftovers.unwrap();
        assert_eq!(leftovers.reference, leftovers_ref("w"));
        assert_eq!(
            git(d, &["show", &format!("{}:notes.txt", leftovers.reference)]),
            "half a thought"
        );
        assert!(commit_of(d, &pre_land_ref("w")).unwrap().is_none());
    }

    #[test]
    fn adopting_moves_a_branch_only_from_where_land_saw_it() {
        let (dir, branch, target) = conflicting();
        let d = dir.path();
        let since = git(d, &["rev-parse", "main~1"]);
        keep(d, "leash/w", "w").unwrap();
        // The landed work: the branch's change on top of the target, made elsewhere.
        git(d, &["checkout", "-q", "--detach", &target]);
        let landed = commit(d, "shared", "theirs and mine\n");
        git(d, &["checkout", "-q", "leash/w"]);
        let moved = adopt(d, "leash/w", "w", (&landed, &target), Some(&since)).unwrap();
        assert!(
            matches!(moved, Adoption::Refused(ref why) if why.contains("moved")),
            "{moved:?}"
        );
        assert_eq!(git(d, &["rev-parse", "leash/w"]), branch);
        let adopted = adopt(d, "leash/w", "w", (&landed, &branch), Some(&since)).unwrap();
        let Adoption::Adopted {
            rebased,
            base,
            already,
        } = adopted
        else {
            panic!("{adopted:?}");
        };
        assert!(!already);
        assert_eq!(rebased.len(), 1);
        assert_eq!(rebased[0].id, landed);
        assert_eq!(base.as_deref(), Some(target.as_str()));
        assert_eq!(git(d, &["rev-parse", "HEAD"]), landed);
        assert_eq!(git(d, &["status", "--porcelain"]), "");
        assert_eq!(
            std::fs::read_to_string(d.join("shared")).unwrap(),
            "theirs and mine\n"
        );
        assert!(commit_of(d, &pre_land_ref("w")).unwrap().is_none());
        let again = adopt(d, "leash/w", "w", (&landed, &branch), Some(&since)).unwrap();
        assert!(
            matches!(again, Adoption::Adopted { already: true, .. }),
            "{again:?}"
        );
    }

    #[test]
    fn giving_up_where_no_landing_began_touches_nothing() {
        let (dir, branch, _) = conflicting();
        let d = dir.path();
        std::fs::write(d.join("mine.txt"), "a person's\n").unwrap();
        assert_eq!(restore(d, "leash/w", "w").unwrap(), Restored::default());
        assert_eq!(git(d, &["rev-parse", "leash/w"]), branch);
        assert!(d.join("mine.txt").exists());
        assert!(commit_of(d, &leftovers_ref("w")).unwrap().is_none());
        let kept = keep(d, "leash/w", "w").unwrap();
        assert_eq!(
            kept.dirty.len(),
            1,
            "a dirty worktree is not landed: {kept:?}"
        );
        assert!(commit_of(d, &pre_land_ref("w")).unwrap().is_none());
    }
}

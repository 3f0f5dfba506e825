//! `session rm` never deletes what git could not give back, whatever a person did in
//! the worktree: each case here once lost work with exit 0.

use crate::support::{Env, git};

fn started(env: &Env, worker: &str) -> std::path::PathBuf {
    env.ok(&["--worker", worker, "session", "start", "--worktree"]);
    env.repo.join(".leash/worktrees").join(worker)
}

fn refused(env: &Env, worker: &str, needle: &str) {
    let run = env.leash(&["session", "rm", worker]);
    assert_eq!(run.code(), 15, "{run:?}");
    assert!(run.stderr.contains(needle), "{needle:?} in {run:?}");
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

fn commit_in(dir: &std::path::Path, file: &str) -> String {
    std::fs::write(dir.join(file), "work\n").unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", file]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn edits_to_a_file_marked_unchanged_are_kept() {
    let env = Env::worker();
    let tree = started(&env, "a");
    std::fs::write(tree.join("README.md"), "a person's edit\n").unwrap();
    git(&tree, &["update-index", "--assume-unchanged", "README.md"]);
    refused(&env, "a", "M README.md (marked unchanged)");
    assert_eq!(
        std::fs::read_to_string(tree.join("README.md")).unwrap(),
        "a person's edit\n"
    );
    git(
        &tree,
        &["update-index", "--no-assume-unchanged", "README.md"],
    );
    git(&tree, &["update-index", "--skip-worktree", "README.md"]);
    refused(&env, "a", "M README.md (marked unchanged)");
}

#[test]
fn ignored_files_in_a_new_directory_are_kept() {
    let env = Env::worker();
    std::fs::write(env.repo.join(".gitignore"), ".env\n").unwrap();
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore .env"]);
    let tree = started(&env, "b");
    std::fs::create_dir_all(tree.join("conf/deep")).unwrap();
    std::fs::write(tree.join("conf/deep/.env"), "TOKEN=mine\n").unwrap();
    refused(&env, "b", "conf/deep/.env");
    assert!(tree.join("conf/deep/.env").is_file());
}

#[test]
fn commits_only_a_worktree_ref_holds_are_kept() {
    let env = Env::worker();
    let tree = started(&env, "c");
    let kept = commit_in(&tree, "kept.txt");
    git(&tree, &["update-ref", "refs/worktree/keep", "HEAD"]);
    git(&tree, &["reset", "-q", "--hard", "HEAD~1"]);
    refused(&env, "c", &format!("refs/worktree/keep at {}", &kept[..10]));
    assert_eq!(git(&tree, &["cat-file", "-t", &kept]), "commit");
}

#[test]
fn a_worktree_moved_by_hand_is_not_forgotten_with_its_commits() {
    let env = Env::worker();
    let tree = started(&env, "d");
    env.ok(&["session", "stop", "--all"]);
    git(&tree, &["checkout", "-q", "--detach"]);
    let lost = commit_in(&tree, "detached.txt");
    let moved = env.dir.path().join("moved-d");
    std::fs::rename(&tree, &moved).unwrap();
    refused(&env, "d", &format!("detached HEAD at {}", &lost[..10]));
    git(&moved, &["branch", "keep-it"]);
    refused(&env, "d", "moved by hand, or deleted");
    assert_eq!(
        git(&moved, &["rev-parse", "HEAD"]),
        lost,
        "still a repository"
    );
    // Told where it is, rm checks it there.
    git(&moved, &["worktree", "repair"]);
    env.ok(&["session", "rm", "d"]);
    assert!(!moved.exists());
}

#[test]
fn a_locked_worktree_is_refused_before_its_worker_is_stopped() {
    let env = Env::worker();
    let tree = started(&env, "e");
    env.git(&[
        "worktree",
        "lock",
        "--reason",
        "mine",
        tree.to_str().unwrap(),
    ]);
    refused(&env, "e", "mine");
    assert_eq!(
        env.leash(&["--worker", "e", "session", "status"]).code(),
        0,
        "still running"
    );
    env.ok(&["session", "rm", "e", "--force"]);
    assert!(!tree.exists());
}

#[test]
fn a_checked_out_submodule_is_kept() {
    let env = Env::worker();
    let sub = env.dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q", "-b", "main"]);
    git(
        &sub,
        &[
            "-c",
            "user.email=t@e",
            "-c",
            "user.name=T",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "s0",
        ],
    );
    env.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub.to_str().unwrap(),
        "sub",
    ]);
    env.git(&["commit", "-q", "-m", "add sub"]);
    let tree = started(&env, "f");
    git(
        &tree,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "update",
            "--init",
            "-q",
        ],
    );
    refused(&env, "f", "1 checked-out submodule(s) (sub)");
    assert!(tree.join("sub/.git").exists());
}

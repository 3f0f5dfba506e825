//! Many workers on one repository: a worktree each, forks of one conversation, nothing
//! lost on clean-up. Against the fake claude, in real repositories; each worker follows
//! its own script (`FAKE_CLAUDE_SCRIPT` with `%w` for the worker).

use std::path::{Path, PathBuf};

use crate::support::{Env, finish, git};
use serde_json::Value;

/// A worker environment where each worker reads `script-<worker>.txt`.
pub(crate) fn many() -> Env {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    env
}

pub(crate) fn script(env: &Env, worker: &str, lines: &[&str]) {
    let path = env.dir.path().join(format!("script-{worker}.txt"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let _ = std::fs::remove_file(path.with_extension("pos"));
}

fn worktree(env: &Env, worker: &str) -> PathBuf {
    env.repo
        .canonicalize()
        .unwrap()
        .join(".leash/worktrees")
        .join(worker)
}

fn rows(env: &Env) -> Vec<Value> {
    env.ok(&["session", "list", "--json"]).json_lines()
}

fn row<'a>(rows: &'a [Value], worker: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["worker"] == worker)
        .unwrap_or_else(|| panic!("no row for {worker}: {rows:?}"))
}

fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn two_worktree_loops_at_once_commit_on_their_own_branches_and_leave_the_checkout_alone() {
    let env = many();
    for worker in ["a", "b"] {
        script(
            &env,
            worker,
            &[
                &format!("reply 1. write {worker}.txt"),
                &format!("write {worker}.txt; commit add {worker}.txt"),
            ],
        );
    }
    let main_head = head(&env.repo);
    let loops: Vec<_> = ["a", "b"]
        .iter()
        .map(|w| {
            env.spawn(&[
                "--worker",
                w,
                "loop",
                "--worktree",
                "--task",
                &format!("Add {w}.txt"),
            ])
        })
        .collect();
    for run in loops {
        let run = finish(run, std::time::Duration::from_secs(60));
        assert_eq!(run.code(), 0, "{run:?}");
    }
    assert_eq!(head(&env.repo), main_head, "the main checkout's HEAD");
    assert_eq!(
        git(&env.repo, &["status", "--porcelain"]),
        "",
        "the main work tree stays clean: .leash/ is excluded"
    );
    for worker in ["a", "b"] {
        let dir = worktree(&env, worker);
        assert!(dir.join(format!("{worker}.txt")).is_file());
        assert_eq!(
            git(&dir, &["branch", "--show-current"]),
            format!("leash/{worker}")
        );
        assert_eq!(
            git(&dir, &["log", "-1", "--format=%s"]),
            format!("add {worker}.txt")
        );
        assert_eq!(
            git(&dir, &["rev-parse", "HEAD~1"]),
            main_head,
            "from the checkout's HEAD"
        );
    }
    let rows = rows(&env);
    for worker in ["a", "b"] {
        let r = row(&rows, worker);
        assert_eq!(r["worktree"], worktree(&env, worker).display().to_string());
        assert_eq!(r["branch"], format!("leash/{worker}"));
        assert_eq!(r["phase"], "done");
    }
    let human = env.ok(&["session", "list"]);
    assert!(human.stdout.contains("BRANCH"), "{human:?}");
    assert!(human.stdout.contains("leash/a"), "{human:?}");
}

#[test]
fn a_worktree_worker_is_found_from_inside_it_and_by_name_from_anywhere() {
    let env = many();
    script(&env, "w1", &["reply hello from w1"]);
    let run = env.ok(&["--worker", "w1", "session", "send", "--worktree", "hi"]);
    assert_eq!(run.stdout, "hello from w1\n");
    let dir = worktree(&env, "w1");
    let status = env.leash_in(&dir, &["session", "status", "--json"]);
    assert_eq!(status.code(), 0, "{status:?}");
    assert_eq!(status.last_json()["worker"], "w1");
    assert_eq!(status.last_json()["cwd"], dir.display().to_string());
    let sub = dir.join("deeper");
    std::fs::create_dir_all(&sub).unwrap();
    assert_eq!(
        env.leash_in(&sub, &["status", "--json"]).last_json()["worker"],
        "w1"
    );
    let worker = env.ok(&["--worker", "w1", "status", "--json"]).last_json();
    assert_eq!(worker["branch"], "leash/w1");
    assert_eq!(worker["worktree"], dir.display().to_string());
    // Without a name there is no worktree to make.
    let run = env.leash(&["session", "send", "--worktree", "hi"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains("--worktree needs a worker name"),
        "{run:?}"
    );
}

#[test]
fn session_rm_removes_a_clean_worktree_keeps_a_dirty_one_and_force_removes_it() {
    let env = many();
    for worker in ["clean", "dirty"] {
        script(
            &env,
            worker,
            &[
                "reply 1. write it",
                &format!("write {worker}.txt; commit add {worker}.txt"),
            ],
        );
        let run = env.leash(&["--worker", worker, "loop", "--worktree", "--task", "t"]);
        assert_eq!(run.code(), 0, "{run:?}");
    }
    // Unmerged work: the worktree goes, the branch stays, and it says so.
    let run = env.ok(&["session", "rm", "clean"]);
    assert!(!worktree(&env, "clean").exists());
    assert!(
        run.stderr
            .contains("kept its branch leash/clean: it has commits main lacks"),
        "{run:?}"
    );
    assert_eq!(
        git(&env.repo, &["branch", "--list", "leash/clean"]),
        "leash/clean"
    );
    assert!(
        rows(&env).iter().all(|r| r["worker"] != "clean"),
        "forgotten"
    );

    let dirty = worktree(&env, "dirty");
    std::fs::write(dirty.join("notes.txt"), "mine, not committed\n").unwrap();
    let run = env.leash(&["session", "rm", "dirty"]);
    assert_eq!(run.code(), 15, "{run:?}");
    assert!(run.stderr.contains("?? notes.txt"), "{run:?}");
    assert!(
        run.stderr.contains("hint:") && run.stderr.contains("--force"),
        "{run:?}"
    );
    assert!(dirty.join("notes.txt").is_file(), "nothing lost");
    assert!(
        row(&rows(&env), "dirty")["worktree"].is_string(),
        "still known"
    );
    // Merged, then forced: everything goes.
    git(&env.repo, &["merge", "-q", "--ff-only", "leash/dirty"]);
    let run = env.ok(&["session", "rm", "dirty", "--force"]);
    assert!(!dirty.exists());
    assert!(
        run.stderr.contains("and its branch leash/dirty (merged)"),
        "{run:?}"
    );
    assert_eq!(git(&env.repo, &["branch", "--list", "leash/dirty"]), "");
    // A worker without a worktree is only forgotten.
    env.ok(&["--worker", "plain", "session", "send", "hi"]);
    env.ok(&["session", "rm", "plain"]);
    assert!(rows(&env).iter().all(|r| r["worker"] != "plain"));
    let run = env.leash(&["session", "rm", "nobody"]);
    assert_eq!(run.code(), 3, "{run:?}");
}

#[test]
fn a_hook_fired_in_a_worktree_nudges_that_worktrees_worker() {
    let env = many();
    env.ok(&["hooks", "install"]);
    script(&env, "w", &["reply 1. plan", "write w.txt", "reply noted"]);
    env.ok(&["--worker", "w", "plan", "--worktree", "--task", "t"]);
    assert_eq!(env.leash(&["--worker", "w", "implement"]).code(), 12);
    let dir = worktree(&env, "w");
    std::fs::write(dir.join("theirs.txt"), "x").unwrap();
    git(&dir, &["add", "theirs.txt"]);
    let mut commit = std::process::Command::new("git");
    commit
        .args(["commit", "-q", "-m", "their change in the worktree"])
        .current_dir(&dir);
    for (key, value) in &env.vars {
        commit.env(key, value);
    }
    assert!(commit.status().unwrap().success());
    env.wait_until("the hook's nudge to reach worker w", || {
        env.turns().iter().any(|t| {
            t["prompt"]
                .as_str()
                .is_some_and(|p| p.contains("their change in the worktree"))
        })
    });
}

fn turns_of(env: &Env, session: &str) -> Vec<Value> {
    env.turns()
        .into_iter()
        .filter(|t| t["session_id"] == session)
        .collect()
}

#[test]
fn a_fork_carries_the_plan_into_its_first_turn_and_the_original_does_not_see_the_forks() {
    let env = many();
    script(
        &env,
        "orig",
        &["reply 1. write f.txt\\n2. commit it", "reply hello"],
    );
    script(&env, "try1", &["write f.txt; commit add f.txt"]);
    env.ok(&["--worker", "orig", "plan", "--task", "Add f.txt"]);
    let orig = env
        .ok(&["--worker", "orig", "session", "status", "--json"])
        .last_json();
    let run = env.ok(&["--worker", "orig", "session", "fork", "try1", "--worktree"]);
    let forked = env
        .ok(&["--worker", "try1", "session", "status", "--json"])
        .last_json();
    assert_ne!(
        forked["session_id"], orig["session_id"],
        "a conversation of its own"
    );
    assert!(
        run.stderr.contains(&format!(
            "conversation {} is a copy of {}",
            forked["session_id"].as_str().unwrap(),
            orig["session_id"].as_str().unwrap()
        )),
        "{run:?}"
    );
    assert_eq!(forked["cwd"], worktree(&env, "try1").display().to_string());
    let state = env
        .ok(&["--worker", "try1", "status", "--json"])
        .last_json();
    assert_eq!(state["phase"], "planned", "the worker state is copied");
    assert_eq!(state["plan"], "1. write f.txt\n2. commit it");
    assert_eq!(state["branch"], "leash/try1");
    let spawn = env
        .spawns()
        .into_iter()
        .find(|s| s["argv"].to_string().contains("--fork-session"))
        .expect("claude was asked to fork");
    let argv = spawn["argv"].to_string();
    assert!(
        argv.contains(orig["session_id"].as_str().unwrap()),
        "{argv}"
    );
    assert!(
        argv.contains(forked["session_id"].as_str().unwrap()),
        "{argv}"
    );

    let run = env.leash(&["--worker", "try1", "implement"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let first = &turns_of(&env, forked["session_id"].as_str().unwrap())[0];
    assert_eq!(
        first["history"], 1,
        "the fork's first turn carries the plan"
    );
    assert!(
        first["prompt"]
            .as_str()
            .unwrap()
            .contains("Implement the plan you made above")
    );
    assert_eq!(
        git(&worktree(&env, "try1"), &["log", "-1", "--format=%s"]),
        "add f.txt"
    );
    // The original goes on in its own conversation: the fork's turn is not in it.
    env.ok(&["--worker", "orig", "session", "send", "next"]);
    let mine = turns_of(&env, orig["session_id"].as_str().unwrap());
    assert_eq!(mine.last().unwrap()["history"], 1, "{mine:?}");
    assert_eq!(
        env.ok(&["--worker", "orig", "status", "--json"])
            .last_json()["phase"],
        "planned",
        "the original's state is untouched"
    );
}

#[test]
fn three_forks_implement_in_parallel_on_their_own_branches() {
    let env = many();
    script(&env, "base", &["reply 1. write the file\\n2. commit it"]);
    env.ok(&["--worker", "base", "plan", "--task", "Speed up the parser"]);
    for i in 1..=3 {
        let name = format!("try{i}");
        script(
            &env,
            &name,
            &[&format!("write try{i}.txt; commit attempt {i}")],
        );
        env.ok(&["--worker", "base", "session", "fork", &name, "--worktree"]);
    }
    let runs: Vec<_> = (1..=3)
        .map(|i| env.spawn(&["--worker", &format!("try{i}"), "implement"]))
        .collect();
    for run in runs {
        let run = finish(run, std::time::Duration::from_secs(60));
        assert_eq!(run.code(), 0, "{run:?}");
    }
    let rows = rows(&env);
    for i in 1..=3 {
        let name = format!("try{i}");
        let r = row(&rows, &name);
        assert_eq!(r["phase"], "done", "{r}");
        assert_eq!(r["branch"], format!("leash/{name}"));
        assert_eq!(
            git(&worktree(&env, &name), &["log", "-1", "--format=%s"]),
            format!("attempt {i}")
        );
    }
    assert_eq!(row(&rows, "base")["phase"], "planned");
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
}

#[test]
fn a_fork_needs_a_conversation_and_a_free_name() {
    let env = many();
    let run = env.leash(&["--worker", "empty", "session", "fork", "copy"]);
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(
        run.stderr.contains("no conversation to fork yet"),
        "{run:?}"
    );
    script(&env, "a", &["reply hi"]);
    script(&env, "b", &["reply hi"]);
    env.ok(&["--worker", "a", "session", "send", "hi"]);
    env.ok(&["--worker", "b", "session", "send", "hi"]);
    let run = env.leash(&["--worker", "a", "session", "fork", "b"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("worker b exists already"), "{run:?}");
    let run = env.leash(&["--worker", "a", "session", "fork", "a"]);
    assert_eq!(run.code(), 2, "{run:?}");
    // Without --worktree the fork works where the original does.
    env.ok(&["--worker", "a", "session", "fork", "c"]);
    let c = env
        .ok(&["--worker", "c", "session", "status", "--json"])
        .last_json();
    assert_eq!(
        c["cwd"],
        env.repo.canonicalize().unwrap().display().to_string()
    );
}

/// The first turn's answer means the conversation is on disk: a script that forks right
/// after it (the README's best-of-three) never finds "no conversation to fork yet".
#[test]
fn a_fork_right_after_the_first_turn_finds_the_conversation() {
    let env = many();
    let run = env.bash(
        "set -e; for i in 0 1 2 3 4 5 6 7 8 9; do \
           leash --worker \"src$i\" session send hi >/dev/null; \
           leash --worker \"src$i\" session fork \"copy$i\" >/dev/null; \
         done",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    env.ok(&["session", "stop", "--all"]);
}

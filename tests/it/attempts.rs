//! Best of N (`leash loop --attempts N`): one plan, N attempts forked from it, each in
//! its own worktree, the green ones judged by the plan model, the winner kept as the
//! worker. Against the fake claude, in real repositories; the planner and each attempt
//! follow their own script (`FAKE_CLAUDE_SCRIPT` with `%w` for the worker).

use std::path::PathBuf;

use crate::support::{Env, git};
use serde_json::Value;

/// A worker environment where each worker reads `script-<worker>.txt`.
fn env() -> Env {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    env
}

fn script(env: &Env, worker: &str, lines: &[&str]) {
    let path = env.dir.path().join(format!("script-{worker}.txt"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let _ = std::fs::remove_file(path.with_extension("pos"));
}

fn worktrees(env: &Env) -> PathBuf {
    env.repo.canonicalize().unwrap().join(".leash/worktrees")
}

/// Attempt `k` of `bo` passes the check (writes ok.txt) or fails it (writes only its
/// own file), each commit its own.
fn attempt(env: &Env, k: u32, green: bool) {
    let what = match green {
        true => format!("write ok.txt attempt {k}; write a{k}.txt {k}; commit attempt {k}"),
        false => format!("write a{k}.txt {k}; commit attempt {k}"),
    };
    script(env, &format!("bo-{k}"), &[&what, "reply still trying", "reply still trying"]);
}

const LOOP: &[&str] = &[
    "--worker",
    "bo",
    "--json",
    "loop",
    "--attempts",
    "3",
    "--check",
    "test -f ok.txt",
    "--max-nudges",
    "1",
    "--task",
    "Add ok.txt",
];

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn branches(env: &Env) -> String {
    git(&env.repo, &["for-each-ref", "--format=%(refname)", "refs/heads", "refs/leash"])
}

fn workers(env: &Env) -> Vec<String> {
    env.ok(&["session", "list", "--json"])
        .json_lines()
        .iter()
        .filter_map(|r| r["worker"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn three_attempts_one_failing_the_judge_keeps_the_one_it_names() {
    let env = env();
    script(
        &env,
        "bo",
        &[
            "reply 1. write ok.txt\\n2. commit it",
            "reply Attempt 3 is tidier.\\nLEASH-WINNER: 3",
            "reply the winner speaks",
        ],
    );
    attempt(&env, 1, false);
    attempt(&env, 2, true);
    attempt(&env, 3, true);
    let run = env.leash(LOOP);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    let attempts = of_type(&lines, "attempt");
    assert_eq!(attempts.len(), 3, "{run:?}");
    let one = attempts.iter().find(|a| a["k"] == 1).unwrap();
    assert_eq!(one["exit_code"], 10, "{one}");
    let winner = of_type(&lines, "winner");
    assert_eq!(winner.len(), 1, "{run:?}");
    assert_eq!(winner[0]["k"], 3);
    assert_eq!(winner[0]["chosen_by"], "judge");
    assert!(winner[0]["reason"].as_str().unwrap().contains("tidier"));
    let last = lines.last().unwrap();
    assert_eq!((&last["type"], &last["exit_code"]), (&"finished".into(), &0.into()));
    assert_eq!(last["phase"], "done");

    // The plan was made once, the judge saw the green attempts' diffs only.
    let prompts = env.prompts_received();
    assert_eq!(prompts.iter().filter(|p| p.starts_with("Plan the task")).count(), 1);
    let judge = prompts
        .iter()
        .find(|p| p.contains("LEASH-WINNER: N"))
        .expect("a judge turn");
    assert!(judge.contains("+attempt 2") && judge.contains("+attempt 3"), "{judge}");
    assert!(!judge.contains("a1.txt"), "a failing attempt is not judged: {judge}");

    // leash/bo holds attempt 3's commit; no attempt's worker, worktree or branch is
    // left; the losers' tips are kept.
    assert_eq!(git(&env.repo, &["log", "-1", "--format=%s", "leash/bo"]), "attempt 3");
    let refs = branches(&env);
    for k in 1..=3 {
        assert!(!refs.contains(&format!("refs/heads/leash/bo-{k}")), "{refs}");
    }
    assert!(refs.contains("refs/leash/attempts/bo-1"), "{refs}");
    assert!(refs.contains("refs/leash/attempts/bo-2"), "{refs}");
    assert_eq!(
        git(&env.repo, &["log", "-1", "--format=%s", "refs/leash/attempts/bo-2"]),
        "attempt 2"
    );
    let trees: Vec<String> = std::fs::read_dir(worktrees(&env))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(trees, ["bo"], "only the winner's worktree, as bo's");
    assert_eq!(workers(&env), ["bo"]);
    let wt = git(&env.repo, &["worktree", "list", "--porcelain"]);
    assert!(wt.contains(".leash/worktrees/bo\n"), "{wt}");
    assert!(wt.contains("branch refs/heads/leash/bo"), "{wt}");
    let status = env.ok(&["--worker", "bo", "status", "--json"]).last_json();
    assert_eq!(status["phase"], "done", "{status}");
    assert_eq!(status["branch"], "leash/bo", "{status}");
    assert!(status.get("attempt_of").is_none(), "{status}");

    // A later turn on bo goes on in attempt 3's conversation, in the moved worktree.
    let session_of = |needle: &str| {
        env.turns()
            .iter()
            .find(|t| t["script"].as_str().is_some_and(|s| s.contains(needle)))
            .map(|t| t["session_id"].clone())
            .unwrap()
    };
    let sent = env.ok(&["--worker", "bo", "session", "send", "who are you?"]);
    assert!(sent.stdout.contains("the winner speaks"), "{sent:?}");
    assert_eq!(session_of("the winner speaks"), session_of("commit attempt 3"));
    let spawn = env.spawns().last().cloned().unwrap();
    assert!(
        spawn["cwd"].as_str().unwrap().ends_with(".leash/worktrees/bo"),
        "{spawn}"
    );

    // Run again: the winner is there, nothing is sent.
    let turns = env.turns().len();
    let again = env.leash(LOOP);
    assert_eq!(again.code(), 0, "{again:?}");
    assert_eq!(env.turns().len(), turns);
}

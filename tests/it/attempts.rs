//! Best of N (`leash loop --attempts N`): one plan, N attempts forked from it, each in
//! its own worktree, the green ones judged by the plan model, the winner kept as the
//! worker. Against the fake claude, in real repositories; the planner and each attempt
//! follow their own script (`FAKE_CLAUDE_SCRIPT` with `%w` for the worker).

use std::path::PathBuf;

use crate::many::{many as env, script};
use crate::support::{Env, git};
use serde_json::Value;

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
    script(
        env,
        &format!("bo-{k}"),
        &[&what, "reply still trying", "reply still trying"],
    );
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
    git(
        &env.repo,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads",
            "refs/leash",
        ],
    )
}

/// How many prompts claude received that begin with `start`.
fn prompts_starting(env: &Env, start: &str) -> usize {
    env.prompts_received()
        .iter()
        .filter(|p| p.starts_with(start))
        .count()
}

/// The subject of the commit `reference` points at.
fn subject(env: &Env, reference: &str) -> String {
    git(&env.repo, &["log", "-1", "--format=%s", reference])
}

/// Runs `loop --attempts`, which must keep a winner; its `winner` line.
fn won(env: &Env, args: &[&str]) -> Value {
    let run = env.leash(args);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    let winner = of_type(&lines, "winner");
    assert_eq!(winner.len(), 1, "{run:?}");
    winner[0].clone()
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
    assert_eq!(
        (&last["type"], &last["exit_code"]),
        (&"finished".into(), &0.into())
    );
    assert_eq!(last["phase"], "done");

    // The plan was made once, the judge saw the green attempts' diffs only.
    let prompts = env.prompts_received();
    assert_eq!(prompts_starting(&env, "Plan the task"), 1, "{prompts:?}");
    let judge = prompts
        .iter()
        .find(|p| p.contains("LEASH-WINNER: N"))
        .expect("a judge turn");
    assert!(
        judge.contains("+attempt 2") && judge.contains("+attempt 3"),
        "{judge}"
    );
    assert!(
        !judge.contains("a1.txt"),
        "a failing attempt is not judged: {judge}"
    );

    // leash/bo holds attempt 3's commit; no attempt's worker, worktree or branch is
    // left; the losers' tips are kept.
    assert_eq!(subject(&env, "leash/bo"), "attempt 3");
    let refs = branches(&env);
    for k in 1..=3 {
        assert!(
            !refs.contains(&format!("refs/heads/leash/bo-{k}")),
            "{refs}"
        );
    }
    assert!(refs.contains("refs/leash/attempts/bo-1"), "{refs}");
    assert!(refs.contains("refs/leash/attempts/bo-2"), "{refs}");
    assert_eq!(subject(&env, "refs/leash/attempts/bo-2"), "attempt 2");
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
    assert_eq!(
        session_of("the winner speaks"),
        session_of("commit attempt 3")
    );
    let spawn = env.spawns().last().cloned().unwrap();
    assert!(
        spawn["cwd"]
            .as_str()
            .unwrap()
            .ends_with(".leash/worktrees/bo"),
        "{spawn}"
    );

    // Run again: the winner is there, nothing is sent.
    let turns = env.turns().len();
    let again = env.leash(LOOP);
    assert_eq!(again.code(), 0, "{again:?}");
    assert_eq!(env.turns().len(), turns);

    // The report shows the task once, with every attempt under it and its cost.
    let report = env.ok(&["report", "--json"]).json_lines();
    let tasks = of_type(&report, "task");
    assert_eq!(tasks.len(), 1, "the task once: {report:?}");
    let task = tasks[0];
    assert!(
        task["message"]
            .as_str()
            .unwrap()
            .starts_with("best of 3: 2 green, winner 3"),
        "{task}"
    );
    let attempts = task["attempts"].as_array().expect("attempts");
    let names: Vec<&str> = attempts
        .iter()
        .map(|a| a["worker"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bo-1", "bo-2", "bo-3"], "{task}");
    let own: f64 = attempts
        .iter()
        .map(|a| a["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(
        task["cost_usd"].as_f64().unwrap() > own,
        "the plan and judge count too: {task}"
    );
    let svg = env.ok(&["report", "--svg"]).stdout;
    for lane in ["bo-1", "bo-2"] {
        assert!(
            svg.contains(&format!("data-worker=\"{lane}\"")),
            "{lane}'s lane"
        );
    }

    // The moved worktree is bo's for git too: `session rm` removes it.
    env.ok(&["session", "rm", "bo"]);
    let listed = git(&env.repo, &["worktree", "list", "--porcelain"]);
    assert!(!listed.contains(".leash/worktrees"), "{listed}");
    assert!(!worktrees(&env).join("bo").exists());
}

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = LOOP.to_vec();
    let task = args.len() - 2;
    for (i, arg) in extra.iter().enumerate() {
        args.insert(task + i, arg);
    }
    args
}

fn plan_and_judge(env: &Env, judge: &[&str]) {
    let mut lines = vec!["reply 1. write ok.txt\\n2. commit it"];
    lines.extend_from_slice(judge);
    script(env, "bo", &lines);
}

#[test]
fn a_judge_naming_no_green_attempt_twice_leaves_it_to_the_fewest_changed_lines() {
    let env = env();
    plan_and_judge(
        &env,
        &["reply They are both fine.", "reply LEASH-WINNER: 1"],
    );
    attempt(&env, 1, false);
    script(
        &env,
        "bo-2",
        &["write ok.txt 2; write a2.txt 2; write b2.txt 2; write c2.txt 2; commit attempt 2"],
    );
    attempt(&env, 3, true);
    let winner = won(&env, LOOP);
    assert_eq!(winner["k"], 3, "{winner}");
    assert_eq!(winner["chosen_by"], "fewest_lines", "{winner}");
    let judged = env
        .prompts_received()
        .iter()
        .filter(|p| p.contains("LEASH-WINNER"))
        .count();
    assert_eq!(judged, 2, "asked once more, then no more");
    assert_eq!(subject(&env, "leash/bo"), "attempt 3");
}

#[test]
fn no_green_attempt_exits_10_and_keeps_every_attempt() {
    let env = env();
    plan_and_judge(&env, &[]);
    for k in 1..=3 {
        attempt(&env, k, false);
    }
    let run = env.leash(LOOP);
    assert_eq!(run.code(), 10, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(of_type(&lines, "attempt").len(), 3);
    assert!(of_type(&lines, "winner").is_empty());
    assert_eq!(lines.last().unwrap()["exit_code"], 10);
    assert!(
        !env.prompts_received()
            .iter()
            .any(|p| p.contains("LEASH-WINNER")),
        "no judge"
    );
    let refs = branches(&env);
    for k in 1..=3 {
        assert!(refs.contains(&format!("refs/heads/leash/bo-{k}")), "{refs}");
    }
    assert_eq!(workers(&env), ["bo", "bo-1", "bo-2", "bo-3"]);
    // Run again: nothing is re-run, the answer is the same.
    let turns = env.turns().len();
    assert_eq!(env.leash(LOOP).code(), 10);
    assert_eq!(env.turns().len(), turns);
}

#[test]
fn a_taken_name_is_refused_before_any_turn() {
    let env = env();
    plan_and_judge(&env, &[]);
    // An attempt's branch, then the branch the winner would become.
    for (taken, says) in [
        ("leash/bo-2", "leash/bo-2"),
        ("leash/bo", "becomes worker bo"),
    ] {
        git(&env.repo, &["branch", taken]);
        let run = env.leash(LOOP);
        assert_eq!(run.code(), 2, "{run:?}");
        assert!(run.stdout.contains(says), "{run:?}");
        assert!(env.turns().is_empty(), "no turn was spent");
        git(&env.repo, &["branch", "-D", taken]);
    }

    let long = "w".repeat(63);
    let mut args = LOOP.to_vec();
    args[1] = &long;
    let run = env.leash(&args);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(env.turns().is_empty(), "no turn was spent");
}

#[test]
fn an_attempt_whose_claude_dies_goes_on_and_can_win() {
    let env = env();
    plan_and_judge(&env, &[]);
    attempt(&env, 1, false);
    script(
        &env,
        "bo-2",
        &[
            "write ok.txt half; crash",
            "write ok.txt whole; commit attempt 2",
        ],
    );
    attempt(&env, 3, false);
    let winner = won(&env, LOOP);
    assert_eq!(
        (&winner["k"], &winner["chosen_by"]),
        (&2.into(), &"alone".into())
    );
    assert_eq!(subject(&env, "leash/bo"), "attempt 2");
}

#[test]
fn the_budget_is_one_pool_for_the_plan_and_every_attempt() {
    let env = env();
    plan_and_judge(&env, &[]);
    for k in 1..=3 {
        script(
            &env,
            &format!("bo-{k}"),
            &[
                &format!("cost 0.4; write a{k}.txt; commit attempt {k}"),
                "cost 0.4; reply more",
            ],
        );
    }
    let run = env.leash(&with(&["--budget", "1.00"]));
    assert_eq!(run.code(), 13, "{run:?}");
    let lines = run.json_lines();
    let attempts = of_type(&lines, "attempt");
    assert!(
        attempts.iter().any(|a| a["exit_code"] == 13),
        "the pool stopped them: {attempts:?}"
    );
    let spent: f64 = attempts
        .iter()
        .map(|a| a["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(
        spent < 1.0 + 0.4 * 3.0,
        "no turn beyond the running ones: {spent}"
    );
    let nudges = env
        .prompts_received()
        .iter()
        .filter(|p| p.contains("check") && !p.starts_with("Plan") && !p.starts_with("Implement"))
        .count();
    assert!(
        nudges < 3,
        "not every attempt was nudged on an empty pool: {nudges}"
    );
}

#[test]
fn kept_attempts_stay_as_workers_that_say_whose_attempts_they_are() {
    let env = env();
    plan_and_judge(&env, &["reply LEASH-WINNER: 2"]);
    attempt(&env, 1, false);
    attempt(&env, 2, true);
    attempt(&env, 3, true);
    let run = env.leash(&with(&["--keep-attempts"]));
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(workers(&env), ["bo", "bo-1", "bo-3"]);
    for k in [1, 3] {
        let status = env
            .ok(&["--worker", &format!("bo-{k}"), "status", "--json"])
            .last_json();
        assert_eq!(status["attempt_of"], "bo", "{status}");
    }
    let refs = branches(&env);
    assert!(refs.contains("refs/heads/leash/bo-3"), "{refs}");
    assert!(refs.contains("refs/leash/attempts/bo-3"), "{refs}");
    assert_eq!(subject(&env, "leash/bo"), "attempt 2");
    // The morning lands the winner; a kept attempt, green as it is, is no candidate.
    let land = env.leash(&["--json", "land", "--all"]);
    assert_eq!(land.code(), 0, "{land:?}");
    let outcome = |worker: &str| {
        land.json_lines()
            .into_iter()
            .find(|l| l["type"] == "landing" && l["worker"] == worker)
            .unwrap_or_else(|| panic!("no landing line for {worker}: {land:?}"))
    };
    assert_eq!(outcome("bo")["outcome"], "landed", "{land:?}");
    let kept = outcome("bo-3");
    assert_eq!(kept["outcome"], "skipped", "{land:?}");
    assert!(
        kept["reason"].as_str().unwrap().contains("best of N"),
        "{kept}"
    );
    assert_eq!(subject(&env, "main"), "attempt 2");
}

#[test]
fn a_judge_turn_cut_off_by_a_dead_daemon_is_continued() {
    let env = env();
    plan_and_judge(&env, &["stream 1 10; kill_daemon", "reply LEASH-WINNER: 3"]);
    attempt(&env, 1, true);
    attempt(&env, 2, false);
    attempt(&env, 3, true);
    let run = env.leash(LOOP);
    assert_eq!(run.code(), 0, "{run:?}");
    let prompts = env.prompts_received();
    let judge_prompts = prompts
        .iter()
        .filter(|p| p.contains("LEASH-WINNER: N"))
        .count();
    assert_eq!(
        judge_prompts, 1,
        "the judge prompt went out once: {prompts:?}"
    );
    assert!(
        prompts
            .iter()
            .any(|p| p.starts_with("Your last step was cut off")),
        "continued: {prompts:?}"
    );
    assert_eq!(subject(&env, "leash/bo"), "attempt 3");
}

#[test]
fn a_loop_killed_during_its_attempts_goes_on_without_a_second_plan() {
    let env = env();
    plan_and_judge(&env, &["reply LEASH-WINNER: 1"]);
    for k in 1..=3 {
        script(
            &env,
            &format!("bo-{k}"),
            &[&format!("sleep 1500; write ok.txt {k}; commit attempt {k}")],
        );
    }
    let child = env.spawn(LOOP);
    env.wait_until("every attempt is implementing", || {
        env.turns()
            .iter()
            .filter(|t| {
                t["prompt"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("Implement"))
            })
            .count()
            == 3
    });
    crate::support::signal(child.id(), libc::SIGKILL);
    let _ = crate::support::finish(child, std::time::Duration::from_secs(10));
    let run = env.leash(LOOP);
    assert_eq!(run.code(), 0, "{run:?}");
    let prompts = env.prompts_received();
    assert_eq!(prompts_starting(&env, "Plan the task"), 1, "{prompts:?}");
    let implements = prompts_starting(&env, "Implement");
    assert_eq!(implements, 3, "no attempt began twice: {prompts:?}");
    assert_eq!(subject(&env, "leash/bo"), "attempt 1");
}

#[test]
fn a_loop_killed_anywhere_while_it_keeps_the_winner_finishes_when_run_again() {
    for point in ["settled", "moved", "recorded", "exchanged"] {
        let mut env = env();
        plan_and_judge(&env, &["reply LEASH-WINNER: 2", "reply the winner speaks"]);
        attempt(&env, 1, false);
        attempt(&env, 2, true);
        attempt(&env, 3, true);
        env.set("LEASH_TEST_ATTEMPTS_DIE_AT", point);
        let killed = env.leash(LOOP);
        assert_eq!(killed.status.code(), None, "{point}: killed: {killed:?}");
        env.unset("LEASH_TEST_ATTEMPTS_DIE_AT");

        let winner = won(&env, LOOP);
        assert_eq!(winner["k"], 2, "{point}: {winner}");
        assert_eq!(subject(&env, "leash/bo"), "attempt 2", "{point}");
        assert_eq!(workers(&env), ["bo"], "{point}");
        let refs = branches(&env);
        assert!(!refs.contains("refs/heads/leash/bo-"), "{point}: {refs}");
        assert!(refs.contains("refs/leash/attempts/bo-3"), "{point}: {refs}");
        let sent = env.ok(&["--worker", "bo", "session", "send", "who are you?"]);
        assert!(
            sent.stdout.contains("the winner speaks"),
            "{point}: {sent:?}"
        );
        assert_eq!(prompts_starting(&env, "Plan the task"), 1, "{point}");
    }
}

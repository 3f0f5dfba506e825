//! The worker state machine (plan, implement, nudge, loop, hooks) against the fake
//! claude in real temporary git repositories.

use std::time::Duration;

use crate::support::Env;
use serde_json::Value;

fn worker_env() -> Env {
    Env::worker()
}

fn bash(env: &Env, script: &str) -> crate::support::Run {
    env.bash(script)
}

fn commits(env: &Env) -> usize {
    env.commits()
}

fn worker_status(env: &Env) -> Value {
    env.worker_status()
}

#[test]
fn loop_plans_implements_and_ends_with_one_new_commit() {
    let env = worker_env();
    env.script(&[
        "reply 1) write feature.txt 2) commit it",
        "write feature.txt; commit add feature",
    ]);
    let run = env.leash(&["loop", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(commits(&env), 2, "one new commit");
    assert!(
        run.stdout.contains("1) write feature.txt"),
        "the plan is printed: {run:?}"
    );

    let turns = env.turns();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["model"], "claude-opus-5-5", "planning model");
    assert_eq!(turns[0]["permission_mode"], "plan", "read-only planning");
    assert!(
        turns[0]["prompt"]
            .as_str()
            .unwrap()
            .contains("Add feature.txt"),
        "task embedded"
    );
    assert_eq!(
        turns[1]["model"], "claude-sonnet-5-5",
        "implementation model"
    );
    assert_eq!(turns[1]["permission_mode"], "acceptEdits");
    assert_eq!(
        turns[0]["session_id"], turns[1]["session_id"],
        "one conversation"
    );
    assert_eq!(turns[1]["history"], 1);
    assert_eq!(env.spawns().len(), 1, "the switch needed no respawn");

    let status = worker_status(&env);
    assert_eq!(status["phase"], "done");
    assert_eq!(status["task"], "Add feature.txt");
    assert!(
        status["plan"]
            .as_str()
            .unwrap()
            .contains("write feature.txt")
    );
    assert_eq!(status["nudges"], 0);
    let human = env.ok(&["status"]);
    assert!(human.stdout.contains("phase       done"), "{human:?}");
}

#[test]
fn uncommitted_changes_get_a_nudge_naming_the_files_then_commit() {
    let env = worker_env();
    env.script(&["reply plan", "write notes.md", "commit add notes"]);
    let run = env.leash(&["loop", "--task", "Write notes"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let turns = env.turns();
    assert_eq!(turns.len(), 3);
    let nudge = turns[2]["prompt"].as_str().unwrap();
    assert!(
        nudge.contains("?? notes.md"),
        "the nudge names the file: {nudge}"
    );
    assert!(nudge.contains("1 of 5"), "{nudge}");
    assert_eq!(commits(&env), 2);
    assert_eq!(worker_status(&env)["nudges"], 1);
}

#[test]
fn a_worker_that_never_commits_stops_with_10_after_exactly_the_cap() {
    let env = worker_env();
    env.script(&[
        "reply plan",
        "reply thinking",
        "reply still thinking",
        "write a.txt",
        "reply hmm",
    ]);
    let run = env.leash(&["loop", "--task", "t", "--max-nudges", "3"]);
    assert_eq!(run.code(), 10, "{run:?}");
    let turns = env.turns();
    assert_eq!(
        turns.len(),
        1 + 1 + 3,
        "plan, implement, three nudges: {turns:#?}"
    );
    let prompts: Vec<&str> = turns[2..]
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert!(prompts[0].contains("Nothing has changed"), "{}", prompts[0]);
    assert!(
        prompts[2].contains("?? a.txt"),
        "the nudge follows what it sees: {}",
        prompts[2]
    );
    assert_ne!(prompts[0], prompts[1], "never the same sentence twice");
    let status = worker_status(&env);
    assert_eq!(status["phase"], "out_of_nudges");
    assert_eq!(status["nudges"], 3);
    // Running it again does not nudge further.
    assert_eq!(env.leash(&["loop"]).code(), 10);
    assert_eq!(env.leash(&["nudge"]).code(), 10);
    assert_eq!(env.turns().len(), 5);
}

#[test]
fn a_blocked_agent_stops_with_11_and_no_more_nudges() {
    let env = worker_env();
    env.script(&[
        "reply plan",
        "reply I looked around.\\nLEASH-BLOCKED: the database password is missing",
    ]);
    let run = env.leash(&["loop", "--task", "t", "--json"]);
    assert_eq!(run.code(), 11, "{run:?}");
    let lines = run.json_lines();
    let finished = lines.last().unwrap();
    assert_eq!(finished["type"], "finished");
    assert_eq!(finished["exit_code"], 11);
    assert_eq!(finished["phase"], "blocked");
    let judged = lines.iter().rev().find(|l| l["type"] == "judged").unwrap();
    assert_eq!(judged["judgement"]["verdict"], "blocked");
    assert_eq!(
        judged["judgement"]["blocked_reason"],
        "the database password is missing"
    );
    assert_eq!(env.turns().len(), 2);
    assert_eq!(
        env.leash(&["nudge"]).code(),
        11,
        "nothing is sent to a blocked agent"
    );
    assert_eq!(env.turns().len(), 2);
    // A person answering the blocker unblocks it.
    env.script(&["commit answer"]);
    std::fs::write(env.repo.join("fix.txt"), "x").unwrap();
    let answer = env.leash(&["nudge", "--reason", "the password is in .env"]);
    assert_eq!(answer.code(), 0, "{answer:?}");
    assert!(
        env.turns()[2]["prompt"]
            .as_str()
            .unwrap()
            .contains("the password is in .env")
    );
    assert_eq!(worker_status(&env)["phase"], "done");
}

#[test]
fn provider_errors_back_off_and_recover_without_using_a_nudge() {
    let env = worker_env();
    env.script(&[
        "reply plan",
        "api_error 529",
        "api_error 429",
        "write x.txt; commit x",
    ]);
    let run = env.leash(&["loop", "--task", "t"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("provider error"), "{run:?}");
    assert_eq!(worker_status(&env)["nudges"], 0, "retries are not nudges");
    assert_eq!(env.turns().len(), 4);
    assert_eq!(commits(&env), 2);
}

#[test]
fn provider_errors_after_the_bound_exit_5() {
    let mut env = worker_env();
    env.set("LEASH_PROVIDER_RETRIES", "1");
    env.script(&["reply plan", "api_error 529", "api_error 529"]);
    let run = env.leash(&["loop", "--task", "t"]);
    assert_eq!(run.code(), 5, "{run:?}");
    assert_eq!(worker_status(&env)["nudges"], 0);
}

#[test]
fn steps_by_hand_and_a_bash_loop() {
    let env = worker_env();
    env.script(&["reply the plan", "reply looking", "write b.txt", "commit b"]);
    assert_eq!(env.leash(&["implement", "--no-start"]).code(), 3);
    env.ok(&["plan", "--task", "Add b.txt"]);
    assert_eq!(worker_status(&env)["phase"], "planned");
    // The documented loop: implement, nudge until committed; a nudge that cannot be
    // sent (cap, blocked) ends it with its exit code.
    let run = bash(
        &env,
        "set -u\nuntil leash implement; do leash nudge || exit $?; done",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let kinds: Vec<String> = env
        .turns()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap()[..20].to_string())
        .collect();
    assert_eq!(kinds.len(), 4, "plan, implement, two nudges: {kinds:?}");
    assert_eq!(commits(&env), 2);
    // implement on a done phase judges again and sends nothing.
    env.ok(&["implement"]);
    assert_eq!(env.turns().len(), 4);
}

#[test]
fn the_bash_loop_ends_with_10_at_the_cap() {
    let mut env = worker_env();
    env.set("LEASH_MAX_NUDGES", "2");
    env.script(&["reply plan"]);
    env.ok(&["plan", "--task", "t"]);
    let run = bash(
        &env,
        "until leash implement; do leash nudge || exit $?; done",
    );
    assert_eq!(run.code(), 10, "{run:?}");
    assert_eq!(env.turns().len(), 1 + 1 + 2);
}

#[test]
fn a_restarted_loop_resumes_where_the_phase_left_off() {
    let env = worker_env();
    env.script(&["reply plan", "reply nothing yet", "write c.txt; commit c"]);
    env.ok(&["plan", "--task", "t"]);
    assert_eq!(env.leash(&["implement"]).code(), 12, "not committed yet");
    env.ok(&["session", "stop"]);
    let run = env.leash(&["loop"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let turns = env.turns();
    assert_eq!(turns.len(), 3, "plan and implement were not repeated");
    assert!(
        turns[2]["prompt"]
            .as_str()
            .unwrap()
            .contains("Nothing has changed")
    );
    assert_eq!(
        turns[2]["history"], 2,
        "same conversation after the restart"
    );
}

#[test]
fn step_mode_refuses_without_a_terminal() {
    let env = worker_env();
    let run = env.leash(&["loop", "--step", "--task", "t"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("terminal"), "{run:?}");
}

#[test]
fn hooks_round_trip_and_keep_an_existing_hook_working() {
    let env = worker_env();
    let mine = "#!/bin/sh\necho ran >> \"$(git rev-parse --git-dir)/mine.log\"\n";
    let hooks = env
        .existing_hook("post-commit", mine)
        .parent()
        .unwrap()
        .to_path_buf();

    let installed = env.ok(&[
        "hooks",
        "install",
        "--hook",
        "post-commit",
        "--hook",
        "pre-commit",
    ]);
    assert!(
        installed.stdout.contains("chaining the existing hook"),
        "{installed:?}"
    );
    // No session: the hook does nothing, fails nothing.
    std::fs::write(env.repo.join("f"), "1").unwrap();
    env.git(&["add", "f"]);
    env.git(&["commit", "-q", "-m", "by a person"]);
    assert_eq!(
        std::fs::read_to_string(env.repo.join(".git/mine.log")).unwrap(),
        "ran\n"
    );
    assert!(env.spawns().is_empty(), "a hook never starts a session");

    let removed = env.ok(&["hooks", "uninstall"]);
    assert!(
        removed.stdout.contains("previous hook is back"),
        "{removed:?}"
    );
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit")).unwrap(),
        mine
    );
    assert!(!hooks.join("pre-commit").exists());
    let bad = env.leash(&["hooks", "install", "--hook", "pre-nothing"]);
    assert_eq!(bad.code(), 2, "{bad:?}");
}

#[test]
fn someone_elses_commit_nudges_the_worker_and_its_own_does_not() {
    let env = worker_env();
    env.ok(&["hooks", "install"]);
    env.script(&["reply plan", "write w.txt", "reply noted"]);
    env.ok(&["plan", "--task", "t"]);
    assert_eq!(env.leash(&["implement"]).code(), 12);
    // A person commits into the worker's branch: the hook queues a nudge.
    std::fs::write(env.repo.join("theirs.txt"), "x").unwrap();
    env.git(&["add", "theirs.txt"]);
    env.git(&["commit", "-q", "-m", "their change"]);
    env.wait_until("the hook's nudge to run", || env.turns().len() == 3);
    let nudge = env.turns()[2]["prompt"].as_str().unwrap().to_string();
    assert!(
        nudge.contains("their change"),
        "the worker is told what changed: {nudge}"
    );
    assert!(nudge.contains("?? w.txt"), "{nudge}");
    env.wait_until("the nudge to be judged", || {
        worker_status(&env)["nudges"] == 1
    });
    assert_eq!(
        worker_status(&env)["phase"],
        "implementing",
        "their commit is not the worker's"
    );

    // The worker's own commit, made inside its turn, does not nudge it again.
    env.script(&["commit mine"]);
    env.ok(&["nudge"]);
    assert_eq!(worker_status(&env)["phase"], "done");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.turns().len(), 4);
    // Had the hook taken the worker's commit for news, a fifth step would have been
    // queued (and judged "nothing to do"): there are exactly the four we asked for.
    let steps = env
        .events()
        .into_iter()
        .filter(|e| e["type"] == "judged")
        .count();
    assert_eq!(steps, 4, "plan, implement, their nudge, our nudge");
}

#[test]
fn a_failing_pre_commit_check_becomes_a_specific_nudge() {
    let env = worker_env();
    env.existing_hook(
        "pre-commit",
        "#!/bin/sh\necho 'lint: trailing space in x.txt'\nexit 1\n",
    );
    env.ok(&["hooks", "install", "--hook", "pre-commit"]);
    env.script(&["reply plan", "write x.txt", "reply fixing"]);
    env.ok(&["plan", "--task", "t"]);
    assert_eq!(env.leash(&["implement"]).code(), 12, "not committed yet");
    // A person tries to commit the worker's changes; the check refuses them.
    let refused = bash(&env, "git add x.txt && git commit -q -m 'by a person'");
    assert_ne!(refused.code(), 0, "{refused:?}");
    env.wait_until("the hook's nudge to run", || env.turns().len() == 3);
    let nudge = env.turns()[2]["prompt"].as_str().unwrap().to_string();
    assert!(nudge.contains("lint: trailing space in x.txt"), "{nudge}");
    assert!(nudge.contains("`pre-commit` hook"), "{nudge}");
}

#[test]
fn hook_nudges_are_coalesced_and_dropped_once_done() {
    let env = worker_env();
    env.script(&[
        "reply plan",
        "write a.txt",
        "sleep 1500; write b.txt",
        "commit both",
        "reply should not run",
    ]);
    env.ok(&["plan", "--task", "t"]);
    assert_eq!(env.leash(&["implement"]).code(), 12);
    let busy = env.spawn(&["nudge"]);
    env.wait_busy();
    for _ in 0..3 {
        let run = env.ok(&["nudge", "--no-wait", "--event", "post-merge"]);
        assert!(run.stderr.contains("nudge queued"), "{run:?}");
    }
    let busy = crate::support::finish(busy, Duration::from_secs(30));
    assert_eq!(busy.code(), 0, "{busy:?}");
    env.wait_until("the coalesced nudge", || {
        worker_status(&env)["phase"] == "done"
    });
    assert_eq!(env.turns().len(), 4, "three hook nudges became one");
    // Once done, further hook nudges are dropped without a turn.
    env.ok(&["nudge", "--no-wait", "--event", "post-merge"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.turns().len(), 4);
}

#[test]
fn nudge_without_a_session_from_a_hook_does_nothing_quickly() {
    let env = worker_env();
    let run = env.ok(&["nudge", "--no-wait", "--event", "post-commit"]);
    assert!(run.stderr.contains("not running"), "{run:?}");
    assert!(env.spawns().is_empty());
    assert_eq!(env.leash(&["nudge", "--no-start"]).code(), 3);
}

#[test]
fn implement_outside_a_git_repository_is_a_usage_error() {
    let env = worker_env();
    std::fs::remove_dir_all(env.repo.join(".git")).unwrap();
    let run = env.leash(&["implement"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("not a git repository"), "{run:?}");
}

//! Outcomes a script can trust: each case here once gave a wrong outcome, hung, or
//! misled (issue 16), and each test failed before its fix.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Env, alive, finish, run_with_timeout, signal, wait_until};

fn json_status(env: &Env) -> serde_json::Value {
    env.status()
}

fn turn_prompts(env: &Env) -> Vec<String> {
    env.turns()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Case 1: Only the worker's own commits count: a person's commit during its turn does not.
#[test]
fn a_persons_commit_during_the_workers_turn_is_not_the_workers() {
    let env = Env::worker();
    env.ok(&["hooks", "install"]);
    env.script(&["reply plan", "sleep 1500; reply still thinking"]);
    env.ok(&["plan", "--task", "add a --version flag"]);
    let implement = env.spawn(&["implement"]);
    env.wait_busy();
    std::fs::write(env.repo.join("notes.txt"), "x\n").unwrap();
    env.git(&["add", "notes.txt"]);
    env.git(&["commit", "-q", "-m", "human: unrelated notes"]);
    let implement = finish(implement, Duration::from_secs(30));
    assert_eq!(
        implement.code(),
        12,
        "not the worker's commit: {implement:?}"
    );
    assert!(!implement.stderr.contains("committed:"), "{implement:?}");
    let status = env.worker_status();
    assert_eq!(status["phase"], "implementing", "{status}");
    assert_eq!(
        status["own_commits"].as_array().unwrap().len(),
        0,
        "{status}"
    );

    // The person's commit is told to the worker in its next nudge, and the worker's
    // own commit (made by claude's tools) is its own.
    env.script(&["write flag.txt; commit add the flag"]);
    let nudge = env.ok(&["nudge"]);
    assert!(
        nudge.stderr.contains("committed: 1 new commit(s)"),
        "{nudge:?}"
    );
    let prompts = turn_prompts(&env);
    assert!(
        prompts.iter().any(|p| p.contains("human: unrelated notes")),
        "{prompts:#?}"
    );
    let status = env.worker_status();
    assert_eq!(status["phase"], "done");
    assert_eq!(status["own_commits"].as_array().unwrap().len(), 1);
}

/// Case 2: One task at a time: a second loop with another task is refused, and a loop
/// whose task was replaced never reports the other task's result as its own.
#[test]
fn a_second_task_is_refused_and_a_replaced_task_is_never_reported_as_done() {
    let env = Env::worker();
    env.script(&[
        "reply plan A",
        "sleep 3000; reply working on A",
        "reply plan B",
        "write b.txt; commit B",
    ]);
    let a = env.spawn(&["loop", "--task", "task A"]);
    env.wait_until("A to implement", || env.turns().len() == 2);
    let queued = |n: u64| {
        let env = &env;
        move || {
            let run = env.leash(&["session", "status", "--json"]);
            run.code() == 0 && run.last_json()["queued"] == n
        }
    };
    // While A implements, B asks for the worker, then B again with --fresh.
    let b = env.spawn(&["loop", "--task", "task B"]);
    env.wait_until("B to wait", queued(1));
    let fresh = env.spawn(&["loop", "--task", "task B", "--fresh"]);
    env.wait_until("the fresh B to wait", queued(2));
    let b = finish(b, Duration::from_secs(30));
    assert_eq!(b.code(), 14, "refused while A is under way: {b:?}");
    assert!(
        b.stderr.contains("task A"),
        "it names the task under way: {b:?}"
    );
    let fresh = finish(fresh, Duration::from_secs(30));
    assert_eq!(fresh.code(), 0, "{fresh:?}");
    let a = finish(a, Duration::from_secs(30));
    assert_eq!(a.code(), 14, "A's task was replaced: {a:?}");
    assert!(!a.stderr.contains("committed"), "{a:?}");
    let prompts = turn_prompts(&env);
    assert_eq!(prompts.len(), 4, "A's nudge never ran: {prompts:#?}");
    assert_eq!(env.worker_status()["task"], "task B");
}

/// Case 3: Answering a blocker raised while planning plans again, with the budget intact.
#[test]
fn answering_a_blocker_raised_while_planning_goes_back_to_planning() {
    let env = Env::worker();
    env.script(&[
        "reply LEASH-BLOCKED: need the API key",
        "reply 1. read the key from .env 2. commit",
        "write key.txt; commit use the key",
    ]);
    let first = env.leash(&["loop", "--task", "use the API"]);
    assert_eq!(first.code(), 11, "{first:?}");
    let answer = env.leash(&["nudge", "--reason", "the key is in .env"]);
    assert_eq!(answer.code(), 0, "{answer:?}");
    assert!(!answer.stderr.contains("of 0"), "{answer:?}");
    let turns = env.turns();
    assert_eq!(turns[1]["permission_mode"], "plan", "a planning turn");
    assert!(
        turns[1]["prompt"]
            .as_str()
            .unwrap()
            .contains("the key is in .env")
    );
    let status = env.worker_status();
    assert_eq!(status["phase"], "planned", "{status}");
    let rest = env.leash(&["loop"]);
    assert_eq!(rest.code(), 0, "{rest:?}");
    assert_eq!(env.worker_status()["nudges"], 0);
    assert_eq!(env.commits(), 2);
}

/// Case 4: The claude binary is resolved at every spawn (flag > environment > config >
/// PATH), and errors name the binary that ran.
#[test]
fn the_claude_binary_is_resolved_at_every_spawn_and_named_in_errors() {
    let mut env = Env::new();
    env.set("LEASH_MAX_CRASHES", "1");
    let fake = test_fakes::fake_claude().display().to_string();
    env.set("LEASH_CLAUDE", "/bin/false");
    let broken = env.leash(&["session", "send", "hi"]);
    assert_ne!(broken.code(), 0, "{broken:?}");
    assert!(broken.stderr.contains("/bin/false"), "named: {broken:?}");
    env.set("LEASH_CLAUDE", &fake);
    let fixed = env.leash(&["session", "start"]);
    assert_eq!(fixed.code(), 0, "{fixed:?}");
    assert_eq!(env.ok(&["session", "send", "hi"]).stdout, "echo: hi\n");
    env.ok(&["session", "stop"]);
    env.set("LEASH_CLAUDE", "/bin/false");
    let broken = env.leash(&["session", "send", "again"]);
    assert_ne!(
        broken.code(),
        0,
        "the environment wins over the record: {broken:?}"
    );
    env.set("LEASH_CLAUDE", "/nowhere");
    let flag = env.leash(&["session", "start", "--claude", &fake]);
    assert_eq!(
        flag.code(),
        0,
        "the flag wins over the environment: {flag:?}"
    );
}

/// Case 5: A daemon whose socket was deleted is still reached, and stopped.
#[test]
fn a_deleted_socket_does_not_lose_the_daemon() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let daemon = json_status(&env)["daemon_pid"].as_i64().unwrap();
    let socket = env.runtime.join(format!("{}.sock", env.worker_name()));
    std::fs::remove_file(&socket).unwrap();
    let send = env.leash(&["session", "send", "hi"]);
    assert_eq!(send.code(), 0, "{send:?}");
    assert_eq!(json_status(&env)["daemon_pid"], daemon, "the same daemon");
    std::fs::remove_file(&socket).unwrap();
    let list = env.ok(&["session", "list", "--json"]);
    assert_eq!(list.last_json()["daemon_pid"], daemon, "{list:?}");
    std::fs::remove_file(&socket).unwrap();
    let doctor = env.leash(&["doctor", "--json"]);
    let workers = doctor
        .json_lines()
        .into_iter()
        .find(|c| c["check"] == "workers")
        .unwrap();
    assert!(
        workers["message"].as_str().unwrap().contains("1 running"),
        "{doctor:?}"
    );
    std::fs::remove_file(&socket).unwrap();
    env.ok(&["session", "stop"]);
    wait_until("the daemon to exit", Duration::from_secs(10), &mut || {
        !alive(daemon)
    });
}

/// A cleaner that takes the whole runtime dir while a step runs: the step ends with its
/// own verdict, and the next command finds the same daemon.
#[test]
fn a_runtime_dir_wiped_under_a_running_step_loses_nothing() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; sleep 1500",
        "commit add a",
    ]);
    let night = env.spawn(&["loop", "--task", "Add a.txt"]);
    env.wait_until("the implement turn", || env.turns().len() == 2);
    let daemon = json_status(&env)["daemon_pid"].clone();
    std::fs::remove_dir_all(&env.runtime).unwrap();
    assert_eq!(json_status(&env)["daemon_pid"], daemon, "the same daemon");
    let night = crate::support::finish(night, Duration::from_secs(30));
    assert_eq!(night.code(), 0, "{night:?}");
    std::fs::remove_dir_all(&env.runtime).unwrap();
    let send = env.leash(&["session", "send", "hi"]);
    assert_eq!(send.code(), 0, "{send:?}");
    assert_eq!(
        json_status(&env)["daemon_pid"],
        daemon,
        "still the same daemon"
    );
}

/// Case 6: claude dies with its daemon.
#[test]
fn claude_dies_with_a_daemon_killed_mid_turn() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let status = json_status(&env);
    let (daemon, claude) = (
        status["daemon_pid"].as_i64().unwrap(),
        status["claude_pid"].as_i64().unwrap(),
    );
    let turn = env.spawn(&["session", "send", "[[sleep 30000]]"]);
    env.wait_busy();
    signal(daemon as u32, libc::SIGKILL);
    wait_until(
        "claude to die with its daemon",
        Duration::from_secs(5),
        &mut || !alive(claude),
    );
    let _ = finish(turn, Duration::from_secs(30));
}

/// Case 7: A bare repository (or no repository) is refused before any turn.
#[test]
fn a_bare_repository_is_refused_before_any_turn() {
    let env = Env::worker();
    let bare = env.dir.path().join("bare.git");
    crate::support::git(env.dir.path(), &["init", "-q", "--bare", "bare.git"]);
    let plain = env.dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let run_in = |dir: &Path, args: &[&str]| {
        let mut command = env.command(args);
        command.current_dir(dir);
        run_with_timeout(command, None)
    };
    for dir in [&bare, &plain] {
        for args in [
            &["plan", "--task", "t"][..],
            &["implement"],
            &["loop", "--task", "t"],
            &["hooks", "install"],
        ] {
            if dir == &plain && args[0] == "hooks" {
                continue;
            }
            let run = run_in(dir, args);
            assert_eq!(run.code(), 2, "{args:?} in {}: {run:?}", dir.display());
        }
    }
    assert!(env.turns().is_empty(), "no turn was sent");
}

/// Case 8: A worker whose directory is gone says so.
#[test]
fn a_missing_working_directory_is_named_as_such() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    env.ok(&["session", "start", "--cwd", work.to_str().unwrap()]);
    env.ok(&["session", "stop"]);
    std::fs::remove_dir_all(&work).unwrap();
    let run = env.leash(&["session", "send", "hi"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("is gone"), "{run:?}");
    assert!(run.stderr.contains(work.to_str().unwrap()), "{run:?}");
    assert!(!run.stderr.contains("cannot start"), "{run:?}");
}

/// Case 9: The agent's own commit refused by a hook is no news to it: no extra nudge.
#[test]
fn the_agents_own_failed_commit_costs_no_extra_nudge() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_NUDGES", "2");
    env.existing_hook(
        "pre-commit",
        "#!/bin/sh\n[ -f .allow ] && exit 0\necho 'lint: not yet'\nexit 1\n",
    );
    env.ok(&["hooks", "install", "--hook", "pre-commit"]);
    env.script(&[
        "reply plan",
        "write x.txt; commit try",
        "reply looking at it",
        "write .allow; commit fixed",
    ]);
    let run = env.leash(&["loop", "--task", "t"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let prompts = turn_prompts(&env);
    assert!(
        prompts.iter().all(|p| !p.contains("`pre-commit` hook")),
        "no nudge about the agent's own attempt: {prompts:#?}"
    );
    assert!(run.stderr.contains("nudge 1 of 2 sent"), "{run:?}");
    assert!(run.stderr.contains("nudge 2 of 2 sent"), "{run:?}");
}

/// Case 10: A hook gives up well under a second when the daemon does not answer.
#[test]
fn a_hook_never_slows_git_when_the_daemon_does_not_answer() {
    let env = Env::worker();
    env.ok(&["hooks", "install"]);
    env.ok(&["session", "start"]);
    let daemon = json_status(&env)["daemon_pid"].as_i64().unwrap() as u32;
    signal(daemon, libc::SIGSTOP);
    std::fs::write(env.repo.join("f.txt"), "x\n").unwrap();
    env.git(&["add", "f.txt"]);
    let started = Instant::now();
    env.git(&["commit", "-q", "-m", "a person's commit"]);
    let took = started.elapsed();
    signal(daemon, libc::SIGCONT);
    assert!(took < Duration::from_secs(3), "the commit took {took:?}");
}

/// Case 11: A damaged worker.json blocks nothing that does not need it, `--fresh` replaces
/// it (kept aside), and `status` shows the verdict, not a dropped nudge.
#[test]
fn a_damaged_worker_state_blocks_nothing_and_status_shows_the_verdict() {
    let env = Env::worker();
    env.ok(&["session", "start"]);
    env.ok(&["session", "stop"]);
    let state_dir = env.state.join(env.worker_name());
    std::fs::write(state_dir.join("worker.json"), "{torn").unwrap();
    assert_eq!(env.ok(&["session", "send", "hi"]).stdout, "echo: hi\n");
    env.script(&["reply plan", "write w.txt; commit w"]);
    let run = env.leash(&["loop", "--fresh", "--task", "t"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let aside: Vec<String> = std::fs::read_dir(&state_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("worker.json.damaged"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside");
    // A hook's nudge after the work is done is dropped; the verdict stays in view.
    env.ok(&["nudge", "--no-wait", "--event", "post-merge"]);
    env.wait_until("the dropped nudge", || {
        env.events()
            .iter()
            .filter(|e| e["type"] == "judged")
            .count()
            == 3
    });
    let status = env.worker_status();
    assert_eq!(status["last"]["verdict"], "committed", "{status}");
}

/// Worker t1's loop in a worktree of its own.
const T1_LOOP: [&str; 6] = [
    "--worker",
    "t1",
    "loop",
    "--worktree",
    "--task",
    "Add a.txt",
];

/// A worktree deleted by hand under a running step: the step, and every step after it,
/// says the worker's directory is gone (4) and how to start over.
#[test]
fn a_worktree_deleted_under_a_step_is_reported_gone() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; sleep 1500",
        "reply hmm",
    ]);
    let night = env.spawn(&T1_LOOP);
    env.wait_until("the implement turn", || env.turns().len() == 2);
    std::fs::remove_dir_all(env.repo.join(".leash/worktrees/t1")).unwrap();
    let night = crate::support::finish(night, Duration::from_secs(30));
    assert_eq!(night.code(), 4, "{night:?}");
    assert!(night.stderr.contains("is gone"), "{night:?}");
    let again = env.leash(&["--worker", "t1", "loop", "--task", "Add a.txt"]);
    assert_eq!(again.code(), 4, "{again:?}");
    assert!(again.stderr.contains("session rm t1 --force"), "{again:?}");
}

/// A worktree worker's work is what its branch holds: committed on another branch it
/// is not done, and the nudge says how to put it where it belongs.
#[test]
fn work_committed_off_a_worktree_worker_s_branch_is_not_done() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "sh git checkout -q -b feature/a; write a.txt; commit add a",
        "sh git checkout -q leash/t1 && git merge -q --ff-only feature/a",
    ]);
    let run = env.leash(&T1_LOOP);
    assert_eq!(run.code(), 0, "{run:?}");
    let prompts: Vec<String> = env
        .turns()
        .iter()
        .filter_map(|t| t["prompt"].as_str().map(str::to_string))
        .collect();
    assert!(
        prompts.last().unwrap().contains("not on leash/t1"),
        "{prompts:#?}"
    );
    let tree = env.repo.join(".leash/worktrees/t1");
    assert!(
        crate::support::git(&tree, &["log", "--format=%s", "-1", "leash/t1"]).contains("add a"),
        "the work is on the worker's branch"
    );
}

//! A long night, compressed: many tasks in a row through one worker while the fake
//! claude does what a night brings (provider errors, crashes mid-step, a hang, a
//! context that fills up and is compacted, a conversation that no longer fits, a rate
//! limit to wait out, a claude that grows too big). Every task must still end done,
//! its check passing, in the same worker, with one commit each.

use crate::support::Env;

/// What goes wrong during task `i`: the fake's script lines for its turns.
fn night(i: usize) -> Vec<String> {
    let plan = format!("reply 1. write task{i}.txt\\n2. commit it");
    let commit = format!("write task{i}.txt; commit task {i}");
    match i % 8 {
        // The API is overloaded twice; leash retries, no nudge is spent.
        0 => vec![plan, "api_error 529".into(), "api_error 529".into(), commit],
        // claude crashes in the middle of implementing; it is restarted and told to go on.
        1 => vec![plan, "sleep 100; crash 137".into(), commit],
        // claude hangs; the watchdog restarts it and it goes on.
        2 => vec![plan, "silent 5000".into(), commit],
        // The context fills up; the next turn compacts first (a nudge here).
        3 => vec![plan, "usage 995000; write half.txt".into(), commit],
        // The conversation no longer fits: it is handed off to a new one.
        4 => vec![plan, "overflow".into(), commit],
        // The subscription's window is used up for a second: the turn waits for it.
        5 => vec![plan, "usage_limit 1".into(), commit],
        // claude leaks: it is restarted on the same conversation before the next turn.
        6 => vec![plan, "grow 100; write half.txt".into(), commit],
        // A quiet task.
        _ => vec![plan, commit],
    }
}

#[test]
fn a_night_of_tasks_through_one_worker_all_end_done() {
    const TASKS: usize = 16;
    let mut env = Env::worker();
    env.set("LEASH_SILENCE_TIMEOUT", "1s");
    env.set("LEASH_INTERRUPT_GRACE", "500ms");
    env.set("LEASH_CLAUDE_MAX_RSS", "64MiB");
    let script: Vec<String> = (0..TASKS).flat_map(night).collect();
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    env.script(&script);

    let first = env.status_or_none();
    assert!(first.is_none(), "no worker yet");
    for i in 0..TASKS {
        let task = format!("Task {i}: add task{i}.txt");
        let check = format!("test -f task{i}.txt");
        let run = env.leash(&["loop", "--check", &check, "--task", &task]);
        assert_eq!(run.code(), 0, "task {i} did not end done: {run:?}");
        let status = env.worker_status();
        assert_eq!(status["phase"], "done", "task {i}: {status}");
        assert_eq!(status["task"], task.as_str());
    }
    assert_eq!(env.commits(), 1 + TASKS, "one commit per task");

    let session = env.status();
    let compacted = env
        .events()
        .iter()
        .filter(|e| e["type"] == "compacted")
        .count();
    assert_eq!(compacted, 2, "two context fills, each compacted");
    assert_eq!(
        session["previous_session_ids"].as_array().unwrap().len(),
        2,
        "two full conversations handed off: {session}"
    );
    let count = |needle: &str| env.said(needle);
    assert_eq!(count("until it resets"), 2, "two rate limits waited out");
    assert_eq!(count("over claude_max_rss"), 2, "two restarts for memory");
    let checks = env
        .events()
        .iter()
        .filter(|e| e["type"] == "checks_ran")
        .count();
    assert_eq!(checks, TASKS, "every commit checked");
    assert_eq!(session["state"], "idle", "the worker is still serving");
    let daemons: std::collections::BTreeSet<_> = env
        .events()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.starts_with("daemon started"))
        .map(str::to_string)
        .collect();
    assert_eq!(daemons.len(), 1, "one daemon all night: {daemons:?}");
}

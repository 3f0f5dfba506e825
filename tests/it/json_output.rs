//! Every command's `--json` output parses, one object per line with a `type`, the last
//! line being the outcome; and every `type` is documented in docs/json.md.

use std::collections::BTreeSet;

use crate::support::Env;

fn types(run: &crate::support::Run) -> Vec<String> {
    run.json_lines()
        .iter()
        .map(|line| {
            line["type"]
                .as_str()
                .unwrap_or_else(|| panic!("no type: {line}"))
                .to_string()
        })
        .collect()
}

#[test]
fn every_command_speaks_json_lines_and_every_type_is_documented() {
    let mut env = Env::new();
    env.set("LEASH_NUDGE_BACKOFF", "10ms");
    let mut seen = BTreeSet::new();
    // `last`: the type of the outcome line; `None` for a log, which just ends.
    let mut record = |run: &crate::support::Run, last: Option<&str>| {
        let t = types(run);
        if let Some(last) = last {
            assert_eq!(t.last().map(String::as_str), Some(last), "{run:?}");
        }
        seen.extend(t);
    };

    record(&env.ok(&["session", "start", "--json"]), Some("status"));
    record(&env.ok(&["session", "status", "--json"]), Some("status"));
    record(&env.ok(&["session", "list", "--json"]), Some("worker"));
    let send = env.ok(&["session", "send", "--json", "hi [[stderr 1]]"]);
    record(&send, Some("turn_ended"));
    assert_eq!(types(&send)[0], "queued");
    record(
        &expect(&env, &["-v", "session", "send", "--json", "[[crash]]"], 6),
        Some("turn_ended"),
    );
    record(&env.ok(&["session", "interrupt", "--json"]), Some("ok"));
    record(&env.ok(&["session", "model", "--json", "opus"]), Some("ok"));
    record(&env.ok(&["session", "restart", "--json"]), Some("status"));
    record(
        &env.ok(&["session", "compact", "--json"]),
        Some("turn_ended"),
    );
    record(
        &env.ok(&["session", "fork", "--json", "copy"]),
        Some("status"),
    );
    record(
        &env.ok(&["--worker", "copy", "session", "rm", "--json", "copy"]),
        Some("removed"),
    );
    record(&env.ok(&["session", "logs", "--json", "-n", "0"]), None);

    env.script(&["reply plan", "write f.txt", "commit f"]);
    record(&env.ok(&["plan", "--json", "--task", "t"]), Some("judged"));
    record(&expect(&env, &["implement", "--json"], 12), Some("judged"));
    record(&env.ok(&["nudge", "--json"]), Some("judged"));
    record(&env.ok(&["nudge", "--json", "--no-wait"]), Some("queued"));
    record(&env.ok(&["loop", "--json"]), Some("finished"));
    env.script(&[
        "reply plan",
        "write g.txt; commit g",
        "reply LEASH-APPROVED",
    ]);
    let checked = env.ok(&[
        "loop", "--json", "--fresh", "--task", "u", "--check", "true", "--check", "echo ok",
        "--review",
    ]);
    record(&checked, Some("finished"));
    // Each check is told as it begins, before the checks' result.
    let told: Vec<String> = checked
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "check_started" || l["type"] == "checks_ran")
        .map(|l| l["command"].as_str().unwrap_or("ran").to_string())
        .collect();
    assert_eq!(told, ["true", "echo ok", "ran"], "{checked:?}");
    record(&env.ok(&["status", "--json"]), Some("worker_status"));
    record(&env.ok(&["report", "--json"]), Some("totals"));
    record(&env.ok(&["hooks", "install", "--json"]), Some("hook"));
    record(&env.ok(&["hooks", "uninstall", "--json"]), Some("hook"));
    record(&env.ok(&["config", "--json"]), Some("setting"));
    record(&expect(&env, &["doctor", "--json"], 0), Some("check"));
    record(&env.ok(&["session", "stop", "--json"]), Some("stopped"));
    record(
        &expect(&env, &["session", "status", "--json"], 3),
        Some("error"),
    );

    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    for t in &seen {
        assert!(
            doc.contains(&format!("| `{t}` |")),
            "docs/json.md does not document type {t:?}"
        );
    }
    for t in [
        "queued",
        "turn_started",
        "step_started",
        "task",
        "claude",
        "stderr",
        "notice",
        "turn_ended",
        "judged",
        "error",
        "check_started",
        "checks_ran",
        "reviewed",
        "removed",
    ] {
        assert!(seen.contains(t), "the test never saw {t}");
    }
}

/// Runs a command that must end with `code`.
fn expect(env: &Env, args: &[&str], code: i32) -> crate::support::Run {
    let run = env.leash(args);
    assert_eq!(run.code(), code, "{run:?}");
    run
}

/// A worker pausing between nudges is `busy` with a documented `waiting_until_ms`, and
/// `session list` says `waiting` with how long, not a bare `busy`.
#[test]
fn a_worker_waiting_between_nudges_says_until_when() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_NUDGES", "3");
    env.set("LEASH_NUDGE_BACKOFF", "10m");
    env.set("LEASH_NUDGE_BACKOFF_MAX", "10m");
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt",
        "write a.txt again",
        "write a.txt more",
    ]);
    let looping = env.spawn(&["loop", "--task", "Add a.txt"]);
    let mut status = serde_json::Value::Null;
    env.wait_until("the pause before the second nudge", || {
        status = env.status_or_none().unwrap_or_default();
        !status["waiting_until_ms"].is_null()
    });
    assert_eq!(status["state"], "busy", "{status:#}");
    let until = status["waiting_until_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(until > now + 60_000 && until <= now + 600_000, "{status:#}");
    let worker = env.ok(&["session", "list", "--json"]).last_json();
    assert_eq!(worker["waiting_until_ms"], until, "{worker:#}");
    // Which step runs is told alike by the daemon, the list and `status`.
    assert_eq!(status["step"], "nudge", "{status:#}");
    assert_eq!(worker["step"], "nudge", "{worker:#}");
    let worker_status = env.ok(&["status", "--json"]).last_json();
    assert_eq!(worker_status["step"], "nudge", "{worker_status:#}");
    // The watch hears of a pause that begins after it opened from the event.
    let told = env
        .events()
        .iter()
        .rev()
        .filter(|e| e["type"] == "waiting")
        .find_map(|e| e["until_ms"].as_u64())
        .unwrap_or_else(|| panic!("a waiting event: {:#?}", env.events()));
    assert!(told.abs_diff(until) < 1_000, "{told} vs {until}");
    let table = env.ok(&["session", "list"]).stdout;
    // The pause is jittered: some minutes and seconds, whatever they are.
    let row = table.lines().nth(1).unwrap();
    let left = row
        .split("waiting ")
        .nth(1)
        .unwrap_or_else(|| panic!("{table}"));
    let left = left.split_whitespace().next().unwrap();
    assert!(left.ends_with('s') && left.contains('m'), "{table}");
    assert!(!table.contains("busy"), "{table}");
    env.ok(&["session", "interrupt"]);
    let ended = crate::support::finish(looping, std::time::Duration::from_secs(20));
    assert_eq!(ended.code(), 130, "{ended:?}");
    let status = env.status();
    assert!(status["waiting_until_ms"].is_null(), "{status:#}");
    assert!(status["step"].is_null(), "{status:#}");
}

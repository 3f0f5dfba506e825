//! What a long run spends: money (task budgets, the cost of each turn and phase), the
//! provider's rate limits, and claude's memory. Against the fake claude, which reports
//! cost, rate limits and its memory as claude 2.1.332 was measured to.

use crate::support::Env;
use serde_json::Value;

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[test]
fn each_turn_costs_its_share_of_claudes_running_total_across_restarts() {
    let env = Env::new();
    for _ in 0..3 {
        let run = env.ok(&["session", "send", "--json", "[[cost 0.1]] hi"]);
        let outcome = &run.last_json()["outcome"];
        assert!(close(&outcome["cost_usd"], 0.1), "{outcome}");
    }
    assert!(close(&env.status()["cost_usd"], 0.3), "{}", env.status());
    // A resumed claude carries its total over (2.1.332): the next turn still costs 0.1.
    env.ok(&["session", "stop"]);
    let run = env.ok(&["session", "send", "--json", "[[cost 0.1]] again"]);
    assert!(
        close(&run.last_json()["outcome"]["cost_usd"], 0.1),
        "{run:?}"
    );
    assert!(close(&env.status()["cost_usd"], 0.4), "{}", env.status());
    let human = env.ok(&["session", "status"]);
    assert!(human.stdout.contains("cost        $0.40"), "{human:?}");
}

#[test]
fn a_budget_stops_the_loop_with_13_before_the_next_turn() {
    let env = Env::worker();
    env.script(&[
        "cost 0.1; reply 1. write a.txt\\n2. commit it",
        "cost 0.2; write a.txt",
        "write a.txt; commit never sent",
    ]);
    let run = env.leash(&["loop", "--budget", "0.25", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 13, "{run:?}");
    assert!(
        run.stderr
            .contains("budget exhausted: the task spent $0.30 of its $0.25 budget"),
        "{run:?}"
    );
    assert_eq!(env.turns().len(), 2, "no nudge was sent");
    assert_eq!(env.commits(), 1);
    let status = env.worker_status();
    let cost = &status["cost"];
    assert!(close(&cost["plan_usd"], 0.1), "{cost}");
    assert!(close(&cost["implement_usd"], 0.2), "{cost}");
    assert!(close(&cost["nudges_usd"], 0.0), "{cost}");
    assert!(close(&cost["budget_usd"], 0.25), "{cost}");
    assert_eq!(status["phase"], "implementing", "the task is not over");
    assert_eq!(status["last"]["verdict"], "budget_exhausted");
    let human = env.ok(&["status"]);
    assert!(
        human.stdout.contains(
            "cost        $0.30 (plan $0.10, implement $0.20, nudges $0.00) of a $0.25 budget"
        ),
        "{human:?}"
    );
    // A larger budget goes on where it stopped.
    let run = env.leash(&["loop", "--budget", "1"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(env.commits(), 2);
}

#[test]
fn implement_and_nudge_refuse_to_send_once_the_budget_is_spent() {
    let mut env = Env::worker();
    env.script(&[
        "cost 0.5; reply 1. write a.txt",
        "cost 0.25; write a.txt",
        "cost 0.125; write b.txt",
    ]);
    env.ok(&["plan", "--task", "Add a.txt"]);
    let run = env.leash(&["implement", "--budget", "0.5"]);
    assert_eq!(run.code(), 13, "{run:?}");
    assert!(run.stderr.contains("no further turn is sent"), "{run:?}");
    assert_eq!(env.turns().len(), 1, "the implementation was not sent");

    assert_eq!(env.leash(&["implement", "--budget", "1"]).code(), 12);
    let run = env.leash(&["nudge", "--budget", "0.75"]);
    assert_eq!(run.code(), 13, "{run:?}");
    assert_eq!(env.turns().len(), 2, "the nudge was not sent");
    // The nudge that spends the rest is sent; the next one is not.
    env.set("LEASH_TASK_BUDGET_USD", "0.875");
    let run = env.leash(&["nudge"]);
    assert_eq!(run.code(), 13, "{run:?}");
    assert_eq!(env.turns().len(), 3);
    let cost = &env.worker_status()["cost"];
    assert!(close(&cost["nudges_usd"], 0.125), "{cost}");
    let total = ["plan_usd", "implement_usd", "nudges_usd"]
        .iter()
        .map(|k| cost[k].as_f64().unwrap())
        .sum::<f64>();
    assert!((total - 0.875).abs() < 1e-9, "the phases add up: {cost}");
    assert!(close(&env.worker_status()["last"]["task_cost_usd"], 0.875));
}

#[test]
fn a_bad_budget_is_a_usage_error() {
    let env = Env::worker();
    let run = env.leash(&["loop", "--budget", "lots", "--task", "x"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("task_budget_usd"), "{run:?}");
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

#[test]
fn claudes_rate_limit_reports_are_relayed_and_shown() {
    let env = Env::new();
    let run = env.ok(&[
        "session",
        "send",
        "[[rate_limit allowed_warning 0.92 3600]] hi",
    ]);
    assert!(
        run.stderr
            .contains("rate limit: 5-hour window at 92%, resets "),
        "{run:?}"
    );
    let run = env.ok(&[
        "session",
        "send",
        "--json",
        "[[rate_limit allowed_warning 0.8 200000 seven_day]] again",
    ]);
    let event = run
        .json_lines()
        .into_iter()
        .find(|l| l["type"] == "rate_limit")
        .expect("a rate_limit event");
    assert_eq!(event["limit"]["status"], "allowed_warning");
    assert_eq!(event["limit"]["window"], "seven_day");
    assert!(close(&event["limit"]["utilization"], 0.8));
    assert!(
        run.json_lines()
            .iter()
            .any(|l| l["type"] == "claude" && l["msg"]["type"] == "rate_limit_event"),
        "claude's own line is relayed too"
    );
    let status = env.status();
    assert_eq!(status["rate_limit"]["window"], "seven_day", "{status}");
    assert!(status["rate_limited_until"].is_null());
    let human = env.ok(&["session", "status"]);
    assert!(
        human
            .stdout
            .contains("rate limit  7-day window at 80%, resets "),
        "{human:?}"
    );
    let logs = env.ok(&["session", "logs"]);
    assert!(
        logs.stdout.contains("rate limit: 7-day window at 80%"),
        "{logs:?}"
    );
}

#[test]
fn a_429_waits_until_the_limit_resets_not_the_generic_backoff() {
    let mut env = Env::new();
    // The generic backoff would wait 15 to 30 s.
    env.set("LEASH_PROVIDER_BACKOFF", "30s");
    env.ok(&["session", "start"]);
    env.script(&["usage_limit 2", "reply after the reset"]);
    let started = std::time::Instant::now();
    let child = env.spawn(&["session", "send", "--json", "go"]);
    let mut until = Value::Null;
    env.wait_until("leash to wait for the reset", || {
        until = env.status()["rate_limited_until"].clone();
        !until.is_null()
    });
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let until = until.as_u64().unwrap();
    assert!(
        until > now_ms && until <= now_ms + 3_000,
        "{until} vs {now_ms}"
    );
    let run = crate::support::finish(child, std::time::Duration::from_secs(20));
    let waited = started.elapsed();
    assert_eq!(run.code(), 0, "{run:?}");
    let outcome = &run.last_json()["outcome"];
    assert_eq!(outcome["result"], "after the reset");
    assert_eq!(outcome["retries"], 1);
    assert!(
        waited >= std::time::Duration::from_secs(1) && waited < std::time::Duration::from_secs(12),
        "waited {waited:?}: until the reset, not 15-30 s"
    );
    assert!(
        env.status()["rate_limited_until"].is_null(),
        "the wait is over"
    );
    let notice = env
        .events()
        .into_iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .find(|m| m.contains("until it resets"))
        .expect("the wait is told");
    assert!(
        notice.starts_with("rate limit: 5-hour window reached, resets "),
        "{notice}"
    );
}

#[test]
fn a_limit_that_resets_later_than_provider_max_wait_fails_at_once() {
    let mut env = Env::new();
    env.set("LEASH_PROVIDER_MAX_WAIT", "1s");
    env.script(&["usage_limit 3600", "reply never sent"]);
    let run = env.leash(&["session", "send", "go"]);
    assert_eq!(run.code(), 5, "{run:?}");
    assert!(
        run.stderr
            .contains("later than provider_max_wait lets leash wait"),
        "{run:?}"
    );
    assert_eq!(env.turns().len(), 1, "not sent again");
}

#[test]
fn a_claude_over_claude_max_rss_is_restarted_between_turns_on_the_same_conversation() {
    let mut env = Env::new();
    env.set("LEASH_CLAUDE_MAX_RSS", "64MiB");
    env.ok(&["session", "send", "[[grow 100]] hold a lot"]);
    let status = env.status();
    let rss = status["claude_rss_bytes"]
        .as_u64()
        .expect("claude's memory");
    assert!(rss > 100 << 20, "{status}");
    let human = env.ok(&["session", "status"]);
    assert!(human.stdout.contains("MiB (claude)"), "{human:?}");
    assert_eq!(env.spawns().len(), 1, "never mid-turn");

    let run = env.ok(&["session", "send", "next"]);
    assert!(
        run.stderr
            .contains("over claude_max_rss (64 MiB); restarting it"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "echo: next\n");
    let after = env.status();
    assert_ne!(after["claude_pid"], status["claude_pid"]);
    assert_eq!(after["session_id"], status["session_id"]);
    assert!(
        after["claude_rss_bytes"].as_u64().unwrap() < 64 << 20,
        "{after}"
    );
    let spawns = env.spawns();
    assert_eq!(spawns.len(), 2);
    let argv = spawns[1]["argv"].to_string();
    assert!(argv.contains("--resume"), "{argv}");
    // Under the bound, claude is left alone.
    env.ok(&["session", "send", "and again"]);
    assert_eq!(env.spawns().len(), 2);
}

#[test]
fn session_restart_waits_for_the_running_turn_then_resumes_the_conversation() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let before = env.status();
    let send = env.spawn(&["session", "send", "[[sleep 1500]] slow"]);
    env.wait_busy();
    let restart = env.ok(&["session", "restart", "--json"]);
    let sent = crate::support::finish(send, std::time::Duration::from_secs(20));
    assert_eq!(sent.code(), 0, "the turn was not cut short: {sent:?}");
    assert_eq!(sent.stdout, "echo: [[sleep 1500]] slow\n");
    let status = restart.last_json();
    assert_ne!(status["claude_pid"], before["claude_pid"], "{status}");
    assert_eq!(status["session_id"], before["session_id"]);
    assert_eq!(status["state"], "idle");
    let turn_ended = env
        .events()
        .iter()
        .position(|e| e["type"] == "turn_ended")
        .expect("the turn ended");
    let restarted = env
        .events()
        .iter()
        .position(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("restarting claude on the same conversation"))
        })
        .expect("the restart is logged");
    assert!(turn_ended < restarted, "the restart came after the turn");
    assert_eq!(
        env.ok(&["session", "send", "still there?"]).stdout,
        "echo: still there?\n"
    );
}

#[test]
fn session_restart_of_a_stopped_worker_says_so() {
    let env = Env::new();
    let run = env.leash(&["session", "restart"]);
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(
        run.stderr.contains("is not running; nothing to restart"),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

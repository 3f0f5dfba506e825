//! A conversation that never dies: compaction, hand-off, cost across restarts.

use super::*;

/// `session status --json` once claude told its context window.
fn status_with_window(e2e: &E2e) -> Value {
    let mut status = Value::Null;
    e2e.wait_until("claude to tell the window", || {
        status = e2e.status();
        !status["context_window"].is_null()
    });
    status
}

pub(super) fn a_full_context_makes_claude_compact_and_status_shows_it(cli: &'static Cli) {
    let full = cli.window - 5_000;
    let Some(e2e) = E2e::start(cli, [Reply::with_usage(full, Reply::text("a long answer"))]) else {
        return;
    };
    e2e.ok(&["session", "send", "fill the context"]);
    let status = status_with_window(&e2e);
    assert!(
        status["context_tokens"].as_u64().unwrap() >= full,
        "{status}"
    );
    assert_eq!(status["context_window"], cli.window, "{status}");
    let run = e2e.ok(&["session", "send", "--json", "go on"]);
    let types: Vec<String> = run
        .json_lines()
        .iter()
        .map(|l| l["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        types.contains(&"compacting".to_string()) && types.contains(&"compacted".to_string()),
        "{types:?}"
    );
    assert_eq!(run.last_json()["outcome"]["result"], "echo: go on");
    let status = e2e.status();
    assert_eq!(status["compactions"], 1, "{status}");
    assert_eq!(status["last_compaction"]["trigger"], "auto");
    assert!(status["last_compaction"]["pre_tokens"].as_u64().unwrap() >= full);
    assert_eq!(e2e.api.of_kind(RequestKind::Compact).len(), 1);
}

pub(super) fn session_compact_instructions_reach_the_summary_request(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    e2e.ok(&["session", "send", "remember the word banana"]);
    let session = e2e.status()["session_id"].clone();
    let run = e2e.ok(&[
        "session",
        "compact",
        "--instructions",
        "keep the word banana",
    ]);
    assert!(run.stderr.contains("compacted"), "{run:?}");
    let summaries = e2e.api.of_kind(RequestKind::Compact);
    assert_eq!(summaries.len(), 1);
    assert!(
        summaries[0].body.contains("keep the word banana"),
        "the instructions reach the API"
    );
    let status = e2e.status();
    assert_eq!(status["compactions"], 1);
    assert_eq!(status["last_compaction"]["trigger"], "manual");
    assert_eq!(status["session_id"], session, "the same conversation");
    assert_eq!(
        e2e.ok(&["session", "send", "still there?"]).stdout,
        "echo: still there?\n"
    );
}

pub(super) fn a_conversation_the_api_refuses_as_too_long_is_handed_off_and_goes_on(
    cli: &'static Cli,
) {
    // Something huge in the conversation (as a tool's output would be): from then on
    // the API refuses every request that carries it, summaries included.
    const HUGE: &str = "HUGE-OUTPUT-THAT-FILLS-THE-WINDOW";
    let Some(e2e) = E2e::start(cli, [Reply::text(format!("{HUGE} and more"))]) else {
        return;
    };
    let refuse = |req: &RecordedRequest| req.body.contains(HUGE);
    e2e.api.set_default(move |req| {
        if refuse(req) {
            Reply::prompt_too_long()
        } else {
            Reply::echo(req)
        }
    });
    e2e.api.set_side_reply(move |req| {
        if refuse(req) {
            Reply::prompt_too_long()
        } else {
            default_side_reply(req)
        }
    });
    e2e.ok(&["session", "send", "read the big file"]);
    let old = e2e.status()["session_id"].as_str().unwrap().to_string();
    let run = e2e.leash(&["session", "send", "what did it say?"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("continued in a new one"), "{run:?}");
    let status = e2e.status();
    assert_ne!(status["session_id"], old.as_str());
    assert_eq!(status["previous_session_ids"], json!([old]));
    let last = e2e.turns().into_iter().last().unwrap();
    assert_eq!(
        last.header("x-claude-code-session-id"),
        status["session_id"].as_str(),
        "the new conversation"
    );
    assert!(!last.body.contains(HUGE), "what overflowed stays behind");
    let asked = last_user_text(&last).unwrap_or_default();
    assert!(asked.contains("read the big file"), "the hand-off: {asked}");
    assert!(asked.ends_with("what did it say?"), "{asked}");
    assert_eq!(
        e2e.ok(&["session", "send", "and now?"]).stdout,
        "echo: and now?\n",
        "the worker goes on"
    );
}

/// What claude says a result cost: on its own where it says so (2.1.309 and later), else
/// the difference of its running totals within one process.
fn claudes_cost(results: &[Value]) -> Vec<f64> {
    let mut previous: Option<f64> = None;
    results
        .iter()
        .map(|result| {
            let total = result["total_cost_usd"].as_f64().unwrap();
            let cost = match result["model_usage_since_last_result"].as_object() {
                Some(models) => models.values().filter_map(|m| m["costUSD"].as_f64()).sum(),
                None => total - previous.unwrap_or(0.0),
            };
            previous = Some(total);
            cost
        })
        .collect()
}

pub(super) fn each_turn_costs_what_claude_says_across_a_restart(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let mut outcomes = Vec::new();
    let mut results = Vec::new();
    for prompt in ["one", "two", "restart", "three"] {
        if prompt == "restart" {
            let before = e2e.status()["claude_pid"].clone();
            let restarted = e2e.ok(&["session", "restart", "--json"]).last_json();
            assert_ne!(restarted["claude_pid"], before, "a new claude");
            // claude's running total starts over in a new process, or goes on.
            results.push(Value::Null);
            continue;
        }
        let run = e2e.ok(&["session", "send", "--json", prompt]);
        outcomes.push(run.last_json()["outcome"]["cost_usd"].as_f64().unwrap());
        let result = run
            .json_lines()
            .into_iter()
            .find(|l| l["type"] == "claude" && l["msg"]["type"] == "result")
            .unwrap();
        results.push(result["msg"].clone());
    }
    let before_restart = claudes_cost(&results[..2]);
    let after_restart = claudes_cost(&results[3..]);
    let expected: Vec<f64> = before_restart.into_iter().chain(after_restart).collect();
    for (got, want) in outcomes.iter().zip(&expected) {
        assert!(
            (got - want).abs() < 1e-9,
            "{outcomes:?} vs claude's {expected:?}"
        );
        assert!(*got > 0.0);
    }
    let session = e2e.status()["cost_usd"].as_f64().unwrap();
    let sum: f64 = outcomes.iter().sum();
    assert!((session - sum).abs() < 1e-9, "{session} vs {sum}");
    // Every turn here is about as big: none is charged the conversation's total.
    assert!(outcomes[2] < outcomes[0] * 1.5, "{outcomes:?}");
}

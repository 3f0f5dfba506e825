//! A conversation that never dies: its context shown, compactions surfaced and asked
//! for, a full conversation handed off to a new one, a crash mid-step continued.
//! Against the fake claude, which behaves as claude 2.1.332 was measured to.

use std::time::Duration;

use crate::support::{Env, alive, finish, signal};
use serde_json::Value;

/// `session status --json` once claude has told the context window.
fn status_with_window(env: &Env) -> Value {
    let mut status = Value::Null;
    env.wait_until("claude to tell the window", || {
        status = env.status();
        !status["context_window"].is_null()
    });
    status
}

fn events_of(run: &crate::support::Run, kind: &str) -> Vec<Value> {
    run.json_lines()
        .into_iter()
        .filter(|l| l["type"] == kind)
        .collect()
}

#[test]
fn session_status_shows_the_context_and_list_its_share() {
    let env = Env::new();
    env.ok(&["session", "send", "[[usage 800000 10000 2000]] hi"]);
    let status = status_with_window(&env);
    assert_eq!(status["context_tokens"], 812_000, "{status}");
    assert_eq!(status["context_window"], 1_000_000);
    assert_eq!(status["compactions"], 0);
    assert!(status["last_compaction"].is_null());
    assert_eq!(status["previous_session_ids"], serde_json::json!([]));
    let human = env.ok(&["session", "status"]);
    assert!(
        human.stdout.contains("context     812k of 1M tokens (81%)"),
        "{human:?}"
    );
    let list = env.ok(&["session", "list"]);
    assert!(list.stdout.contains(" 81%"), "{list:?}");
    assert_eq!(
        env.ok(&["session", "list", "--json"]).last_json()["context_percent"],
        81
    );
}

#[test]
fn an_auto_compaction_is_surfaced_in_the_stream_the_logs_and_status() {
    let env = Env::new();
    env.ok(&["session", "send", "[[usage 995000]] fill it up"]);
    let run = env.ok(&["session", "send", "--json", "next"]);
    let compacting = events_of(&run, "compacting");
    let compacted = events_of(&run, "compacted");
    assert_eq!((compacting.len(), compacted.len()), (1, 1), "{run:?}");
    let compaction = &compacted[0]["compaction"];
    assert_eq!(compaction["trigger"], "auto");
    assert_eq!(compaction["pre_tokens"], 995_000);
    assert_eq!(run.last_json()["outcome"]["result"], "echo: next");
    let status = env.status();
    assert_eq!(status["compactions"], 1);
    assert_eq!(status["last_compaction"]["post_tokens"], 2608);
    assert_eq!(
        status["context_tokens"], 10,
        "the context after the next reply"
    );
    let logs = env.ok(&["session", "logs"]);
    assert!(logs.stdout.contains("compacting..."), "{logs:?}");
    assert!(
        logs.stdout.contains("compacted 995k -> 2k tokens (auto)"),
        "{logs:?}"
    );
    let plain = env.ok(&["session", "send", "[[usage 995000]] again"]);
    assert!(plain.stderr.is_empty(), "{plain:?}");
    let plain = env.ok(&["session", "send", "and again"]);
    assert!(
        plain.stderr.contains("compacted 995k -> 2k tokens (auto)"),
        "a person sees it too: {plain:?}"
    );
}

#[test]
fn session_compact_asks_for_a_compaction_and_reports_a_failure() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    let session = env.status()["session_id"].clone();
    let run = env.ok(&[
        "session",
        "compact",
        "--instructions",
        "keep the plan and the task",
    ]);
    assert!(run.stderr.contains("compacted"), "{run:?}");
    let asked: Vec<Value> = env
        .fake_events()
        .into_iter()
        .filter(|e| e["event"] == "compact")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["instructions"], "keep the plan and the task");
    let status = env.status();
    assert_eq!(status["compactions"], 1);
    assert_eq!(status["last_compaction"]["trigger"], "manual");
    assert_eq!(status["session_id"], session, "the same conversation");

    env.script(&["compact_fail exhausted"]);
    let failed = env.leash(&["session", "compact", "--json"]);
    assert_eq!(failed.code(), 6, "{failed:?}");
    assert!(failed.stderr.contains("exhausted"), "{failed:?}");
    assert_eq!(events_of(&failed, "compact_failed").len(), 1);
    assert_eq!(env.status()["compactions"], 1);
}

#[test]
fn the_watchdog_never_counts_a_compaction_as_silence() {
    let mut env = Env::new();
    env.set("LEASH_SILENCE_TIMEOUT", "1s");
    env.ok(&["session", "send", "[[usage 995000]] fill it up"]);
    env.script(&["compact_slow 2500; reply after a long compaction"]);
    let run = env.leash(&["session", "send", "next"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.stdout, "after a long compaction\n");
}

#[test]
fn a_full_conversation_is_handed_off_to_a_new_one() {
    let env = Env::new();
    env.ok(&["session", "send", "remember the word banana"]);
    let old = env.status()["session_id"].as_str().unwrap().to_string();
    env.script(&["overflow"]);
    let run = env.leash(&["session", "send", "what was the word?"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr
            .contains("the conversation was full; continued in a new one"),
        "{run:?}"
    );
    let status = env.status();
    assert_ne!(status["session_id"], old.as_str(), "a new conversation");
    assert_eq!(status["previous_session_ids"], serde_json::json!([old]));
    let turns = env.turns();
    let handoff = turns.last().unwrap();
    assert_eq!(
        handoff["history"], 0,
        "the new conversation's first message"
    );
    let prompt = handoff["prompt"].as_str().unwrap();
    assert!(prompt.contains("remember the word banana"), "{prompt}");
    assert!(prompt.ends_with("what was the word?"), "{prompt}");
    // The old conversation is full for good; the new one goes on.
    assert_eq!(
        env.ok(&["session", "send", "and now?"]).stdout,
        "echo: and now?\n"
    );

    // A prompt that does not fit even a new conversation is said to be so.
    env.script(&["overflow", "overflow"]);
    let run = env.leash(&["session", "send", "an enormous prompt"]);
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(
        run.stderr.contains("the prompt alone does not fit"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("(success)"), "{run:?}");
}

#[test]
fn a_worker_whose_conversation_overflows_mid_implement_commits_in_a_new_one() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write feature.txt\\n2. commit it",
        "overflow",
        "write feature.txt; commit add the feature",
    ]);
    let run = env.leash(&["loop", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("continued in a new one"), "{run:?}");
    assert_eq!(env.commits(), 2);
    let prompt = env.turns().last().unwrap()["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(prompt.contains("<task>\nAdd feature.txt"), "{prompt}");
    assert!(
        prompt.contains("1. write feature.txt"),
        "the plan: {prompt}"
    );
    assert!(
        prompt.contains("Implement the plan"),
        "the step again: {prompt}"
    );
    assert_eq!(
        env.status()["previous_session_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(env.worker_status()["phase"], "done");
}

#[test]
fn claude_killed_in_the_middle_of_an_implement_turn_is_restarted_and_the_step_commits() {
    let env = Env::worker();
    env.script(&[
        "reply plan",
        // The model begins to answer, so the prompt is in the conversation when
        // claude dies (a claude killed before that is told the prompt again).
        "stream 1 10; sleep 20000",
        "write x.txt; commit after the restart",
    ]);
    let run = env.spawn(&["loop", "--task", "Add x.txt"]);
    env.wait_until("the implement turn to be answered", || {
        env.answered_prompts()
            .iter()
            .any(|p| p.starts_with("Implement"))
    });
    let claude = env.status()["claude_pid"].as_i64().unwrap();
    signal(claude as u32, libc::SIGKILL);
    let run = finish(run, Duration::from_secs(30));
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("telling it to continue"), "{run:?}");
    assert!(!alive(claude));
    let last = env.turns().last().unwrap().clone();
    assert!(
        last["prompt"].as_str().unwrap().contains("was cut off"),
        "{last}"
    );
    assert_eq!(last["session_id"], env.turns()[1]["session_id"], "resumed");
    assert_eq!(env.worker_status()["phase"], "done");

    // A plain send continues only when asked to.
    let run = env.leash(&["session", "send", "[[crash]]"]);
    assert_eq!(run.code(), 6, "{run:?}");
    env.script(&["stream 1 10; crash", "reply carried on"]);
    let run = env.leash(&["session", "send", "--continue-on-crash", "go"]);
    assert_eq!(run.code(), 0, "{run:?}");
    // What claude said before it died, then what it said after.
    assert_eq!(run.stdout, "chunk 0\ncarried on\n");
}

#[test]
fn a_full_context_is_compacted_at_a_phase_boundary_keeping_the_plan() {
    let env = Env::worker();
    env.script(&[
        "usage 850000; reply 1. write plan.txt\\n2. commit it",
        "write plan.txt; commit done",
    ]);
    env.ok(&["plan", "--task", "Write plan.txt"]);
    status_with_window(&env);
    let run = env.leash(&["implement"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let compacts: Vec<Value> = env
        .fake_events()
        .into_iter()
        .filter(|e| e["event"] == "compact")
        .collect();
    assert_eq!(compacts.len(), 1, "compacted before implementing");
    let instructions = compacts[0]["instructions"].as_str().unwrap();
    assert!(instructions.contains("Write plan.txt"), "{instructions}");
    assert!(instructions.contains("1. write plan.txt"), "{instructions}");
    assert_eq!(env.status()["compactions"], 1);
}

#[test]
fn compact_at_zero_never_compacts() {
    let mut env = Env::worker();
    env.set("LEASH_COMPACT_AT", "0");
    env.script(&[
        "usage 990000; reply 1. write plan.txt",
        "write plan.txt; commit done",
    ]);
    env.ok(&["plan", "--task", "Write plan.txt"]);
    status_with_window(&env);
    env.ok(&["implement"]);
    assert!(
        env.fake_events().iter().all(|e| e["event"] != "compact"),
        "nothing was asked to compact"
    );
}

#[test]
fn errors_name_claudes_reason_never_its_subtype() {
    let env = Env::new();
    let run = env.leash(&["session", "send", "[[error you asked for too many turns]]"]);
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(run.stderr.contains("max_turns"), "{run:?}");
    assert!(!run.stderr.contains("error_max_turns"), "{run:?}");
}

#[test]
fn a_prompt_an_older_claude_drops_while_compacting_is_sent_again() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_DROPS_PROMPT", "1");
    env.ok(&["session", "send", "[[usage 995000]] fill it up"]);
    let run = env.ok(&["session", "send", "--json", "what next?"]);
    let outcome = &run.last_json()["outcome"];
    assert_eq!(outcome["result"], "echo: what next?", "{run:?}");
    let dropped = env
        .fake_events()
        .into_iter()
        .filter(|e| e["event"] == "prompt_dropped")
        .count();
    assert_eq!(dropped, 1, "the fake dropped it once");
    let prompts: Vec<String> = env
        .turns()
        .iter()
        .filter_map(|t| t["prompt"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        prompts,
        ["[[usage 995000]] fill it up", "what next?", "what next?"]
    );
    let human = env.ok(&["session", "logs"]);
    assert!(
        human
            .stdout
            .contains("dropped the prompt (claude before 2.1.153 does); sending it again"),
        "{human:?}"
    );
    // A claude that keeps the prompt is never sent it twice.
    let mut env = Env::new();
    env.unset("FAKE_CLAUDE_DROPS_PROMPT");
    env.ok(&["session", "send", "[[usage 995000]] fill it up"]);
    env.ok(&["session", "send", "what next?"]);
    assert_eq!(env.turns().len(), 2);
}

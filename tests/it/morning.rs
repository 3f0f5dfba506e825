//! The morning after `leash land`: a task's landing, as land's step writes it to the
//! worker's event log (the step itself is land's; here its events are written as it
//! writes them), is told by `report` in every view and by `status`, and never changes
//! how the task itself stands.

use serde_json::{Value, json};

use crate::support::Env;

const COMMIT: &str = "f00dfeedbeef0123456789abcdef0123456789ab";

/// A worker whose task `Add a.txt` is done; its daemon stopped, so the test may write
/// its log.
fn done() -> Env {
    let env = Env::worker();
    env.script(&["reply 1. write a.txt", "write a.txt; commit add a.txt"]);
    let run = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    env.ok(&["session", "stop"]);
    env
}

fn task_row(env: &Env) -> (Value, Value) {
    let lines = env.ok(&["report", "--json"]).json_lines();
    let row = lines
        .iter()
        .find(|l| l["type"] == "task")
        .cloned()
        .unwrap_or_else(|| panic!("{lines:#?}"));
    (row, lines.last().unwrap().clone())
}

/// A land step of the task as the worker's daemon logs it: a landing turn costing
/// `usd`, then `verdict` (with the `landed` event first when it landed).
fn land_step(env: &Env, verdict: &str, message: &str, usd: f64) -> Vec<Value> {
    let events = env.events();
    let last = events.last().unwrap();
    let (seq, ts) = (last["seq"].as_u64().unwrap(), last["ts"].as_u64().unwrap());
    let mut judged = events
        .iter()
        .rev()
        .find(|e| e["type"] == "judged")
        .unwrap()
        .clone();
    let task_id = judged["judgement"]["task_id"].clone();
    let step = 9_000;
    judged["judgement"]["step"] = json!("land");
    judged["judgement"]["verdict"] = json!(verdict);
    judged["judgement"]["message"] = json!(message);
    let mut turn_ended = events
        .iter()
        .rev()
        .find(|e| e["type"] == "turn_ended")
        .unwrap()
        .clone();
    turn_ended["outcome"]["cost_usd"] = json!(usd);
    let mut lines = vec![
        json!({"type": "step_started", "step": "land", "task_id": task_id, "task": "Add a.txt"}),
        json!({"type": "turn_started", "kind": "land", "prompt": "land it", "continuation": false}),
        turn_ended,
    ];
    if verdict == "landed" {
        lines.push(
            json!({"type": "landed", "task_id": task_id, "commit": COMMIT, "target": "main"}),
        );
    }
    lines.push(judged);
    for (i, line) in lines.iter_mut().enumerate() {
        let i = i as u64 + 1;
        line["seq"] = json!(seq + i);
        // The morning after: an hour after the task ended.
        line["ts"] = json!(ts + 3_600_000 + i);
        line["turn"] = json!(step);
    }
    lines
}

/// What the landing must not change of the task's row: how it stands, and `more`.
fn assert_kept(row: &Value, before: &Value, more: &[&str]) {
    let own = ["standing", "verdict", "exit_code", "commits"];
    for field in own.iter().chain(more) {
        assert_eq!(row[field], before[field], "{field}: {row:#}");
    }
}

fn append_log(env: &Env, lines: &[Value]) {
    use std::io::Write;
    let log = env.state.join(env.worker_name()).join("events.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

#[test]
fn a_landed_task_is_told_in_every_view_and_stays_done() {
    let env = done();
    let (before, _) = task_row(&env);
    assert_eq!(before["landed"], Value::Null, "{before:#}");
    let table = env.ok(&["report"]).stdout;
    assert!(!table.contains("LANDED"), "nothing landed yet:\n{table}");

    let landing = land_step(&env, "landed", "landed on main", 0.25);
    append_log(&env, &landing);
    let (row, totals) = task_row(&env);
    assert_kept(&row, &before, &["message", "phase"]);
    assert_eq!(row["standing"], "done");
    assert_eq!(
        row["duration_ms"], before["duration_ms"],
        "the task's time is its work's"
    );
    assert_eq!(row["landed"], COMMIT, "{row:#}");
    assert_eq!(row["landing"]["verdict"], "landed");
    assert_eq!(row["landing"]["target"], "main");
    assert_eq!(row["turns"], before["turns"].as_u64().unwrap() + 1);
    assert_eq!(row["cost"]["land_usd"], 0.25);
    let cost = |r: &Value| r["cost_usd"].as_f64().unwrap();
    assert!((cost(&row) - cost(&before) - 0.25).abs() < 1e-9, "{row:#}");
    assert_eq!(
        (totals["landed"].as_u64(), totals["not_landed"].as_u64()),
        (Some(1), Some(0))
    );

    let table = env.ok(&["report"]).stdout;
    let header = table.lines().next().unwrap();
    assert!(header.contains("LANDED"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains("f00dfeedbe"),
        "{table}"
    );
    assert!(table.contains("1 landed"), "{table}");
    let markdown = env.ok(&["report", "--markdown"]).stdout;
    assert!(
        markdown.contains("| LANDED |") && markdown.contains("| f00dfeedbe |"),
        "{markdown}"
    );
    let svg = env.ok(&["report", "--svg"]).stdout;
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
    let mark = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("landing landed"))
        .unwrap_or_else(|| panic!("a landing mark:\n{svg}"));
    let title = mark
        .first_child()
        .and_then(|t| t.text())
        .unwrap_or_default();
    assert!(title.starts_with("landed f00dfeedbe on main"), "{title}");
    assert!(
        doc.descendants()
            .any(|n| n.attribute("class") == Some("span landing")),
        "the landing turn's own colour:\n{svg}"
    );
    let html = env.ok(&["report", "--html"]).stdout;
    assert!(
        html.contains("<th>LANDED</th>") && html.contains("landing landed"),
        "{html}"
    );

    // The land step records the commit in the worker's state; `status` names it and the
    // target its log told.
    let state_file = env.state.join(env.worker_name()).join("worker.json");
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["landed"] = json!(COMMIT);
    std::fs::write(&state_file, state.to_string()).unwrap();
    let status = env.ok(&["status"]).stdout;
    assert!(status.contains("landed f00dfeedbe on main"), "{status}");
    let json = env.ok(&["status", "--json"]).last_json();
    assert_eq!(json["landed"], COMMIT, "{json:#}");
    assert_eq!(json["step"], Value::Null, "no step runs: {json:#}");
}

/// A landing given up the morning after, in a log that no longer holds the task's own
/// events: the history's row takes it in, the task still done, why in the row.
#[test]
fn a_landing_given_up_in_a_later_log_finds_its_task_in_the_history() {
    let env = done();
    let (before, _) = task_row(&env);
    let landing = land_step(&env, "not_landed", "could not resolve a.txt", 0.5);
    let dir = env.state.join(env.worker_name());
    // The task's events rotated away: only its history row is left.
    for log in ["events.jsonl", "events.1.jsonl"] {
        let _ = std::fs::remove_file(dir.join(log));
    }
    assert_eq!(task_row(&env).0, before, "the history kept the task");
    append_log(&env, &landing);
    let (row, totals) = task_row(&env);
    assert_kept(&row, &before, &["started_ms", "turns"]);
    assert_eq!(row["landed"], Value::Null);
    assert_eq!(row["landing"]["verdict"], "not_landed", "{row:#}");
    assert_eq!(row["landing"]["message"], "could not resolve a.txt");
    assert_eq!(row["cost"]["land_usd"], 0.5);
    assert_eq!(
        (totals["landed"].as_u64(), totals["not_landed"].as_u64()),
        (Some(0), Some(1))
    );
    let table = env.ok(&["report"]).stdout;
    assert!(
        table.contains("not landed") && table.contains("done"),
        "{table}"
    );
    let status = env.ok(&["status"]).stdout;
    assert!(
        status.contains("not landed: could not resolve a.txt"),
        "{status}"
    );
}

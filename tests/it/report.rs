//! `leash report` on event logs made by real runs: each task's row says what its
//! command reported, its faults are counted where they happened, a task still running
//! shows as such, the picture is well-formed SVG, and a task whose events were rotated
//! away is still there.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Env, Run};

/// A task's loop, run with `--json`: its exit code and every line it printed.
struct Ran {
    task: String,
    run: Run,
}

impl Ran {
    fn lines(&self, kind: &str) -> Vec<Value> {
        self.run
            .json_lines()
            .into_iter()
            .filter(|l| l["type"] == kind)
            .collect()
    }

    fn last_judged(&self) -> Value {
        self.lines("judged").pop().expect("a judged line")["judgement"].clone()
    }
}

fn run_loop(env: &Env, task: &str, extra: &[&str]) -> Ran {
    let mut args = vec!["loop", "--json"];
    args.extend(extra);
    args.extend(["--task", task]);
    Ran {
        task: task.to_string(),
        run: env.leash(&args),
    }
}

fn report(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["report", "--json"];
    args.extend(extra);
    let run = env.ok(&args);
    let lines = run.json_lines();
    assert_eq!(lines.last().unwrap()["type"], "totals", "{run:?}");
    lines
}

fn row<'a>(rows: &'a [Value], task: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["type"] == "task" && r["task"] == task)
        .unwrap_or_else(|| panic!("no row for {task:?} in {rows:#?}"))
}

/// The row says what the command said: its last verdict, exit code, phase, message and
/// cost; the commits, turns and nudges its lines showed.
fn assert_row_tells(row: &Value, ran: &Ran) {
    let judged = ran.last_judged();
    let what = format!("{}: {row:#}", ran.task);
    assert_eq!(row["exit_code"], judged["exit_code"], "{what}");
    assert_eq!(
        row["exit_code"].as_i64(),
        Some(i64::from(ran.run.code())),
        "{what}"
    );
    for field in ["verdict", "phase", "message"] {
        assert_eq!(row[field], judged[field], "{field} of {what}");
    }
    assert_eq!(row["cost_usd"], judged["task_cost_usd"], "{what}");
    let commits: BTreeSet<String> = ran
        .lines("judged")
        .iter()
        .flat_map(|j| {
            j["judgement"]["commits"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(row["commits"], commits.len(), "{what}");
    let turns = ran.lines("turn_started");
    assert_eq!(row["turns"], turns.len(), "{what}");
    let nudges = turns
        .iter()
        .filter(|t| {
            t["kind"] == "nudge"
                && !t["prompt"]
                    .as_str()
                    .unwrap()
                    .starts_with("Your last step was cut off")
        })
        .count();
    assert_eq!(row["nudges"], nudges, "{what}");
}

#[test]
fn each_row_tells_its_task_as_the_command_reported_it_with_what_went_wrong() {
    let env = Env::worker();
    env.script(&[
        // 1: claude crashes in the middle of implementing.
        "reply 1. write a.txt",
        "write a.txt; sleep 50; crash 137",
        "commit add a",
        // 2: the conversation no longer fits.
        "reply 1. write b.txt",
        "overflow",
        "write b.txt; commit add b",
        // 3: a check fails, then passes.
        "reply 1. write c.txt",
        "write c.txt broken; commit add c",
        "write c.txt fixed; commit fix c",
        // 4: the plan alone spends the budget.
        "cost 0.02; reply 1. write d.txt",
        // 5: still running when the report is asked for.
        "reply 1. write e.txt",
        "sleep 30000",
    ]);
    let crash = run_loop(&env, "Add a.txt", &[]);
    let hand_off = run_loop(&env, "Add b.txt", &[]);
    let check = run_loop(&env, "Add c.txt", &["--check", "grep -q fixed c.txt"]);
    let budget = run_loop(&env, "Add d.txt", &["--budget", "0.01"]);
    assert_eq!(
        [
            crash.run.code(),
            hand_off.run.code(),
            check.run.code(),
            budget.run.code()
        ],
        [0, 0, 0, 13],
        "{:?}",
        budget.run
    );
    // The task over budget is still the worker's: the next one replaces it on purpose.
    let running = env.spawn(&["loop", "--fresh", "--task", "Add e.txt"]);
    env.wait_until("the fifth task to implement", || {
        env.turns()
            .last()
            .is_some_and(|t| t["script"] == "sleep 30000")
    });

    let rows = report(&env, &[]);
    for ran in [&crash, &hand_off, &check, &budget] {
        assert_row_tells(row(&rows, &ran.task), ran);
    }
    let faults = |task: &str| row(&rows, task)["faults"].clone();
    assert_eq!(faults("Add a.txt")["crashes"], 1);
    assert_eq!(faults("Add b.txt")["hand_offs"], 1);
    assert_eq!(faults("Add d.txt")["budget"], true);
    let checked = row(&rows, "Add c.txt");
    assert_eq!(
        (
            checked["checks_failed"].as_u64(),
            checked["checks_passed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let standings: Vec<&str> = [
        "Add a.txt",
        "Add b.txt",
        "Add c.txt",
        "Add d.txt",
        "Add e.txt",
    ]
    .iter()
    .map(|t| row(&rows, t)["standing"].as_str().unwrap())
    .collect();
    assert_eq!(
        standings,
        ["done", "done", "done", "over_budget", "running"]
    );
    let totals = rows.last().unwrap();
    assert_eq!(
        (
            totals["tasks"].as_u64(),
            totals["done"].as_u64(),
            totals["need_you"].as_u64(),
            totals["running"].as_u64()
        ),
        (Some(5), Some(3), Some(1), Some(1)),
        "{totals}"
    );

    // Every field of a task line is in docs/json.md.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let section = doc
        .split("### `task`")
        .nth(1)
        .unwrap()
        .split("\n### ")
        .next()
        .unwrap();
    for key in row(&rows, "Add a.txt").as_object().unwrap().keys() {
        if key != "type" {
            assert!(
                section.contains(&format!("| `{key}` |")),
                "{key} is not documented"
            );
        }
    }

    // The table for a person, and Markdown for a pull request, say the same.
    let table = env.ok(&["report"]).stdout;
    assert!(table.starts_with("WORKER"), "{table}");
    for needle in [
        "Add a.txt",
        "over budget",
        "running",
        "1 crash",
        "1 hand-off",
        "5 task(s): 3 done, 1 need you, 1 running",
    ] {
        assert!(table.contains(needle), "{needle} in\n{table}");
    }
    let markdown = env.ok(&["report", "--markdown"]).stdout;
    assert!(
        markdown.starts_with("| WORKER | TASK | OUTCOME |"),
        "{markdown}"
    );
    assert_eq!(
        markdown.lines().filter(|l| l.starts_with('|')).count(),
        2 + 5 + 1
    );
    let since = report(&env, &["--since", "2000-01-01"]);
    assert_eq!(since.len(), 6);
    let future = report(&env, &["--since", "2999-01-01"]);
    assert_eq!(
        future.len(),
        2,
        "only the running task, then the totals: {future:#?}"
    );
    env.ok(&["session", "stop"]);
    crate::support::finish(running, std::time::Duration::from_secs(20));
}

#[test]
fn the_picture_has_a_row_per_worker_a_bar_per_span_a_marker_per_fault() {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for (worker, lines) in [
        (
            "w1",
            &[
                "reply 1. write a.txt",
                "write a.txt; sleep 50; crash 137",
                "commit add a",
                "reply 1. write <b>.txt & \\u001b[2J",
                "write b.txt; commit add b",
            ][..],
        ),
        (
            "w2",
            &[
                "reply 1. write c.txt",
                "overflow",
                "write c.txt; commit add c",
            ][..],
        ),
    ] {
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    env.ok(&[
        "--worker",
        "w1",
        "loop",
        "--worktree",
        "--check",
        "true",
        "--task",
        "Add a.txt",
    ]);
    env.ok(&[
        "--worker",
        "w1",
        "loop",
        "--worktree",
        "--task",
        "Add <b> & \u{1b}[2J",
    ]);
    env.ok(&[
        "--worker",
        "w2",
        "loop",
        "--worktree",
        "--task",
        "Add c.txt",
    ]);

    let rows: Vec<Value> = report(&env, &[])
        .into_iter()
        .filter(|r| r["type"] == "task")
        .collect();
    assert_eq!(rows.len(), 3);
    let count = |field: &str| -> usize {
        rows.iter()
            .map(|r| r[field].as_array().unwrap().len())
            .sum()
    };
    let svg = env.ok(&["report", "--svg"]).stdout;
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
    let with_class = |class: &str| -> Vec<roxmltree::Node> {
        doc.descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.split(' ').next() == Some(class))
            })
            .collect()
    };
    let workers: Vec<&str> = with_class("worker")
        .iter()
        .filter_map(|n| n.attribute("data-worker"))
        .collect();
    assert_eq!(workers, ["w1", "w2"]);
    assert!(
        count("spans") >= 3 * 2,
        "plan and implement at least: {rows:#?}"
    );
    assert_eq!(with_class("span").len(), count("spans"));
    assert_eq!(with_class("marker").len(), count("markers"));
    let markers: Vec<&str> = with_class("marker")
        .iter()
        .filter_map(|n| n.attribute("class"))
        .collect();
    assert!(markers.contains(&"marker crash"), "{markers:?}");
    assert!(markers.contains(&"marker hand_off"), "{markers:?}");
    for task in with_class("task") {
        let title = task
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .expect("a title");
        assert!(title.starts_with("Add "), "{title}");
    }
    assert_eq!(with_class("outcome").len(), 3);
    assert!(!svg.contains('\u{1b}'), "no raw escape in the picture");

    let html = env.ok(&["report", "--html"]).stdout;
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("<svg") && html.contains("<table>"));
    assert!(html.contains("Add &lt;b&gt; &amp;"), "escaped");
}

#[test]
fn a_task_whose_events_were_rotated_away_is_still_in_the_report() {
    let mut env = Env::worker();
    env.set("LEASH_LOG_MAX_BYTES", "64KiB");
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; sleep 50; crash 137",
        "commit add a",
    ]);
    let ran = run_loop(&env, "Add a.txt", &[]);
    assert_eq!(ran.run.code(), 0, "{:?}", ran.run);
    let before = report(&env, &[]);
    let task_id = row(&before, "Add a.txt")["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A busy night after it: the log rotates twice.
    for _ in 0..4 {
        env.ok(&["session", "send", "[[flood 1000]]"]);
    }
    let logs: String = ["events.jsonl", "events.1.jsonl"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(env.state.join(env.worker_name()).join(f)).unwrap_or_default()
        })
        .collect();
    assert!(
        !logs.contains(&task_id),
        "the task's events are gone from the log"
    );
    let after = report(&env, &[]);
    let (was, is) = (row(&before, "Add a.txt"), row(&after, "Add a.txt"));
    assert_eq!(is, was, "the history kept it as it was");
    assert_row_tells(is, &ran);
    assert_eq!(is["faults"]["crashes"], 1);
}

#[test]
fn a_report_on_a_worker_that_does_not_exist_says_so() {
    let env = Env::worker();
    env.ok(&["--worker", "real", "session", "start"]);
    let run = env.leash(&["--json", "--worker", "typo", "report"]);
    assert_eq!(run.code(), 3, "{run:?}");
    assert_eq!(run.last_json()["type"], "error", "{run:?}");
    assert!(run.stderr.contains("there is no worker typo"), "{run:?}");
    let run = env.ok(&["--worker", "real", "report"]);
    assert!(
        run.stderr.contains("worker real has no tasks yet"),
        "{run:?}"
    );
}

/// Out of nudges is the 10 `loop` exited with; a fork's row costs what the fork spent
/// (the plan is its original's, counted once); a plain `session send` running on a
/// worker is no task running.
#[test]
fn forks_and_a_task_out_of_nudges_are_reported_as_they_ended() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_NUDGES", "1");
    env.script(&["cost 0.5; reply 1. write a.txt"]);
    env.ok(&["plan", "--task", "Add a.txt"]);
    env.ok(&["session", "fork", "try1", "--worktree"]);
    env.script(&["cost 0.01; write a.txt; commit add a"]);
    env.ok(&["--worker", "try1", "implement"]);
    env.script(&["write a.txt", "write a.txt again"]);
    let run = env.leash(&["loop"]);
    assert_eq!(run.code(), 10, "{run:?}");

    env.script(&["sleep 3000; reply later"]);
    let chat = env.spawn(&["session", "send", "what time is it"]);
    env.wait_busy();
    let rows = report(&env, &["--all"]);
    let tasks: Vec<&Value> = rows.iter().filter(|r| r["type"] == "task").collect();
    let original = tasks.iter().find(|r| r["worker"] != "try1").unwrap();
    let fork = tasks.iter().find(|r| r["worker"] == "try1").unwrap();
    assert_eq!(original["standing"], "out_of_nudges", "{original}");
    assert_eq!(original["exit_code"], 10, "{original}");
    assert_eq!(fork["standing"], "done", "{fork}");
    assert!(
        (fork["cost_usd"].as_f64().unwrap() - 0.01).abs() < 1e-6,
        "{fork}"
    );
    let all = rows.last().unwrap();
    let spent = all["cost_usd"].as_f64().unwrap();
    assert!(spent > 0.5 && spent < 0.52, "the plan once: {all}");
    assert_eq!(all["running"], 0, "{all}");
    crate::support::finish(chat, std::time::Duration::from_secs(20));
}

#[test]
fn a_report_on_one_worker_and_on_all_at_once_is_refused() {
    let env = Env::worker();
    let run = env.leash(&["--worker", "a", "report", "--all"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

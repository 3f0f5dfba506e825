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

    // Past the running task's last event: its time counts to now.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let rows = report(&env, &[]);
    let running_row = row(&rows, "Add e.txt");
    let started = running_row["started_ms"].as_u64().unwrap();
    assert!(
        running_row["duration_ms"].as_u64().unwrap() >= asked - started,
        "{running_row:#}"
    );
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

/// The picture tells what happened and why: a bar per stretch, a failed check red with
/// its command and first failure line, a mark per nudge and per fault, each kind of end
/// its own mark with a legend entry, a header with the verdict, and ticks across the
/// whole axis. The HTML page scales it, and escapes what the other formats escape.
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
                "write a.txt broken; sleep 50; crash 137",
                "commit add a",
                "write a.txt fixed; commit fix a",
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
                "reply LEASH-BLOCKED: which database?",
            ][..],
        ),
    ] {
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    let check = "grep -q fixed a.txt || { echo; echo 'error: a.txt is not fixed'; exit 1; }";
    env.ok(&[
        "--worker",
        "w1",
        "loop",
        "--worktree",
        "--check",
        check,
        "--task",
        "Add a.txt",
    ]);
    let hostile = "Add <b> & \u{1b}[2J \u{202e}txt.exe";
    env.ok(&["--worker", "w1", "loop", "--worktree", "--task", hostile]);
    env.ok(&[
        "--worker",
        "w2",
        "loop",
        "--worktree",
        "--task",
        "Add c.txt",
    ]);
    let blocked = env.leash(&["--worker", "w2", "loop", "--task", "Pick a database"]);
    assert_eq!(blocked.code(), 11, "{blocked:?}");

    let rows: Vec<Value> = report(&env, &[])
        .into_iter()
        .filter(|r| r["type"] == "task")
        .collect();
    assert_eq!(rows.len(), 4);
    let count = |field: &str| -> usize {
        rows.iter()
            .map(|r| r[field].as_array().unwrap().len())
            .sum()
    };
    let svg = env.ok(&["report", "--svg"]).stdout;
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
    let classed = |class: &str| -> Vec<roxmltree::Node> {
        doc.descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.split(' ').next() == Some(class))
            })
            .collect()
    };
    let title = |node: &roxmltree::Node| -> String {
        node.children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or_default()
            .to_string()
    };
    let text = |node: &roxmltree::Node| -> String {
        node.descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect()
    };
    let workers: Vec<&str> = classed("worker")
        .iter()
        .filter_map(|n| n.attribute("data-worker"))
        .collect();
    assert_eq!(workers, ["w1", "w2"]);
    assert!(
        count("spans") >= 4 * 2,
        "plan and implement at least: {rows:#?}"
    );
    assert_eq!(classed("span").len(), count("spans"));
    assert_eq!(classed("marker").len(), count("markers"));
    let markers: Vec<&str> = classed("marker")
        .iter()
        .filter_map(|n| n.attribute("class"))
        .collect();
    assert!(markers.contains(&"marker crash"), "{markers:?}");
    assert!(markers.contains(&"marker hand_off"), "{markers:?}");

    // The failed check: red, with its command and the first line of its failure.
    let failed: Vec<roxmltree::Node> = classed("span")
        .into_iter()
        .filter(|n| n.attribute("class") == Some("span checks failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{svg}");
    assert_eq!(failed[0].attribute("fill"), Some("#cf222e"));
    let passed = classed("span")
        .into_iter()
        .find(|n| n.attribute("class") == Some("span checks"))
        .expect("the check that passed after the fix");
    assert_ne!(passed.attribute("fill"), failed[0].attribute("fill"));
    let hover = title(&failed[0]);
    assert!(hover.contains(check), "{hover}");
    assert!(hover.contains("error: a.txt is not fixed"), "{hover}");
    // A mark per nudge: the fix the failed check asked for.
    let nudged = row(&rows, "Add a.txt")["nudges"].as_u64().unwrap();
    assert!(nudged >= 1, "{rows:#?}");
    assert_eq!(classed("nudge").len() as u64, nudged, "{svg}");

    // Every task is hoverable along its whole bar, and says what it is.
    for task in classed("task") {
        assert!(title(&task).starts_with("Add ") || title(&task).starts_with("Pick "));
        let target = task
            .children()
            .find(|c| c.attribute("class") == Some("hover"))
            .expect("a hover target");
        let spans = task
            .children()
            .filter(|c| c.attribute("class").is_some_and(|c| c.starts_with("span")));
        let x = |n: &roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
        let (from, to) = (x(&target, "x"), x(&target, "x") + x(&target, "width"));
        for span in spans {
            assert!(x(&span, "x") >= from && x(&span, "x") + x(&span, "width") <= to + 0.2);
        }
    }
    // Each kind of end its own mark, and the legend names each.
    let ends: Vec<(String, String)> = classed("outcome")
        .iter()
        .map(|n| (n.attribute("class").unwrap().to_string(), text(n)))
        .collect();
    assert_eq!(ends.len(), 4, "{ends:?}");
    let mark_of = |kind: &str| {
        ends.iter()
            .find(|(class, _)| class == &format!("outcome {kind}"))
            .map(|(_, mark)| mark.clone())
            .unwrap_or_else(|| panic!("{kind} in {ends:?}"))
    };
    assert_ne!(mark_of("done"), mark_of("blocked"));
    let legend: Vec<String> = classed("legend-end").iter().map(text).collect();
    for kind in ["done", "blocked"] {
        let entry = format!("{}{}", mark_of(kind), kind);
        assert!(legend.contains(&entry), "{entry} in {legend:?}");
    }
    assert!(legend.len() >= 9, "{legend:?}");

    // The header: where, when, and the verdict.
    let repository = env.repo.file_name().unwrap().to_str().unwrap();
    let heading = text(&classed("heading")[0]);
    assert!(heading.starts_with(repository), "{heading}");
    assert!(
        heading.ends_with(" UTC") && heading.contains(" – "),
        "{heading}"
    );
    let verdict = text(&classed("verdict")[0]);
    assert!(verdict.starts_with("3 done · 1 needs you · $"), "{verdict}");

    // Ticks across the whole range: the axis is fitted to the data.
    let ticks: Vec<f64> = classed("tick")
        .iter()
        .map(|n| n.attribute("x1").unwrap().parse().unwrap())
        .collect();
    let xs: Vec<f64> = classed("span")
        .iter()
        .flat_map(|n| {
            let x: f64 = n.attribute("x").unwrap().parse().unwrap();
            [x, x + n.attribute("width").unwrap().parse::<f64>().unwrap()]
        })
        .collect();
    let (first, last) = (
        xs.iter().copied().fold(f64::MAX, f64::min),
        xs.iter().copied().fold(f64::MIN, f64::max),
    );
    let width: f64 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert!(
        last - first > width * 0.7,
        "the data fills the width: {first}..{last}"
    );
    assert!(
        ticks[0] < first + (last - first) / 3.0
            && ticks[ticks.len() - 1] > last - (last - first) / 3.0,
        "{ticks:?} across {first}..{last}"
    );
    assert!(!svg.contains('\u{1b}'), "no raw escape in the picture");
    assert!(
        !svg.contains('\u{202e}'),
        "no raw bidi override in the picture"
    );

    let html = env.ok(&["report", "--html"]).stdout;
    assert!(html.starts_with("<!doctype html>"), "{html}");
    let fragment = |open: &str, close: &str| -> String {
        let at = html
            .find(open)
            .unwrap_or_else(|| panic!("{open} in {html}"));
        let end = html[at..].find(close).unwrap() + at + close.len();
        html[at..end].to_string()
    };
    let picture = fragment("<svg", "</svg>");
    let picture = roxmltree::Document::parse(&picture).unwrap();
    assert!(picture.root_element().attribute("viewBox").is_some());
    assert!(html.contains("svg { width: 100%; height: auto;"), "{html}");
    let table = fragment("<table>", "</table>");
    let table = roxmltree::Document::parse(&table).unwrap();
    let cells: Vec<roxmltree::Node> = table
        .descendants()
        .filter(|n| n.has_tag_name("td"))
        .collect();
    assert!(
        cells
            .iter()
            .any(|c| c.text() == Some("Add <b> & \\u{1b}[2J \\u{202e}txt.exe")),
        "escaped as in the other formats"
    );
    assert!(
        !html.contains('\u{202e}'),
        "no raw bidi override in the page"
    );
    assert!(html.contains("white-space: nowrap"), "{html}");
    let wraps = |cell: &str| {
        cells
            .iter()
            .find(|c| c.text() == Some(cell))
            .unwrap_or_else(|| panic!("{cell}"))
            .attribute("class")
            == Some("prose")
    };
    assert!(!wraps("leash/w1"), "a branch stays on one line");
    assert!(wraps("Add c.txt"), "a task wraps");
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

/// `status` and `report` tell the code `leash loop` exited with, the one a night's
/// script saw: 10 out of nudges, and a loop that died before any judgement (its claude
/// could not start) as failed with its code. Workers are ordered as a person counts; a
/// history row from no possible time is skipped and said; a replaced task's time ends
/// with its last work.
#[test]
fn status_and_report_tell_the_code_the_loop_exited_with() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_NUDGES", "1");
    env.script(&["reply 1. write a.txt", "write a.txt", "write a.txt again"]);
    let out_of_nudges = env.leash(&["--worker", "task-10", "loop", "--task", "Add a.txt"]);
    assert_eq!(out_of_nudges.code(), 10, "{out_of_nudges:?}");
    let status = env.ok(&["--worker", "task-10", "status"]).stdout;
    let last = status.lines().find(|l| l.starts_with("last")).unwrap();
    assert!(last.ends_with("(`leash loop` exits 10)"), "{status}");
    let status = env
        .ok(&["--worker", "task-10", "status", "--json"])
        .json_lines();
    assert_eq!(status[0]["loop_exit_code"], 10, "{status:#?}");
    // Its daemon answered: the code is in the event log, not in the state dir's file.
    let logs = env.ok(&["--worker", "task-10", "session", "logs", "--json"]);
    let ended: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "loop_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{logs:?}");
    assert_eq!(ended[0]["exit_code"], 10, "{logs:?}");
    assert_eq!(ended[0]["task_id"], status[0]["task_id"], "{logs:?}");
    assert!(!env.state.join("task-10").join("loop-exits.json").exists());

    env.script(&["reply 1. write b.txt"]);
    env.ok(&["--worker", "task-9", "plan", "--task", "Add b.txt"]);
    env.ok(&["--worker", "task-9", "session", "stop"]);
    let claude = env
        .vars
        .iter()
        .find(|(k, _)| k == "LEASH_CLAUDE")
        .unwrap()
        .1
        .clone();
    env.set("LEASH_CLAUDE", "/nonexistent/claude");
    let died = env.leash(&["--worker", "task-9", "loop"]);
    let code = died.code();
    assert!(code != 0 && code != 12, "{died:?}");
    env.set("LEASH_CLAUDE", &claude);
    let status = env.ok(&["--worker", "task-9", "status"]).stdout;
    assert!(
        status.contains(&format!("the last `leash loop` exited {code}")),
        "{status}"
    );
    let status = env
        .ok(&["--worker", "task-9", "status", "--json"])
        .json_lines();
    assert_eq!(status[0]["loop_exit_code"], code, "{status:#?}");
    // No daemon answered (the loop died before it started one): the state dir keeps it.
    assert!(env.state.join("task-9").join("loop-exits.json").exists());

    // A task replaced a while after its last work.
    env.script(&["reply 1. write x.txt", "reply 1. write y.txt"]);
    env.ok(&["--worker", "task-11", "plan", "--task", "Add x.txt"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.ok(&[
        "--worker",
        "task-11",
        "plan",
        "--fresh",
        "--task",
        "Add y.txt",
    ]);

    // A damaged history row: a time no task can have.
    let history = env.state.join("task-10").join("history.jsonl");
    let mut kept: Value = serde_json::from_str(
        std::fs::read_to_string(&history)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    kept["task_id"] = "damaged".into();
    kept["started_ms"] = u64::MAX.into();
    kept["last_ms"] = u64::MAX.into();
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.push_str(&format!("{kept}\n"));
    std::fs::write(&history, text).unwrap();

    let run = env.ok(&["report", "--all", "--json"]);
    assert!(run.stderr.contains("1 history row(s) skipped"), "{run:?}");
    let rows: Vec<Value> = run
        .json_lines()
        .into_iter()
        .filter(|r| r["type"] == "task")
        .collect();
    let workers: Vec<&str> = rows.iter().map(|r| r["worker"].as_str().unwrap()).collect();
    assert_eq!(workers, ["task-9", "task-10", "task-11", "task-11"]);
    assert_eq!(
        (&rows[0]["standing"], &rows[0]["exit_code"]),
        (&"failed".into(), &code.into()),
        "{:#}",
        rows[0]
    );
    assert_eq!(
        (&rows[1]["standing"], &rows[1]["exit_code"]),
        (&"out_of_nudges".into(), &10.into())
    );
    // Each row names the machine its last step ran on, and so does each worker's.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    assert_eq!(rows[1]["host"], host, "{:#}", rows[1]);
    let workers = env.ok(&["session", "list", "--json"]).json_lines();
    let task_10 = workers.iter().find(|w| w["worker"] == "task-10").unwrap();
    assert_eq!(task_10["host"], host, "{workers:#?}");
    let task_11 = env.ok(&["--worker", "task-11", "session", "status", "--json"]);
    assert_eq!(task_11.json_lines()[0]["host"], host, "{task_11:?}");
    let (x, y) = (&rows[2], &rows[3]);
    assert_eq!(x["standing"], "replaced", "{x:#}");
    let ms = |row: &Value, field: &str| row[field].as_u64().unwrap();
    assert!(
        ms(x, "last_ms") + 300 <= ms(y, "started_ms"),
        "replaced: its time ends with its last work: {x:#} {y:#}"
    );
    assert_eq!(ms(x, "duration_ms"), ms(x, "last_ms") - ms(x, "started_ms"));
    let svg = env.ok(&["report", "--all", "--svg"]).stdout;
    let heading = svg.split("class=\"heading\"").nth(1).unwrap();
    let range = heading.split("<tspan").nth(1).unwrap();
    let dates: Vec<&str> = range
        .split(['>', '<', ' '])
        .filter(|w| w.len() == 10 && w.contains('-'))
        .collect();
    assert!(!dates.is_empty(), "{heading}");
    for date in dates {
        let year: u32 = date[..4].parse().unwrap();
        assert!(
            (2020..2100).contains(&year),
            "the damaged row is not drawn: {heading}"
        );
    }
}

/// `report --all` over workers of two repositories names each row's; over one, it
/// does not.
#[test]
fn a_report_over_several_repositories_names_each_row_s() {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    let other = env.dir.path().join("other-repo");
    std::fs::create_dir_all(&other).unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.email", "test@example.com"],
        &["config", "user.name", "Test"],
        &["commit", "-q", "--allow-empty", "-m", "initial"],
    ] {
        crate::support::git(&other, args);
    }
    for (worker, dir) in [("here", env.repo.clone()), ("there", other.clone())] {
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, "reply 1. write a.txt\n").unwrap();
        let run = env.leash_in(&dir, &["--worker", worker, "plan", "--task", "Add a.txt"]);
        assert_eq!(run.code(), 0, "{run:?}");
    }
    let all = env.ok(&["report", "--all", "--markdown"]).stdout;
    let header = all.lines().next().unwrap();
    assert!(header.contains("| REPOSITORY |"), "{all}");
    assert!(all.contains("| other-repo |"), "{all}");
    let here = env.repo.file_name().unwrap().to_str().unwrap();
    assert!(all.contains(&format!("| {here} |")), "{all}");
    let table = env.ok(&["report", "--all"]).stdout;
    assert!(
        table.starts_with("WORKER") && table.contains("REPOSITORY"),
        "{table}"
    );
    let one = env.ok(&["report", "--markdown"]).stdout;
    assert!(!one.contains("REPOSITORY"), "{one}");
}

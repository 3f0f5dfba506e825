//! A fleet through one night: three workers, each in its own worktree, four tasks each,
//! at once, while the night does its worst (a daemon killed mid-turn, claude killed
//! mid-turn, a provider error storm, a turn that commits nothing, a full conversation,
//! a failing check, a review asking for changes, a person committing on main) and the
//! machine reboots between tasks. Every task must end done, exit 0.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Env, alive, git, signal};

const WORKERS: [&str; 3] = ["w1", "w2", "w3"];
const TASKS: usize = 4;
/// The reboot comes after this many tasks of each worker.
const REBOOT_AFTER: usize = 2;

/// One task of a worker: its script lines (one per turn), its check, and whether it is
/// reviewed.
struct Task {
    script: Vec<String>,
    check: String,
    review: bool,
}

fn task(worker: &str, n: usize) -> Task {
    let file = format!("{worker}-t{n}.txt");
    let plan = format!("reply 1. write {file}\\n2. commit it");
    let commit = format!("write {file}; commit {worker} task {n}");
    let mut check = format!("test -f {file}");
    let mut review = false;
    let night: Vec<String> = match (worker, n) {
        // A provider error storm: three 529s in a row, waited out.
        ("w1", 1) => vec![
            "api_error 529".into(),
            "api_error 529".into(),
            "api_error 529".into(),
            commit,
        ],
        // The daemon is killed in the middle of implementing.
        ("w1", 2) => vec![format!("write {file}; kill_daemon"), commit],
        // The conversation no longer fits: handed off to a new one.
        ("w1", 3) => vec!["overflow".into(), commit],
        // claude is killed in the middle of implementing.
        ("w2", 1) => vec![format!("write {file}; sleep 100; crash 137"), commit],
        // A turn that leaves its work uncommitted, then a nudge.
        ("w2", 2) => vec![format!("write {file}"), format!("commit {worker} task {n}")],
        // A check that fails, then a fix.
        ("w2", 3) => {
            check = format!("grep -q fixed {file}");
            vec![
                format!("write {file} broken; commit {worker} task {n}"),
                format!("write {file} fixed; commit fix {worker} task {n}"),
            ]
        }
        // A review that asks for changes, then approves.
        ("w3", 1) => {
            review = true;
            vec![
                commit,
                "reply LEASH-CHANGES: say more in it".into(),
                format!("write {file} more; commit more {worker} task {n}"),
                "reply Good now.\\nLEASH-APPROVED".into(),
            ]
        }
        _ => vec![commit],
    };
    Task {
        script: std::iter::once(plan).chain(night).collect(),
        check,
        review,
    }
}

/// Runs tasks `range` of `worker` one after the other, as a backlog loop in bash
/// would; returns each task's exit code and judged commits.
fn backlog(env: &Env, worker: &str, range: std::ops::Range<usize>) -> Vec<(i32, Vec<String>)> {
    range
        .map(|n| {
            let task = task(worker, n);
            let text = format!("Task {n} of {worker}");
            let mut args = vec![
                "--worker",
                worker,
                "loop",
                "--worktree",
                "--json",
                "--check",
            ];
            args.push(&task.check);
            if task.review {
                args.push("--review");
            }
            args.extend(["--task", &text]);
            let run = env.leash(&args);
            assert_eq!(run.code(), 0, "{worker} task {n}: {run:?}");
            let commits: std::collections::BTreeSet<String> = run
                .json_lines()
                .iter()
                .filter(|l| l["type"] == "judged")
                .flat_map(|l| {
                    l["judgement"]["commits"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect();
            (run.code(), commits.into_iter().collect())
        })
        .collect()
}

/// What a reboot does: every daemon and claude gone at once, the runtime dir wiped.
fn reboot(env: &Env) {
    let mut pids = Vec::new();
    for worker in WORKERS {
        let status = env.ok(&["--worker", worker, "session", "status", "--json"]);
        let status: Value = status.last_json();
        pids.extend(status["daemon_pid"].as_i64());
        pids.extend(status["claude_pid"].as_i64());
    }
    for pid in &pids {
        signal(*pid as u32, libc::SIGKILL);
    }
    for pid in pids {
        env.wait_until("the machine to go down", || !alive(pid));
    }
    std::fs::remove_dir_all(&env.runtime).unwrap();
}

#[test]
fn a_fleet_of_worktree_workers_gets_through_a_night_of_faults_and_a_reboot() {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for worker in WORKERS {
        let lines: Vec<String> = (1..=TASKS).flat_map(|n| task(worker, n).script).collect();
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    let main_before = git(&env.repo, &["rev-parse", "HEAD"]);

    let mut ended: BTreeMap<&str, Vec<(i32, Vec<String>)>> = BTreeMap::new();
    for (range, person) in [
        (1..REBOOT_AFTER + 1, true),
        (REBOOT_AFTER + 1..TASKS + 1, false),
    ] {
        std::thread::scope(|night| {
            let runs: Vec<_> = WORKERS
                .iter()
                .map(|worker| {
                    let (env, range) = (&env, range.clone());
                    (*worker, night.spawn(move || backlog(env, worker, range)))
                })
                .collect();
            if person {
                // Someone commits on main while the workers work.
                std::fs::write(env.repo.join("person.txt"), "by hand\n").unwrap();
                env.git(&["add", "person.txt"]);
                env.git(&["commit", "-q", "-m", "a person's commit"]);
            }
            for (worker, run) in runs {
                ended.entry(worker).or_default().extend(run.join().unwrap());
            }
        });
        if person {
            reboot(&env);
        }
    }

    // What the night came to, for whoever runs this with --nocapture.
    for (worker, runs) in &ended {
        for (n, (code, commits)) in runs.iter().enumerate() {
            eprintln!(
                "{worker} task {}: exit {code}, {} commit(s)",
                n + 1,
                commits.len()
            );
        }
    }
    for worker in WORKERS {
        let runs = &ended[worker];
        assert_eq!(runs.len(), TASKS, "{worker}");
        assert!(
            runs.iter().all(|(code, _)| *code == 0),
            "{worker}: {runs:?}"
        );
        let branch = format!("leash/{worker}");
        for (n, (_, commits)) in runs.iter().enumerate() {
            assert!(!commits.is_empty(), "{worker} task {}: no commit", n + 1);
            for commit in commits {
                let reachable = std::process::Command::new("git")
                    .args(["merge-base", "--is-ancestor", commit, &branch])
                    .current_dir(&env.repo)
                    .status()
                    .unwrap();
                assert!(reachable.success(), "{commit} of {worker} is on {branch}");
            }
        }
        let status = env
            .ok(&["--worker", worker, "status", "--json"])
            .last_json();
        assert_eq!(status["phase"], "done", "{worker}: {status}");
    }
    // The main work tree: the person's commit, nothing else.
    assert_eq!(
        git(
            &env.repo,
            &["log", "--format=%s", &format!("{main_before}..main")]
        ),
        "a person's commit"
    );
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");

    let count = |needle: &str| env.said(needle);
    // The faults happened, and were survived where they happened.
    assert_eq!(
        count("daemon died during the implement turn"),
        1,
        "{:#?}",
        env.events()
    );
    assert_eq!(
        count("claude exited during the turn"),
        1,
        "{:#?}",
        env.events()
    );
    assert_eq!(count("provider error"), 3, "{:#?}", env.events());
    assert_eq!(count("the conversation was full"), 1, "{:#?}", env.events());
    // One daemon killed mid-turn, then three taken by the reboot.
    assert_eq!(
        count("died without stopping"),
        1 + WORKERS.len(),
        "{:#?}",
        env.events()
    );
    // The morning after: one report of the whole night.
    let report = env.ok(&["report", "--json"]).json_lines();
    let all = report.last().unwrap();
    assert_eq!(
        (all["tasks"].as_u64(), all["done"].as_u64()),
        (Some(12), Some(12)),
        "{all}"
    );
    let faults = &all["faults"];
    assert_eq!(
        [
            &faults["crashes"],
            &faults["hand_offs"],
            &faults["provider_errors"]
        ],
        [1, 1, 3],
        "{all}"
    );
    assert_eq!(
        faults["daemon_restarts"], 1,
        "the kill mid-task; the reboot fell between tasks: {all}"
    );
    let table = env.ok(&["report"]).stdout;
    eprintln!("{table}");
    for worker in WORKERS {
        let history =
            std::fs::read_to_string(env.state.join(worker).join("history.jsonl")).unwrap();
        let lines = history.lines().count();
        assert_eq!(lines, TASKS, "one history line per task of {worker}");
        eprintln!(
            "{worker}: history {} bytes for {lines} tasks ({} bytes a task)",
            history.len(),
            history.len() / lines
        );
    }
    if let Ok(dir) = std::env::var("LEASH_REPORT_OUT") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("night.txt"), &table).unwrap();
        std::fs::write(
            dir.join("night.md"),
            env.ok(&["report", "--markdown"]).stdout,
        )
        .unwrap();
        std::fs::write(dir.join("night.svg"), env.ok(&["report", "--svg"]).stdout).unwrap();
    }
    let kinds = |kind: &str| env.events().iter().filter(|e| e["type"] == kind).count();
    assert_eq!(
        kinds("reviewed"),
        2,
        "one review asked for changes, one approved"
    );

    // The morning: the night's twelve tasks onto main, with the person's commit.
    let land = env.leash(&["land", "--all", "--json"]);
    assert_eq!(land.code(), 0, "{land:?}");
    let landed = land
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "landing" && l["outcome"] == "landed")
        .count();
    assert_eq!(landed, WORKERS.len(), "{land:?}");
    for worker in WORKERS {
        for n in 1..=TASKS {
            let file = format!("{worker}-t{n}.txt");
            assert!(env.repo.join(&file).exists(), "{file} on main: {land:?}");
        }
    }
    assert!(env.repo.join("person.txt").exists());
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
}

#[test]
fn the_readme_backlog_script_runs_a_night_and_says_what_each_task_needs() {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for (worker, lines) in [
        (
            "task-1",
            &["reply 1. write a.txt", "write a.txt; commit add a.txt"][..],
        ),
        ("task-2", &["reply LEASH-BLOCKED: which database?"][..]),
        (
            "task-3",
            &["reply 1. write c.txt", "write c.txt; commit add c.txt"][..],
        ),
    ] {
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    let bin = env.dir.path();
    std::fs::write(
        bin.join("night.sh"),
        crate::support::readme::fleet_script("night.sh"),
    )
    .unwrap();
    std::fs::write(
        bin.join("morning.sh"),
        crate::support::readme::fleet_script("morning.sh"),
    )
    .unwrap();
    // Written on Windows: CRLF endings, a blank line that is only a CR, and a task
    // that reads like a flag.
    std::fs::write(
        bin.join("tasks.txt"),
        "Add a.txt\r\n\r\n-Pick a database for b\r\nAdd c.txt\r\n",
    )
    .unwrap();
    let night = |n: usize| {
        let run = env.bash(&format!(
            "bash {dir}/night.sh {dir}/tasks.txt 2 && cat .leash/night/results",
            dir = bin.display()
        ));
        assert_eq!(run.code(), 0, "night {n}: {run:?}");
        run
    };
    let first = night(1);
    let mut results: Vec<&str> = first.stdout.lines().collect();
    results.sort();
    assert_eq!(
        results,
        [
            "0 task-1 Add a.txt",
            "0 task-3 Add c.txt",
            "11 task-2 -Pick a database for b",
        ]
    );
    let morning = env.bash(&format!("bash {}/morning.sh", bin.display()));
    assert_eq!(
        morning.stdout,
        "land   leash/task-1  Add a.txt  (leash land task-1)\n\
         look   leash/task-2  -Pick a database for b  (exit 11: leash --worker task-2 status)\n\
         land   leash/task-3  Add c.txt  (leash land task-3)\n",
        "{morning:?}"
    );
    let log_of = |n: usize| {
        std::fs::read_to_string(env.repo.join(format!(".leash/night/task-{n}.log"))).unwrap()
    };
    let first_log = log_of(1);
    // After a reboot, as README says: the same file again.
    let again = night(2);
    let tasks: Vec<&str> = again
        .stdout
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        tasks,
        ["task-1", "task-2", "task-3"],
        "one line per task: {again:?}"
    );
    assert!(
        again.stdout.starts_with("0 task-1 Add a.txt\n"),
        "{again:?}"
    );
    assert!(
        log_of(1).starts_with(&first_log) && log_of(1).len() > first_log.len(),
        "the log is appended to"
    );
    assert_eq!(
        git(&env.repo, &["status", "--porcelain"]),
        "",
        "the main work tree stays clean"
    );
    for branch in ["leash/task-1", "leash/task-3"] {
        let log = git(
            &env.repo,
            &["log", "--format=%s", &format!("main..{branch}")],
        );
        assert!(log.starts_with("add "), "{branch}: {log}");
    }
}

//! A night on a Slurm cluster: README's `night.sbatch`, as written there, runs six tasks
//! on a two-node cluster started by the test; the node running task 3 dies in the middle
//! of its turn (and of a git command), Slurm requeues the task on the other node, and
//! every task ends done with nothing sent twice and nothing left running. A cancelled
//! array leaves nothing running either.
//!
//! Needs slurm-wlm, munge, tini and root; without them it says SKIPPED and passes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cluster::{self, Cluster};
use crate::support::{Env, LEASH, alive, signal};

const TASKS: usize = 6;
/// The task whose node dies under it.
const DOOMED: usize = 3;
const CONTINUE: &str = "Your last step was cut off";

fn task_text(n: usize) -> String {
    format!("Add f{n}.txt")
}

/// Each task plans, then writes its file and commits; the doomed one's first implement
/// turn takes git's index lock and hangs until its node dies.
fn script(n: usize) -> Vec<String> {
    let plan = format!("reply 1. write f{n}.txt\\n2. commit it");
    let commit = format!("write f{n}.txt; commit add f{n}.txt");
    match n {
        DOOMED => vec![
            plan,
            format!(
                "write f{n}.txt; sh touch \"$(git rev-parse --git-dir)/index.lock\"; sleep 600000"
            ),
            commit,
        ],
        // Tasks only started to be cancelled: they plan for ever.
        n if n > TASKS => vec!["sleep 600000".into()],
        _ => vec![plan, commit],
    }
}

/// A cluster test's setup: the environment, the cluster, the README's script.
struct Night {
    // Dropped first: the cluster goes down before the environment's temp dir.
    cluster: Cluster,
    env: Env,
    sbatch: PathBuf,
    tasks: PathBuf,
}

impl Night {
    /// `None` (after saying so, loudly) when no cluster can run here.
    fn start() -> Option<Night> {
        if let Some(why) = cluster::unavailable() {
            eprintln!("\nSKIPPED: the Slurm cluster test: {why}\n");
            return None;
        }
        let mut env = Env::worker();
        let dir = env.dir.path().to_path_buf();
        // One fake claude log per worker: pids collide across nodes, names do not. (The
        // environment's own log stays empty, so its clean-up signals no pid of a node.)
        let claude = dir.join("claude");
        std::fs::write(
            &claude,
            format!(
                "#!/bin/sh\nFAKE_CLAUDE_LOG={dir}/fake-$LEASH_WORKER.jsonl exec {fake} \"$@\"\n",
                dir = dir.display(),
                fake = test_fakes::fake_claude().display()
            ),
        )
        .unwrap();
        make_executable(&claude);
        env.set("LEASH_CLAUDE", &claude.display().to_string());
        env.set(
            "FAKE_CLAUDE_SCRIPT",
            &dir.join("script-%w.txt").display().to_string(),
        );
        for n in 1..=TASKS + 2 {
            std::fs::write(
                dir.join(format!("script-task-{n}.txt")),
                script(n).join("\n") + "\n",
            )
            .unwrap();
        }
        let lines: Vec<String> = (1..=TASKS + 2).map(task_text).collect();
        // CRLF and blank lines, as a file from elsewhere has them: not tasks.
        let tasks = dir.join("tasks.txt");
        std::fs::write(&tasks, format!("\r\n{}\r\n", lines.join("\r\n\r\n"))).unwrap();
        let sbatch = dir.join("night.sbatch");
        std::fs::write(
            &sbatch,
            crate::support::readme::fleet_script("night.sbatch"),
        )
        .unwrap();

        let cluster_dir = dir.join("cluster");
        std::fs::create_dir_all(&cluster_dir).unwrap();
        let cluster = Cluster::start(&cluster_dir, &dir);
        eprintln!("the cluster came up in {:?}", cluster.came_up_in);
        Some(Night {
            cluster,
            env,
            sbatch,
            tasks,
        })
    }

    /// Submits array tasks `range` of the README's script at the repository's root, as
    /// README says; returns the array's job id.
    fn submit(&self, range: &str) -> String {
        let mut command = self.cluster.command("bash");
        let script = format!(
            "mkdir -p .leash/night && sbatch --parsable --array={range} {} {}",
            self.sbatch.display(),
            self.tasks.display()
        );
        command.args(["-c", &script]).current_dir(&self.env.repo);
        // What a job sees is what sbatch saw: this environment, leash on PATH.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LEASH_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.vars.iter().map(|(k, v)| (k, v)));
        // leash's runtime dir where it is by default, in each node's own /tmp; the
        // login node's XDG_RUNTIME_DIR comes along with the job, and does not exist
        // on the node (here it cannot: it is under a file).
        command.env_remove("LEASH_RUNTIME_DIR");
        command.env("XDG_RUNTIME_DIR", self.tasks.join("run"));
        let run = crate::support::run_with_timeout(command, None);
        assert_eq!(run.code(), 0, "sbatch: {run:?}");
        run.stdout.trim().to_string()
    }

    /// The state of each array task still known to the queue, by task id.
    fn queue(&self, job: &str) -> Vec<(String, String, String)> {
        // A job gone from slurmctld's memory is an error to squeue: nothing queued.
        let out = self
            .cluster
            .command("squeue")
            .args(["-h", "-r", "-j", job, "-o", "%K %T %N"])
            .output()
            .expect("squeue");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("Invalid job id"),
            "squeue: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }

    /// The prompts the fake claude of `worker` received, in order.
    fn prompts(&self, worker: &str) -> Vec<String> {
        let log = self.env.dir.path().join(format!("fake-{worker}.jsonl"));
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "turn")
            .filter_map(|e| e["prompt"].as_str().map(str::to_string))
            .collect()
    }

    fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.env.repo.join(format!(".leash/night/task-{n}.log")))
            .unwrap_or_default()
    }

    fn wait(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every task's log and the cluster's, for a failure's message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for n in 1..=TASKS + 2 {
            out.push_str(&format!("--- task-{n}.log\n{}\n", self.log(n)));
        }
        out + &self.cluster.logs()
    }

    /// Every leash or claude process (not a zombie) of this test, on any node: they
    /// carry its state dir in their environment.
    fn leftovers(&self) -> Vec<String> {
        let marker = format!("LEASH_STATE_DIR={}", self.env.state.display());
        let claude = test_fakes::fake_claude();
        let programs = [Path::new(LEASH), claude.as_path()];
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
                continue;
            };
            if !programs.iter().any(|p| exe == *p) || !crate::support::alive(pid) {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes())
            {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!("{pid}: {}", String::from_utf8_lossy(&cmdline)));
            }
        }
        found
    }
}

/// git's index lock in a worker's worktree.
fn index_lock(repo: &Path, worker: &str) -> PathBuf {
    repo.join(format!(".git/worktrees/leash-{worker}/index.lock"))
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_night_on_a_slurm_cluster_survives_a_node_dying_mid_turn() {
    let Some(mut night) = Night::start() else {
        return;
    };
    let started = Instant::now();
    let job = night.submit(&format!("1-{TASKS}"));
    let doomed = format!("{job}_{DOOMED}");
    let worker = format!("task-{DOOMED}");

    let queued = |n: usize| {
        night
            .queue(&job)
            .iter()
            .any(|(id, _, _)| *id == n.to_string())
    };
    night.wait(
        "task 3's implement turn to take git's index lock",
        Duration::from_secs(90),
        || index_lock(&night.env.repo, &worker).exists() || !queued(DOOMED),
    );
    assert!(queued(DOOMED), "task 3 ended on its own:\n{}", night.logs());
    let node = night
        .queue(&job)
        .into_iter()
        .find(|(id, _, _)| *id == DOOMED.to_string())
        .map(|(_, _, node)| node)
        .expect("task 3 runs");
    eprintln!("task 3 runs on {node}; it dies");
    night.cluster.kill_node(&node);
    night.cluster.run(
        "scontrol",
        &[
            "update",
            &format!("NodeName={node}"),
            "State=DOWN",
            "Reason=died",
        ],
    );
    // Slurm holds a requeued job two minutes before it may start again.
    night.wait("task 3 to be requeued", Duration::from_secs(30), || {
        night
            .queue(&job)
            .iter()
            .any(|(id, state, _)| *id == DOOMED.to_string() && state == "PENDING")
    });
    night.cluster.run(
        "scontrol",
        &["update", &format!("JobId={doomed}"), "StartTime=now"],
    );
    night.wait("the night to end", Duration::from_secs(120), || {
        night.queue(&job).is_empty()
    });
    eprintln!("the night took {:?}", started.elapsed());

    let results =
        std::fs::read_to_string(night.env.repo.join(".leash/night/results")).unwrap_or_default();
    let mut lines: Vec<&str> = results.lines().collect();
    lines.sort_by_key(|l| l.split_whitespace().nth(1).map(str::to_string));
    let expected: Vec<String> = (1..=TASKS)
        .map(|n| format!("0 task-{n} {}", task_text(n)))
        .collect();
    assert_eq!(lines, expected, "{}", night.logs());

    let prompts = night.prompts(&worker);
    let count = |needle: &str| prompts.iter().filter(|p| p.contains(needle)).count();
    assert_eq!(count("Implement"), 1, "sent once: {prompts:#?}");
    assert_eq!(count(CONTINUE), 1, "then continued: {prompts:#?}");
    assert_eq!(count(&task_text(DOOMED)), 1, "planned once: {prompts:#?}");
    let log = crate::support::git(
        &night.env.repo,
        &["log", "--format=%s", &format!("main..leash/{worker}")],
    );
    assert_eq!(log, format!("add f{DOOMED}.txt"), "the task's commit");
    let log = night.log(DOOMED);
    assert!(
        log.contains("plan: planned") && log.contains("implement: committed"),
        "both runs in the task's log, the dead node's appended to: {log}"
    );

    let report = night.env.ok(&["report", "--all", "--json"]).json_lines();
    let mut workers: Vec<&str> = report
        .iter()
        .filter(|l| l["type"] == "task")
        .filter_map(|l| l["worker"].as_str())
        .collect();
    workers.sort();
    let expected: Vec<String> = (1..=TASKS).map(|n| format!("task-{n}")).collect();
    assert_eq!(workers, expected, "{report:#?}");
    // Where each task ran last, once the report says (a `host` field).
    let survivor = if node == "n1" { "n2" } else { "n1" };
    for row in report.iter().filter(|l| l["type"] == "task") {
        if let Some(host) = row.get("host") {
            eprintln!("{} ran last on {host}", row["worker"]);
            if row["worker"] == worker.as_str() {
                assert_eq!(host, survivor, "task 3 ended on the node that lived: {row}");
            } else {
                assert!(host == "n1" || host == "n2", "{row}");
            }
        }
    }
    assert_eq!(
        night.leftovers(),
        Vec::<String>::new(),
        "nothing left running"
    );

    // Run again, as after a bad night: done tasks end 0 at once, one line each still.
    let code_file = night.env.repo.join(".leash/night/task-1.code");
    let modified = || {
        std::fs::metadata(&code_file)
            .and_then(|m| m.modified())
            .ok()
    };
    let first = modified();
    let again = night.submit("1-2");
    night.wait("the tasks run again", Duration::from_secs(60), || {
        night.queue(&again).is_empty()
    });
    assert_ne!(modified(), first, "task 1 ran again");
    let results =
        std::fs::read_to_string(night.env.repo.join(".leash/night/results")).unwrap_or_default();
    let mut again: Vec<&str> = results.lines().collect();
    again.sort_by_key(|l| l.split_whitespace().nth(1).map(str::to_string));
    assert_eq!(again, lines, "{}", night.logs());
    assert_eq!(
        night.leftovers(),
        Vec::<String>::new(),
        "nothing left running"
    );

    // A cancelled array: the trap stops each task's daemon.
    night.cluster.start_node(&node);
    night.wait("the node to be back", Duration::from_secs(60), || {
        night
            .cluster
            .run("sinfo", &["-h", "-n", &node, "-o", "%t"])
            .starts_with("idle")
    });
    let cancelled = night.submit(&format!("{}-{}", TASKS + 1, TASKS + 2));
    for n in [TASKS + 1, TASKS + 2] {
        night.wait(
            "the tasks to be in their turns",
            Duration::from_secs(60),
            || !night.prompts(&format!("task-{n}")).is_empty(),
        );
    }
    night.cluster.run("scancel", &[&cancelled]);
    night.wait("the array to be cancelled", Duration::from_secs(60), || {
        night.queue(&cancelled).is_empty()
    });
    night.wait(
        "nothing left running after scancel",
        Duration::from_secs(20),
        || night.leftovers().is_empty(),
    );
    assert_eq!(
        std::fs::read_to_string(night.env.repo.join(".leash/night/results"))
            .unwrap_or_default()
            .lines()
            .count(),
        TASKS,
        "a cancelled task records no code"
    );
    eprintln!("all of it took {:?}", started.elapsed());
}

/// What a node's death leaves in a worktree, on one machine: the loop, its daemon and
/// claude killed at once in the middle of a git command. The next run of the loop
/// removes git's stale index lock instead of failing every commit on it.
#[test]
fn an_index_lock_left_by_a_dead_machine_does_not_stop_the_worker() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write f.txt",
        "write f.txt; sh touch \"$(git rev-parse --git-dir)/index.lock\"; sleep 600000",
        "write f.txt; commit add f.txt",
    ]);
    let args = ["--worker", "w", "loop", "--worktree", "--task", "Add f.txt"];
    let mut first = env.spawn(&args);
    env.wait_until("the implement turn to take the index lock", || {
        index_lock(&env.repo, "w").exists()
    });
    let status = env
        .ok(&["--worker", "w", "session", "status", "--json"])
        .last_json();
    let _ = first.kill();
    let _ = first.wait();
    for pid in [&status["daemon_pid"], &status["claude_pid"]] {
        let pid = pid.as_i64().expect("a pid");
        signal(pid as u32, libc::SIGKILL);
        env.wait_until("the machine to go down", || !alive(pid));
    }
    std::fs::remove_dir_all(&env.runtime).unwrap();

    let run = env.leash(&args);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr.contains("index.lock, left by a git that died"),
        "{run:?}"
    );
    let log = crate::support::git(&env.repo, &["log", "--format=%s", "main..leash/w"]);
    assert_eq!(log, "add f.txt");
}

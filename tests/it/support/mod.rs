//! Test support: an isolated leash environment per test (its own runtime and state
//! dirs, a real git repository, the fake claude), and helpers to run the real binary
//! against it.
#![allow(dead_code)]

pub mod cluster;
pub mod pty;
pub mod readme;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LEASH: &str = env!("CARGO_BIN_EXE_leash");

/// Every command a test runs is killed after this long: a hang fails the test instead
/// of the suite.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub runtime: PathBuf,
    pub state: PathBuf,
    pub fake_log: PathBuf,
    pub script: PathBuf,
    pub vars: Vec<(String, String)>,
}

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The stdout lines parsed as JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn last_json(&self) -> Value {
        self.json_lines()
            .pop()
            .unwrap_or_else(|| panic!("no JSON output: {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("lt")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        let repo = root.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["config", "user.email", "test@example.com"]);
        git(&repo, &["config", "user.name", "Test"]);
        std::fs::write(repo.join("README.md"), "test repo\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "initial"]);
        let vars = vec![
            ("LEASH_RUNTIME_DIR", root.join("run")),
            ("LEASH_STATE_DIR", root.join("state")),
            ("LEASH_CLAUDE", test_fakes::fake_claude()),
            ("HOME", root.clone()),
            ("FAKE_CLAUDE_HOME", root.join("conversations")),
            ("FAKE_CLAUDE_LOG", root.join("fake.jsonl")),
            ("FAKE_CLAUDE_SCRIPT", root.join("script.txt")),
        ];
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect();
        // Short bounds so fault tests finish quickly; a test overrides what it probes.
        for (key, value) in [
            ("LEASH_STOP_GRACE", "1s"),
            ("LEASH_INTERRUPT_GRACE", "3s"),
            ("LEASH_CRASH_BACKOFF", "50ms"),
            ("LEASH_PROVIDER_BACKOFF", "10ms"),
            ("NO_COLOR", "1"),
        ] {
            vars.push((key.to_string(), value.to_string()));
        }
        Env {
            runtime: root.join("run"),
            state: root.join("state"),
            fake_log: root.join("fake.jsonl"),
            script: root.join("script.txt"),
            repo,
            vars,
            dir,
        }
    }

    /// An environment for worker tests: fast backoffs, and `leash` on PATH so git
    /// hooks find it.
    pub fn worker() -> Env {
        let mut env = Env::new();
        env.set("LEASH_NUDGE_BACKOFF", "10ms");
        let bin = Path::new(LEASH).parent().unwrap().display().to_string();
        env.set(
            "PATH",
            &format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
        );
        env
    }

    /// Runs a shell script in the repository, with this environment, as a user would.
    pub fn bash(&self, script: &str) -> Run {
        let mut bash = Command::new("bash");
        bash.arg("-c").arg(script).current_dir(&self.repo);
        bash.envs(self.vars.iter().map(|(k, v)| (k, v)));
        run_with_timeout(bash, None)
    }

    /// Commits on the repository's HEAD.
    pub fn commits(&self) -> usize {
        git(&self.repo, &["rev-list", "--count", "HEAD"])
            .parse()
            .unwrap()
    }

    /// `leash status --json`.
    pub fn worker_status(&self) -> Value {
        self.ok(&["status", "--json"]).last_json()
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.to_string()));
    }

    pub fn unset(&mut self, key: &str) {
        self.vars.retain(|(k, _)| k != key);
    }

    /// A `leash` command in the repository with this environment (and no inherited
    /// variables that steer leash or claude: a developer's own `ANTHROPIC_*` or
    /// `CLAUDE_*` settings must never reach the claude a test starts).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(LEASH);
        command.args(args).current_dir(&self.repo);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if ["LEASH_", "FAKE_CLAUDE", "ANTHROPIC_", "CLAUDE"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(key);
            }
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    pub fn leash(&self, args: &[&str]) -> Run {
        run_with_timeout(self.command(args), None)
    }

    /// A git hook of the repository's own, as a project has before leash: `script`
    /// written to `.git/hooks/NAME`, executable. Returns its path.
    pub fn existing_hook(&self, name: &str, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let hooks = self.repo.join(".git/hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        let hook = hooks.join(name);
        std::fs::write(&hook, script).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        hook
    }

    /// A `leash` command run in `dir` instead of the repository's root.
    pub fn leash_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut command = self.command(args);
        command.current_dir(dir);
        run_with_timeout(command, None)
    }

    pub fn leash_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with_timeout(self.command(args), Some(stdin))
    }

    /// Runs and insists on exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.leash(args);
        assert_eq!(run.code(), 0, "leash {args:?} failed:\n{run:?}");
        run
    }

    /// Starts a leash command in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn leash")
    }

    /// git in the repository with this environment, as a person at this terminal
    /// would run it (so hooks find leash and this worker).
    pub fn git(&self, args: &[&str]) -> Run {
        let mut command = Command::new("git");
        command.args(args).current_dir(&self.repo);
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        let run = run_with_timeout(command, None);
        assert!(run.status.success(), "git {args:?}: {run:?}");
        run
    }

    /// The worker this environment's commands use (the one with a state dir).
    pub fn worker_name(&self) -> String {
        let mut names: Vec<String> = std::fs::read_dir(&self.state)
            .expect("the worker has state")
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "one worker expected: {names:?}");
        names.remove(0)
    }

    pub fn status(&self) -> Value {
        self.ok(&["session", "status", "--json"]).last_json()
    }

    /// `session status --json`, or `None` when the worker is not running.
    pub fn status_or_none(&self) -> Option<Value> {
        let run = self.leash(&["session", "status", "--json"]);
        (run.code() == 0).then(|| run.last_json())
    }

    /// What the fake claude recorded: one object per spawn and per turn.
    pub fn fake_events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.fake_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn spawns(&self) -> Vec<Value> {
        self.fake_events()
            .into_iter()
            .filter(|e| e["event"] == "spawn")
            .collect()
    }

    pub fn turns(&self) -> Vec<Value> {
        self.fake_events()
            .into_iter()
            .filter(|e| e["event"] == "turn")
            .collect()
    }

    /// One script line per turn, for turns whose prompt leash writes.
    pub fn script(&self, lines: &[&str]) {
        std::fs::write(&self.script, lines.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_file(self.script.with_extension("pos"));
    }

    /// The worker's event log entries.
    pub fn events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.state) {
            for entry in entries.flatten() {
                for name in ["events.1.jsonl", "events.jsonl"] {
                    let text = std::fs::read_to_string(entry.path().join(name)).unwrap_or_default();
                    out.extend(
                        text.lines()
                            .filter_map(|l| serde_json::from_str::<Value>(l).ok()),
                    );
                }
            }
        }
        out
    }

    /// How many of the event log's messages (notices) say `needle`.
    pub fn said(&self, needle: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
            .count()
    }

    /// The prompts the fake claude received, in order (also those it never answered).
    pub fn prompts_received(&self) -> Vec<String> {
        self.turns()
            .iter()
            .filter_map(|t| t["prompt"].as_str().map(str::to_string))
            .collect()
    }

    /// The prompts claude's conversations hold (its transcripts, as the fake claude
    /// writes them where the real one does): a prompt is there once the model began to
    /// answer it, and a resumed conversation has exactly these.
    pub fn answered_prompts(&self) -> Vec<String> {
        self.answered_by_folder().into_values().flatten().collect()
    }

    /// [`Env::answered_prompts`] by claude's project folder (one per directory claude
    /// ran in: one per worktree worker).
    pub fn answered_by_folder(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let projects = self.dir.path().join(".claude/projects");
        let mut by_folder = std::collections::BTreeMap::new();
        for folder in std::fs::read_dir(projects).into_iter().flatten().flatten() {
            let prompts: &mut Vec<String> = by_folder
                .entry(folder.file_name().to_string_lossy().into_owned())
                .or_default();
            for file in std::fs::read_dir(folder.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                for line in text.lines() {
                    let Ok(entry) = serde_json::from_str::<Value>(line) else {
                        continue;
                    };
                    if let Some(prompt) = entry["message"]["content"].as_str() {
                        prompts.push(prompt.to_string());
                    }
                }
            }
        }
        by_folder
    }

    pub fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        wait_until(what, Duration::from_secs(20), &mut check);
    }

    /// Waits until the worker reports a running turn.
    pub fn wait_busy(&self) {
        self.wait_until("a turn to be running", || {
            let run = self.leash(&["session", "status", "--json"]);
            run.code() == 0 && run.last_json()["state"] == "busy"
        });
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Leave no daemon or claude behind, whatever the test did.
        let _ = run_with_timeout(self.command(&["session", "stop", "--all", "-q"]), None);
        for spawn in self.spawns() {
            if let Some(pid) = spawn["pid"].as_i64() {
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn run_with_timeout(mut command: Command, stdin: Option<&str>) -> Run {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    finish(child, COMMAND_TIMEOUT)
}

/// Collects a child's output, killing it after `timeout`. A pipe the caller already
/// took (to watch it live) is the caller's to read; it is empty in the `Run`.
pub fn finish(mut child: Child, timeout: Duration) -> Run {
    fn read_all(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut s);
            }
            s
        })
    }
    let out_thread = read_all(child.stdout.take());
    let err_thread = read_all(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let run = Run {
                status,
                stdout: out_thread.join().unwrap(),
                stderr: err_thread.join().unwrap(),
            };
            panic!("command timed out after {timeout:?}:\n{run:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

pub fn wait_until(what: &str, timeout: Duration, check: &mut dyn FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn alive(pid: i64) -> bool {
    // A zombie still answers kill(0); look at its state too.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    state != Some("Z")
}

pub fn signal(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// How many of `prompts` hold `needle`.
pub fn count_holding(prompts: &[String], needle: &str) -> usize {
    prompts.iter().filter(|p| p.contains(needle)).count()
}

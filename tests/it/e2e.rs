//! End to end: the real `leash` binary and daemon driving the real `claude` CLI against
//! a fake Anthropic Messages API on 127.0.0.1 (crates/test-fakes/src/fake_api.rs). No
//! credentials, no traffic beyond loopback. Every test runs twice: `newest::` on the
//! newest CLI leash was measured against (tests/claude-code/) and `floor::` on the
//! oldest it supports (tests/claude-code-floor/); [`Cli`] holds what differs.
//!
//! Each CLI is installed into `.cache/` on first use (`npm ci`, once per test binary,
//! serialized across processes). Without npm every test here says on stderr that it
//! was skipped and why, and passes, unless `LEASH_E2E_REQUIRED=1` (set by `.ci/run`):
//! then an unavailable CLI fails every test.

use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{Env, alive, finish, git, signal};
use serde_json::{Value, json};
use test_fakes::fake_api::{
    FakeApi, RecordedRequest, Reply, RequestKind, default_side_reply, last_user_text,
    strip_cli_sections,
};
use test_fakes::real_cli;

/// How long a test waits for anything the CLI does; it answers in well under a second.
const PATIENCE: Duration = Duration::from_secs(30);

/// What differs between the two pinned CLIs, as measured.
struct Cli {
    pin: real_cli::Pin,
    /// The model ids leash's default aliases resolve to.
    opus: &'static str,
    sonnet: &'static str,
    haiku: &'static str,
    /// The context window of `sonnet`.
    window: u64,
    /// `/model NAME` typed as a prompt switches models (2.1.110 answers "Unknown
    /// command: /model").
    typed_model: bool,
}

const NEWEST: Cli = Cli {
    pin: real_cli::NEWEST,
    opus: "claude-opus-5-5",
    sonnet: "claude-sonnet-5-5",
    haiku: "claude-haiku-5-5",
    window: 1_000_000,
    typed_model: true,
};

const FLOOR: Cli = Cli {
    pin: real_cli::FLOOR,
    opus: "claude-opus-4-6",
    sonnet: "claude-sonnet-4-6",
    haiku: "claude-haiku-4-5-20251001",
    window: 200_000,
    typed_model: false,
};

/// Each test below, once per CLI.
macro_rules! on_both_clis {
    ($($test:ident),* $(,)?) => {
        mod newest {
            $( #[test] fn $test() { super::$test(&super::NEWEST) } )*
        }
        mod floor {
            $( #[test] fn $test() { super::$test(&super::FLOOR) } )*
        }
    };
}

on_both_clis!(
    two_sends_share_one_claude_process_and_the_conversation,
    model_switches_reach_the_api_and_keep_the_conversation,
    interrupt_and_ctrl_c_end_a_streaming_turn_and_the_next_turn_gets_its_own_answer,
    provider_errors_exit_5_and_leash_retries_recover,
    claude_retries_are_shown_while_they_happen,
    loop_plans_on_opus_implements_on_sonnet_and_commits_with_the_bash_tool,
    loop_nudges_a_turn_that_committed_nothing_and_then_it_commits,
    a_daemon_killed_with_sigkill_is_restarted_and_the_conversation_goes_on,
    a_full_context_makes_claude_compact_and_status_shows_it,
    session_compact_instructions_reach_the_summary_request,
    a_conversation_the_api_refuses_as_too_long_is_handed_off_and_goes_on,
    each_turn_costs_what_claude_says_across_a_restart,
    loop_check_nudges_a_commit_that_fails_its_check_until_it_passes,
    a_fork_in_a_worktree_starts_with_the_original_conversation,
);

/// The real CLI, installed on first use; `None` after saying why when it cannot be
/// had and the suite is not required to run.
fn real_claude(cli: &Cli) -> Option<PathBuf> {
    static NEWEST_CLI: OnceLock<Result<PathBuf, real_cli::Unavailable>> = OnceLock::new();
    static FLOOR_CLI: OnceLock<Result<PathBuf, real_cli::Unavailable>> = OnceLock::new();
    let once = if cli.pin == real_cli::FLOOR {
        &FLOOR_CLI
    } else {
        &NEWEST_CLI
    };
    match once.get_or_init(|| cli.pin.install()) {
        Ok(binary) => Some(binary.clone()),
        Err(why) if std::env::var("LEASH_E2E_REQUIRED").is_ok_and(|v| v == "1") => {
            panic!(
                "LEASH_E2E_REQUIRED=1 but the real claude CLI ({}) is unavailable: {why}",
                cli.pin.name
            )
        }
        Err(why) => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("an e2e test");
            // Straight to the stderr handle, in one write: libtest hides eprintln!
            // output of passing tests, and a skip must not go unnoticed.
            let line = format!(
                "SKIPPED {test}: the real claude CLI is unavailable: {why} \
                 (LEASH_E2E_REQUIRED=1 makes this a failure)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

#[test]
fn the_pinned_clis_are_the_versions_leash_names() {
    assert_eq!(NEWEST.pin.pinned_version(), leash::claude::NEWEST_TESTED);
    assert_eq!(FLOOR.pin.pinned_version(), leash::claude::OLDEST_SUPPORTED);
}

/// A leash environment (temporary HOME, state, runtime and TMPDIR, a git repository)
/// whose claude is the real CLI talking to its own fake API.
struct E2e {
    env: Env,
    api: FakeApi,
}

impl Deref for E2e {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl E2e {
    /// `script` answers the turn requests in order; after it, the API echoes.
    fn start(cli: &'static Cli, script: impl IntoIterator<Item = Reply>) -> Option<E2e> {
        Self::with(cli, &[], script)
    }

    /// Like [`E2e::start`], with extra environment variables for leash and claude.
    fn with(
        cli: &'static Cli,
        vars: &[(&str, &str)],
        script: impl IntoIterator<Item = Reply>,
    ) -> Option<E2e> {
        let claude = real_claude(cli)?;
        let api = FakeApi::start(script);
        let mut env = Env::new();
        let tmp = env.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        for (key, value) in real_cli::offline_env(&api.url(), &tmp) {
            env.set(key, &value);
        }
        env.set("LEASH_CLAUDE", &claude.display().to_string());
        // Worker steps back off in milliseconds here, not seconds.
        env.set("LEASH_NUDGE_BACKOFF", "10ms");
        env.set("LEASH_PROVIDER_BACKOFF", "10ms");
        for (key, value) in vars {
            env.set(key, value);
        }
        for fake_only in ["FAKE_CLAUDE_HOME", "FAKE_CLAUDE_LOG", "FAKE_CLAUDE_SCRIPT"] {
            env.unset(fake_only);
        }
        Some(E2e { env, api })
    }

    /// The `/v1/messages` requests that answered turns (including tool follow-ups).
    fn turns(&self) -> Vec<RecordedRequest> {
        self.api.turn_requests()
    }

    /// Waits until a turn request whose user words are `prompt` reached the API.
    fn wait_for_request(&self, prompt: &str) {
        let arrived = self.api.wait_until(PATIENCE, |requests| {
            requests
                .iter()
                .any(|r| last_user_text(r).as_deref() == Some(prompt))
        });
        assert!(arrived, "no request for {prompt:?}: {:#?}", self.turns());
    }

    fn commits(&self) -> usize {
        git(&self.repo, &["rev-list", "--count", "HEAD"])
            .parse()
            .unwrap()
    }

    /// The daemons' notices that they started claude, oldest first:
    /// `started claude (pid N, new|resuming session ID, model M)`.
    fn claude_starts(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["type"] == "notice")
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.starts_with("started claude (pid "))
            .map(str::to_string)
            .collect()
    }
}

impl E2e {
    /// What leash logged and what reached the API, to make a failure readable.
    fn dump(&self) {
        for entry in std::fs::read_dir(&self.state)
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = std::fs::read_to_string(entry.path().join("daemon.log")).unwrap_or_default();
            if !log.is_empty() {
                eprintln!(
                    "--- {}/daemon.log\n{log}",
                    entry.file_name().to_string_lossy()
                );
            }
        }
        eprintln!("--- leash events");
        for event in self.events() {
            let what = match event["type"].as_str() {
                Some("claude") => format!("claude {}", event["msg"]),
                Some("notice") => format!("notice {}", event["message"]),
                Some("stderr") => format!("stderr {}", event["line"]),
                _ => event.to_string(),
            };
            eprintln!("{what:.600}");
        }
        eprintln!("--- API requests");
        for request in self.api.requests() {
            eprintln!(
                "#{} {} {} model={:?} user={:?} -> {}",
                request.seq,
                request.method,
                request.path,
                request.model,
                last_user_text(&request),
                request.reply
            );
        }
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("LEASH_E2E_DUMP").is_some() {
            self.dump();
        }
        let _ = self.env.leash(&["session", "stop", "--all", "-q"]);
        // A daemon killed with SIGKILL could not stop its claude: leave none behind.
        for start in self.claude_starts() {
            let pid = start["started claude (pid ".len()..]
                .split(',')
                .next()
                .and_then(|pid| pid.parse::<i64>().ok());
            if let Some(pid) = pid {
                self.kill_claude(pid);
            }
        }
    }
}

impl E2e {
    /// SIGKILL to a claude this test started, and to the tools in its process group
    /// (it leads its group). Any other process with that pid (pids get reused) is left
    /// alone.
    fn kill_claude(&self, pid: i64) {
        // Its command line says `claude` in 2.1.110 (node's process title) and the
        // binary's path in 2.1.332: its environment holds this test's HOME in both.
        let Some((_, home)) = self.env.vars.iter().find(|(k, _)| k == "HOME") else {
            return;
        };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let ours = environ
            .split(|b| *b == 0)
            .any(|var| var == format!("HOME={home}").as_bytes());
        if alive(pid) && ours {
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// The texts of every message from `role`, without the CLI's own reminder sections.
fn texts(request: &RecordedRequest, role: &str) -> Vec<String> {
    let Some(messages) = request.messages.as_array() else {
        return Vec::new();
    };
    messages
        .iter()
        .filter(|m| m["role"] == role)
        .flat_map(|m| match &m["content"] {
            Value::String(text) => vec![text.clone()],
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        })
        .map(|text| strip_cli_sections(&text))
        .filter(|text| !text.is_empty())
        .collect()
}

/// Asserts that `request` carries the earlier turn `prompt` and its answer.
fn assert_carries(request: &RecordedRequest, prompt: &str, answer: &str) {
    assert!(
        texts(request, "user").iter().any(|t| t == prompt),
        "the request does not carry the earlier prompt {prompt:?}: {}",
        request.messages
    );
    assert!(
        texts(request, "assistant").iter().any(|t| t == answer),
        "the request does not carry the earlier answer {answer:?}: {}",
        request.messages
    );
}

/// The agent's tool calls for "write `file`, then commit everything": claude's Write
/// tool, then its Bash tool running git (each answered by a follow-up request).
fn write_and_commit(file: &Path, content: &str, message: &str) -> [Reply; 2] {
    [
        Reply::tool_use("Write", json!({"file_path": file, "content": content})),
        Reply::bash(format!("git add -A && git commit -m '{message}'")),
    ]
}

const SLOW_CHUNK: Duration = Duration::from_millis(250);

/// A reply streamed slowly enough to be interrupted: 30 s in 120 chunks.
fn slow_reply(tag: &str) -> Reply {
    Reply::slow((0..120).map(|i| format!("{tag}-{i} ")), SLOW_CHUNK)
}

/// Lets a slow reply get under way, so an interrupt lands mid-stream rather than
/// before the first chunk.
fn let_some_chunks_stream() {
    std::thread::sleep(SLOW_CHUNK * 4);
}

fn two_sends_share_one_claude_process_and_the_conversation(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    e2e.ok(&["session", "start"]);
    let before = e2e.status();
    assert!(before["claude_pid"].is_u64(), "{before}");
    assert!(
        e2e.turns().is_empty(),
        "starting asks claude nothing that reaches the API"
    );

    let first = e2e.ok(&["session", "send", "first question"]);
    assert_eq!(first.stdout, "echo: first question\n");
    let second = e2e.ok(&["session", "send", "second question"]);
    assert_eq!(second.stdout, "echo: second question\n");

    let after = e2e.status();
    assert_eq!(
        after["claude_pid"], before["claude_pid"],
        "one claude process"
    );
    assert_eq!(after["session_id"], before["session_id"]);
    assert_eq!(after["turns"], 2);
    assert_eq!(
        after["model"], cli.sonnet,
        "confirmed by claude's init line"
    );
    let turns = e2e.turns();
    assert_eq!(turns.len(), 2, "{turns:#?}");
    let session_id = after["session_id"].as_str().unwrap();
    for turn in &turns {
        assert_eq!(
            turn.header("x-claude-code-session-id"),
            Some(session_id),
            "claude uses the session id leash chose"
        );
        assert_eq!(turn.model.as_deref(), Some(cli.sonnet));
    }
    assert_eq!(
        last_user_text(&turns[1]).as_deref(),
        Some("second question")
    );
    assert_carries(&turns[1], "first question", "echo: first question");
}

fn model_switches_reach_the_api_and_keep_the_conversation(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    e2e.ok(&["session", "send", "one"]);
    let pid = e2e.status()["claude_pid"].clone();

    let switched = e2e.ok(&["session", "model", "opus"]);
    assert!(
        switched.stderr.contains("model set to opus"),
        "{switched:?}"
    );
    e2e.ok(&["session", "send", "two"]);
    // Two switches in a row, with no turn between them: the second one wins.
    e2e.ok(&["session", "model", "haiku"]);
    e2e.ok(&["session", "model", "sonnet"]);
    e2e.ok(&["session", "send", "three"]);

    let turns = e2e.turns();
    let models: Vec<_> = turns.iter().map(|t| t.model.as_deref()).collect();
    assert_eq!(models, [Some(cli.sonnet), Some(cli.opus), Some(cli.sonnet)]);
    assert_carries(&turns[1], "one", "echo: one");
    assert_carries(&turns[2], "one", "echo: one");
    assert_carries(&turns[2], "two", "echo: two");
    let status = e2e.status();
    assert_eq!(status["claude_pid"], pid, "set_model needed no respawn");
    assert_eq!(status["model"], cli.sonnet);
    assert_eq!(e2e.claude_starts().len(), 1);

    // `/model` typed as a prompt is a local command of the CLI: no API request. Only
    // the newer CLI knows it.
    let command = e2e.ok(&["session", "send", "/model haiku"]);
    let (said, model) = match cli.typed_model {
        true => (
            "Set model to `Haiku 5.5` for this session only\n",
            cli.haiku,
        ),
        false => ("Unknown command: /model\n", cli.sonnet),
    };
    assert_eq!(command.stdout, said);
    assert_eq!(e2e.turns().len(), 3, "answered without the API");
    e2e.ok(&["session", "send", "four"]);
    assert_eq!(e2e.turns()[3].model.as_deref(), Some(model));
}

fn interrupt_and_ctrl_c_end_a_streaming_turn_and_the_next_turn_gets_its_own_answer(
    cli: &'static Cli,
) {
    let Some(e2e) = E2e::start(cli, [slow_reply("first"), slow_reply("second")]) else {
        return;
    };
    e2e.ok(&["session", "start"]);
    let pid = e2e.status()["claude_pid"].clone();

    let send = e2e.spawn(&["session", "send", "--json", "slow one"]);
    e2e.wait_for_request("slow one");
    let_some_chunks_stream();
    let interrupted_at = Instant::now();
    let interrupt = e2e.ok(&["session", "interrupt"]);
    assert!(
        interrupt.stderr.contains("interrupting turn"),
        "{interrupt:?}"
    );
    let send = finish(send, PATIENCE);
    assert_eq!(send.code(), 130, "{send:?}");
    let outcome = &send.last_json()["outcome"];
    assert_eq!(outcome["status"], "interrupted", "{send:?}");
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(20),
        "the 30 s reply was cut short"
    );

    let send = e2e.spawn(&["session", "send", "slow two"]);
    e2e.wait_for_request("slow two");
    let_some_chunks_stream();
    signal(send.id(), libc::SIGINT);
    let send = finish(send, PATIENCE);
    assert_eq!(send.code(), 130, "{send:?}");
    assert!(!send.stdout.contains("second-119"), "{send:?}");

    let next = e2e.ok(&["session", "send", "after"]);
    assert_eq!(
        next.stdout, "echo: after\n",
        "its own answer, nothing stale"
    );
    let status = e2e.status();
    assert_eq!(
        status["claude_pid"], pid,
        "claude ended both interrupted turns itself; none had to be killed"
    );
    let turns = e2e.turns();
    assert_eq!(turns.len(), 3, "{turns:#?}");
    assert_eq!(last_user_text(&turns[2]).as_deref(), Some("after"));
    // The CLI keeps what was streamed before each interrupt: both landed mid-stream.
    let answers = texts(&turns[2], "assistant");
    for tag in ["first", "second"] {
        assert!(
            answers
                .iter()
                .any(|a| a.starts_with(&format!("{tag}-0 ")) && !a.contains(&format!("{tag}-119"))),
            "the {tag} reply was cut mid-stream: {answers:?}"
        );
    }
}

fn provider_errors_exit_5_and_leash_retries_recover(cli: &'static Cli) {
    let Some(e2e) = E2e::start(
        cli,
        [
            Reply::error(529),
            Reply::error(429),
            Reply::error(529),
            Reply::text("recovered"),
        ],
    ) else {
        return;
    };
    for (prompt, status) in [("meets 529", 529), ("meets 429", 429)] {
        let run = e2e.leash(&["session", "send", "--json", "--retries", "0", prompt]);
        assert_eq!(run.code(), 5, "{run:?}");
        let outcome = &run.last_json()["outcome"];
        assert_eq!(outcome["status"], "provider_error", "{run:?}");
        assert_eq!(outcome["api_error_status"], status, "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "hit a provider error: the API failed with HTTP {status}"
            )),
            "a person is told too: {run:?}"
        );
    }

    let retried = e2e.leash(&["session", "send", "--retries", "1", "meets 529 once"]);
    assert_eq!(retried.code(), 0, "{retried:?}");
    assert_eq!(retried.stdout, "recovered\n");
    assert!(retried.stderr.contains("retrying in"), "{retried:?}");

    let next = e2e.ok(&["session", "send", "all well"]);
    assert_eq!(next.stdout, "echo: all well\n");
    assert_eq!(e2e.turns().len(), 5, "one request per attempt");
}

fn claude_retries_are_shown_while_they_happen(cli: &'static Cli) {
    let Some(e2e) = E2e::with(
        cli,
        &[("CLAUDE_CODE_MAX_RETRIES", "2")],
        [
            Reply::error(529),
            Reply::error(529),
            Reply::text("third time lucky"),
        ],
    ) else {
        return;
    };
    let mut send = e2e.spawn(&["session", "send", "retry me"]);
    // Each stderr line with the moment it reached us.
    let stderr = BufReader::new(send.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .map(|line| (Instant::now(), line))
            .collect::<Vec<_>>()
    });
    let run = finish(send, PATIENCE);
    let lines = reader.join().unwrap();
    assert_eq!(run.code(), 0, "{run:?} {lines:?}");
    assert_eq!(run.stdout, "third time lucky\n");

    let turns = e2e.turns();
    assert_eq!(turns.len(), 3, "the CLI retried twice: {turns:#?}");
    for (attempt, retry_request) in [(1, &turns[1]), (2, &turns[2])] {
        let shown = format!("claude retries ({attempt}/2)");
        let (at, _) = lines
            .iter()
            .find(|(_, line)| line.contains(&shown))
            .unwrap_or_else(|| panic!("no {shown:?} line: {lines:?}"));
        // The CLI announces a retry, then waits about half a second before it: the
        // line must reach the user before the retry does, not with the turn's end.
        assert!(
            *at < e2e.api.arrival(retry_request),
            "{shown:?} was shown only after the retry was sent"
        );
    }
}

fn loop_plans_on_opus_implements_on_sonnet_and_commits_with_the_bash_tool(cli: &'static Cli) {
    let plan = "1) write feature.txt 2) commit it";
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let feature = e2e.repo.canonicalize().unwrap().join("feature.txt");
    e2e.api.push(Reply::text(plan));
    e2e.api
        .extend(write_and_commit(&feature, "a feature\n", "Add feature.txt"));
    e2e.api.push(Reply::text("Committed."));
    let before = e2e.commits();

    let run = e2e.leash(&["loop", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(e2e.commits(), before + 1, "one new commit: {run:?}");
    assert_eq!(
        git(&e2e.repo, &["log", "-1", "--format=%s"]),
        "Add feature.txt"
    );
    assert_eq!(std::fs::read_to_string(&feature).unwrap(), "a feature\n");
    assert!(git(&e2e.repo, &["status", "--porcelain"]).is_empty());

    let turns = e2e.turns();
    assert_eq!(
        turns.len(),
        4,
        "plan, implement, two tool results: {turns:#?}"
    );
    assert_eq!(turns[0].model.as_deref(), Some(cli.opus), "planning model");
    assert!(
        last_user_text(&turns[0]).is_some_and(|t| t.contains("Add feature.txt")),
        "the task is in the plan prompt"
    );
    for turn in &turns[1..] {
        assert_eq!(
            turn.model.as_deref(),
            Some(cli.sonnet),
            "implementation model"
        );
    }
    // The permission modes reached the CLI: it tells the model so (2.1.332's words).
    assert!(
        turns[0].body.contains("Plan mode is active"),
        "planning was read-only"
    );
    assert!(
        turns[1].body.contains("Exited Plan Mode"),
        "implementing left plan mode"
    );
    assert!(
        texts(&turns[1], "assistant").iter().any(|t| t == plan),
        "the implementing turn sees the plan: {}",
        turns[1].messages
    );
    for (turn, tool) in [(&turns[2], "Write"), (&turns[3], "Bash")] {
        let results = turn.tool_results();
        assert_eq!(results.len(), 1, "{}", turn.messages);
        assert_ne!(
            results[0]["is_error"], true,
            "claude ran {tool} with leash's default permissions: {}",
            results[0]
        );
    }
    let worker = e2e.ok(&["status", "--json"]).last_json();
    assert_eq!(worker["phase"], "done", "{worker}");
    assert_eq!(worker["nudges"], 0);
    assert_eq!(
        e2e.claude_starts().len(),
        1,
        "plan -> implement needed no respawn"
    );
}

fn loop_nudges_a_turn_that_committed_nothing_and_then_it_commits(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let notes = e2e.repo.canonicalize().unwrap().join("notes.md");
    e2e.api.extend([
        Reply::text("1) write notes.md 2) commit it"),
        Reply::text("I have read the code."),
    ]);
    e2e.api
        .extend(write_and_commit(&notes, "notes\n", "Add notes"));
    e2e.api.push(Reply::text("Committed now."));
    let before = e2e.commits();

    let run = e2e.leash(&["loop", "--task", "Write notes"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(e2e.commits(), before + 1, "{run:?}");
    let worker = e2e.ok(&["status", "--json"]).last_json();
    assert_eq!(worker["phase"], "done", "{worker}");
    assert_eq!(worker["nudges"], 1);

    let turns = e2e.turns();
    assert_eq!(turns.len(), 5, "{turns:#?}");
    let nudge = last_user_text(&turns[2]).unwrap_or_default();
    assert!(
        nudge.contains("Nothing has changed in the repository") && nudge.contains("1 of 5"),
        "the nudge reached the API: {nudge}"
    );
    assert_carries(
        &turns[2],
        &last_user_text(&turns[1]).unwrap(),
        "I have read the code.",
    );
}

fn a_daemon_killed_with_sigkill_is_restarted_and_the_conversation_goes_on(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    e2e.ok(&["session", "send", "remember the word banana"]);
    let before = e2e.status();
    let daemon = before["daemon_pid"].as_i64().unwrap();
    let claude = before["claude_pid"].as_i64().unwrap();

    signal(daemon as u32, libc::SIGKILL);
    e2e.wait_until("the daemon to die", || !alive(daemon));
    let next = e2e.ok(&["session", "send", "what was the word?"]);
    assert_eq!(next.stdout, "echo: what was the word?\n");

    let after = e2e.status();
    assert_ne!(after["daemon_pid"], daemon, "a new daemon");
    assert_ne!(after["claude_pid"], claude, "a new claude");
    assert_eq!(
        after["session_id"], before["session_id"],
        "the same session"
    );
    // The orphaned claude: it should have exited when its stdin closed; make sure.
    e2e.kill_claude(claude);
    e2e.wait_until("the old claude to be gone", || !alive(claude));

    let turns = e2e.turns();
    assert_eq!(turns.len(), 2, "{turns:#?}");
    assert_eq!(
        turns[1].header("x-claude-code-session-id"),
        before["session_id"].as_str()
    );
    assert_carries(
        &turns[1],
        "remember the word banana",
        "echo: remember the word banana",
    );
    let starts = e2e.claude_starts();
    assert!(
        starts.len() == 2 && starts[1].contains("resuming session"),
        "the new daemon resumed the conversation: {starts:?}"
    );
}

// ---- a conversation that never dies (issue 12) ----------------------------------------

/// `session status --json` once claude told its context window.
fn status_with_window(e2e: &E2e) -> Value {
    let mut status = Value::Null;
    e2e.wait_until("claude to tell the window", || {
        status = e2e.status();
        !status["context_window"].is_null()
    });
    status
}

fn a_full_context_makes_claude_compact_and_status_shows_it(cli: &'static Cli) {
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

fn session_compact_instructions_reach_the_summary_request(cli: &'static Cli) {
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

fn a_conversation_the_api_refuses_as_too_long_is_handed_off_and_goes_on(cli: &'static Cli) {
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

fn each_turn_costs_what_claude_says_across_a_restart(cli: &'static Cli) {
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

// ---- done means green (issue 14) -------------------------------------------------------

fn loop_check_nudges_a_commit_that_fails_its_check_until_it_passes(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let feature = e2e.repo.canonicalize().unwrap().join("feature.txt");
    e2e.api
        .push(Reply::text("1) write feature.txt 2) commit it"));
    e2e.api
        .extend(write_and_commit(&feature, "broken\n", "Add feature.txt"));
    e2e.api.push(Reply::text("Committed."));
    e2e.api
        .extend(write_and_commit(&feature, "fixed\n", "Fix feature.txt"));
    e2e.api.push(Reply::text("Fixed."));
    let before = e2e.commits();
    let check = "cat feature.txt && grep -q fixed feature.txt";
    let run = e2e.leash(&["loop", "--check", check, "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(e2e.commits(), before + 2, "{run:?}");
    assert_eq!(std::fs::read_to_string(&feature).unwrap(), "fixed\n");
    let turns = e2e.turns();
    assert_eq!(
        turns.len(),
        7,
        "plan, implement + 2 tools, nudge + 2 tools: {turns:#?}"
    );
    let nudge = last_user_text(&turns[4]).unwrap_or_default();
    assert!(
        nudge.contains(&format!(
            "The check `{check}` failed (exit 1) at your commit"
        )),
        "the nudge reached the API: {nudge}"
    );
    assert!(
        nudge.contains("```\nbroken\n```"),
        "with its output: {nudge}"
    );
    let worker = e2e.ok(&["status", "--json"]).last_json();
    assert_eq!(worker["phase"], "done", "{worker}");
    assert_eq!(worker["nudges"], 1);
    assert_eq!(worker["checks"][0]["exit_code"], 0);
}

// ---- many workers (issue 15) -----------------------------------------------------------

fn a_fork_in_a_worktree_starts_with_the_original_conversation(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    e2e.ok(&[
        "--worker",
        "orig",
        "session",
        "send",
        "remember the word banana",
    ]);
    let orig = e2e
        .ok(&["--worker", "orig", "session", "status", "--json"])
        .last_json();
    e2e.ok(&["--worker", "orig", "session", "fork", "copy", "--worktree"]);
    let copy = e2e
        .ok(&["--worker", "copy", "session", "status", "--json"])
        .last_json();
    assert_ne!(copy["session_id"], orig["session_id"]);
    let worktree = e2e
        .repo
        .canonicalize()
        .unwrap()
        .join(".leash/worktrees/copy");
    assert_eq!(copy["cwd"], worktree.display().to_string());

    let run = e2e.ok(&["--worker", "copy", "session", "send", "what was the word?"]);
    assert_eq!(run.stdout, "echo: what was the word?\n");
    let first = e2e.turns().into_iter().last().unwrap();
    assert_eq!(
        first.header("x-claude-code-session-id"),
        copy["session_id"].as_str(),
        "the fork's own conversation"
    );
    assert_carries(
        &first,
        "remember the word banana",
        "echo: remember the word banana",
    );
    // The original goes on without the fork's turn.
    e2e.ok(&["--worker", "orig", "session", "send", "and you?"]);
    let next = e2e.turns().into_iter().last().unwrap();
    assert_eq!(
        next.header("x-claude-code-session-id"),
        orig["session_id"].as_str()
    );
    assert!(
        !next.body.contains("what was the word?"),
        "the fork's turn stays in the fork"
    );
    assert_carries(
        &next,
        "remember the word banana",
        "echo: remember the word banana",
    );
}

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

mod long_run;
mod transcript;
mod turns;
mod worker;

use long_run::*;
use transcript::*;
use turns::*;
use worker::*;

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
    a_step_whose_daemon_is_killed_mid_turn_goes_on_in_a_new_daemon,
    a_landing_conflict_is_resolved_through_the_real_claude,
    a_resumed_conversation_holds_a_prompt_exactly_when_its_transcript_does,
    best_of_two_keeps_the_judged_attempt_and_goes_on_in_its_conversation,
    a_conflict_handed_back_is_resolved_by_the_real_cli_in_a_landing_turn,
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

//! `leash session`: the real binary, the real daemon, the real socket, the fake claude.

use std::time::{Duration, Instant};

use crate::support::{Env, alive, finish, signal};

#[test]
fn start_status_list_stop() {
    let env = Env::new();
    let started = env.ok(&["session", "start"]);
    assert!(started.stdout.contains("started worker"), "{started:?}");
    assert!(
        started.stdout.contains(".sock"),
        "start says where the socket is: {started:?}"
    );

    let status = env.status();
    assert_eq!(status["type"], "status");
    assert_eq!(status["state"], "idle");
    assert_eq!(status["requested_model"], "sonnet");
    let session_id = status["session_id"].as_str().unwrap().to_string();
    assert_eq!(session_id.len(), 36, "a UUID: {session_id}");
    let daemon = status["daemon_pid"].as_i64().unwrap();
    let claude = status["claude_pid"].as_i64().unwrap();
    assert!(alive(daemon) && alive(claude));
    // start returned after initialize: claude is up but has not been asked anything.
    assert_eq!(env.spawns().len(), 1);
    assert!(env.turns().is_empty());
    let argv = env.spawns()[0]["argv"].clone();
    assert!(
        argv.to_string()
            .contains(&format!("\"--session-id\",\"{session_id}\"")),
        "{argv}"
    );

    let again = env.ok(&["session", "start"]);
    assert!(again.stderr.contains("already running"), "{again:?}");
    assert_eq!(env.spawns().len(), 1);

    let list = env.ok(&["session", "list", "--json"]);
    let rows = list.json_lines();
    assert_eq!(rows.len(), 1, "{list:?}");
    assert_eq!(rows[0]["state"], "idle");
    assert_eq!(rows[0]["session_id"], session_id.as_str());
    let human = env.ok(&["session", "list"]);
    assert!(
        human.stdout.contains("WORKER") && human.stdout.contains("idle"),
        "{human:?}"
    );

    env.ok(&["session", "stop"]);
    assert!(!alive(daemon), "daemon {daemon} still running");
    assert!(!alive(claude), "claude {claude} still running");
    let status = env.leash(&["session", "status"]);
    assert_eq!(status.code(), 3, "{status:?}");
    assert!(status.stderr.contains("not running"), "{status:?}");
    let list = env.ok(&["session", "list", "--json"]);
    assert_eq!(list.last_json()["state"], "stopped");
    // Stopping a stopped worker is not an error.
    env.ok(&["session", "stop"]);
}

#[test]
fn two_sends_share_one_claude_and_one_conversation() {
    let env = Env::new();
    let first = env.ok(&["session", "send", "hello"]);
    assert_eq!(first.stdout, "echo: hello\n");
    let second = env.ok(&["session", "send", "again"]);
    assert_eq!(second.stdout, "echo: again\n");

    assert_eq!(env.spawns().len(), 1, "one claude process for both turns");
    let turns = env.turns();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["session_id"], turns[1]["session_id"]);
    assert_eq!(turns[1]["history"], 1, "the second turn sees the first");
    assert_eq!(env.status()["turns"], 2);
}

#[test]
fn send_reads_the_prompt_from_stdin_and_refuses_an_empty_one() {
    let env = Env::new();
    let run = env.leash_stdin(&["session", "send", "-"], "from stdin\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.stdout, "echo: from stdin\n");
    let empty = env.leash_stdin(&["session", "send", "-"], "  \n");
    assert_eq!(empty.code(), 2, "{empty:?}");
    assert!(empty.stderr.contains("prompt is empty"), "{empty:?}");
}

#[test]
fn json_output_is_one_object_per_line_ending_with_the_outcome() {
    let env = Env::new();
    let run = env.ok(&["session", "send", "--json", "hi [[tool Bash]]"]);
    let lines = run.json_lines();
    assert_eq!(lines[0]["type"], "queued");
    assert_eq!(lines[1]["type"], "turn_started");
    assert!(lines.iter().all(|l| l["type"].is_string()));
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "claude" && l["msg"]["type"] == "system")
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "turn_ended");
    assert_eq!(last["outcome"]["status"], "success");
    assert_eq!(last["outcome"]["exit_code"], 0);
    let seqs: Vec<u64> = lines
        .iter()
        .skip(1)
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq increases by one: {seqs:?}"
    );
}

#[test]
fn tool_calls_show_as_one_line_on_stderr() {
    let env = Env::new();
    let run = env.ok(&["session", "send", "commit please [[tool Bash]]"]);
    assert!(run.stderr.contains("> Bash: "), "{run:?}");
    assert!(!run.stdout.contains("> Bash"), "{run:?}");
}

#[test]
fn model_switch_keeps_the_conversation() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    let switched = env.ok(&["session", "model", "opus"]);
    assert!(
        switched.stderr.contains("model set to opus"),
        "{switched:?}"
    );
    env.ok(&["session", "send", "two"]);
    env.ok(&["session", "model", "haiku"]);
    env.ok(&["session", "model", "sonnet"]);
    env.ok(&["session", "send", "three"]);

    let turns = env.turns();
    assert_eq!(turns[1]["model"], "claude-opus-5-5");
    assert_eq!(turns[2]["model"], "claude-sonnet-5-5");
    assert_eq!(turns[2]["history"], 2);
    assert!(
        turns
            .iter()
            .all(|t| t["session_id"] == turns[0]["session_id"])
    );
    assert_eq!(env.spawns().len(), 1, "set_model needs no respawn");
    let status = env.status();
    assert_eq!(
        status["model"], "claude-sonnet-5-5",
        "confirmed by the init line"
    );
    assert_eq!(status["requested_model"], "sonnet");
}

#[test]
fn a_model_command_sent_as_a_prompt_switches_the_model_as_the_real_cli_does() {
    let env = Env::new();
    let command = env.ok(&["session", "send", "/model opus"]);
    assert_eq!(
        command.stdout,
        "Set model to `Opus 5.5` for this session only\n"
    );
    env.ok(&["session", "send", "next"]);
    let turns = env.turns();
    assert_eq!(turns.len(), 1, "the command is no turn of the model");
    assert_eq!(turns[0]["model"], "claude-opus-5-5");
}

#[test]
fn context_is_claudes_own_count_asked_with_a_control_request() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    let context = env.ok(&["session", "context"]);
    assert!(
        context.stderr.contains("of 1M tokens") && context.stderr.contains("compacts at 967k"),
        "{context:?}"
    );
    assert_eq!(env.spawns().len(), 1, "claude answers without a respawn");
}

#[test]
fn a_control_request_claude_does_not_answer_fails_and_says_which() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_IGNORE", "get_context_usage");
    env.set("LEASH_CONTROL_TIMEOUT", "300ms");
    env.ok(&["session", "send", "one"]);
    let context = env.leash(&["session", "context"]);
    assert_eq!(context.code(), 6, "{context:?}");
    assert!(
        context
            .stderr
            .contains("claude did not confirm get_context_usage within 300 ms"),
        "{context:?}"
    );
    // The session goes on.
    env.ok(&["session", "send", "two"]);
}

#[test]
fn model_switch_falls_back_to_a_resumed_respawn_when_claude_does_not_answer() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_IGNORE", "set_model");
    env.set("LEASH_CONTROL_TIMEOUT", "300ms");
    env.ok(&["session", "send", "one"]);
    env.ok(&["session", "model", "opus"]);
    env.ok(&["session", "send", "two"]);
    env.ok(&["session", "model", "haiku"]);
    env.ok(&["session", "send", "three"]);

    let spawns = env.spawns();
    assert_eq!(spawns.len(), 3, "one respawn per switch");
    let session_id = env.turns()[0]["session_id"].as_str().unwrap().to_string();
    for (spawn, model) in spawns[1..].iter().zip(["opus", "haiku"]) {
        let argv: Vec<&str> = spawn["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let resume = argv
            .iter()
            .position(|a| *a == "--resume")
            .expect("respawn resumes");
        assert_eq!(argv[resume + 1], session_id);
        let m = argv.iter().position(|a| *a == "--model").unwrap();
        assert_eq!(argv[m + 1], model);
    }
    let turns = env.turns();
    assert_eq!(turns[1]["model"], "claude-opus-5-5");
    assert_eq!(turns[2]["model"], "claude-haiku-5-5");
    assert_eq!(
        turns[2]["history"], 2,
        "the conversation survived both respawns"
    );
}

#[test]
fn interrupt_ends_the_turn_and_the_next_turn_gets_its_own_answer() {
    let mut env = Env::new();
    // The interrupted turn's result arrives late, as the real CLI's may.
    env.set("FAKE_CLAUDE_LATE_RESULT_MS", "300");
    env.ok(&["session", "start"]);
    let slow = env.spawn(&["session", "send", "--json", "slow [[sleep 30000]]"]);
    env.wait_busy();
    let started = Instant::now();
    let interrupt = env.ok(&["session", "interrupt"]);
    assert!(
        interrupt.stderr.contains("interrupting turn"),
        "{interrupt:?}"
    );
    let slow = finish(slow, Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(slow.code(), 130, "{slow:?}");
    assert_eq!(slow.last_json()["outcome"]["status"], "interrupted");

    let next = env.ok(&["session", "send", "after"]);
    assert_eq!(next.stdout, "echo: after\n");
    assert_eq!(env.spawns().len(), 1, "no respawn was needed");
}

#[test]
fn interrupt_when_idle_is_a_no_op() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let run = env.ok(&["session", "interrupt"]);
    assert!(run.stderr.contains("nothing to interrupt"), "{run:?}");
    env.ok(&["session", "send", "still fine"]);
    let not_running = Env::new();
    assert_eq!(not_running.leash(&["session", "interrupt"]).code(), 3);
}

#[test]
fn ctrl_c_on_send_interrupts_the_turn_not_the_daemon() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let daemon = env.status()["daemon_pid"].as_i64().unwrap();
    let send = env.spawn(&["session", "send", "[[sleep 30000]]"]);
    env.wait_busy();
    signal(send.id(), libc::SIGINT);
    let send = finish(send, Duration::from_secs(20));
    assert_eq!(send.code(), 130, "{send:?}");
    assert!(alive(daemon));
    assert_eq!(env.ok(&["session", "send", "next"]).stdout, "echo: next\n");
}

#[test]
fn concurrent_clients_are_queued_in_order_and_never_interleaved() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let first = env.spawn(&["session", "send", "--json", "first [[stream 5 50]]"]);
    env.wait_busy();
    let second = env.spawn(&["session", "send", "--json", "second"]);
    let first = finish(first, Duration::from_secs(30));
    let second = finish(second, Duration::from_secs(30));
    assert_eq!(first.code(), 0, "{first:?}");
    assert_eq!(second.code(), 0, "{second:?}");
    let turn_of = |run: &crate::support::Run| run.json_lines()[0]["turn"].as_u64().unwrap();
    let (t1, t2) = (turn_of(&first), turn_of(&second));
    assert!(t2 > t1);
    assert_eq!(second.json_lines()[0]["ahead"], 1);
    // Each client saw only its own turn.
    for (run, turn) in [(&first, t1), (&second, t2)] {
        for line in run.json_lines().iter().skip(1) {
            assert_eq!(line["turn"].as_u64(), Some(turn), "{line}");
        }
    }
    assert_eq!(second.last_json()["outcome"]["result"], "echo: second");
    let prompts: Vec<String> = env
        .turns()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(prompts, ["first [[stream 5 50]]", "second"]);
}

#[test]
fn a_client_that_disconnects_mid_turn_does_not_break_the_session() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let mut client = env.spawn(&["session", "send", "[[sleep 500]]"]);
    env.wait_busy();
    client.kill().unwrap();
    client.wait().unwrap();
    assert_eq!(
        env.ok(&["session", "send", "after"]).stdout,
        "echo: after\n"
    );
    let ended: Vec<_> = env
        .events()
        .into_iter()
        .filter(|e| e["type"] == "turn_ended")
        .collect();
    assert_eq!(
        ended[0]["outcome"]["status"], "success",
        "the orphaned turn completed"
    );
}

#[test]
fn a_crash_is_reported_and_the_next_turn_resumes_the_conversation() {
    let env = Env::new();
    env.ok(&["session", "send", "before"]);
    let crash = env.leash(&["session", "send", "[[crash 7]]"]);
    assert_eq!(crash.code(), 6, "{crash:?}");
    assert!(crash.stderr.contains("exited"), "{crash:?}");
    assert!(
        crash.stderr.contains("crashing on purpose"),
        "claude's last words: {crash:?}"
    );

    assert_eq!(
        env.ok(&["session", "send", "after"]).stdout,
        "echo: after\n"
    );
    let spawns = env.spawns();
    assert_eq!(spawns.len(), 2);
    let argv = spawns[1]["argv"].to_string();
    assert!(argv.contains("--resume"), "{argv}");
    assert_eq!(env.turns().last().unwrap()["history"], 2);
}

#[test]
fn malformed_and_unknown_lines_do_not_end_the_session() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let pid = env.status()["claude_pid"].clone();
    let run = env.ok(&["session", "send", "[[malformed]]"]);
    assert!(run.stdout.contains("echo:"), "{run:?}");
    assert_eq!(env.status()["claude_pid"], pid);
    let events = env.events();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "notice" && e["message"].as_str().unwrap().contains("malformed"))
    );
    assert!(
        events.iter().any(|e| e["msg"]["type"] == "brand_new_type"),
        "unknown types pass through"
    );
}

#[test]
fn claude_retries_are_relayed_as_they_happen() {
    let env = Env::new();
    let run = env.ok(&["session", "send", "[[retry 2 529]]"]);
    assert!(run.stderr.contains("claude retries (1/2)"), "{run:?}");
    assert!(run.stderr.contains("claude retries (2/2)"), "{run:?}");
}

#[test]
fn provider_errors_have_their_own_exit_code_and_can_be_retried() {
    let env = Env::new();
    let run = env.leash(&["session", "send", "--json", "[[api_error 529]]"]);
    assert_eq!(run.code(), 5, "{run:?}");
    assert_eq!(run.last_json()["outcome"]["status"], "provider_error");
    assert_eq!(run.last_json()["outcome"]["api_error_status"], 529);

    env.script(&["api_error 429", "reply recovered"]);
    let run = env.leash(&["session", "send", "--retries", "2", "again"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.stdout, "recovered\n");
    assert!(run.stderr.contains("retrying in"), "{run:?}");
}

#[test]
fn send_without_a_session_and_no_start_exits_3() {
    let env = Env::new();
    let run = env.leash(&["session", "send", "--no-start", "hi"]);
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(run.stderr.contains("leash session start"), "{run:?}");
    assert!(env.spawns().is_empty());
}

#[test]
fn a_missing_claude_binary_is_one_clear_error() {
    let mut env = Env::new();
    env.set("LEASH_CLAUDE", "/nonexistent/claude");
    let run = env.leash(&["session", "start"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(
        run.stderr
            .contains("npm install -g @anthropic-ai/claude-code"),
        "{run:?}"
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and its hint: {run:?}");
    assert!(lines[0].starts_with("leash: error: ") && lines[1].starts_with("hint: "));

    env.unset("LEASH_CLAUDE");
    env.set("PATH", "/usr/bin:/bin");
    let run = env.leash(&["session", "send", "hi"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(
        run.stderr.contains("claude was not found on PATH"),
        "{run:?}"
    );
}

#[test]
fn start_fails_cleanly_when_claude_exits_at_once() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_EXIT_AT_START", "1");
    let run = env.leash(&["session", "start"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(
        run.stderr.contains("cannot be used with root"),
        "claude's reason is shown: {run:?}"
    );
    assert_eq!(
        env.leash(&["session", "status"]).code(),
        3,
        "nothing left running"
    );
}

#[test]
fn start_waits_for_initialize_and_gives_up_after_its_bound() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_IGNORE", "initialize");
    env.set("LEASH_INIT_TIMEOUT", "500ms");
    let run = env.leash(&["session", "start"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("did not answer initialize"), "{run:?}");
    assert_eq!(env.leash(&["session", "status"]).code(), 3);
}

#[test]
fn two_repositories_get_two_workers() {
    let env = Env::new();
    let other = env.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    crate::support::git(&other, &["init", "-q"]);
    env.ok(&["session", "send", "here"]);
    let mut there = env.command(&["session", "send", "there"]);
    there.current_dir(&other);
    let there = crate::support::run_with_timeout(there, None);
    assert_eq!(there.code(), 0, "{there:?}");
    let list = env.ok(&["session", "list", "--json"]).json_lines();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_ne!(list[0]["session_id"], list[1]["session_id"]);
    // A subdirectory of a repository is the same worker.
    let sub = env.repo.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let mut status = env.command(&["session", "status", "--json"]);
    status.current_dir(&sub);
    let status = crate::support::run_with_timeout(status, None);
    assert_eq!(
        status.last_json()["cwd"],
        env.repo.canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn logs_show_what_claude_said_and_follow_new_events() {
    let env = Env::new();
    env.ok(&["session", "send", "remember me"]);
    let logs = env.ok(&["session", "logs"]);
    assert!(
        logs.stdout.contains("claude: echo: remember me"),
        "{logs:?}"
    );
    assert!(logs.stdout.contains("turn 1 ended: succeeded"), "{logs:?}");

    let follower = env.spawn(&["session", "logs", "--follow", "--json", "-n", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["session", "send", "new one"]);
    env.ok(&["session", "stop"]);
    let follow = finish(follower, Duration::from_secs(20));
    let lines = follow.json_lines();
    assert!(
        lines.iter().any(|l| l["msg"]["result"] == "echo: new one"),
        "{follow:?}"
    );
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no repeat: {seqs:?}"
    );
}

#[test]
fn bad_worker_names_are_usage_errors() {
    let env = Env::new();
    for bad in ["a/b", "..", "x".repeat(65).as_str(), ""] {
        let run = env.leash(&["--worker", bad, "session", "status"]);
        assert_eq!(run.code(), 2, "{bad:?}: {run:?}");
        assert!(run.stderr.contains("invalid worker name"), "{run:?}");
    }
}

/// `start --fresh` on a running worker would not begin a new conversation: refused; the
/// flags a running claude cannot take are named, not silently dropped.
#[test]
fn start_on_a_running_worker_says_what_it_did_not_do() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let session = env.status()["session_id"].clone();
    let run = env.leash(&["session", "start", "--fresh"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("session stop"), "{run:?}");
    let run = env.ok(&["session", "start", "--model", "opus"]);
    assert!(run.stderr.contains("--model not applied"), "{run:?}");
    assert_eq!(env.status()["session_id"], session, "the same conversation");
}

/// Daemons that take connections and never answer are asked at once, not one after
/// another: the list waits one status bound (3 s), not one per hung daemon.
#[test]
fn list_asks_every_daemon_at_once() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let hung: Vec<_> = ["hung-a", "hung-b", "hung-c"]
        .iter()
        .map(|name| {
            std::os::unix::net::UnixListener::bind(env.runtime.join(format!("{name}.sock")))
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    let list = env.ok(&["session", "list", "--json"]);
    let took = started.elapsed();
    assert_eq!(list.json_lines().len(), 4, "{list:?}");
    assert!(took < Duration::from_secs(7), "one after another: {took:?}");
    drop(hung);
}

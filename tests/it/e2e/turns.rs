//! Turns, switches, interrupts, provider errors and the worker loop, on the real CLI.

use super::*;

pub(super) fn two_sends_share_one_claude_process_and_the_conversation(cli: &'static Cli) {
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

pub(super) fn model_switches_reach_the_api_and_keep_the_conversation(cli: &'static Cli) {
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

pub(super) fn interrupt_and_ctrl_c_end_a_streaming_turn_and_the_next_turn_gets_its_own_answer(
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

pub(super) fn provider_errors_exit_5_and_leash_retries_recover(cli: &'static Cli) {
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

pub(super) fn claude_retries_are_shown_while_they_happen(cli: &'static Cli) {
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

pub(super) fn loop_plans_on_opus_implements_on_sonnet_and_commits_with_the_bash_tool(
    cli: &'static Cli,
) {
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

pub(super) fn loop_nudges_a_turn_that_committed_nothing_and_then_it_commits(cli: &'static Cli) {
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

pub(super) fn a_daemon_killed_with_sigkill_is_restarted_and_the_conversation_goes_on(
    cli: &'static Cli,
) {
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

//! Done means green, and many workers: checks and forks on the real CLI.

use super::*;

pub(super) fn loop_check_nudges_a_commit_that_fails_its_check_until_it_passes(cli: &'static Cli) {
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

pub(super) fn a_fork_in_a_worktree_starts_with_the_original_conversation(cli: &'static Cli) {
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

pub(super) fn a_step_whose_daemon_is_killed_mid_turn_goes_on_in_a_new_daemon(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let plan = "1) write feature.txt 2) commit it";
    let feature = e2e.repo.canonicalize().unwrap().join("feature.txt");
    e2e.api.push(Reply::text(plan));
    e2e.api.push(slow_reply("implementing"));
    e2e.api
        .extend(write_and_commit(&feature, "a feature\n", "Add feature.txt"));
    e2e.api.push(Reply::text("Committed."));
    let before = e2e.commits();

    let night = e2e.spawn(&["loop", "--task", "Add feature.txt"]);
    let implementing = e2e.api.wait_until(PATIENCE, |requests| {
        requests
            .iter()
            .filter(|r| r.kind == RequestKind::Turn)
            .count()
            >= 2
    });
    assert!(implementing, "{:#?}", e2e.turns());
    let_some_chunks_stream();
    let daemon = e2e.status()["daemon_pid"].as_u64().unwrap() as u32;
    signal(daemon, libc::SIGKILL);

    let run = finish(night, PATIENCE * 3);
    if run.code() != 0 {
        e2e.dump();
    }
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr
            .contains("the session daemon died during the step"),
        "{run:?}"
    );
    assert_eq!(e2e.commits(), before + 1, "{run:?}");
    assert_eq!(std::fs::read_to_string(&feature).unwrap(), "a feature\n");
    let worker = e2e.ok(&["status", "--json"]).last_json();
    assert_eq!(worker["phase"], "done", "{worker}");

    let turns = e2e.turns();
    let said: Vec<String> = turns.iter().filter_map(last_user_text).collect();
    let continued = turns
        .iter()
        .find(|t| last_user_text(t).is_some_and(|u| u.contains("Your last step was cut off")))
        .unwrap_or_else(|| panic!("claude was told to continue: {said:#?}"));
    assert!(
        texts(continued, "assistant").iter().any(|t| t == plan),
        "the new daemon's claude resumed the same conversation: {}",
        continued.messages
    );
    let implement_prompts = turns
        .iter()
        .filter(|t| last_user_text(t).is_some_and(|u| u.starts_with("Implement")))
        .count();
    assert_eq!(implement_prompts, 1, "the prompt went once: {said:#?}");
    let starts = e2e.claude_starts();
    assert!(
        starts
            .last()
            .is_some_and(|s| s.contains("resuming session")),
        "{starts:?}"
    );
}

/// Best of two on the real CLI: one plan, two attempts (one at a time, so the fake API
/// answers them in order), the plan model's pick kept as the worker; its conversation,
/// found again from the moved worktree, answers the next turn.
pub(super) fn best_of_two_keeps_the_judged_attempt_and_goes_on_in_its_conversation(
    cli: &'static Cli,
) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    let trees = e2e.repo.canonicalize().unwrap().join(".leash/worktrees");
    e2e.api.push(Reply::text("1) write ok.txt 2) commit it"));
    for k in 1..=2 {
        let file = trees.join(format!("bo-{k}")).join("ok.txt");
        e2e.api.extend(write_and_commit(
            &file,
            &format!("attempt {k}\n"),
            &format!("attempt {k}"),
        ));
        e2e.api.push(Reply::text(format!("Committed attempt {k}.")));
    }
    e2e.api
        .push(Reply::text("Both pass; 2 reads better.\nLEASH-WINNER: 2"));
    let run = e2e.leash(&[
        "--worker",
        "bo",
        "--json",
        "loop",
        "--attempts",
        "2",
        "--parallel",
        "1",
        "--check",
        "test -f ok.txt",
        "--task",
        "Add ok.txt",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    let winner = lines
        .iter()
        .find(|l| l["type"] == "winner")
        .expect("a winner");
    assert_eq!(
        (&winner["k"], &winner["chosen_by"]),
        (&2.into(), &"judge".into())
    );
    assert_eq!(
        git(&e2e.repo, &["log", "-1", "--format=%s", "leash/bo"]),
        "attempt 2"
    );
    let sent = e2e.ok(&["--worker", "bo", "session", "send", "which one are you?"]);
    assert_eq!(sent.stdout, "echo: which one are you?\n");
    let status = e2e
        .ok(&["--worker", "bo", "session", "status", "--json"])
        .last_json();
    assert_eq!(status["cwd"], trees.join("bo").display().to_string());
    let last = e2e.turns().into_iter().last().unwrap();
    assert_eq!(
        last.header("x-claude-code-session-id"),
        status["session_id"].as_str(),
        "the winner's conversation"
    );
    assert!(
        texts(&last, "assistant")
            .iter()
            .any(|t| t == "Committed attempt 2."),
        "it holds attempt 2's work: {}",
        last.messages
    );
    assert!(
        !last.body.contains("Committed attempt 1."),
        "and not attempt 1's"
    );
}

/// Issue 29: a branch that conflicts with its target goes back to its worker, and the
/// real CLI resolves it in a landing turn (rebase, write, continue) until it lands.
pub(super) fn a_conflict_handed_back_is_resolved_by_the_real_cli_in_a_landing_turn(
    cli: &'static Cli,
) {
    use crate::landing::{judged, land, resolve};
    use leash::worker::land::LandTrouble;
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    std::fs::write(e2e.repo.join("shared.txt"), "base\n").unwrap();
    git(&e2e.repo, &["add", "shared.txt"]);
    git(&e2e.repo, &["commit", "-q", "-m", "shared"]);
    let tree = e2e.repo.canonicalize().unwrap().join(".leash/worktrees/w");
    let shared = tree.join("shared.txt");
    e2e.api
        .push(Reply::text("1) add my line to shared.txt 2) commit it"));
    // The CLI writes a file it has read (the floor refuses to overwrite one unread).
    let read = || Reply::tool_use("Read", json!({"file_path": shared}));
    e2e.api.push(read());
    e2e.api
        .extend(write_and_commit(&shared, "base\nmine\n", "w: mine"));
    e2e.api.push(Reply::text("Committed."));
    e2e.ok(&[
        "--worker",
        "w",
        "loop",
        "--worktree",
        "--task",
        "Add my line",
    ]);
    std::fs::write(e2e.repo.join("shared.txt"), "base\ntheirs\n").unwrap();
    git(&e2e.repo, &["commit", "-q", "-am", "person: theirs"]);

    e2e.api.push(Reply::bash("git rebase main"));
    e2e.api.push(read());
    e2e.api.push(Reply::tool_use(
        "Write",
        json!({"file_path": shared, "content": "base\ntheirs\nmine\n"}),
    ));
    e2e.api.push(Reply::bash(
        "git add shared.txt && git -c core.editor=true rebase --continue",
    ));
    e2e.api
        .push(Reply::text("Rebased onto main; both lines kept."));
    let conflict = LandTrouble::Conflict {
        files: vec!["shared.txt".into()],
    };
    let lines = land(&e2e, resolve(&e2e, conflict), 3);
    assert_eq!(judged(&lines)["verdict"], "landable", "{lines:#?}");
    git(&tree, &["merge-base", "--is-ancestor", "main", "leash/w"]);
    assert_eq!(
        std::fs::read_to_string(&shared).unwrap(),
        "base\ntheirs\nmine\n"
    );
    assert_eq!(git(&tree, &["status", "--porcelain"]), "");
    let landing_turn = e2e
        .turns()
        .iter()
        .filter_map(last_user_text)
        .find(|text| text.contains("`leash land` is landing your work"))
        .unwrap_or_else(|| panic!("the landing prompt never reached the API"));
    assert!(landing_turn.contains("person: theirs"), "{landing_turn}");
}

/// `leash land` with a conflict: the real claude, handed its branch back in a landing
/// turn, merges main, resolves the file and commits; land then lands it.
pub(super) fn a_landing_conflict_is_resolved_through_the_real_claude(cli: &'static Cli) {
    let Some(e2e) = E2e::start(cli, []) else {
        return;
    };
    std::fs::write(e2e.repo.join("shared.txt"), "base\n").unwrap();
    git(&e2e.repo, &["add", "shared.txt"]);
    git(&e2e.repo, &["commit", "-q", "-m", "a shared file"]);
    let shared = e2e
        .repo
        .canonicalize()
        .unwrap()
        .join(".leash/worktrees/w/shared.txt");
    e2e.api
        .push(Reply::text("1) add my line to shared.txt 2) commit it"));
    // The file is there already: claude reads it before it writes it (2.1.110 insists).
    e2e.api
        .push(Reply::tool_use("Read", json!({"file_path": shared})));
    e2e.api
        .extend(write_and_commit(&shared, "base\nmine\n", "Add my line"));
    e2e.api.push(Reply::text("Committed."));
    let run = e2e.leash(&[
        "--worker",
        "w",
        "loop",
        "--worktree",
        "--task",
        "Add my line",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    std::fs::write(e2e.repo.join("shared.txt"), "base\ntheirs\n").unwrap();
    git(&e2e.repo, &["commit", "-q", "-am", "their line"]);

    // The landing turn: merge main (it stops on the conflict), resolve, commit.
    e2e.api.push(Reply::bash("git merge main"));
    e2e.api
        .push(Reply::tool_use("Read", json!({"file_path": shared})));
    e2e.api.push(Reply::tool_use(
        "Write",
        json!({"file_path": shared, "content": "base\ntheirs\nmine\n"}),
    ));
    e2e.api
        .push(Reply::bash("git add shared.txt && git commit --no-edit"));
    e2e.api
        .push(Reply::text("Merged main and kept both lines."));
    let run = e2e.leash(&["land", "w", "--json"]);
    if run.code() != 0 {
        e2e.dump();
    }
    assert_eq!(run.code(), 0, "{run:?}");
    let landing = run
        .json_lines()
        .into_iter()
        .find(|l| l["type"] == "landing")
        .unwrap();
    assert_eq!(landing["outcome"], "landed", "{run:?}");
    assert_eq!(
        std::fs::read_to_string(e2e.repo.join("shared.txt")).unwrap(),
        "base\ntheirs\nmine\n"
    );
    let prompt = e2e
        .turns()
        .iter()
        .filter_map(last_user_text)
        .find(|text| text.contains("leash land"))
        .unwrap_or_default();
    assert!(
        prompt.contains("shared.txt") && prompt.contains("their line"),
        "the conflict and what landed reached the API: {prompt}"
    );
    assert_eq!(git(&e2e.repo, &["status", "--porcelain"]), "");
}

//! What an adversarial user found, case by case (issue 20): each test fails on the
//! leash before the fix.

use crate::support::{Env, git};

/// Six sends at once to a worker with no daemon: whoever wins the start, every turn is
/// answered and every prompt reaches claude.
#[test]
fn concurrent_sends_to_a_cold_worker_are_all_answered() {
    let env = Env::worker();
    for round in 0..4 {
        let run = env.bash(
            "pids=''; for i in 0 1 2 3 4 5; do leash session send \"race $round-$i\" >/dev/null 2>err.$i & pids=\"$pids $!\"; done
             rc=0; for p in $pids; do wait $p || rc=$?; done
             cat err.*; exit $rc"
                .replace("$round", &round.to_string())
                .as_str(),
        );
        assert_eq!(run.code(), 0, "round {round}: {run:?}");
        let prompts: Vec<String> = env
            .turns()
            .iter()
            .filter_map(|t| t["prompt"].as_str().map(str::to_string))
            .collect();
        for i in 0..6 {
            let prompt = format!("race {round}-{i}");
            assert!(
                prompts.iter().any(|p| p.contains(&prompt)),
                "{prompt} never reached claude: {prompts:?}"
            );
        }
        env.ok(&["session", "stop"]);
    }
}

fn worktree(env: &Env, worker: &str) -> std::path::PathBuf {
    env.repo.join(".leash/worktrees").join(worker)
}

/// Case 1: commits on a detached HEAD in a worker's worktree are on no ref: removing the
/// worktree would delete them.
#[test]
fn rm_keeps_a_worktree_whose_detached_head_holds_commits_no_ref_has() {
    let env = Env::worker();
    env.ok(&["--worker", "a", "session", "start", "--worktree"]);
    let tree = worktree(&env, "a");
    git(&tree, &["checkout", "-q", "--detach"]);
    std::fs::write(tree.join("bisect.txt"), "found it\n").unwrap();
    git(&tree, &["add", "bisect.txt"]);
    git(&tree, &["commit", "-q", "-m", "on no branch"]);
    let commit = git(&tree, &["rev-parse", "HEAD"]);
    let run = env.leash(&["session", "rm", "a"]);
    assert_eq!(run.code(), 15, "{run:?}");
    assert!(run.stderr.contains("detached HEAD"), "{run:?}");
    assert!(run.stderr.contains(&commit[..10]), "{run:?}");
    assert!(tree.join("bisect.txt").is_file(), "nothing removed");
    assert_eq!(git(&env.repo, &["cat-file", "-t", &commit]), "commit");
    // Kept on a branch, the worktree can go.
    git(&tree, &["branch", "keep-it"]);
    env.ok(&["session", "rm", "a"]);
    assert!(!tree.exists());
    assert_eq!(git(&env.repo, &["rev-parse", "keep-it"]), commit);
}

/// Case 2: a worktree moved with `git worktree move` is checked where git knows it.
#[test]
fn rm_checks_a_moved_worktree_where_it_is_now() {
    let env = Env::worker();
    env.ok(&["--worker", "b", "session", "start", "--worktree"]);
    env.ok(&["session", "stop", "--all"]);
    let moved = env.dir.path().join("moved-b");
    env.git(&[
        "worktree",
        "move",
        ".leash/worktrees/b",
        moved.to_str().unwrap(),
    ]);
    std::fs::write(moved.join("notes.txt"), "mine\n").unwrap();
    let run = env.leash(&["session", "rm", "b"]);
    assert_eq!(run.code(), 15, "{run:?}");
    assert!(run.stderr.contains("?? notes.txt"), "{run:?}");
    assert!(run.stderr.contains("moved-b"), "names where it is: {run:?}");
    assert!(moved.join("notes.txt").is_file(), "nothing lost");
}

/// Case 3: ignored files (a hand-made .env) are work git cannot give back.
#[test]
fn rm_keeps_a_worktree_with_ignored_files_unless_forced() {
    let env = Env::worker();
    std::fs::write(env.repo.join(".gitignore"), ".env\n").unwrap();
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore .env"]);
    env.ok(&["--worker", "c", "session", "start", "--worktree"]);
    let tree = worktree(&env, "c");
    std::fs::write(tree.join(".env"), "TOKEN=hand-made\n").unwrap();
    let run = env.leash(&["session", "rm", "c"]);
    assert_eq!(run.code(), 15, "{run:?}");
    assert!(run.stderr.contains(".env"), "{run:?}");
    assert!(run.stderr.contains("--force"), "{run:?}");
    assert!(tree.join(".env").is_file());
    env.ok(&["session", "rm", "c", "--force"]);
    assert!(!tree.exists());
}

/// Case 4: a branch left by an earlier worker of the same name is never reused silently.
#[test]
fn a_new_worktree_worker_does_not_continue_a_leftover_branch() {
    let env = Env::worker();
    env.ok(&["--worker", "try1", "session", "start", "--worktree"]);
    let tree = worktree(&env, "try1");
    std::fs::write(tree.join("attempt.txt"), "rejected\n").unwrap();
    git(&tree, &["add", "attempt.txt"]);
    git(&tree, &["commit", "-q", "-m", "the rejected attempt"]);
    let run = env.ok(&["session", "rm", "try1"]);
    assert!(run.stderr.contains("kept its branch leash/try1"), "{run:?}");
    std::fs::write(env.repo.join("main.txt"), "main moved on\n").unwrap();
    env.git(&["add", "main.txt"]);
    env.git(&["commit", "-q", "-m", "main moves on"]);

    let run = env.leash(&["--worker", "try1", "session", "start", "--worktree"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("leash/try1 exists already"), "{run:?}");
    assert!(run.stderr.contains("--reuse-branch"), "{run:?}");
    assert!(!tree.exists());
    git(&env.repo, &["branch", "-D", "leash/try1"]);
    env.ok(&["--worker", "try1", "session", "start", "--worktree"]);
    assert_eq!(
        git(&tree, &["rev-parse", "HEAD"]),
        git(&env.repo, &["rev-parse", "HEAD"]),
        "a new branch from main's HEAD"
    );
    assert!(tree.join("main.txt").is_file());
    assert!(!tree.join("attempt.txt").exists());
}

#[test]
fn continuing_a_leftover_branch_is_asked_for_by_name() {
    let env = Env::worker();
    env.ok(&["--worker", "again", "session", "start", "--worktree"]);
    let tree = worktree(&env, "again");
    std::fs::write(tree.join("half.txt"), "half done\n").unwrap();
    git(&tree, &["add", "half.txt"]);
    git(&tree, &["commit", "-q", "-m", "half of it"]);
    env.ok(&["session", "rm", "again"]);
    env.ok(&[
        "--worker",
        "again",
        "session",
        "start",
        "--worktree",
        "--reuse-branch",
    ]);
    assert!(tree.join("half.txt").is_file(), "the branch goes on");
}

fn planned(env: &Env) {
    env.script(&["reply 1. write feature.txt\\n2. commit it"]);
    env.ok(&["plan", "--task", "Add feature.txt"]);
}

/// Case 6: a check ends when its process exits, whatever its children hold open.
#[test]
fn a_passing_check_that_leaves_a_background_child_passes() {
    let mut env = Env::worker();
    env.set("LEASH_CHECK_TIMEOUT", "20s");
    planned(&env);
    env.script(&["write feature.txt done; commit add the feature"]);
    let run = env.leash(&["implement", "--check", "sleep 40 & echo started"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let ran: Vec<_> = env
        .events()
        .into_iter()
        .filter(|e| e["type"] == "checks_ran")
        .collect();
    assert_eq!(ran[0]["checks"][0]["exit_code"], 0, "{ran:?}");
    assert_eq!(ran[0]["checks"][0]["timed_out"], false, "{ran:?}");
    assert_eq!(ran[0]["checks"][0]["output_tail"], "started", "{ran:?}");
}

/// Case 7: a check that moves HEAD, or leaves changes behind, fails.
#[test]
fn a_check_that_moves_head_or_changes_the_work_tree_fails() {
    let env = Env::worker();
    planned(&env);
    env.script(&["write feature.txt done; commit add the feature"]);
    let run = env.leash(&["implement", "--check", "git reset -q --hard HEAD~1"]);
    assert_eq!(run.code(), 12, "not done: {run:?}");
    assert!(run.stderr.contains("moved HEAD"), "{run:?}");

    let env = Env::worker();
    planned(&env);
    env.script(&["write feature.txt done; commit add the feature"]);
    let run = env.leash(&["implement", "--check", "echo formatted >> feature.txt"]);
    assert_eq!(run.code(), 12, "not done: {run:?}");
    assert!(run.stderr.contains("left 1 change(s)"), "{run:?}");
    assert!(run.stderr.contains("feature.txt"), "{run:?}");
}

/// Case 8: a prompt too big even for a new conversation is in no later one.
#[test]
fn a_refused_prompt_does_not_break_the_sends_after_it() {
    let env = Env::new();
    env.ok(&["session", "send", "remember the word banana"]);
    env.script(&["overflow", "overflow"]);
    let run = env.leash(&["session", "send", "an enormous prompt"]);
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(
        run.stderr.contains("the prompt alone does not fit"),
        "{run:?}"
    );
    for next in ["the next ordinary send", "and the one after"] {
        let run = env.leash(&["session", "send", next]);
        assert_eq!(run.code(), 0, "{run:?}");
        assert_eq!(run.stdout, format!("echo: {next}\n"));
    }
    let turns = env.turns();
    let after = &turns[turns.len() - 2];
    assert!(
        !after["prompt"].as_str().unwrap().contains("enormous"),
        "{after}"
    );
    assert_eq!(
        env.status()["previous_session_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Case 9: a zero that would make leash useless is refused, naming the setting and
/// where it came from.
#[test]
fn zero_values_that_break_every_turn_are_refused() {
    for (var, setting) in [
        ("LEASH_SILENCE_TIMEOUT", "silence_timeout"),
        ("LEASH_MAX_QUEUE", "max_queue"),
        ("LEASH_MAX_CRASHES", "max_crashes"),
        ("LEASH_CHECK_TIMEOUT", "check_timeout"),
        ("LEASH_INIT_TIMEOUT", "init_timeout"),
        ("LEASH_STOP_GRACE", "stop_grace"),
    ] {
        let mut env = Env::new();
        env.set(var, "0");
        let run = env.leash(&["session", "send", "hi"]);
        assert_eq!(run.code(), 2, "{var}: {run:?}");
        assert!(run.stderr.contains(setting), "{var}: {run:?}");
        assert!(run.stderr.contains(var), "{var}: {run:?}");
        assert!(run.stderr.contains("above zero"), "{var}: {run:?}");
        assert!(env.turns().is_empty());
    }
    let env = Env::worker();
    let run = env.leash(&["loop", "--budget", "0", "--task", "t"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("task_budget_usd"), "{run:?}");
    // A zero with a meaning is taken.
    let mut env = Env::new();
    env.set("LEASH_IDLE_TIMEOUT", "0");
    env.set("LEASH_PROVIDER_RETRIES", "0");
    env.ok(&["session", "send", "hi"]);
}

/// Case 10: text from outside reaches no terminal as control characters.
#[test]
fn escape_sequences_in_a_task_or_a_plan_are_shown_not_obeyed() {
    let env = Env::worker();
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2Jall tests passed";
    env.script(&[&format!("reply the plan: {evil}")]);
    let run = env.leash(&["plan", "--task", &format!("fix it {evil}")]);
    assert_eq!(run.code(), 0, "{run:?}");
    for out in [
        run,
        env.ok(&["status"]),
        env.ok(&["session", "logs"]),
        env.ok(&["session", "list"]),
    ] {
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}'),
                "raw control characters: {out:?}"
            );
        }
    }
    let status = env.ok(&["status"]);
    assert!(
        status.stdout.contains("\\u{1b}]0;pwned"),
        "shown: {status:?}"
    );
}

/// Case 11: a command line that cannot be read still ends `--json` with an `error`.
#[test]
fn json_usage_errors_end_with_an_error_line() {
    let env = Env::new();
    for args in [
        &["--json", "session", "send"][..],
        &["--json", "launch-missiles"],
        &["loop", "--budget", "-1", "--json", "--task", "t"],
        &["--json", "session", "send", "--retries", "many", "hi"],
    ] {
        let run = env.leash(args);
        assert_eq!(run.code(), 2, "{args:?}: {run:?}");
        let last = run.last_json();
        assert_eq!(last["type"], "error", "{args:?}: {run:?}");
        assert_eq!(last["kind"], "usage");
        assert_eq!(last["exit_code"], 2);
        assert!(!last["message"].as_str().unwrap().is_empty());
        assert!(run.stderr.contains("error:"), "clap's words stay: {run:?}");
    }
    assert_eq!(env.leash(&["--json", "--help"]).code(), 0);
}

/// Case 12: busy is 14, not a failed turn.
#[test]
fn a_full_queue_and_a_restart_that_waited_too_long_exit_busy() {
    let mut env = Env::new();
    env.set("LEASH_MAX_QUEUE", "1");
    env.ok(&["session", "start"]);
    let running = env.spawn(&["session", "send", "[[sleep 3000]] first"]);
    env.wait_busy();
    let queued = env.spawn(&["session", "send", "second"]);
    env.wait_until("the second to queue", || env.status()["queued"] == 1);
    let run = env.leash(&["session", "send", "third"]);
    assert_eq!(run.code(), 14, "{run:?}");
    assert!(run.stderr.contains("busy"), "{run:?}");
    let run = env.leash(&["session", "restart", "--wait", "100ms"]);
    assert_eq!(run.code(), 14, "{run:?}");
    crate::support::finish(running, std::time::Duration::from_secs(30));
    crate::support::finish(queued, std::time::Duration::from_secs(30));
}

/// Case 13: a worker name git cannot use in a branch is refused up front.
#[test]
fn worker_names_git_cannot_take_are_refused_with_a_hint() {
    let env = Env::worker();
    // The name is judged first, before whether there is anything to fork.
    let run = env.leash(&["session", "fork", "foo.lock"]);
    assert_eq!(run.code(), 2, "{run:?}");
    env.ok(&["session", "send", "hi"]);
    for name in ["foo.lock", "a..b", "x."] {
        let run = env.leash(&["--worker", name, "session", "start", "--worktree"]);
        assert_eq!(run.code(), 2, "{name}: {run:?}");
        assert!(run.stderr.contains("hint:"), "{run:?}");
        let run = env.leash(&["session", "fork", name, "--worktree"]);
        assert_eq!(run.code(), 2, "{name}: {run:?}");
    }
}

/// Case 14: doctor fails a runtime dir whose socket paths are too long.
#[test]
fn doctor_fails_a_runtime_dir_too_deep_for_sockets() {
    let mut env = Env::new();
    let deep = env.dir.path().join("r".repeat(60)).join("s".repeat(60));
    env.set("LEASH_RUNTIME_DIR", deep.to_str().unwrap());
    assert_eq!(env.leash(&["session", "status"]).code(), 2);
    let run = env.leash(&["doctor"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stdout.contains("fail  socket path"), "{run:?}");
}

/// Case 15: with nothing to do, `--json` still ends with the outcome.
#[test]
fn json_commands_with_nothing_to_do_print_their_outcome() {
    let env = Env::new();
    for args in [
        &["--json", "session", "stop"][..],
        &["--json", "session", "stop", "--all"],
        &["--json", "hooks", "uninstall"],
    ] {
        let run = env.leash(args);
        assert_eq!(run.code(), 0, "{args:?}: {run:?}");
        assert_eq!(run.last_json()["type"], "ok", "{args:?}: {run:?}");
    }
    let run = env.leash(&["--json", "completions", "bash"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert_eq!(run.last_json()["type"], "error");
}

/// Case 16: implementing with no task is refused, before any turn.
#[test]
fn implement_without_a_task_is_refused() {
    let env = Env::worker();
    let run = env.leash(&["implement"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("no task"), "{run:?}");
    assert!(run.stderr.contains("leash plan --task"), "{run:?}");
    assert!(env.turns().is_empty(), "no prompt was sent");
    let run = env.leash(&["loop"]);
    assert_eq!(run.code(), 2, "{run:?}");
}

// ---------------------------------------------------------------------------------------
// Issue 27, cases 7-10 and 12-14: state files that are no regular files, an oversized
// history line, a full disk, text that is not UTF-8, a runtime dir that is a file.
// ---------------------------------------------------------------------------------------

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A task planned, implemented and committed by `loop`.
fn finish_a_task(env: &Env, task: &str) -> crate::support::Run {
    env.script(&[
        "reply 1. write feature.txt\\n2. commit it",
        "write feature.txt done; commit add the feature",
    ]);
    env.leash(&["loop", "--json", "--task", task])
}

/// The worker's state dir, its daemon started.
fn state_dir_of(env: &Env) -> std::path::PathBuf {
    env.ok(&["session", "start"]);
    env.state.join(env.worker_name())
}

/// A command's failure as its `--json` output ends it: exit code and `error.kind`.
fn assert_refused(run: &crate::support::Run, code: i32, kind: &str, says: &str) {
    assert_eq!(run.code(), code, "{run:?}");
    let last = run.last_json();
    assert_eq!(last["type"], "error", "{run:?}");
    assert_eq!(last["kind"], kind, "{run:?}");
    assert!(run.stderr.contains(says), "{says:?} not said: {run:?}");
}

/// Issue 27 case 7: an event log replaced by a FIFO or a link to `/dev/zero` is refused
/// with a line naming it; nothing waits on it, and the daemon's history thread is not
/// held up by it (so `session stop` returns).
#[test]
fn event_logs_that_are_a_fifo_or_a_link_are_refused_never_waited_on() {
    let env = Env::worker();
    let dir = state_dir_of(&env);
    mkfifo(&dir.join("events.1.jsonl"));
    let run = finish_a_task(&env, "Add feature.txt");
    assert_eq!(run.code(), 0, "{run:?}");
    env.ok(&["session", "stop"]);
    let run = env.leash(&["--json", "report"]);
    assert_refused(&run, 4, "setup", "events.1.jsonl is a FIFO");
    let run = env.leash(&["--json", "session", "logs"]);
    assert_refused(&run, 4, "setup", "events.1.jsonl is a FIFO");

    std::fs::remove_file(dir.join("events.1.jsonl")).unwrap();
    std::fs::rename(dir.join("events.jsonl"), dir.join("kept.jsonl")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("events.jsonl")).unwrap();
    let run = env.leash(&["--json", "report"]);
    assert_refused(&run, 4, "setup", "events.jsonl is a symlink");
    let run = env.leash(&["--json", "session", "start"]);
    assert_refused(&run, 4, "setup", "events.jsonl is a symlink");
}

/// Issue 27 case 7: `worker.json` and `session.json` that are a FIFO or a link to
/// `/dev/zero` are refused, not read forever.
#[test]
fn worker_and_session_files_that_are_a_fifo_or_a_link_are_refused() {
    let env = Env::worker();
    let dir = state_dir_of(&env);
    env.ok(&["session", "stop"]);
    mkfifo(&dir.join("worker.json"));
    let run = env.leash(&["--json", "status"]);
    assert_refused(&run, 4, "setup", "worker.json is a FIFO");
    std::fs::remove_file(dir.join("worker.json")).unwrap();
    std::fs::remove_file(dir.join("session.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("session.json")).unwrap();
    let run = env.leash(&["--json", "session", "status"]);
    assert_refused(&run, 4, "setup", "session.json is a symlink");
    let run = env.leash(&["--json", "session", "send", "hi"]);
    assert_refused(&run, 4, "setup", "session.json is a symlink");
}

/// Issue 27 case 8: a history whose first line is over 64 MiB hides no later row: the
/// line is skipped (and said), the tasks recorded after it are reported.
#[test]
fn an_oversized_history_line_hides_no_later_task() {
    let env = Env::worker();
    let dir = state_dir_of(&env);
    let huge = format!("{{\"task\":\"{}\"}}\n", "x".repeat(65 << 20));
    std::fs::write(dir.join("history.jsonl"), huge).unwrap();
    let run = finish_a_task(&env, "Add feature.txt");
    assert_eq!(run.code(), 0, "{run:?}");
    env.ok(&["session", "stop"]);
    // Only the history holds the task now, as after a busy week of rotations.
    for log in ["events.jsonl", "events.1.jsonl"] {
        let _ = std::fs::remove_file(dir.join(log));
    }
    let run = env.ok(&["--json", "report"]);
    let rows: Vec<_> = run
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "task")
        .collect();
    assert_eq!(rows.len(), 1, "{run:?}");
    assert_eq!(rows[0]["task"], "Add feature.txt");
    assert!(run.stderr.contains("skipped 1 line(s)"), "{run:?}");
}

/// Issue 27 case 10: an argument that is not UTF-8 is a usage error naming it, wherever
/// `--json` is, never a panic.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    for (before, after) in [(&["--json"][..], &[][..]), (&[], &["--json"])] {
        let mut command = env.command(before);
        command.args(["session", "send"]).arg(bad).args(after);
        let run = crate::support::run_with_timeout(command, None);
        assert_refused(&run, 2, "usage", "is not valid UTF-8");
        assert!(run.stderr.contains("caf\u{fffd}"), "names it: {run:?}");
    }
    let mut command = env.command(&["session", "send"]);
    command.arg(bad);
    let run = crate::support::run_with_timeout(command, None);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("argument 3"), "{run:?}");
    assert!(env.turns().is_empty(), "nothing was sent");
}

/// Issue 27 case 12: a setting whose environment variable is not UTF-8 is refused as
/// `abc` is, naming the variable, not silently replaced by its default.
#[test]
fn settings_from_environment_values_that_are_not_utf8_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    for var in [
        "LEASH_MAX_NUDGES",
        "LEASH_CLAUDE",
        "LEASH_MODEL",
        "LEASH_WORKER",
    ] {
        let mut command = env.command(&["--json", "session", "send", "hi"]);
        command.env(var, std::ffi::OsStr::from_bytes(b"5\xff"));
        let run = crate::support::run_with_timeout(command, None);
        assert_refused(&run, 2, "usage", var);
        assert!(run.stderr.contains("not valid UTF-8"), "{run:?}");
    }
    assert!(env.turns().is_empty(), "nothing was sent");
}

/// Issue 27 case 13: a runtime dir that is a regular file is an unsafe dir (4), not an
/// internal error.
#[test]
fn a_runtime_dir_that_is_a_file_is_a_setup_error() {
    let mut env = Env::new();
    let file = env.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    env.set("LEASH_RUNTIME_DIR", file.to_str().unwrap());
    for args in [
        &["--json", "session", "status"][..],
        &["--json", "session", "send", "hi"],
    ] {
        let run = env.leash(args);
        assert_refused(&run, 4, "setup", "is not a directory");
    }
    env.set("LEASH_RUNTIME_DIR", file.join("below").to_str().unwrap());
    let run = env.leash(&["--json", "session", "status"]);
    assert_refused(&run, 4, "setup", "is not a directory");
}

/// Issue 27 case 14: a history that is a symlink is never appended to: the file it
/// points at, outside the state dir, stays as it was, and `report` says why it refuses.
#[test]
fn a_history_that_is_a_symlink_is_never_written_through() {
    let env = Env::worker();
    let dir = state_dir_of(&env);
    let outside = env.dir.path().join("outside.jsonl");
    std::fs::write(&outside, "").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("history.jsonl")).unwrap();
    let run = finish_a_task(&env, "Add feature.txt");
    assert_eq!(run.code(), 0, "{run:?}");
    // The row is saved once the task's command is gone: the next command says it was not.
    env.wait_until("the history thread to give up", || {
        std::fs::read_to_string(dir.join("daemon.log"))
            .is_ok_and(|log| log.contains("cannot add the task"))
    });
    let run = env.ok(&["session", "send", "hi"]);
    assert!(
        run.stderr.contains("history.jsonl is a symlink"),
        "the warning is printed: {run:?}"
    );
    env.ok(&["session", "stop"]);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "", "untouched");
    let run = env.leash(&["--json", "report"]);
    assert_refused(&run, 4, "setup", "history.jsonl is a symlink");
    let run = env.leash(&["doctor"]);
    assert!(run.stdout.contains("warn  state file"), "{run:?}");
    assert!(run.stdout.contains("history.jsonl is a symlink"), "{run:?}");
}

/// A tmpfs of a given size, for a full disk; unmounted when dropped. `None` where this
/// process may not mount (not root, no CAP_SYS_ADMIN).
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::Builder::new().prefix("ltdisk").tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(TinyDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk to the last byte; the file that fills it is returned.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Issue 27 case 9: on a full state disk a step whose `worker.json` cannot be saved
/// fails (exit 1, I/O) with a line naming the file and the cause, and is never
/// reported done with nothing saved; with space again the worker goes on.
#[test]
fn a_full_state_disk_fails_the_step_naming_the_file_and_the_cause() {
    let Some(disk) = TinyDisk::mount("512k") else {
        eprintln!("SKIPPED: a full disk needs a tmpfs, and this process may not mount one");
        return;
    };
    let mut env = Env::worker();
    let state = disk.path().join("state");
    env.set("LEASH_STATE_DIR", state.to_str().unwrap());
    env.state = state;
    env.ok(&["session", "start"]);
    let filler = disk.fill();
    // The daemon's own lines cannot reach daemon.log either: it goes on all the same.
    let run = env.leash(&["session", "send", "hi"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.stdout, "echo: hi\n");
    env.wait_until("the event log to fail", || {
        let run = env.leash(&["session", "send", "again"]);
        assert_eq!(run.code(), 0, "{run:?}");
        run.stderr.contains("cannot write the event log")
    });
    let run = env.leash(&["doctor"]);
    assert!(run.stdout.contains("warn  state disk"), "{run:?}");
    let run = finish_a_task(&env, "Add feature.txt");
    assert_eq!(run.code(), 1, "{run:?}");
    let judged: Vec<_> = run
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "judged")
        .collect();
    let last = &judged.last().expect("a judged line")["judgement"];
    assert_eq!(last["exit_code"], 1, "{run:?}");
    assert_eq!(last["verdict"], "turn_failed", "{run:?}");
    let message = last["message"].as_str().unwrap();
    assert!(message.contains("worker.json"), "names the file: {message}");
    assert!(
        message.contains("No space left"),
        "names the cause: {message}"
    );

    std::fs::remove_file(filler).unwrap();
    let run = env.leash(&["loop", "--json", "--fresh", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
}

/// A process group the test started, killed whatever the test's outcome.
struct Stranger {
    leader: std::process::Child,
    members: Vec<i64>,
}

impl Stranger {
    /// `setsid bash -c 'sleep 1000 & sleep 1000 & wait'`: a session and group leader
    /// with two members, as a shell, tmux or a service is.
    fn start(dir: &std::path::Path) -> Stranger {
        let members = dir.join("stranger-members");
        let _ = std::fs::remove_file(&members);
        let leader = std::process::Command::new("setsid")
            .arg("bash")
            .arg("-c")
            .arg(format!(
                "sleep 1000 & echo $! > {m}.tmp; sleep 1000 & echo $! >> {m}.tmp; mv {m}.tmp {m}; wait",
                m = members.display()
            ))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        crate::support::wait_until(
            "the stranger's members",
            std::time::Duration::from_secs(20),
            &mut || members.exists(),
        );
        let members = std::fs::read_to_string(&members)
            .unwrap()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect();
        Stranger { leader, members }
    }

    fn pid(&self) -> u32 {
        self.leader.id()
    }

    fn all_alive(&self) -> bool {
        crate::support::alive(i64::from(self.pid()))
            && self.members.iter().all(|&m| crate::support::alive(m))
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        crate::support::signal(self.pid(), libc::SIGKILL);
        for &member in &self.members {
            crate::support::signal(member as u32, libc::SIGKILL);
        }
        let _ = self.leader.wait();
    }
}

/// The start time a `claude.pid` holds, in the format this leash writes or an
/// earlier leash's `PID STARTTIME`.
fn recorded_start(record: &str) -> u64 {
    match serde_json::from_str::<serde_json::Value>(record) {
        Ok(json) => json["start_time"].as_u64().unwrap(),
        Err(_) => record.split_whitespace().nth(1).unwrap().parse().unwrap(),
    }
}

/// Issue 27 case 1: after a daemon was killed, its `claude.pid` names a pid that a
/// stranger's group leader has now (a shell, a `setsid` job). The next daemon leaves
/// that group alone, in the old `PID STARTTIME` format and in this leash's format with
/// the old start time, and says why in its log and its event log.
#[test]
fn a_new_daemon_never_kills_a_stranger_whose_pid_claude_pid_names() {
    let env = Env::new();
    for format in ["old", "new"] {
        env.ok(&["session", "send", "hi"]);
        let state = env.state.join(env.worker_name());
        let daemon = env.status()["daemon_pid"].as_u64().unwrap() as u32;
        crate::support::signal(daemon, libc::SIGKILL);
        env.wait_until("the daemon to die", || {
            !crate::support::alive(i64::from(daemon))
        });
        let pid_file = state.join("claude.pid");
        let recorded = std::fs::read_to_string(&pid_file).unwrap();
        let started = recorded_start(&recorded);
        let stranger = Stranger::start(env.dir.path());
        let pid = stranger.pid();
        let record = match format {
            "old" => format!("{pid} {started}\n"),
            _ => {
                let mut json: serde_json::Value = serde_json::from_str(&recorded).unwrap();
                json["pid"] = pid.into();
                format!("{json}\n")
            }
        };
        std::fs::write(&pid_file, record).unwrap();

        env.ok(&["session", "send", "hi"]);
        assert!(
            stranger.all_alive(),
            "{format} format: the stranger's group was killed"
        );
        let log = std::fs::read_to_string(state.join("daemon.log")).unwrap();
        let said = format!("left pid {pid} alone");
        assert!(log.contains(&said), "{format} format: {log}");
        assert_eq!(env.said(&said), 1, "{format} format: a notice says so");
        drop(stranger);
    }
}

/// Issue 27 case 6: a check running when its daemon dies dies with it (its leader by
/// `PR_SET_PDEATHSIG`, what it started by the next daemon, from its record), and the
/// next daemon's run of the same check never overlaps it.
#[test]
fn a_check_dies_with_its_daemon_and_its_rerun_runs_alone() {
    let mut env = Env::worker();
    env.set("LEASH_CHECK_TIMEOUT", "300s");
    planned(&env);
    env.script(&["write feature.txt done; commit add the feature"]);
    let marks = env.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let (runs, sleeper, overlap) = (
        marks.join("runs"),
        marks.join("sleeper"),
        marks.join("overlap"),
    );
    // The first run sleeps until killed; a later one says whether any process of the
    // first still runs (a zombie does not count).
    let check = format!(
        "live() {{ s=$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != Z ]; }}; \
         if [ -e {runs} ]; then \
           for p in $(cat {runs}) $(cat {sleeper}); do if live $p; then echo $p >> {overlap}; fi; done; \
           echo $$ >> {runs}; \
         else \
           echo $$ >> {runs}; sleep 1000 & echo $! > {sleeper}.tmp; mv {sleeper}.tmp {sleeper}; wait; \
         fi",
        runs = runs.display(),
        sleeper = sleeper.display(),
        overlap = overlap.display()
    );
    let mut step = env.spawn(&["implement", "--check", &check]);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sleeper.exists() {
        if let Ok(Some(_)) = step.try_wait() {
            let ended = crate::support::finish(step, std::time::Duration::from_secs(1));
            panic!("the step ended before its check ran: {ended:?}");
        }
        assert!(std::time::Instant::now() < until, "the check never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let first: Vec<i64> = std::fs::read_to_string(&runs)
        .unwrap()
        .split_whitespace()
        .chain(
            std::fs::read_to_string(&sleeper)
                .unwrap()
                .split_whitespace(),
        )
        .map(|pid| pid.parse().unwrap())
        .collect();
    let mut cleanup = KilledPids(first.clone());
    let daemon = env.status()["daemon_pid"].as_u64().unwrap() as u32;
    crate::support::signal(daemon, libc::SIGKILL);

    env.wait_until("the first check's processes to be gone", || {
        !first.iter().any(|&pid| crate::support::alive(pid))
    });
    // Gone: their pids are anyone's now.
    cleanup.0.clear();
    let step = crate::support::finish(step, std::time::Duration::from_secs(60));
    assert_eq!(step.code(), 0, "{step:?}");
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(ran.lines().count(), 2, "run once, then again: {ran}");
    assert!(
        !overlap.exists(),
        "the re-run overlapped the first: {}",
        std::fs::read_to_string(&overlap).unwrap_or_default()
    );
}

/// Issue 31, host-safe state: a state dir on storage two hosts share. While a daemon on
/// another host holds the worker's lock, a command here says so (14, naming the host)
/// and signals nothing, whatever process has that pid here; once the lock is free, the
/// record is taken over.
#[test]
fn a_worker_held_on_another_host_is_busy_there_until_its_lock_is_free() {
    let env = Env::new();
    env.ok(&["session", "send", "hi"]);
    env.ok(&["session", "stop"]);
    let state = env.state.join(env.worker_name());
    let local = Killed(
        std::process::Command::new("sleep")
            .arg("1000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let local = &local.0;
    let exe = std::fs::read_link(format!("/proc/{}/exe", local.id())).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let record = serde_json::json!({
        "pid": local.id(),
        "start_time": 1,
        "boot_id": boot.trim(),
        "exe": exe,
        "host": "another-node",
    });
    let lock_path = state.join("daemon.lock");
    std::fs::write(&lock_path, format!("{record}\n")).unwrap();
    let held = std::fs::File::open(&lock_path).unwrap();
    held.lock().unwrap();

    let run = env.leash(&["session", "send", "hi"]);
    assert_eq!(run.code(), 14, "{run:?}");
    assert!(run.stderr.contains("on host another-node"), "{run:?}");
    let json = env.leash(&["--json", "session", "send", "hi"]);
    assert_eq!(json.code(), 14, "{json:?}");
    let last = json.last_json();
    assert_eq!(last["type"], "error", "{json:?}");
    assert_eq!(last["kind"], "busy", "{json:?}");
    assert!(
        last["message"].as_str().unwrap().contains("another-node"),
        "{json:?}"
    );
    let doctor = env.leash(&["doctor"]);
    assert!(
        doctor.stdout.contains("(on host another-node)"),
        "doctor shows where it runs: {doctor:?}"
    );
    assert!(
        crate::support::alive(i64::from(local.id())),
        "the local process with that pid was signalled"
    );

    drop(held);
    let run = env.leash(&["session", "send", "hi"]);
    assert_eq!(run.code(), 0, "the record is taken over: {run:?}");
}

/// Processes a test's leash started, killed when the test ends however it ends.
struct KilledPids(Vec<i64>);

impl Drop for KilledPids {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if crate::support::alive(pid) {
                crate::support::signal(pid as u32, libc::SIGKILL);
            }
        }
    }
}

/// A process the test started, killed when the test ends however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `claude` that is a script (`#!/usr/bin/env node`, as npm installs it) runs another
/// executable once it is going than the moment it was started: its record names what
/// runs, or the next daemon would take it for a stranger.
#[test]
fn claude_pid_names_the_executable_a_claude_script_runs() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = Env::new();
    let fake = test_fakes::fake_claude();
    let wrapper = env.dir.path().join("claude-script");
    std::fs::write(
        &wrapper,
        format!("#!/usr/bin/env bash\nexec {} \"$@\"\n", fake.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("LEASH_CLAUDE", &wrapper.display().to_string());
    env.ok(&["session", "send", "hi"]);
    let state = env.state.join(env.worker_name());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("claude.pid")).unwrap()).unwrap();
    assert_eq!(
        record["exe"].as_str().map(std::path::PathBuf::from),
        Some(fake.canonicalize().unwrap()),
        "{record}"
    );
    assert_eq!(
        record["pid"].as_i64(),
        env.status()["claude_pid"].as_i64(),
        "{record}"
    );
}

/// Case 4: claude SIGKILLed `times` times during its startup, before it answers
/// `initialize` (the fake counts down in a file).
fn claude_dies_at_start(env: &mut Env, times: u32) {
    let counter = env.repo.parent().unwrap().join("die-at-start");
    std::fs::write(&counter, times.to_string()).unwrap();
    env.set("FAKE_CLAUDE_DIE_AT_START", &counter.display().to_string());
}

/// Case 4: a claude killed during its startup is a crash like any other: started again
/// (a new conversation stays new: no `--resume` of what claude never had), the turn
/// answered, the crash told.
#[test]
fn a_claude_killed_during_its_startup_is_started_again() {
    let mut env = Env::new();
    claude_dies_at_start(&mut env, 1);
    let run = env.leash(&["session", "send", "hello"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.stdout, "echo: hello\n", "{run:?}");
    assert!(
        env.said("exited unexpectedly (signal 9)") >= 1,
        "the crash is told: {run:?}"
    );
    let spawns = env.spawns();
    assert_eq!(spawns.len(), 1, "the one that lived: {spawns:?}");
    let argv = spawns[0]["argv"].to_string();
    assert!(
        argv.contains("--session-id") && !argv.contains("--resume"),
        "{argv}"
    );
}

#[test]
fn a_loop_whose_claude_is_killed_during_its_startup_goes_on() {
    let mut env = Env::worker();
    claude_dies_at_start(&mut env, 1);
    env.script(&["reply 1. write a.txt", "write a.txt; commit add a.txt"]);
    let run = env.leash(&["--json", "loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(env.worker_status()["phase"], "done");
    let answered = env.answered_prompts();
    assert_eq!(
        answered.iter().filter(|p| p.contains("Add a.txt")).count(),
        1,
        "{answered:#?}"
    );
}

/// ... within `max_crashes`: a claude killed at every start ends the step with 6.
#[test]
fn a_claude_killed_at_every_start_is_given_up_on_after_max_crashes() {
    let mut env = Env::new();
    env.set("LEASH_MAX_CRASHES", "2");
    claude_dies_at_start(&mut env, 100);
    let run = env.leash(&["--json", "session", "send", "hello"]);
    assert_eq!(run.code(), 6, "{run:?}");
    let outcome = &run.last_json()["outcome"];
    assert_eq!(outcome["status"], "crashed", "{run:?}");
    assert_eq!(
        outcome["message"], "claude failed 2 times in a row; leash gave up",
        "{run:?}"
    );
}

/// Case 5: the daemon is killed mid-step, and then each replacement `times` times
/// during its own startup (a test-only switch of debug builds, armed by the turn).
fn replacements_die_at_start(env: &mut Env, times: u32) {
    let counter = env.repo.parent().unwrap().join("daemon-dies-at-start");
    std::fs::write(&counter, "0").unwrap();
    env.set(
        "LEASH_TEST_DAEMON_DIES_AT_START",
        &counter.display().to_string(),
    );
    env.script(&[
        "reply 1. write a.txt",
        &format!("write {} {times}; kill_daemon", counter.display()),
        "write a.txt; commit add a.txt",
    ]);
}

/// Case 5: a replacement daemon killed during its own startup is one more death, not a
/// daemon that cannot start: the step goes on.
#[test]
fn a_replacement_daemon_killed_during_its_startup_is_one_more_death() {
    let mut env = Env::worker();
    replacements_die_at_start(&mut env, 1);
    let run = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr
            .contains("a new session daemon died during its startup"),
        "told: {run:?}"
    );
    assert_eq!(env.worker_status()["phase"], "done");
}

/// ... and counts toward `max_crashes`: every replacement killed ends the step with 6.
#[test]
fn replacement_daemons_killed_at_every_startup_end_the_step_with_6() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_CRASHES", "2");
    replacements_die_at_start(&mut env, 100);
    let run = env.leash(&["--json", "loop", "--task", "Add a.txt"]);
    assert_refused(
        &run,
        6,
        "turn_failed",
        "died 3 times during this step; leash gave up (max_crashes 2)",
    );
}

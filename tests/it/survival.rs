//! A worker stops only on its own verdict: a step whose daemon is killed mid-turn goes on
//! in a new daemon, a machine that reboots mid-task resumes from the saved phase, and
//! neither sends a prompt twice.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Env, alive, count_holding, finish, signal};

const CONTINUE: &str = "Your last step was cut off";

#[test]
fn a_step_goes_on_in_a_new_daemon_when_its_daemon_is_killed_mid_turn() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt\\n2. commit it",
        "write a.txt; kill_daemon",
        "commit add a.txt",
    ]);
    let run = env.leash(&["loop", "--check", "test -f a.txt", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr
            .contains("the session daemon died during the step; a new one resumes"),
        "{run:?}"
    );
    let status = env.worker_status();
    assert_eq!(status["phase"], "done", "{status}");
    assert!(status.get("in_flight").is_none(), "{status}");
    assert_eq!(env.commits(), 2);

    let prompts = env.prompts_received();
    assert_eq!(
        count_holding(&prompts, "Implement"),
        1,
        "the implement prompt went once: {prompts:#?}"
    );
    assert_eq!(count_holding(&prompts, CONTINUE), 1, "{prompts:#?}");
    assert_eq!(prompts.len(), 3, "{prompts:#?}");
    assert_eq!(env.said("daemon started"), 2);
    let spawns = env.spawns();
    let session = env.status()["session_id"].as_str().unwrap().to_string();
    assert!(
        spawns.last().unwrap()["argv"]
            .to_string()
            .contains(&format!("\"--resume\",\"{session}\"")),
        "the new daemon resumed the conversation: {spawns:#?}"
    );
    let said = |needle: &str| env.said(needle);
    assert_eq!(
        said("daemon died during the implement turn"),
        1,
        "the new daemon says why it continues"
    );
    assert_eq!(said("died without stopping"), 1, "and that one died");

    // A daemon that stops as asked is no death to the next one.
    env.ok(&["session", "stop"]);
    env.ok(&["session", "send", "hello"]);
    assert_eq!(said("died without stopping"), 1);
}

#[test]
fn a_daemon_that_dies_every_time_ends_the_step_with_6_saying_why() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_CRASHES", "2");
    env.script(&[
        "reply 1. write a.txt",
        "kill_daemon",
        "kill_daemon",
        "kill_daemon",
        "commit never",
    ]);
    let run = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(
        run.stderr
            .contains("died 3 times during this step; leash gave up (max_crashes 2)"),
        "{run:?}"
    );
    assert!(run.stderr.contains("daemon.log"), "the hint: {run:?}");
}

#[test]
fn a_plain_turn_goes_on_through_its_daemons_death_only_when_asked() {
    let env = Env::new();
    // The model began to answer each time: the prompt is in the conversation.
    env.script(&[
        "stream 1 10; kill_daemon",
        "stream 1 10; kill_daemon",
        "reply carried on",
    ]);
    let plain = env.leash(&["session", "send", "hello"]);
    assert_eq!(plain.code(), 6, "{plain:?}");
    assert!(
        plain
            .stderr
            .contains("the session daemon died during the turn"),
        "{plain:?}"
    );
    assert!(plain.stderr.contains("--continue-on-crash"), "{plain:?}");

    let asked = env.leash(&["session", "send", "--continue-on-crash", "hello again"]);
    assert_eq!(asked.code(), 0, "{asked:?}");
    // What claude said before its daemon died, then what it said after.
    assert_eq!(asked.stdout, "chunk 0\ncarried on\n");
    let prompts = env.prompts_received();
    assert_eq!(
        count_holding(&prompts, "hello again"),
        1,
        "not sent twice: {prompts:#?}"
    );
    assert_eq!(count_holding(&prompts, CONTINUE), 1, "{prompts:#?}");
}

#[test]
fn a_turn_waiting_behind_another_when_the_daemon_dies_is_sent_as_it_was() {
    let env = Env::new();
    env.ok(&["session", "send", "warm up"]);
    env.script(&["sleep 30000", "reply the waiting one"]);
    let running = env.spawn(&["session", "send", "the running one"]);
    env.wait_busy();
    let waiting = env.spawn(&["session", "send", "--continue-on-crash", "the waiting one"]);
    env.wait_until("the second turn to queue", || {
        env.status()["queued"].as_u64().unwrap_or(0) > 0
    });
    let daemon = env.status()["daemon_pid"].as_u64().unwrap() as u32;
    signal(daemon, libc::SIGKILL);

    let running = finish(running, Duration::from_secs(20));
    assert_eq!(running.code(), 6, "{running:?}");
    let waiting = finish(waiting, Duration::from_secs(30));
    assert_eq!(waiting.code(), 0, "{waiting:?}");
    assert_eq!(waiting.stdout, "the waiting one\n");
    let prompts = env.prompts_received();
    assert_eq!(
        count_holding(&prompts, "the waiting one"),
        1,
        "{prompts:#?}"
    );
    assert_eq!(count_holding(&prompts, CONTINUE), 0, "{prompts:#?}");
}

/// Every process of the worker killed at once, the runtime dir wiped: what a reboot
/// leaves. The state dir stays.
fn reboot(env: &Env, client: Option<std::process::Child>) {
    if let Some(mut client) = client {
        let _ = client.kill();
        let _ = client.wait();
    }
    let status = env.status();
    let daemon = status["daemon_pid"].as_u64().unwrap() as u32;
    let claude = status["claude_pid"].as_i64();
    signal(daemon, libc::SIGKILL);
    if let Some(claude) = claude {
        signal(claude as u32, libc::SIGKILL);
        env.wait_until("claude to die", || !alive(claude));
    }
    env.wait_until("the daemon to die", || !alive(daemon as i64));
    std::fs::remove_dir_all(&env.runtime).unwrap();
}

#[test]
fn a_reboot_mid_turn_resumes_the_task_from_its_phase_without_a_second_prompt() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; sleep 30000",
        "commit add a.txt",
    ]);
    let night = env.spawn(&["loop", "--task", "Add a.txt"]);
    env.wait_until("the implement turn", || {
        env.prompts_received()
            .iter()
            .any(|p| p.contains("Implement"))
    });
    reboot(&env, Some(night));
    let saved: Value = env.worker_status();
    assert_eq!(saved["phase"], "implementing");
    assert_eq!(saved["in_flight"]["turn"], "implement", "{saved}");

    let morning = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(morning.code(), 0, "{morning:?}");
    let prompts = env.prompts_received();
    assert_eq!(count_holding(&prompts, "Implement"), 1, "{prompts:#?}");
    assert_eq!(count_holding(&prompts, CONTINUE), 1, "{prompts:#?}");
    assert_eq!(env.worker_status()["phase"], "done");
}

#[test]
fn a_reboot_between_steps_resumes_from_the_saved_phase() {
    let env = Env::worker();
    env.script(&["reply 1. write a.txt", "write a.txt; commit add a.txt"]);
    env.ok(&["plan", "--task", "Add a.txt"]);
    reboot(&env, None);
    let morning = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(morning.code(), 0, "{morning:?}");
    let prompts = env.prompts_received();
    assert_eq!(prompts.len(), 2, "one plan, one implement: {prompts:#?}");
    assert_eq!(count_holding(&prompts, CONTINUE), 0);
}

#[test]
fn a_new_task_whose_daemon_dies_while_planning_is_planned_once() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; commit add a",
        "stream 1 10; kill_daemon",
        "reply 1. write b.txt",
        "write b.txt; commit add b",
    ]);
    env.ok(&["loop", "--task", "Add a.txt"]);
    let run = env.leash(&["loop", "--task", "Add b.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let prompts = env.prompts_received();
    assert_eq!(count_holding(&prompts, "Add b.txt"), 1, "{prompts:#?}");
    assert_eq!(count_holding(&prompts, CONTINUE), 1, "{prompts:#?}");
    assert_eq!(env.worker_status()["task"], "Add b.txt");
    assert_eq!(env.worker_status()["phase"], "done");
}

/// An orderly shutdown (SIGTERM, as a reboot sends it) interrupts the turn; the loop
/// run again continues it instead of sending its prompt a second time.
#[test]
fn a_turn_a_stopping_daemon_cut_off_is_continued_not_sent_again() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; sleep 30000",
        "commit add a",
    ]);
    let night = env.spawn(&["loop", "--task", "Add a.txt"]);
    env.wait_until("the implement turn", || {
        env.prompts_received()
            .iter()
            .any(|p| p.contains("Implement"))
    });
    let daemon = env.status()["daemon_pid"].as_u64().unwrap() as u32;
    signal(daemon, libc::SIGTERM);
    let night = finish(night, Duration::from_secs(20));
    assert_eq!(night.code(), 130, "{night:?}");
    assert_eq!(env.worker_status()["in_flight"]["turn"], "implement");

    let morning = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(morning.code(), 0, "{morning:?}");
    let prompts = env.prompts_received();
    assert_eq!(count_holding(&prompts, "Implement"), 1, "{prompts:#?}");
    assert_eq!(count_holding(&prompts, CONTINUE), 1, "{prompts:#?}");
}

/// A daemon killed in the middle of writing a line leaves it torn: the client reads
/// that as the daemon's end (here: exit 6, it died), never as a line leash cannot
/// read (exit 1). Played by a socket that answers as a daemon would, then dies mid-line.
#[test]
fn a_line_torn_by_a_dying_daemon_is_its_end_not_garbage() {
    use std::io::{BufRead, BufReader, Write};
    let env = Env::new();
    std::fs::create_dir_all(&env.runtime).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(env.runtime.join("torn.sock")).unwrap();
    let daemon = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut hello = String::new();
        reader.read_line(&mut hello).unwrap();
        let hello: Value = serde_json::from_str(&hello).unwrap();
        let mut writer = stream;
        writeln!(
            writer,
            r#"{{"type":"hello","version":{},"daemon_pid":999999999,"worker":"torn"}}"#,
            hello["version"]
        )
        .unwrap();
        let mut request = String::new();
        reader.read_line(&mut request).unwrap();
        writeln!(writer, r#"{{"type":"queued","turn":1,"ahead":0}}"#).unwrap();
        write!(writer, r#"{{"type":"turn_started","kind":"user","pro"#).unwrap();
    });
    let run = env.leash(&["--worker", "torn", "session", "send", "--no-start", "hi"]);
    daemon.join().unwrap();
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(
        run.stderr.contains("daemon died during the turn"),
        "{run:?}"
    );
}

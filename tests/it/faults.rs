//! leash never loses a conversation: each test injects one fault (a killed daemon, a
//! crashing or hanging claude, a bad client, a full log, another user) and checks what
//! the user sees and that the session goes on.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Env, alive, finish, signal};
use leash::protocol::PROTOCOL_VERSION;
use serde_json::Value;

fn socket(env: &Env) -> PathBuf {
    let worker = env.status()["worker"].as_str().unwrap().to_string();
    env.runtime.join(format!("{worker}.sock"))
}

/// Sends raw bytes as a client would (after an optional hello) and returns every line
/// the daemon answered before closing.
fn raw_exchange(socket: &PathBuf, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).expect("write");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The first line a client sends.
fn hello() -> String {
    format!("{{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION}}}\n")
}

fn daemon_pid(env: &Env) -> u32 {
    env.status()["daemon_pid"].as_u64().unwrap() as u32
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Processes this environment left behind: live ones that carry its state dir in
/// their environment (daemon, claude, tools), and zombies that one of those failed to
/// reap. (Zombies whose parent is init are init's to reap; this sandbox's init does so
/// lazily, so they are not leash's leftovers.)
fn leftovers(env: &Env) -> Vec<String> {
    let marker = format!("LEASH_STATE_DIR={}", env.state.display());
    let ours = |pid: &str| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() || pid == std::process::id().to_string() {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let (state, ppid) = (
            fields.first().copied().unwrap_or("?"),
            fields.get(1).copied().unwrap_or("0"),
        );
        if state == "Z" {
            if ours(ppid) {
                found.push(format!("{pid}: zombie not reaped by {ppid}"));
            }
        } else if ours(&pid) {
            let cmd = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{pid}: {}", cmd.replace('\0', " ")));
        }
    }
    found
}

fn notices(env: &Env) -> Vec<String> {
    env.events()
        .into_iter()
        .filter(|e| e["type"] == "notice")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---- the daemon dies -----------------------------------------------------------

#[test]
fn daemon_killed_mid_turn_restarts_and_continues_the_same_conversation() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    let status = env.status();
    let (daemon, claude) = (
        status["daemon_pid"].as_u64().unwrap() as u32,
        status["claude_pid"].as_i64().unwrap(),
    );
    let session_id = status["session_id"].clone();
    let sock = socket(&env);
    // claude dies with its daemon; a tool it started is left for the next daemon.
    let waiting = env.spawn(&["session", "send", "[[grandchild]] [[sleep 30000]]"]);
    env.wait_busy();
    let tool = grandchild(&env);
    signal(daemon, libc::SIGKILL);

    let waiting = finish(waiting, Duration::from_secs(20));
    assert_eq!(waiting.code(), 6, "{waiting:?}");
    assert!(
        waiting.stderr.contains("daemon died during the turn"),
        "{waiting:?}"
    );
    assert!(sock.exists(), "the dead daemon's socket is still there");

    let next = env.ok(&["session", "send", "two"]);
    assert_eq!(next.stdout, "echo: two\n");
    let status = env.status();
    assert_ne!(
        status["daemon_pid"].as_u64().unwrap() as u32,
        daemon,
        "a new daemon"
    );
    assert_eq!(status["session_id"], session_id, "the same conversation");
    let spawns = env.spawns();
    let argv = spawns.last().unwrap()["argv"].to_string();
    assert!(
        argv.contains(&format!("\"--resume\",{session_id}")),
        "{argv}"
    );
    assert!(env.turns().last().unwrap()["history"].as_u64().unwrap() >= 1);
    assert!(
        !alive(claude),
        "the orphaned claude was killed, not left beside the new one"
    );
    env.wait_until("the orphaned tool to be reaped", || !alive(tool as i64));
    assert!(
        notices(&env)
            .iter()
            .any(|n| n.contains("left running by a daemon that died")),
        "{:?}",
        notices(&env)
    );
    // The log kept what happened before the kill.
    assert!(env.events().iter().any(|e| e["type"] == "turn_started"
        && e["prompt"] == "[[grandchild]] [[sleep 30000]]"));
}

#[test]
fn daemon_killed_while_idle_is_noticed_and_restarted() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    let daemon = daemon_pid(&env);
    signal(daemon, libc::SIGKILL);
    crate::support::wait_until("the daemon to die", Duration::from_secs(10), &mut || {
        !alive(daemon as i64)
    });
    let status = env.leash(&["session", "status"]);
    assert_eq!(
        status.code(),
        3,
        "a dead socket is not a running session: {status:?}"
    );
    assert_eq!(env.ok(&["session", "send", "two"]).stdout, "echo: two\n");
    assert_eq!(env.turns().last().unwrap()["history"], 1);
}

#[test]
fn a_record_that_disagrees_with_claude_about_the_conversation_is_corrected() {
    let env = Env::new();
    env.ok(&["session", "send", "one"]);
    env.ok(&["session", "stop"]);
    let record_path = env.state.join(env.worker_name()).join("session.json");
    let set_started = |started: bool| {
        let mut record: Value =
            serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
        record["conversation_started"] = started.into();
        std::fs::write(&record_path, record.to_string()).unwrap();
        record["session_id"].as_str().unwrap().to_string()
    };
    // As if the daemon died after sending the first turn, before claude answered it:
    // leash thinks the conversation is new, claude refuses `--session-id`.
    set_started(false);
    assert_eq!(env.ok(&["session", "send", "two"]).stdout, "echo: two\n");
    assert_eq!(
        env.turns().last().unwrap()["history"],
        1,
        "the conversation was resumed"
    );
    assert!(
        notices(&env)
            .iter()
            .any(|n| n.contains("already has this conversation"))
    );

    // The other way round: leash thinks there is a conversation claude never kept.
    env.ok(&["session", "stop"]);
    let id = set_started(true);
    std::fs::remove_file(
        env.dir
            .path()
            .join("conversations")
            .join(format!("{id}.jsonl")),
    )
    .unwrap();
    assert_eq!(
        env.ok(&["session", "send", "three"]).stdout,
        "echo: three\n"
    );
    assert!(
        notices(&env)
            .iter()
            .any(|n| n.contains("no record of this conversation"))
    );
    assert_eq!(env.status()["session_id"], id.as_str(), "the same id");
}

// ---- claude fails ----------------------------------------------------------------

#[test]
fn repeated_crashes_back_off_and_give_up_with_a_clear_state() {
    let mut env = Env::new();
    env.set("LEASH_MAX_CRASHES", "3");
    for _ in 0..3 {
        let run = env.leash(&["session", "send", "[[crash]]"]);
        assert_eq!(run.code(), 6, "{run:?}");
        // The daemon reaped the crashed claude; only the daemon itself is left.
        let left = leftovers(&env);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].contains("leash daemon"), "{left:?}");
    }
    let started = Instant::now();
    let run = env.leash(&["session", "send", "hello"]);
    assert_eq!(run.code(), 6, "{run:?}");
    assert!(run.stderr.contains("gave up"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        env.spawns().len(),
        3,
        "no spinning: no spawn after giving up"
    );
    let status = env.status();
    assert_eq!(status["state"], "failed");
    assert!(status["failure"].as_str().unwrap().contains("3 times"));
    assert!(
        notices(&env).iter().any(|n| n.contains("restarting it in")),
        "backed off"
    );

    env.ok(&["session", "start"]);
    assert_eq!(env.status()["state"], "idle");
    assert_eq!(
        env.ok(&["session", "send", "again"]).stdout,
        "echo: again\n"
    );
}

#[test]
fn a_silent_claude_is_interrupted_then_killed_and_respawned() {
    let mut env = Env::new();
    env.set("LEASH_SILENCE_TIMEOUT", "1s");
    env.set("LEASH_INTERRUPT_GRACE", "1s");
    env.ok(&["session", "send", "before"]);
    let hung = env.leash(&["session", "send", "--json", "[[hang]]"]);
    assert_eq!(hung.code(), 6, "{hung:?}");
    let outcome = &hung.last_json()["outcome"];
    assert_eq!(outcome["status"], "hung");
    assert!(outcome["message"].as_str().unwrap().contains("silent"));
    assert_eq!(
        env.ok(&["session", "send", "after"]).stdout,
        "echo: after\n"
    );
    let spawns = env.spawns();
    assert_eq!(spawns.len(), 2);
    assert!(spawns[1]["argv"].to_string().contains("--resume"));
}

#[test]
fn a_turn_that_keeps_streaming_is_never_cut_for_being_long() {
    let mut env = Env::new();
    env.set("LEASH_SILENCE_TIMEOUT", "1s");
    let run = env.leash(&["session", "send", "--json", "[[stream 25 100]]"]);
    assert_eq!(
        run.code(),
        0,
        "2.5 s of output with a 1 s silence bound: {run:?}"
    );
    assert_eq!(run.last_json()["outcome"]["status"], "success");
}

#[test]
fn a_result_later_than_the_grace_never_answers_the_next_turn() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_LATE_RESULT_MS", "5000");
    env.set("LEASH_INTERRUPT_GRACE", "1s");
    env.ok(&["session", "start"]);
    let slow = env.spawn(&["session", "send", "[[sleep 30000]]"]);
    env.wait_busy();
    env.ok(&["session", "interrupt"]);
    let slow = finish(slow, Duration::from_secs(20));
    assert_eq!(slow.code(), 130, "{slow:?}");
    assert_eq!(env.ok(&["session", "send", "next"]).stdout, "echo: next\n");
    assert!(
        notices(&env)
            .iter()
            .any(|n| n.contains("no late result reaches the next turn"))
    );
}

// ---- stopping ----------------------------------------------------------------------

fn pids_of(env: &Env) -> (u32, u32) {
    let status = env.status();
    (
        status["daemon_pid"].as_u64().unwrap() as u32,
        status["claude_pid"].as_u64().unwrap() as u32,
    )
}

fn grandchild(env: &Env) -> u32 {
    let mut found = None;
    env.wait_until("the tool process to start", || {
        found = env
            .fake_events()
            .iter()
            .find_map(|e| e["grandchild"].as_u64());
        found.is_some()
    });
    found.unwrap() as u32
}

#[test]
fn stop_interrupts_the_turn_and_leaves_no_process_behind() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let (daemon, claude) = pids_of(&env);
    let sock = socket(&env);
    let turn = env.spawn(&["session", "send", "[[grandchild]] [[sleep 30000]]"]);
    env.wait_busy();
    let tool = grandchild(&env);
    env.ok(&["session", "stop"]);
    let turn = finish(turn, Duration::from_secs(20));
    assert_eq!(
        turn.code(),
        130,
        "the running turn was interrupted: {turn:?}"
    );
    for pid in [daemon, claude, tool] {
        assert!(!alive(pid as i64), "{pid} still runs");
    }
    assert!(!sock.exists(), "socket removed");
    assert_eq!(leftovers(&env), Vec::<String>::new());
    let record: Value = serde_json::from_slice(
        &std::fs::read(env.state.join(env.worker_name()).join("session.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["turns"], 1, "state saved");
}

#[test]
fn sigterm_stops_even_a_claude_that_ignores_everything() {
    let mut env = Env::new();
    env.set("FAKE_CLAUDE_IGNORE_SIGTERM", "1");
    env.set("LEASH_INTERRUPT_GRACE", "1s");
    env.set("LEASH_STOP_GRACE", "500ms");
    env.ok(&["session", "start"]);
    let (daemon, claude) = pids_of(&env);
    let turn = env.spawn(&["session", "send", "[[grandchild]] [[hang]]"]);
    env.wait_busy();
    let tool = grandchild(&env);
    signal(daemon, libc::SIGTERM);
    let turn = finish(turn, Duration::from_secs(30));
    assert_eq!(turn.code(), 130, "{turn:?}");
    crate::support::wait_until("the daemon to exit", Duration::from_secs(20), &mut || {
        !alive(daemon as i64)
    });
    for pid in [claude, tool] {
        assert!(!alive(pid as i64), "{pid} still runs");
    }
    assert_eq!(leftovers(&env), Vec::<String>::new());
    assert!(
        notices(&env)
            .iter()
            .any(|n| n.contains("stopped: signal 9")),
        "{:?}",
        notices(&env)
    );
}

#[test]
fn an_idle_daemon_stops_itself_and_the_next_command_resumes() {
    let mut env = Env::new();
    env.set("LEASH_IDLE_TIMEOUT", "1s");
    env.ok(&["session", "send", "one"]);
    let (daemon, claude) = pids_of(&env);
    let sock = socket(&env);
    crate::support::wait_until(
        "the idle daemon to stop",
        Duration::from_secs(20),
        &mut || env.leash(&["session", "status"]).code() == 3,
    );
    crate::support::wait_until("its processes to end", Duration::from_secs(10), &mut || {
        !alive(daemon as i64) && !alive(claude as i64)
    });
    assert!(!sock.exists());
    assert_eq!(env.ok(&["session", "send", "two"]).stdout, "echo: two\n");
    assert_eq!(env.turns().last().unwrap()["history"], 1, "resumed");
    assert!(notices(&env).iter().any(|n| n.contains("idle for")));
}

// ---- durable state -----------------------------------------------------------------

#[test]
fn the_event_log_is_bounded_and_survives_a_torn_line() {
    let mut env = Env::new();
    env.set("LEASH_LOG_MAX_BYTES", "20000");
    env.ok(&["session", "send", "[[flood 2000]]"]);
    let dir = env.state.join(env.worker_name());
    let current = std::fs::metadata(dir.join("events.jsonl")).unwrap().len();
    let rotated = std::fs::metadata(dir.join("events.1.jsonl")).unwrap().len();
    assert!(
        current <= 21_000 && rotated <= 21_000,
        "{current} {rotated}"
    );

    // A crash tears the last line.
    env.ok(&["session", "stop"]);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("events.jsonl"))
        .unwrap();
    log.write_all(b"{\"type\":\"notice\",\"seq\":99999999,\"me")
        .unwrap();
    drop(log);
    env.ok(&["session", "send", "after the tear"]);
    let logs = env.ok(&["session", "logs", "--json", "-n", "0"]);
    for line in logs.json_lines() {
        assert!(line["seq"].is_u64(), "{line}");
    }
    assert!(logs.stdout.contains("echo: after the tear"));
}

// ---- bad input ------------------------------------------------------------------------

#[test]
fn bad_requests_get_one_clear_error_and_the_daemon_stays_up() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let sock = socket(&env);
    let daemon = daemon_pid(&env);

    let answer = raw_exchange(&sock, b"{not json\n");
    assert!(
        answer.contains("\"kind\":\"usage\"") && answer.contains("malformed request"),
        "{answer}"
    );

    let answer = raw_exchange(
        &sock,
        format!("{}{{\"type\":\"launch_missiles\"}}\n", hello()).as_bytes(),
    );
    assert!(answer.contains("unknown variant"), "{answer}");

    let answer = raw_exchange(&sock, b"{\"type\":\"hello\",\"version\":999}\n");
    assert!(
        answer.contains(&format!("protocol version {PROTOCOL_VERSION}"))
            && answer.contains("\"kind\":\"setup\""),
        "{answer}"
    );

    let answer = raw_exchange(&sock, b"{\"type\":\"status\"}\n");
    assert!(answer.contains("must start with a hello"), "{answer}");

    // Half a request, then gone.
    let mut stream = UnixStream::connect(&sock).unwrap();
    stream.write_all(b"{\"type\":\"hel").unwrap();
    drop(stream);

    // 100 MiB on one line is refused without being held in memory.
    let mut huge = hello().into_bytes();
    huge.extend(std::iter::repeat_n(b'x', 100 << 20));
    huge.push(b'\n');
    let answer = raw_exchange(&sock, &huge);
    assert!(answer.contains("over the 32 MiB limit"), "{answer}");
    assert!(
        rss_kib(daemon) < 64 * 1024,
        "daemon RSS {} KiB",
        rss_kib(daemon)
    );

    assert_eq!(daemon_pid(&env), daemon, "the same daemon is still serving");
    assert_eq!(
        env.ok(&["session", "send", "still fine"]).stdout,
        "echo: still fine\n"
    );
}

#[test]
fn a_silent_client_is_dropped_and_does_not_block_others() {
    let mut env = Env::new();
    env.set("LEASH_CLIENT_TIMEOUT", "500ms");
    env.ok(&["session", "start"]);
    let sock = socket(&env);
    let mut silent = UnixStream::connect(&sock).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Others are served while it sits there.
    env.ok(&["session", "send", "meanwhile"]);
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(answer.contains("no request within"), "{answer}");
}

#[test]
fn a_client_that_reads_too_slowly_is_dropped_and_nobody_waits_for_it() {
    let mut env = Env::new();
    // 8 MiB of lag allowed; the flood is 9.1 MiB (23,000 events of 416 bytes): more than
    // the sleeper may fall behind (the kernel holds a few hundred KiB of it at most), while a
    // reader starved by a busy machine may read at an eighth of the daemon's pace and
    // still keep up (at 4 MiB and 5.6 MiB one did not, under a loaded test suite).
    env.set("LEASH_CLIENT_BUFFER", "8388608");
    env.ok(&["session", "start"]);
    let sock = socket(&env);
    // A follower that never reads.
    let mut sleeper = UnixStream::connect(&sock).unwrap();
    sleeper
        .write_all(format!("{}{{\"type\":\"follow\",\"after_seq\":null}}\n", hello()).as_bytes())
        .unwrap();
    // It is following once it has seen a turn end; from then on it reads nothing.
    env.ok(&["session", "send", "are you there"]);
    sleeper
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"turn_ended\"") {
        let mut chunk = [0; 4096];
        let n = sleeper
            .read(&mut chunk)
            .expect("the follower hears the turn");
        assert!(n > 0, "the follower was cut off before the flood");
        seen.extend_from_slice(&chunk[..n]);
    }
    let flood = env.leash(&["session", "send", "--json", "[[flood 23000]]"]);
    assert_eq!(
        flood.code(),
        0,
        "the turn was not slowed down by the sleeper: {flood:?}"
    );
    assert!(
        flood.json_lines().len() > 23_000,
        "the reading client got everything"
    );
    assert!(
        notices(&env).iter().any(|n| n.contains("read too slowly")),
        "{:?}",
        notices(&env)
    );
    // What the sleeper finally reads ends with the notice that it was dropped.
    let mut rest = Vec::new();
    let _ = sleeper.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.trim_end().ends_with("}"), "whole lines only");
    assert!(
        rest.contains("read too slowly and was dropped"),
        "{}",
        &rest[rest.len().saturating_sub(300)..]
    );
}

#[test]
fn a_worker_name_too_long_for_a_socket_path_is_a_usage_error() {
    let mut env = Env::new();
    let deep = env.dir.path().join("d".repeat(80));
    env.set("LEASH_RUNTIME_DIR", deep.to_str().unwrap());
    let run = env.leash(&["--worker", &"w".repeat(40), "session", "start"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("longer than 107 bytes"), "{run:?}");
}

// ---- load ------------------------------------------------------------------------------

#[test]
fn fifty_concurrent_clients_each_get_their_turn_exactly_once_in_order() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let daemon = daemon_pid(&env);
    // Followers are read as they go, like a terminal would.
    let followers: Vec<_> = (0..10)
        .map(|_| {
            let child = env.spawn(&["session", "logs", "--follow", "--json", "-n", "1"]);
            std::thread::spawn(move || finish(child, Duration::from_secs(180)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let senders: Vec<_> = (0..50)
        .map(|i| {
            env.spawn(&[
                "session",
                "send",
                "--json",
                &format!("client {i} [[stream 3 5]]"),
            ])
        })
        .collect();
    let mut turn_of_client = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let run = finish(sender, Duration::from_secs(120));
        assert_eq!(run.code(), 0, "client {i}: {run:?}");
        let last = run.last_json();
        assert_eq!(
            last["outcome"]["result"],
            format!("echo: client {i} [[stream 3 5]]")
        );
        turn_of_client.push(last["turn"].as_u64().unwrap());
    }
    let mut turns = turn_of_client.clone();
    turns.sort_unstable();
    turns.dedup();
    assert_eq!(turns.len(), 50, "every turn once");
    // claude saw each prompt exactly once, in the order of the turn ids.
    let prompts: Vec<String> = env
        .turns()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(prompts.len(), 50);
    let mut by_turn: Vec<(u64, usize)> = turn_of_client.iter().copied().zip(0..).collect();
    by_turn.sort_unstable();
    let expected: Vec<String> = by_turn
        .iter()
        .map(|(_, i)| format!("client {i} [[stream 3 5]]"))
        .collect();
    assert_eq!(prompts, expected);
    assert!(
        rss_kib(daemon) < 64 * 1024,
        "daemon RSS {} KiB",
        rss_kib(daemon)
    );

    env.ok(&["session", "stop"]);
    for follower in followers {
        let run = follower.join().unwrap();
        let lines = run.json_lines();
        let ended = lines.iter().filter(|l| l["type"] == "turn_ended").count();
        assert_eq!(
            ended,
            50,
            "each follower saw every turn end: {}\n{}",
            run.stderr,
            lines
                .iter()
                .take(3)
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "nothing lost, nothing twice"
        );
    }
}

// ---- security ----------------------------------------------------------------------------

#[test]
fn unsafe_runtime_directories_are_refused() {
    let mut env = Env::new();
    let real = env.dir.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.set("LEASH_RUNTIME_DIR", link.to_str().unwrap());
    let run = env.leash(&["session", "start"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("symlink"), "{run:?}");

    let open = env.dir.path().join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("LEASH_RUNTIME_DIR", open.to_str().unwrap());
    let run = env.leash(&["session", "start"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("chmod 700"), "{run:?}");
}

#[test]
fn the_socket_and_its_directory_are_private() {
    let env = Env::new();
    env.ok(&["session", "start"]);
    let sock = socket(&env);
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&env.runtime)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let state = env.state.join(env.worker_name());
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn another_user_is_rejected_and_logged() {
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to connect as another user");
        return;
    }
    let env = Env::new();
    env.ok(&["session", "start"]);
    let sock = socket(&env);
    // Let the other user reach the socket file, so the check under test is the
    // daemon's own peer-credential check.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&env.runtime, std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = std::ffi::CString::new(env.runtime.to_str().unwrap()).unwrap();
    let name = std::ffi::CString::new(sock.file_name().unwrap().to_str().unwrap()).unwrap();
    let hello = hello().into_bytes();
    // SAFETY: the child only makes raw syscalls on memory prepared before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            let code = (|| {
                if libc::chdir(dir.as_ptr()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return 2;
                }
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let mut addr: libc::sockaddr_un = std::mem::zeroed();
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (i, b) in name.as_bytes().iter().enumerate() {
                    addr.sun_path[i] = *b as libc::c_char;
                }
                let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
                if libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len) != 0 {
                    return 3;
                }
                libc::write(fd, hello.as_ptr() as *const libc::c_void, hello.len());
                let mut buf = [0u8; 64];
                // Nothing read: the daemon hung up without a word.
                if libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) <= 0 {
                    0
                } else {
                    4
                }
            })();
            libc::_exit(code);
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(child, &mut status, 0) };
    std::fs::set_permissions(&env.runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the other user got an answer (4) or could not connect (3)"
    );
    let log =
        std::fs::read_to_string(env.state.join(env.worker_name()).join("daemon.log")).unwrap();
    assert!(
        log.contains("rejected a connection from uid 65534"),
        "{log}"
    );
    env.ok(&["session", "send", "owner still served"]);
}

#[test]
fn secrets_in_the_environment_never_reach_logs_or_status() {
    let mut env = Env::new();
    let secret = "sk-ant-secret-4f9c2e7d";
    env.set("ANTHROPIC_API_KEY", secret);
    env.set("MY_SERVICE_TOKEN", secret);
    env.ok(&["session", "send", "hello"]);
    let mut seen = String::new();
    for args in [
        &["session", "status", "--json"][..],
        &["session", "status"],
        &["session", "list", "--json"],
        &["session", "logs", "--json", "-n", "0"],
        &["status", "--json"],
        &["doctor"],
        &["doctor", "--json"],
    ] {
        let run = env.ok(args);
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
    }
    let dir = env.state.join(env.worker_name());
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.path()).unwrap(),
        ));
    }
    assert!(!seen.contains(secret), "a secret leaked");
    assert!(seen.contains("echo: hello"), "the outputs were read");
}

/// claude killed while its `git commit` ran takes that git with it, and the lock the
/// git left would fail every commit after it: the worker's nudges went by uncommitted
/// until it ran out of them (the chaos night, seed 27). The daemon that restarts claude
/// removes a lock no living git holds.
#[test]
fn claude_killed_mid_commit_leaves_no_index_lock_behind() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "sh touch \"$(git rev-parse --git-dir)/index.lock\"; crash",
        "write a.txt; commit add a.txt",
    ]);
    let run = env.leash(&["--json", "loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(!env.repo.join(".git/index.lock").exists());
    assert!(
        notices(&env).iter().any(|n| n.contains("index.lock")),
        "{:#?}",
        notices(&env)
    );
}

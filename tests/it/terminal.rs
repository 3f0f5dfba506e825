//! What a person at a terminal sees: permission prompts, the spinner, colors; and that
//! none of it reaches scripts. Driven through a real pseudo-terminal.

use std::time::Duration;

use crate::support::Env;
use crate::support::pty::{Pty, strip_ansi};

const DOWN: &str = "\x1b[B";
const ENTER: &str = "\r";

fn on_pty(env: &Env, args: &[&str]) -> Pty {
    Pty::spawn(env.command(args))
}

#[test]
fn tool_requests_are_asked_at_the_terminal() {
    let env = Env::new();
    env.ok(&["session", "start", "--interactive-permissions"]);

    // Allow once.
    let mut pty = on_pty(&env, &["session", "send", "[[ask Bash]]"]);
    pty.wait_for("Allow Bash?", Duration::from_secs(20));
    assert!(
        pty.text().contains("claude wants to use Bash"),
        "{}",
        pty.text()
    );
    pty.type_keys(ENTER);
    assert!(pty.wait(Duration::from_secs(20)).success());
    assert!(pty.text().contains("permission: allow"), "{}", pty.text());

    // Deny, with a reason for claude.
    let mut pty = on_pty(&env, &["session", "send", "[[ask Bash]]"]);
    pty.wait_for("Allow Bash?", Duration::from_secs(20));
    pty.type_keys(DOWN);
    pty.type_keys(DOWN);
    pty.type_keys(ENTER);
    pty.wait_for("Reason for claude", Duration::from_secs(20));
    pty.type_keys("not on main");
    pty.type_keys(ENTER);
    assert!(pty.wait(Duration::from_secs(20)).success());
    assert!(
        pty.text().contains("permission: deny (not on main)"),
        "{}",
        pty.text()
    );

    // Allow always: later requests for the tool are approved without asking, even
    // with no one attached.
    let mut pty = on_pty(&env, &["session", "send", "[[ask Bash]]"]);
    pty.wait_for("Allow Bash?", Duration::from_secs(20));
    pty.type_keys(DOWN);
    pty.type_keys(ENTER);
    assert!(pty.wait(Duration::from_secs(20)).success());
    let unattended = env.ok(&["session", "send", "[[ask Bash]]"]);
    assert_eq!(unattended.stdout, "permission: allow\n");
}

#[test]
fn with_no_one_attached_the_policy_answers() {
    let env = Env::new();
    env.ok(&[
        "session",
        "start",
        "--interactive-permissions",
        "--allow-tool",
        "Read",
    ]);
    let denied = env.ok(&["session", "send", "[[ask Bash]]"]);
    assert!(denied.stdout.starts_with("permission: deny"), "{denied:?}");
    assert!(
        denied.stdout.contains("--allow-tool Bash"),
        "the denial says how to allow: {denied:?}"
    );
    assert!(
        denied.stderr.contains("denied Bash: no one is attached"),
        "{denied:?}"
    );
    let allowed = env.ok(&["session", "send", "[[ask Read]]"]);
    assert_eq!(allowed.stdout, "permission: allow\n");
}

#[test]
fn a_person_who_never_answers_gets_a_no_within_the_bound() {
    let mut env = Env::new();
    env.set("LEASH_PERMISSION_TIMEOUT", "1s");
    env.ok(&["session", "start", "--interactive-permissions"]);
    let mut pty = on_pty(&env, &["session", "send", "[[ask Bash]]"]);
    pty.wait_for("Allow Bash?", Duration::from_secs(20));
    // Nobody types. The daemon answers for them, and the turn ends.
    crate::support::wait_until("the turn to end", Duration::from_secs(20), &mut || {
        env.events().iter().any(|e| e["type"] == "turn_ended")
    });
    let ended = env
        .events()
        .into_iter()
        .find(|e| e["type"] == "turn_ended")
        .unwrap();
    assert_eq!(
        ended["outcome"]["result"],
        "permission: deny (leash: no answer within 1.0 s)"
    );
    pty.type_keys(ENTER);
    let _ = pty.wait(Duration::from_secs(20));
}

#[test]
fn a_long_turn_shows_a_spinner_that_leaves_the_text_intact() {
    let mut env = Env::new();
    env.unset("NO_COLOR");
    env.ok(&["session", "start"]);
    let mut pty = on_pty(&env, &["session", "send", "[[stream 8 250]]"]);
    pty.wait_for("chunk 3", Duration::from_secs(20));
    let worker = env.worker_name();
    // The spinner names the worker, the phase and the model claude reported.
    assert!(
        pty.text()
            .contains(&format!("{worker} · user · claude-sonnet-5-5")),
        "{}",
        pty.raw()
    );
    assert!(pty.wait(Duration::from_secs(20)).success());
    let lines: Vec<String> = pty
        .text()
        .split(['\r', '\n'])
        .map(str::trim)
        .map(str::to_string)
        .collect();
    for i in 0..8 {
        assert!(
            lines.contains(&format!("chunk {i}")),
            "chunk {i} garbled:\n{}",
            pty.text()
        );
    }
    assert!(
        pty.raw().contains('\u{1b}'),
        "drawn with escape sequences on a terminal"
    );
}

#[test]
fn scripts_get_no_spinner_no_colors_and_no_prompts() {
    let mut env = Env::new();
    env.unset("NO_COLOR");
    env.ok(&["session", "start", "--interactive-permissions"]);
    let piped = env.ok(&["session", "send", "[[stream 3 200]] [[ask Bash]]"]);
    assert!(
        !piped.stdout.contains('\u{1b}') && !piped.stderr.contains('\u{1b}'),
        "{piped:?}"
    );
    assert!(
        piped.stdout.contains("permission: deny"),
        "no one to ask, so the policy answered"
    );
    // --json on a terminal: still plain JSON lines.
    let mut pty = on_pty(&env, &["session", "send", "--json", "[[stream 3 200]]"]);
    assert!(pty.wait(Duration::from_secs(20)).success());
    for line in pty.raw().lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line.trim())
            .unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
}

#[test]
fn colors_only_on_terminals_and_never_with_no_color() {
    let mut env = Env::new();
    env.unset("NO_COLOR");
    let mut pty = on_pty(&env, &["session", "status"]);
    assert_eq!(pty.wait(Duration::from_secs(20)).code(), Some(3));
    assert!(
        pty.raw().contains("\u{1b}["),
        "an error in color on a terminal: {:?}",
        pty.raw()
    );
    assert!(strip_ansi(&pty.raw()).contains("leash: error: worker"));

    env.set("NO_COLOR", "1");
    let mut pty = on_pty(&env, &["session", "status"]);
    assert_eq!(pty.wait(Duration::from_secs(20)).code(), Some(3));
    assert!(!pty.raw().contains("\u{1b}["), "NO_COLOR: {:?}", pty.raw());
}

#[test]
fn step_mode_asks_before_each_phase() {
    let env = Env::new();
    env.script(&["reply the plan"]);
    let mut pty = on_pty(&env, &["loop", "--step", "--task", "t"]);
    pty.wait_for("plan the task on opus. Go on?", Duration::from_secs(20));
    pty.type_keys("y");
    pty.wait_for("implement on sonnet. Go on?", Duration::from_secs(30));
    pty.type_keys("n");
    assert_eq!(pty.wait(Duration::from_secs(20)).code(), Some(130));
    assert!(
        pty.text().contains("`leash loop` resumes here"),
        "{}",
        pty.text()
    );
    assert_eq!(env.turns().len(), 1, "only the plan ran");
}

#[test]
fn session_list_watch_redraws_a_phase_change_as_it_happens() {
    let env = Env::worker();
    env.script(&["sleep 1500; reply 1. watch it"]);
    env.ok(&["session", "start"]);
    let mut pty = Pty::spawn(env.command(&["session", "list", "--watch"]));
    pty.wait_for("q quits", Duration::from_secs(10));
    pty.wait_for("idle", Duration::from_secs(10));

    let plan = env.spawn(&["plan", "--task", "Watch me"]);
    env.wait_until("the plan turn to reach claude", || !env.turns().is_empty());
    pty.wait_for("planning", Duration::from_secs(1));
    pty.wait_for("plan turn", Duration::from_secs(1));
    let plan = crate::support::finish(plan, Duration::from_secs(20));
    assert_eq!(plan.code(), 0, "{plan:?}");
    pty.wait_for("planned", Duration::from_secs(1));
    pty.wait_for("Watch me", Duration::from_secs(1));

    pty.type_keys("q");
    assert!(pty.wait(Duration::from_secs(5)).success());
    let raw = pty.raw();
    assert!(
        raw.trim_end().ends_with("\u{1b}[?25h"),
        "the cursor is back: {:?}",
        &raw[raw.len().saturating_sub(40)..]
    );

    // Off a terminal it prints the list once, and says so.
    let once = env.ok(&["session", "list", "--watch"]);
    assert!(once.stdout.starts_with("WORKER"), "{once:?}");
    assert!(once.stderr.contains("not a terminal"), "{once:?}");
}

/// A daemon that takes connections but never answers holds back its own row only: the
/// others are drawn, and `q` quits, well within the 3 s a status may take.
#[test]
fn session_list_watch_is_not_held_up_by_a_daemon_that_never_answers() {
    let env = Env::worker();
    env.ok(&["session", "start"]);
    std::fs::create_dir_all(&env.runtime).unwrap();
    let _hung = std::os::unix::net::UnixListener::bind(env.runtime.join("aaa-hung.sock")).unwrap();
    let mut pty = Pty::spawn(env.command(&["session", "list", "--watch"]));
    pty.wait_for("idle", Duration::from_secs(2));
    pty.type_keys("q");
    assert!(pty.wait(Duration::from_secs(2)).success(), "{}", pty.text());
}

/// A step already running when the watch opens shows what it is and since when.
#[test]
fn session_list_watch_shows_a_step_that_began_before_it_opened() {
    let env = Env::worker();
    env.script(&["sleep 2500; reply 1. watch it"]);
    let plan = env.spawn(&["plan", "--task", "Watch me"]);
    env.wait_until("the plan turn to reach claude", || !env.turns().is_empty());
    let mut pty = Pty::spawn(env.command(&["session", "list", "--watch"]));
    pty.wait_for("plan turn", Duration::from_secs(2));
    pty.wait_for("0:0", Duration::from_secs(2));
    pty.type_keys("q");
    assert!(pty.wait(Duration::from_secs(5)).success());
    let plan = crate::support::finish(plan, Duration::from_secs(20));
    assert_eq!(plan.code(), 0, "{plan:?}");
}

/// Two workers: `aaa` idle after a turn that ran a tool, `zzz` busy in a long turn
/// (the client streaming it is returned, to finish).
fn one_idle_worker_and_one_busy() -> (Env, std::process::Child) {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for (worker, line) in [
        ("aaa", "sh echo checked; reply done"),
        ("zzz", "sleep 6000; reply later"),
    ] {
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, format!("{line}\n")).unwrap();
    }
    env.ok(&["--worker", "aaa", "session", "send", "run it"]);
    let busy = env.spawn(&["--worker", "zzz", "session", "send", "wait"]);
    env.wait_until("zzz's turn to reach claude", || {
        env.turns()
            .iter()
            .any(|t| t["script"] == "sleep 6000; reply later")
    });
    (env, busy)
}

/// The last frame of `session list --watch` that shows both workers, as drawn.
fn watch_frame(env: &Env) -> String {
    let mut pty = Pty::spawn(env.command(&["session", "list", "--watch"]));
    pty.wait_for("1 busy", Duration::from_secs(5));
    pty.wait_for("aaa", Duration::from_secs(5));
    pty.type_keys("q");
    assert!(pty.wait(Duration::from_secs(5)).success());
    pty.raw()
        .rsplit("\u{1b}[H\u{1b}[2J")
        .find(|f| f.contains("aaa") && f.contains("zzz"))
        .expect("a frame with both workers")
        .to_string()
}

/// The watch lists busy workers first (none hides below an idle one), and an idle
/// worker shows no DOING and no ELAPSED left over from its last turn.
#[test]
fn session_list_watch_puts_busy_workers_first_and_forgets_an_idle_one_s_tool() {
    let (env, busy) = one_idle_worker_and_one_busy();
    let frame = strip_ansi(&watch_frame(&env));
    let lines: Vec<&str> = frame.lines().collect();
    let at = |name: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {frame}"))
    };
    assert!(
        lines[0].starts_with("leash: 2 worker(s), 1 busy"),
        "{frame}"
    );
    assert!(at("zzz") < at("aaa"), "busy first:\n{frame}");
    let idle: Vec<&str> = lines[at("aaa")].split_whitespace().collect();
    assert_eq!(
        &idle[1..5],
        ["idle", "-", "-", "-"],
        "no stale DOING or ELAPSED:\n{frame}"
    );
    crate::support::finish(busy, Duration::from_secs(20));
}

/// The watch colours a worker's line by its state (busy yellow here, idle as it is),
/// and not at all with NO_COLOR.
#[test]
fn session_list_watch_colours_a_busy_worker_and_not_with_no_color() {
    let (mut env, busy) = one_idle_worker_and_one_busy();
    let plain = watch_frame(&env);
    assert!(!plain.contains("\u{1b}[33m"), "NO_COLOR: {plain:?}");
    env.unset("NO_COLOR");
    let coloured = watch_frame(&env);
    let line_of = |name: &str| {
        coloured
            .split("\r\n")
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {coloured:?}"))
            .to_string()
    };
    assert!(
        line_of("zzz").starts_with("\u{1b}[33m"),
        "busy is yellow: {coloured:?}"
    );
    assert!(
        line_of("aaa").starts_with("aaa"),
        "idle as it is: {coloured:?}"
    );
    crate::support::finish(busy, Duration::from_secs(20));
}

/// While a check runs, the spinner names it, not the turn before it.
#[test]
fn the_spinner_names_the_check_that_runs() {
    let env = Env::worker();
    env.script(&["reply 1. write a.txt", "write a.txt; commit add a.txt"]);
    let mut pty = on_pty(
        &env,
        &[
            "loop",
            "--check",
            "sleep 3 && test -f a.txt",
            "--task",
            "Add a.txt",
        ],
    );
    pty.wait_for("check: sleep 3", Duration::from_secs(20));
    assert!(pty.wait(Duration::from_secs(30)).success(), "{}", pty.raw());
}

//! The command line around the session: doctor, config, completions, quiet and verbose.

use std::os::unix::net::UnixListener;

use crate::support::Env;

#[test]
fn doctor_passes_a_healthy_setup_and_never_prints_secrets() {
    let mut env = Env::new();
    env.set("ANTHROPIC_API_KEY", "sk-ant-very-secret-123");
    env.ok(&["session", "start"]);
    let run = env.ok(&["doctor"]);
    for check in [
        "claude",
        "runtime dir",
        "state dir",
        "config",
        "workers",
        "repository",
        "environment",
    ] {
        assert!(
            run.stdout.contains(&format!("pass  {check}")),
            "{check}: {run:?}"
        );
    }
    assert!(
        run.stdout.contains("2.1.332-fake"),
        "claude's version: {run:?}"
    );
    assert!(run.stdout.contains("1 running"), "{run:?}");
    assert!(
        run.stdout.contains("ANTHROPIC_API_KEY"),
        "names are listed: {run:?}"
    );
    assert!(
        !run.stdout.contains("sk-ant-very-secret-123"),
        "values never are: {run:?}"
    );
    let json = env.ok(&["doctor", "--json"]);
    assert!(
        json.json_lines().iter().all(|c| c["status"] == "pass"),
        "{json:?}"
    );
}

#[test]
fn doctor_fails_with_the_fix_when_claude_is_missing_and_warns_of_stale_sockets() {
    let mut env = Env::new();
    env.set("LEASH_CLAUDE", "/nowhere/claude");
    std::fs::create_dir_all(&env.runtime).unwrap();
    std::fs::set_permissions(
        &env.runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // A socket nobody serves: what a killed daemon leaves.
    drop(UnixListener::bind(env.runtime.join("ghost.sock")).unwrap());
    let run = env.leash(&["doctor"]);
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stdout.contains("fail  claude"), "{run:?}");
    assert!(
        run.stdout
            .contains("fix: npm install -g @anthropic-ai/claude-code"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("warn  socket") && run.stdout.contains("ghost.sock is stale"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("--worker ghost session start"),
        "{run:?}"
    );
}

#[test]
fn doctor_warns_of_a_claude_older_than_leash_supports() {
    let mut env = Env::new();
    let old = env.dir.path().join("old-claude");
    std::fs::write(&old, "#!/bin/sh\necho '2.1.100 (Claude Code)'\n").unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.set("LEASH_CLAUDE", &old.display().to_string());
    let run = env.leash(&["doctor"]);
    assert_eq!(run.code(), 0, "a warning, not a failure: {run:?}");
    assert!(
        run.stdout.contains("warn  claude")
            && run.stdout.contains(
                "(2.1.100 (Claude Code)) is older than 2.1.110, the oldest claude leash supports"
            ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("fix: npm install -g @anthropic-ai/claude-code@latest"),
        "{run:?}"
    );
}

#[test]
fn config_shows_each_value_and_where_it_came_from() {
    let mut env = Env::new();
    std::fs::write(
        env.repo.join(".leash.toml"),
        "implement_model = \"haiku\"\nmax_nudges = 2\nplan_model = \"sonnet\"\n",
    )
    .unwrap();
    env.set("LEASH_PLAN_MODEL", "opus");
    let run = env.ok(&["config", "--json"]);
    let rows = run.json_lines();
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap().clone();
    assert_eq!(row("implement_model")["value"], "haiku");
    assert!(
        row("implement_model")["source"]
            .as_str()
            .unwrap()
            .ends_with(".leash.toml")
    );
    assert_eq!(row("plan_model")["value"], "opus");
    assert_eq!(row("plan_model")["source"], "env LEASH_PLAN_MODEL");
    assert_eq!(row("nudge_backoff")["source"], "default");
    let human = env.ok(&["config"]);
    assert!(
        human.stdout.contains("config file: ") && human.stdout.contains(".leash.toml"),
        "{human:?}"
    );

    // The layers reach the worker: the file's cap, beaten by a flag.
    env.set("LEASH_NUDGE_BACKOFF", "10ms");
    env.script(&["reply plan", "reply no", "reply no", "reply no"]);
    assert_eq!(env.leash(&["loop", "--task", "t"]).code(), 10);
    assert_eq!(env.turns().len(), 2 + 2, "max_nudges = 2 from the file");
    assert_eq!(
        env.turns()[1]["model"],
        "claude-haiku-5-5",
        "implement_model from the file"
    );
    assert_eq!(
        env.turns()[0]["model"],
        "claude-opus-5-5",
        "plan_model from the environment"
    );
}

#[test]
fn a_broken_config_file_is_one_clear_usage_error() {
    let env = Env::new();
    std::fs::write(env.repo.join(".leash.toml"), "max_nudgez = 2\n").unwrap();
    for args in [
        &["config"][..],
        &["plan", "--task", "t"],
        &["session", "start"],
    ] {
        let run = env.leash(args);
        assert_eq!(run.code(), 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("unknown key \"max_nudgez\""), "{run:?}");
    }
}

#[test]
fn completions_print_what_is_checked_in() {
    let env = Env::new();
    for (shell, file) in [
        ("bash", "leash.bash"),
        ("zsh", "_leash"),
        ("fish", "leash.fish"),
    ] {
        let run = env.ok(&["completions", shell]);
        let checked_in =
            std::fs::read_to_string(format!("{}/completions/{file}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        assert!(
            run.stdout == checked_in,
            "`leash completions {shell}` differs from completions/{file}"
        );
    }
    assert_eq!(env.leash(&["completions", "tcsh"]).code(), 2);
}

#[test]
fn quiet_and_verbose_work_the_same_everywhere() {
    let env = Env::new();
    let quiet = env.ok(&["-q", "session", "start"]);
    assert_eq!(quiet.stdout, "");
    assert_eq!(quiet.stderr, "");
    let again = env.ok(&["session", "start", "-q"]);
    assert_eq!(again.stderr, "", "`already running` is a note: {again:?}");
    // claude's stderr is a separate pipe: give it time to arrive within the turn.
    let verbose = env.ok(&["-v", "session", "send", "hi [[stderr 1]] [[sleep 300]]"]);
    assert!(
        verbose
            .stderr
            .contains("claude: fake-claude: stderr line 0"),
        "{verbose:?}"
    );
    assert!(verbose.stderr.contains("turn 1 done"), "{verbose:?}");
    let plain = env.ok(&["session", "send", "hi [[stderr 1]] [[sleep 300]]"]);
    assert!(!plain.stderr.contains("stderr line"), "{plain:?}");
    let stop = env.ok(&["session", "stop", "--quiet"]);
    assert_eq!(stop.stderr, "");
    // Errors are still reported when quiet.
    let err = env.leash(&["-q", "session", "interrupt"]);
    assert_eq!(err.code(), 3);
    assert!(err.stderr.contains("leash: error:"), "{err:?}");
    assert_eq!(
        env.leash(&["-q", "-v", "session", "status"]).code(),
        2,
        "quiet and verbose conflict"
    );
}

/// A task typed where `-` goes is told how to give it; `--help` shows the built-in
/// defaults (not setting names) and what `--check` does to the file's checks.
#[test]
fn a_task_without_its_flag_is_told_how_and_help_shows_the_defaults() {
    let env = Env::new();
    let run = env.leash(&["loop", "Add a flag"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("`--task \"Add a flag\"`"), "{run:?}");
    let help = env.ok(&["loop", "--help"]).stdout;
    for wanted in [
        "[default: 5]",
        "[default: opus]",
        "[default: sonnet]",
        "replace those of .leash.toml",
    ] {
        assert!(help.contains(wanted), "{wanted} in {help}");
    }
    let names: Vec<&str> = [
        "max_nudges",
        "plan_model",
        "implement_model",
        "checks",
        "review",
        "rescopes",
    ]
    .into_iter()
    .filter(|name| help.contains(&format!("[default: {name}]")))
    .collect();
    assert!(names.is_empty(), "setting names as defaults: {names:?}");
}

/// `config` keeps its columns aligned around a long value.
#[test]
fn config_aligns_its_columns_around_a_long_value() {
    let env = Env::new();
    std::fs::write(
        env.repo.join(".leash.toml"),
        "implement_model = \"claude-sonnet-4-5-20250929-with-a-name-longer-than-a-column\"\n",
    )
    .unwrap();
    let human = env.ok(&["config"]).stdout;
    let lines: Vec<&str> = human.lines().skip(1).collect();
    let source_at = lines[0].find("SOURCE").unwrap();
    for line in &lines[1..] {
        let (before, source) = line.split_at(source_at);
        assert!(
            before.ends_with("  ") && !source.starts_with(' '),
            "{human}"
        );
    }
}

//! leash's benchmarks: every figure is a median with min and max over repeated runs,
//! and every comparison is measured in the same run. `bench/run` runs this.
//!
//! Sections:
//! 1. turn overhead against the fake claude: leash, a direct pipe, a spawn per turn;
//! 2. client start-up: what a script or a git hook pays per command;
//! 3. event relay: a flood of events to a `--json` client and to `logs --follow`;
//! 4. footprint: the daemon's memory idle and after 1,000 turns, the binary's size;
//! 5. fleet: ten worktree workers through twelve tasks each, at once; their daemons'
//!    memory after the first task and after the twelfth, and the CPU time they use
//!    idle over a minute (`--idle-secs N` to change it);
//! 6. with the pinned real CLI installed (`cargo test --test it e2e` installs it): warm
//!    turns through leash against turns written straight into a claude started with
//!    leash's own command line, in alternate blocks, with where leash's share goes (the
//!    client's span against the daemon's log, the CPU of each process); a cold
//!    `claude -p --resume` spawn per turn; a model switch; all talking to the same fake
//!    Messages API on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use test_fakes::fake_api::FakeApi;
use test_fakes::real_cli;

const LEASH: &str = env!("CARGO_BIN_EXE_leash");

struct Figures {
    name: String,
    samples: Vec<Duration>,
}

impl Figures {
    fn median(&self) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[s.len() / 2]
    }
    fn min(&self) -> Duration {
        *self.samples.iter().min().unwrap()
    }
    fn max(&self) -> Duration {
        *self.samples.iter().max().unwrap()
    }
}

/// Paired samples `a - b`, turn by turn (each pair ran back to back, so the machine's
/// drift cancels): the median difference and its spread.
fn paired_difference(a: &Figures, b: &Figures) -> String {
    let mut diffs: Vec<f64> = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| (x.as_secs_f64() - y.as_secs_f64()) * 1000.0)
        .collect();
    diffs.sort_by(f64::total_cmp);
    let at = |p: f64| diffs[((diffs.len() - 1) as f64 * p).round() as usize];
    format!(
        "{:+.2} ms median of {} pairs (p25 {:+.2}, p75 {:+.2}; p10 {:+.2}, p90 {:+.2})",
        at(0.5),
        diffs.len(),
        at(0.25),
        at(0.75),
        at(0.1),
        at(0.9)
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn measure(name: &str, runs: usize, mut f: impl FnMut()) -> Figures {
    f(); // warm-up
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    Figures {
        name: name.to_string(),
        samples,
    }
}

/// Two things measured in alternating blocks of `block` turns, `runs` of each in all,
/// paired by their place in the block. Each block begins with an untimed turn, so a
/// timed turn follows one of its own kind, as turns do in use, never the other's: the
/// real CLI goes on working for a few milliseconds after its result, and that work
/// would land on whichever turn comes next (with alternate turns, always on leash's).
fn in_blocks(
    runs: usize,
    block: usize,
    (a_name, a): (&str, &mut dyn FnMut(bool)),
    (b_name, b): (&str, &mut dyn FnMut(bool)),
) -> (Figures, Figures) {
    let time = |f: &mut dyn FnMut(bool)| {
        let start = Instant::now();
        f(true);
        start.elapsed()
    };
    let (mut a_samples, mut b_samples) = (Vec::new(), Vec::new());
    while a_samples.len() < runs {
        let n = block.min(runs - a_samples.len());
        a(false);
        a_samples.extend((0..n).map(|_| time(a)));
        b(false);
        b_samples.extend((0..n).map(|_| time(b)));
    }
    let figures = |name: &str, samples| Figures {
        name: name.to_string(),
        samples,
    };
    (figures(a_name, a_samples), figures(b_name, b_samples))
}

/// Where a warm turn through leash spends its time beside claude's own: the client's
/// span of each timed turn, set against the daemon's event log (when the prompt went
/// to claude, when claude's result came back).
struct TurnSplit {
    log: PathBuf,
    /// The last turn in the log before these.
    before: u64,
    /// Each `leash session send` in order, one turn each: its start and end (Unix ms)
    /// when timed.
    sends: Vec<Option<(f64, f64)>>,
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

impl TurnSplit {
    fn new(bench: &Bench) -> TurnSplit {
        let log = bench.root.join("state/bench/events.jsonl");
        let before = TurnSplit::turns(&log).keys().last().copied().unwrap_or(0);
        TurnSplit {
            log,
            before,
            sends: Vec::new(),
        }
    }

    /// When each turn's prompt went to claude and when its result came back, Unix ms.
    /// The log's clock counts whole milliseconds; half of one is added to each reading
    /// so that the parts are not skewed by it.
    fn turns(log: &Path) -> std::collections::BTreeMap<u64, (f64, f64)> {
        let mut turns: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let (Some(turn), Some(ts)) = (event["turn"].as_u64(), event["ts"].as_f64()) else {
                continue;
            };
            let at = ts + 0.5;
            match event["type"].as_str() {
                Some("turn_started") => turns.entry(turn).or_default().0 = at,
                Some("claude") if event["msg"]["type"] == "result" => {
                    turns.entry(turn).or_default().1 = at;
                }
                _ => {}
            }
        }
        turns
    }

    /// One `leash session send`, its span kept when `timed`.
    fn send(&mut self, bench: &Bench, timed: bool) {
        let start = unix_ms();
        bench.leash(&["session", "send", "hi"]);
        self.sends.push(timed.then(|| (start, unix_ms())));
    }

    /// Per timed turn: client start to the prompt on claude's stdin, the prompt to
    /// claude's result, and the result to the client's exit (ms).
    fn parts(&self) -> Vec<[f64; 3]> {
        let turns = TurnSplit::turns(&self.log);
        (self.before + 1..)
            .zip(&self.sends)
            .filter_map(|(turn, span)| {
                let (start, end) = (*span)?;
                let (sent, result) = turns.get(&turn)?;
                Some([sent - start, result - sent, end - result])
            })
            .collect()
    }
}

/// The CPU time the bench's finished children used so far (the `leash` clients), ms.
fn children_cpu_ms() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// An isolated leash environment (HOME, state and runtime dirs, a work dir).
struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// Set for every leash and claude this bench starts.
    vars: Vec<(String, String)>,
}

impl Bench {
    /// Driving the fake claude.
    fn new() -> Bench {
        let mut bench = Bench::empty();
        let conversations = bench.root.join("conversations");
        bench.set(
            "LEASH_CLAUDE",
            &test_fakes::fake_claude().display().to_string(),
        );
        bench.set("FAKE_CLAUDE_HOME", &conversations.display().to_string());
        bench
    }

    /// Driving the real CLI `claude`, offline, against the fake API at `api_url`.
    fn real(claude: &Path, api_url: &str) -> Bench {
        let mut bench = Bench::empty();
        let tmp = bench.root.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        bench.set("LEASH_CLAUDE", &claude.display().to_string());
        for (key, value) in real_cli::offline_env(api_url, &tmp) {
            bench.set(key, &value);
        }
        bench
    }

    fn empty() -> Bench {
        let dir = tempfile::Builder::new().prefix("lb").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("repo")).unwrap();
        let mut bench = Bench {
            _dir: dir,
            vars: Vec::new(),
            root: root.clone(),
        };
        bench.set("LEASH_RUNTIME_DIR", &root.join("run").display().to_string());
        bench.set("LEASH_STATE_DIR", &root.join("state").display().to_string());
        bench.set("LEASH_WORKER", "bench");
        bench.set("HOME", &root.display().to_string());
        bench
    }

    fn set(&mut self, key: &str, value: &str) {
        self.vars.push((key.to_string(), value.to_string()));
    }

    /// `program` in the work dir with this bench's environment and none of the
    /// caller's claude settings.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        // With a directory of its own, a child of this static binary is forked (the
        // standard library cannot find posix_spawn's chdir here), and a fork costs
        // more the more this process holds: the fake API keeps every request, and
        // claude's requests grow with the conversation. Where the bench already works
        // in the directory, the child is spawned as cheaply as any shell does it.
        let repo = self.root.join("repo");
        if std::env::current_dir().ok() != Some(repo.clone()) {
            command.current_dir(repo);
        }
        for (key, _) in std::env::vars_os() {
            if real_cli::steers_claude(&key.to_string_lossy()) {
                command.env_remove(key);
            }
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    fn leash(&self, args: &[&str]) -> std::process::Output {
        self.run_ok(LEASH, args)
    }

    /// Runs `program` to its end; a failure ends the benchmark.
    fn run_ok(&self, program: &str, args: &[&str]) -> std::process::Output {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self
            .command(LEASH)
            .args(["session", "stop", "--all", "-q"])
            .output();
    }
}

/// The physical limit: one process writing turns straight into claude's stdin.
struct DirectPipe {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl DirectPipe {
    fn spawn(program: &Path, args: &[&str], home: &Path) -> DirectPipe {
        let mut command = Command::new(program);
        command.args(args).env("FAKE_CLAUDE_HOME", home);
        DirectPipe::start(command)
    }

    fn start(mut command: Command) -> DirectPipe {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        DirectPipe {
            child,
            stdin,
            stdout,
        }
    }

    fn turn(&mut self, text: &str) {
        let line = serde_json::json!({"type":"user","message":{"role":"user","content":text}});
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut buf = String::new();
        loop {
            buf.clear();
            assert!(
                self.stdout.read_line(&mut buf).unwrap() > 0,
                "claude exited"
            );
            if buf.starts_with("{\"type\":\"result\"") || buf.contains("\"type\":\"result\"") {
                return;
            }
        }
    }
}

impl Drop for DirectPipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in for `claude` that writes down the command line leash starts it with (each
/// argument ended by a NUL) and then becomes the real one: the direct pipe runs the very same
/// command line. (Reading it back from `/proc` fails where claude renames its process:
/// 2.1.110 does.)
fn recording_claude(bench: &Bench, claude: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = bench.root.join("claude-recording");
    let argv = bench.root.join("claude-argv");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--input-format*) printf '%s\\000' \"$@\" > '{}' ;; esac\nexec '{claude}' \"$@\"\n",
        argv.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, argv)
}

/// The command line leash started claude with, with `session` as its new conversation.
fn leash_claude_argv(recorded: &Path, claude: &str, session: &str) -> Vec<String> {
    let recorded = std::fs::read(recorded).expect("leash started claude through the wrapper");
    let mut argv = vec![claude.to_string()];
    argv.extend(
        recorded
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    let at = argv
        .iter()
        .position(|a| a == "--session-id" || a == "--resume")
        .expect("leash names the conversation");
    argv[at] = "--session-id".to_string();
    argv[at + 1] = session.to_string();
    argv
}

fn stream_json_args(session: &str) -> Vec<String> {
    [
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--session-id",
        session,
    ]
    .map(String::from)
    .to_vec()
}

fn print_table(rows: &[Figures]) {
    println!(
        "\n{:<50} {:>10} {:>10} {:>10}",
        "benchmark (ms)", "median", "min", "max"
    );
    for row in rows {
        println!(
            "{:<50} {:>10} {:>10} {:>10}",
            row.name,
            ms(row.median()),
            ms(row.min()),
            ms(row.max())
        );
    }
}

fn main() {
    let runs_flag: Option<usize> = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok());
    // `--only turn,relay` runs only those sections.
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |section: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|s| s == section))
    };
    if wanted("turn") {
        fake_claude_section(runs_flag.unwrap_or(20));
    }
    if wanted("startup") {
        startup_section(runs_flag.unwrap_or(30));
    }
    if wanted("relay") {
        relay_section(runs_flag.unwrap_or(5));
    }
    if wanted("footprint") {
        footprint_section();
    }
    if wanted("fleet") {
        let idle_secs = std::env::args()
            .skip_while(|a| a != "--idle-secs")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(60);
        fleet_section(idle_secs);
    }
    if wanted("land") {
        land_section();
    }
    if wanted("real") {
        for pin in [real_cli::NEWEST, real_cli::FLOOR] {
            real_claude_section(runs_flag.unwrap_or(10), pin);
        }
    }
}

/// What a script or a git hook pays per command, next to git itself and to starting
/// any process at all.
fn startup_section(runs: usize) {
    let bench = Bench::new();
    git_init(&bench.root.join("repo"));
    let mut rows = vec![
        measure("`true` (process start baseline)", runs, || {
            bench.run_ok("true", &[]);
        }),
        measure("`git rev-parse HEAD`", runs, || {
            bench.run_ok("git", &["rev-parse", "HEAD"]);
        }),
        measure("`leash session status`, no session", runs, || {
            let _ = bench.command(LEASH).args(["session", "status"]).output();
        }),
        measure("`leash nudge --no-wait`, no session (hook)", runs, || {
            bench.leash(&["nudge", "--no-wait", "--event", "post-commit"]);
        }),
    ];
    bench.leash(&["session", "start"]);
    rows.push(measure("`leash session status`, running", runs, || {
        bench.leash(&["session", "status"]);
    }));
    rows.push(measure(
        "`leash nudge --no-wait`, running (hook)",
        runs,
        || {
            bench.leash(&["nudge", "--no-wait", "--event", "post-commit"]);
        },
    ));
    print_table(&rows);
}

/// Events per second from claude to a `--json` client, and to a `logs --follow`
/// client at the same time.
fn relay_section(runs: usize) {
    const EVENTS: u64 = 100_000;
    const SETTLE: Duration = Duration::from_millis(200);
    let mut bench = Bench::new();
    // The flood is 42 MB of events: a follower on a busy machine may fall further
    // behind than the default 32 MiB and be dropped, by design; here it must not be.
    bench.set("LEASH_CLIENT_BUFFER", "256MiB");
    bench.leash(&["session", "start"]);
    let daemon = daemon_pid(&bench);
    let rss_before = rss_kib(daemon);
    let mut to_client = Vec::new();
    let mut to_follower = Vec::new();
    let mut rss_after = Vec::new();
    let prompt = format!("[[flood {EVENTS}]]");
    for _ in 0..runs {
        let follower = Follower::start(&bench);
        let started = Instant::now();
        bench.leash(&["session", "send", "--json", &prompt]);
        to_client.push(started.elapsed());
        to_follower.push(follower.until_turn_ended() - started);
        // The daemon hands the flood's memory back once its last reader has caught up,
        // a moment after that reader saw the turn's end.
        std::thread::sleep(SETTLE);
        rss_after.push(rss_kib(daemon).to_string());
    }
    let rate = |samples: &[Duration]| {
        let mut s = samples.to_vec();
        s.sort();
        EVENTS as f64 / s[s.len() / 2].as_secs_f64()
    };
    println!(
        "
event relay: {EVENTS} events from claude, median of {runs}"
    );
    println!(
        "  to a `--json` client:        {:>9.0} events/s ({} ms)",
        rate(&to_client),
        ms(median(&to_client))
    );
    println!(
        "  to `logs --follow` at once:  {:>9.0} events/s ({} ms)",
        rate(&to_follower),
        ms(median(&to_follower))
    );
    println!(
        "  daemon RSS: {rss_before} KiB before, after each flood: {} KiB",
        rss_after.join(", ")
    );
}

/// The daemon's memory idle and after many turns (it must not grow), and the size of
/// what is installed.
fn footprint_section() {
    let bench = Bench::new();
    bench.leash(&["session", "start"]);
    let daemon = daemon_pid(&bench);
    let idle = rss_kib(daemon);
    let mut after = Vec::new();
    for turns in 1..=1000 {
        bench.leash(&["session", "send", "hi"]);
        if turns % 250 == 0 {
            after.push((turns, rss_kib(daemon)));
        }
    }
    println!(
        "
footprint"
    );
    println!("  daemon RSS idle: {idle} KiB");
    for (turns, rss) in after {
        println!("  daemon RSS after {turns:>4} turns: {rss} KiB");
    }
    let size = std::fs::metadata(LEASH).map(|m| m.len()).unwrap_or(0);
    println!(
        "  leash binary: {:.1} MiB ({LEASH})",
        size as f64 / (1 << 20) as f64
    );
}

/// Many workers share the machine: what their daemons hold after a night's tasks, and
/// what they cost while nothing happens (no polling: an idle daemon should use no CPU).
fn fleet_section(idle_secs: u64) {
    const WORKERS: usize = 10;
    const TASKS: usize = 12;
    let mut bench = Bench::new();
    git_init(&bench.root.join("repo"));
    let scripts = bench.root.join("script-%w.txt");
    bench.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    bench.set("LEASH_NUDGE_BACKOFF", "10ms");
    for (key, value) in [("NAME", "b"), ("EMAIL", "b@b")] {
        bench.set(&format!("GIT_AUTHOR_{key}"), value);
        bench.set(&format!("GIT_COMMITTER_{key}"), value);
    }
    let workers: Vec<String> = (0..WORKERS).map(|i| format!("f{i:02}")).collect();
    for worker in &workers {
        let lines: Vec<String> = (1..=TASKS)
            .flat_map(|t| {
                [
                    format!("reply 1. write t{t}.txt"),
                    format!("write t{t}.txt; commit task {t}"),
                ]
            })
            .collect();
        let path = bench.root.join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    let started = Instant::now();
    let after_first: Vec<(u32, u64)> = std::thread::scope(|night| {
        let runs: Vec<_> = workers
            .iter()
            .map(|worker| {
                let bench = &bench;
                night.spawn(move || {
                    let mut first = (0, 0);
                    for t in 1..=TASKS {
                        let task = format!("task {t}");
                        bench.leash(&["--worker", worker, "loop", "--worktree", "--task", &task]);
                        if t == 1 {
                            let pid = worker_daemon(bench, worker);
                            first = (pid, rss_kib(pid));
                        }
                    }
                    first
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let night = started.elapsed();
    let after_last: Vec<u64> = after_first.iter().map(|(pid, _)| rss_kib(*pid)).collect();
    let before: Vec<(u64, u64)> = after_first.iter().map(|(pid, _)| cpu_use(*pid)).collect();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle: Vec<(u64, u64)> = after_first
        .iter()
        .zip(&before)
        .map(|((pid, _), (ns, wakes))| {
            let (ns_now, wakes_now) = cpu_use(*pid);
            (ns_now.saturating_sub(*ns), wakes_now.saturating_sub(*wakes))
        })
        .collect();
    let kib = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        format!("median {} KiB, max {} KiB", v[v.len() / 2], v[v.len() - 1])
    };
    let first: Vec<u64> = after_first.iter().map(|(_, rss)| *rss).collect();
    println!(
        "
fleet: {WORKERS} worktree workers, {TASKS} tasks each, at once ({} tasks in {:.1} s)",
        WORKERS * TASKS,
        night.as_secs_f64()
    );
    println!("  daemon RSS after  1 task:  {}", kib(&first));
    println!("  daemon RSS after {TASKS} tasks: {}", kib(&after_last));
    println!(
        "  the {WORKERS} daemons idle for {idle_secs} s: {:.3} ms of CPU in all, {} wake-ups in all (per daemon: {:?} µs)",
        idle.iter().map(|(ns, _)| *ns).sum::<u64>() as f64 / 1e6,
        idle.iter().map(|(_, wakes)| *wakes).sum::<u64>(),
        idle.iter().map(|(ns, _)| ns / 1000).collect::<Vec<_>>()
    );
}

/// `leash land`: eight conflict-free branches whose landing check takes a second, checked
/// on speculative stacks eight at once, against one by one.
fn land_section() {
    const WORKERS: usize = 8;
    println!("\nland: {WORKERS} conflict-free branches, a 1 s landing check each");
    for parallel in [8, 1] {
        let mut bench = Bench::new();
        git_init(&bench.root.join("repo"));
        let scripts = bench.root.join("script-%w.txt");
        bench.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
        for (key, value) in [("NAME", "b"), ("EMAIL", "b@b")] {
            bench.set(&format!("GIT_AUTHOR_{key}"), value);
            bench.set(&format!("GIT_COMMITTER_{key}"), value);
        }
        let workers: Vec<String> = (0..WORKERS).map(|i| format!("l{i}")).collect();
        for worker in &workers {
            let script = format!(
                "reply 1. write {worker}.txt\nwrite {worker}.txt; commit add {worker}.txt\n"
            );
            std::fs::write(bench.root.join(format!("script-{worker}.txt")), script).unwrap();
        }
        std::thread::scope(|night| {
            for worker in &workers {
                let bench = &bench;
                night.spawn(move || {
                    let check = format!("sleep 1; test -f {worker}.txt");
                    let task = format!("add {worker}.txt");
                    bench.leash(&[
                        "--worker",
                        worker,
                        "loop",
                        "--worktree",
                        "--check",
                        &check,
                        "--task",
                        &task,
                    ]);
                });
            }
        });
        let started = Instant::now();
        let n = parallel.to_string();
        bench.leash(&["land", "--all", "--parallel", &n]);
        println!(
            "  --parallel {parallel}: {:.2} s of wall time",
            started.elapsed().as_secs_f64()
        );
    }
}

fn worker_daemon(bench: &Bench, worker: &str) -> u32 {
    let out = bench.leash(&["--worker", worker, "session", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["daemon_pid"].as_u64().unwrap() as u32
}

/// The CPU time all threads of a process used so far (ns, from the scheduler's own
/// accounting, not the 10 ms ticks of `stat`) and how often they were woken.
fn cpu_use(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for thread in threads.flatten() {
        let schedstat =
            std::fs::read_to_string(thread.path().join("schedstat")).unwrap_or_default();
        let mut fields = schedstat
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        total.0 += fields.next().unwrap_or(0);
        // The third field: timeslices run on this CPU, one per wake-up when idle.
        total.1 += fields.nth(1).unwrap_or(0);
    }
    total
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn session_status(bench: &Bench) -> serde_json::Value {
    let out = bench.leash(&["session", "status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn daemon_pid(bench: &Bench) -> u32 {
    let out = bench.leash(&["session", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["daemon_pid"].as_u64().unwrap() as u32
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn git_init(dir: &Path) {
    for args in [
        &["init", "-q"][..],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// A `leash session logs --follow --json` client, read as fast as it writes.
struct Follower {
    child: Child,
    ended: std::sync::mpsc::Receiver<Instant>,
}

impl Follower {
    fn start(bench: &Bench) -> Follower {
        let mut child = bench
            .command(LEASH)
            .args(["session", "logs", "--follow", "--json", "-n", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if line.starts_with("{\"type\":\"turn_ended\"") {
                    let _ = tx.send(Instant::now());
                }
            }
        });
        // Following starts with the log's last line; wait for it.
        std::thread::sleep(Duration::from_millis(200));
        Follower { child, ended }
    }

    fn until_turn_ended(self) -> Instant {
        let at = self
            .ended
            .recv_timeout(Duration::from_secs(60))
            .expect("the follower saw the turn end");
        let mut child = self.child;
        let _ = child.kill();
        let _ = child.wait();
        at
    }
}

/// Warm turns through leash and turns straight into `direct`, `pairs` of each in
/// alternate blocks; and where leash's share of its turns goes (a paragraph to print).
fn leash_and_direct(
    bench: &Bench,
    direct: &mut DirectPipe,
    pairs: usize,
    (through_name, straight_name): (&str, &str),
    claude: &str,
) -> (Figures, Figures, String) {
    std::env::set_current_dir(bench.root.join("repo")).unwrap();
    let status = session_status(bench);
    let pid = |key: &str| status[key].as_u64().expect("claude runs") as u32;
    let (daemon, leash_claude, direct_claude) =
        (pid("daemon_pid"), pid("claude_pid"), direct.child.id());
    let mut split = TurnSplit::new(bench);
    let cpu_before = (
        children_cpu_ms(),
        cpu_use(daemon).0,
        cpu_use(leash_claude).0,
        cpu_use(direct_claude).0,
    );
    let mut direct_turns = 0u32;
    let (through, straight) = in_blocks(
        pairs,
        10,
        (through_name, &mut |timed| split.send(bench, timed)),
        (straight_name, &mut |_| {
            direct.turn("hi");
            direct_turns += 1;
        }),
    );
    // claude's work after its last result, counted with the turn it belongs to.
    std::thread::sleep(Duration::from_millis(300));
    let per_turn = |ns: u64, turns: u32| ns as f64 / 1e6 / f64::from(turns);
    let sends = split.sends.len() as u32;
    let client_cpu = (children_cpu_ms() - cpu_before.0) / f64::from(sends);
    let daemon_cpu = per_turn(cpu_use(daemon).0 - cpu_before.1, sends);
    let leash_claude_cpu = per_turn(cpu_use(leash_claude).0 - cpu_before.2, sends);
    let direct_claude_cpu = per_turn(cpu_use(direct_claude).0 - cpu_before.3, direct_turns);
    let parts = split.parts();
    let part = |i: usize| median_of(parts.iter().map(|p| p[i]).collect());
    let claude_in_leash: Vec<f64> = parts
        .iter()
        .zip(&straight.samples)
        .map(|(p, direct)| p[1] - direct.as_secs_f64() * 1000.0)
        .collect();
    let share = format!(
        "where leash's share goes, {claude} (medians of {} turns; the daemon's log counts \
         whole ms):\n\
         \x20 client start to the prompt on claude's stdin:      {:>6.2} ms\n\
         \x20 claude's own turn, in leash minus direct (paired): {:>+6.2} ms\n\
         \x20 claude's result to the client's exit:              {:>6.2} ms\n\
         \x20 CPU per turn: client {client_cpu:.2} ms, daemon {daemon_cpu:.2} ms; \
         claude {leash_claude_cpu:.2} ms in leash, {direct_claude_cpu:.2} ms direct",
        parts.len(),
        part(0),
        median_of(claude_in_leash),
        part(2),
    );
    (through, straight, share)
}

/// leash's own cost: a turn through leash, straight into a pipe, and with a fresh
/// process per turn, all against the fake claude.
fn fake_claude_section(runs: usize) {
    let bench = Bench::new();
    bench.leash(&["session", "start"]);
    let home = bench.root.join("direct");
    let args = stream_json_args("00000000-0000-4000-8000-000000000001");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut direct = DirectPipe::spawn(&test_fakes::fake_claude(), &args, &home);
    // Turns through leash and straight into claude, in alternate short blocks: both see
    // the same machine, so its drift (two cores, shared with whatever else runs) cancels
    // out.
    let (through, straight, share) = leash_and_direct(
        &bench,
        &mut direct,
        runs,
        (
            "warm `leash session send` (fake claude)",
            "direct pipe turn (fake claude)",
        ),
        "fake claude",
    );
    drop(direct);
    let mut rows = vec![through, straight];

    let mut n = 1000u32;
    rows.push(measure("spawn claude per turn (fake claude)", runs, || {
        n += 1;
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let args = stream_json_args(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut once = DirectPipe::spawn(&test_fakes::fake_claude(), &args, &home);
        once.turn("hi");
    }));

    print_table(&rows);
    let overhead = rows[0].median().saturating_sub(rows[1].median());
    println!(
        "\nleash overhead over the direct pipe: {} ms (median, {runs} runs); paired: {}",
        ms(overhead),
        paired_difference(&rows[0], &rows[1])
    );
    println!("{share}");
}

/// What leash is for: a warm turn in a long-lived claude against a cold
/// `claude -p --resume` spawn per turn, both with the real CLI and the same fake API,
/// on each pinned version.
fn real_claude_section(runs: usize, pin: real_cli::Pin) {
    let version = pin.pinned_version();
    let claude = match pin.installed() {
        Ok(claude) => claude,
        Err(why) => {
            println!(
                "\nreal claude CLI {version}: skipped, it is not installed ({why}); \
                 `cargo test --test it e2e` installs it into {}",
                pin.install_dir().display()
            );
            return;
        }
    };
    println!("\nthe real claude CLI {version}:");
    let claude = claude.display().to_string();
    let api = FakeApi::start([]);
    let mut bench = Bench::real(Path::new(&claude), &api.url());
    let (recording, recorded) = recording_claude(&bench, &claude);
    bench.set("LEASH_CLAUDE", &recording.display().to_string());
    bench.leash(&["session", "start"]);

    let label = |what: &str| format!("{what} (claude {version})");
    // The direct pipe runs claude exactly as leash does (its system prompt, tools and
    // permission flags), so the difference is what leash adds, not what it asks for.
    let argv = leash_claude_argv(&recorded, &claude, "00000000-0000-4000-8000-00000000d1ec");
    let mut direct = bench.command(&argv[0]);
    direct.args(&argv[1..]);
    let mut direct = DirectPipe::start(direct);
    let (through, straight, share) = leash_and_direct(
        &bench,
        &mut direct,
        runs.max(100),
        (
            &label("warm `leash session send`"),
            &label("direct pipe turn"),
        ),
        &format!("claude {version}"),
    );
    drop(direct);
    let overhead = paired_difference(&through, &straight);
    let mut rows = vec![through, straight];

    // The conversation each cold spawn resumes; the first run (untimed) creates it.
    let session = "00000000-0000-4000-8000-00000000c01d";
    let mut created = false;
    rows.push(measure(
        &label("cold `claude -p --resume` per turn"),
        runs,
        || {
            let how = if created { "--resume" } else { "--session-id" };
            created = true;
            bench.run_ok(
                &claude,
                &["-p", "--output-format", "json", how, session, "hi"],
            );
        },
    ));

    // A model switch: `session model` then the first turn answered on the new model.
    let mut models = ["opus", "sonnet"].iter().cycle();
    rows.push(measure(
        &label("`session model M` + first turn on M"),
        runs,
        || {
            let model = models.next().unwrap();
            bench.leash(&["session", "model", model]);
            bench.leash(&["session", "send", "hi"]);
        },
    ));

    print_table(&rows);
    println!("\nleash over the direct pipe, claude {version}: {overhead}");
    println!("{share}");
    let (warm, cold) = (rows[0].median(), rows[2].median());
    println!(
        "\ncold spawn per turn / warm turn through leash: {} ms / {} ms = {:.1}x (medians of {runs}, {} API requests)",
        ms(cold),
        ms(warm),
        cold.as_secs_f64() / warm.as_secs_f64(),
        api.turn_requests().len()
    );
}

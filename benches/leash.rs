//! leash's benchmarks: every figure is a median with min and max over repeated runs,
//! and every comparison is measured in the same run. `bench/run` runs this.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const LEASH: &str = env!("CARGO_BIN_EXE_leash");
const FAKE_CLAUDE: &str = env!("CARGO_BIN_EXE_fake-claude");

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

/// An isolated leash environment driving the fake claude.
struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::Builder::new().prefix("lb").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("repo")).unwrap();
        Bench { _dir: dir, root }
    }

    fn leash(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(LEASH)
            .args(args)
            .current_dir(self.root.join("repo"))
            .env("LEASH_RUNTIME_DIR", self.root.join("run"))
            .env("LEASH_STATE_DIR", self.root.join("state"))
            .env("LEASH_CLAUDE", FAKE_CLAUDE)
            .env("LEASH_WORKER", "bench")
            .env("HOME", &self.root)
            .env("FAKE_CLAUDE_HOME", self.root.join("conversations"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "leash {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new(LEASH)
            .args(["session", "stop", "--all", "-q"])
            .env("LEASH_RUNTIME_DIR", self.root.join("run"))
            .env("LEASH_STATE_DIR", self.root.join("state"))
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
    fn spawn(program: &str, args: &[&str], home: &Path) -> DirectPipe {
        let mut child = Command::new(program)
            .args(args)
            .env("FAKE_CLAUDE_HOME", home)
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

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let bench = Bench::new();
    bench.leash(&["session", "start"]);

    let mut rows = Vec::new();
    rows.push(measure(
        "warm `leash session send` (fake claude)",
        runs,
        || {
            bench.leash(&["session", "send", "hi"]);
        },
    ));

    let home = bench.root.join("direct");
    let args = stream_json_args("00000000-0000-4000-8000-000000000001");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut direct = DirectPipe::spawn(FAKE_CLAUDE, &args, &home);
    rows.push(measure("direct pipe turn (fake claude)", runs, || {
        direct.turn("hi")
    }));
    drop(direct);

    let mut n = 1000u32;
    rows.push(measure("spawn claude per turn (fake claude)", runs, || {
        n += 1;
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let args = stream_json_args(&id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut once = DirectPipe::spawn(FAKE_CLAUDE, &args, &home);
        once.turn("hi");
    }));

    println!(
        "\n{:<44} {:>10} {:>10} {:>10}",
        "benchmark (ms)", "median", "min", "max"
    );
    for row in &rows {
        println!(
            "{:<44} {:>10} {:>10} {:>10}",
            row.name,
            ms(row.median()),
            ms(row.min()),
            ms(row.max())
        );
    }
    let overhead = rows[0].median().saturating_sub(rows[1].median());
    println!(
        "\nleash overhead over the direct pipe: {} ms (median, {runs} runs)",
        ms(overhead)
    );
}

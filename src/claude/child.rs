//! The `claude` child process: spawned in its own process group, with exactly one task
//! writing its stdin, one reading stdout, one draining stderr (an undrained pipe blocks
//! the child), and one reaping it. Its owner sees everything as [`ChildEvent`]s on one
//! bounded channel, so a flood from claude slows claude, not the daemon's memory.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::framing::{LineRead, LineReader};
use crate::pid_record::PidRecord;

/// claude writes whole files and tool results on one line; several MiB are normal.
pub const MAX_STDOUT_LINE: usize = 64 << 20;
const MAX_STDERR_LINE: usize = 64 << 10;
/// After claude exits, how long its pipes may stay open (held by a grandchild) before
/// the exit is reported anyway.
const PIPE_LINGER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum ChildEvent {
    Stdout(String),
    /// A stdout line longer than [`MAX_STDOUT_LINE`], skipped.
    Oversized(usize),
    Stderr(String),
    /// Sent once, after stdout has been read to its end (or [`PIPE_LINGER`] passed), so
    /// no line claude wrote before exiting arrives after this.
    Exited(ExitInfo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub const UNKNOWN: ExitInfo = ExitInfo {
        code: None,
        signal: None,
    };
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "signal {signal}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// The stdin writer's queue is short: leash writes a handful of lines per turn, and a
/// full queue means claude stopped reading.
const STDIN_QUEUE: usize = 32;
const EVENT_QUEUE: usize = 1024;

pub struct Child {
    pid: u32,
    /// Taken as it started, for whoever signals its group after it was reaped.
    record: Option<PidRecord>,
    /// Set by the reaper the moment it reaps claude: until then the pid is provably
    /// claude's (a zombie keeps it); after, only the record can say.
    reaped: Arc<AtomicBool>,
    program: PathBuf,
    /// The one strong handle: dropping it closes claude's stdin.
    stdin: Option<mpsc::Sender<String>>,
    events: mpsc::Receiver<ChildEvent>,
}

/// A handle to claude's stdin for answers given later (a tool permission). Every line
/// still goes through the child's one writer task; a handle never keeps the pipe open
/// after the child closed it.
#[derive(Debug, Clone)]
pub struct Stdin(Option<mpsc::WeakSender<String>>);

impl Stdin {
    /// Queues one line (newline included).
    pub fn write(&self, line: String) -> Result<(), WriteError> {
        let sender = self
            .0
            .as_ref()
            .and_then(mpsc::WeakSender::upgrade)
            .ok_or(WriteError::Closed)?;
        sender.try_send(line).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WriteError::Stalled,
            mpsc::error::TrySendError::Closed(_) => WriteError::Closed,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("claude's stdin is closed")]
    Closed,
    #[error("claude is not reading its input")]
    Stalled,
}

impl Child {
    pub fn spawn(spec: &SpawnSpec) -> std::io::Result<Child> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .current_dir(&spec.cwd)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so stopping it also stops the tools it started.
            .process_group(0)
            .kill_on_drop(true);
        // claude stops with the daemon that owns it, even a daemon killed with SIGKILL:
        // nobody would read what it does. SIGTERM, so it saves its conversation first
        // (2.1.110 writes its transcript late); the next daemon SIGKILLs what is left.
        // SAFETY: the closure only makes async-signal-safe calls.
        unsafe {
            command.pre_exec(crate::process::dies_with_this_process(libc::SIGTERM));
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let record = PidRecord::of(pid);
        let reaped = Arc::new(AtomicBool::new(false));
        let reaper_reaped = reaped.clone();
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(std::io::Error::other("claude's pipes were not set up")),
            };
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);

        tokio::spawn(write_stdin(stdin, stdin_rx));
        let stdout_task = tokio::spawn(read_stdout(stdout, events_tx.clone()));
        let stderr_task = tokio::spawn(read_stderr(stderr, events_tx.clone()));
        tokio::spawn(async move {
            let status = child.wait().await;
            reaper_reaped.store(true, Ordering::SeqCst);
            let linger = async {
                let _ = stdout_task.await;
                let _ = stderr_task.await;
            };
            let _ = tokio::time::timeout(PIPE_LINGER, linger).await;
            let info = match status {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    ExitInfo {
                        code: status.code(),
                        signal: status.signal(),
                    }
                }
                Err(_) => ExitInfo::UNKNOWN,
            };
            let _ = events_tx.send(ChildEvent::Exited(info)).await;
        });

        Ok(Child {
            pid,
            record,
            reaped,
            program: spec.program.clone(),
            stdin: Some(stdin_tx),
            events,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What identifies this claude beyond its pid, when it could be read as it started.
    pub fn record(&self) -> Option<&PidRecord> {
        self.record.as_ref()
    }

    /// The binary that runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// A handle that writes to claude's stdin.
    pub fn stdin(&self) -> Stdin {
        Stdin(self.stdin.as_ref().map(mpsc::Sender::downgrade))
    }

    /// claude finishes its current turn and exits when its stdin closes.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub async fn next_event(&mut self) -> Option<ChildEvent> {
        self.events.recv().await
    }

    pub fn try_next_event(&mut self) -> Option<ChildEvent> {
        self.events.try_recv().ok()
    }

    /// Sends `signal` to claude's whole process group; once claude is reaped, to what
    /// is left of its group, by its record.
    pub fn signal_group(&self, signal: i32) {
        if !self.reaped.load(Ordering::SeqCst) {
            crate::pid_record::signal_unreaped_group(self.pid, signal);
        } else if let Some(record) = &self.record {
            record.signal_group(signal);
        }
    }
}

async fn write_stdin(mut stdin: tokio::process::ChildStdin, mut lines: mpsc::Receiver<String>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            // claude is gone; its exit is reported by the reaper.
            return;
        }
    }
}

async fn read_stdout(stdout: tokio::process::ChildStdout, events: mpsc::Sender<ChildEvent>) {
    let mut reader = BufReader::with_capacity(256 * 1024, stdout);
    let mut lines = LineReader::new(MAX_STDOUT_LINE);
    loop {
        let event = match lines.next(&mut reader).await {
            Ok(LineRead::Line) => {
                ChildEvent::Stdout(String::from_utf8_lossy(lines.line()).into_owned())
            }
            Ok(LineRead::TooLong(len)) => ChildEvent::Oversized(len),
            Ok(LineRead::Eof) | Err(_) => return,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

async fn read_stderr(stderr: tokio::process::ChildStderr, events: mpsc::Sender<ChildEvent>) {
    let mut reader = BufReader::new(stderr);
    let mut lines = LineReader::new(MAX_STDERR_LINE);
    loop {
        let line = match lines.next(&mut reader).await {
            Ok(LineRead::Line) => String::from_utf8_lossy(lines.line()).into_owned(),
            Ok(LineRead::TooLong(len)) => format!("[{len}-byte stderr line skipped]"),
            Ok(LineRead::Eof) | Err(_) => return,
        };
        if events.send(ChildEvent::Stderr(line)).await.is_err() {
            return;
        }
    }
}

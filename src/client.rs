//! The client side of the socket: find the worker's daemon, start it when asked to,
//! say hello, send one request and read what comes back.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::error::{Error, ErrorKind};
use crate::framing::{LineRead, LineReader};
use crate::paths::{DAEMON_LOG, Dirs, LOCK_FILE, WorkerName};
use crate::protocol::{PROTOCOL_VERSION, Reply, Request, ServerLine, to_line};

/// Event lines can carry whole files from claude.
const MAX_SERVER_LINE: usize = 256 << 20;
/// How long a freshly spawned daemon may take to open its socket.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon log is for post-mortems, not an archive.
const DAEMON_LOG_MAX: u64 = 1 << 20;
/// How long a daemon asked to listen again may take.
const REBIND_WAIT: Duration = Duration::from_secs(2);
/// A daemon that accepts but does not greet within this time is stuck.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a one-answer request may take: warming up claude and stopping it are
/// the slow ones, each bounded by the daemon's own timeouts.
const CALL_TIMEOUT: Duration = Duration::from_secs(180);

/// The worker a command is about, and where its files are.
#[derive(Debug, Clone)]
pub struct Target {
    pub dirs: Dirs,
    pub worker: WorkerName,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// The worker's own worktree, when it has one.
    pub worktree: Option<crate::worktree::Worktree>,
}

impl Target {
    /// `--worker`/`LEASH_WORKER`, else the worker of the repository around `cwd`.
    pub fn resolve(worker: Option<&str>, cwd: &Path) -> Result<Target, Error> {
        let worker = match worker {
            Some(name) => WorkerName::parse(name)?,
            None => WorkerName::for_directory(cwd),
        };
        Self::for_worker(Dirs::from_env()?, worker)
    }

    pub fn for_worker(dirs: Dirs, worker: WorkerName) -> Result<Target, Error> {
        let socket = dirs.checked_socket(&worker)?;
        let state_dir = dirs.worker_state(&worker);
        let worktree = crate::worktree::Worktree::load(&state_dir);
        Ok(Target {
            dirs,
            worker,
            socket,
            state_dir,
            worktree,
        })
    }

    /// The worker's own worktree, if it has one.
    pub fn worktree_path(&self) -> Option<PathBuf> {
        self.worktree.as_ref().map(|w| w.path.clone())
    }

    /// The worker works in this worktree from now on: it is recorded in its state dir.
    pub fn adopt_worktree(&mut self, worktree: crate::worktree::Worktree) -> Result<(), Error> {
        self.dirs.ensure_worker_state(&self.worker)?;
        worktree.save(&self.state_dir)?;
        self.worktree = Some(worktree);
        Ok(())
    }

    /// Where a new session of this worker works: its worktree, else the repository
    /// (or directory) `cwd` is in.
    pub fn workdir(&self, cwd: &Path) -> PathBuf {
        self.worktree_path()
            .unwrap_or_else(|| crate::paths::project_root(cwd))
    }

    pub fn daemon_log(&self) -> PathBuf {
        self.state_dir.join(DAEMON_LOG)
    }

    /// Connects to the worker's daemon, `None` when none runs. A daemon whose socket
    /// was deleted (temp-dir cleaners do that) still holds the worker's lock: it is
    /// asked to listen again, and found.
    pub async fn open(&self) -> Result<Option<Connection>, Error> {
        if let Some(conn) = Connection::open(&self.socket).await? {
            return Ok(Some(conn));
        }
        let Some(pid) = self.lock_holder() else {
            return Ok(None);
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as i32, libc::SIGUSR1);
        }
        let deadline = Instant::now() + REBIND_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Some(conn) = Connection::open(&self.socket).await? {
                return Ok(Some(conn));
            }
        }
        Ok(None)
    }

    /// The daemon that holds the worker's lock: the pid its lock file names, when
    /// that process runs `leash daemon` for this worker.
    pub fn lock_holder(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.state_dir.join(LOCK_FILE)).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let serves =
            args.contains(&&b"daemon"[..]) && args.contains(&self.worker.as_str().as_bytes());
        (serves && crate::process::alive(pid)).then_some(pid)
    }

    pub fn no_session(&self) -> Error {
        Error::new(
            ErrorKind::NoSession,
            format!("worker {} is not running", self.worker),
        )
        .hint("start it with `leash session start`, or drop --no-start")
    }
}

/// One open, greeted connection to a daemon.
pub struct Connection {
    socket: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    lines: LineReader,
    pub daemon_pid: u32,
}

impl Connection {
    /// Connects and says hello. `Ok(None)` when no daemon is listening.
    pub async fn open(socket: &Path) -> Result<Option<Connection>, Error> {
        let stream = match UnixStream::connect(socket).await {
            Ok(stream) => stream,
            Err(e) if is_not_running(&e) => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot connect to {}", socket.display()),
                    e,
                ));
            }
        };
        let (read, writer) = stream.into_split();
        let mut conn = Connection {
            socket: socket.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, read),
            writer,
            lines: LineReader::new(MAX_SERVER_LINE),
            daemon_pid: 0,
        };
        // A daemon killed while a thread of it was still busy (in an fsync, say) keeps
        // its socket for a moment after it is gone: the connection is then reset. It is
        // no daemon to talk to, as one that closes during hello is not.
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
        };
        if let Err(e) = conn.writer.write_all(to_line(&hello).as_bytes()).await {
            return match is_gone(&e) {
                true => Ok(None),
                false => Err(Error::io("cannot write to the daemon", e)),
            };
        }
        let read = tokio::time::timeout(HELLO_TIMEOUT, conn.lines.next(&mut conn.reader)).await;
        let read = match read {
            Err(_) => {
                return Err(Error::setup(format!(
                    "the daemon at {} accepts connections but does not answer",
                    socket.display()
                ))
                .hint("see its daemon.log, or kill it"));
            }
            Ok(Err(e)) if is_gone(&e) => return Ok(None),
            Ok(Err(e)) => return Err(Error::io("cannot read from the daemon", e)),
            Ok(Ok(read)) => read,
        };
        let greeting = match conn.line_of(read)? {
            Some(raw) => Some((raw.clone(), parse_line(&raw)?)),
            None => None,
        };
        match greeting {
            Some((_, ServerLine::Reply(Reply::Hello { daemon_pid, .. }))) => {
                conn.daemon_pid = daemon_pid;
                Ok(Some(conn))
            }
            Some((_, ServerLine::Reply(error @ Reply::Error { .. }))) => {
                error.into_error().map(|_| None)
            }
            Some((line, _)) => Err(Error::internal(format!(
                "the daemon answered hello with {line}"
            ))),
            // A daemon that closes during hello is on its way out.
            None => Ok(None),
        }
    }

    /// The socket this connection reached.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn send(&mut self, request: &Request) -> Result<(), Error> {
        self.writer
            .write_all(to_line(request).as_bytes())
            .await
            .map_err(|e| Error::io("cannot write to the daemon", e))
    }

    /// The next line from the daemon, raw and parsed; `None` when it closed.
    pub async fn next(&mut self) -> Result<Option<(String, ServerLine)>, Error> {
        let Some(raw) = self.next_raw().await? else {
            return Ok(None);
        };
        let parsed = parse_line(&raw)?;
        Ok(Some((raw, parsed)))
    }

    /// The next line from the daemon as it came; `None` when it closed.
    pub async fn next_raw(&mut self) -> Result<Option<String>, Error> {
        let read = self
            .lines
            .next(&mut self.reader)
            .await
            .map_err(|e| Error::io("cannot read from the daemon", e))?;
        self.line_of(read)
    }

    /// What a read gave: a line, or `None` at the end.
    fn line_of(&self, read: LineRead) -> Result<Option<String>, Error> {
        match read {
            LineRead::Eof => Ok(None),
            // The daemon skips claude's lines over 64 MiB; a longer one is a bug.
            LineRead::TooLong(len) => Err(Error::internal(format!(
                "the daemon sent a {len}-byte line, over the {} MiB a client reads",
                MAX_SERVER_LINE >> 20
            ))),
            LineRead::Line => Ok(Some(
                String::from_utf8_lossy(self.lines.line()).into_owned(),
            )),
        }
    }

    /// True when the next line is already buffered (no need to flush output yet).
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Sends one request and returns its single reply, turning error replies into errors.
    pub async fn call(self, request: &Request) -> Result<Reply, Error> {
        self.call_within(request, CALL_TIMEOUT).await
    }

    /// [`Connection::call`] for a request that waits its turn behind running work.
    pub async fn call_within(mut self, request: &Request, bound: Duration) -> Result<Reply, Error> {
        self.send(request).await?;
        let answer = tokio::time::timeout(bound, self.next())
            .await
            .map_err(|_| {
                Error::internal(format!(
                    "the daemon did not answer within {}",
                    crate::human::duration(bound)
                ))
            })??;
        match answer {
            Some((_, ServerLine::Reply(reply))) => reply.into_error(),
            Some((line, ServerLine::Event(_))) => {
                Err(Error::internal(format!("expected a reply, got {line}")))
            }
            None => Err(Error::new(
                ErrorKind::NoSession,
                "the daemon closed the connection before answering",
            )),
        }
    }
}

pub fn parse_line(raw: &str) -> Result<ServerLine, Error> {
    serde_json::from_str(raw).map_err(|e| {
        Error::internal(format!(
            "the daemon sent a line leash cannot read ({e}): {raw}"
        ))
    })
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn is_not_running(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Connects to the running daemon, or fails with "no session".
pub async fn connect(target: &Target) -> Result<Connection, Error> {
    target.open().await?.ok_or_else(|| target.no_session())
}

/// Starts `leash daemon` for the target detached from this terminal (its own session,
/// no stdio but its log) and waits until its socket answers.
/// `env` carries the daemon's settings as the starting command resolved them.
pub async fn spawn_daemon(
    target: &Target,
    env: &[(&'static str, String)],
) -> Result<Connection, Error> {
    target.dirs.ensure_runtime()?;
    let state_dir = target.dirs.ensure_worker_state(&target.worker)?;
    let log_path = target.daemon_log();
    let log = open_daemon_log(&log_path)?;
    let exe =
        std::env::current_exe().map_err(|e| Error::io("cannot find the leash executable", e))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("daemon")
        .arg("--worker")
        .arg(target.worker.as_str())
        .env("LEASH_RUNTIME_DIR", &target.dirs.runtime)
        .env("LEASH_STATE_DIR", &target.dirs.state)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal so
    // Ctrl-C and hangups aimed at us never reach it.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut daemon = command.spawn().map_err(|e| {
        Error::setup(format!("cannot start the leash daemon: {e}"))
            .hint("check that the leash binary is still where it was installed")
    })?;

    let started = Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        if let Some(conn) = Connection::open(&target.socket).await? {
            // Reap it now if it already exited; otherwise it outlives us, reparented.
            let _ = daemon.try_wait();
            return Ok(conn);
        }
        if let Ok(Some(status)) = daemon.try_wait()
            && !status.success()
        {
            return Err(Error::setup(format!(
                "the leash daemon exited ({status}) before it was ready: {}",
                last_line(&log_path).unwrap_or_else(|| "it said nothing".to_string())
            ))
            .hint(format!("see {}", log_path.display())));
        }
        if started.elapsed() > DAEMON_START_TIMEOUT {
            return Err(Error::setup(format!(
                "the leash daemon did not open {} within {} s",
                target.socket.display(),
                DAEMON_START_TIMEOUT.as_secs(),
            ))
            .hint(format!("see {}", log_path.display())));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(50));
    }
}

fn open_daemon_log(path: &Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let too_big = std::fs::metadata(path).is_ok_and(|m| m.len() > DAEMON_LOG_MAX);
    std::fs::OpenOptions::new()
        .create(true)
        .append(!too_big)
        .write(true)
        .truncate(too_big)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a daemon killed mid-fsync looks like from outside: its socket accepts, then
    /// the connection is reset without a word.
    #[test]
    fn a_daemon_that_resets_the_hello_is_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("dying.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let dying = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // Unread data in its buffer: closing it resets the connection.
            std::thread::sleep(Duration::from_millis(100));
            drop(stream);
        });
        let opened = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(Connection::open(&socket));
        dying.join().unwrap();
        assert!(matches!(opened, Ok(None)), "{:?}", opened.err());
    }
}

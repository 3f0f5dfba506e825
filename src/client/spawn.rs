//! Starting a worker's daemon: `leash daemon`, detached from the terminal, told on its
//! standard input which conversation to begin when the worker has none.

use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Connection, Target};
use crate::error::Error;
use crate::protocol::{StartSpec, to_line};

/// How long a freshly spawned daemon may take to open its socket.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon log is for post-mortems, not an archive.
const DAEMON_LOG_MAX: u64 = 1 << 20;

/// Starts `leash daemon` for the target detached from this terminal (its own session,
/// no output but its log) and waits until its socket answers. `env` carries the
/// daemon's settings as the starting command resolved them; `spec` is the conversation
/// it begins when the worker has none, written to its standard input.
pub(super) async fn daemon(
    target: &Target,
    env: &[(&'static str, String)],
    spec: Option<&StartSpec>,
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
        .stdin(Stdio::piped())
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
    if let (Some(spec), Some(mut stdin)) = (spec, daemon.stdin.take()) {
        // A daemon that lost the race for the worker exits without reading it.
        let _ = stdin.write_all(to_line(spec).as_bytes());
    }

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
            // Killed (out of memory, a person, a chaos test): a death like a serving
            // daemon's, which whoever started it may count and go on through.
            if let Some(signal) = status.signal() {
                return Err(Error::turn_failed(format!(
                    "the leash daemon was killed (signal {signal}) before it was ready"
                ))
                .hint(format!("see {}", log_path.display())));
            }
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

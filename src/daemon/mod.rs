//! The per-worker session daemon (`leash daemon`, started detached by the client).
//!
//! It takes the worker's lock (so exactly one daemon serves a worker, and a socket file
//! left by a dead one can be removed safely), binds the socket 0600 in the private
//! runtime dir, and runs the session [`actor`] until asked to stop, signalled, or idle.

/// A line for `daemon.log` (the daemon's stderr). Unlike `eprintln!`, a write that fails
/// (the state disk is full) is dropped: it must not panic the daemon away.
macro_rules! log_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod actor;
mod answer;
mod checks;
mod connection;
mod feed;
mod handle;
mod history_file;
mod job;
mod lifecycle;
mod parts;
mod permissions;
mod queue;
mod record_file;
mod subscribers;
mod tally;
mod turn;
mod turn_policy;
mod worker_file;
mod worker_step;

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::claude::session::Bounds;
use crate::error::Error;
use crate::eventlog::EventLog;
use crate::paths::{Dirs, LOCK_FILE, WorkerName};
use crate::protocol::{Reply, Request, StartSpec};
use crate::record::SessionRecord;
use crate::settings::{Resolved, Settings};
use actor::{Actor, Inbound, Leftovers};
use answer::Answer;
use connection::Shared;
use lifecycle::{ClientCount, Lifecycle};
use parts::{Limits, Parts, Place};
use permissions::Permissions;

/// How long the daemon waits for connections to finish their last words on exit.
const FAREWELL: Duration = Duration::from_secs(2);

/// Runs the daemon for `worker` in the foreground until it stops.
pub fn run(worker: &WorkerName, dirs: &Dirs) -> Result<(), Error> {
    // A client that finds the worker's lock held but no socket asks its holder to
    // listen again with SIGUSR1; until this daemon watches for it (once it serves),
    // the request must not kill it.
    // SAFETY: signal only sets this process's disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
    one_memory_arena();
    dirs.ensure_runtime()?;
    let state_dir = dirs.ensure_worker_state(worker)?;
    let socket = dirs.checked_socket(worker)?;
    let Some(lock) = lock_worker(&state_dir)? else {
        log_line!("leash daemon: another daemon already serves worker {worker}; exiting");
        return Ok(());
    };
    #[cfg(debug_assertions)]
    die_at_start_for_tests();
    let served = serve_locked(worker, state_dir, socket, lock.predecessor);
    lock.release();
    served
}

/// Test-only, and in debug builds only: while the file `LEASH_TEST_DAEMON_DIES_AT_START`
/// names holds a number N > 0, the daemon writes N-1 to it and SIGKILLs itself right
/// after taking the worker's lock, as a daemon killed during its own startup (issue 27
/// case 5). No release build reads it.
#[cfg(debug_assertions)]
fn die_at_start_for_tests() {
    let Some(counter) = std::env::var_os("LEASH_TEST_DAEMON_DIES_AT_START") else {
        return;
    };
    let left: u32 = std::fs::read_to_string(&counter)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    if left == 0 {
        return;
    }
    let _ = std::fs::write(&counter, (left - 1).to_string());
    // SAFETY: signalling this very process has no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// The daemon runs on one thread, with a helper thread now and then (a task's history
/// folded from the log, a record fsynced): one malloc arena for all of them keeps what
/// a helper freed where it is given back, instead of in an arena of its own that stays.
fn one_memory_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The daemon's life once it holds the worker's lock.
fn serve_locked(
    worker: &WorkerName,
    state_dir: std::path::PathBuf,
    socket: std::path::PathBuf,
    predecessor: Option<u32>,
) -> Result<(), Error> {
    let record = SessionRecord::load(&state_dir)?;
    let start = read_start();
    let settings = Resolved::from_env().settings()?;
    // One thread: the daemon waits on claude, its clients and the disk, and the
    // little it computes per line costs less than handing lines between threads
    // (blocking work, such as fsyncing the record, goes to tokio's blocking pool).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    let place = Place {
        worker: worker.to_string(),
        state_dir,
        socket,
    };
    runtime.block_on(serve(place, record, start, settings, predecessor))
}

/// The conversation to begin when the worker has none, as the command that started
/// the daemon wrote it on standard input (nothing when run by hand in a terminal).
fn read_start() -> Option<StartSpec> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let mut text = Vec::new();
    let limit = u64::try_from(crate::protocol::MAX_REQUEST_BYTES).unwrap_or(u64::MAX);
    if let Err(e) = stdin.lock().take(limit).read_to_end(&mut text) {
        log_line!("leash daemon: cannot read the start request: {e}");
        return None;
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice(&text) {
        Ok(spec) => Some(spec),
        Err(e) => {
            log_line!("leash daemon: the start request is not one leash can read: {e}");
            None
        }
    }
}

/// How long a new daemon waits for a killed one to let go of the worker's lock.
const DYING_HOLDER_WAIT: Duration = Duration::from_secs(5);

/// The worker's lock, held: the file names this daemon while it serves, and is emptied
/// when it ends. `predecessor` is the daemon the file still named when this one took
/// the lock: one that died without ending (killed, out of memory, a reboot).
struct WorkerLock {
    file: File,
    predecessor: Option<u32>,
}

impl WorkerLock {
    /// The daemon ends: the next one finds the file empty, so knows this one did not die.
    fn release(self) {
        if let Err(e) = self.file.set_len(0) {
            log_line!("leash daemon: cannot empty the worker's lock file: {e}");
        }
    }
}

/// Holding this lock is what makes a daemon the owner of its worker; the file says
/// which process holds it, so a client can reach a daemon whose socket was deleted. A
/// daemon that was killed holds it (and its socket) until its last thread is gone,
/// which an fsync in flight can delay: while the holder it names is no longer alive,
/// the lock is waited for.
fn lock_worker(state_dir: &Path) -> Result<Option<WorkerLock>, Error> {
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let until = std::time::Instant::now() + DYING_HOLDER_WAIT;
    let holder_dying = || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| crate::paths::lock_holder(&text))
            .is_some_and(|holder| holder.ended())
    };
    let mut locked = file.try_lock();
    while matches!(locked, Err(std::fs::TryLockError::WouldBlock))
        && holder_dying()
        && std::time::Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(20));
        locked = file.try_lock();
    }
    match locked {
        Ok(()) => {
            use std::io::Write;
            let predecessor = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| crate::paths::serving(&text))
                .map(|holder| holder.pid);
            let mut file = file;
            let written = file
                .set_len(0)
                .and_then(|()| file.write_all(crate::paths::serving_line().as_bytes()));
            if let Err(e) = written {
                log_line!("leash daemon: cannot write {}: {e}", path.display());
            }
            Ok(Some(WorkerLock { file, predecessor }))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("cannot lock {}", path.display()), e))
        }
    }
}

async fn serve(
    place: Place,
    record: Option<SessionRecord>,
    start: Option<StartSpec>,
    settings: Settings,
    predecessor: Option<u32>,
) -> Result<(), Error> {
    let socket = place.socket.clone();
    let worker = place.worker.clone();
    let mut listener = bind_private(&socket)?;
    let mut bound = socket_inode(&socket);
    let log = EventLog::open(&place.state_dir, settings.log_max_bytes)
        .map_err(|e| Error::io("cannot open the event log", e))?;
    let (inbox_tx, inbox) = mpsc::channel(256);
    let clients = ClientCount::default();
    let shared = Arc::new(Shared {
        inbox: inbox_tx.clone(),
        request_timeout: settings.client_timeout,
        clients: clients.clone(),
        worker: place.worker.clone(),
        state_dir: place.state_dir.clone(),
    });
    let (stale, left_alone) = sweep_leftovers(&place.state_dir, settings.stop_grace);
    let (session, events) = crate::claude::session::spawn(
        record.as_ref().map(|r| r.conversation.clone()),
        Bounds {
            init_timeout: settings.init_timeout,
            control_timeout: settings.control_timeout,
            silence_timeout: settings.silence_timeout,
            interrupt_grace: settings.interrupt_grace,
            stop_grace: settings.stop_grace,
            max_crashes: settings.max_crashes,
            crash_backoff: settings.crash_backoff,
            compact_timeout: settings.compact_timeout,
            max_rss: settings.claude_max_rss,
        },
        crate::process::claude_pid_file(&place.state_dir),
    );
    let permissions = match &record {
        Some(r) => Permissions::new(
            r.permission_allow.clone(),
            r.always_allow.clone(),
            settings.permission_timeout,
        ),
        None => Permissions::new(Vec::new(), Vec::new(), settings.permission_timeout),
    };
    let parts = Parts::new(
        session,
        subscribers::Subscribers::new(log),
        permissions,
        tally::Tally::from_record(record.as_ref()),
        worker_file::WorkerFile::load(place.state_dir.clone()),
        Lifecycle::new(clients, settings.idle_timeout),
        place,
        Limits {
            feed_budget: usize::try_from(settings.client_buffer).unwrap_or(usize::MAX),
            silence_timeout: settings.silence_timeout,
            restart_limit: settings.max_crashes,
        },
    );
    let mut parts = parts;
    let mut queue = queue::Queue::new(usize::try_from(settings.max_queue).unwrap_or(usize::MAX));
    for why in left_alone {
        log_line!("leash daemon: {why}");
        parts.warn(why);
    }
    if let Some(spec) = start {
        // Before any client is served: whoever reaches this daemon finds its
        // conversation set up.
        let spec = StartSpec {
            fresh: false,
            warm: false,
            ..spec
        };
        handle::accept(&mut parts, &mut queue, Request::Start(spec), Answer::none());
    }
    let actor = Actor::new(parts, queue, events, inbox);
    let mut actor_task = tokio::spawn(actor.run(Leftovers {
        claude: stale,
        predecessor,
    }));
    let mut connections = JoinSet::new();
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| Error::io("cannot watch signals", e))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch signals", e))?;
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| Error::io("cannot watch signals", e))?;
    // A socket deleted under the daemon (temp-dir cleaners do that, sometimes with its
    // directory) is re-created when a client that finds none asks with SIGUSR1. No
    // timer looks for it: an idle daemon wakes for nothing.
    let mut rebind =
        signal(SignalKind::user_defined1()).map_err(|e| Error::io("cannot watch signals", e))?;

    let stop_replies = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection::serve(stream, shared.clone()));
                }
                Err(e) => {
                    log_line!("leash daemon: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = terminate.recv() => stop(&inbox_tx),
            _ = interrupt.recv() => stop(&inbox_tx),
            _ = hangup.recv() => stop(&inbox_tx),
            _ = rebind.recv() => keep_socket(&socket, &mut listener, &mut bound),
            done = &mut actor_task => break done.unwrap_or_default(),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };

    drop(listener);
    if let Err(e) = std::fs::remove_file(&socket) {
        log_line!("leash daemon: cannot remove {}: {e}", socket.display());
    }
    for reply in stop_replies {
        reply.reply(Reply::Ok {
            message: format!("stopped worker {worker}"),
        });
    }
    let _ = tokio::time::timeout(FAREWELL, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Stops what a daemon of this worker that died left running (its claude, a check),
/// each under its record's proof. Returns what was stopped, and why anything recorded
/// was left alone.
fn sweep_leftovers(state_dir: &Path, grace: Duration) -> (Option<String>, Vec<String>) {
    use crate::process::Leftover;
    let (mut stopped, mut left_alone) = (Vec::new(), Vec::new());
    for found in [
        crate::process::kill_stale_claude(state_dir, grace),
        checks::stop_left_behind(state_dir),
    ] {
        match found {
            Leftover::Nothing => {}
            Leftover::Stopped(what) => stopped.push(what),
            Leftover::LeftAlone(why) => left_alone.push(why),
        }
    }
    (
        (!stopped.is_empty()).then(|| stopped.join(" and ")),
        left_alone,
    )
}

/// A signal asks the daemon to stop, as `leash session stop` does.
fn stop(inbox: &mpsc::Sender<Inbound>) {
    let _ = inbox.try_send(Inbound::Request(Box::new(Request::Stop), Answer::none()));
}

fn socket_inode(socket: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(socket).ok().map(|m| m.ino())
}

/// Re-creates the socket when it is no longer the one this daemon listens on.
fn keep_socket(socket: &Path, listener: &mut UnixListener, bound: &mut Option<u64>) {
    if socket_inode(socket) == *bound {
        return;
    }
    match rebind_private(socket) {
        Ok(fresh) => {
            *listener = fresh;
            *bound = socket_inode(socket);
            log_line!(
                "leash daemon: {} was deleted or replaced; listening on it again",
                socket.display()
            );
        }
        Err(e) => log_line!("leash daemon: {e}"),
    }
}

/// Binds the socket again while the daemon runs. No umask games now (other threads
/// create files): the socket is bound, then made 0600, in a runtime dir only its owner
/// can enter.
fn rebind_private(socket: &Path) -> Result<UnixListener, Error> {
    // A cleaner may have taken the whole runtime dir.
    if let Some(dir) = socket.parent() {
        crate::paths::ensure_private_dir(dir)?;
    }
    remove_stale(socket)?;
    let listener = UnixListener::bind(socket)
        .map_err(|e| Error::io(format!("cannot listen on {}", socket.display()), e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("cannot protect {}", socket.display()), e))?;
    Ok(listener)
}

fn remove_stale(socket: &Path) -> Result<(), Error> {
    match std::fs::remove_file(socket) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!("cannot remove the stale socket {}", socket.display()),
            e,
        )),
    }
}

/// Binds the socket readable and writable by its owner only. We hold the worker's
/// lock, so a socket file already there belongs to a dead daemon.
fn bind_private(socket: &Path) -> Result<UnixListener, Error> {
    remove_stale(socket)?;
    // SAFETY: umask only swaps the process mask; no thread creates files meanwhile
    // except this one (the actor has not started yet).
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(socket);
    unsafe { libc::umask(old) };
    let listener =
        bound.map_err(|e| Error::io(format!("cannot listen on {}", socket.display()), e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("cannot protect {}", socket.display()), e))?;
    Ok(listener)
}

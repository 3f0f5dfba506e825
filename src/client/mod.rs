//! The client side of the socket: which worker a command means, and reaching its
//! daemon: the running one, or one started for it. Starting a daemon happens here and
//! only here ([`Target::connect_or_start`], [`Target::launch`]).

mod connection;
mod spawn;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::paths::{DAEMON_LOG, Dirs, LOCK_FILE, WorkerName};
use crate::pid_record::PidRecord;
use crate::protocol::{SessionStatus, StartSpec};
pub use connection::{Connection, ok_message, parse_line, unexpected};

/// How long a daemon asked to listen again may take.
const REBIND_WAIT: Duration = Duration::from_secs(2);

/// What a daemon is started with: its settings (as environment variables, resolved
/// where the command runs) and the conversation it begins when the worker has none.
pub struct Launch {
    pub env: Vec<(&'static str, String)>,
    pub spec: StartSpec,
}

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
    /// asked to listen again, and found. A daemon that holds the lock on another host
    /// (a state dir on shared storage) is reported: busy, there.
    pub async fn open(&self) -> Result<Option<Connection>, Error> {
        if let Some(conn) = Connection::open(&self.socket).await? {
            return Ok(Some(conn));
        }
        let Some(holder) = self.lock_record() else {
            return Ok(None);
        };
        if let Some(host) = holder.other_host() {
            return match self.lock_is_held() {
                true => Err(self.held_on(host)),
                // Its host died or lost the file: the record is taken over.
                false => Ok(None),
            };
        }
        if holder.signal(libc::SIGUSR1).is_err() {
            return Ok(None);
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

    /// The daemon the worker's lock file names, serving or not.
    fn lock_record(&self) -> Option<PidRecord> {
        let file = std::fs::read_to_string(self.state_dir.join(LOCK_FILE)).ok()?;
        crate::paths::lock_holder(&file)
    }

    /// The host whose daemon serves the worker, when that is another host than this.
    pub fn held_elsewhere(&self) -> Option<String> {
        let holder = self.lock_record()?;
        let host = holder.other_host()?;
        self.lock_is_held().then(|| host.to_string())
    }

    /// Someone holds the worker's lock (a daemon, here or on another host).
    fn lock_is_held(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.state_dir.join(LOCK_FILE)) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// The worker's daemon runs on another host.
    fn held_on(&self, host: &str) -> Error {
        Error::new(
            ErrorKind::Busy,
            format!(
                "worker {} is served by its daemon on host {}",
                self.worker,
                crate::human::safe(host)
            ),
        )
        .hint(format!(
            "run the command on {}, or wait until that daemon ends (a dead host's lock is freed when its lease ends)",
            crate::human::safe(host)
        ))
    }

    /// Connects to the running daemon, or fails with "not running".
    pub async fn connect(&self) -> Result<Connection, Error> {
        self.open().await?.ok_or_else(|| self.no_session())
    }

    /// The worker's running daemon; with none, says so (or that its directory is gone).
    pub async fn connect_running(&self) -> Result<Connection, Error> {
        if let Some(conn) = self.open().await? {
            return Ok(conn);
        }
        self.check_dir()?;
        Err(self.no_session())
    }

    /// The worker's daemon, started when none runs with what `launch` makes. Every
    /// client that finds none starts one: one wins the worker's lock, and it sets up
    /// the conversation `launch` describes before it takes any request, so whoever
    /// lost the race reaches it and is served in turn.
    pub async fn connect_or_start(
        &self,
        launch: impl FnOnce() -> Result<Launch, Error>,
    ) -> Result<Connection, Error> {
        if let Some(conn) = self.open().await? {
            return Ok(conn);
        }
        self.check_dir()?;
        let launch = launch()?;
        spawn::daemon(self, &launch.env, Some(&launch.spec)).await?;
        self.connect().await
    }

    /// Starts the worker's daemon and sets its session up as `launch` asks; answers its
    /// status once the start is done. A start that fails leaves no daemon running.
    pub async fn launch(&self, launch: Launch) -> Result<SessionStatus, Error> {
        let started = async {
            let conn = spawn::daemon(self, &launch.env, Some(&launch.spec)).await?;
            conn.start(launch.spec).await
        }
        .await;
        if started.is_err()
            && let Ok(Some(conn)) = self.open().await
        {
            let _ = conn.call(&crate::protocol::Request::Stop).await;
        }
        started
    }

    /// Starts the worker's daemon on the conversation it has (`session model` on a
    /// stopped worker).
    pub async fn revive(&self, env: &[(&'static str, String)]) -> Result<Connection, Error> {
        spawn::daemon(self, env, None).await
    }

    /// A worker lives in its directory; one that was removed or moved is said to be
    /// gone (rather than claude failing to start there).
    fn check_dir(&self) -> Result<(), Error> {
        let Some(record) = crate::record::SessionRecord::load(&self.state_dir)? else {
            return Ok(());
        };
        let cwd = &record.conversation.cwd;
        if cwd.is_dir() {
            return Ok(());
        }
        Err(self.directory_gone(cwd))
    }

    /// The worker's directory (its worktree, or the repository it works in) is no more.
    pub fn directory_gone(&self, dir: &Path) -> Error {
        let error = Error::setup(format!(
            "worker {}'s directory {} is gone",
            self.worker,
            dir.display()
        ));
        match &self.worktree {
            Some(_) => error.hint(format!(
                "move it back, or `leash session rm {} --force` forgets the worker (its branch stays), then start it over",
                self.worker
            )),
            None => error.hint(format!(
                "move it back, or start the worker over where you are with `leash --worker {} session start --fresh --cwd .`",
                self.worker
            )),
        }
    }

    pub fn no_session(&self) -> Error {
        Error::new(
            ErrorKind::NoSession,
            format!("worker {} is not running", self.worker),
        )
        .hint("start it with `leash session start`, or drop --no-start")
    }
}

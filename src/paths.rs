//! Where leash keeps its sockets and state, and what a worker may be called.
//!
//! Sockets live in a runtime dir (`$LEASH_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/leash`,
//! else a per-user dir under the temp dir); everything that must survive a reboot or a
//! crash lives in a state dir (`$LEASH_STATE_DIR`, else `$XDG_STATE_HOME/leash`, else
//! `~/.local/state/leash`). Both are created 0700 and refused when they are symlinks or
//! owned by someone else, because the socket is the key to a worker's conversation.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::pid_record::PidRecord;

/// The daemon's own log (its stderr), in the worker's state dir.
pub const DAEMON_LOG: &str = "daemon.log";
/// Held (flock) by the daemon that serves the worker. While it serves, the file holds
/// its pid record (one JSON line, see [`crate::pid_record`]), so a client can reach a
/// daemon whose socket was deleted and tell one on another host; it is emptied when the
/// daemon ends. An earlier leash wrote `PID serving` (serving) or a pid alone (no
/// telling how that one ended); neither proves which process it names.
pub const LOCK_FILE: &str = "daemon.lock";

/// The daemon a worker's lock file names, serving or not.
pub fn lock_holder(text: &str) -> Option<PidRecord> {
    PidRecord::parse(text)
}

/// What a daemon writes in the lock file while it serves (emptied when it ends).
pub fn serving_line() -> String {
    PidRecord::of_self().map_or_else(
        || format!("{} {SERVING}\n", std::process::id()),
        |record| record.line(),
    )
}

/// The daemon a lock file says is serving: one that wrote [`serving_line`] and did not
/// end (a file of an earlier leash that names a pid alone: no telling how that one ended).
pub fn serving(text: &str) -> Option<PidRecord> {
    let text = text.trim();
    let serving = text.starts_with('{') || text.split_whitespace().nth(1) == Some(SERVING);
    serving.then(|| lock_holder(text)).flatten()
}

const SERVING: &str = "serving";
/// What a worker's state dir holds: its session record (`record.rs`), its phase
/// (`worker/`), its own worktree (`worktree.rs`). Any of them makes it a worker.
pub const RECORD_FILE: &str = "session.json";
pub const WORKER_FILE: &str = "worker.json";
pub const WORKTREE_FILE: &str = "worktree.json";

/// The state dir is a worker's: it holds any of a worker's files.
pub fn holds_worker(state_dir: &Path) -> bool {
    [RECORD_FILE, WORKER_FILE, WORKTREE_FILE]
        .iter()
        .any(|file| state_dir.join(file).is_file())
}

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
const MAX_WORKER_NAME: usize = 64;

/// A validated worker name: safe as a file name and short enough for a socket path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerName(String);

impl WorkerName {
    pub fn parse(name: &str) -> Result<WorkerName, Error> {
        let bad = |why: &str| {
            Error::usage(format!("invalid worker name {name:?}: {why}")).hint(format!(
                "use letters, digits, '.', '_' and '-' (at most {MAX_WORKER_NAME}), starting with a letter or digit"
            ))
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_WORKER_NAME {
            return Err(bad("it is too long"));
        }
        if name.starts_with('.') || name.starts_with('-') {
            return Err(bad("it must start with a letter or digit"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(bad(&format!("{c:?} is not allowed")));
        }
        // A worker's worktree is on the branch `leash/NAME`: the name must be one git
        // takes in a branch (git check-ref-format).
        if name.contains("..") {
            return Err(bad("git does not take \"..\" in a branch name"));
        }
        if name.ends_with('.') || name.ends_with(".lock") {
            return Err(bad(
                "git does not take a branch name ending in \".\" or \".lock\"",
            ));
        }
        Ok(WorkerName(name.to_string()))
    }

    /// The worker a command means when none is named: the worker whose worktree it runs
    /// in, else one per repository (git toplevel, else the directory itself), so two
    /// checkouts never share a conversation by accident.
    pub fn for_directory(dir: &Path) -> WorkerName {
        let root = project_root(dir);
        if let Some(worker) = worktree_worker(&root) {
            return worker;
        }
        let base: String = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".to_string())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        // `..` is no part of a branch name (a worker may get a worktree later).
        let base = base.replace("..", "-");
        let base = base.trim_start_matches(['.', '-']);
        let base = if base.is_empty() { "worker" } else { base };
        let hash = fnv1a(root.as_os_str().as_encoded_bytes());
        WorkerName(format!("{base}-{:08x}", hash as u32))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WorkerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// leash's directory in a repository's main work tree (kept out of git), and where
/// workers' own worktrees live in it: `<repo>/.leash/worktrees/NAME`.
pub const LEASH_DIR: &str = ".leash";
pub const WORKTREES: &str = "worktrees";

/// The worker whose own worktree `root` (the top of a work tree) is.
pub fn worktree_worker(root: &Path) -> Option<WorkerName> {
    let parent = root.parent()?;
    let in_leash = parent.file_name()? == WORKTREES && parent.parent()?.file_name()? == LEASH_DIR;
    in_leash
        .then(|| WorkerName::parse(&root.file_name()?.to_string_lossy()).ok())
        .flatten()
}

/// The directory a worker's conversation belongs to: the git toplevel, else `dir`.
pub fn project_root(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    toplevel(&dir).unwrap_or(dir)
}

/// The work tree around `dir` as git finds it: the nearest directory upwards with a
/// `.git` (a directory, or the file of a linked worktree). Found by looking, not by
/// opening the repository: every command asks, and a hook must stay cheap.
fn toplevel(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
        .map(Path::to_path_buf)
}

/// A stable hash: the worker name must not change between Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Clone)]
pub struct Dirs {
    pub runtime: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub fn from_env() -> Result<Dirs, Error> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let runtime = var("LEASH_RUNTIME_DIR")
            .or_else(|| var("XDG_RUNTIME_DIR").map(|d| d.join("leash")))
            .unwrap_or_else(|| std::env::temp_dir().join(format!("leash-{}", current_uid())));
        let state = var("LEASH_STATE_DIR")
            .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("leash")))
            .or_else(|| var("HOME").map(|h| h.join(".local/state/leash")))
            .ok_or_else(|| {
                Error::setup("no state directory")
                    .hint("set LEASH_STATE_DIR, XDG_STATE_HOME or HOME")
            })?;
        let dirs = Dirs {
            runtime: absolute(runtime)?,
            state: absolute(state)?,
        };
        no_file_in_the_way(&dirs.runtime)?;
        no_file_in_the_way(&dirs.state)?;
        Ok(dirs)
    }

    pub fn socket(&self, worker: &WorkerName) -> PathBuf {
        self.runtime.join(format!("{worker}.sock"))
    }

    pub fn worker_state(&self, worker: &WorkerName) -> PathBuf {
        self.state.join(worker.as_str())
    }

    /// Fails with a usage error when the socket path would not fit in `sun_path`.
    pub fn checked_socket(&self, worker: &WorkerName) -> Result<PathBuf, Error> {
        let path = self.socket(worker);
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::usage(format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                path.display()
            ))
            .hint("use a shorter --worker name or a shorter LEASH_RUNTIME_DIR"));
        }
        Ok(path)
    }

    /// Every worker with a session record or a socket, by name.
    pub fn known_workers(&self) -> Vec<WorkerName> {
        let mut names: Vec<WorkerName> = Vec::new();
        let mut add = |name: &str| {
            if let Ok(worker) = WorkerName::parse(name)
                && !names.contains(&worker)
            {
                names.push(worker);
            }
        };
        if let Ok(entries) = fs::read_dir(&self.state) {
            for entry in entries.flatten() {
                if holds_worker(&entry.path()) {
                    add(&entry.file_name().to_string_lossy());
                }
            }
        }
        if let Ok(entries) = fs::read_dir(&self.runtime) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(worker) = name.strip_suffix(".sock") {
                    add(worker);
                }
            }
        }
        names.sort();
        names
    }

    pub fn ensure_runtime(&self) -> Result<(), Error> {
        ensure_private_dir(&self.runtime)
    }

    pub fn ensure_worker_state(&self, worker: &WorkerName) -> Result<PathBuf, Error> {
        ensure_private_dir(&self.state)?;
        let dir = self.worker_state(worker);
        ensure_private_dir(&dir)?;
        Ok(dir)
    }
}

fn absolute(path: PathBuf) -> Result<PathBuf, Error> {
    std::path::absolute(&path).map_err(|e| {
        Error::setup(format!("cannot resolve {}: {e}", path.display()))
            .hint("point LEASH_RUNTIME_DIR and LEASH_STATE_DIR at directories of yours")
    })
}

/// A dir of leash's that is a file (or lies under one) is refused as the unsafe dirs
/// are, before anything fails on a path in it with "not a directory".
fn no_file_in_the_way(dir: &Path) -> Result<(), Error> {
    let in_the_way = match fs::metadata(dir) {
        Ok(meta) => !meta.is_dir(),
        Err(e) => e.raw_os_error() == Some(libc::ENOTDIR),
    };
    if in_the_way {
        return Err(Error::setup(format!(
            "{} is not a directory (a file is in the way)",
            dir.display()
        ))
        .hint("move the file away, or point LEASH_RUNTIME_DIR / LEASH_STATE_DIR elsewhere"));
    }
    Ok(())
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Creates `dir` (0700) if missing, then refuses it unless it is a real directory owned
/// by us that no one else can enter.
pub fn ensure_private_dir(dir: &Path) -> Result<(), Error> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => {
            return Err(
                Error::setup(format!("cannot create {}: {e}", dir.display()))
                    .hint("check the permissions of its parent, or point LEASH_RUNTIME_DIR / LEASH_STATE_DIR elsewhere"),
            );
        }
    }
    check_private_dir(dir)
}

pub fn check_private_dir(dir: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        Error::setup(format!("cannot inspect {}: {e}", dir.display()))
            .hint("check the permissions of its parent")
    })?;
    if meta.file_type().is_symlink() {
        return Err(
            Error::setup(format!("{} is a symlink; leash refuses it", dir.display()))
                .hint("remove it, or point LEASH_RUNTIME_DIR / LEASH_STATE_DIR elsewhere"),
        );
    }
    if !meta.is_dir() {
        return Err(
            Error::setup(format!("{} is not a directory", dir.display()))
                .hint("move the file away, or point LEASH_RUNTIME_DIR / LEASH_STATE_DIR elsewhere"),
        );
    }
    if meta.uid() != current_uid() {
        return Err(Error::setup(format!(
            "{} is owned by uid {}, not by you (uid {}); leash refuses it",
            dir.display(),
            meta.uid(),
            current_uid()
        ))
        .hint("point LEASH_RUNTIME_DIR / LEASH_STATE_DIR at directories of yours"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Error::setup(format!(
            "{} is open to other users (mode {:o})",
            dir.display(),
            meta.mode() & 0o777,
        ))
        .hint(format!("run `chmod 700 {}`", dir.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_root_is_the_work_tree_around_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let repo = base.join("repo");
        std::fs::create_dir_all(repo.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(repo.join("src/deep")).unwrap();
        assert_eq!(project_root(&repo.join("src/deep")), repo);
        assert_eq!(project_root(&repo.join(".git/hooks")), repo);
        // A linked worktree has a `.git` file of its own.
        let linked = repo.join(".leash/worktrees/a");
        std::fs::create_dir_all(&linked).unwrap();
        std::fs::write(linked.join(".git"), "gitdir: ../../../.git/worktrees/a\n").unwrap();
        assert_eq!(project_root(&linked), linked);
        let outside = base.join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        assert_eq!(
            project_root(&outside),
            outside,
            "no repository: the directory itself"
        );
    }

    #[test]
    fn the_lock_file_tells_a_serving_daemon_from_one_that_ended() {
        let me = std::process::id();
        let line = serving_line();
        let serving_now = serving(&line).unwrap();
        assert_eq!(serving_now.pid, me);
        assert_eq!(serving_now.identify(), crate::pid_record::Identity::Running);
        assert_eq!(lock_holder(&line).map(|r| r.pid), Some(me));
        assert_eq!(
            serving("42 serving\n").map(|r| r.pid),
            Some(42),
            "leash 0.x"
        );
        assert_eq!(serving("42\n"), None, "an earlier leash's file");
        assert_eq!(serving(""), None, "emptied: it ended");
    }

    #[test]
    fn worker_names_reject_path_tricks() {
        for bad in [
            "",
            "a/b",
            "..",
            ".hidden",
            "a\0b",
            "-x",
            "a b",
            &"x".repeat(65),
            "foo.lock",
            "a..b",
            "x.",
        ] {
            assert!(WorkerName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["w", "repo-1234abcd", "a.b_c-d", &"x".repeat(64), "a.lockx"] {
            assert!(WorkerName::parse(good).is_ok(), "{good:?} was refused");
            let branch = format!("refs/heads/leash/{good}");
            assert!(
                git2::Reference::is_valid_name(&branch),
                "git refuses {branch}"
            );
        }
        let odd = tempfile::tempdir().unwrap();
        let dir = odd.path().join("v1..v2");
        std::fs::create_dir_all(&dir).unwrap();
        let name = WorkerName::for_directory(&dir);
        assert!(WorkerName::parse(name.as_str()).is_ok(), "{name}");
    }

    #[test]
    fn default_worker_name_is_valid_and_differs_per_directory() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let wa = WorkerName::for_directory(a.path());
        let wb = WorkerName::for_directory(b.path());
        assert_ne!(wa, wb);
        assert!(WorkerName::parse(wa.as_str()).is_ok());
        assert_eq!(wa, WorkerName::for_directory(a.path()));
    }

    #[test]
    fn overlong_socket_path_is_a_usage_error() {
        let dirs = Dirs {
            runtime: PathBuf::from(format!("/tmp/{}", "d".repeat(90))),
            state: PathBuf::from("/tmp"),
        };
        let name = WorkerName::parse(&"w".repeat(30)).unwrap();
        assert!(matches!(
            dirs.checked_socket(&name),
            Err(Error {
                kind: crate::error::ErrorKind::Usage,
                ..
            })
        ));
    }
}

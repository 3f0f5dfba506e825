//! `leash doctor`: what leash needs, checked one by one, each with the fix. Secrets are
//! never printed: the environment is reported by variable names only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use console::style;

use super::common::{block_on, current_dir, resolve_claude, settings, target};
use super::json::{Check, CheckStatus as Status};
use super::{Global, Output};
use crate::claude::version::Version;
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::git;
use crate::paths::{Dirs, WorkerName, check_private_dir, project_root};
use crate::protocol::{Reply, Request, SessionState};
use crate::settings::{ConfigFile, Resolved};

fn check(
    name: &'static str,
    status: Status,
    message: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        check: name,
        status,
        message: message.into(),
        fix,
    }
}

/// The prefixes of variables that shape what claude does; only their names are shown.
const RELEVANT_ENV: &[&str] = &[
    "ANTHROPIC_",
    "CLAUDE_",
    "LEASH_",
    "IS_SANDBOX",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
];
const CREDENTIAL_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
];
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(global: &Global, out: &Output) -> Result<u8, Error> {
    let cwd = current_dir()?;
    let mut checks = vec![claude_check(&cwd)];
    let dirs = Dirs::from_env();
    match &dirs {
        Ok(dirs) => {
            checks.push(dir_check("runtime dir", &dirs.runtime));
            checks.push(socket_path_check(global));
            checks.push(dir_check("state dir", &dirs.state));
        }
        Err(e) => checks.push(check("directories", Status::Fail, e.message.clone(), None)),
    }
    checks.push(config_check(&cwd));
    if let Ok(dirs) = &dirs {
        checks.extend(block_on(async { Ok(worker_checks(dirs).await) })?);
    }
    checks.push(repository_check(&cwd));
    checks.push(environment_check());

    let failed = checks.iter().any(|c| c.status == Status::Fail);
    for c in &checks {
        if out.json {
            out.json(c);
            continue;
        }
        let tag = match c.status {
            Status::Pass => style("pass").green(),
            Status::Warn => style("warn").yellow(),
            Status::Fail => style("fail").red().bold(),
        };
        out.data(format!("{tag}  {:<13} {}", c.check, c.message));
        if let Some(fix) = &c.fix {
            out.data(format!("      {:<13} fix: {fix}", ""));
        }
    }
    Ok(if failed {
        ErrorKind::Setup.exit_code()
    } else {
        0
    })
}

fn claude_check(cwd: &Path) -> Check {
    let wanted = Resolved::load(cwd, &[])
        .and_then(|r| r.settings())
        .map_or_else(|_| "claude".to_string(), |s| s.claude);
    let path = match resolve_claude(&wanted) {
        Ok(path) => path,
        Err(e) => {
            return check(
                "claude",
                Status::Fail,
                e.message,
                Some("npm install -g @anthropic-ai/claude-code".to_string()),
            );
        }
    };
    let oldest = Version::oldest_supported();
    match version_of(&path) {
        Some(version) if Version::parse(&version).is_some_and(|v| v < oldest) => check(
            "claude",
            Status::Warn,
            format!(
                "{} ({version}) is older than {oldest}, the oldest claude leash supports",
                path.display()
            ),
            Some("npm install -g @anthropic-ai/claude-code@latest".to_string()),
        ),
        Some(version) => check(
            "claude",
            Status::Pass,
            format!("{} ({version})", path.display()),
            None,
        ),
        None => check(
            "claude",
            Status::Warn,
            format!(
                "{} did not tell its version within {} s",
                path.display(),
                VERSION_TIMEOUT.as_secs()
            ),
            Some(format!(
                "run `{} --version` to see what is wrong",
                path.display()
            )),
        ),
    }
}

/// `claude --version`, bounded in time.
fn version_of(path: &Path) -> Option<String> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A socket's path has a bound (`sun_path`): a runtime dir too deep for the worker the
/// commands here mean makes every other command fail, as finding that worker does.
fn socket_path_check(global: &Global) -> Check {
    match target(global) {
        Ok(target) => check(
            "socket path",
            Status::Pass,
            format!("{} fits", target.socket.display()),
            None,
        ),
        Err(e) => check("socket path", Status::Fail, e.message, e.hint),
    }
}

fn dir_check(name: &'static str, dir: &Path) -> Check {
    if !dir.exists() {
        return check(
            name,
            Status::Pass,
            format!("{} (created 0700 on first use)", dir.display()),
            None,
        );
    }
    match check_private_dir(dir) {
        Ok(()) => check(
            name,
            Status::Pass,
            format!("{} (private)", dir.display()),
            None,
        ),
        Err(e) => check(
            name,
            Status::Fail,
            e.message,
            Some(
                "use a directory of your own, mode 0700 (LEASH_RUNTIME_DIR / LEASH_STATE_DIR)"
                    .to_string(),
            ),
        ),
    }
}

fn config_check(cwd: &Path) -> Check {
    let file = match ConfigFile::find(cwd) {
        Ok(file) => file,
        Err(e) => {
            return check(
                "config",
                Status::Fail,
                e.message,
                Some("fix the file; `leash config` shows the keys".to_string()),
            );
        }
    };
    let usable = settings(&[]).map(|_| ());
    match (usable, file) {
        (Err(e), _) => check(
            "config",
            Status::Fail,
            e.message,
            Some("`leash config` shows each value and its source".to_string()),
        ),
        (Ok(()), Some(file)) => check(
            "config",
            Status::Pass,
            format!("{} is valid", file.path.display()),
            None,
        ),
        (Ok(()), None) => check(
            "config",
            Status::Pass,
            "defaults and environment (no .leash.toml)",
            None,
        ),
    }
}

/// Every known worker: running, failed, and sockets nobody serves.
async fn worker_checks(dirs: &Dirs) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut running = Vec::new();
    for worker in dirs.known_workers() {
        let Ok(target) = Target::for_worker(dirs.clone(), worker.clone()) else {
            continue;
        };
        checks.extend(state_checks(&worker, &target.state_dir));
        if let Some(host) = target.held_elsewhere() {
            running.push(format!("{worker} (on host {})", crate::human::safe(&host)));
            continue;
        }
        let status = tokio::time::timeout(Duration::from_secs(3), async {
            let conn = target.open().await.ok()??;
            match conn.call(&Request::Status).await.ok()? {
                Reply::Status(status) => Some(*status),
                _ => None,
            }
        })
        .await
        .ok()
        .flatten();
        match status {
            Some(status) if status.state == SessionState::Failed => checks.push(check(
                "worker",
                Status::Warn,
                format!(
                    "{worker} gave up on claude: {}",
                    status.failure.unwrap_or_default()
                ),
                Some(format!("leash --worker {worker} session start")),
            )),
            Some(status) => running.push(format!(
                "{worker} ({}, {} turns)",
                status.state, status.turns
            )),
            None if target.socket.exists() => checks.push(check(
                "socket",
                Status::Warn,
                format!("{} is stale: no daemon answers it", target.socket.display()),
                Some(format!(
                    "`leash --worker {worker} session start` replaces it, or delete the file"
                )),
            )),
            None => {}
        }
    }
    let message = if running.is_empty() {
        "none running".to_string()
    } else {
        format!("{} running: {}", running.len(), running.join(", "))
    };
    checks.insert(0, check("workers", Status::Pass, message, None));
    checks
}

/// The files a worker's daemon keeps, which anyone may have replaced.
const STATE_FILES: [&str; 5] = [
    crate::paths::RECORD_FILE,
    crate::paths::WORKER_FILE,
    crate::eventlog::LOG_FILE,
    crate::eventlog::ROTATED_FILE,
    crate::report::history::HISTORY_FILE,
];
/// Less room than this on a state disk, and a step's state may not be saved.
const LOW_SPACE: u64 = 1 << 20;

/// A worker's state as its daemon needs it: regular files (a FIFO or a link in their
/// place is refused), on a disk with room to save them (a failed save of the history
/// or the event log is only a warning where it happens, so it is shown here too).
fn state_checks(worker: &WorkerName, dir: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    for name in STATE_FILES {
        if let Err(e) = crate::state_file::open(&dir.join(name)) {
            checks.push(check(
                "state file",
                Status::Warn,
                format!("{worker}: {e}"),
                Some("move it away: leash writes a new one where it needs one".to_string()),
            ));
        }
    }
    if let Some(free) = free_bytes(dir).filter(|free| *free < LOW_SPACE) {
        checks.push(check(
            "state disk",
            Status::Warn,
            format!(
                "{worker}: {} has {} KiB free; its state (worker.json, session.json, the history, the event log) cannot be saved",
                dir.display(),
                free >> 10
            ),
            Some("free space on that disk, or point LEASH_STATE_DIR elsewhere".to_string()),
        ));
    }
    checks
}

/// The bytes an unprivileged write may still use on the disk holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid NUL-terminated path and a buffer of the right type, read only
    // after statvfs filled it.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

fn repository_check(cwd: &Path) -> Check {
    if !git::is_repository(cwd) {
        return check(
            "repository",
            Status::Warn,
            format!("{} is not in a git repository", cwd.display()),
            Some("`leash implement` and `leash loop` judge work by commits: run them in a git repository".to_string()),
        );
    }
    let root = project_root(cwd);
    let head = git::head(cwd).ok().flatten();
    let changes = git::changes(cwd).map(|c| c.len()).unwrap_or(0);
    let head = head.map_or("no commits yet".to_string(), |h| {
        format!("HEAD {}", git::short_id(&h))
    });
    check(
        "repository",
        Status::Pass,
        format!(
            "{} ({head}, {changes} uncommitted change(s))",
            root.display()
        ),
        None,
    )
}

/// What claude will inherit, by name only.
fn environment_check() -> Check {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| RELEVANT_ENV.iter().any(|prefix| name.starts_with(prefix)))
        .collect();
    names.sort();
    let listed = if names.is_empty() {
        "no ANTHROPIC_*, CLAUDE_* or LEASH_* variables".to_string()
    } else {
        format!("claude inherits {}", names.join(", "))
    };
    if CREDENTIAL_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        return check("environment", Status::Pass, listed, None);
    }
    check(
        "environment",
        Status::Warn,
        format!("{listed}; no API key in the environment, so claude relies on its own login"),
        Some("set ANTHROPIC_API_KEY, or log in once with `claude` (/login)".to_string()),
    )
}

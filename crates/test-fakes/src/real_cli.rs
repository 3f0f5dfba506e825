//! The real Claude Code CLI for the end-to-end tests and the benchmark: the version
//! pinned in `tests/claude-code/` (package.json + package-lock.json), installed with
//! `npm ci` into `.cache/claude-code/` so reruns find it at once.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the pinned package.json and package-lock.json live (committed).
pub fn pin_dir() -> PathBuf {
    crate::workspace_root().join("tests/claude-code")
}

/// Where the CLI is installed (ignored by git).
pub fn install_dir() -> PathBuf {
    crate::workspace_root().join(".cache/claude-code")
}

/// npm links the package's bin here; the postinstall puts the native binary behind it.
pub fn binary() -> PathBuf {
    install_dir().join("node_modules/.bin/claude")
}

/// A copy of the lock file written after an install succeeded: an install whose stamp
/// differs from the committed lock file is stale (or was cut short) and is redone.
fn stamp() -> PathBuf {
    install_dir().join("installed-from.package-lock.json")
}

const PACKAGE: &str = "@anthropic-ai/claude-code";
const PIN_FILES: [&str; 2] = ["package.json", "package-lock.json"];

/// Why the real CLI cannot be used.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// npm is not on PATH, so the CLI cannot be installed.
    NoNpm,
    /// `npm ci` (or the installed binary) failed.
    InstallFailed(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoNpm => write!(
                f,
                "npm is not on PATH, so {PACKAGE} cannot be installed into {}",
                install_dir().display()
            ),
            Unavailable::InstallFailed(why) => {
                write!(f, "installing {PACKAGE} failed: {why}")
            }
        }
    }
}

/// The version pinned in `tests/claude-code/package.json`.
pub fn pinned_version() -> String {
    let path = pin_dir().join("package.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    manifest["dependencies"][PACKAGE]
        .as_str()
        .unwrap_or_else(|| panic!("{} does not pin {PACKAGE}", path.display()))
        .to_string()
}

/// The installed CLI when it is the pinned version and was installed from the
/// committed lock file; otherwise why not.
pub fn installed() -> Result<PathBuf, String> {
    let lock = std::fs::read(pin_dir().join("package-lock.json"))
        .map_err(|e| format!("cannot read the pinned package-lock.json: {e}"))?;
    if std::fs::read(stamp()).ok().as_deref() != Some(lock.as_slice()) {
        return Err("not installed from the current tests/claude-code/package-lock.json".into());
    }
    let binary = binary();
    let output = Command::new(&binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    // `2.1.332 (Claude Code)`. Without its postinstall, the bin is a placeholder.
    let pinned = pinned_version();
    if !output.status.success() || version.split_whitespace().next() != Some(pinned.as_str()) {
        return Err(format!(
            "{} --version says {:?} (exit {:?}), not {pinned}; was its postinstall blocked?",
            binary.display(),
            version.trim(),
            output.status.code()
        ));
    }
    Ok(binary)
}

/// The pinned CLI, installed with `npm ci` first when it is missing or stale. Safe to
/// call from several processes at once: installs are serialized by a file lock.
pub fn install() -> Result<PathBuf, Unavailable> {
    if let Ok(binary) = installed() {
        return Ok(binary);
    }
    let dir = install_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Unavailable::InstallFailed(format!("cannot create {}: {e}", dir.display())))?;
    let _lock = lock_file(&dir.with_extension("lock"))?;
    // Someone else may have installed it while we waited for the lock.
    if let Ok(binary) = installed() {
        return Ok(binary);
    }
    let npm = which::which("npm").map_err(|_| Unavailable::NoNpm)?;
    let _ = std::fs::remove_file(stamp());
    for file in PIN_FILES {
        std::fs::copy(pin_dir().join(file), dir.join(file))
            .map_err(|e| Unavailable::InstallFailed(format!("cannot copy {file}: {e}")))?;
    }
    let output = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        // CI runs without a terminal: npm must never wait for an answer.
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Unavailable::InstallFailed(format!("cannot run npm: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(Unavailable::InstallFailed(format!(
            "`npm ci` in {} exited {:?}:\n{}",
            dir.display(),
            output.status.code(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    std::fs::copy(pin_dir().join("package-lock.json"), stamp())
        .map_err(|e| Unavailable::InstallFailed(format!("cannot write the install stamp: {e}")))?;
    installed().map_err(Unavailable::InstallFailed)
}

/// An exclusive lock held until the file is dropped.
fn lock_file(path: &Path) -> Result<File, Unavailable> {
    let file = File::create(path).map_err(|e| {
        Unavailable::InstallFailed(format!("cannot create {}: {e}", path.display()))
    })?;
    // SAFETY: flock only acts on the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Unavailable::InstallFailed(format!(
            "cannot lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(file)
}

/// The environment that points the real CLI at a fake Messages API at `base_url`,
/// offline, with everything it writes outside HOME under `tmpdir` (it leaves
/// `$TMPDIR/cc-socks/<pid>.sock` and `$TMPDIR/claude-<uid>/` behind).
pub fn offline_env(base_url: &str, tmpdir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", base_url.to_string()),
        ("ANTHROPIC_API_KEY", "sk-test".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
        ("DISABLE_AUTOUPDATER", "1".to_string()),
        // Otherwise one 529 makes the CLI retry for minutes.
        ("CLAUDE_CODE_MAX_RETRIES", "0".to_string()),
        // Tests and benchmarks may run as root, where the CLI wants a sandbox.
        ("IS_SANDBOX", "1".to_string()),
        ("TMPDIR", tmpdir.display().to_string()),
    ]
}

/// Whether an inherited variable could steer the CLI elsewhere (a developer's own
/// credentials, provider or config dir): such variables never reach a test's claude.
pub fn steers_claude(name: &str) -> bool {
    name.starts_with("ANTHROPIC_") || name.starts_with("CLAUDE")
}

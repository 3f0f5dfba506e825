//! The real Claude Code CLI for the end-to-end tests and the benchmark, in two pinned
//! versions: the newest leash was measured against (`tests/claude-code/`) and the
//! oldest it supports (`tests/claude-code-floor/`), each a package.json and
//! package-lock.json installed with `npm ci` into `.cache/` so reruns find it at once.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One pinned version of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// Its name in test names and messages.
    pub name: &'static str,
    /// Where its package.json and package-lock.json live (committed), from the root.
    dir: &'static str,
}

/// The newest CLI leash was measured against.
pub const NEWEST: Pin = Pin {
    name: "newest",
    dir: "tests/claude-code",
};

/// The oldest CLI leash supports.
pub const FLOOR: Pin = Pin {
    name: "floor",
    dir: "tests/claude-code-floor",
};

impl Pin {
    /// Where the pinned package.json and package-lock.json live.
    pub fn pin_dir(&self) -> PathBuf {
        crate::workspace_root().join(self.dir)
    }

    /// Where the CLI is installed (ignored by git): `.cache/claude-code[-floor]`.
    pub fn install_dir(&self) -> PathBuf {
        let name = Path::new(self.dir).file_name().unwrap_or_default();
        crate::workspace_root().join(".cache").join(name)
    }

    /// npm links the package's bin here.
    pub fn binary(&self) -> PathBuf {
        self.install_dir().join("node_modules/.bin/claude")
    }

    /// A copy of the lock file written after an install succeeded: an install whose
    /// stamp differs from the committed lock file is stale (or was cut short) and is
    /// redone.
    fn stamp(&self) -> PathBuf {
        self.install_dir().join("installed-from.package-lock.json")
    }
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
            Unavailable::NoNpm => write!(f, "npm is not on PATH, so {PACKAGE} cannot be installed"),
            Unavailable::InstallFailed(why) => {
                write!(f, "installing {PACKAGE} failed: {why}")
            }
        }
    }
}

impl Pin {
    /// The version pinned in its package.json.
    pub fn pinned_version(&self) -> String {
        let path = self.pin_dir().join("package.json");
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
    pub fn installed(&self) -> Result<PathBuf, String> {
        let lock = std::fs::read(self.pin_dir().join("package-lock.json"))
            .map_err(|e| format!("cannot read the pinned package-lock.json: {e}"))?;
        if std::fs::read(self.stamp()).ok().as_deref() != Some(lock.as_slice()) {
            return Err(format!(
                "not installed from the current {}/package-lock.json",
                self.dir
            ));
        }
        let binary = self.binary();
        let output = Command::new(&binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let version = String::from_utf8_lossy(&output.stdout);
        // `2.1.332 (Claude Code)`. Without its postinstall, the bin is a placeholder.
        let pinned = self.pinned_version();
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
    pub fn install(&self) -> Result<PathBuf, Unavailable> {
        if let Ok(binary) = self.installed() {
            return Ok(binary);
        }
        let dir = self.install_dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            Unavailable::InstallFailed(format!("cannot create {}: {e}", dir.display()))
        })?;
        let _lock = lock_file(&dir.with_extension("lock"))?;
        // Someone else may have installed it while we waited for the lock.
        if let Ok(binary) = self.installed() {
            return Ok(binary);
        }
        let npm = which::which("npm").map_err(|_| Unavailable::NoNpm)?;
        let _ = std::fs::remove_file(self.stamp());
        for file in PIN_FILES {
            std::fs::copy(self.pin_dir().join(file), dir.join(file))
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
        std::fs::copy(self.pin_dir().join("package-lock.json"), self.stamp()).map_err(|e| {
            Unavailable::InstallFailed(format!("cannot write the install stamp: {e}"))
        })?;
        self.installed().map_err(Unavailable::InstallFailed)
    }
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

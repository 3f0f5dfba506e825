//! What leash's tests and benchmarks drive instead of the real service, kept out of the
//! shipped package:
//!
//! - [`fake_claude()`]: a scripted stand-in for the `claude` CLI in stream-json mode
//!   (`src/bin/fake-claude.rs`), for the integration tests and the benchmarks;
//! - [`fake_api`]: a fake Anthropic Messages API on 127.0.0.1 that the real CLI is
//!   pointed at in the end-to-end tests;
//! - [`real_cli`]: the real CLI, pinned in `tests/claude-code/` and installed with
//!   `npm ci` on first use.

pub mod fake_api;
pub mod real_cli;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root (leash's own manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `fake-claude` binary of the build profile the caller was built with, built first
/// when it is missing or older than its source (so `cargo test --test session` alone
/// works as well as the full `cargo test`, which builds it anyway).
pub fn fake_claude() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // A test or bench runs from target/<profile>/deps/; the binary sits in target/<profile>/.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>")
            .to_path_buf();
        let binary = profile_dir.join("fake-claude");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/fake-claude");
        if is_stale(&binary, &source) {
            build_fake_claude(&profile_dir);
        }
        binary
    })
    .clone()
}

/// The binary is older than any file of its source directory.
fn is_stale(binary: &Path, source: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let written = std::fs::read_dir(source)
        .into_iter()
        .flatten()
        .filter_map(|entry| modified(&entry.ok()?.path()))
        .max();
    match (modified(binary), written) {
        (Some(built), Some(written)) => built < written,
        _ => true,
    }
}

fn build_fake_claude(profile_dir: &Path) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "test-fakes",
            "--bin",
            "fake-claude",
        ])
        .current_dir(workspace_root());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let status = command
        .status()
        .expect("cannot run cargo to build fake-claude");
    assert!(status.success(), "building fake-claude failed: {status}");
}

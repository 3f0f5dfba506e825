//! The worker's checks, as its daemon runs them: with the shared runner
//! ([`crate::check_run`]), the running check recorded in the worker's state dir
//! (`check.pid`) so the next daemon stops what is left of it before it runs the check
//! again.

use std::path::{Path, PathBuf};

use crate::process::Leftover;

pub use crate::check_run::Checking;

/// The record of the check running now, in the worker's state dir.
const CHECK_PID_FILE: &str = "check.pid";

/// Where a worker's daemon records the check it runs.
pub fn record_file(state_dir: &Path) -> PathBuf {
    state_dir.join(CHECK_PID_FILE)
}

/// Stops what is left of a check a daemon of this worker was running when it died.
pub fn stop_left_behind(state_dir: &Path) -> Leftover {
    crate::check_run::stop_left_behind(&record_file(state_dir))
}

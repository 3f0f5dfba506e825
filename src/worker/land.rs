//! What `leash land` asks of a worker's daemon: the words land and the worker's step
//! share. A landing runs as a step in the worker's own daemon, so no hook nudge or
//! other step touches the worker's branch and worktree meanwhile.

use serde::{Deserialize, Serialize};

use super::checks::CheckResult;

/// One landing order for a worker's branch `leash/NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum LandOrder {
    /// The branch conflicts with the target, or fails the landing checks on it: hand it
    /// back to the worker in its own conversation (landing turns, capped by its nudges,
    /// with their backoff) until the branch descends from `target_tip`, the worktree is
    /// clean with no rebase or merge in progress, and the landing checks pass there.
    /// The branch's tip before is kept at `refs/leash/pre-land/NAME`; a worker that
    /// cannot resolve gets its branch and worktree back as they were.
    Resolve {
        /// The target branch.
        target: String,
        /// The target's tip land saw.
        target_tip: String,
        trouble: LandTrouble,
        /// The subjects of what landed on the target since the branch began, oldest
        /// first.
        landed_since: Vec<String>,
    },
    /// `land` moved the target to `landed`, a commit holding the worker's work rebased
    /// (`branch_tip`): the branch becomes `branch_tip`, if it is still at
    /// `expected_tip`, and the worktree follows; the task records `landed`.
    Adopt {
        target: String,
        landed: String,
        branch_tip: String,
        expected_tip: String,
    },
    /// Give a landing up: the branch and worktree back as they were before it (from
    /// `refs/leash/pre-land/NAME`), a half-done rebase or merge aborted.
    Restore,
}

/// Why a branch goes back to its worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trouble", rename_all = "snake_case")]
pub enum LandTrouble {
    /// Rebasing onto the target stopped on these files.
    Conflict { files: Vec<String> },
    /// Rebased onto the target, a landing check failed: these ran, the last failed.
    ChecksFailed { checks: Vec<CheckResult> },
}

//! The one error type and the exit-code table. Exit codes are a public interface:
//! scripts branch on them, the README and the man page print this table, and tests
//! hold the binary to it.

use serde::{Deserialize, Serialize};

/// Why a command failed, as scripts see it; each kind has its exit code (see the
/// table in `leash --help`). The numbers never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Internal,
    Usage,
    NoSession,
    Setup,
    Provider,
    TurnFailed,
    NotCommitted,
    Blocked,
    NotYetCommitted,
    BudgetExhausted,
    Busy,
    Dirty,
    NotLanded,
    Interrupted,
}

impl ErrorKind {
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NoSession => 3,
            ErrorKind::Setup => 4,
            ErrorKind::Provider => 5,
            ErrorKind::TurnFailed => 6,
            ErrorKind::NotCommitted => 10,
            ErrorKind::Blocked => 11,
            ErrorKind::NotYetCommitted => 12,
            ErrorKind::BudgetExhausted => 13,
            ErrorKind::Busy => 14,
            ErrorKind::Dirty => 15,
            ErrorKind::NotLanded => 16,
            ErrorKind::Interrupted => 130,
        }
    }
}

/// `(code, meaning)` for every exit code leash uses, for the README and the man page.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "success: the turn answered, the phase is done, the command did what it said",
    ),
    (
        ErrorKind::Internal.exit_code(),
        "internal error: a bug or an unexpected I/O failure",
    ),
    (
        ErrorKind::Usage.exit_code(),
        "usage: bad flags, arguments or input",
    ),
    (
        ErrorKind::NoSession.exit_code(),
        "no such session: the worker is not running and --no-start was given",
    ),
    (
        ErrorKind::Setup.exit_code(),
        "setup: claude not found, unsafe directories, or the daemon could not start",
    ),
    (
        ErrorKind::Provider.exit_code(),
        "provider error: the API kept failing (429/529/5xx) after retries",
    ),
    (
        ErrorKind::TurnFailed.exit_code(),
        "turn failed: claude reported an error, crashed or hung",
    ),
    (
        ErrorKind::NotCommitted.exit_code(),
        "not done after the nudge cap (uncommitted, checks failing, or changes requested); `loop --attempts`: no attempt passed",
    ),
    (
        ErrorKind::Blocked.exit_code(),
        "the agent declared itself blocked",
    ),
    (
        ErrorKind::NotYetCommitted.exit_code(),
        "not done yet, nudges remain (uncommitted, checks failing, changes requested, or planned again; `leash nudge` pushes on)",
    ),
    (
        ErrorKind::BudgetExhausted.exit_code(),
        "budget exhausted: the task's turns cost its --budget (task_budget_usd); no further turn was sent (`loop --attempts`: the shared budget stopped every attempt that did not pass)",
    ),
    (
        ErrorKind::Busy.exit_code(),
        "busy: the worker is on another task (wait, use another --worker, or --fresh), this command's task was replaced, the session's queue is full, its daemon runs on another host (named), or another `leash land` holds the repository (`--no-wait`); try again later",
    ),
    (
        ErrorKind::Dirty.exit_code(),
        "dirty: the worker's worktree holds work git could not give back (uncommitted, untracked or ignored files, submodules, commits on no ref) or is locked or out of git's sight, so `session rm` kept it (`--force` removes it)",
    ),
    (
        ErrorKind::NotLanded.exit_code(),
        "not landed: `leash land` could not land a candidate (a conflict or a landing check its worker did not resolve, a dirty work tree on the target; each named with why); the others landed",
    ),
    (
        ErrorKind::Interrupted.exit_code(),
        "interrupted (Ctrl-C or `leash session interrupt`)",
    ),
];

/// One line that says what happened, a hint saying what to do about it, and the kind
/// that picks the exit code. Printed cargo-style: `error: ...` then `hint: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// What the user can do about it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn setup(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Setup, message)
    }

    pub fn turn_failed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::TurnFailed, message)
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// Wraps an I/O failure with what leash was doing at the time.
    pub fn io(context: impl std::fmt::Display, err: std::io::Error) -> Error {
        Error::internal(format!("{context}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_unique() {
        let mut codes: Vec<u8> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), EXIT_CODES.len());
    }
}

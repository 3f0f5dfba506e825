//! Everything about the `claude` child: its stream-json messages, its process, and the
//! session that owns both.

/// The oldest Claude Code leash works with: the first whose results carry
/// `api_error_status`, and the oldest the end-to-end suite passes on
/// (`tests/claude-code-floor/` pins it).
pub const OLDEST_SUPPORTED: &str = "2.1.110";

/// The newest Claude Code leash was measured against (`tests/claude-code/` pins it).
pub const NEWEST_TESTED: &str = "2.1.332";

pub(crate) mod child;
pub(crate) mod context;
pub mod conversation;
pub(crate) mod cost;
pub mod display;
pub mod limits;
pub mod messages;
pub(crate) mod session;
pub mod transcript;
pub mod version;

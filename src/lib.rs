//! leash: one long-lived Claude Code process per coding worker, owned by a background
//! session daemon and driven over a Unix socket.
//!
//! Data flows one way: command ([`cli`]) -> [`client`] -> socket ([`protocol`]) ->
//! [`daemon`] -> [`claude`] child, and events flow back the same path.

pub(crate) mod check_run;
pub mod claude;
pub mod cli;
pub(crate) mod client;
pub(crate) mod daemon;
pub mod docs;
pub mod error;
pub(crate) mod eventlog;
pub mod framing;
pub(crate) mod git;
pub(crate) mod human;
pub(crate) mod land;
pub(crate) mod landing_git;
pub(crate) mod paths;
pub(crate) mod pid_record;
pub(crate) mod process;
pub mod protocol;
pub(crate) mod record;
pub mod report;
pub mod retry;
pub mod settings;
pub(crate) mod state_file;
pub(crate) mod table;
pub(crate) mod time;
pub mod turn;
pub mod worker;
pub(crate) mod worktree;

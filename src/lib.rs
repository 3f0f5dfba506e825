//! leash: one long-lived Claude Code process per coding worker, owned by a background
//! session daemon and driven over a Unix socket.
//!
//! Data flows one way: command ([`cli`]) -> [`client`] -> socket ([`protocol`]) ->
//! [`daemon`] -> [`claude`] child, and events flow back the same path.

pub mod claude;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod docs;
pub mod error;
pub mod eventlog;
pub mod framing;
pub mod git;
pub mod paths;
pub mod process;
pub mod protocol;
pub mod record;
pub mod retry;
pub mod settings;
pub mod time;
pub mod turn;
pub mod worker;

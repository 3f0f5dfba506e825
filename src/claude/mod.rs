//! Everything about the `claude` child: its stream-json messages, its process, and the
//! session that owns both.

pub(crate) mod child;
pub(crate) mod context;
pub(crate) mod conversation;
pub mod messages;
pub(crate) mod session;

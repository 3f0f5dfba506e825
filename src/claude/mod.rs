//! Everything about the `claude` child: its stream-json messages, its process, and the
//! session that owns both.

pub mod child;
pub mod messages;
pub mod session;

//! Everything about the `claude` child: its stream-json messages and its process.

pub mod child;
pub mod messages;

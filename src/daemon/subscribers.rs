//! Where events go: the worker's event log and the clients that follow it. [`emit`]
//! is the only way out: it stamps an event with its seq and time, appends it to the
//! log and offers it to every subscriber that wants it.
//!
//! [`emit`]: Subscribers::emit

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::feed::{Feed, Offer, Outgoing};
use crate::eventlog::EventLog;
use crate::protocol::{Event, EventBody, Level, to_line};
use crate::time::now_ms;

/// The event after which a subscriber's request is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    TurnEnded,
    Judged,
    Never,
}

struct Subscriber {
    /// `None` follows everything; `Some(turn)` only that turn (or worker step).
    turn: Option<u64>,
    until: Until,
    feed: Feed,
}

pub struct Subscribers {
    log: EventLog,
    subscribers: Vec<Subscriber>,
}

impl Subscribers {
    pub fn new(log: EventLog) -> Subscribers {
        Subscribers {
            log,
            subscribers: Vec::new(),
        }
    }

    /// Sends a turn's (or step's) events to `feed` until `until`.
    pub fn subscribe(&mut self, turn: u64, until: Until, feed: Feed) {
        self.subscribers.push(Subscriber {
            turn: Some(turn),
            until,
            feed,
        });
    }

    /// Sends every event to `feed` from now on; returns the seq of the newest event
    /// already in the (flushed) log, so the caller can replay the log up to it.
    pub fn follow(&mut self, feed: Feed) -> u64 {
        self.flush();
        self.subscribers.push(Subscriber {
            turn: None,
            until: Until::Never,
            feed,
        });
        self.log.last_seq()
    }

    /// Makes the log durable; done whenever the daemon has nothing else to do.
    pub fn flush(&mut self) {
        if let Err(e) = self.log.flush() {
            eprintln!("leash daemon: cannot write the event log: {e}");
        }
    }

    pub fn log_path(&self) -> std::path::PathBuf {
        self.log.path()
    }

    pub fn info(&mut self, turn: Option<u64>, message: String) {
        self.notice(turn, Level::Info, message);
    }

    pub fn warn(&mut self, turn: Option<u64>, message: String) {
        self.notice(turn, Level::Warn, message);
    }

    fn notice(&mut self, turn: Option<u64>, level: Level, message: String) {
        self.emit(turn, EventBody::<Value>::Notice { level, message });
    }

    /// Stamps an event, logs it and offers it to every subscriber that wants it. A
    /// subscriber whose queue is full is dropped: one slow client must not slow claude
    /// or the others.
    pub fn emit<M: Serialize>(&mut self, turn: Option<u64>, body: EventBody<M>) {
        let ends = match &body {
            EventBody::TurnEnded { .. } => Until::TurnEnded,
            EventBody::Judged { .. } => Until::Judged,
            _ => Until::Never,
        };
        let event = Event {
            seq: self.log.take_seq(),
            ts: now_ms(),
            turn,
            body,
        };
        let line = to_line(&event);
        if let Err(e) = self.log.append(&line) {
            eprintln!("leash daemon: cannot write the event log: {e}");
        }
        let line: Arc<str> = Arc::from(line);
        let mut dropped = 0;
        self.subscribers.retain(|sub| {
            let wants = sub.turn.is_none() || sub.turn == turn;
            if !wants {
                return true;
            }
            let last = sub.until != Until::Never && sub.until == ends;
            let out = Outgoing {
                line: line.clone(),
                last,
            };
            match sub.feed.offer(out) {
                // A client whose request is complete has its feed closed.
                Offer::Sent => !last,
                Offer::TooSlow => {
                    dropped += 1;
                    false
                }
                Offer::Closed => false,
            }
        });
        if dropped > 0 {
            self.warn(
                turn,
                format!("dropped {dropped} client(s) that read too slowly; the session goes on"),
            );
        }
    }
}

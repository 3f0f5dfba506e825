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
use crate::protocol::{Event, EventBody, Fault, Level, to_line};
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
    /// The log could not be written (a full disk): told once, until a write succeeds.
    log_failing: bool,
    /// That warning, when it came up between jobs: for the next job's command.
    untold: Option<String>,
}

impl Subscribers {
    pub fn new(log: EventLog) -> Subscribers {
        Subscribers {
            log,
            subscribers: Vec::new(),
            log_failing: false,
            untold: None,
        }
    }

    /// A failed write of the log is a warning to the clients (the one place it can
    /// still go), once per stretch of failures.
    fn log_failed(&mut self, turn: Option<u64>, e: &std::io::Error) {
        log_line!("leash daemon: cannot write the event log: {e}");
        if std::mem::replace(&mut self.log_failing, true) {
            return;
        }
        let warning = format!(
            "cannot write the event log {}: {e}; `leash session logs` and `leash report` miss what happens until it can",
            self.log.path().display()
        );
        if turn.is_none() {
            self.untold = Some(warning.clone());
        }
        self.warn(turn, warning);
    }

    /// A failed write of the log that no job's command has heard of yet.
    pub fn take_untold(&mut self) -> Option<String> {
        self.untold.take()
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
        match self.log.flush() {
            Ok(()) => self.log_failing = false,
            Err(e) => self.log_failed(None, &e),
        }
    }

    pub fn log_path(&self) -> std::path::PathBuf {
        self.log.path()
    }

    pub fn info(&mut self, turn: Option<u64>, message: String) {
        self.notice(turn, Level::Info, message, None);
    }

    pub fn warn(&mut self, turn: Option<u64>, message: String) {
        self.notice(turn, Level::Warn, message, None);
    }

    /// A warning that tells of a fault on the worker's way.
    pub fn fault(&mut self, turn: Option<u64>, fault: Fault, message: String) {
        self.notice(turn, Level::Warn, message, Some(fault));
    }

    fn notice(&mut self, turn: Option<u64>, level: Level, message: String, fault: Option<Fault>) {
        self.emit(
            turn,
            EventBody::<Value>::Notice {
                level,
                message,
                fault,
            },
        );
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
        let appended = self.log.append(&line);
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
        if let Err(e) = appended {
            self.log_failed(turn, &e);
        }
        if dropped > 0 {
            self.warn(
                turn,
                format!("dropped {dropped} client(s) that read too slowly; the session goes on"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::feed;

    fn notice(text: &str) -> EventBody<Value> {
        EventBody::Notice {
            level: Level::Info,
            message: text.to_string(),
            fault: None,
        }
    }

    fn drain(rx: &mut feed::FeedReceiver) -> Vec<(String, bool)> {
        std::iter::from_fn(|| rx.try_recv())
            .map(|out| (out.line.to_string(), out.last))
            .collect()
    }

    #[test]
    fn a_turns_client_gets_its_turn_until_it_ends_and_a_follower_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Subscribers::new(EventLog::open(dir.path(), 1 << 20).unwrap());
        let (turn_feed, mut turn_rx) = feed::channel(1 << 20);
        let (follow_feed, mut follow_rx) = feed::channel(1 << 20);
        out.subscribe(7, Until::TurnEnded, turn_feed);
        assert_eq!(out.follow(follow_feed), 0, "nothing logged yet");
        out.emit(Some(7), notice("mine"));
        out.emit(Some(8), notice("not mine"));
        out.emit(None, notice("between turns"));
        let outcome = crate::turn::Outcome {
            status: crate::turn::TurnStatus::Success,
            exit_code: 0,
            turn: 7,
            result: None,
            message: None,
            session_id: String::new(),
            model: None,
            cost_usd: None,
            duration_ms: 0,
            api_error_status: None,
            retries: 0,
        };
        out.emit(Some(7), EventBody::<Value>::TurnEnded { outcome });
        out.emit(Some(7), notice("after its end"));
        let mine = drain(&mut turn_rx);
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert!(mine[0].0.contains("\"mine\"") && !mine[0].1);
        assert!(
            mine[1].0.contains("turn_ended") && mine[1].1,
            "the end is the last line"
        );
        assert_eq!(drain(&mut follow_rx).len(), 5);
        out.flush();
        let logged = crate::eventlog::read_entries(dir.path(), None, None).unwrap();
        let seqs: Vec<u64> = logged
            .iter()
            .filter_map(|l| crate::eventlog::seq_of(l))
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_client_that_falls_behind_is_dropped_and_the_log_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Subscribers::new(EventLog::open(dir.path(), 1 << 20).unwrap());
        let (slow, _slow_rx) = feed::channel(100);
        out.subscribe(1, Until::TurnEnded, slow);
        for i in 0..10 {
            out.emit(Some(1), notice(&format!("line {i}")));
        }
        out.flush();
        let logged = std::fs::read_to_string(out.log_path()).unwrap();
        assert_eq!(logged.matches("read too slowly").count(), 1, "{logged}");
    }
}

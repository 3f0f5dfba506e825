//! Turning what happens into events: stamped, logged, and offered to subscribers.

use super::*;

impl Actor {
    pub(super) fn notice(&mut self, turn: Option<u64>, message: String) {
        self.emit(turn, |seq, ts| Event::<Value>::Notice {
            seq,
            ts,
            turn,
            level: Level::Info,
            message,
        });
    }

    pub(super) fn warn(&mut self, turn: Option<u64>, message: String) {
        self.emit(turn, |seq, ts| Event::<Value>::Notice {
            seq,
            ts,
            turn,
            level: Level::Warn,
            message,
        });
    }

    /// Stamps an event with its seq and time, appends it to the log and offers it to
    /// every subscriber that wants it. A subscriber whose queue is full is dropped:
    /// one slow client must not slow claude or the others.
    pub(super) fn emit<M: Serialize>(
        &mut self,
        turn: Option<u64>,
        event: impl FnOnce(u64, u64) -> Event<M>,
    ) {
        let event = event(self.log.take_seq(), now_ms());
        let ends = match &event {
            Event::TurnEnded { .. } => Until::TurnEnded,
            Event::Judged { .. } => Until::Judged,
            _ => Until::Never,
        };
        let line = to_line(&event);
        if let Err(e) = self.log.append(&line) {
            eprintln!("leash daemon: cannot write the event log: {e}");
        }
        let line: Arc<str> = Arc::from(line);
        let mut dropped = 0;
        self.subscribers.retain(|sub| {
            let wants = match sub.turn {
                None => true,
                Some(t) => turn == Some(t),
            };
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

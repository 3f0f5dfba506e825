//! A client's feed of events: the actor offers lines, the connection takes them. The
//! queue is bounded by bytes, not lines (claude's lines range from a few bytes to many
//! MiB): a client that falls further behind than its budget is dropped, so one slow
//! reader never slows claude, the daemon or anyone else, and memory stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// A serialized event on its way to one client.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub line: Arc<str>,
    /// The last line this client's request needs: its turn ended or its step was judged.
    pub last: bool,
}

struct Shared {
    queued_bytes: AtomicUsize,
    too_slow: AtomicBool,
    budget: usize,
}

/// The actor's end.
pub struct Feed {
    tx: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

/// The connection's end.
pub struct FeedReceiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Sent,
    /// Over budget: the feed is closed and the client told why.
    TooSlow,
    /// The client is gone.
    Closed,
}

pub fn channel(budget: usize) -> (Feed, FeedReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued_bytes: AtomicUsize::new(0),
        too_slow: AtomicBool::new(false),
        budget,
    });
    (
        Feed {
            tx,
            shared: shared.clone(),
        },
        FeedReceiver { rx, shared },
    )
}

impl Feed {
    pub fn offer(&self, out: Outgoing) -> Offer {
        let size = out.line.len();
        // The budget bounds the backlog a line joins, so one line larger than the
        // budget still reaches a client that has kept up.
        let backlog = self.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if backlog > self.shared.budget {
            self.shared.too_slow.store(true, Ordering::Release);
            return Offer::TooSlow;
        }
        match self.tx.send(out) {
            Ok(()) => Offer::Sent,
            Err(_) => Offer::Closed,
        }
    }
}

impl FeedReceiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.recv().await?;
        self.taken(&out);
        Some(out)
    }

    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.try_recv().ok()?;
        self.taken(&out);
        Some(out)
    }

    fn taken(&self, out: &Outgoing) {
        self.shared
            .queued_bytes
            .fetch_sub(out.line.len(), Ordering::AcqRel);
    }

    /// Whether the feed ended because this client fell too far behind.
    pub fn dropped_for_slowness(&self) -> bool {
        self.shared.too_slow.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Outgoing {
        Outgoing {
            line: Arc::from("x".repeat(n)),
            last: false,
        }
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_is_never_dropped() {
        let (feed, mut rx) = channel(100);
        for _ in 0..1000 {
            assert_eq!(feed.offer(line(60)), Offer::Sent);
            assert!(rx.recv().await.is_some());
        }
    }

    #[tokio::test]
    async fn one_line_larger_than_the_budget_still_reaches_a_reader_that_kept_up() {
        let (feed, mut rx) = channel(100);
        assert_eq!(feed.offer(line(1000)), Offer::Sent);
        assert!(rx.recv().await.is_some());
        assert_eq!(feed.offer(line(1000)), Offer::Sent);
    }

    #[tokio::test]
    async fn falling_behind_the_byte_budget_drops_the_feed() {
        let (feed, mut rx) = channel(100);
        assert_eq!(feed.offer(line(60)), Offer::Sent);
        assert_eq!(feed.offer(line(60)), Offer::Sent);
        assert_eq!(feed.offer(line(60)), Offer::TooSlow);
        drop(feed);
        assert!(
            rx.recv().await.is_some(),
            "what was queued is still delivered"
        );
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
        assert!(rx.dropped_for_slowness());
    }
}

//! The daemon's own life: whether it was asked to stop (and who waits for that), how
//! many clients are connected, and when it stops for lack of use.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::answer::Answer;

/// Counts connected clients; the idle timeout only runs while it is zero.
#[derive(Clone, Default)]
pub struct ClientCount(Arc<AtomicUsize>);

/// One connected client, counted until it is dropped.
pub struct ClientGuard(Arc<AtomicUsize>);

impl ClientCount {
    pub fn enter(&self) -> ClientGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ClientGuard(self.0.clone())
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Lifecycle {
    stop_requested: bool,
    /// Who asked to stop, answered once the socket is gone.
    stop_replies: Vec<Answer>,
    clients: ClientCount,
    idle_timeout: Duration,
    started: Instant,
    last_activity: Instant,
}

impl Lifecycle {
    pub fn new(clients: ClientCount, idle_timeout: Duration) -> Lifecycle {
        Lifecycle {
            stop_requested: false,
            stop_replies: Vec::new(),
            clients,
            idle_timeout,
            started: Instant::now(),
            last_activity: Instant::now(),
        }
    }

    /// Stop, and answer `reply` once stopped.
    pub fn request_stop(&mut self, reply: Answer) {
        self.stop_requested = true;
        self.stop_replies.push(reply);
    }

    pub fn stopping(&self) -> bool {
        self.stop_requested
    }

    pub fn take_stop_replies(&mut self) -> Vec<Answer> {
        std::mem::take(&mut self.stop_replies)
    }

    /// Work arrived or ended: the idle clock starts over.
    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    /// When the daemon stops for lack of use; `None` never.
    pub fn idle_deadline(&self) -> Option<Instant> {
        (!self.idle_timeout.is_zero()).then(|| self.last_activity + self.idle_timeout)
    }

    /// The idle deadline passed: true when the daemon should stop (no client is
    /// connected), else the clock starts over.
    pub fn idle_expired(&mut self) -> bool {
        if self.clients.get() == 0 {
            return true;
        }
        self.touch();
        false
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Seconds since the daemon started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unused_daemon_stops_only_when_no_client_is_connected() {
        let clients = ClientCount::default();
        let mut life = Lifecycle::new(clients.clone(), Duration::from_secs(60));
        let deadline = life.idle_deadline().unwrap();
        assert_eq!(deadline - Instant::now(), Duration::from_secs(60));
        let guard = clients.enter();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!life.idle_expired(), "a client is connected");
        assert!(
            life.idle_deadline().unwrap() > Instant::now(),
            "the clock started over"
        );
        drop(guard);
        assert!(life.idle_expired());
    }

    #[test]
    fn a_zero_idle_timeout_means_never() {
        let life = Lifecycle::new(ClientCount::default(), Duration::ZERO);
        assert_eq!(life.idle_deadline(), None);
    }

    #[test]
    fn every_stop_request_is_answered() {
        let mut life = Lifecycle::new(ClientCount::default(), Duration::ZERO);
        assert!(!life.stopping());
        let (first, _rx1) = Answer::new();
        let (second, _rx2) = Answer::new();
        life.request_stop(first);
        life.request_stop(Answer::none());
        life.request_stop(second);
        assert!(life.stopping());
        let replies = life.take_stop_replies();
        assert_eq!(replies.iter().filter(|a| a.awaited()).count(), 2);
    }
}

//! The claude process's lifecycle: not started, running, backing off after crashes, or
//! given up on. One private enum; only these methods move it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use super::super::child::{Child, ChildEvent, ExitInfo, SpawnSpec, Stdin};
use crate::error::Error;

/// The process's lifecycle.
enum State {
    /// No claude yet; one is spawned for the next turn.
    Cold,
    Running {
        child: Child,
        crashes: u32,
    },
    /// claude died or could not start `crashes` times in a row; the next spawn waits.
    BackingOff {
        crashes: u32,
    },
    /// leash gave up on claude; `retry` (from `session start`) tries again.
    Failed(String),
}

/// What the session needs before it spawns claude.
pub enum Spawn {
    Now {
        crashes: u32,
    },
    /// After crashes in a row: wait this long first.
    After {
        crashes: u32,
        delay: Duration,
    },
    /// Too many crashes in a row: leash gives up (the message says why).
    GiveUp(String),
    Failed(String),
}

const STDERR_TAIL: usize = 20;
const MAX_CRASH_DELAY: Duration = Duration::from_secs(60);

pub struct Process {
    state: State,
    /// Where the running claude's pid is kept, so a daemon killed without stopping it
    /// lets the next one kill it.
    pid_file: PathBuf,
    /// The record of the last claude started, for its group's leftovers once it is gone.
    last_record: Option<crate::pid_record::PidRecord>,
    /// Its record was taken again once it first spoke (see [`Process::settle_record`]).
    record_settled: bool,
    stderr_tail: VecDeque<String>,
    next_request: u64,
}

impl Process {
    pub fn new(pid_file: PathBuf) -> Process {
        Process {
            state: State::Cold,
            pid_file,
            last_record: None,
            record_settled: false,
            stderr_tail: VecDeque::new(),
            next_request: 1,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child().map(Child::pid)
    }

    /// Why leash gave up on claude, if it did.
    pub fn failure(&self) -> Option<String> {
        match &self.state {
            State::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }

    fn child(&self) -> Option<&Child> {
        match &self.state {
            State::Running { child, .. } => Some(child),
            _ => None,
        }
    }

    /// Crashes in a row so far.
    pub fn crashes(&self) -> u32 {
        match self.state {
            State::Running { crashes, .. } | State::BackingOff { crashes } => crashes,
            State::Cold | State::Failed(_) => 0,
        }
    }

    /// What a spawn must do first, given `max_crashes` and the first backoff.
    pub fn before_spawn(&self, max_crashes: u32, backoff: Duration) -> Option<Spawn> {
        let crashes = match &self.state {
            State::Running { .. } => return None,
            State::Failed(failure) => return Some(Spawn::Failed(failure.clone())),
            State::Cold => 0,
            State::BackingOff { crashes } => *crashes,
        };
        Some(if crashes >= max_crashes {
            Spawn::GiveUp(format!(
                "claude failed {crashes} times in a row; leash gave up{}",
                self.stderr_hint()
            ))
        } else if crashes > 0 {
            let delay = backoff
                .saturating_mul(1 << (crashes - 1).min(10))
                .min(MAX_CRASH_DELAY);
            Spawn::After { crashes, delay }
        } else {
            Spawn::Now { crashes }
        })
    }

    /// Starts claude; a failure to start counts as a crash.
    pub fn spawn(&mut self, spec: &SpawnSpec, crashes: u32) -> Result<u32, Error> {
        let child = match Child::spawn(spec) {
            Ok(child) => child,
            Err(e) => {
                self.state = State::BackingOff {
                    crashes: crashes + 1,
                };
                return Err(
                    Error::setup(format!("cannot start {}: {e}", spec.program.display()))
                        .hint("check --claude / LEASH_CLAUDE"),
                );
            }
        };
        let pid = child.pid();
        crate::process::record_claude(&self.pid_file, child.record());
        self.last_record = child.record().cloned();
        self.record_settled = false;
        self.stderr_tail.clear();
        self.state = State::Running { child, crashes };
        Ok(pid)
    }

    /// leash gives up on claude.
    pub fn give_up(&mut self, why: String) {
        self.state = State::Failed(why);
    }

    /// A start or a switch that went wrong counts as a crash; claude stays stopped.
    pub fn count_failure(&mut self, crashes: u32) {
        self.state = State::BackingOff {
            crashes: crashes + 1,
        };
    }

    /// After leash gave up (or while backing off), try again at once.
    pub fn retry(&mut self) -> bool {
        let again = matches!(self.state, State::Failed(_) | State::BackingOff { .. });
        if again {
            self.state = State::Cold;
        }
        again
    }

    /// A turn ended well: claude is healthy again.
    pub fn healthy(&mut self) {
        if let State::Running { crashes, .. } = &mut self.state {
            *crashes = 0;
        }
    }

    /// claude exited on its own: a crash. Returns its pid and binary.
    pub fn exited(&mut self) -> Option<(u32, PathBuf)> {
        let State::Running { child, crashes } = std::mem::replace(&mut self.state, State::Cold)
        else {
            return None;
        };
        self.after_exit(child.pid());
        self.state = State::BackingOff {
            crashes: crashes + 1,
        };
        Some((child.pid(), child.program().to_path_buf()))
    }

    /// Takes the running child out to stop it; the crash count survives the stop (a
    /// restart to switch settings is not a fresh start).
    pub fn take_for_stop(&mut self) -> Option<Child> {
        match std::mem::replace(&mut self.state, State::Cold) {
            State::Running { child, crashes } => {
                if crashes > 0 {
                    self.state = State::BackingOff { crashes };
                }
                Some(child)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// claude is gone: tools it started may outlive it in its group, and its pid is no
    /// longer one a later daemon should kill.
    pub fn after_exit(&self, pid: u32) {
        if let Some(record) = self.last_record.as_ref().filter(|r| r.pid == pid) {
            record.signal_group(libc::SIGKILL);
        }
        crate::process::forget_claude(&self.pid_file);
    }

    pub fn stdin(&self) -> Option<Stdin> {
        self.child().map(Child::stdin)
    }

    /// Queues one line for claude's stdin.
    pub fn write(&self, line: String) -> Result<(), Error> {
        match self.child() {
            Some(child) => child
                .stdin()
                .write(line)
                .map_err(|e| Error::turn_failed(e.to_string())),
            None => Err(Error::turn_failed("claude is not running")),
        }
    }

    pub fn request_id(&mut self) -> String {
        let id = format!("leash-{}-{}", std::process::id(), self.next_request);
        self.next_request += 1;
        id
    }

    /// The next thing claude did; never resolves while no claude runs.
    pub async fn next_event(&mut self) -> ChildEvent {
        let event = match &mut self.state {
            State::Running { child, .. } => child
                .next_event()
                .await
                .unwrap_or(ChildEvent::Exited(ExitInfo::UNKNOWN)),
            _ => std::future::pending().await,
        };
        self.settle_record(&event);
        event
    }

    /// What claude did that is already waiting, if anything.
    pub fn try_next_event(&mut self) -> Option<ChildEvent> {
        let event = match &mut self.state {
            State::Running { child, .. } => child.try_next_event(),
            _ => None,
        }?;
        self.settle_record(&event);
        Some(event)
    }

    /// claude's record is taken again when it first speaks: a `claude` that is a script
    /// (`#!/usr/bin/env node`) runs another executable by then than the moment it was
    /// started, and a record naming the first would prove nothing. The same process
    /// (same start time), or nothing.
    fn settle_record(&mut self, event: &ChildEvent) {
        if self.record_settled || !matches!(event, ChildEvent::Stdout(_)) {
            return;
        }
        self.record_settled = true;
        let (Some(pid), Some(first)) = (self.pid(), self.last_record.as_ref()) else {
            return;
        };
        let Some(now) = crate::pid_record::PidRecord::of(pid) else {
            return;
        };
        if now.start_time == first.start_time && now != *first {
            crate::process::record_claude(&self.pid_file, Some(&now));
            self.last_record = Some(now);
        }
    }

    /// claude uses more memory than `max` (0: never too much): why it is restarted.
    pub fn bloated(&self, max: u64) -> Option<String> {
        let pid = self.pid().filter(|_| max > 0)?;
        let rss = crate::process::rss_bytes(pid).filter(|rss| *rss > max)?;
        Some(format!(
            "claude (pid {pid}) uses {}, over claude_max_rss ({}); restarting it on the same conversation before the next turn",
            crate::human::bytes(rss),
            crate::human::bytes(max)
        ))
    }

    /// Remembers claude's latest stderr lines, for error messages.
    pub fn saw_stderr(&mut self, line: &str) {
        if self.stderr_tail.len() == STDERR_TAIL {
            self.stderr_tail.pop_front();
        }
        self.stderr_tail.push_back(line.to_string());
    }

    /// claude said this lately on stderr.
    pub fn said(&self, needle: &str) -> bool {
        self.stderr_tail.iter().any(|line| line.contains(needle))
    }

    /// claude's last word on stderr, for error messages.
    pub fn stderr_hint(&self) -> String {
        match self.stderr_tail.back() {
            Some(line) => format!("; claude said: {}", line.trim()),
            None => String::new(),
        }
    }
}

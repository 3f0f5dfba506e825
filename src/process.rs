//! Small facts about processes, and the record of the claude process a daemon runs, so
//! a daemon that was killed does not leave its claude running beside the next one's.

use std::path::{Path, PathBuf};

use crate::pid_record::{GroupSignal, Identity, PidRecord, start_time};

pub const CLAUDE_PID_FILE: &str = "claude.pid";

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    pid != 0 && start_time(pid).is_some()
}

/// What a child runs first, before its program: it is sent `signal` when this process
/// dies, even of SIGKILL, and it does not start at all when this process is already
/// gone. (The death signal follows the thread that forked the child: leash forks from
/// its runtime thread, which lives as long as it.)
pub fn dies_with_this_process(signal: i32) -> impl FnMut() -> std::io::Result<()> {
    let parent = std::process::id();
    move || {
        // SAFETY: prctl and getppid are async-signal-safe and touch no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // This process may have died before the line above.
        if unsafe { libc::getppid() } as u32 != parent {
            return Err(std::io::Error::other("the leash daemon is gone"));
        }
        Ok(())
    }
}

/// Hands memory this process freed back to the system (glibc keeps it otherwise,
/// per thread arena), after work that needed a lot of it for a moment.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What a process holds in memory (its resident set), from `/proc/PID/statm`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

/// Where a worker's daemon keeps the record of the claude it runs.
pub fn claude_pid_file(state_dir: &Path) -> PathBuf {
    state_dir.join(CLAUDE_PID_FILE)
}

/// Remembers the claude process (and its group) a daemon started.
pub fn record_claude(pid_file: &Path, record: Option<&PidRecord>) {
    if let Some(record) = record {
        let _ = record.write(pid_file);
    }
}

pub fn forget_claude(pid_file: &Path) {
    let _ = std::fs::remove_file(pid_file);
}

/// What a new daemon found of a process group a dead one left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// No record, or nothing of the recorded group lives.
    Nothing,
    /// What it stopped.
    Stopped(String),
    /// The record names a process that is provably not the recorded one (or proves
    /// nothing): why nothing was signalled.
    LeftAlone(String),
}

/// Stops the claude group a previous daemon of this worker left behind (it was killed
/// before it could stop claude): SIGTERM first, so claude saves its conversation
/// (2.1.110 writes its transcript late and loses the last turn to a SIGKILL), then
/// SIGKILL after `grace`. Only under the record's proof: a pid someone else has now
/// is left alone, and said so.
pub fn kill_stale_claude(state_dir: &Path, grace: std::time::Duration) -> Leftover {
    let pid_file = claude_pid_file(state_dir);
    let Some(record) = PidRecord::read(&pid_file) else {
        forget_claude(&pid_file);
        return Leftover::Nothing;
    };
    forget_claude(&pid_file);
    let pid = record.pid;
    match record.identify() {
        Identity::Running => {
            record.signal_group(libc::SIGTERM);
            let until = std::time::Instant::now() + grace;
            while record.identify() == Identity::Running && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            record.signal_group(libc::SIGKILL);
            Leftover::Stopped(format!("claude (pid {pid})"))
        }
        // claude itself is gone (it dies with its daemon), but tools it started may
        // live on in its group: those that started after it are its own.
        Identity::Gone => match record.signal_group(libc::SIGKILL) {
            GroupSignal::Members(0) => Leftover::Nothing,
            GroupSignal::Members(n) => {
                Leftover::Stopped(format!("{n} tool process(es) of claude (pid {pid})"))
            }
            GroupSignal::Group => Leftover::Stopped(format!("claude (pid {pid})")),
            GroupSignal::Refused(why) => refusal("claude", &record, &why),
        },
        why => refusal("claude", &record, &why),
    }
}

/// Says why a recorded group was left alone; `Nothing` when there was nothing to say
/// (a record of an earlier boot names nothing that still runs).
pub fn refusal(what: &str, record: &PidRecord, why: &Identity) -> Leftover {
    let pid = record.pid;
    match why {
        Identity::Reused(how) => Leftover::LeftAlone(format!(
            "left pid {pid} alone: {what} recorded it, but it is another process now ({how}); its pid was reused"
        )),
        Identity::OtherHost(host) => Leftover::LeftAlone(format!(
            "left pid {pid} alone: {what} was recorded on host {host}, not this one"
        )),
        Identity::Unprovable => Leftover::LeftAlone(format!(
            "left pid {pid} alone: {what}'s record was written by an earlier leash and cannot prove which process it names"
        )),
        Identity::OtherBoot | Identity::Gone | Identity::Running => Leftover::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_itself_and_not_the_dead() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(start_time(me).is_some());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn a_stale_record_of_another_process_is_left_alone_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let me = PidRecord::of_self().unwrap();
        let reused = PidRecord {
            start_time: Some(1),
            ..me.clone()
        };
        let elsewhere = PidRecord {
            host: Some("another-node".to_string()),
            ..me.clone()
        };
        for (file, says) in [
            (format!("{} 1\n", me.pid), "earlier leash"),
            (reused.line(), "pid was reused"),
            (elsewhere.line(), "host another-node"),
        ] {
            std::fs::write(dir.path().join(CLAUDE_PID_FILE), &file).unwrap();
            match kill_stale_claude(dir.path(), std::time::Duration::ZERO) {
                Leftover::LeftAlone(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{file}: {other:?}"),
            }
            assert!(!dir.path().join(CLAUDE_PID_FILE).exists());
        }
    }
}

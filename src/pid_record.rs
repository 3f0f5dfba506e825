//! A pid is a claim, not a fact: what leash writes down about a process it may signal
//! later (`claude.pid`, `daemon.lock`, `check.pid`), and the one proof that a live
//! process is the one written down. Nothing in leash signals a pid without it.
//!
//! A pid alone names whoever got the number last: after the process ends the kernel
//! hands it out again, after a reboot to anyone, and on another host (a state dir on
//! shared storage) it names a different machine's process altogether. So a record
//! carries the pid, its start time, the boot it started in, its executable and the host,
//! and a process is "the recorded one" only when all of them match, here and now.
//!
//! The file format is one JSON object on one line:
//! `{"pid":4242,"start_time":81273,"boot_id":"…","exe":"/usr/bin/claude","host":"node1"}`.
//! Files of an earlier leash (`PID STARTTIME`, `PID serving`, `PID`) still parse, as
//! records that prove nothing: leash never signals on them.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A record file is one short line; anything longer is not one leash wrote.
const MAX_RECORD_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    pub pid: u32,
    /// Clock ticks since boot (field 22 of `/proc/PID/stat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// What `/proc/PID/exe` pointed at when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<PathBuf>,
    /// `gethostname()` of the machine it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Who the process a record names is, as far as this host can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The recorded process runs, here: every field matches.
    Running,
    /// Recorded on this host and boot, and no live process has its pid.
    Gone,
    /// Recorded on this host and boot, and its pid is another process's now.
    Reused(String),
    /// Recorded on another host: nothing here can say anything about it.
    OtherHost(String),
    /// Recorded on this host before its last reboot: it is gone, and its pid is anyone's.
    OtherBoot,
    /// A record of an earlier leash (no boot id, host or executable): proves nothing.
    Unprovable,
}

/// What a group signal reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSignal {
    /// The leader is the recorded process: the whole group was signalled.
    Group,
    /// The leader is gone: this many members that started after it were signalled.
    Members(usize),
    /// Not provably the recorded group: nothing was signalled.
    Refused(Identity),
}

impl PidRecord {
    /// The record of a live process on this host; `None` when it is gone or a zombie.
    pub fn of(pid: u32) -> Option<PidRecord> {
        let start_time = start_time(pid)?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        Some(PidRecord {
            pid,
            start_time: Some(start_time),
            boot_id: boot_id(),
            exe: Some(exe),
            host: host(),
        })
    }

    /// This process's own record.
    pub fn of_self() -> Option<PidRecord> {
        PidRecord::of(std::process::id())
    }

    /// A record as a file holds it: the JSON line, or an earlier leash's `PID [WORD]`.
    pub fn parse(text: &str) -> Option<PidRecord> {
        let text = text.trim();
        if text.starts_with('{') {
            return serde_json::from_str::<PidRecord>(text)
                .ok()
                .filter(|r| r.pid != 0);
        }
        let mut words = text.split_whitespace();
        let pid: u32 = words.next()?.parse().ok().filter(|&pid| pid != 0)?;
        Some(PidRecord {
            pid,
            start_time: words.next().and_then(|w| w.parse().ok()),
            boot_id: None,
            exe: None,
            host: None,
        })
    }

    /// The record as one line of its file.
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// The record a file holds; `None` when there is none (or it is not a regular file,
    /// or not a record).
    pub fn read(path: &Path) -> Option<PidRecord> {
        let file = std::fs::File::open(path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_RECORD_BYTES).read_to_string(&mut text).ok()?;
        PidRecord::parse(&text)
    }

    /// Writes the record to `path`, replacing what was there at once.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::state_file::write_atomic(path, self.line().as_bytes())
    }

    /// The host a record was made on, when it is not this one.
    pub fn other_host(&self) -> Option<&str> {
        let recorded = self.host.as_deref()?;
        (Some(recorded) != host().as_deref()).then_some(recorded)
    }

    /// The proof: is the live process with this pid the one recorded?
    pub fn identify(&self) -> Identity {
        let (Some(started), Some(boot), Some(exe), Some(recorded_host)) = (
            self.start_time,
            self.boot_id.as_deref(),
            self.exe.as_deref(),
            self.host.as_deref(),
        ) else {
            return Identity::Unprovable;
        };
        if Some(recorded_host) != host().as_deref() {
            return Identity::OtherHost(recorded_host.to_string());
        }
        if Some(boot) != boot_id().as_deref() {
            return Identity::OtherBoot;
        }
        let Some(now_started) = start_time(self.pid) else {
            return Identity::Gone;
        };
        if now_started != started {
            return Identity::Reused(format!(
                "it started at tick {now_started}, the recorded one at tick {started}"
            ));
        }
        // Unreadable (another user's process) is not a match either.
        let now_exe = std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok();
        if now_exe.as_deref() != Some(exe) {
            return Identity::Reused(format!(
                "it runs {}, the recorded one ran {}",
                now_exe.map_or("something unreadable".to_string(), |e| e
                    .display()
                    .to_string()),
                exe.display()
            ));
        }
        Identity::Running
    }

    /// True when the recorded process provably runs no more: gone, its pid reused, or
    /// recorded before this boot.
    pub fn ended(&self) -> bool {
        matches!(
            self.identify(),
            Identity::Gone | Identity::Reused(_) | Identity::OtherBoot
        )
    }

    /// Sends `signal` to the recorded process, only when it is provably that one.
    pub fn signal(&self, signal: i32) -> Result<(), Identity> {
        match self.identify() {
            Identity::Running => {
                kill(self.pid as i32, signal);
                Ok(())
            }
            other => Err(other),
        }
    }

    /// Sends `signal` to the process group the recorded process leads: the whole group
    /// while the leader is the recorded process; once it is gone, each live member that
    /// started at or after it (the kernel does not give a pid out again while a group
    /// of that number has members, and anything in it older than its leader is not
    /// its); nothing when the pid is someone else's or the record proves nothing.
    pub fn signal_group(&self, signal: i32) -> GroupSignal {
        match self.identify() {
            Identity::Running => {
                kill(-(self.pid as i32), signal);
                GroupSignal::Group
            }
            Identity::Gone => {
                let started = self.start_time.unwrap_or(u64::MAX);
                let members = self.members_after(started);
                for &member in &members {
                    kill(member as i32, signal);
                }
                GroupSignal::Members(members.len())
            }
            other => GroupSignal::Refused(other),
        }
    }

    /// True while the recorded group has a live member that started at or after it
    /// (the leader included, when it is the recorded process).
    pub fn group_lives(&self) -> bool {
        match self.identify() {
            Identity::Running => true,
            Identity::Gone => !self
                .members_after(self.start_time.unwrap_or(u64::MAX))
                .is_empty(),
            _ => false,
        }
    }

    fn members_after(&self, started: u64) -> Vec<u32> {
        group_members(self.pid)
            .into_iter()
            .filter(|&member| start_time(member).is_some_and(|t| t >= started))
            .collect()
    }
}

/// Sends `signal` to the group of a child this process started and has not reaped yet.
/// The caller's proof is the child itself: until it is reaped its pid (a zombie's
/// included) cannot be anyone else's, nor can its group's number.
pub fn signal_unreaped_group(child_pid: u32, signal: i32) {
    if child_pid != 0 {
        kill(-(child_pid as i32), signal);
    }
}

fn kill(target: i32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; a target that is gone is ESRCH.
    unsafe {
        libc::kill(target, signal);
    }
}

/// This boot's id: a pid or a start time of an earlier boot means nothing now.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// This machine's name, as the records it writes carry it.
pub fn host() -> Option<String> {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let done = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    if done != 0 {
        return None;
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..end]).into_owned()).filter(|h| !h.is_empty())
}

/// The process's start time (clock ticks since boot), which tells a process from a
/// later one that reused its pid. `None` when it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields follow the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    // `starttime` is field 22 of stat; fields[0] here is field 3.
    fields.get(19)?.parse().ok()
}

/// Live processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                    // fields[0] is the state (field 3); the group is field 5.
                    (fields.first() != Some(&"Z")).then(|| fields.get(2)?.parse::<u32>().ok())?
                })
                == Some(pgid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child in a group of its own, as leash starts claude and checks.
    fn group_leader() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn gone(child: &mut std::process::Child) -> bool {
        matches!(child.try_wait(), Ok(Some(_)))
    }

    fn stays_alive(child: &mut std::process::Child) -> bool {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !gone(child)
    }

    #[test]
    fn the_live_record_of_a_child_is_proven_and_signalled() {
        let mut child = group_leader();
        let record = PidRecord::of(child.id()).unwrap();
        assert_eq!(record.identify(), Identity::Running);
        assert_eq!(
            PidRecord::parse(&record.line()),
            Some(record.clone()),
            "a record reads back as it was written"
        );
        assert_eq!(record.signal_group(libc::SIGKILL), GroupSignal::Group);
        child.wait().unwrap();
    }

    #[test]
    fn a_record_of_another_host_boot_start_or_exe_is_never_signalled() {
        let mut child = group_leader();
        let live = PidRecord::of(child.id()).unwrap();
        let other_host = PidRecord {
            host: Some("another-node".to_string()),
            ..live.clone()
        };
        let other_boot = PidRecord {
            boot_id: Some("00000000-0000-0000-0000-000000000000".to_string()),
            ..live.clone()
        };
        let other_start = PidRecord {
            start_time: live.start_time.map(|t| t.saturating_sub(1)),
            ..live.clone()
        };
        let other_exe = PidRecord {
            exe: Some(PathBuf::from("/usr/bin/not-what-runs")),
            ..live.clone()
        };
        let old_format =
            PidRecord::parse(&format!("{} {}\n", live.pid, live.start_time.unwrap())).unwrap();
        assert_eq!(
            other_host.identify(),
            Identity::OtherHost("another-node".to_string())
        );
        assert_eq!(other_host.other_host(), Some("another-node"));
        assert_eq!(other_boot.identify(), Identity::OtherBoot);
        assert!(matches!(other_start.identify(), Identity::Reused(_)));
        assert!(matches!(other_exe.identify(), Identity::Reused(_)));
        assert_eq!(old_format.identify(), Identity::Unprovable);
        for record in [
            &other_host,
            &other_boot,
            &other_start,
            &other_exe,
            &old_format,
        ] {
            assert!(
                matches!(record.signal_group(libc::SIGKILL), GroupSignal::Refused(_)),
                "{record:?}"
            );
            assert!(record.signal(libc::SIGKILL).is_err(), "{record:?}");
            assert!(stays_alive(&mut child), "{record:?} was signalled");
        }
        assert_eq!(live.signal(libc::SIGKILL), Ok(()));
        child.wait().unwrap();
    }

    #[test]
    fn a_gone_leader_leaves_its_later_members_to_signal() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let member_file = dir.path().join("member");
        // The leader starts a member, then waits on its stdin: its record is taken
        // while it runs, and it ends when the stdin closes.
        let mut leader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep 300 & echo $! > {}; read x",
                member_file.display()
            ))
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let record = PidRecord::of(leader.id()).unwrap();
        let mut member = None;
        for _ in 0..500 {
            member = std::fs::read_to_string(&member_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok());
            if member.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let member = member.expect("the leader started its member");
        drop(leader.stdin.take());
        leader.wait().unwrap();
        assert_eq!(record.identify(), Identity::Gone);
        assert!(record.group_lives());
        assert_eq!(record.signal_group(libc::SIGKILL), GroupSignal::Members(1));
        let dead = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !crate::process::alive(member)
        });
        assert!(
            dead,
            "the member that started after its leader is signalled"
        );
        assert!(!record.group_lives());
    }

    #[test]
    fn old_files_parse_as_records_that_prove_nothing() {
        let old = PidRecord::parse("42 1234\n").unwrap();
        assert_eq!((old.pid, old.start_time), (42, Some(1234)));
        assert_eq!(old.identify(), Identity::Unprovable);
        let lock = PidRecord::parse("42 serving\n").unwrap();
        assert_eq!((lock.pid, lock.start_time), (42, None));
        assert_eq!(PidRecord::parse(""), None);
        assert_eq!(PidRecord::parse("0 5"), None);
        assert_eq!(PidRecord::parse("{not json"), None);
    }
}

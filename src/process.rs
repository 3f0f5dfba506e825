//! Small facts about processes, and the record of the claude process a daemon runs, so
//! a daemon that was killed does not leave its claude running beside the next one's.

use std::path::{Path, PathBuf};

pub const CLAUDE_PID_FILE: &str = "claude.pid";

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    pid != 0 && start_time(pid).is_some()
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

/// Sends `signal` to a whole process group; a group that is gone is not an error.
pub fn signal_group(pgid: u32, signal: i32) {
    if pgid == 0 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Where a worker's daemon keeps the pid of the claude it runs.
pub fn claude_pid_file(state_dir: &Path) -> PathBuf {
    state_dir.join(CLAUDE_PID_FILE)
}

/// Remembers the claude process (and its group) a daemon started.
pub fn record_claude(pid_file: &Path, pid: u32) {
    if let Some(started) = start_time(pid) {
        let _ = crate::paths::write_atomic(pid_file, format!("{pid} {started}\n").as_bytes());
    }
}

pub fn forget_claude(pid_file: &Path) {
    let _ = std::fs::remove_file(pid_file);
}

/// Stops the claude group a previous daemon of this worker left behind (it was killed
/// before it could stop claude): SIGTERM first, so claude saves its conversation
/// (2.1.110 writes its transcript late and loses the last turn to a SIGKILL), then
/// SIGKILL after `grace`. Says what it stopped.
pub fn kill_stale_claude(state_dir: &Path, grace: std::time::Duration) -> Option<String> {
    let pid_file = claude_pid_file(state_dir);
    let text = std::fs::read_to_string(&pid_file).ok()?;
    forget_claude(&pid_file);
    let mut parts = text.split_whitespace();
    let pid: u32 = parts.next()?.parse().ok()?;
    let started: u64 = parts.next()?.parse().ok()?;
    // Only the very process we started: a reused pid belongs to someone else.
    if start_time(pid) == Some(started) {
        signal_group(pid, libc::SIGTERM);
        let until = std::time::Instant::now() + grace;
        while start_time(pid) == Some(started) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        signal_group(pid, libc::SIGKILL);
        return Some(format!("claude (pid {pid})"));
    }
    // claude itself is gone (it dies with its daemon), but tools it started may live
    // on in its group: those that started after it are its own.
    let left = group_members(pid)
        .into_iter()
        .filter(|&member| start_time(member).is_some_and(|t| t >= started))
        .collect::<Vec<_>>();
    for member in &left {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(*member as i32, libc::SIGKILL);
        }
    }
    (!left.is_empty()).then(|| format!("{} tool process(es) of claude (pid {pid})", left.len()))
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
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
    fn a_stale_record_of_another_process_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        std::fs::write(dir.path().join(CLAUDE_PID_FILE), format!("{me} 1\n")).unwrap();
        assert_eq!(
            kill_stale_claude(dir.path(), std::time::Duration::ZERO),
            None,
            "start time differs: not ours"
        );
        assert!(!dir.path().join(CLAUDE_PID_FILE).exists());
    }
}

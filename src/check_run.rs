//! Running the project's checks on a commit (the worker's, or a landing's stack): each
//! with `sh -c` at the root of its work tree, in its own process group, its output's tail
//! kept, and killed (the whole group) at its timeout or when its step is interrupted. A check ends when
//! its process exits: what its children still hold open is read a moment longer, then
//! the group goes. A check that moves HEAD or leaves changes behind fails: the work it
//! passed is no longer the work that was committed.
//!
//! A check dies with the process that runs it (a worker's daemon, `leash land`): its
//! leader gets SIGKILL when that process dies (`PR_SET_PDEATHSIG`), and the running
//! check's group is recorded in a file its runner names (a [`PidRecord`]) so the next
//! runner stops what is left of it before it runs the check again: one run per commit
//! at a time, never two.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::pid_record::{GroupSignal, PidRecord};
use crate::process::Leftover;
use crate::worker::checks::{CheckResult, Tail};

/// How long a new runner waits for a check group it stopped to be gone.
const LEFT_BEHIND_WAIT: Duration = Duration::from_secs(5);

/// How long a killed check may take to go, and its output to end.
const AFTER_KILL: Duration = Duration::from_secs(2);
/// How long the output of a check that exited is still read, from children it left
/// behind holding its pipes.
const AFTER_EXIT: Duration = Duration::from_millis(300);

/// Runs the checks in order until one fails, each recorded in `record` while it runs.
#[cfg(test)]
pub async fn run_all(
    commands: &[String],
    root: &Path,
    timeout: Duration,
    record: &Path,
) -> Vec<CheckResult> {
    let mut checking = Checking::new(commands.to_vec(), root, timeout, record);
    while let Some((_, run)) = checking.next() {
        let result = run.await;
        checking.ended(result);
    }
    checking.results()
}

/// The checks of one run, one at a time (so whoever runs them can tell which runs
/// now), in order until one fails.
pub struct Checking {
    commands: std::collections::VecDeque<String>,
    root: std::path::PathBuf,
    timeout: Duration,
    record: std::path::PathBuf,
    /// The work tree before the first check, which no check may change.
    before: Option<Tree>,
    results: Vec<CheckResult>,
}

/// One check running.
pub type CheckRun = std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + Send>>;

impl Checking {
    pub fn new(commands: Vec<String>, root: &Path, timeout: Duration, record: &Path) -> Checking {
        Checking {
            commands: commands.into(),
            root: root.to_path_buf(),
            timeout,
            record: record.to_path_buf(),
            before: Tree::read(root),
            results: Vec::new(),
        }
    }

    /// The next check: its command, and its run; `None` when none is left to run.
    pub fn next(&mut self) -> Option<(String, CheckRun)> {
        let command = self.commands.pop_front()?;
        let (root, timeout, record) = (self.root.clone(), self.timeout, self.record.clone());
        let shown = command.clone();
        let run = async move { run(&command, &root, timeout, &record).await };
        Some((shown, Box::pin(run)))
    }

    /// A check ended; after one that failed the rest do not run.
    pub fn ended(&mut self, mut result: CheckResult) {
        if let Some(disturbed) = self.before.as_ref().and_then(|b| b.disturbed(&self.root)) {
            result.disturbed = Some(disturbed);
        }
        if !result.passed() {
            self.commands.clear();
        }
        self.results.push(result);
    }

    pub fn results(self) -> Vec<CheckResult> {
        self.results
    }
}

/// HEAD and the uncommitted changes, as a check must leave them.
struct Tree {
    head: Option<String>,
    changes: Vec<crate::git::FileChange>,
}

impl Tree {
    fn read(root: &Path) -> Option<Tree> {
        Some(Tree {
            head: crate::git::head(root).ok()?,
            changes: crate::git::changes(root).ok()?,
        })
    }

    /// What a check changed, in a sentence, if it changed anything.
    fn disturbed(&self, root: &Path) -> Option<String> {
        let now = Tree::read(root)?;
        if now.head != self.head {
            let short = |h: &Option<String>| {
                h.as_deref()
                    .map_or("nothing", crate::git::short_id)
                    .to_string()
            };
            return Some(format!(
                "it moved HEAD from {} to {}",
                short(&self.head),
                short(&now.head)
            ));
        }
        let left: Vec<String> = now
            .changes
            .iter()
            .filter(|c| !self.changes.contains(c))
            .map(ToString::to_string)
            .collect();
        (!left.is_empty()).then(|| {
            let shown: Vec<&str> = left.iter().take(5).map(String::as_str).collect();
            format!(
                "it left {} change(s) in the work tree: {}",
                left.len(),
                shown.join(", ")
            )
        })
    }
}

/// A running check: its process, and its group killed when dropped (a check never
/// outlives its step), its record with it.
struct Running {
    child: Child,
    record: Option<PidRecord>,
    record_file: std::path::PathBuf,
}

impl Running {
    fn start(command: &str, root: &Path, record_file: &Path) -> std::io::Result<Running> {
        let mut spawn = Command::new("sh");
        spawn
            .arg("-c")
            .arg(command)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The check dies with the daemon that runs it, even one killed with SIGKILL:
        // the next daemon runs it again.
        // SAFETY: the closure only makes async-signal-safe calls.
        unsafe {
            spawn.pre_exec(crate::process::dies_with_this_process(libc::SIGKILL));
        }
        let child = spawn.spawn()?;
        let record = child.id().and_then(PidRecord::of);
        if let Some(record) = &record
            && let Err(e) = record.write(record_file)
        {
            // A write that fails (a full disk) must not panic the runner away.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "leash: cannot record the check in {}: {e}",
                record_file.display()
            );
        }
        Ok(Running {
            child,
            record,
            record_file: record_file.to_path_buf(),
        })
    }

    /// SIGKILL to the check's whole group: by its pid while the check is unreaped
    /// (proof enough), else to what is left of it, by its record.
    fn kill_group(&self) {
        match (self.child.id(), &self.record) {
            (Some(pid), _) => crate::pid_record::signal_unreaped_group(pid, libc::SIGKILL),
            (None, Some(record)) => {
                record.signal_group(libc::SIGKILL);
            }
            (None, None) => {}
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
        let _ = std::fs::remove_file(&self.record_file);
    }
}

/// Stops what is left of a check whose runner died while it ran, by its record `file`.
pub fn stop_left_behind(file: &Path) -> Leftover {
    let Some(record) = PidRecord::read(file) else {
        let _ = std::fs::remove_file(file);
        return Leftover::Nothing;
    };
    let pid = record.pid;
    let stopped = match record.signal_group(libc::SIGKILL) {
        GroupSignal::Group => format!("a check's process group (pid {pid})"),
        GroupSignal::Members(0) => {
            let _ = std::fs::remove_file(file);
            return Leftover::Nothing;
        }
        GroupSignal::Members(n) => format!("{n} process(es) of a check (pid {pid})"),
        GroupSignal::Refused(why) => {
            let _ = std::fs::remove_file(file);
            return crate::process::refusal("a check", &record, &why);
        }
    };
    // The check runs again next: not while this one still does.
    let until = Instant::now() + LEFT_BEHIND_WAIT;
    while record.group_lives() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(file);
    Leftover::Stopped(stopped)
}

async fn run(command: &str, root: &Path, timeout: Duration, record_file: &Path) -> CheckResult {
    let started = Instant::now();
    let done = |exit_code, timed_out, output_tail| CheckResult {
        command: command.to_string(),
        exit_code,
        timed_out,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        output_tail,
        disturbed: None,
    };
    let mut running = match Running::start(command, root, record_file) {
        Ok(running) => running,
        Err(e) => return done(None, false, format!("leash could not run sh: {e}")),
    };
    let mut tail = Tail::default();
    let finished = tokio::time::timeout(timeout, collect(&mut running.child, &mut tail)).await;
    match finished {
        Ok(exit_code) => done(exit_code, false, tail.finish()),
        Err(_) => {
            running.kill_group();
            let _ = tokio::time::timeout(AFTER_KILL, collect(&mut running.child, &mut tail)).await;
            let mut output = tail.finish();
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(&format!(
                "[leash: stopped after {}, with its process group]",
                crate::human::duration(timeout)
            ));
            done(None, true, output)
        }
    }
}

/// Reads the check's stdout and stderr until it exits (and a moment after, for what
/// its children still hold open), and its exit code (`None` when a signal ended it).
async fn collect(child: &mut Child, tail: &mut Tail) -> Option<i32> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let mut exited: Option<Option<i32>> = None;
    let mut cut_off = std::pin::pin!(tokio::time::sleep(Duration::MAX));
    while stdout.is_some() || stderr.is_some() || exited.is_none() {
        tokio::select! {
            read = async { stdout.as_mut()?.read(&mut out_buf).await.ok() }, if stdout.is_some() => {
                match read {
                    Some(n) if n > 0 => tail.push(0, &out_buf[..n]),
                    _ => stdout = None,
                }
            }
            read = async { stderr.as_mut()?.read(&mut err_buf).await.ok() }, if stderr.is_some() => {
                match read {
                    Some(n) if n > 0 => tail.push(1, &err_buf[..n]),
                    _ => stderr = None,
                }
            }
            status = child.wait(), if exited.is_none() => {
                exited = Some(status.ok().and_then(|status| status.code()));
                cut_off
                    .as_mut()
                    .reset(tokio::time::Instant::now() + AFTER_EXIT);
            }
            () = &mut cut_off, if exited.is_some() => break,
        }
    }
    exited.flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_file(state_dir: &Path) -> std::path::PathBuf {
        state_dir.join("check.pid")
    }

    fn run_now(commands: &[&str], timeout: Duration) -> Vec<CheckResult> {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_all(
                &commands,
                dir.path(),
                timeout,
                &record_file(state.path()),
            ))
    }

    #[test]
    fn checks_run_in_order_until_one_fails() {
        let results = run_now(
            &["echo one; echo two >&2", "echo bad; exit 3", "echo never"],
            Duration::from_secs(10),
        );
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results[0].passed());
        assert!(results[0].output_tail.contains("one") && results[0].output_tail.contains("two"));
        assert_eq!(results[1].exit_code, Some(3));
        assert_eq!(results[1].output_tail, "bad");
    }

    #[test]
    fn a_check_ends_when_its_process_exits_whatever_its_children_hold() {
        let results = run_now(&["sleep 60 & echo started"], Duration::from_secs(30));
        assert!(results[0].passed(), "{results:?}");
        assert_eq!(results[0].output_tail, "started");
    }

    #[test]
    fn a_check_that_moves_head_or_leaves_changes_fails() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(status.status.success(), "{args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        for message in ["one", "two"] {
            git(&[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                message,
            ]);
        }
        let state = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |commands: &[&str]| {
            let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
            runtime.block_on(run_all(
                &commands,
                dir.path(),
                Duration::from_secs(30),
                &record_file(state.path()),
            ))
        };
        let moved = run(&["true", "git reset -q --hard HEAD~1", "echo never"]);
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert!(moved[0].passed());
        assert!(!moved[1].passed());
        assert!(moved[1].outcome().contains("moved HEAD"), "{moved:?}");
        let formatted = run(&["echo changed > file.rs"]);
        assert!(!formatted[0].passed());
        assert!(
            formatted[0].outcome().contains("?? file.rs"),
            "{formatted:?}"
        );
    }

    #[test]
    fn a_check_that_hangs_is_killed_with_its_group_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let results = run_now(&[&command], Duration::from_millis(300));
        let result = &results[0];
        assert!(result.timed_out && result.exit_code.is_none(), "{result:?}");
        assert!(result.output_tail.starts_with("started"), "{result:?}");
        assert!(result.output_tail.contains("[leash: stopped after 300 ms"));
        let sleeper: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !crate::process::alive(sleeper)
        });
        assert!(gone, "the check's own children are killed too");
    }

    #[test]
    fn a_check_dies_with_the_thread_that_ran_it_and_its_rest_is_stopped_from_its_record() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let member_file = root.path().join("member");
        let command = format!(
            "sleep 300 & echo $! > {m}.tmp; mv {m}.tmp {m}; wait",
            m = member_file.display()
        );
        let (root_dir, record) = (root.path().to_path_buf(), record_file(state.path()));
        let started = member_file.clone();
        // The daemon's runtime thread ends, as it does when the daemon is killed.
        let leader = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let running = Running::start(&command, &root_dir, &record).unwrap();
                    let pid = running.child.id().unwrap();
                    while !started.exists() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    // As if the daemon died here: nothing of it stops the check.
                    std::mem::forget(running);
                    pid
                })
        })
        .join()
        .unwrap();
        let gone = |pid: u32| {
            (0..500).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                !crate::process::alive(pid)
            })
        };
        assert!(gone(leader), "the check's leader dies with its daemon");
        let member: u32 = std::fs::read_to_string(&member_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(crate::process::alive(member));
        match stop_left_behind(&record_file(state.path())) {
            Leftover::Stopped(what) => assert!(what.contains("1 process(es)"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert!(!crate::process::alive(member), "waited for until gone");
        assert!(!record_file(state.path()).exists());
    }
}

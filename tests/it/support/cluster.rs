//! A two-node Slurm cluster on this machine, started by a test and torn down after it
//! (also when it fails): its own munge key and socket, its own `SLURM_CONF`, ports on
//! 127.0.0.1 and spool and state dirs under a temp dir; never the machine's /etc/slurm
//! or a cluster already running.
//!
//! Each node is a host of its own as far as a job can tell: its `slurmd` runs under
//! `unshare --pid --mount --uts` with its own hostname, its own pids (they collide
//! across nodes, as on real hosts), `tini` as its first process (so exited jobs do not
//! linger as zombies), and a `/tmp` of its own (where leash's runtime dir is by
//! default), with the storage every node shares bind-mounted in it at the same path.
//! Killing a node's `unshare` kills everything on it at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs a cluster needs, and the Debian packages that bring them.
const PROGRAMS: [&str; 8] = [
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "squeue",
    "munged",
    "tini",
    "unshare",
];
const INSTALL: &str = "apt-get update && apt-get install -y slurm-wlm munge tini";

/// Why no cluster can run here, or `None` when one can. In CI as root, the packages
/// are installed when missing (as `.ci/run` does).
pub fn unavailable() -> Option<String> {
    static CHECKED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CHECKED.get_or_init(check).clone()
}

fn check() -> Option<String> {
    let missing = || -> Vec<&str> {
        PROGRAMS
            .into_iter()
            .filter(|program| which(program).is_none())
            .collect()
    };
    let mut absent = missing();
    if !absent.is_empty() && is_root() && std::env::var_os("CI").is_some() {
        let _ = Command::new("sh")
            .args(["-c", &format!("{INSTALL} >/dev/null 2>&1")])
            .status();
        absent = missing();
    }
    if !absent.is_empty() {
        return Some(format!(
            "{} not installed (as root: {INSTALL})",
            absent.join(", ")
        ));
    }
    if !is_root() {
        return Some("slurmd must run as root to start jobs as their user".into());
    }
    let namespaces = Command::new("unshare")
        .args(UNSHARE)
        .args(["true"])
        .stdin(Stdio::null())
        .output();
    match namespaces {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "unshare {} true: {}",
            UNSHARE.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("unshare: {e}")),
    }
}

const UNSHARE: [&str; 6] = [
    "--pid",
    "--mount",
    "--uts",
    "--fork",
    "--kill-child",
    "--mount-proc",
];

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub struct Cluster {
    dir: PathBuf,
    pub conf: PathBuf,
    /// Storage every node sees at this same path (under /tmp, which is each node's own).
    shared: PathBuf,
    munged: Child,
    slurmctld: Option<Child>,
    nodes: Vec<(String, Child)>,
    /// How long it took from nothing to every node idle.
    pub came_up_in: Duration,
}

impl Cluster {
    /// Starts the cluster in `dir` (which must exist, inside `shared`), its nodes `n1`,
    /// `n2`, each with `dir/<node>/tmp` as its `/tmp` and `shared` at its own path in
    /// it. Waits until both nodes are idle.
    pub fn start(dir: &Path, shared: &Path) -> Cluster {
        let started = Instant::now();
        let munge = dir.join("munge");
        mkdir_mode(&munge, 0o700);
        let key = munge.join("munge.key");
        let mut bytes = [0u8; 1024];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        random.expect("random bytes for the munge key");
        std::fs::write(&key, bytes).unwrap();
        set_mode(&key, 0o400);
        let socket = munge.join("munge.sock");
        let munged = Command::new(which("munged").unwrap())
            .arg("--foreground")
            .arg("--force")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
            .arg(format!("--seed-file={}", munge.join("seed").display()))
            .arg(format!("--log-file={}", munge.join("munged.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&munge.join("munged.out")))
            .spawn()
            .expect("munged");
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
            shared: shared.to_path_buf(),
            munged,
            slurmctld: None,
            nodes: Vec::new(),
            came_up_in: Duration::ZERO,
        };
        super::wait_until("munged's socket", Duration::from_secs(10), &mut || {
            socket.exists()
        });

        let ports = free_ports(3);
        for sub in ["ctld", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(&cluster.conf, slurm_conf(dir, &socket, &ports)).unwrap();
        let slurmctld = Command::new(which("slurmctld").unwrap())
            .args(["-D", "-c", "-f"])
            .arg(&cluster.conf)
            .env("SLURM_CONF", &cluster.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&dir.join("log/slurmctld.out")))
            .spawn()
            .expect("slurmctld");
        cluster.slurmctld = Some(slurmctld);
        for node in NODES {
            cluster.start_node(node);
        }
        cluster.wait_until("both nodes to be idle", Duration::from_secs(60), |c| {
            c.run("sinfo", &["-h", "-N", "-o", "%N %t"])
                .lines()
                .filter(|l| l.ends_with(" idle"))
                .count()
                == NODES.len()
        });
        cluster.came_up_in = started.elapsed();
        cluster
    }

    /// Starts (or restarts) a node: its slurmd, alone in its namespaces.
    pub fn start_node(&mut self, node: &str) {
        let tmp = self.dir.join(node).join("tmp");
        mkdir_mode(&tmp, 0o1777);
        // What every node must see outside /tmp is seen as it is; inside, it is mounted
        // back: the shared storage, and the checkout with the binaries under test (a
        // clone in /tmp, as CI may make, would be missing on the node otherwise).
        let mut keep_shared = String::new();
        for kept in [self.shared.as_path(), Path::new(env!("CARGO_MANIFEST_DIR"))] {
            let Ok(inside) = kept.strip_prefix("/tmp") else {
                continue;
            };
            let at = tmp.join(inside);
            std::fs::create_dir_all(&at).unwrap();
            keep_shared.push_str(&format!(
                "mount --bind {} {} && ",
                kept.display(),
                at.display()
            ));
        }
        std::fs::create_dir_all(self.dir.join("spool").join(node)).unwrap();
        let script = format!(
            "hostname {node} && {keep_shared}mount --rbind {tmp} /tmp && exec {tini} -s -- {slurmd} -D -N {node} -f {conf}",
            tmp = tmp.display(),
            tini = which("tini").unwrap().display(),
            slurmd = which("slurmd").unwrap().display(),
            conf = self.conf.display(),
        );
        let child = Command::new("unshare")
            .args(UNSHARE)
            .args(["sh", "-c", &script])
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir.join(format!("log/{node}.out"))))
            .spawn()
            .expect("unshare");
        self.nodes.retain(|(name, _)| name != node);
        self.nodes.push((node.to_string(), child));
    }

    /// What a dead node is: everything on it gone at once. Slurm is not told.
    pub fn kill_node(&mut self, node: &str) {
        let at = self
            .nodes
            .iter()
            .position(|(name, _)| name == node)
            .unwrap_or_else(|| panic!("no node {node}"));
        let (_, mut child) = self.nodes.remove(at);
        // The namespace's first process dies with unshare (--kill-child), and with it
        // every process of the namespace.
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A Slurm command against this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    /// Runs a Slurm command; its stdout, or a panic with its stderr and the logs.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The end of slurmctld's and each node's log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["slurmctld.log", "slurmd-n1.log", "slurmd-n2.log"] {
            let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!("--- {name}\n{}\n", tail.join("\n")));
        }
        out
    }

    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Cluster) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, node) in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        for daemon in self.slurmctld.iter_mut().chain([&mut self.munged]) {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}

const NODES: [&str; 2] = ["n1", "n2"];

/// One CPU a node, so a node runs one task at a time and a node's death is one task's.
fn slurm_conf(dir: &Path, munge_socket: &Path, ports: &[u16]) -> String {
    let d = dir.display();
    format!(
        "ClusterName=leashtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge}
CredType=cred/munge
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/ctld/slurmctld.pid
SlurmdPidFile={d}/spool/%n/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
ReturnToService=2
JobRequeue=1
KillWait=10
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
NodeName=n1 NodeHostname=n1 NodeAddr=127.0.0.1 Port={n1} CPUs=1 State=UNKNOWN
NodeName=n2 NodeHostname=n2 NodeAddr=127.0.0.1 Port={n2} CPUs=1 State=UNKNOWN
PartitionName=all Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
",
        ctld = ports[0],
        n1 = ports[1],
        n2 = ports[2],
        munge = munge_socket.display(),
    )
}

/// Ports free at this moment (bound, read, released together so they differ).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mkdir_mode(dir: &Path, mode: u32) {
    std::fs::create_dir_all(dir).unwrap();
    set_mode(dir, mode);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

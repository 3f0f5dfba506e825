//! `leash session ...`: start, stop, inspect and talk to a worker's session.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::render::Output;
use super::stream::{Ending, stream};
use super::{Global, ModelArgs, SendArgs, SessionCommand, StartArgs, StopArgs, block_on, settings};
use crate::client::{Connection, Target, connect, connect_or_start, spawn_daemon};
use crate::error::{Error, ErrorKind};
use crate::paths::{Dirs, WorkerName, project_root};
use crate::protocol::{
    Outcome, Reply, Request, RetryPolicy, SessionState, SessionStatus, TurnSpec, TurnStatus,
};
use crate::record::SessionRecord;

/// How long `stop` waits for the daemon process to be gone after it said so.
const STOP_WAIT: Duration = Duration::from_secs(10);

pub fn run(command: SessionCommand, global: &Global, out: &Output) -> Result<u8, Error> {
    block_on(async {
        match command {
            SessionCommand::Start(args) => start(args, global, out).await,
            SessionCommand::Stop(args) => stop(args, global, out).await,
            SessionCommand::Status => status(global, out).await,
            SessionCommand::List => list(out).await,
            SessionCommand::Send(args) => send(args, global, out).await,
            SessionCommand::Interrupt => interrupt(global, out).await,
            SessionCommand::Model(args) => model(args, global, out).await,
            SessionCommand::Logs(args) => super::logs::run(args, global, out).await,
        }
    })
}

pub fn target(global: &Global) -> Result<Target, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    Target::resolve(global.worker.as_deref(), &cwd)
}

/// The claude executable: `--claude`/`LEASH_CLAUDE` (a path or a name on PATH), else
/// `claude` on PATH.
pub fn resolve_claude(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let wanted = explicit.unwrap_or(Path::new("claude"));
    let found = which::which(wanted).map_err(|_| {
        let what = match explicit {
            Some(path) => format!("{} is not an executable", path.display()),
            None => "claude was not found on PATH".to_string(),
        };
        Error::setup(format!(
            "{what}; install Claude Code with `npm install -g @anthropic-ai/claude-code`, or point --claude / LEASH_CLAUDE at it"
        ))
    })?;
    std::path::absolute(&found).map_err(|e| Error::io("cannot resolve the claude path", e))
}

/// The record a session gets when a command starts it on demand.
pub fn default_record(target: &Target) -> Result<SessionRecord, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let claude = resolve_claude(std::env::var_os("LEASH_CLAUDE").as_deref().map(Path::new))?;
    new_record(target, project_root(&cwd), claude)
}

/// A new conversation for the worker, with the configured model and allow-list.
fn new_record(target: &Target, cwd: PathBuf, claude: PathBuf) -> Result<SessionRecord, Error> {
    let resolved = settings(&[])?;
    let mut record = SessionRecord::new(target.worker.as_str(), cwd, claude);
    record.model = Some(resolved.session_model()?);
    record.permission_allow = resolved.permission_allow();
    Ok(record)
}

async fn start(args: StartArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    if let Some(conn) = Connection::open(&target.socket).await? {
        let mut status = fetch_status(conn).await?;
        if status.state == SessionState::Failed {
            // The daemon gave up on claude; starting is the way to try again.
            let conn = connect(&target).await?;
            status = match conn.call(&Request::Warmup).await? {
                Reply::Status(status) => *status,
                other => {
                    return Err(Error::internal(format!(
                        "unexpected answer to warmup: {other:?}"
                    )));
                }
            };
            out.note(format!(
                "worker {} is running again (claude pid {})",
                status.worker,
                status.claude_pid.unwrap_or(0)
            ));
        } else {
            out.note(format!(
                "worker {} is already running (daemon pid {}, session {})",
                status.worker, status.daemon_pid, status.session_id
            ));
        }
        if out.json {
            out.json_line(&TypedStatus::from(status));
        }
        return Ok(0);
    }
    let claude = resolve_claude(args.claude.as_deref())?;
    let cwd = match &args.cwd {
        Some(dir) => dir
            .canonicalize()
            .map_err(|e| Error::usage(format!("--cwd {}: {e}", dir.display())))?,
        None => project_root(
            &std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", e))?,
        ),
    };
    if !cwd.is_dir() {
        return Err(Error::usage(format!(
            "--cwd {} is not a directory",
            cwd.display()
        )));
    }
    let state_dir = target.dirs.ensure_worker_state(&target.worker)?;
    let existing = if args.fresh {
        None
    } else {
        SessionRecord::load(&state_dir)?
    };
    let mut record = match existing {
        Some(record) if args.cwd.is_some() && record.cwd != cwd => {
            return Err(Error::usage(format!(
                "worker {}'s conversation lives in {}; use --fresh to start a new one in {}, or another --worker",
                target.worker,
                record.cwd.display(),
                cwd.display()
            )));
        }
        Some(record) => record,
        None => new_record(&target, cwd, claude.clone())?,
    };
    record.claude = claude;
    if let Some(model) = args.model {
        record.model = Some(model);
    }
    if let Some(file) = &args.system_prompt_file {
        let file = file
            .canonicalize()
            .map_err(|e| Error::usage(format!("--system-prompt-file {}: {e}", file.display())))?;
        record.system_prompt_file = Some(file);
    }
    if let Some(mode) = args.permission_mode {
        record.permission_mode = Some(mode);
    }
    if !args.claude_args.is_empty() {
        record.extra_args = args.claude_args;
    }
    if args.interactive_permissions {
        record.interactive_permissions = true;
    }
    if !args.allow_tools.is_empty() {
        record.permission_allow = args.allow_tools;
    }
    record.save(&state_dir)?;

    let conn = spawn_daemon(&target).await?;
    match conn.call(&Request::Warmup).await {
        Ok(Reply::Status(status)) => {
            if out.json {
                out.json_line(&TypedStatus::from(*status));
            } else if !out.quiet {
                println!(
                    "started worker {} (daemon pid {}, claude pid {}, session {})",
                    status.worker,
                    status.daemon_pid,
                    status.claude_pid.map_or("-".to_string(), |p| p.to_string()),
                    status.session_id
                );
                println!("  socket  {}", status.socket.display());
                println!("  events  {}", status.log.display());
                println!("  daemon  {}", target.daemon_log().display());
            }
            Ok(0)
        }
        Ok(other) => Err(Error::internal(format!(
            "unexpected answer to warmup: {other:?}"
        ))),
        Err(e) => {
            // A start that failed leaves nothing running.
            if let Ok(Some(conn)) = Connection::open(&target.socket).await {
                let _ = conn.call(&Request::Stop).await;
            }
            Err(Error::new(
                if e.kind == ErrorKind::Internal {
                    ErrorKind::Setup
                } else {
                    e.kind
                },
                format!("claude did not start: {}", e.message),
            ))
        }
    }
}

async fn fetch_status(conn: Connection) -> Result<SessionStatus, Error> {
    match conn.call(&Request::Status).await? {
        Reply::Status(status) => Ok(*status),
        other => Err(Error::internal(format!(
            "unexpected answer to status: {other:?}"
        ))),
    }
}

/// A status line for `--json`, with its `type`.
#[derive(Serialize)]
struct TypedStatus {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    status: SessionStatus,
}

impl From<SessionStatus> for TypedStatus {
    fn from(status: SessionStatus) -> Self {
        TypedStatus {
            kind: "status",
            status,
        }
    }
}

async fn status(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let Some(conn) = Connection::open(&target.socket).await? else {
        let detail = match SessionRecord::load(&target.state_dir)? {
            Some(r) => format!(
                " (session {}, {} turns so far); `leash session start` resumes it",
                r.session_id, r.turns
            ),
            None => "; start it with `leash session start`".to_string(),
        };
        return Err(Error::new(
            ErrorKind::NoSession,
            format!("worker {} is not running{detail}", target.worker),
        ));
    };
    let status = fetch_status(conn).await?;
    if out.json {
        out.json_line(&TypedStatus::from(status));
        return Ok(0);
    }
    let model = match (&status.model, &status.requested_model) {
        (Some(confirmed), Some(requested)) if confirmed != requested => {
            format!("{confirmed} (asked for {requested})")
        }
        (Some(confirmed), _) => confirmed.clone(),
        (None, Some(requested)) => format!("{requested} (not yet confirmed by claude)"),
        (None, None) => "claude's default".to_string(),
    };
    let rows = [
        ("worker", status.worker.clone()),
        ("state", status.state.to_string()),
        ("daemon pid", status.daemon_pid.to_string()),
        (
            "claude pid",
            status.claude_pid.map_or("-".to_string(), |p| p.to_string()),
        ),
        ("session id", status.session_id.clone()),
        ("model", model),
        (
            "permissions",
            status
                .permission_mode
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        ),
        ("cwd", status.cwd.display().to_string()),
        (
            "turns",
            match (status.current_turn, status.queued) {
                (Some(turn), queued) => {
                    format!("{} done, {turn} running, {queued} queued", status.turns)
                }
                (None, _) => status.turns.to_string(),
            },
        ),
        ("cost", format!("${:.4}", status.cost_usd)),
        ("uptime", human_secs(status.uptime_secs)),
        ("socket", status.socket.display().to_string()),
        ("events", status.log.display().to_string()),
    ];
    for (key, value) in rows {
        println!("{key:<12}{value}");
    }
    if let Some(failure) = &status.failure {
        println!("{:<12}{failure}", "failure");
    }
    Ok(0)
}

fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

/// One row of `session list`.
#[derive(Serialize)]
struct WorkerRow {
    #[serde(rename = "type")]
    kind: &'static str,
    worker: String,
    state: SessionState,
    daemon_pid: Option<u32>,
    session_id: Option<String>,
    model: Option<String>,
    turns: u64,
    cost_usd: f64,
    cwd: Option<PathBuf>,
}

/// Every worker with a state dir or a socket.
fn known_workers(dirs: &Dirs) -> Vec<WorkerName> {
    let mut names: Vec<WorkerName> = Vec::new();
    let mut add = |name: &str| {
        if let Ok(worker) = WorkerName::parse(name)
            && !names.contains(&worker)
        {
            names.push(worker);
        }
    };
    if let Ok(entries) = std::fs::read_dir(&dirs.state) {
        for entry in entries.flatten() {
            if entry.path().join(crate::record::RECORD_FILE).is_file() {
                add(&entry.file_name().to_string_lossy());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&dirs.runtime) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(worker) = name.strip_suffix(".sock") {
                add(worker);
            }
        }
    }
    names.sort();
    names
}

async fn running_status(target: &Target) -> Option<SessionStatus> {
    let ask = async {
        let conn = Connection::open(&target.socket).await.ok()??;
        fetch_status(conn).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .flatten()
}

async fn list(out: &Output) -> Result<u8, Error> {
    let dirs = Dirs::from_env()?;
    let mut rows = Vec::new();
    for worker in known_workers(&dirs) {
        let target = Target::for_worker(dirs.clone(), worker.clone())?;
        let row = match running_status(&target).await {
            Some(s) => WorkerRow {
                kind: "worker",
                worker: s.worker,
                state: s.state,
                daemon_pid: Some(s.daemon_pid),
                session_id: Some(s.session_id),
                model: s.model.or(s.requested_model),
                turns: s.turns,
                cost_usd: s.cost_usd,
                cwd: Some(s.cwd),
            },
            None => {
                let record = SessionRecord::load(&target.state_dir).ok().flatten();
                WorkerRow {
                    kind: "worker",
                    worker: worker.to_string(),
                    state: SessionState::Stopped,
                    daemon_pid: None,
                    session_id: record.as_ref().map(|r| r.session_id.clone()),
                    model: record.as_ref().and_then(|r| r.model.clone()),
                    turns: record.as_ref().map_or(0, |r| r.turns),
                    cost_usd: record.as_ref().map_or(0.0, |r| r.cost_usd),
                    cwd: record.map(|r| r.cwd),
                }
            }
        };
        rows.push(row);
    }
    if out.json {
        for row in &rows {
            out.json_line(row);
        }
        return Ok(0);
    }
    if rows.is_empty() {
        out.note("no workers yet; start one with `leash session start`");
        return Ok(0);
    }
    println!(
        "{:<32} {:<8} {:>8} {:<18} {:>6} {:>9}  CWD",
        "WORKER", "STATE", "PID", "MODEL", "TURNS", "COST"
    );
    for row in rows {
        println!(
            "{:<32} {:<8} {:>8} {:<18} {:>6} {:>9}  {}",
            row.worker,
            row.state.to_string(),
            row.daemon_pid.map_or("-".to_string(), |p| p.to_string()),
            row.model.unwrap_or_else(|| "-".to_string()),
            row.turns,
            format!("${:.4}", row.cost_usd),
            row.cwd.map_or("-".to_string(), |c| c.display().to_string())
        );
    }
    Ok(0)
}

async fn stop(args: StopArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    if !args.all {
        let target = target(global)?;
        if !stop_one(&target, out).await? {
            out.note(format!("worker {} is not running", target.worker));
        }
        return Ok(0);
    }
    let dirs = Dirs::from_env()?;
    let mut stopped = 0;
    for worker in known_workers(&dirs) {
        let target = Target::for_worker(dirs.clone(), worker)?;
        if stop_one(&target, out).await? {
            stopped += 1;
        }
    }
    if stopped == 0 {
        out.note("no worker was running");
    }
    Ok(0)
}

/// Stops one worker; false when it was not running.
async fn stop_one(target: &Target, out: &Output) -> Result<bool, Error> {
    let Some(conn) = Connection::open(&target.socket).await? else {
        return Ok(false);
    };
    let pid = conn.daemon_pid;
    conn.call(&Request::Stop).await?;
    // The daemon answered after claude was gone; wait for the daemon itself.
    let deadline = std::time::Instant::now() + STOP_WAIT;
    while crate::process::alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if out.json {
        out.json_line(&serde_json::json!({"type": "stopped", "worker": target.worker.as_str(), "daemon_pid": pid}));
    } else {
        out.note(format!("stopped worker {}", target.worker));
    }
    Ok(true)
}

async fn send(args: SendArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let prompt = if args.prompt == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::usage(format!("cannot read the prompt from standard input: {e}"))
        })?;
        text
    } else {
        args.prompt
    };
    if prompt.trim().is_empty() {
        return Err(Error::usage("the prompt is empty"));
    }
    let target = target(global)?;
    let conn = connect_or_start(&target, !args.no_start, || default_record(&target)).await?;
    let spec = TurnSpec {
        retry: RetryPolicy {
            max_retries: args.retries,
            ..RetryPolicy::default()
        },
        interactive: out.interactive(),
        ..TurnSpec::user(prompt)
    };
    match stream(conn, &Request::Send(spec), out, target.worker.as_str()).await? {
        Ending::Turn(outcome) => Ok(report_outcome(&outcome, out)),
        Ending::Step(judgement) => Ok(judgement.exit_code),
    }
}

/// Prints why a turn failed (the JSON outcome line is already out) and gives its exit
/// code.
pub fn report_outcome(outcome: &Outcome, out: &Output) -> u8 {
    if outcome.status != TurnStatus::Success {
        eprintln!(
            "leash: turn {} {}: {}",
            outcome.turn,
            status_word(outcome.status),
            outcome.message.as_deref().unwrap_or("no details")
        );
    } else if out.verbose > 0 {
        eprintln!(
            "leash: turn {} done in {:.1} s{}",
            outcome.turn,
            outcome.duration_ms as f64 / 1000.0,
            outcome
                .cost_usd
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default()
        );
    }
    outcome.exit_code
}

pub fn status_word(status: TurnStatus) -> &'static str {
    match status {
        TurnStatus::Success => "succeeded",
        TurnStatus::Error => "failed",
        TurnStatus::ProviderError => "hit a provider error",
        TurnStatus::Interrupted => "was interrupted",
        TurnStatus::Crashed => "crashed",
        TurnStatus::Hung => "hung",
    }
}

async fn interrupt(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let conn = connect(&target).await?;
    let message = ok_message(conn.call(&Request::Interrupt { turn: None }).await?)?;
    say_ok(out, &message);
    Ok(0)
}

async fn model(args: ModelArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let model = args.model.trim().to_string();
    if model.is_empty() || model.chars().any(char::is_whitespace) {
        return Err(Error::usage(format!(
            "{:?} is not a model name",
            args.model
        )));
    }
    let target = target(global)?;
    let message = match Connection::open(&target.socket).await? {
        Some(conn) => ok_message(conn.call(&Request::SetModel { model }).await?)?,
        None => {
            let Some(mut record) = SessionRecord::load(&target.state_dir)? else {
                return Err(Error::new(
                    ErrorKind::NoSession,
                    format!(
                        "worker {} has no session; start one with `leash session start --model {model}`",
                        target.worker
                    ),
                ));
            };
            record.model = Some(model.clone());
            record.save(&target.state_dir)?;
            format!(
                "worker {} is not running; its next start uses model {model}",
                target.worker
            )
        }
    };
    say_ok(out, &message);
    Ok(0)
}

fn ok_message(reply: Reply) -> Result<String, Error> {
    match reply {
        Reply::Ok { message } => Ok(message),
        other => Err(Error::internal(format!("unexpected answer: {other:?}"))),
    }
}

fn say_ok(out: &Output, message: &str) {
    if out.json {
        out.json_line(&Reply::Ok {
            message: message.to_string(),
        });
    } else {
        out.note(message);
    }
}

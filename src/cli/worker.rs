//! `leash plan|implement|nudge|loop|status`: the worker's steps, run by the daemon in
//! the worker's conversation, and the loop that strings them together.

use std::io::{IsTerminal, Read};

use serde::Serialize;

use super::render::Output;
use super::session::{default_record, target};
use super::stream::{Ending, stream};
use super::{Global, ImplementArgs, LoopArgs, NudgeArgs, PlanArgs, TaskArgs, block_on, settings};
use crate::client::{Connection, Target, connect_or_start};
use crate::error::{Error, ErrorKind};
use crate::protocol::{Reply, Request, WorkerRequest, WorkerStep};
use crate::record::SessionRecord;
use crate::worker::{Judgement, Phase, Step, Verdict, WorkerConfig, WorkerState};

const NO_TASK: &str =
    "no task: give --task TEXT, --task-file FILE, or - to read it from standard input";

/// The task from `--task`, `--task-file` or `-` (standard input), if one was given.
fn read_task(args: &TaskArgs) -> Result<Option<String>, Error> {
    let task = if let Some(task) = &args.task {
        task.clone()
    } else if let Some(file) = &args.task_file {
        std::fs::read_to_string(file)
            .map_err(|e| Error::usage(format!("cannot read --task-file {}: {e}", file.display())))?
    } else if args.stdin.is_some() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::usage(format!("cannot read the task from standard input: {e}")))?;
        text
    } else {
        return Ok(None);
    };
    if task.trim().is_empty() {
        return Err(Error::usage("the task is empty"));
    }
    Ok(Some(task.trim_end().to_string()))
}

fn config(flags: &[(&str, Option<String>)]) -> Result<WorkerConfig, Error> {
    let flags: Vec<(&str, String)> = flags
        .iter()
        .filter_map(|(key, value)| value.clone().map(|v| (*key, v)))
        .collect();
    settings(&flags)?.worker_config()
}

/// Runs one step and streams it; returns its judgement.
async fn run_step(
    target: &Target,
    step: WorkerStep,
    config: WorkerConfig,
    no_start: bool,
    out: &Output,
) -> Result<Judgement, Error> {
    // A session the worker starts allows its implementing tools from the first spawn.
    let record = || {
        let mut record = default_record(target)?;
        record.allowed_tools = config.allowed_tools.clone();
        Ok(record)
    };
    let conn = connect_or_start(target, !no_start, record).await?;
    let request = Request::Worker(WorkerRequest {
        step,
        config,
        wait: true,
        interactive: out.interactive(),
    });
    match stream(conn, &request, out, target.worker.as_str()).await? {
        Ending::Step(judgement) => {
            report(&judgement, out);
            Ok(judgement)
        }
        Ending::Turn(_) => Err(Error::internal(
            "the daemon ended a worker step without judging it",
        )),
    }
}

/// One line on stderr about the step (the JSON `judged` line is already out).
fn report(judgement: &Judgement, out: &Output) {
    if out.json || (out.quiet && judgement.exit_code == 0) {
        return;
    }
    let nudges = match judgement.step {
        Step::Plan => String::new(),
        _ => format!(
            ", nudges {}/{}",
            judgement.nudges_used, judgement.max_nudges
        ),
    };
    eprintln!(
        "leash: {}: {} [phase: {}{nudges}]",
        judgement.step, judgement.message, judgement.phase,
    );
}

pub fn plan(args: PlanArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let task = read_task(&args.task)?.ok_or_else(|| Error::usage(NO_TASK))?;
    let config = config(&[("plan_model", args.model)])?;
    let target = target(global)?;
    block_on(async {
        let judgement = run_step(
            &target,
            WorkerStep::Plan { task },
            config,
            args.no_start,
            out,
        )
        .await?;
        Ok(judgement.exit_code)
    })
}

pub fn implement(args: ImplementArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let config = config(&[("implement_model", args.model)])?;
    let target = target(global)?;
    block_on(async {
        let step = WorkerStep::Implement {
            restart: args.restart,
        };
        Ok(run_step(&target, step, config, args.no_start, out)
            .await?
            .exit_code)
    })
}

pub fn nudge(args: NudgeArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    // A hook inside the worker's own turn sees the worker's commit: not news to it.
    if let Some(event) = &args.event
        && event.starts_with("post-")
        && std::env::var("LEASH_AGENT_WORKER").is_ok_and(|w| w == target.worker.as_str())
    {
        out.note("the worker's own commit; no nudge");
        return Ok(0);
    }
    let config = config(&[])?;
    let step = WorkerStep::Nudge {
        reasons: args.reason.into_iter().collect(),
        events: args.event.into_iter().collect(),
    };
    block_on(async {
        if !args.no_wait {
            return Ok(run_step(&target, step, config, args.no_start, out)
                .await?
                .exit_code);
        }
        // From a hook: never start a session, never wait, never fail the git command.
        let Some(conn) = Connection::open(&target.socket).await? else {
            out.note(format!("worker {} is not running; no nudge", target.worker));
            return Ok(0);
        };
        let request = Request::Worker(WorkerRequest {
            step,
            config,
            wait: false,
            interactive: false,
        });
        match conn.call(&request).await? {
            Reply::Queued { turn, ahead } => {
                if out.json {
                    out.json_line(&Reply::Queued { turn, ahead });
                } else {
                    out.note(format!("nudge queued (step {turn}, {ahead} ahead)"));
                }
                Ok(0)
            }
            other => Err(Error::internal(format!(
                "unexpected answer to a nudge: {other:?}"
            ))),
        }
    })
}

/// What the loop does next.
#[derive(Debug)]
enum Next {
    Plan(String),
    Implement,
    Nudge,
    /// Stop with this exit code; the message says why when no step just said it.
    Finished(u8, Option<String>),
}

impl Next {
    fn describe(&self, config: &WorkerConfig) -> String {
        match self {
            Next::Plan(_) => format!("plan the task on {}", config.plan_model),
            Next::Implement => format!("implement on {}", config.implement_model),
            Next::Nudge => "nudge the worker".to_string(),
            Next::Finished(..) => "finish".to_string(),
        }
    }
}

/// Where a (re)started loop begins, from the persisted phase.
fn resume(state: &WorkerState, task: Option<String>, fresh: bool) -> Result<Next, Error> {
    let same_task = task.is_none() || task == state.task;
    if let Some(task) = task.clone()
        && (!same_task || fresh)
    {
        return Ok(Next::Plan(task));
    }
    let task = task.or_else(|| state.task.clone());
    Ok(match (state.phase, task) {
        (_, Some(task)) if fresh => Next::Plan(task),
        (Phase::Idle | Phase::Planning, Some(task)) => Next::Plan(task),
        (Phase::Idle | Phase::Planning, None) => {
            return Err(Error::usage(
                NO_TASK,
            ));
        }
        (Phase::Planned, _) => Next::Implement,
        (Phase::Implementing, _) => Next::Implement,
        (Phase::Done, _) => Next::Finished(
            0,
            Some("the task is already done (`--fresh` starts it over)".into()),
        ),
        (Phase::Blocked, _) => Next::Finished(
            Verdict::Blocked.exit_code(),
            Some("the worker is blocked; answer it with `leash nudge --reason ...`, or `--fresh`".into()),
        ),
        (Phase::OutOfNudges, _) => Next::Finished(
            Verdict::OutOfNudges.exit_code(),
            Some("the worker ran out of nudges; `leash implement --restart` or `--fresh` starts over".into()),
        ),
    })
}

/// The step after a judgement.
fn after(judgement: &Judgement) -> Next {
    match judgement.verdict {
        Verdict::Planned => Next::Implement,
        Verdict::Uncommitted | Verdict::NoChanges => Next::Nudge,
        Verdict::NothingToDo if judgement.phase != Phase::Done => Next::Implement,
        verdict => Next::Finished(verdict.exit_code(), None),
    }
}

pub fn run_loop(args: LoopArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    if args.step && !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "--step asks before each phase and needs a terminal on standard input",
        ));
    }
    let task = read_task(&args.task)?;
    let config = config(&[
        ("plan_model", args.plan_model.clone()),
        ("implement_model", args.implement_model.clone()),
        ("max_nudges", args.max_nudges.map(|n| n.to_string())),
    ])?;
    let target = target(global)?;
    let state = WorkerState::load(&target.state_dir)?;
    let mut next = resume(&state, task, args.fresh)?;
    let mut phase = state.phase;
    let mut last_message = state.last.map(|j| j.message).unwrap_or_default();
    block_on(async {
        loop {
            let step = match next {
                Next::Finished(code, message) => {
                    if out.json {
                        out.json_line(&serde_json::json!({
                            "type": "finished",
                            "exit_code": code,
                            "phase": phase,
                            "message": message.unwrap_or(last_message),
                        }));
                    } else if let Some(message) = message {
                        out.note(message);
                    }
                    return Ok(code);
                }
                Next::Plan(ref task) => WorkerStep::Plan { task: task.clone() },
                Next::Implement => WorkerStep::Implement { restart: false },
                Next::Nudge => WorkerStep::Nudge {
                    reasons: Vec::new(),
                    events: Vec::new(),
                },
            };
            if args.step && !confirm(&format!("next: {}. Go on?", next.describe(&config)))? {
                out.note("stopped before the next phase; `leash loop` resumes here");
                return Ok(ErrorKind::Interrupted.exit_code());
            }
            let judgement = run_step(&target, step, config.clone(), false, out).await?;
            phase = judgement.phase;
            last_message = judgement.message.clone();
            next = after(&judgement);
        }
    })
}

fn confirm(prompt: &str) -> Result<bool, Error> {
    dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(true)
        .interact()
        .map_err(|e| Error::new(ErrorKind::Interrupted, format!("no answer: {e}")))
}

/// `leash status --json`.
#[derive(Serialize)]
struct WorkerStatus<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    worker: &'a str,
    running: bool,
    daemon_pid: Option<u32>,
    session_id: Option<&'a str>,
    #[serde(flatten)]
    state: &'a WorkerState,
}

pub fn status(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let state = WorkerState::load(&target.state_dir)?;
    let record = SessionRecord::load(&target.state_dir)?;
    let daemon_pid = block_on(async {
        Ok(Connection::open(&target.socket)
            .await?
            .map_or(0, |c| c.daemon_pid))
    })?;
    let running = daemon_pid != 0;
    if out.json {
        out.json_line(&WorkerStatus {
            kind: "worker_status",
            worker: target.worker.as_str(),
            running,
            daemon_pid: running.then_some(daemon_pid),
            session_id: record.as_ref().map(|r| r.session_id.as_str()),
            state: &state,
        });
        return Ok(0);
    }
    let first_lines = |text: &str, n: usize| {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut shown = lines
            .iter()
            .take(n)
            .copied()
            .collect::<Vec<_>>()
            .join("\n            ");
        if lines.len() > n {
            shown.push_str(&format!(
                "\n            ... ({} more lines)",
                lines.len() - n
            ));
        }
        shown
    };
    let session = match (running, &record) {
        (true, Some(r)) => format!(
            "running (daemon pid {daemon_pid}, session {})",
            r.session_id
        ),
        (false, Some(r)) => format!("stopped (session {} is kept)", r.session_id),
        (_, None) => "none yet".to_string(),
    };
    println!("{:<12}{}", "worker", target.worker);
    println!("{:<12}{session}", "session");
    println!("{:<12}{}", "phase", state.phase);
    println!(
        "{:<12}{}",
        "task",
        state
            .task
            .as_deref()
            .map_or("-".into(), |t| first_lines(t, 3))
    );
    println!(
        "{:<12}{}",
        "plan",
        state
            .plan
            .as_deref()
            .map_or("-".into(), |p| first_lines(p, 5))
    );
    println!("{:<12}{} of {}", "nudges", state.nudges, state.max_nudges);
    if let Some(head) = &state.head_at_start {
        println!("{:<12}{}", "head start", &head[..head.len().min(12)]);
    }
    if let Some(last) = &state.last {
        println!(
            "{:<12}{}: {} (exit {})",
            "last", last.step, last.message, last.exit_code
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase, task: Option<&str>) -> WorkerState {
        WorkerState {
            phase,
            task: task.map(str::to_string),
            ..WorkerState::default()
        }
    }

    #[test]
    fn a_restarted_loop_resumes_from_the_persisted_phase() {
        let t = Some("t".to_string());
        assert!(matches!(
            resume(&state(Phase::Planned, Some("t")), None, false),
            Ok(Next::Implement)
        ));
        assert!(matches!(
            resume(&state(Phase::Implementing, Some("t")), t.clone(), false),
            Ok(Next::Implement)
        ));
        assert!(matches!(
            resume(&state(Phase::Done, Some("t")), t.clone(), false),
            Ok(Next::Finished(0, _))
        ));
        assert!(matches!(
            resume(&state(Phase::Done, Some("t")), t.clone(), true),
            Ok(Next::Plan(_))
        ));
        assert!(matches!(
            resume(&state(Phase::OutOfNudges, Some("t")), None, false),
            Ok(Next::Finished(10, _))
        ));
        assert!(matches!(
            resume(
                &state(Phase::Implementing, Some("t")),
                Some("other".into()),
                false
            ),
            Ok(Next::Plan(_))
        ));
        assert!(resume(&state(Phase::Idle, None), None, false).is_err());
    }
}

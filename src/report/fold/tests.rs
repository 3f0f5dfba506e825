//! The fold, event by event: what each event adds to its task's row, and which task an
//! event belongs to.

use serde_json::Value;

use super::*;
use crate::claude::conversation::Compaction;
use crate::git::CommitInfo;
use crate::protocol::Level;
use crate::report::Faults;
use crate::turn::{Outcome, TurnStatus};
use crate::worker::checks::CheckResult;
use crate::worker::machine::judgement;
use crate::worker::{Judgement, Phase, Task, WorkerState};

mod landing;

fn event(ts: u64, turn: Option<u64>, body: EventBody<Value>) -> Event<Value> {
    Event {
        seq: ts,
        ts,
        turn,
        body,
    }
}

fn step(ts: u64, id: u64, step: Step, task: &str) -> Event<Value> {
    event(
        ts,
        Some(id),
        EventBody::StepStarted {
            step,
            task_id: Some(format!("id-{task}")),
            task: Some(task.to_string()),
            host: None,
        },
    )
}

fn started(ts: u64, id: u64, kind: TurnKind) -> Event<Value> {
    event(
        ts,
        Some(id),
        EventBody::TurnStarted {
            kind,
            prompt: format!("a {kind} prompt"),
            continuation: false,
        },
    )
}

fn ended(ts: u64, id: u64, cost: f64) -> Event<Value> {
    event(
        ts,
        Some(id),
        EventBody::TurnEnded {
            outcome: Outcome {
                status: TurnStatus::Success,
                exit_code: 0,
                turn: id,
                result: None,
                message: None,
                session_id: "s".into(),
                model: None,
                cost_usd: Some(cost),
                duration_ms: 0,
                api_error_status: None,
                retries: 0,
            },
        },
    )
}

fn judged(ts: u64, id: u64, task: &str, verdict: Verdict, commits: &[&str]) -> Event<Value> {
    let state = WorkerState {
        phase: match verdict {
            Verdict::Committed => Phase::Done,
            Verdict::Planned => Phase::Planned,
            _ => Phase::Implementing,
        },
        task: Task {
            id: Some(format!("id-{task}")),
            ..Task::default()
        },
        ..WorkerState::default()
    };
    let judgement = Judgement {
        commits: commits
            .iter()
            .map(|id| CommitInfo {
                id: id.to_string(),
                summary: format!("commit {id}"),
                author: "a".into(),
            })
            .collect(),
        task_cost_usd: 0.5,
        ..judgement(&state, Step::Implement, verdict, format!("{verdict:?}"))
    };
    event(ts, Some(id), EventBody::Judged { judgement })
}

/// `true` passed, in 400 ms, ending at `ts`.
fn passed_check(ts: u64, id: u64) -> Event<Value> {
    event(
        ts,
        Some(id),
        EventBody::ChecksRan {
            checks: vec![CheckResult {
                command: "true".into(),
                exit_code: Some(0),
                timed_out: false,
                duration_ms: 400,
                output_tail: String::new(),
                disturbed: None,
            }],
        },
    )
}

fn fault(ts: u64, turn: Option<u64>, fault: Fault) -> Event<Value> {
    event(
        ts,
        turn,
        EventBody::Notice {
            level: Level::Warn,
            message: format!("{fault:?}"),
            fault: Some(fault),
        },
    )
}

fn fold(events: &[Event<Value>]) -> Vec<TaskRow> {
    let mut ledger = Ledger::new();
    for e in events {
        ledger.observe(e);
    }
    ledger.rows()
}

#[test]
fn a_task_through_plan_implement_and_a_nudge_is_one_row_with_its_figures() {
    let rows = fold(&[
        step(1_000, 1, Step::Plan, "add x"),
        started(1_010, 1, TurnKind::Plan),
        ended(2_000, 1, 0.10),
        judged(2_001, 1, "add x", Verdict::Planned, &[]),
        step(3_000, 2, Step::Implement, "add x"),
        started(3_010, 2, TurnKind::Implement),
        ended(5_000, 2, 0.25),
        judged(5_001, 2, "add x", Verdict::Uncommitted, &[]),
        step(6_000, 3, Step::Nudge, "add x"),
        started(6_010, 3, TurnKind::Nudge),
        ended(7_000, 3, 0.05),
        passed_check(7_500, 3),
        judged(7_501, 3, "add x", Verdict::Committed, &["c2", "c1"]),
    ]);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row.task, "add x");
    assert_eq!(row.standing, Standing::Done);
    assert_eq!(
        (row.verdict, row.exit_code),
        (Some(Verdict::Committed), Some(0))
    );
    assert_eq!((row.turns, row.nudges, row.commits), (3, 1, 2));
    assert_eq!(row.latest_commit.as_ref().unwrap().id, "c2");
    assert_eq!((row.checks_passed, row.checks_failed), (1, 0));
    assert_eq!((row.started_ms, row.duration_ms), (1_000, 6_501));
    assert_eq!(row.cost_usd, 0.5, "as the step reported it");
    assert_eq!(
        (
            row.cost.plan_usd,
            row.cost.implement_usd,
            row.cost.nudges_usd
        ),
        (0.10, 0.25, 0.05)
    );
    let phases: Vec<(SpanPhase, u64, u64)> = row
        .spans
        .iter()
        .map(|s| (s.phase, s.start_ms, s.end_ms))
        .collect();
    assert_eq!(
        phases,
        [
            (SpanPhase::Planning, 1_010, 2_000),
            (SpanPhase::Implementing, 3_010, 5_000),
            (SpanPhase::Implementing, 6_010, 7_000),
            (SpanPhase::Checks, 7_100, 7_500),
        ]
    );
}

#[test]
fn faults_are_counted_and_marked_on_the_task_they_happened_to() {
    let rows = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        started(1_001, 1, TurnKind::Implement),
        fault(1_100, Some(1), Fault::ProviderError),
        fault(1_200, Some(1), Fault::Crash),
        fault(1_300, Some(1), Fault::HandOff),
        event(
            1_400,
            Some(1),
            EventBody::Compacted {
                compaction: Compaction {
                    trigger: "auto".into(),
                    pre_tokens: None,
                    post_tokens: None,
                    ts: 1_400,
                },
            },
        ),
        // The daemon died mid-turn: the next one says so outside any step.
        fault(2_000, None, Fault::DaemonRestart),
        step(2_100, 2, Step::Implement, "a"),
        started(2_101, 2, TurnKind::Implement),
        ended(2_500, 2, 0.1),
        judged(2_600, 2, "a", Verdict::BudgetExhausted, &[]),
        // A fault outside any step, with no task under way, is nobody's.
        fault(3_000, None, Fault::DaemonRestart),
    ]);
    let row = &rows[0];
    assert_eq!(row.standing, Standing::OverBudget);
    assert_eq!(
        row.faults,
        Faults {
            crashes: 1,
            daemon_restarts: 1,
            compactions: 1,
            hand_offs: 1,
            provider_errors: 1,
            budget: true,
        }
    );
    let marked: Vec<(Fault, u64)> = row.markers.iter().map(|m| (m.fault, m.at_ms)).collect();
    assert_eq!(
        marked,
        [
            (Fault::ProviderError, 1_100),
            (Fault::Crash, 1_200),
            (Fault::HandOff, 1_300),
            (Fault::Compaction, 1_400),
            (Fault::DaemonRestart, 2_000),
            (Fault::Budget, 2_600),
        ]
    );
    // The turn cut off by the daemon's death ends where the next one began.
    assert_eq!(row.spans[0].start_ms, 1_001);
    assert_eq!(row.turns, 2);
}

#[test]
fn a_new_task_replaces_one_under_way_but_not_one_that_ended() {
    let rows = fold(&[
        step(1_000, 1, Step::Plan, "a"),
        judged(1_500, 1, "a", Verdict::Planned, &[]),
        step(2_000, 2, Step::Plan, "b"),
        judged(2_500, 2, "b", Verdict::Committed, &["c1"]),
        step(3_000, 3, Step::Plan, "c"),
    ]);
    let standings: Vec<(&str, Standing)> =
        rows.iter().map(|r| (r.task.as_str(), r.standing)).collect();
    assert_eq!(
        standings,
        [
            ("a", Standing::Replaced),
            ("b", Standing::Done),
            ("c", Standing::Unfinished)
        ]
    );
    assert_eq!(
        rows[0].duration_ms, 500,
        "its time ends at its last work, not when b began"
    );
}

#[test]
fn a_refused_step_does_not_change_the_task_it_names() {
    let rows = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        judged(1_500, 1, "a", Verdict::Uncommitted, &[]),
        step(2_000, 2, Step::Plan, "a"),
        judged(2_001, 2, "a", Verdict::Busy, &[]),
    ]);
    assert_eq!(rows[0].verdict, Some(Verdict::Uncommitted));
    assert_eq!(rows[0].exit_code, Some(12));
}

#[test]
fn events_outside_any_step_and_unread_lines_are_skipped() {
    let mut ledger = Ledger::new();
    ledger.line(r#"{"type":"claude","seq":1,"ts":1,"turn":1,"msg":{"type":"assistant"}}"#);
    ledger.line("{ torn");
    ledger.observe(&started(5, 9, TurnKind::User));
    ledger.observe(&ended(6, 9, 1.0));
    assert!(ledger.rows().is_empty());
    assert!(!wanted(r#"{"type":"claude","seq":1}"#));
    assert!(wanted(r#"{"type":"judged","seq":1}"#));
}

#[test]
fn a_step_id_a_new_daemon_hands_out_again_is_not_the_old_task_s() {
    let rows = fold(&[
        step(1_000, 7, Step::Implement, "a"),
        started(1_001, 7, TurnKind::Implement),
        // The daemon died; the new one says so and reuses id 7 for a plain send.
        fault(2_000, None, Fault::DaemonRestart),
        started(2_100, 7, TurnKind::User),
        ended(2_200, 7, 9.0),
    ]);
    let row = &rows[0];
    assert_eq!(row.turns, 1, "{row:#?}");
    assert_eq!(row.cost.total_usd(), 0.0);
    assert_eq!(row.faults.daemon_restarts, 1);
    assert_eq!(row.last_ms, 2_000);
    assert_eq!(
        (row.spans[0].start_ms, row.spans[0].end_ms),
        (1_001, 2_000),
        "the cut-off turn ends with the task's last word"
    );
}

#[test]
fn a_step_with_nothing_to_do_later_does_not_stretch_the_task() {
    let mut nothing = judged(90_000, 2, "a", Verdict::NothingToDo, &[]);
    if let EventBody::Judged { judgement } = &mut nothing.body {
        judgement.phase = Phase::Done;
    }
    let rows = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        judged(2_000, 1, "a", Verdict::Committed, &["c1"]),
        step(90_000, 2, Step::Nudge, "a"),
        nothing,
    ]);
    assert_eq!((rows[0].last_ms, rows[0].duration_ms), (2_000, 1_000));
    assert_eq!(rows[0].standing, Standing::Done);
}

#[test]
fn a_failed_or_interrupted_task_a_new_one_replaces_is_replaced() {
    for verdict in [Verdict::TurnFailed, Verdict::Interrupted] {
        let rows = fold(&[
            step(1_000, 1, Step::Implement, "a"),
            judged(2_000, 1, "a", verdict, &[]),
            step(3_000, 2, Step::Plan, "b"),
        ]);
        assert_eq!(rows[0].standing, Standing::Replaced, "{verdict:?}");
    }
    let blocked = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        judged(2_000, 1, "a", Verdict::Blocked, &[]),
        step(3_000, 2, Step::Plan, "b"),
    ]);
    assert_eq!(
        blocked[0].standing,
        Standing::Blocked,
        "its question stands"
    );
}

#[test]
fn a_turn_still_running_has_its_bar_up_to_the_last_word() {
    let rows = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        started(1_010, 1, TurnKind::Implement),
        fault(1_500, Some(1), Fault::ProviderError),
    ]);
    let spans: Vec<(u64, u64)> = rows[0]
        .spans
        .iter()
        .map(|s| (s.start_ms, s.end_ms))
        .collect();
    assert_eq!(spans, [(1_010, 1_500)]);
}

#[test]
fn a_task_that_ended_shows_the_exit_code_loop_ends_with() {
    let rows = fold(&[
        step(1_000, 1, Step::Nudge, "add x"),
        started(1_010, 1, TurnKind::Nudge),
        ended(2_000, 1, 0.1),
        judged(2_001, 1, "add x", Verdict::OutOfNudges, &[]),
        step(3_000, 2, Step::Implement, "add y"),
        judged(3_001, 2, "add y", Verdict::Uncommitted, &[]),
        step(4_000, 3, Step::Plan, "add z"),
    ]);
    assert_eq!(rows[0].standing, Standing::OutOfNudges);
    assert_eq!(
        rows[0].exit_code,
        Some(10),
        "what loop exits, not the step's 0"
    );
    assert_eq!(rows[1].standing, Standing::Replaced);
    assert_eq!(rows[1].exit_code, Some(14));
}

#[test]
fn a_task_this_log_never_saw_planned_costs_what_this_log_saw() {
    // A fork's task: the plan (and its cost) is the original worker's.
    let rows = fold(&[
        step(1_000, 1, Step::Implement, "add x"),
        started(1_010, 1, TurnKind::Implement),
        ended(2_000, 1, 0.01),
        judged(2_001, 1, "add x", Verdict::Committed, &["c1"]),
    ]);
    assert!(
        (rows[0].cost_usd - 0.01).abs() < 1e-9,
        "{}",
        rows[0].cost_usd
    );
    let planned = fold(&[
        step(1_000, 1, Step::Plan, "add x"),
        judged(1_001, 1, "add x", Verdict::Committed, &["c1"]),
    ]);
    assert!(
        (planned[0].cost_usd - 0.5).abs() < 1e-9,
        "the task's own figure"
    );
}

#[test]
fn a_continued_nudge_is_no_new_nudge_in_logs_old_and_new() {
    let step_of = |ts| step(ts, 1, Step::Nudge, "a");
    // As a daemon writes it now: the continuation is the event's own fact.
    let mut now = Ledger::new();
    now.observe(&step_of(1_000));
    now.observe(&started(1_001, 1, TurnKind::Nudge));
    now.observe(&event(
        1_002,
        Some(1),
        EventBody::TurnStarted {
            kind: TurnKind::Nudge,
            prompt: "any words".into(),
            continuation: true,
        },
    ));
    // As a daemon wrote it before: a line without the field, told by its words.
    let mut before = Ledger::new();
    before.observe(&step_of(1_000));
    before.observe(&started(1_001, 1, TurnKind::Nudge));
    let old_line = serde_json::json!({
        "type": "turn_started", "seq": 3, "ts": 1_002, "turn": 1, "kind": "nudge",
        "prompt": format!("{CONTINUE_AFTER_RESTART} more"),
    });
    before.line(&old_line.to_string());
    for (which, ledger) in [("now", now), ("before", before)] {
        let rows = ledger.rows();
        assert_eq!(
            rows[0].nudges, 1,
            "{which}: the continuation is the same nudge"
        );
        assert_eq!(rows[0].turns, 2, "{which}");
    }
}

fn loop_ended(ts: u64, task: &str, exit_code: u8) -> Event<Value> {
    let task_id = format!("id-{task}");
    event(ts, None, EventBody::LoopEnded { task_id, exit_code })
}

#[test]
fn a_loop_that_died_mid_step_ends_its_task_with_its_code_until_the_task_goes_on() {
    let died = [
        step(1_000, 1, Step::Implement, "a"),
        started(1_010, 1, TurnKind::Implement),
        loop_ended(2_000, "a", 6),
    ];
    let rows = fold(&died);
    assert_eq!(
        (rows[0].standing, rows[0].exit_code),
        (Standing::Failed, Some(6))
    );
    assert_eq!(
        rows[0].last_ms, 1_010,
        "the loop's end is no work on the task"
    );
    let judged_first = fold(&[
        step(1_000, 1, Step::Implement, "b"),
        judged(1_600, 1, "b", Verdict::OutOfNudges, &[]),
        loop_ended(1_700, "b", 6),
    ]);
    assert_eq!(
        (judged_first[0].standing, judged_first[0].exit_code),
        (Standing::OutOfNudges, Some(10)),
        "a judgement keeps its word"
    );
    let interrupted = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        loop_ended(2_000, "a", 130),
    ]);
    assert_eq!(
        (interrupted[0].standing, interrupted[0].exit_code),
        (Standing::Interrupted, Some(130))
    );
    let went_on = fold(&[
        step(1_000, 1, Step::Implement, "a"),
        loop_ended(2_000, "a", 6),
        step(3_000, 2, Step::Implement, "a"),
        started(3_010, 2, TurnKind::Implement),
    ]);
    assert_eq!(went_on[0].standing, Standing::Unfinished);
}

#[test]
fn a_task_shows_the_host_of_its_last_step_that_named_one() {
    let on = |ts, id, host: Option<&str>| {
        let mut e = step(ts, id, Step::Implement, "a");
        if let EventBody::StepStarted { host: h, .. } = &mut e.body {
            *h = host.map(str::to_string);
        }
        e
    };
    let rows = fold(&[on(1_000, 1, Some("n1")), on(2_000, 2, Some("n2"))]);
    assert_eq!(rows[0].host.as_deref(), Some("n2"));
    let old_log = fold(&[on(1_000, 1, Some("n1")), on(2_000, 2, None)]);
    assert_eq!(old_log[0].host.as_deref(), Some("n1"));
}

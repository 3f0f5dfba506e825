//! The fold and `leash land`: a landing is told on its task's row (the landed commit,
//! how it ended, its turns and their cost) and never changes how the task itself
//! stands; a landing in a later log than its task still finds it.

use serde_json::Value;

use super::*;
use crate::report::history;
use crate::report::landing::Landing;
use crate::worker::Judgement;

/// The task `add x`, planned and done by step 2 at 5_001.
fn done_task() -> Vec<Event<Value>> {
    vec![
        step(1_000, 1, Step::Plan, "add x"),
        started(1_010, 1, TurnKind::Plan),
        ended(2_000, 1, 0.10),
        judged(2_001, 1, "add x", Verdict::Planned, &[]),
        step(3_000, 2, Step::Implement, "add x"),
        started(3_010, 2, TurnKind::Implement),
        ended(5_000, 2, 0.25),
        judged(5_001, 2, "add x", Verdict::Committed, &["c1"]),
    ]
}

/// A land step's judgement of the task, with the task's cost as the step reported it.
fn land_judged(ts: u64, id: u64, verdict: Verdict, message: &str) -> Event<Value> {
    let EventBody::Judged { judgement } = judged(ts, id, "add x", verdict, &["rebased"]).body
    else {
        unreachable!()
    };
    let judgement = Judgement {
        step: Step::Land,
        message: message.to_string(),
        task_cost_usd: 99.0,
        ..judgement
    };
    event(ts, Some(id), EventBody::Judged { judgement })
}

fn landed(ts: u64, turn: Option<u64>, commit: &str) -> Event<Value> {
    event(
        ts,
        turn,
        EventBody::Landed {
            task_id: "id-add x".into(),
            commit: commit.into(),
            target: "main".into(),
        },
    )
}

/// A landing handed back: a landing turn that resolves, the landing checks, Landable;
/// then the landed work taken in.
fn handed_back_and_landed() -> Vec<Event<Value>> {
    vec![
        step(50_000, 7, Step::Land, "add x"),
        started(50_010, 7, TurnKind::Land),
        ended(52_000, 7, 0.30),
        passed_check(52_500, 7),
        land_judged(52_501, 7, Verdict::Landable, "resolved"),
        step(60_000, 8, Step::Land, "add x"),
        landed(60_010, Some(8), "f00dfeedbeef0123"),
        land_judged(60_011, 8, Verdict::Landed, "landed on main"),
    ]
}

/// The row's stretches from `ms` on: phase, start, end.
fn spans_after(row: &TaskRow, ms: u64) -> Vec<(SpanPhase, u64, u64)> {
    row.spans
        .iter()
        .filter(|s| s.start_ms >= ms)
        .map(|s| (s.phase, s.start_ms, s.end_ms))
        .collect()
}

fn assert_done_as_before(row: &TaskRow) {
    assert_eq!(row.standing, Standing::Done, "{row:#?}");
    assert_eq!(row.verdict, Some(Verdict::Committed));
    assert_eq!(row.exit_code, Some(0));
    assert_eq!(row.message.as_deref(), Some("Committed"));
    assert_eq!(row.commits, 1, "the rebased commits are no new work");
    assert_eq!(row.latest_commit.as_ref().unwrap().id, "c1");
    assert_eq!(
        (row.last_ms, row.duration_ms),
        (5_001, 4_001),
        "the task's time is its work's"
    );
}

#[test]
fn a_task_done_then_landed_in_the_same_log_keeps_its_standing_and_tells_the_landing() {
    let mut events = done_task();
    events.extend(handed_back_and_landed());
    let rows = fold(&events);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_done_as_before(row);
    assert_eq!(row.landed.as_deref(), Some("f00dfeedbeef0123"));
    assert_eq!(
        row.landing,
        Some(Landing {
            verdict: Some(Verdict::Landed),
            message: Some("landed on main".into()),
            target: Some("main".into()),
            at_ms: 60_011,
        })
    );
    assert_eq!(row.turns, 3, "the landing turn counts");
    assert!((row.cost.land_usd - 0.30).abs() < 1e-9, "{:?}", row.cost);
    assert!(
        (row.cost_usd - 0.80).abs() < 1e-9,
        "the task's 0.5, and the landing turn's 0.3: {}",
        row.cost_usd
    );
    assert_eq!(
        (row.checks_passed, row.checks_failed),
        (1, 0),
        "the landing checks ran for the task"
    );
    assert_eq!(
        spans_after(row, 50_000),
        [
            (SpanPhase::Landing, 50_010, 52_000),
            (SpanPhase::Checks, 52_100, 52_500)
        ]
    );
    let totals = crate::report::Totals::of(None, &rows);
    assert_eq!((totals.done, totals.landed, totals.not_landed), (1, 1, 0));
}

#[test]
fn a_landing_given_up_says_why_and_leaves_the_task_done() {
    let mut events = done_task();
    events.extend([
        step(50_000, 7, Step::Land, "add x"),
        started(50_010, 7, TurnKind::Land),
        ended(52_000, 7, 0.30),
        land_judged(
            52_001,
            7,
            Verdict::NotLanded,
            "the worker could not resolve src/lib.rs",
        ),
    ]);
    let rows = fold(&events);
    let row = &rows[0];
    assert_done_as_before(row);
    assert_eq!(row.landed, None);
    let landing = row.landing.as_ref().unwrap();
    assert_eq!(landing.verdict, Some(Verdict::NotLanded));
    assert_eq!(
        crate::report::landing::describe(row).as_deref(),
        Some("not landed: the worker could not resolve src/lib.rs")
    );
    assert_eq!(crate::report::landing::cell(row), "not landed");
    let totals = crate::report::Totals::of(None, &rows);
    assert_eq!((totals.done, totals.landed, totals.not_landed), (1, 0, 1));
}

#[test]
fn a_landing_compaction_and_its_cost_go_to_the_landing() {
    let mut events = done_task();
    events.extend([
        step(50_000, 7, Step::Land, "add x"),
        started(50_010, 7, TurnKind::Compact),
        ended(51_000, 7, 0.02),
        started(51_010, 7, TurnKind::Land),
        ended(52_000, 7, 0.30),
    ]);
    let row = &fold(&events)[0];
    assert!((row.cost.land_usd - 0.32).abs() < 1e-9, "{:?}", row.cost);
    assert!(
        (row.cost.implement_usd - 0.25).abs() < 1e-9,
        "{:?}",
        row.cost
    );
    assert_eq!(row.turns, 4);
    assert_eq!(
        spans_after(row, 50_000),
        [
            (SpanPhase::Landing, 50_010, 51_000),
            (SpanPhase::Landing, 51_010, 52_000)
        ]
    );
}

#[test]
fn a_landing_in_a_later_log_finds_its_task_in_the_history() {
    let kept = fold(&done_task()).remove(0);
    // The task's own events rotated away: the log begins with the landing.
    let later = fold(&handed_back_and_landed());
    assert_eq!(later.len(), 1, "{later:#?}");
    let mut rows = vec![kept.clone()];
    history::merge(&mut rows, later[0].clone());
    let row = &rows[0];
    assert_done_as_before(row);
    assert_eq!(row.started_ms, kept.started_ms);
    assert_eq!(row.landed.as_deref(), Some("f00dfeedbeef0123"));
    assert_eq!(
        row.landing.as_ref().and_then(|l| l.target.as_deref()),
        Some("main")
    );
    assert!((row.cost_usd - 0.80).abs() < 1e-9, "{}", row.cost_usd);
    assert!(row.spans.iter().any(|s| s.phase == SpanPhase::Landing));
    // The history's row, saved again after the landing, meets the same log later: the
    // landing is taken once.
    let again = row.clone();
    history::merge(&mut rows, later[0].clone());
    assert_eq!(rows, [again]);
}

#[test]
fn a_landed_event_outside_any_step_finds_its_task_by_id() {
    let mut events = done_task();
    events.push(landed(60_010, None, "f00dfeedbeef0123"));
    let row = &fold(&events)[0];
    assert_done_as_before(row);
    assert_eq!(row.landed.as_deref(), Some("f00dfeedbeef0123"));
    assert_eq!(
        row.landing.as_ref().map(|l| (l.verdict, l.at_ms)),
        Some((Some(Verdict::Landed), 60_010))
    );
}

#[test]
fn a_landing_of_a_task_this_log_never_saw_replaces_no_task_under_way() {
    let rows = fold(&[
        step(1_000, 1, Step::Plan, "other"),
        judged(1_001, 1, "other", Verdict::Planned, &[]),
        step(2_000, 2, Step::Land, "add x"),
        landed(2_010, Some(2), "f00dfeedbeef0123"),
        land_judged(2_011, 2, Verdict::Landed, "landed"),
    ]);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0].standing, Standing::Unfinished, "{rows:#?}");
    assert_eq!(rows[1].landed.as_deref(), Some("f00dfeedbeef0123"));
}

#[test]
fn a_log_without_landings_folds_as_before() {
    let row = &fold(&done_task())[0];
    assert_done_as_before(row);
    assert_eq!((row.landed.as_ref(), row.landing.as_ref()), (None, None));
    assert_eq!(row.cost.land_usd, 0.0);
    assert!(row.spans.iter().all(|s| s.phase != SpanPhase::Landing));
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(json["landed"], Value::Null);
    assert_eq!(json["landing"], Value::Null);
    // A row the history kept before landings existed reads as one never landed.
    let mut old = json.as_object().unwrap().clone();
    old.remove("landed");
    old.remove("landing");
    let read: TaskRow = serde_json::from_value(Value::Object(old)).unwrap();
    assert_eq!(&read, row);
}

fn write_log(dir: &std::path::Path, name: &str, events: &[Event<Value>]) {
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join(name), text).unwrap();
}

/// The daemon saves the task's row again after a landing, from logs that may have lost
/// the task's beginning: the history's row takes the landing in, and gives way to no
/// row that saw only the landing.
#[test]
fn a_row_saved_again_after_a_landing_keeps_the_task_and_adds_the_landing() {
    let dir = tempfile::tempdir().unwrap();
    let task = [("id-add x".to_string(), Some("leash/w".to_string()))];
    write_log(dir.path(), crate::eventlog::LOG_FILE, &done_task());
    history::record(dir.path(), "w", &task).unwrap();
    let kept = history::load(dir.path()).unwrap().rows.remove(0);
    // The night rotated the task's own events away; the landing came in the morning.
    write_log(dir.path(), crate::eventlog::ROTATED_FILE, &[]);
    write_log(
        dir.path(),
        crate::eventlog::LOG_FILE,
        &handed_back_and_landed(),
    );
    history::record(dir.path(), "w", &task).unwrap();
    let rows = history::load(dir.path()).unwrap().rows;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_done_as_before(row);
    assert_eq!(
        (row.started_ms, &row.branch, row.turns),
        (kept.started_ms, &kept.branch, kept.turns)
    );
    assert_eq!(row.landed.as_deref(), Some("f00dfeedbeef0123"));
    // The report merges that log into the row again: nothing counts twice.
    let mut merged = rows.clone();
    for folded in history::fold_logs(dir.path()).unwrap().rows() {
        history::merge(&mut merged, folded);
    }
    assert_eq!(merged, rows);
}

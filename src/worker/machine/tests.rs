//! The worker machine, step by step, without a daemon: every phase a step can start
//! in, crossed with every way its turn and the repository can turn out.

use super::*;
use crate::git::{CommitInfo, FileChange};
use crate::retry::RetryPolicy;
use crate::turn::{Outcome, TurnKind, TurnStatus};
use crate::worker::{Phase, Run, Step, Task, Verdict, WorkerConfig, WorkerState, WorkerStep};

const NOW: u64 = 1_000_000;

/// A case: what the turn said, the commits made during it, the phase's commits and the
/// loose changes after it, and the verdict, phase and exit code expected.
type ImplementCase<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    Verdict,
    Phase,
    u8,
);
/// A case: the changes before a nudge, the commits it made, the phase's commits and the
/// changes after it, and the verdict and phase expected.
type NudgeCase<'a> = (
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    Verdict,
    Phase,
);

fn config() -> WorkerConfig {
    WorkerConfig {
        plan_model: "opus".into(),
        implement_model: "sonnet".into(),
        plan_permission_mode: "plan".into(),
        implement_permission_mode: "acceptEdits".into(),
        allowed_tools: vec!["Bash(git:*)".into()],
        max_nudges: 3,
        nudge_backoff_ms: 1_000,
        nudge_backoff_max_ms: 8_000,
        retry: RetryPolicy::NONE,
        compact_at: 80,
        task_budget_usd: None,
        checks: Vec::new(),
        check_timeout_ms: 60_000,
        review: false,
        max_reviews: 2,
        rescopes: 0,
    }
}

fn commit(id: &str) -> CommitInfo {
    CommitInfo {
        id: id.to_string(),
        summary: format!("commit {id}"),
        author: "someone".to_string(),
    }
}

fn change(path: &str) -> FileChange {
    FileChange {
        code: "??".to_string(),
        path: path.to_string(),
    }
}

fn outcome(status: TurnStatus, result: &str) -> Outcome {
    Outcome {
        status,
        exit_code: status.exit_code(),
        turn: 1,
        result: (status == TurnStatus::Success).then(|| result.to_string()),
        message: (status != TurnStatus::Success).then(|| format!("the turn {status:?}")),
        session_id: "s".into(),
        model: None,
        cost_usd: None,
        duration_ms: 0,
        api_error_status: None,
        retries: 0,
    }
}

fn ok(result: &str) -> Seen {
    turn(outcome(TurnStatus::Success, result), &[])
}

fn turn(outcome: Outcome, made: &[&str]) -> Seen {
    Seen::Turn {
        outcome,
        made: made.iter().map(|s| s.to_string()).collect(),
        foreign: Vec::new(),
        head: made.first().map(|s| s.to_string()),
    }
}

/// git as it looks: HEAD, the phase's commits (newest first), loose changes.
fn git(head: &str, commits: &[&str], changes: &[&str]) -> Seen {
    Seen::Git(GitView {
        head: Some(head.to_string()),
        commits: commits.iter().map(|c| commit(c)).collect(),
        new_commits: commits.iter().map(|c| commit(c)).collect(),
        changes: changes.iter().map(|c| change(c)).collect(),
    })
}

fn state(phase: Phase) -> WorkerState {
    WorkerState {
        phase,
        task: Task {
            text: Some("add a --version flag".into()),
            plan: matches!(phase, Phase::Planned | Phase::Implementing | Phase::Done)
                .then(|| "1. add it".to_string()),
            ..Task::default()
        },
        run: Run {
            head_at_start: (phase != Phase::Idle).then(|| "h0".to_string()),
            last_seen_head: (phase != Phase::Idle).then(|| "h0".to_string()),
            max_nudges: 3,
            implement_sent: matches!(
                phase,
                Phase::Implementing | Phase::Done | Phase::Blocked | Phase::OutOfNudges
            ),
            ..Run::default()
        },
        ..WorkerState::default()
    }
}

/// Feeds `seen` in order; returns every action, the last being the judgement.
fn drive(step: WorkerStep, state: &mut WorkerState, seen: Vec<Seen>) -> Vec<Action> {
    let mut machine = StepMachine::new(step, config(), None);
    let mut actions = vec![machine.advance(state, Seen::Start, NOW)];
    for seen in seen {
        assert!(
            !matches!(actions.last(), Some(Action::Finish(_))),
            "fed {seen:?} after the step finished: {actions:?}"
        );
        actions.push(machine.advance(state, seen, NOW));
    }
    actions
}

fn judged(actions: &[Action]) -> &Judgement {
    match actions.last() {
        Some(Action::Finish(judgement)) => judgement,
        other => panic!("the step did not finish: {other:?} in {actions:?}"),
    }
}

fn sent(actions: &[Action]) -> Vec<(TurnKind, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { kind, prompt, .. } => Some((*kind, prompt.clone())),
            _ => None,
        })
        .collect()
}

const PLAN: fn() -> WorkerStep = || WorkerStep::Plan {
    task: "add a --version flag".into(),
    replace: false,
};

fn plan_of(task: &str, replace: bool) -> WorkerStep {
    WorkerStep::Plan {
        task: task.into(),
        replace,
    }
}
const IMPLEMENT: WorkerStep = WorkerStep::Implement { restart: false };

fn nudge(reason: Option<&str>) -> WorkerStep {
    WorkerStep::Nudge {
        reasons: reason.map(str::to_string).into_iter().collect(),
        events: Vec::new(),
    }
}

const ALL_PHASES: [Phase; 7] = [
    Phase::Idle,
    Phase::Planning,
    Phase::Planned,
    Phase::Implementing,
    Phase::Done,
    Phase::Blocked,
    Phase::OutOfNudges,
];

// ---- plan ----------------------------------------------------------------------------

#[test]
fn planning_begins_the_task_anew_from_any_phase() {
    for phase in ALL_PHASES {
        let mut s = state(phase);
        s.run.nudges = 2;
        s.run.own_commits = vec!["old".into()];
        let actions = drive(PLAN(), &mut s, vec![ok("1. write it\n2. commit it")]);
        let j = judged(&actions);
        assert_eq!(
            (j.verdict, j.phase, j.exit_code),
            (Verdict::Planned, Phase::Planned, 0)
        );
        assert_eq!(
            s.task.plan.as_deref(),
            Some("1. write it\n2. commit it"),
            "{phase}"
        );
        assert_eq!(
            (s.run.nudges, s.run.own_commits.len()),
            (0, 0),
            "{phase}: forgotten"
        );
        let turns = sent(&actions);
        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].0, TurnKind::Plan);
        assert!(turns[0].1.contains("add a --version flag"));
    }
}

#[test]
fn a_plan_that_says_blocked_blocks_the_worker() {
    let mut s = state(Phase::Idle);
    let actions = drive(PLAN(), &mut s, vec![ok("LEASH-BLOCKED: need the API key")]);
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Blocked, Phase::Blocked, 11)
    );
    assert_eq!(j.blocked_reason.as_deref(), Some("need the API key"));
    assert_eq!(s.task.plan, None);
}

#[test]
fn a_planning_turn_that_fails_keeps_the_phase_and_the_turn_exit_code() {
    for (status, verdict, code) in [
        (TurnStatus::ProviderError, Verdict::ProviderError, 5),
        (TurnStatus::Crashed, Verdict::TurnFailed, 6),
        (TurnStatus::Hung, Verdict::TurnFailed, 6),
        (TurnStatus::Error, Verdict::TurnFailed, 6),
        (TurnStatus::Interrupted, Verdict::Interrupted, 130),
    ] {
        let mut s = state(Phase::Idle);
        let actions = drive(PLAN(), &mut s, vec![turn(outcome(status, ""), &[])]);
        let j = judged(&actions);
        assert_eq!(
            (j.verdict, j.phase, j.exit_code),
            (verdict, Phase::Planning, code)
        );
    }
}

#[test]
fn a_new_task_is_refused_while_another_is_under_way_unless_it_replaces_it() {
    for phase in ALL_PHASES {
        let mut s = state(phase);
        s.task.id = Some("t1".into());
        let under_way = s.task_under_way();
        let answers = if under_way { vec![] } else { vec![ok("plan")] };
        let actions = drive(plan_of("another task", false), &mut s, answers);
        let j = judged(&actions);
        if under_way {
            assert_eq!((j.verdict, j.exit_code), (Verdict::Busy, 14), "{phase}");
            assert!(j.message.contains("add a --version flag"), "{}", j.message);
            assert!(sent(&actions).is_empty(), "{phase}");
            assert_eq!(s.task.id.as_deref(), Some("t1"), "{phase}: untouched");
        } else {
            assert_eq!(j.verdict, Verdict::Planned, "{phase}");
            assert_ne!(s.task.id.as_deref(), Some("t1"), "{phase}: a new task");
        }
        let mut s = state(phase);
        s.task.id = Some("t1".into());
        let actions = drive(plan_of("another task", true), &mut s, vec![ok("plan")]);
        assert_eq!(judged(&actions).verdict, Verdict::Planned, "{phase}");
        assert_eq!(s.task.text.as_deref(), Some("another task"));
        assert_ne!(s.task.id.as_deref(), Some("t1"));
    }
}

#[test]
fn a_step_for_a_task_that_was_replaced_is_refused() {
    for step in [PLAN(), IMPLEMENT, nudge(None), nudge(Some("x"))] {
        let mut s = state(Phase::Implementing);
        s.task.id = Some("now".into());
        let mut machine = StepMachine::new(step.clone(), config(), Some("before".into()));
        let Action::Finish(j) = machine.advance(&mut s, Seen::Start, NOW) else {
            panic!("{step:?} was not refused");
        };
        assert_eq!(
            (j.verdict, j.exit_code),
            (Verdict::Replaced, 14),
            "{step:?}"
        );
        assert!(!j.verdict.concerns_the_work());
        assert_eq!(s.phase, Phase::Implementing, "untouched");
        let mut machine = StepMachine::new(step, config(), Some("now".into()));
        assert!(
            !matches!(machine.advance(&mut s, Seen::Start, NOW), Action::Finish(j) if j.verdict == Verdict::Replaced)
        );
    }
}

// ---- implement -----------------------------------------------------------------------

#[test]
fn implementing_from_a_fresh_phase_begins_at_head_and_judges_from_git() {
    // (what the turn said, commits made during it, git after it) -> verdict, phase, exit.
    let cases: [ImplementCase; 5] = [
        (
            "done",
            &["c1"],
            &["c1"],
            &[],
            Verdict::Committed,
            Phase::Done,
            0,
        ),
        (
            "wrote it",
            &[],
            &[],
            &["a.rs"],
            Verdict::Uncommitted,
            Phase::Implementing,
            12,
        ),
        (
            "thinking",
            &[],
            &[],
            &[],
            Verdict::NoChanges,
            Phase::Implementing,
            12,
        ),
        (
            "LEASH-BLOCKED: no key",
            &[],
            &[],
            &[],
            Verdict::Blocked,
            Phase::Blocked,
            11,
        ),
        // Someone else committed meanwhile: not the worker's work.
        (
            "thinking",
            &[],
            &["f1"],
            &[],
            Verdict::NoChanges,
            Phase::Implementing,
            12,
        ),
    ];
    for from in [Phase::Idle, Phase::Planning, Phase::Planned] {
        for (said, made, commits, changes, verdict, phase, code) in cases {
            let mut s = state(from);
            s.run.implement_sent = false;
            let head = commits.first().copied().unwrap_or("h0");
            let actions = drive(
                IMPLEMENT,
                &mut s,
                vec![
                    git("h0", &[], &[]),
                    ok_made(said, made),
                    git(head, commits, changes),
                ],
            );
            let j = judged(&actions);
            assert_eq!(
                (j.verdict, j.phase, j.exit_code),
                (verdict, phase, code),
                "from {from}, said {said:?}, made {made:?}"
            );
            assert_eq!(
                s.run.head_at_start.as_deref(),
                Some("h0"),
                "the phase began at HEAD"
            );
            assert!(s.run.implement_sent);
            assert_eq!(
                j.commits.len(),
                made.len(),
                "only the worker's own commits count"
            );
            assert_eq!(sent(&actions)[0].0, TurnKind::Implement);
        }
    }
}

fn ok_made(result: &str, made: &[&str]) -> Seen {
    turn(outcome(TurnStatus::Success, result), made)
}

#[test]
fn implementing_a_phase_under_way_judges_again_without_a_turn() {
    for phase in [
        Phase::Implementing,
        Phase::Done,
        Phase::Blocked,
        Phase::OutOfNudges,
    ] {
        let mut s = state(phase);
        s.run.own_commits = vec!["c1".into()];
        s.run.nudges = 3;
        let actions = drive(IMPLEMENT, &mut s, vec![git("c1", &["c1"], &[])]);
        assert!(
            sent(&actions).is_empty(),
            "{phase}: the prompt is never sent twice"
        );
        // The agent's own word that it is blocked beats what git shows.
        let expected = match phase {
            Phase::Blocked => Verdict::Blocked,
            _ => Verdict::Committed,
        };
        assert_eq!(judged(&actions).verdict, expected, "{phase}");
    }
}

#[test]
fn restart_begins_the_phase_over_with_a_fresh_nudge_budget() {
    let mut s = state(Phase::OutOfNudges);
    s.run.nudges = 3;
    let actions = drive(
        WorkerStep::Implement { restart: true },
        &mut s,
        vec![git("h5", &[], &[]), ok("hm"), git("h5", &[], &[])],
    );
    assert_eq!(sent(&actions).len(), 1);
    assert_eq!(
        (s.run.nudges, s.run.head_at_start.as_deref()),
        (0, Some("h5"))
    );
    assert_eq!(judged(&actions).verdict, Verdict::NoChanges);
}

#[test]
fn a_failed_implementation_turn_is_sent_again_in_the_same_phase() {
    for (status, verdict, code) in [
        (TurnStatus::ProviderError, Verdict::ProviderError, 5),
        (TurnStatus::Crashed, Verdict::TurnFailed, 6),
        (TurnStatus::Interrupted, Verdict::Interrupted, 130),
    ] {
        let mut s = state(Phase::Planned);
        s.run.implement_sent = false;
        let actions = drive(
            IMPLEMENT,
            &mut s,
            vec![git("h0", &[], &[]), turn(outcome(status, ""), &[])],
        );
        let j = judged(&actions);
        assert_eq!((j.verdict, j.exit_code), (verdict, code));
        assert_eq!(s.phase, Phase::Implementing);
        assert!(
            !s.run.implement_sent,
            "the prompt did not get a complete turn"
        );
        // The next implement sends it again, without beginning the phase anew.
        s.run.foreign_commits.clear();
        let again = drive(IMPLEMENT, &mut s, vec![git("f1", &["f1"], &[])]);
        assert_eq!(sent(&again).len(), 1, "sent again");
        assert_eq!(s.run.head_at_start.as_deref(), Some("h0"), "same phase");
        assert_eq!(
            s.run.foreign_commits.len(),
            1,
            "someone else's commit is remembered"
        );
    }
}

#[test]
fn implement_outside_a_repository_ends_with_the_error_before_any_turn() {
    let mut s = state(Phase::Planned);
    let actions = drive(
        IMPLEMENT,
        &mut s,
        vec![Seen::GitFailed(Error::usage("not a git repository"))],
    );
    assert!(sent(&actions).is_empty());
    let j = judged(&actions);
    assert_eq!((j.exit_code, j.verdict), (2, Verdict::TurnFailed));
    assert!(j.message.contains("not a git repository"));
}

// ---- nudge ---------------------------------------------------------------------------

#[test]
fn a_nudge_is_refused_in_phases_that_take_none() {
    for (phase, verdict, code) in [
        (Phase::Idle, Verdict::NothingToDo, 0),
        (Phase::Planning, Verdict::NothingToDo, 0),
        (Phase::Planned, Verdict::NothingToDo, 0),
        (Phase::Done, Verdict::NothingToDo, 0),
        (Phase::OutOfNudges, Verdict::OutOfNudges, 10),
        (Phase::Blocked, Verdict::Blocked, 11),
    ] {
        let mut s = state(phase);
        let actions = drive(nudge(None), &mut s, vec![]);
        assert!(sent(&actions).is_empty(), "{phase}");
        let j = judged(&actions);
        assert_eq!((j.verdict, j.exit_code), (verdict, code), "{phase}");
        assert_eq!(s.phase, phase, "{phase}: unchanged");
    }
}

#[test]
fn a_nudge_names_what_git_shows_and_judges_the_result() {
    // (git before, made during the nudge, git after) -> verdict, phase.
    let cases: [NudgeCase; 4] = [
        (
            &["a.rs"],
            &["c1"],
            &["c1"],
            &[],
            Verdict::Committed,
            Phase::Done,
        ),
        (
            &["a.rs"],
            &[],
            &[],
            &["a.rs"],
            Verdict::Uncommitted,
            Phase::Implementing,
        ),
        (&[], &[], &[], &[], Verdict::NoChanges, Phase::Implementing),
        (
            &[],
            &[],
            &[],
            &["b.rs"],
            Verdict::Uncommitted,
            Phase::Implementing,
        ),
    ];
    for (before, made, commits, after, verdict, phase) in cases {
        let mut s = state(Phase::Implementing);
        let head = commits.first().copied().unwrap_or("h0");
        let actions = drive(
            nudge(None),
            &mut s,
            vec![
                git("h0", &[], before),
                git("h0", &[], before),
                ok_made("ok", made),
                git(head, commits, after),
            ],
        );
        let prompt = &sent(&actions)[0].1;
        if before.is_empty() {
            assert!(prompt.contains("Nothing has changed"), "{prompt}");
        } else {
            assert!(prompt.contains("?? a.rs"), "{prompt}");
        }
        assert!(prompt.contains("nudge 1 of 3"), "{prompt}");
        let j = judged(&actions);
        assert_eq!((j.verdict, j.phase), (verdict, phase));
        assert_eq!(j.exit_code, 0, "the nudge went out");
        assert!(
            j.message.starts_with("nudge 1 of 3 sent; "),
            "{}",
            j.message
        );
        assert_eq!(s.run.nudges, 1);
        assert_eq!(s.run.last_nudge_ms, Some(NOW));
    }
}

#[test]
fn no_nudge_is_sent_for_committed_work() {
    let mut s = state(Phase::Implementing);
    s.run.own_commits = vec!["c1".into()];
    let actions = drive(nudge(None), &mut s, vec![git("c1", &["c1"], &[])]);
    assert!(sent(&actions).is_empty());
    let j = judged(&actions);
    assert_eq!((j.verdict, j.phase), (Verdict::Committed, Phase::Done));
    assert!(j.message.starts_with("no nudge needed"));
}

#[test]
fn the_nudge_cap_ends_the_phase_with_10() {
    let mut s = state(Phase::Implementing);
    s.run.nudges = 2;
    s.run.last_nudge_ms = Some(0);
    let actions = drive(
        nudge(None),
        &mut s,
        vec![
            git("h0", &[], &[]),
            git("h0", &[], &[]),
            ok("no"),
            git("h0", &[], &[]),
        ],
    );
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase),
        (Verdict::OutOfNudges, Phase::OutOfNudges)
    );
    assert_eq!(j.exit_code, 0, "the last nudge itself went out");
    let again = drive(nudge(None), &mut s, vec![]);
    assert_eq!(judged(&again).exit_code, 10, "and no nudge is left");
}

#[test]
fn nudges_are_spaced_by_backoff_and_an_interrupted_wait_ends_the_step() {
    let mut s = state(Phase::Implementing);
    s.run.nudges = 1;
    s.run.last_nudge_ms = Some(NOW);
    let actions = drive(nudge(None), &mut s, vec![git("h0", &[], &[])]);
    let Some(Action::Pause { ms, why }) = actions.last() else {
        panic!("{actions:?}");
    };
    assert!((500..=1_000).contains(ms), "{ms}");
    assert!(why.contains("before nudge 2"), "{why}");
    let mut machine = StepMachine::new(nudge(None), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    machine.advance(&mut s, git("h0", &[], &[]), NOW);
    let action = machine.advance(&mut s, Seen::Interrupted, NOW);
    let Action::Finish(j) = action else {
        panic!("{action:?}")
    };
    assert_eq!((j.verdict, j.exit_code), (Verdict::Interrupted, 130));
    assert_eq!(s.run.nudges, 1, "no nudge spent");
}

#[test]
fn a_provider_error_costs_no_nudge_and_other_failures_do() {
    for (status, spent) in [
        (TurnStatus::ProviderError, 0),
        (TurnStatus::Crashed, 1),
        (TurnStatus::Interrupted, 1),
    ] {
        let mut s = state(Phase::Implementing);
        let actions = drive(
            nudge(None),
            &mut s,
            vec![
                git("h0", &[], &[]),
                git("h0", &[], &[]),
                turn(outcome(status, ""), &[]),
            ],
        );
        assert_eq!(judged(&actions).exit_code, status.exit_code());
        assert_eq!(s.run.nudges, spent, "{status:?}");
    }
}

#[test]
fn someone_elses_commits_are_told_in_the_next_nudge_once() {
    let mut s = state(Phase::Implementing);
    let actions = drive(
        nudge(None),
        &mut s,
        vec![
            git("f1", &["f1"], &[]),
            git("f1", &["f1"], &[]),
            ok("ok"),
            git("f1", &["f1"], &[]),
        ],
    );
    let prompt = &sent(&actions)[0].1;
    assert!(prompt.contains("Someone else committed"), "{prompt}");
    assert!(prompt.contains("commit f1"), "{prompt}");
    assert_eq!(
        judged(&actions).verdict,
        Verdict::NoChanges,
        "not the worker's commit"
    );
    assert!(s.run.foreign_commits.is_empty(), "told once");
    assert_eq!(s.run.last_seen_head.as_deref(), Some("f1"));
}

#[test]
fn only_the_workers_own_commits_during_a_turn_count_and_the_rest_are_told() {
    let mut s = state(Phase::Implementing);
    let mut machine = StepMachine::new(nudge(None), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    machine.advance(&mut s, git("h0", &[], &["a.rs"]), NOW);
    machine.advance(&mut s, git("h0", &[], &["a.rs"]), NOW);
    let during = Seen::Turn {
        outcome: outcome(TurnStatus::Success, "done"),
        made: vec!["c1".into()],
        foreign: vec![commit("f1")],
        head: Some("c1".into()),
    };
    assert_eq!(machine.advance(&mut s, during, NOW), Action::Look);
    assert_eq!(
        machine.take_notes().len(),
        1,
        "someone else's commit is noted"
    );
    let Action::Finish(j) = machine.advance(&mut s, git("c1", &["c1", "f1"], &[]), NOW) else {
        panic!("not finished");
    };
    assert_eq!(j.verdict, Verdict::Committed);
    assert_eq!(j.commits.len(), 1, "f1 is not the worker's");
    assert_eq!(
        s.run.foreign_commits,
        vec![commit("f1")],
        "told in the next nudge"
    );
    assert_eq!(s.run.last_seen_head.as_deref(), Some("c1"));

    // Someone else's commit alone, during the worker's turn, is no work of its own.
    let mut s = state(Phase::Implementing);
    let mut machine = StepMachine::new(IMPLEMENT, config(), None);
    s.run.implement_sent = false;
    machine.advance(&mut s, Seen::Start, NOW);
    machine.advance(&mut s, git("h0", &[], &[]), NOW);
    let during = Seen::Turn {
        outcome: outcome(TurnStatus::Success, "thinking"),
        made: Vec::new(),
        foreign: vec![commit("f1")],
        head: Some("f1".into()),
    };
    machine.advance(&mut s, during, NOW);
    let Action::Finish(j) = machine.advance(&mut s, git("f1", &["f1"], &[]), NOW) else {
        panic!("not finished");
    };
    assert_eq!((j.verdict, j.exit_code), (Verdict::NoChanges, 12));
}

#[test]
fn an_answer_to_a_blocker_raised_while_planning_plans_again() {
    let mut s = state(Phase::Idle);
    drive(PLAN(), &mut s, vec![ok("LEASH-BLOCKED: need the key")]);
    assert_eq!(
        (s.phase, s.task.blocked_in),
        (Phase::Blocked, Some(Phase::Planning))
    );
    let actions = drive(
        nudge(Some("the key is in .env")),
        &mut s,
        vec![ok("1. read .env\n2. commit")],
    );
    let turns = sent(&actions);
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].0, TurnKind::Plan, "a planning turn");
    assert!(turns[0].1.contains("the key is in .env"), "{}", turns[0].1);
    assert!(
        turns[0].1.contains("add a --version flag"),
        "the task again"
    );
    let j = judged(&actions);
    assert_eq!(
        (j.step, j.verdict, j.exit_code),
        (Step::Nudge, Verdict::Planned, 0)
    );
    assert_eq!(s.phase, Phase::Planned);
    assert_eq!(
        (s.run.nudges, s.task.blocked_in),
        (0, None),
        "the budget is intact"
    );
    // Blocked again: the answer did not help.
    let mut s = state(Phase::Idle);
    drive(PLAN(), &mut s, vec![ok("LEASH-BLOCKED: need the key")]);
    let actions = drive(nudge(Some("no")), &mut s, vec![ok("LEASH-BLOCKED: still")]);
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.exit_code, s.phase),
        (Verdict::Blocked, 11, Phase::Blocked)
    );
}

#[test]
fn an_answer_to_a_blocker_raised_while_implementing_is_no_nudge() {
    let mut s = state(Phase::Implementing);
    s.run.nudges = 1;
    s.run.last_nudge_ms = Some(NOW);
    drive(
        nudge(None),
        &mut s,
        vec![
            git("h0", &[], &[]),
            Seen::Waited,
            git("h0", &[], &[]),
            ok("LEASH-BLOCKED: which database?"),
            git("h0", &[], &[]),
        ],
    );
    assert_eq!(
        (s.phase, s.task.blocked_in),
        (Phase::Blocked, Some(Phase::Implementing))
    );
    assert_eq!(s.run.nudges, 2);
    let actions = drive(
        nudge(Some("use postgres")),
        &mut s,
        vec![
            git("h0", &[], &[]),
            git("h0", &[], &[]),
            ok("ok"),
            git("h0", &[], &["a"]),
        ],
    );
    assert!(
        !matches!(actions[1], Action::Pause { .. }),
        "a person's answer does not wait out the nudge backoff"
    );
    let prompt = &sent(&actions)[0].1;
    assert!(
        prompt.contains("use postgres") && !prompt.contains("nudge 3"),
        "{prompt}"
    );
    let j = judged(&actions);
    assert!(
        j.message.starts_with("the answer was sent"),
        "{}",
        j.message
    );
    assert_eq!(
        (s.run.nudges, s.phase),
        (2, Phase::Implementing),
        "no nudge spent"
    );
}

#[test]
fn an_answer_to_a_blocker_nudges_and_unblocks() {
    let mut s = state(Phase::Blocked);
    let actions = drive(
        nudge(Some("the key is in .env")),
        &mut s,
        vec![
            git("h0", &[], &[]),
            git("h0", &[], &[]),
            ok("on it"),
            git("h0", &[], &["a"]),
        ],
    );
    let prompt = &sent(&actions)[0].1;
    assert!(prompt.contains("the key is in .env"), "{prompt}");
    assert_eq!(judged(&actions).phase, Phase::Implementing);
}

#[test]
fn an_unexpected_answer_ends_the_step_with_an_internal_error_not_a_hang() {
    let mut s = state(Phase::Implementing);
    let actions = drive(IMPLEMENT, &mut s, vec![Seen::Waited]);
    let j = judged(&actions);
    assert_eq!(j.exit_code, 1);
    assert!(j.message.contains("lost its place"));
}

// ---- compaction at phase boundaries ----------------------------------------------------

#[test]
fn a_full_context_is_compacted_before_a_plan_or_implement_turn_keeping_the_work() {
    for (step, kind, context) in [
        (PLAN(), TurnKind::Plan, Phase::Idle),
        (IMPLEMENT, TurnKind::Implement, Phase::Planned),
    ] {
        let mut s = state(context);
        s.run.implement_sent = false;
        let mut machine = StepMachine::new(step.clone(), config(), None).with_context(Some(85));
        let mut action = machine.advance(&mut s, Seen::Start, NOW);
        if kind == TurnKind::Implement {
            action = machine.advance(&mut s, git("h0", &[], &[]), NOW);
        }
        let Action::Compact { instructions } = action else {
            panic!("{step:?}: {action:?}");
        };
        assert!(
            instructions.contains("add a --version flag"),
            "the task: {instructions}"
        );
        if kind == TurnKind::Implement {
            assert!(
                instructions.contains("1. add it"),
                "the plan: {instructions}"
            );
        }
        let next = machine.advance(
            &mut s,
            Seen::Compacted(outcome(TurnStatus::Success, "")),
            NOW,
        );
        assert!(
            matches!(next, Action::Send { kind: k, .. } if k == kind),
            "{next:?}"
        );
        // A failed compaction does not stop the work; it is noted.
        let mut s = state(context);
        s.run.implement_sent = false;
        let mut machine = StepMachine::new(step, config(), None).with_context(Some(99));
        machine.advance(&mut s, Seen::Start, NOW);
        if kind == TurnKind::Implement {
            machine.advance(&mut s, git("h0", &[], &[]), NOW);
        }
        let next = machine.advance(&mut s, Seen::Compacted(outcome(TurnStatus::Error, "")), NOW);
        assert!(matches!(next, Action::Send { .. }), "{next:?}");
        assert_eq!(machine.take_notes().len(), 1);
    }
}

#[test]
fn no_compaction_below_the_threshold_when_unknown_or_disabled() {
    for (percent, compact_at) in [(Some(79), 80), (None, 80), (Some(100), 0)] {
        let mut s = state(Phase::Idle);
        let config = WorkerConfig {
            compact_at,
            ..config()
        };
        let mut machine = StepMachine::new(PLAN(), config, None).with_context(percent);
        let action = machine.advance(&mut s, Seen::Start, NOW);
        assert!(
            matches!(action, Action::Send { .. }),
            "{percent:?} {compact_at}: {action:?}"
        );
    }
    // Nudges never compact: only a phase's first turn does.
    let mut s = state(Phase::Implementing);
    let mut machine = StepMachine::new(nudge(None), config(), None).with_context(Some(95));
    machine.advance(&mut s, Seen::Start, NOW);
    machine.advance(&mut s, git("h0", &[], &[]), NOW);
    let action = machine.advance(&mut s, git("h0", &[], &[]), NOW);
    assert!(
        matches!(
            action,
            Action::Send {
                kind: TurnKind::Nudge,
                ..
            }
        ),
        "{action:?}"
    );
}

// ---- the loop ------------------------------------------------------------------------

fn with_task(phase: Phase, task: Option<&str>) -> WorkerState {
    WorkerState {
        phase,
        task: Task {
            text: task.map(str::to_string),
            ..Task::default()
        },
        ..WorkerState::default()
    }
}

#[test]
fn a_restarted_loop_resumes_from_the_persisted_phase() {
    let t = || Some("t".to_string());
    let start = |phase, task: Option<String>, fresh| {
        loop_start(&with_task(phase, Some("t")), task, fresh, &config())
    };
    assert_eq!(
        start(Phase::Planned, None, false),
        Some(LoopNext::Implement)
    );
    assert_eq!(
        start(Phase::Implementing, t(), false),
        Some(LoopNext::Implement)
    );
    assert!(matches!(
        start(Phase::Done, t(), false),
        Some(LoopNext::Finish(0, _))
    ));
    assert!(matches!(
        start(Phase::Done, t(), true),
        Some(LoopNext::Plan(_))
    ));
    assert!(matches!(
        start(Phase::OutOfNudges, None, false),
        Some(LoopNext::Finish(10, _))
    ));
    assert!(matches!(
        start(Phase::Blocked, None, false),
        Some(LoopNext::Finish(11, _))
    ));
    assert!(matches!(
        start(Phase::Implementing, Some("other".into()), false),
        Some(LoopNext::Plan(_))
    ));
    assert_eq!(
        loop_start(&with_task(Phase::Idle, None), None, false, &config()),
        None
    );
}

#[test]
fn the_loop_follows_each_verdict() {
    let j = |verdict, phase| Judgement {
        phase,
        ..judgement(
            &WorkerState::default(),
            Step::Implement,
            verdict,
            String::new(),
        )
    };
    assert_eq!(
        loop_next(&j(Verdict::Planned, Phase::Planned)),
        LoopNext::Implement
    );
    assert_eq!(
        loop_next(&j(Verdict::Uncommitted, Phase::Implementing)),
        LoopNext::Nudge
    );
    assert_eq!(
        loop_next(&j(Verdict::NoChanges, Phase::Implementing)),
        LoopNext::Nudge
    );
    assert_eq!(
        loop_next(&j(Verdict::NothingToDo, Phase::Planned)),
        LoopNext::Implement
    );
    for (verdict, code) in [
        (Verdict::Committed, 0),
        (Verdict::NothingToDo, 0),
        (Verdict::Blocked, 11),
        (Verdict::OutOfNudges, 10),
        (Verdict::ProviderError, 5),
        (Verdict::TurnFailed, 6),
        (Verdict::Interrupted, 130),
    ] {
        assert_eq!(
            loop_next(&j(verdict, Phase::Done)),
            LoopNext::Finish(code, None),
            "{verdict:?}"
        );
    }
}

// ---- budgets ---------------------------------------------------------------------------

fn costing(seen: Seen, usd: f64) -> Seen {
    match seen {
        Seen::Turn {
            outcome,
            made,
            foreign,
            head,
        } => Seen::Turn {
            outcome: Outcome {
                cost_usd: Some(usd),
                ..outcome
            },
            made,
            foreign,
            head,
        },
        Seen::Compacted(outcome) => Seen::Compacted(Outcome {
            cost_usd: Some(usd),
            ..outcome
        }),
        other => other,
    }
}

fn budgeted(step: WorkerStep, budget: f64) -> StepMachine {
    StepMachine::new(
        step,
        WorkerConfig {
            task_budget_usd: Some(budget),
            ..config()
        },
        None,
    )
}

fn drive_machine(
    mut machine: StepMachine,
    state: &mut WorkerState,
    seen: Vec<Seen>,
) -> Vec<Action> {
    let mut actions = vec![machine.advance(state, Seen::Start, NOW)];
    for seen in seen {
        assert!(
            !matches!(actions.last(), Some(Action::Finish(_))),
            "fed {seen:?} after the step finished: {actions:?}"
        );
        actions.push(machine.advance(state, seen, NOW));
    }
    actions
}

#[test]
fn each_turns_cost_goes_to_its_phase_and_they_add_up_to_the_task() {
    let mut s = state(Phase::Idle);
    drive(PLAN(), &mut s, vec![costing(ok("1. do it"), 0.25)]);
    // A compaction before the implementation counts with it.
    let machine = StepMachine::new(IMPLEMENT, config(), None).with_context(Some(95));
    let actions = drive_machine(
        machine,
        &mut s,
        vec![
            git("h0", &[], &[]),
            costing(Seen::Compacted(outcome(TurnStatus::Success, "")), 0.01),
            costing(ok("working"), 0.5),
            git("h0", &[], &["a.rs"]),
        ],
    );
    assert_eq!(judged(&actions).verdict, Verdict::Uncommitted);
    let actions = drive(
        nudge(None),
        &mut s,
        vec![
            git("h0", &[], &["a.rs"]),
            git("h0", &[], &["a.rs"]),
            costing(ok("done"), 0.125),
            git("h0", &[], &["a.rs"]),
        ],
    );
    let j = judged(&actions);
    assert_eq!(s.task.cost.plan_usd, 0.25);
    assert_eq!(s.task.cost.implement_usd, 0.51);
    assert_eq!(s.task.cost.nudges_usd, 0.125);
    assert_eq!(s.task.cost.total_usd(), 0.885);
    assert_eq!(j.task_cost_usd, 0.885, "the judgement carries it");
    assert_eq!(s.task.cost.budget_usd, None);
    // A new task starts at nothing.
    drive(PLAN(), &mut s, vec![ok("1. again")]);
    assert_eq!(s.task.cost.total_usd(), 0.0);
}

#[test]
fn a_spent_budget_sends_no_further_turn_in_any_step() {
    for (step, phase) in [
        (IMPLEMENT, Phase::Planned),
        (IMPLEMENT, Phase::Implementing),
        (nudge(None), Phase::Implementing),
        (nudge(Some("use the other API")), Phase::Blocked),
    ] {
        let mut s = state(phase);
        s.run.implement_sent = phase == Phase::Implementing;
        s.task.cost.implement_usd = 1.0;
        let seen = match (&step, phase) {
            (WorkerStep::Implement { .. }, Phase::Planned) => vec![git("h0", &[], &[])],
            (WorkerStep::Implement { .. }, _) => vec![git("h0", &[], &["a.rs"])],
            _ => vec![git("h0", &[], &["a.rs"]), git("h0", &[], &["a.rs"])],
        };
        let actions = drive_machine(budgeted(step.clone(), 1.0), &mut s, seen);
        let j = judged(&actions);
        assert!(
            sent(&actions).is_empty(),
            "{step:?} in {phase}: {actions:?}"
        );
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Pause { .. })),
            "no backoff for a nudge that will not be sent"
        );
        assert_eq!(
            (j.verdict, j.exit_code),
            (Verdict::BudgetExhausted, 13),
            "{step:?} in {phase}"
        );
        assert!(
            j.message.contains("$1.00 of its $1.00 budget"),
            "{}",
            j.message
        );
        assert_eq!(s.task.cost.budget_usd, Some(1.0));
    }
}

#[test]
fn the_turn_that_spends_the_budget_finishes_and_is_judged_by_its_work() {
    // Committed work is done, whatever it cost.
    let mut s = state(Phase::Planned);
    let actions = drive_machine(
        budgeted(IMPLEMENT, 0.5),
        &mut s,
        vec![
            git("h0", &[], &[]),
            costing(turn(outcome(TurnStatus::Success, "done"), &["c1"]), 0.75),
            git("c1", &["c1"], &[]),
        ],
    );
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Committed, Phase::Done, 0)
    );
    // Work that is not done ends the command with 13, not "nudge me" (12).
    let mut s = state(Phase::Planned);
    let actions = drive_machine(
        budgeted(IMPLEMENT, 0.5),
        &mut s,
        vec![
            git("h0", &[], &[]),
            costing(ok("halfway"), 0.75),
            git("h0", &[], &["a.rs"]),
        ],
    );
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::BudgetExhausted, Phase::Implementing, 13)
    );
    assert!(j.message.starts_with("not committed yet"), "{}", j.message);
    assert_eq!(j.uncommitted.len(), 1, "what git shows is kept");
    // A plan that spends it is still a plan; the implementation then is not sent.
    let mut s = state(Phase::Idle);
    let actions = drive_machine(
        budgeted(PLAN(), 0.5),
        &mut s,
        vec![costing(ok("1. x"), 0.6)],
    );
    assert_eq!(judged(&actions).verdict, Verdict::Planned);
    let actions = drive_machine(budgeted(IMPLEMENT, 0.5), &mut s, vec![git("h0", &[], &[])]);
    assert_eq!(judged(&actions).verdict, Verdict::BudgetExhausted);
    // A larger budget goes on where it stopped.
    let actions = drive_machine(budgeted(IMPLEMENT, 2.0), &mut s, vec![git("h0", &[], &[])]);
    assert_eq!(sent(&actions).len(), 1);
}

#[test]
fn a_budget_spent_ends_the_loop_with_13() {
    let mut s = state(Phase::Implementing);
    s.task.cost.nudges_usd = 3.0;
    s.run.nudges = 1;
    s.run.last_nudge_ms = Some(NOW);
    let actions = drive_machine(
        budgeted(nudge(None), 3.0),
        &mut s,
        vec![git("h0", &[], &["a"])],
    );
    assert_eq!(loop_next(judged(&actions)), LoopNext::Finish(13, None));
}

// ---- checks, review, rescope ---------------------------------------------------------

fn gated(checks: &[&str], review: bool) -> WorkerConfig {
    WorkerConfig {
        checks: checks.iter().map(|c| c.to_string()).collect(),
        review,
        ..config()
    }
}

fn check(command: &str, exit_code: i32, output: &str) -> CheckResult {
    CheckResult {
        command: command.to_string(),
        exit_code: Some(exit_code),
        timed_out: false,
        duration_ms: 5,
        output_tail: output.to_string(),
    }
}

fn diff() -> Seen {
    Seen::Diff(Diff {
        stat: " a.rs | 2 +-\n".into(),
        patch: "+fixed\n".into(),
        truncated: false,
    })
}

/// Drives a step under `config`; returns its actions.
fn step_with(
    config: &WorkerConfig,
    step: WorkerStep,
    state: &mut WorkerState,
    seen: Vec<Seen>,
) -> Vec<Action> {
    drive_machine(StepMachine::new(step, config.clone(), None), state, seen)
}

#[test]
fn a_commit_is_done_only_once_its_checks_pass() {
    let config = gated(&["cargo test"], false);
    let mut s = state(Phase::Planned);
    let mut m = StepMachine::new(IMPLEMENT, config.clone(), None);
    m.advance(&mut s, Seen::Start, NOW);
    m.advance(&mut s, git("h0", &[], &[]), NOW);
    m.advance(
        &mut s,
        turn(outcome(TurnStatus::Success, "done"), &["c1"]),
        NOW,
    );
    let a = m.advance(&mut s, git("c1", &["c1"], &[]), NOW);
    assert_eq!(
        a,
        Action::RunChecks {
            commands: vec!["cargo test".into()],
            timeout_ms: 60_000
        }
    );
    assert_eq!(
        s.phase,
        Phase::Implementing,
        "not done while the checks run"
    );
    let a = m.advance(
        &mut s,
        Seen::Checked(vec![check("cargo test", 0, "ok")]),
        NOW,
    );
    let Action::Finish(j) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Committed, Phase::Done, 0)
    );
    assert!(j.message.ends_with("; 1 check(s) passed"), "{}", j.message);
    assert_eq!(j.checks.len(), 1);
    assert_eq!(
        s.run.gates.checked.as_ref().unwrap().head.as_deref(),
        Some("c1")
    );
    // Judged again at the same commit, the checks do not run again.
    let actions = step_with(&config, IMPLEMENT, &mut s, vec![git("c1", &["c1"], &[])]);
    assert_eq!(judged(&actions).verdict, Verdict::Committed);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::RunChecks { .. }))
    );
    // Other checks configured: they run.
    let other = gated(&["cargo test", "cargo clippy"], false);
    let actions = step_with(&other, IMPLEMENT, &mut s, vec![git("c1", &["c1"], &[])]);
    assert!(matches!(actions.last(), Some(Action::RunChecks { .. })));
}

/// Runs an implement step to a commit `c1` whose checks answer `checks`.
fn implement_with_checks(
    config: &WorkerConfig,
    checks: Vec<CheckResult>,
) -> (WorkerState, Vec<Action>, Vec<Note>) {
    let mut s = state(Phase::Planned);
    let mut m = StepMachine::new(IMPLEMENT, config.clone(), None);
    let mut actions = Vec::new();
    for seen in [
        Seen::Start,
        git("h0", &[], &[]),
        turn(outcome(TurnStatus::Success, "done"), &["c1"]),
        git("c1", &["c1"], &[]),
        Seen::Checked(checks),
    ] {
        actions.push(m.advance(&mut s, seen, NOW));
    }
    (s, actions, m.take_notes())
}

#[test]
fn a_failed_check_is_told_verbatim_in_the_next_nudge_which_counts() {
    let config = gated(&["cargo test", "cargo clippy"], false);
    let (mut s, actions, notes) = implement_with_checks(
        &config,
        vec![check(
            "cargo test",
            101,
            "test parse ... FAILED\nassertion failed: left == right",
        )],
    );
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::ChecksFailed, Phase::Implementing, 12)
    );
    assert!(
        j.message
            .contains("but the check `cargo test` failed (exit 101)"),
        "{}",
        j.message
    );
    assert!(matches!(&notes[..], [Note::ChecksRan(c)] if c.len() == 1));
    assert_eq!(loop_next(j), LoopNext::Nudge);
    // implement again at the same commit: the same verdict, no new run.
    let again = step_with(&config, IMPLEMENT, &mut s, vec![git("c1", &["c1"], &[])]);
    assert_eq!(judged(&again).verdict, Verdict::ChecksFailed);
    // The nudge goes out with the failure, counted.
    let mut m = StepMachine::new(nudge(None), config.clone(), None);
    assert_eq!(m.advance(&mut s, Seen::Start, NOW), Action::Look);
    assert_eq!(
        m.advance(&mut s, git("c1", &["c1"], &[]), NOW),
        Action::Look
    );
    let Action::Send { kind, prompt, .. } = m.advance(&mut s, git("c1", &["c1"], &[]), NOW) else {
        panic!("no nudge")
    };
    assert_eq!(kind, TurnKind::Nudge);
    assert!(
        prompt.contains("The check `cargo test` failed (exit 101) at your commit c1"),
        "{prompt}"
    );
    assert!(
        prompt.contains("test parse ... FAILED\nassertion failed: left == right"),
        "{prompt}"
    );
    assert!(prompt.contains("leash nudge 1 of 3"), "{prompt}");
    assert!(!prompt.contains("Nothing has changed"), "{prompt}");
    assert_eq!(s.run.gates.feedback, None, "told once");
    // The fix lands; the checks run at it and pass.
    let a = m.advance(
        &mut s,
        turn(outcome(TurnStatus::Success, "fixed"), &["c2"]),
        NOW,
    );
    assert_eq!(a, Action::Look);
    assert_eq!(s.run.nudges, 1);
    let a = m.advance(&mut s, git("c2", &["c2", "c1"], &[]), NOW);
    assert!(matches!(a, Action::RunChecks { .. }), "{a:?}");
    let a = m.advance(
        &mut s,
        Seen::Checked(vec![
            check("cargo test", 0, ""),
            check("cargo clippy", 0, ""),
        ]),
        NOW,
    );
    let Action::Finish(j) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Committed, Phase::Done, 0)
    );
    assert!(j.message.contains("2 check(s) passed"), "{}", j.message);
}

#[test]
fn a_check_failing_with_no_nudges_left_ends_the_phase() {
    let config = gated(&["make test"], false);
    let mut s = state(Phase::Implementing);
    s.run.nudges = 3;
    s.run.own_commits = vec!["c1".into()];
    let mut m = StepMachine::new(IMPLEMENT, config, None);
    m.advance(&mut s, Seen::Start, NOW);
    let a = m.advance(&mut s, git("c1", &["c1"], &[]), NOW);
    assert!(matches!(a, Action::RunChecks { .. }), "{a:?}");
    let a = m.advance(
        &mut s,
        Seen::Checked(vec![check("make test", 2, "boom")]),
        NOW,
    );
    let Action::Finish(j) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::OutOfNudges, Phase::OutOfNudges, 10)
    );
    assert!(
        j.message.contains("no nudges left (3 used)"),
        "{}",
        j.message
    );
}

#[test]
fn checks_interrupted_end_the_step_interrupted() {
    let config = gated(&["sleep 100"], false);
    let mut s = state(Phase::Implementing);
    s.run.own_commits = vec!["c1".into()];
    let mut m = StepMachine::new(IMPLEMENT, config, None);
    m.advance(&mut s, Seen::Start, NOW);
    assert!(matches!(
        m.advance(&mut s, git("c1", &["c1"], &[]), NOW),
        Action::RunChecks { .. }
    ));
    let Action::Finish(j) = m.advance(&mut s, Seen::Interrupted, NOW) else {
        panic!()
    };
    assert_eq!((j.verdict, j.exit_code), (Verdict::Interrupted, 130));
    assert_eq!(s.phase, Phase::Implementing);
}

/// An implement step to commit `c1`, no checks, review on: the actions up to the review.
fn implement_to_review(config: &WorkerConfig, s: &mut WorkerState) -> (StepMachine, String) {
    let mut m = StepMachine::new(IMPLEMENT, config.clone(), None);
    m.advance(s, Seen::Start, NOW);
    m.advance(s, git("h0", &[], &[]), NOW);
    m.advance(s, turn(outcome(TurnStatus::Success, "done"), &["c1"]), NOW);
    assert_eq!(m.advance(s, git("c1", &["c1"], &[]), NOW), Action::Diff);
    let Action::Send { kind, prompt, .. } = m.advance(s, diff(), NOW) else {
        panic!()
    };
    assert_eq!(kind, TurnKind::Review);
    (m, prompt)
}

#[test]
fn a_review_that_asks_for_changes_reaches_the_implementer_verbatim_then_approves() {
    let config = gated(&[], true);
    let mut s = state(Phase::Planned);
    let (mut m, prompt) = implement_to_review(&config, &mut s);
    assert!(
        prompt.contains("add a --version flag") && prompt.contains("1. add it"),
        "{prompt}"
    );
    assert!(prompt.contains("<diff>\n+fixed\n</diff>"), "{prompt}");
    assert!(
        prompt.contains("LEASH-APPROVED") && prompt.contains("LEASH-CHANGES:"),
        "{prompt}"
    );
    assert!(prompt.contains("review 1 of at most 2"), "{prompt}");
    let review = "The flag prints nothing.\nLEASH-CHANGES: print the version from Cargo.toml";
    let Action::Finish(j) = m.advance(&mut s, ok(review), NOW) else {
        panic!()
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::ChangesRequested, Phase::Implementing, 12)
    );
    assert!(
        j.message.contains("review 1 asked for changes"),
        "{}",
        j.message
    );
    assert!(matches!(&m.take_notes()[..], [Note::Reviewed(r)] if !r.approved && r.round == 1));
    assert_eq!(s.run.gates.reviews, 1);
    // The nudge carries the review, verbatim, on the implementing model.
    let mut m = StepMachine::new(nudge(None), config.clone(), None);
    m.advance(&mut s, Seen::Start, NOW);
    m.advance(&mut s, git("c1", &["c1"], &[]), NOW);
    let Action::Send { kind, prompt, .. } = m.advance(&mut s, git("c1", &["c1"], &[]), NOW) else {
        panic!()
    };
    assert_eq!(kind, TurnKind::Nudge);
    assert!(prompt.contains(review), "verbatim: {prompt}");
    m.advance(
        &mut s,
        turn(outcome(TurnStatus::Success, "ok"), &["c2"]),
        NOW,
    );
    assert_eq!(
        m.advance(&mut s, git("c2", &["c2", "c1"], &[]), NOW),
        Action::Diff
    );
    let Action::Send { prompt, .. } = m.advance(&mut s, diff(), NOW) else {
        panic!()
    };
    assert!(prompt.contains("review 2 of at most 2"), "{prompt}");
    let Action::Finish(j) = m.advance(&mut s, ok("Good now.\nLEASH-APPROVED"), NOW) else {
        panic!()
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Committed, Phase::Done, 0)
    );
    assert!(j.message.contains("approved by review"), "{}", j.message);
    assert!(
        s.run
            .gates
            .review
            .as_ref()
            .is_some_and(|r| r.approved && r.round == 2)
    );
}

#[test]
fn max_reviews_bounds_the_rounds_then_the_work_is_accepted_with_a_note() {
    let config = WorkerConfig {
        max_reviews: 1,
        ..gated(&[], true)
    };
    let mut s = state(Phase::Planned);
    let (mut m, _) = implement_to_review(&config, &mut s);
    let Action::Finish(j) = m.advance(&mut s, ok("LEASH-CHANGES: more tests"), NOW) else {
        panic!()
    };
    assert_eq!(j.verdict, Verdict::ChangesRequested);
    // The implementer answers the review and commits: no second review.
    let actions = step_with(
        &config,
        nudge(None),
        &mut s,
        vec![
            git("c1", &["c1"], &[]),
            git("c1", &["c1"], &[]),
            turn(outcome(TurnStatus::Success, "tests added"), &["c2"]),
            git("c2", &["c2", "c1"], &[]),
        ],
    );
    assert!(!actions.contains(&Action::Diff), "{actions:?}");
    let j = judged(&actions);
    assert_eq!((j.verdict, j.phase), (Verdict::Committed, Phase::Done));
    assert!(
        j.message
            .contains("accepted without approval after 1 review round(s) (max_reviews)"),
        "{}",
        j.message
    );
}

#[test]
fn a_review_that_fails_to_run_keeps_the_phase() {
    let config = gated(&[], true);
    let mut s = state(Phase::Planned);
    let (mut m, _) = implement_to_review(&config, &mut s);
    let Action::Finish(j) = m.advance(
        &mut s,
        turn(outcome(TurnStatus::ProviderError, ""), &[]),
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(
        (j.verdict, j.phase),
        (Verdict::ProviderError, Phase::Implementing)
    );
    // The next implement reviews again.
    let actions = step_with(&config, IMPLEMENT, &mut s, vec![git("c1", &["c1"], &[])]);
    assert_eq!(actions.last(), Some(&Action::Diff));
}

#[test]
fn without_rescopes_the_cap_ends_the_phase_as_before() {
    let mut s = state(Phase::Implementing);
    s.run.nudges = 2;
    let actions = drive(
        nudge(None),
        &mut s,
        vec![
            git("h0", &[], &["a"]),
            git("h0", &[], &["a"]),
            ok("still working"),
            git("h0", &[], &["a"]),
        ],
    );
    let j = judged(&actions);
    assert_eq!(
        (j.verdict, j.phase),
        (Verdict::OutOfNudges, Phase::OutOfNudges)
    );
    assert_eq!(sent(&actions).len(), 1);
}

#[test]
fn a_rescope_after_the_cap_plans_again_and_implementing_starts_over() {
    let config = WorkerConfig {
        rescopes: 1,
        ..config()
    };
    let mut s = state(Phase::Implementing);
    s.run.nudges = 2;
    s.remember("implement: not committed yet: 1 changed file(s): a".into());
    let actions = step_with(
        &config,
        nudge(None),
        &mut s,
        vec![
            git("h0", &[], &["a"]),
            git("h0", &[], &["a"]),
            ok("still working"),
            git("h0", &[], &["a"]),
        ],
    );
    let turns = sent(&actions);
    assert_eq!(turns.len(), 2, "the nudge, then the rescope");
    assert_eq!(turns[1].0, TurnKind::Plan);
    let rescope = &turns[1].1;
    assert!(
        rescope.contains("add a --version flag") && rescope.contains("1. add it"),
        "{rescope}"
    );
    assert!(
        rescope.contains("implement: not committed yet"),
        "what was tried: {rescope}"
    );
    assert!(
        rescope.contains("still not committed after 3 nudge(s)"),
        "{rescope}"
    );
    assert_eq!(actions.len(), 5, "{actions:?}");
    let mut m = StepMachine::new(nudge(None), config.clone(), None);
    let mut s = state(Phase::Implementing);
    s.run.nudges = 3;
    m.advance(&mut s, Seen::Start, NOW);
    let Action::Send { kind, .. } = m.advance(&mut s, git("h0", &[], &["a"]), NOW) else {
        panic!("a refused nudge at the cap rescopes too")
    };
    assert_eq!(kind, TurnKind::Plan);
    let Action::Finish(j) = m.advance(&mut s, ok("1. do it differently"), NOW) else {
        panic!()
    };
    assert_eq!(
        (j.verdict, j.phase, j.exit_code),
        (Verdict::Rescoped, Phase::Planned, 0)
    );
    assert!(matches!(
        &m.take_notes()[..],
        [Note::Rescoped {
            number: 1,
            of: 1,
            ..
        }]
    ));
    assert_eq!(s.task.plan.as_deref(), Some("1. do it differently"));
    assert_eq!(s.task.earlier_plans, ["1. add it"]);
    assert_eq!(loop_next(&j), LoopNext::Implement);
    // The next implement sends the implementation again, with fresh nudges.
    let actions = step_with(&config, IMPLEMENT, &mut s, vec![git("h0", &[], &["a"])]);
    let turns = sent(&actions);
    assert_eq!(turns[0].0, TurnKind::Implement);
    assert!(turns[0].1.contains("Implement the plan you made above"));
    assert_eq!((s.run.nudges, s.task.rescopes), (0, 1));
    // Rescopes used up: the cap ends the phase.
    s.run.nudges = 3;
    s.run.implement_sent = true;
    let actions = step_with(&config, IMPLEMENT, &mut s, vec![git("h0", &[], &["a"])]);
    assert_eq!(judged(&actions).verdict, Verdict::OutOfNudges);
    assert!(matches!(
        loop_start(&s, None, false, &config),
        Some(LoopNext::Finish(10, _))
    ));
}

#[test]
fn a_loop_out_of_nudges_with_rescopes_left_nudges_to_rescope() {
    let config = WorkerConfig {
        rescopes: 2,
        ..config()
    };
    let s = with_task(Phase::OutOfNudges, Some("t"));
    assert_eq!(loop_start(&s, None, false, &config), Some(LoopNext::Nudge));
    assert!(matches!(
        loop_start(&s, None, false, &self::config()),
        Some(LoopNext::Finish(10, _))
    ));
}

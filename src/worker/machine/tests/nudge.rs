//! Nudges: whether one is needed, the pause, what it says, and a person's answers.

use super::*;

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

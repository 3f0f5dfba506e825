//! A plan: the task in, the plan out, or the agent blocked.

use super::*;

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

#[test]
fn a_plan_of_the_task_under_way_that_was_planned_meanwhile_sends_no_second_plan() {
    let mut s = state(Phase::Planned);
    s.task.id = Some("t1".into());
    let mut machine = StepMachine::new(PLAN(), config(), Some("t1".into()));
    let action = machine.advance(&mut s, Seen::Start, NOW);
    let Action::Finish(j) = action else {
        panic!("{action:?}");
    };
    assert_eq!((j.verdict, j.exit_code), (Verdict::NothingToDo, 0));
    assert_eq!(s.phase, Phase::Planned, "the plan stands");
    // Still planning (its daemon died during the plan): the plan goes on, as before.
    let mut s = state(Phase::Planning);
    s.task.id = Some("t1".into());
    s.task.plan = None;
    let actions = drive(PLAN(), &mut s, vec![ok("1. do it")]);
    assert_eq!(judged(&actions).verdict, Verdict::Planned);
}

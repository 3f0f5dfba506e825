//! A step whose daemon died during its turn: the turn is saved as in flight before it
//! goes out, and the step that finds it goes on from it (claude told to continue)
//! instead of sending its prompt twice.

use super::*;
use crate::worker::InFlight;

/// The in-flight marker after each action of a step.
fn markers(
    step: WorkerStep,
    state: &mut WorkerState,
    seen: Vec<Seen>,
) -> Vec<(Action, Option<InFlight>)> {
    let mut machine = StepMachine::new(step, config(), None);
    let mut out = vec![(machine.advance(state, Seen::Start, NOW), state.in_flight)];
    for seen in seen {
        out.push((machine.advance(state, seen, NOW), state.in_flight));
    }
    out
}

#[test]
fn a_work_turn_is_in_flight_from_its_sending_to_its_end() {
    let mut s = state(Phase::Idle);
    let plan = markers(PLAN(), &mut s, vec![ok("1. do it")]);
    assert_eq!(plan[0].1, Some(InFlight::Plan), "{plan:?}");
    assert_eq!(plan[1].1, None, "ended: {plan:?}");

    let mut s = state(Phase::Planned);
    s.run.implement_sent = false;
    let implement = markers(
        IMPLEMENT,
        &mut s,
        vec![git("h0", &[], &[]), ok_made("done", &["c1"])],
    );
    assert_eq!(implement[0].1, None, "looking at git: {implement:?}");
    assert_eq!(implement[1].1, Some(InFlight::Implement));
    assert_eq!(implement[2].1, None, "judging: {implement:?}");

    let mut s = state(Phase::Implementing);
    s.run.nudges = 1;
    let nudged = markers(
        nudge(Some("tests fail")),
        &mut s,
        vec![git("h0", &[], &["a.rs"]), git("h0", &[], &["a.rs"])],
    );
    let sends: Vec<_> = nudged
        .iter()
        .filter(|(a, _)| matches!(a, Action::Send { .. }))
        .map(|(_, m)| *m)
        .collect();
    assert_eq!(
        sends,
        [Some(InFlight::Nudge { number: Some(2) })],
        "{nudged:?}"
    );
    for (action, marker) in &nudged {
        if !matches!(action, Action::Send { .. }) {
            assert_eq!(*marker, None, "only while the turn is out: {action:?}");
        }
    }
}

#[test]
fn a_compaction_or_a_review_is_not_saved_as_in_flight() {
    let mut s = state(Phase::Idle);
    let mut machine = StepMachine::new(PLAN(), config(), None).with_context(Some(90));
    let action = machine.advance(&mut s, Seen::Start, NOW);
    assert!(matches!(action, Action::Compact { .. }), "{action:?}");
    assert_eq!(s.in_flight, None);
    let action = machine.advance(
        &mut s,
        Seen::Compacted(outcome(TurnStatus::Success, "")),
        NOW,
    );
    assert!(matches!(action, Action::Send { .. }), "{action:?}");
    assert_eq!(s.in_flight, Some(InFlight::Plan), "the plan turn itself is");
}

/// What a step does when it finds `in_flight` left by a dead daemon.
#[test]
fn a_step_goes_on_from_its_own_turn_and_leaves_anyone_elses() {
    type Case = (Phase, InFlight, WorkerStep, Option<TurnKind>);
    let other_task = plan_of("something else", false);
    let cases: Vec<Case> = vec![
        (
            Phase::Planning,
            InFlight::Plan,
            PLAN(),
            Some(TurnKind::Plan),
        ),
        (
            Phase::Planning,
            InFlight::Replan,
            PLAN(),
            Some(TurnKind::Plan),
        ),
        (
            Phase::Planning,
            InFlight::Replan,
            nudge(Some("use the old API")),
            Some(TurnKind::Plan),
        ),
        (
            Phase::Implementing,
            InFlight::Implement,
            IMPLEMENT,
            Some(TurnKind::Implement),
        ),
        (
            Phase::Implementing,
            InFlight::Nudge { number: Some(2) },
            nudge(None),
            Some(TurnKind::Nudge),
        ),
        (
            Phase::Implementing,
            InFlight::Nudge { number: None },
            nudge(Some("an answer")),
            Some(TurnKind::Nudge),
        ),
        // A `--fresh` plan sent again after its daemon died: the same task, not twice.
        (
            Phase::Planning,
            InFlight::Plan,
            plan_of("add a --version flag", true),
            Some(TurnKind::Plan),
        ),
        // Steps that are not the one in flight begin as they would.
        (Phase::Planning, InFlight::Plan, other_task, None),
        (
            Phase::Implementing,
            InFlight::Implement,
            WorkerStep::Implement { restart: true },
            None,
        ),
        (
            Phase::Implementing,
            InFlight::Nudge { number: Some(2) },
            IMPLEMENT,
            None,
        ),
        (Phase::Implementing, InFlight::Implement, nudge(None), None),
    ];
    for (phase, in_flight, step, resumes) in cases {
        let mut s = state(phase);
        s.run.implement_sent = in_flight != InFlight::Implement;
        s.in_flight = Some(in_flight);
        let mut machine = StepMachine::new(step.clone(), config(), None);
        let first = machine.advance(&mut s, Seen::Start, NOW);
        let what = format!("{in_flight:?} then {step:?}: {first:?}");
        match resumes {
            Some(kind) => {
                let Action::Send {
                    kind: sent,
                    prompt,
                    resumed,
                    ..
                } = &first
                else {
                    panic!("{what}");
                };
                assert_eq!((*sent, *resumed), (kind, true), "{what}");
                assert!(
                    prompt.starts_with(CONTINUE_AFTER_RESTART),
                    "not sent twice: {what}"
                );
                assert_eq!(
                    s.in_flight.map(InFlight::kind),
                    Some(kind),
                    "still out: {what}"
                );
                let notes = machine.take_notes();
                assert!(
                    notes
                        .iter()
                        .any(|n| matches!(n, Note::Info(t) if t.contains("daemon died"))),
                    "{what}: {notes:?}"
                );
            }
            None => {
                let continued = matches!(&first, Action::Send { prompt, .. } if prompt == CONTINUE_AFTER_RESTART);
                assert!(!continued, "{what}");
                assert!(
                    !matches!(first, Action::Send { resumed: true, .. }),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn a_resumed_turn_ends_as_the_step_it_belongs_to() {
    // Implementing: the worker's commit during the continued turn makes it done.
    let mut s = state(Phase::Implementing);
    s.run.implement_sent = false;
    s.in_flight = Some(InFlight::Implement);
    let actions = drive(
        IMPLEMENT,
        &mut s,
        vec![ok_made("done", &["c1"]), git("c1", &["c1"], &[])],
    );
    let j = judged(&actions);
    assert_eq!((j.verdict, j.phase), (Verdict::Committed, Phase::Done));
    assert!(s.run.implement_sent);
    assert_eq!(s.in_flight, None);

    // A nudge spends its number once, when its (continued) turn ends; no pause first.
    let mut s = state(Phase::Implementing);
    s.run.nudges = 1;
    s.run.last_nudge_ms = Some(NOW);
    s.in_flight = Some(InFlight::Nudge { number: Some(2) });
    let actions = drive(
        nudge(None),
        &mut s,
        vec![ok("still going"), git("h0", &[], &["a.rs"])],
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Pause { .. })),
        "{actions:?}"
    );
    let j = judged(&actions);
    assert_eq!((j.verdict, j.exit_code), (Verdict::Uncommitted, 0));
    assert_eq!(s.run.nudges, 2);

    // Planning: the continued turn's answer is the plan.
    let mut s = state(Phase::Planning);
    s.in_flight = Some(InFlight::Plan);
    let actions = drive(PLAN(), &mut s, vec![ok("1. the plan")]);
    assert_eq!(judged(&actions).verdict, Verdict::Planned);
    assert_eq!(s.task.plan.as_deref(), Some("1. the plan"));
}

#[test]
fn a_loop_restarted_after_its_daemon_died_in_a_nudge_nudges_on() {
    let mut s = with_task(Phase::Implementing, Some("t"));
    assert_eq!(
        loop_start(&s, None, false, &config()),
        Some(LoopNext::Implement)
    );
    s.in_flight = Some(InFlight::Nudge { number: Some(1) });
    assert_eq!(
        loop_start(&s, None, false, &config()),
        Some(LoopNext::Nudge)
    );
    s.in_flight = Some(InFlight::Implement);
    assert_eq!(
        loop_start(&s, None, false, &config()),
        Some(LoopNext::Implement)
    );
}

#[test]
fn the_marker_is_kept_on_disk_only_while_a_turn_is_out() {
    let mut s = state(Phase::Implementing);
    let quiet = serde_json::to_value(&s).unwrap();
    assert!(quiet.get("in_flight").is_none(), "{quiet}");
    s.in_flight = Some(InFlight::Nudge { number: Some(3) });
    let saved = serde_json::to_value(&s).unwrap();
    assert_eq!(
        saved["in_flight"],
        serde_json::json!({"turn": "nudge", "number": 3})
    );
    let back: WorkerState = serde_json::from_value(saved).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_nudge_sent_again_keeps_what_its_person_said() {
    let mut s = state(Phase::Implementing);
    s.in_flight = Some(InFlight::Nudge { number: Some(1) });
    let actions = drive(nudge(Some("use the old API")), &mut s, vec![]);
    let sent = sent(&actions);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with(CONTINUE_AFTER_RESTART), "{sent:?}");
    assert!(sent[0].1.ends_with("Also: use the old API"), "{sent:?}");
}

#[test]
fn a_turn_cut_off_stays_in_flight_and_the_next_step_continues_it() {
    for status in [
        TurnStatus::Interrupted,
        TurnStatus::Crashed,
        TurnStatus::Hung,
    ] {
        let mut s = state(Phase::Planned);
        s.run.implement_sent = false;
        let actions = drive(
            IMPLEMENT,
            &mut s,
            vec![git("h0", &[], &[]), turn(outcome(status, ""), &[])],
        );
        assert_eq!(judged(&actions).phase, Phase::Implementing, "{status:?}");
        assert_eq!(s.in_flight, Some(InFlight::Implement), "{status:?}: kept");
        let again = drive(IMPLEMENT, &mut s, vec![]);
        let sent = sent(&again);
        assert_eq!(sent.len(), 1, "{status:?}: {again:?}");
        assert!(sent[0].1.starts_with(CONTINUE_AFTER_RESTART), "{status:?}");
    }
    // A turn that ended with an answer, even an error, is over.
    for status in [
        TurnStatus::Error,
        TurnStatus::ProviderError,
        TurnStatus::Success,
    ] {
        let mut s = state(Phase::Planned);
        s.run.implement_sent = false;
        drive(
            IMPLEMENT,
            &mut s,
            vec![git("h0", &[], &[]), turn(outcome(status, "done"), &[])],
        );
        assert_eq!(s.in_flight, None, "{status:?}");
    }
}

#[test]
fn the_prompt_in_flight_is_kept_and_a_step_going_on_from_it_carries_it() {
    let mut s = state(Phase::Planned);
    s.run.implement_sent = false;
    let first = markers(
        IMPLEMENT,
        &mut s,
        vec![
            git("h0", &[], &[]),
            turn(outcome(TurnStatus::Crashed, ""), &[]),
        ],
    );
    let Action::Send { prompt, .. } = &first[1].0 else {
        panic!("{first:?}");
    };
    let original = prompt.clone();
    assert!(original.starts_with("Implement"), "{original}");
    assert_eq!(
        s.in_flight_prompt.as_deref(),
        Some(original.as_str()),
        "kept while cut off"
    );

    let again = drive(IMPLEMENT, &mut s, vec![]);
    let Some(Action::Send {
        prompt,
        cut_off_prompt,
        resumed,
        ..
    }) = again.first()
    else {
        panic!("{again:?}");
    };
    assert!(prompt.starts_with(CONTINUE_AFTER_RESTART), "{prompt}");
    assert_eq!(cut_off_prompt.as_deref(), Some(original.as_str()));
    assert!(resumed);
    assert_eq!(
        s.in_flight_prompt.as_deref(),
        Some(original.as_str()),
        "the cut-off turn's prompt, not the words that continue it"
    );

    let ended = drive(IMPLEMENT, &mut s, vec![ok_made("done", &["c1"])]);
    assert!(matches!(ended.last(), Some(Action::Look)), "{ended:?}");
}

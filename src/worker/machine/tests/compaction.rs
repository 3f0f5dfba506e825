//! Compaction at phase boundaries.

use super::*;

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

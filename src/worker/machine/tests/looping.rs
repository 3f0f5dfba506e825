//! The loop: where it starts and what follows each judgement.

use super::*;

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

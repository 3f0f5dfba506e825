//! Implementing: the prompt sent once, the work judged from git.

use super::*;
use crate::worker::prompts::CONTINUE_AFTER_RESTART;

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
fn a_failed_implementation_turn_is_sent_again_or_continued_in_the_same_phase() {
    // (how the turn ended, its verdict and exit code, whether the next implement
    // continues it (it was cut off) rather than sending the prompt again)
    for (status, verdict, code, continued) in [
        (TurnStatus::ProviderError, Verdict::ProviderError, 5, false),
        (TurnStatus::Crashed, Verdict::TurnFailed, 6, true),
        (TurnStatus::Interrupted, Verdict::Interrupted, 130, true),
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
        s.run.foreign_commits.clear();
        let again = if continued {
            drive(IMPLEMENT, &mut s, vec![])
        } else {
            drive(IMPLEMENT, &mut s, vec![git("f1", &["f1"], &[])])
        };
        let sent = sent(&again);
        assert_eq!(sent.len(), 1, "{status:?}: {again:?}");
        assert_eq!(
            sent[0].1.starts_with(CONTINUE_AFTER_RESTART),
            continued,
            "{status:?}"
        );
        assert_eq!(s.run.head_at_start.as_deref(), Some("h0"), "same phase");
        if !continued {
            assert_eq!(
                s.run.foreign_commits.len(),
                1,
                "someone else's commit is remembered"
            );
        }
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

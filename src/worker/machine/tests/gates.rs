//! Checks, review and rescope.

use super::*;

fn gated(checks: &[&str], review: bool) -> WorkerConfig {
    let config = config();
    WorkerConfig {
        gates: GateConfig {
            checks: checks.iter().map(|c| c.to_string()).collect(),
            review,
            ..config.gates
        },
        ..config
    }
}

fn with_rescopes(rescopes: u32) -> WorkerConfig {
    let config = config();
    WorkerConfig {
        gates: GateConfig {
            rescopes,
            ..config.gates.clone()
        },
        ..config
    }
}

fn check(command: &str, exit_code: i32, output: &str) -> CheckResult {
    CheckResult {
        command: command.to_string(),
        exit_code: Some(exit_code),
        timed_out: false,
        duration_ms: 5,
        output_tail: output.to_string(),
        disturbed: None,
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
    let gated = gated(&[], true);
    let config = WorkerConfig {
        gates: GateConfig {
            max_reviews: 1,
            ..gated.gates.clone()
        },
        ..gated
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
    let config = with_rescopes(1);
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
    // That turn ended; the rescopes are used up: the cap ends the phase.
    s.in_flight = None;
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
    let config = with_rescopes(2);
    let s = with_task(Phase::OutOfNudges, Some("t"));
    assert_eq!(loop_start(&s, None, false, &config), Some(LoopNext::Nudge));
    assert!(matches!(
        loop_start(&s, None, false, &self::config()),
        Some(LoopNext::Finish(10, _))
    ));
}

fn on_branch(seen: Seen, branch: Option<&str>) -> Seen {
    match seen {
        Seen::Git(view) => Seen::Git(GitView {
            branch: branch.map(str::to_string),
            ..view
        }),
        other => other,
    }
}

#[test]
fn work_committed_off_the_worker_s_branch_is_not_done_until_it_is_on_it() {
    let config = WorkerConfig {
        gates: GateConfig {
            branch: Some("leash/w".into()),
            ..config().gates
        },
        ..config()
    };
    for elsewhere in [Some("feature/a"), None] {
        let mut s = state(Phase::Planned);
        let mut m = StepMachine::new(IMPLEMENT, config.clone(), None);
        m.advance(&mut s, Seen::Start, NOW);
        m.advance(&mut s, on_branch(git("h0", &[], &[]), Some("leash/w")), NOW);
        m.advance(
            &mut s,
            turn(outcome(TurnStatus::Success, "done"), &["c1"]),
            NOW,
        );
        let a = m.advance(&mut s, on_branch(git("c1", &["c1"], &[]), elsewhere), NOW);
        let Action::Finish(j) = a else {
            panic!("{a:?}")
        };
        assert_eq!(
            (j.verdict, j.phase, j.exit_code),
            (Verdict::ChecksFailed, Phase::Implementing, 12),
            "{elsewhere:?}"
        );
        assert!(j.message.contains("not on leash/w"), "{}", j.message);
        let feedback = s.run.gates.feedback.clone().unwrap();
        assert!(feedback.contains("git checkout leash/w"), "{feedback}");
        // Once the commits are on the worker's branch, the work is done.
        let actions = step_with(
            &config,
            IMPLEMENT,
            &mut s,
            vec![on_branch(git("c1", &["c1"], &[]), Some("leash/w"))],
        );
        let Some(Action::Finish(j)) = actions.last() else {
            panic!("{actions:?}")
        };
        assert_eq!((j.verdict, j.phase), (Verdict::Committed, Phase::Done));
    }
}

//! A landing step: a branch handed back (landing turns judged by the landing gate, given
//! up with its branch restored), a landing given up by `land`, the landed work taken in.

use super::*;
use crate::landing_git::{Adoption, InProgress, Kept, LandView, Leftovers, Restored};
use crate::worker::checks::CheckResult;
use crate::worker::land::{LandOrder, LandTrouble};
use crate::worker::prompts::Hitch;
use crate::worker::{Checked, InFlight};

const BRANCH: &str = "leash/w";
/// Commits: the target's tip land saw, the target it moved to, the worker's commit
/// rebased, the worker's commit, one the branch is not at.
const T1: &str = "1111111111111111111111111111111111111111";
const T2: &str = "2222222222222222222222222222222222222222";
const R1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const C1: &str = "cccccccccccccccccccccccccccccccccccccccc";
const C0: &str = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c";

fn land_config() -> WorkerConfig {
    let mut config = config();
    config.gates.branch = Some(BRANCH.to_string());
    config
}

fn resolve(trouble: LandTrouble) -> WorkerStep {
    WorkerStep::Land {
        order: LandOrder::Resolve {
            target: "main".into(),
            target_tip: T1.into(),
            trouble,
            landed_since: vec![
                "person: a fix".into(),
                "other worker: \u{1b}[2Jits task".into(),
            ],
        },
    }
}

fn conflict() -> WorkerStep {
    resolve(LandTrouble::Conflict {
        files: vec!["shared.txt".into()],
    })
}

fn adopt(expected: &str) -> WorkerStep {
    WorkerStep::Land {
        order: LandOrder::Adopt {
            target: "main".into(),
            landed: T2.into(),
            branch_tip: R1.into(),
            expected_tip: expected.into(),
        },
    }
}

/// A done task whose checks were `make test`, as `land` finds it.
fn done() -> WorkerState {
    let mut s = state(Phase::Done);
    s.task.id = Some("task-1".into());
    s.run.own_commits = vec![C1.into()];
    s.run.last_seen_head = Some(C1.into());
    s.last = Some(judgement(
        &s,
        Step::Implement,
        Verdict::Committed,
        "committed".into(),
    ));
    s
}

fn checked(mut s: WorkerState) -> WorkerState {
    s.run.gates.checked = Some(Checked {
        head: Some(C1.into()),
        commands: vec!["make test".into()],
    });
    s
}

fn view(descends: bool) -> LandView {
    LandView {
        branch_tip: Some("b1".into()),
        on_branch: true,
        descends,
        ..LandView::default()
    }
}

fn looked(view: LandView) -> Seen {
    Seen::Land(LandSeen::Looked(view))
}

fn kept() -> Seen {
    Seen::Land(LandSeen::Kept(Kept::default()))
}

fn check(exit: i32, output: &str) -> CheckResult {
    CheckResult {
        command: "make test".into(),
        exit_code: Some(exit),
        timed_out: false,
        duration_ms: 5,
        output_tail: output.into(),
        disturbed: None,
    }
}

fn costing(seen: Seen, usd: f64) -> Seen {
    match seen {
        Seen::Turn {
            mut outcome,
            made,
            foreign,
            head,
        } => {
            outcome.cost_usd = Some(usd);
            Seen::Turn {
                outcome,
                made,
                foreign,
                head,
            }
        }
        other => other,
    }
}

fn restored(leftovers: Option<&str>) -> Seen {
    Seen::Land(LandSeen::Restored(Restored {
        aborted: None,
        reset: true,
        leftovers: leftovers.map(|commit| Leftovers {
            reference: "refs/leash/land-leftovers/w".into(),
            commit: commit.into(),
        }),
    }))
}

/// Drives a landing step with the landing config; every action and the in-flight
/// marker after it, and the notes.
fn land(
    step: WorkerStep,
    state: &mut WorkerState,
    seen: Vec<Seen>,
) -> (Vec<(Action, Option<InFlight>)>, Vec<Note>) {
    let mut machine = StepMachine::new(step, land_config(), None);
    let mut out = vec![(machine.advance(state, Seen::Start, NOW), state.in_flight)];
    let mut notes = machine.take_notes();
    for seen in seen {
        assert!(
            !matches!(out.last(), Some((Action::Finish(_), _))),
            "fed {seen:?} after the step finished: {out:?}"
        );
        out.push((machine.advance(state, seen, NOW), state.in_flight));
        notes.extend(machine.take_notes());
    }
    (out, notes)
}

fn actions(out: &[(Action, Option<InFlight>)]) -> Vec<Action> {
    out.iter().map(|(a, _)| a.clone()).collect()
}

#[test]
fn the_gate_passes_only_a_clean_branch_on_the_target_whose_checks_pass() {
    let passing = [check(0, "ok")];
    let failing = [check(0, "ok"), check(2, "boom")];
    let results: [Option<&[CheckResult]>; 4] = [None, Some(&[]), Some(&passing), Some(&failing)];
    let progress = [
        None,
        Some(InProgress::Rebase),
        Some(InProgress::Merge),
        Some(InProgress::CherryPick),
    ];
    let mut cases = 0;
    for in_progress in progress {
        for on_branch in [false, true] {
            for descends in [false, true] {
                for clean in [false, true] {
                    for has_checks in [false, true] {
                        for checks in results {
                            cases += 1;
                            let view = LandView {
                                branch_tip: Some("b".into()),
                                on_branch,
                                descends,
                                in_progress,
                                changes: match clean {
                                    true => Vec::new(),
                                    false => vec![change("x")],
                                },
                                conflicted: vec!["c".into()],
                            };
                            let gate = landing_gate(&view, has_checks, checks);
                            let git_ok = in_progress.is_none() && on_branch && descends && clean;
                            let checks_ok = !has_checks
                                || checks.is_some_and(|c| c.iter().all(CheckResult::passed));
                            let case = format!(
                                "{in_progress:?} on_branch={on_branch} descends={descends} clean={clean} has_checks={has_checks} {checks:?}: {gate:?}"
                            );
                            assert_eq!(gate == Gate::Pass, git_ok && checks_ok, "{case}");
                            assert_eq!(
                                gate == Gate::Check,
                                git_ok && has_checks && checks.is_none(),
                                "{case}"
                            );
                            // What fails is told by the first rule broken, git before checks.
                            let expected = match () {
                                () if in_progress.is_some() => Some("InProgress"),
                                () if !on_branch => Some("OffBranch"),
                                () if !descends => Some("NotOnTarget"),
                                () if !clean => Some("Dirty"),
                                () if has_checks && checks.is_some() && !checks_ok => {
                                    Some("CheckFailed")
                                }
                                () => None,
                            };
                            match (&gate, expected) {
                                (Gate::Fail(hitch), Some(name)) => {
                                    assert!(format!("{hitch:?}").starts_with(name), "{case}")
                                }
                                (Gate::Fail(_), None) => panic!("failed: {case}"),
                                (_, Some(_)) => panic!("did not fail: {case}"),
                                _ => {}
                            }
                            if let Gate::Fail(Hitch::CheckFailed(failed)) = &gate {
                                assert_eq!(failed.output_tail, "boom", "the failing one: {case}");
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 2 * 2 * 2 * 2 * 4);
}

#[test]
fn a_conflict_goes_back_to_the_worker_until_its_branch_lands_on_the_target() {
    let mut s = done();
    let before = s.last.clone();
    let (out, _) = land(
        conflict(),
        &mut s,
        vec![
            kept(),
            looked(view(false)),
            costing(ok("rebased and resolved"), 0.25),
            looked(view(true)),
        ],
    );
    let acts = actions(&out);
    assert_eq!(
        acts[0],
        Action::Land(LandGit::Keep {
            branch: BRANCH.into()
        })
    );
    assert_eq!(
        acts[1],
        Action::Land(LandGit::Look {
            branch: BRANCH.into(),
            target_tip: T1.into()
        })
    );
    let turns = sent(&acts);
    assert_eq!(turns.len(), 1, "{acts:?}");
    let (kind, prompt) = &turns[0];
    assert_eq!(*kind, TurnKind::Land);
    for needle in [
        "shared.txt",
        "person: a fix",
        "leash/w",
        "`git rebase main`",
        "Do not push",
        "landing turn 1 of 3",
    ] {
        assert!(prompt.contains(needle), "{needle} in {prompt}");
    }
    assert!(!prompt.contains('\u{1b}'), "subjects are escaped: {prompt}");
    assert_eq!(out[2].1, Some(InFlight::Land { number: 1 }), "{out:?}");
    let j = judged(&acts);
    assert_eq!(j.verdict, Verdict::Landable, "{j:?}");
    assert_eq!(j.exit_code, 0);
    assert!(j.message.contains("after 1 landing turn"), "{}", j.message);
    assert_eq!(s.in_flight, None);
    assert_eq!(s.phase, Phase::Done, "the task stays done");
    assert_eq!(
        s.task.cost.land_usd, 0.25,
        "landing turns cost into land_usd"
    );
    assert_eq!(s.last, before, "the task's own verdict stays");
}

#[test]
fn a_branch_already_on_the_target_is_landable_once_its_checks_pass_without_a_turn() {
    let mut s = checked(done());
    let (out, notes) = land(
        conflict(),
        &mut s,
        vec![
            kept(),
            looked(view(true)),
            Seen::Checked(vec![check(0, "ok")]),
        ],
    );
    let acts = actions(&out);
    assert_eq!(
        acts[2],
        Action::RunChecks {
            commands: vec!["make test".into()],
            timeout_ms: 60_000
        }
    );
    assert!(sent(&acts).is_empty());
    assert_eq!(judged(&acts).verdict, Verdict::Landable);
    assert!(
        notes.iter().any(|n| matches!(n, Note::ChecksRan(_))),
        "{notes:?}"
    );
}

#[test]
fn a_check_failing_after_the_rebase_is_handed_back_with_its_output_then_fixed() {
    let mut s = checked(done());
    let trouble = LandTrouble::ChecksFailed {
        checks: vec![check(1, "test shared::works ... FAILED")],
    };
    let (out, _) = land(
        resolve(trouble),
        &mut s,
        vec![
            kept(),
            looked(view(false)),
            ok("rebased"),
            looked(view(true)),
            Seen::Checked(vec![check(101, "assertion failed: left == right")]),
            Seen::Waited,
            ok("fixed"),
            looked(view(true)),
            Seen::Checked(vec![check(0, "ok")]),
        ],
    );
    let acts = actions(&out);
    let turns = sent(&acts);
    assert_eq!(turns.len(), 2, "{acts:?}");
    assert!(
        turns[0].1.contains("shared::works ... FAILED"),
        "{}",
        turns[0].1
    );
    assert!(
        turns[1].1.contains("assertion failed: left == right")
            && turns[1].1.contains("landing turn 2 of 3"),
        "{}",
        turns[1].1
    );
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Pause { why, .. } if why.contains("landing turn 2"))),
        "the backoff before the second: {acts:?}"
    );
    assert_eq!(judged(&acts).verdict, Verdict::Landable);
}

#[test]
fn a_worker_that_never_resolves_gets_its_branch_back_and_the_landing_is_not_made() {
    let mut s = done();
    // The pause comes after the look: the waits go between the turns.
    let seen: Vec<Seen> = vec![
        kept(),
        looked(view(false)),
        ok("tried"),
        looked(view(false)),
        Seen::Waited,
        ok("tried"),
        looked(view(false)),
        Seen::Waited,
        ok("tried"),
        looked(LandView {
            in_progress: Some(InProgress::Rebase),
            conflicted: vec!["shared.txt".into()],
            ..view(false)
        }),
        restored(Some("l1")),
    ];
    let (out, _) = land(conflict(), &mut s, seen);
    let acts = actions(&out);
    assert_eq!(sent(&acts).len(), 3, "capped by max_nudges: {acts:?}");
    assert!(
        sent(&acts)[1].1.contains("does not contain `main`'s tip"),
        "{}",
        sent(&acts)[1].1
    );
    assert_eq!(
        acts[acts.len() - 2],
        Action::Land(LandGit::Restore {
            branch: BRANCH.into()
        })
    );
    let j = judged(&acts);
    assert_eq!((j.verdict, j.exit_code), (Verdict::NotLanded, 16), "{j:?}");
    for needle in [
        "after 3 landing turn(s)",
        "rebase is still under way",
        "refs/leash/land-leftovers/w",
        "back as they were",
    ] {
        assert!(j.message.contains(needle), "{needle} in {}", j.message);
    }
    assert_eq!(s.in_flight, None);
}

#[test]
fn a_spent_budget_sends_no_landing_turn_and_gives_the_landing_up() {
    let mut s = done();
    let mut machine = StepMachine::new(
        conflict(),
        WorkerConfig {
            task_budget_usd: Some(1.0),
            ..land_config()
        },
        None,
    );
    let mut acts = vec![machine.advance(&mut s, Seen::Start, NOW)];
    for seen in [
        kept(),
        looked(view(false)),
        costing(ok("tried"), 1.5),
        looked(view(false)),
        restored(None),
    ] {
        acts.push(machine.advance(&mut s, seen, NOW));
    }
    assert_eq!(sent(&acts).len(), 1);
    assert!(
        matches!(acts[4], Action::Land(LandGit::Restore { .. })),
        "{acts:?}"
    );
    let j = judged(&acts);
    assert_eq!(
        (j.verdict, j.exit_code),
        (Verdict::BudgetExhausted, 13),
        "{j:?}"
    );
}

#[test]
fn an_agent_that_says_it_cannot_land_it_is_given_up_at_once() {
    let mut s = done();
    let (out, _) = land(
        conflict(),
        &mut s,
        vec![
            kept(),
            looked(view(false)),
            ok("LEASH-BLOCKED: the two changes contradict each other"),
            restored(None),
        ],
    );
    let j = judged(&actions(&out)).clone();
    assert_eq!(j.verdict, Verdict::NotLanded);
    assert!(j.message.contains("contradict"), "{}", j.message);
}

#[test]
fn a_landing_turn_that_failed_ends_the_step_and_one_cut_off_stays_in_flight() {
    for (status, verdict, in_flight) in [
        (TurnStatus::ProviderError, Verdict::ProviderError, None),
        (
            TurnStatus::Crashed,
            Verdict::TurnFailed,
            Some(InFlight::Land { number: 1 }),
        ),
    ] {
        let mut s = done();
        let seen = vec![kept(), looked(view(false)), turn(outcome(status, ""), &[])];
        let (out, _) = land(conflict(), &mut s, seen);
        assert_eq!(judged(&actions(&out)).verdict, verdict, "{status:?}");
        assert_eq!(s.in_flight, in_flight, "{status:?}");
        if in_flight.is_some() {
            let prompt = s.in_flight_prompt.as_deref().unwrap_or_default();
            assert!(prompt.contains("shared.txt"), "{prompt}");
        }
    }
}

#[test]
fn a_landing_turn_a_dead_daemon_cut_off_is_continued_not_sent_again() {
    let mut s = done();
    s.in_flight = Some(InFlight::Land { number: 2 });
    s.in_flight_prompt = Some("the landing prompt".into());
    let (out, notes) = land(conflict(), &mut s, vec![ok("resolved"), looked(view(true))]);
    let acts = actions(&out);
    match &acts[0] {
        Action::Send {
            kind,
            prompt,
            resumed,
            cut_off_prompt,
            ..
        } => {
            assert_eq!(*kind, TurnKind::Land);
            assert!(*resumed);
            assert!(prompt.starts_with("Your last step was cut off"), "{prompt}");
            assert_eq!(cut_off_prompt.as_deref(), Some("the landing prompt"));
        }
        other => panic!("not continued: {other:?}"),
    }
    assert_eq!(out[0].1, Some(InFlight::Land { number: 2 }));
    assert_eq!(sent(&acts).len(), 1, "no second landing prompt: {acts:?}");
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Land(LandGit::Keep { .. }))),
        "the rebase under way is the cut-off turn's: not aborted"
    );
    assert_eq!(judged(&acts).verdict, Verdict::Landable);
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, Note::Info(t) if t.contains("land turn"))),
        "{notes:?}"
    );
}

#[test]
fn a_landing_given_up_by_land_restores_the_branch() {
    let mut s = done();
    s.in_flight = Some(InFlight::Land { number: 1 });
    let (out, _) = land(
        WorkerStep::Land {
            order: LandOrder::Restore,
        },
        &mut s,
        vec![restored(None)],
    );
    let acts = actions(&out);
    assert_eq!(
        acts[0],
        Action::Land(LandGit::Restore {
            branch: BRANCH.into()
        })
    );
    let j = judged(&acts);
    assert_eq!((j.verdict, j.exit_code), (Verdict::NotLanded, 16));
    assert_eq!(s.in_flight, None, "the cut-off landing turn is over");
}

#[test]
fn only_a_worktree_worker_lands() {
    let mut s = done();
    let acts = drive(conflict(), &mut s, Vec::new());
    let j = judged(&acts);
    assert_eq!(j.verdict, Verdict::NotLanded);
    assert!(j.message.contains("not a worktree worker"), "{}", j.message);
}

/// `r1`, the worker's commit rebased onto `t1`, taken in.
fn adopted(already: bool) -> Seen {
    Seen::Land(LandSeen::Adopted(Adoption::Adopted {
        rebased: vec![commit(R1)],
        base: Some(T1.into()),
        already,
    }))
}

#[test]
fn the_landed_work_becomes_the_worker_s_and_nothing_is_left_to_do() {
    let mut s = checked(done());
    let (out, notes) = land(adopt(C1), &mut s, vec![adopted(false)]);
    let acts = actions(&out);
    assert_eq!(
        acts[0],
        Action::Land(LandGit::Adopt {
            branch: BRANCH.into(),
            branch_tip: R1.into(),
            expected_tip: C1.into(),
            since: Some("h0".into()),
        })
    );
    let j = judged(&acts);
    assert_eq!((j.verdict, j.exit_code), (Verdict::Landed, 0), "{j:?}");
    assert_eq!(s.task.landed.as_deref(), Some(T2));
    assert_eq!(s.run.own_commits, [R1]);
    assert_eq!(s.run.head_at_start.as_deref(), Some(T1));
    assert_eq!(s.run.last_seen_head.as_deref(), Some(R1));
    assert_eq!(
        s.run.gates.checked.as_ref().unwrap().head.as_deref(),
        Some(R1)
    );
    assert_eq!(
        notes,
        [Note::Landed {
            task_id: "task-1".into(),
            commit: T2.into(),
            target: "main".into()
        }]
    );
    for step in [
        nudge(None),
        IMPLEMENT,
        WorkerStep::Nudge {
            reasons: Vec::new(),
            events: vec!["post-commit".into()],
        },
    ] {
        let acts = drive(step.clone(), &mut s, Vec::new());
        let j = judged(&acts);
        assert_eq!(j.verdict, Verdict::NothingToDo, "{step:?}: {j:?}");
        assert!(j.message.contains("landed"), "{}", j.message);
    }
    // Adopted again (a `land` run again finishing its adopts): no second event.
    let (_, notes) = land(adopt(C1), &mut s, vec![adopted(true)]);
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn a_branch_that_moved_is_not_adopted() {
    let mut s = done();
    let before = s.clone();
    let (out, notes) = land(
        adopt(C0),
        &mut s,
        vec![Seen::Land(LandSeen::Adopted(Adoption::Refused(
            "the branch leash/w moved".into(),
        )))],
    );
    let j = judged(&actions(&out)).clone();
    assert_eq!((j.verdict, j.exit_code), (Verdict::NotLanded, 16));
    assert!(j.message.contains("moved"), "{}", j.message);
    assert_eq!(s.task.landed, None);
    assert_eq!(s.run, before.run);
    assert!(notes.is_empty());
}

#[test]
fn a_dirty_worktree_is_not_landed_and_not_touched() {
    let mut s = done();
    let (out, _) = land(
        conflict(),
        &mut s,
        vec![Seen::Land(LandSeen::Kept(Kept {
            aborted: None,
            dirty: vec![change("notes.txt")],
        }))],
    );
    let acts = actions(&out);
    assert_eq!(acts.len(), 2, "no turn, no restore: {acts:?}");
    let j = judged(&acts);
    assert_eq!(j.verdict, Verdict::NotLanded);
    assert!(j.message.contains("notes.txt"), "{}", j.message);
}

#[test]
fn only_done_work_is_handed_back() {
    for phase in ALL_PHASES.into_iter().filter(|p| *p != Phase::Done) {
        let mut s = state(phase);
        let (out, _) = land(conflict(), &mut s, Vec::new());
        let j = judged(&actions(&out)).clone();
        assert_eq!(j.verdict, Verdict::NotLanded, "{phase}");
        assert!(j.message.contains("not done"), "{phase}: {}", j.message);
        assert_eq!(s.phase, phase, "untouched");
    }
}

#[test]
fn an_order_naming_no_commit_id_touches_nothing() {
    for odd in ["--output=/tmp/x", "main", "1234", &"g".repeat(40)] {
        let mut s = done();
        let order = LandOrder::Adopt {
            target: "main".into(),
            landed: T2.into(),
            branch_tip: odd.to_string(),
            expected_tip: C1.into(),
        };
        let (out, _) = land(WorkerStep::Land { order }, &mut s, Vec::new());
        let acts = actions(&out);
        assert_eq!(acts.len(), 1, "no git at all: {acts:?}");
        let j = judged(&acts);
        assert_eq!(j.verdict, Verdict::NotLanded, "{odd}");
        assert!(j.message.contains("no commit id"), "{}", j.message);
    }
}

//! The queue, decision by decision: stacks built and checked, a failing candidate in the
//! middle, a raced move, hand-backs, the parallel bound, and every candidate ending.

use super::*;

fn check(passed: bool) -> CheckResult {
    CheckResult {
        command: "make test".into(),
        exit_code: Some(if passed { 0 } else { 1 }),
        timed_out: false,
        duration_ms: 1,
        output_tail: String::new(),
        disturbed: None,
    }
}

/// Its checks passed on `tip`.
fn passed(id: Id, tip: impl Into<String>) -> Seen {
    Seen::Checked {
        id,
        tip: tip.into(),
        checks: vec![check(true)],
    }
}

fn tip(id: Id, onto: &str) -> String {
    format!("{onto}+{id}")
}

/// Builds every build the queue asks for (stacked tips are `onto+id`) and returns the
/// other actions.
fn step(queue: &mut Queue) -> Vec<Action> {
    let mut out = Vec::new();
    loop {
        let actions = queue.next();
        if actions.is_empty() {
            return out;
        }
        for action in actions {
            match action {
                Action::Build { id, onto } => queue.seen(Seen::Built {
                    id,
                    tip: tip(id, &onto),
                }),
                other => out.push(other),
            }
        }
    }
}

fn checks_of(actions: &[Action]) -> Vec<(Id, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Check { id, tip } => Some((*id, tip.clone())),
            _ => None,
        })
        .collect()
}

fn landed(queue: &Queue) -> Vec<(Id, String)> {
    queue
        .ended()
        .iter()
        .filter_map(|(id, end)| match end {
            End::Landed { tip } => Some((*id, tip.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn candidates_are_stacked_each_on_the_one_before_checked_at_once_and_landed_in_one_move() {
    let mut queue = Queue::new(vec![0, 1, 2], "T".into(), 8);
    let actions = step(&mut queue);
    assert_eq!(
        checks_of(&actions),
        vec![
            (0, "T+0".into()),
            (1, "T+0+1".into()),
            (2, "T+0+1+2".into())
        ]
    );
    for (id, tip) in checks_of(&actions) {
        assert!(
            step(&mut queue).is_empty(),
            "no move before every check passed"
        );
        queue.seen(passed(id, tip));
    }
    assert_eq!(
        step(&mut queue),
        vec![Action::Move {
            ids: vec![0, 1, 2],
            from: "T".into(),
            to: "T+0+1+2".into()
        }]
    );
    assert!(step(&mut queue).is_empty(), "one move at a time");
    queue.seen(Seen::Moved {
        tip: "T+0+1+2".into(),
    });
    assert_eq!(step(&mut queue), vec![Action::Finish]);
    assert_eq!(landed(&queue).len(), 3);
    assert!(step(&mut queue).is_empty(), "finished once");
}

#[test]
fn parallel_bounds_the_checks_running_at_once_and_one_means_stacks_of_one() {
    let mut queue = Queue::new(vec![0, 1, 2], "T".into(), 1);
    let mut tip_now = "T".to_string();
    for id in 0..3 {
        let actions = step(&mut queue);
        let expected = tip(id, &tip_now);
        assert_eq!(checks_of(&actions), vec![(id, expected.clone())]);
        queue.seen(passed(id, expected.clone()));
        assert_eq!(
            step(&mut queue),
            vec![Action::Move {
                ids: vec![id],
                from: tip_now.clone(),
                to: expected.clone()
            }]
        );
        queue.seen(Seen::Moved {
            tip: expected.clone(),
        });
        tip_now = expected;
    }
    assert_eq!(step(&mut queue), vec![Action::Finish]);

    let mut queue = Queue::new((0..5).collect(), "T".into(), 2);
    let actions = step(&mut queue);
    assert_eq!(checks_of(&actions).len(), 2, "{actions:?}");
}

#[test]
fn a_failing_candidate_in_the_middle_drops_out_and_those_after_it_are_stacked_again_without_it() {
    let mut queue = Queue::new(vec![0, 1, 2], "T".into(), 8);
    step(&mut queue);
    queue.seen(passed(0, "T+0"));
    queue.seen(Seen::Checked {
        id: 1,
        tip: "T+0+1".into(),
        checks: vec![check(true), check(false)],
    });
    let actions = step(&mut queue);
    assert_eq!(
        actions,
        vec![
            Action::Drop {
                id: 2,
                tip: "T+0+1+2".into()
            },
            Action::Check {
                id: 2,
                tip: "T+0+2".into()
            }
        ],
        "above a candidate not landed, the failure may not be its own: no hand-back yet"
    );
    // The old stack's result comes late: it is not the stack that counts.
    queue.seen(passed(2, "T+0+1+2"));
    assert!(step(&mut queue).is_empty());
    queue.seen(passed(2, "T+0+2"));
    assert_eq!(
        step(&mut queue),
        vec![Action::Move {
            ids: vec![0, 2],
            from: "T".into(),
            to: "T+0+2".into()
        }]
    );
    queue.seen(Seen::Moved {
        tip: "T+0+2".into(),
    });
    // Stacked again right on the target, it fails again: now it is its own, and goes back.
    let actions = step(&mut queue);
    assert_eq!(checks_of(&actions), vec![(1, "T+0+2+1".into())]);
    queue.seen(Seen::Checked {
        id: 1,
        tip: "T+0+2+1".into(),
        checks: vec![check(false)],
    });
    let actions = step(&mut queue);
    assert!(
        matches!(
            &actions[..],
            [Action::HandBack { id: 1, onto, trouble: LandTrouble::ChecksFailed { .. } }] if onto == "T+0+2"
        ),
        "{actions:?}"
    );
    assert!(
        step(&mut queue).is_empty(),
        "waits for the worker it handed back"
    );
    queue.seen(Seen::CameBack {
        id: 1,
        answer: Ok(()),
    });
    let actions = step(&mut queue);
    assert_eq!(checks_of(&actions), vec![(1, "T+0+2+1".into())]);
    queue.seen(passed(1, "T+0+2+1"));
    step(&mut queue);
    queue.seen(Seen::Moved {
        tip: "T+0+2+1".into(),
    });
    assert_eq!(step(&mut queue), vec![Action::Finish]);
    assert_eq!(
        landed(&queue),
        vec![
            (0, "T+0+2".into()),
            (2, "T+0+2".into()),
            (1, "T+0+2+1".into())
        ]
    );
}

#[test]
fn a_conflict_above_a_candidate_that_then_drops_out_is_stacked_again_not_handed_back() {
    let mut queue = Queue::new(vec![0, 1], "T".into(), 8);
    let actions = queue.next();
    assert_eq!(
        actions,
        vec![Action::Build {
            id: 0,
            onto: "T".into()
        }]
    );
    queue.seen(Seen::Built {
        id: 0,
        tip: "T+0".into(),
    });
    let actions = queue.next();
    assert!(actions.contains(&Action::Build {
        id: 1,
        onto: "T+0".into()
    }));
    queue.seen(Seen::Conflicted {
        id: 1,
        files: vec!["shared.txt".into()],
    });
    assert_eq!(step(&mut queue), vec![], "held while 0 is checked");
    queue.seen(Seen::Checked {
        id: 0,
        tip: "T+0".into(),
        checks: vec![check(false)],
    });
    let actions = step(&mut queue);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::HandBack { id: 0, .. }))
    );
    assert_eq!(
        checks_of(&actions),
        vec![(1, "T+1".into())],
        "without 0 below it, 1 stacks cleanly"
    );
}

#[test]
fn a_conflict_goes_back_to_its_worker_against_the_target_and_the_queue_goes_on() {
    let mut queue = Queue::new(vec![0, 1], "T".into(), 8);
    assert_eq!(
        queue.next(),
        vec![Action::Build {
            id: 0,
            onto: "T".into()
        }]
    );
    queue.seen(Seen::Conflicted {
        id: 0,
        files: vec!["shared.txt".into()],
    });
    let actions = step(&mut queue);
    assert_eq!(
        actions[0],
        Action::HandBack {
            id: 0,
            onto: "T".into(),
            trouble: LandTrouble::Conflict {
                files: vec!["shared.txt".into()]
            }
        }
    );
    assert_eq!(checks_of(&actions), vec![(1, "T+1".into())]);
    queue.seen(Seen::CameBack {
        id: 0,
        answer: Err("it gave up".into()),
    });
    queue.seen(Seen::Checked {
        id: 1,
        tip: "T+1".into(),
        checks: vec![],
    });
    step(&mut queue);
    queue.seen(Seen::Moved { tip: "T+1".into() });
    assert_eq!(step(&mut queue), vec![Action::Finish]);
    assert_eq!(
        queue.ended(),
        &[
            (
                0,
                End::Conflict {
                    reason: "it gave up".into()
                }
            ),
            (1, End::Landed { tip: "T+1".into() })
        ]
    );
}

#[test]
fn a_raced_move_stacks_everything_again_on_the_new_tip_never_over_it() {
    let mut queue = Queue::new(vec![0, 1], "T".into(), 8);
    for (id, tip) in checks_of(&step(&mut queue)) {
        queue.seen(passed(id, tip));
    }
    step(&mut queue);
    queue.seen(Seen::Raced { tip: "P".into() });
    let actions = step(&mut queue);
    assert_eq!(
        checks_of(&actions),
        vec![(0, "P+0".into()), (1, "P+0+1".into())]
    );
    for (id, tip) in checks_of(&actions) {
        queue.seen(passed(id, tip));
    }
    assert_eq!(
        step(&mut queue),
        vec![Action::Move {
            ids: vec![0, 1],
            from: "P".into(),
            to: "P+0+1".into()
        }]
    );
}

#[test]
fn a_target_that_cannot_move_leaves_every_candidate_untouched_with_why() {
    let mut queue = Queue::new(vec![0, 1, 2], "T".into(), 1);
    let actions = step(&mut queue);
    queue.seen(Seen::Conflicted {
        id: 0,
        files: vec![],
    });
    let _ = actions;
    let actions = step(&mut queue);
    let (id, tip) = checks_of(&actions)[0].clone();
    queue.seen(Seen::Checked {
        id,
        tip,
        checks: vec![],
    });
    step(&mut queue);
    queue.seen(Seen::Refused {
        reason: "main's work tree is dirty".into(),
    });
    assert!(step(&mut queue).is_empty(), "waits for the worker away");
    queue.seen(Seen::CameBack {
        id: 0,
        answer: Ok(()),
    });
    assert_eq!(step(&mut queue), vec![Action::Finish]);
    let ended = queue.ended();
    assert_eq!(ended.len(), 3);
    assert!(ended.iter().all(|(_, end)| *end
        == End::Skipped {
            reason: "main's work tree is dirty".into()
        }));
}

#[test]
fn a_branch_that_moved_drops_out_and_one_already_on_the_target_is_skipped() {
    let mut queue = Queue::new(vec![0, 1, 2], "T".into(), 8);
    let mut first = true;
    loop {
        let actions = queue.next();
        let Some(Action::Build { id, onto }) = actions.first().cloned() else {
            break;
        };
        if first {
            first = false;
            queue.seen(Seen::Empty { id });
        } else {
            queue.seen(Seen::Built {
                id,
                tip: tip(id, &onto),
            });
        }
    }
    queue.seen(Seen::Checked {
        id: 1,
        tip: "T+1".into(),
        checks: vec![],
    });
    queue.seen(Seen::Checked {
        id: 2,
        tip: "T+1+2".into(),
        checks: vec![],
    });
    step(&mut queue);
    queue.seen(Seen::BranchMoved { id: 1 });
    let actions = step(&mut queue);
    assert_eq!(checks_of(&actions), vec![(2, "T+2".into())]);
    assert!(matches!(queue.ended()[0], (0, End::AlreadyThere)));
    assert!(matches!(queue.ended()[1], (1, End::Skipped { .. })));
}

#[test]
fn every_candidate_ends_whatever_the_checks_and_workers_answer() {
    // Every pattern of failures for four candidates, each worker answering landable
    // then giving up: the queue always finishes with each candidate ended once.
    for pattern in 0u32..(1 << 8) {
        for parallel in [1, 2, 4] {
            let mut queue = Queue::new(vec![0, 1, 2, 3], "T".into(), parallel);
            let mut tip_now = "T".to_string();
            let mut answers = 0u32;
            for _ in 0..1000 {
                let actions = queue.next();
                if actions.contains(&Action::Finish) {
                    break;
                }
                for action in actions {
                    match action {
                        Action::Build { id, onto } => queue.seen(Seen::Built {
                            id,
                            tip: tip(id, &onto),
                        }),
                        Action::Check { id, tip } => {
                            let bit = (id as u32 + answers) % 8;
                            let passed = pattern & (1 << bit) == 0;
                            queue.seen(Seen::Checked {
                                id,
                                tip,
                                checks: vec![check(passed)],
                            });
                        }
                        Action::Move { to, .. } => {
                            tip_now = to.clone();
                            queue.seen(Seen::Moved { tip: to });
                        }
                        Action::HandBack { id, .. } => {
                            answers += 1;
                            let answer = match answers % 3 {
                                0 => Err("gave up".into()),
                                _ => Ok(()),
                            };
                            queue.seen(Seen::CameBack { id, answer });
                        }
                        Action::Drop { .. } | Action::Finish => {}
                    }
                }
            }
            let mut ended: Vec<Id> = queue.ended().iter().map(|(id, _)| *id).collect();
            ended.sort_unstable();
            assert_eq!(ended, vec![0, 1, 2, 3], "{pattern:b} parallel {parallel}");
            for (_, end) in queue.ended() {
                if let End::Landed { tip } = end {
                    assert!(tip_now.starts_with(tip.as_str()), "{tip} then {tip_now}");
                }
            }
        }
    }
}

//! Budgets: no further turn once the task spent its budget.

use super::*;

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

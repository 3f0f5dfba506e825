//! The judging turn of `loop --attempts`: the green attempts shown to the plan model,
//! its answer read, asked once more when it names none, and, cut off by a dead daemon,
//! continued rather than sent again.

use super::*;
use crate::worker::InFlight;
use crate::worker::attempts::Candidate;

fn candidate(k: u32) -> Candidate {
    Candidate {
        k,
        stat: format!(" f{k}.txt | 1 +\n"),
        patch: format!("+attempt {k}\n"),
        truncated: false,
        checks: vec!["test -f ok".into()],
        cost_usd: 0.25,
        turns: 2,
    }
}

fn judge_step() -> WorkerStep {
    WorkerStep::Judge {
        candidates: vec![candidate(2), candidate(3)],
    }
}

fn planned() -> WorkerState {
    let mut s = state(Phase::Planned);
    s.task.plan = Some("1. add it".into());
    s
}

fn sent(action: &Action) -> (TurnKind, &str, &TurnSettings, bool) {
    match action {
        Action::Send {
            kind,
            prompt,
            settings,
            resumed,
            ..
        } => (*kind, prompt.as_str(), settings, *resumed),
        other => panic!("not a turn: {other:?}"),
    }
}

#[test]
fn the_judge_sees_every_green_attempt_on_the_plan_model_read_only() {
    let mut s = planned();
    let mut machine = StepMachine::new(judge_step(), config(), None);
    let action = machine.advance(&mut s, Seen::Start, NOW);
    let (kind, prompt, settings, resumed) = sent(&action);
    assert_eq!(kind, TurnKind::Judge);
    assert!(!resumed);
    assert_eq!(settings.model.as_deref(), Some("opus"));
    assert_eq!(settings.permission_mode.as_deref(), Some("plan"));
    for needle in [
        "+attempt 2",
        "+attempt 3",
        "f3.txt",
        "LEASH-WINNER: N",
        "1. add it",
    ] {
        assert!(prompt.contains(needle), "{needle}: {prompt}");
    }
    assert_eq!(s.in_flight, Some(InFlight::Judge));
}

#[test]
fn the_judges_answer_names_the_winner_and_costs_the_judge_bucket() {
    let mut s = planned();
    let mut machine = StepMachine::new(judge_step(), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    let mut answer = outcome(TurnStatus::Success, "3 is simpler.\nLEASH-WINNER: 3");
    answer.cost_usd = Some(0.4);
    let Action::Finish(judged) = machine.advance(&mut s, turn(answer, &[]), NOW) else {
        panic!("the judge's answer ends the step");
    };
    assert_eq!(
        (judged.step, judged.verdict),
        (Step::Judge, Verdict::Judged)
    );
    assert_eq!(judged.exit_code, 0);
    let pick = judged.pick.expect("a pick");
    assert_eq!(pick.k, Some(3));
    assert!(pick.reason.contains("simpler"));
    assert_eq!(s.task.cost.judge_usd, 0.4);
    assert_eq!(s.in_flight, None);
    assert_eq!(s.phase, Phase::Planned, "judging moves no phase");
}

#[test]
fn an_answer_naming_no_green_attempt_is_asked_once_more_then_given_up() {
    let mut s = planned();
    let mut machine = StepMachine::new(judge_step(), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    let again = machine.advance(&mut s, ok("I like attempt 1 best.\nLEASH-WINNER: 1"), NOW);
    let (kind, prompt, ..) = sent(&again);
    assert_eq!(kind, TurnKind::Judge);
    assert!(prompt.contains("2, 3"), "{prompt}");
    let Action::Finish(judged) = machine.advance(&mut s, ok("hard to say"), NOW) else {
        panic!("asked once more, then it ends");
    };
    assert_eq!(judged.pick.map(|p| p.k), Some(None));

    let mut s = planned();
    let mut machine = StepMachine::new(judge_step(), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    machine.advance(&mut s, ok("no marker"), NOW);
    let Action::Finish(judged) = machine.advance(&mut s, ok("LEASH-WINNER: 2"), NOW) else {
        panic!("the second answer ends it");
    };
    assert_eq!(judged.pick.and_then(|p| p.k), Some(2));
}

#[test]
fn a_judge_turn_cut_off_by_a_dead_daemon_is_continued_not_sent_again() {
    let mut s = planned();
    s.in_flight = Some(InFlight::Judge);
    s.in_flight_prompt = Some("the judge prompt".into());
    let mut machine = StepMachine::new(judge_step(), config(), None);
    let action = machine.advance(&mut s, Seen::Start, NOW);
    let (kind, prompt, _, resumed) = sent(&action);
    assert_eq!(kind, TurnKind::Judge);
    assert!(resumed, "goes on from the cut-off turn");
    assert_eq!(prompt, CONTINUE_AFTER_RESTART);
    let Action::Send { cut_off_prompt, .. } = &action else {
        unreachable!()
    };
    assert_eq!(cut_off_prompt.as_deref(), Some("the judge prompt"));
    let Action::Finish(judged) = machine.advance(&mut s, ok("LEASH-WINNER: 2"), NOW) else {
        panic!("the continued turn's answer ends it");
    };
    assert_eq!(judged.pick.and_then(|p| p.k), Some(2));
}

#[test]
fn a_judge_turn_that_fails_ends_the_step_with_its_failure() {
    let mut s = planned();
    let mut machine = StepMachine::new(judge_step(), config(), None);
    machine.advance(&mut s, Seen::Start, NOW);
    let failed = turn(outcome(TurnStatus::Crashed, ""), &[]);
    let Action::Finish(judged) = machine.advance(&mut s, failed, NOW) else {
        panic!("a failed judge turn ends the step");
    };
    assert_eq!(judged.verdict, Verdict::TurnFailed);
    assert_eq!(
        s.in_flight,
        Some(InFlight::Judge),
        "cut off: stays in flight"
    );
}

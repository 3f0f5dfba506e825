//! The turn policy, case by case: every way an attempt ends, with retries left or
//! not, restarts left or not, interrupted or not.

use super::*;
use crate::claude::conversation::Compaction;
use crate::error::{Error, ErrorKind};

const NOW: u64 = 1_000_000_000;

fn rules() -> Rules {
    Rules {
        max_retries: 2,
        max_wait_ms: 60_000,
        continue_on_crash: true,
        restart_limit: 2,
        compaction: false,
        silence_timeout: Duration::from_secs(1800),
    }
}

fn failure(class: FailureClass, status: Option<u16>, text: &str) -> TurnEnd {
    TurnEnd::Failed(Failure {
        class,
        text: Some(text.to_string()),
        api_error_status: status,
        reason: status.map_or("no reason given".to_string(), |s| format!("HTTP {s}")),
    })
}

fn report(end: TurnEnd) -> TurnReport {
    TurnReport {
        end,
        cost_usd: None,
        compaction: None,
        dropped_prompt: false,
        rejected_by: None,
    }
}

fn limit(resets_in_ms: u64) -> RateLimit {
    RateLimit {
        status: "rejected".to_string(),
        window: Some("five_hour".to_string()),
        utilization: Some(1.0),
        resets_at: Some(NOW + resets_in_ms),
        ts: NOW - 10,
    }
}

/// What `next` decided, in a word, and the course after it.
fn decide(
    course: &Course,
    rules: &Rules,
    report: &TurnReport,
    cancelled: bool,
) -> (String, Course) {
    let mut course = course.clone();
    let word = match next(&mut course, rules, report, cancelled, NOW) {
        Next::Backoff { attempt } => format!("backoff {attempt}"),
        Next::UntilReset { delay, .. } => format!("until reset {}", delay.as_millis()),
        Next::HandOff => "hand off".to_string(),
        Next::Resend => "resend".to_string(),
        Next::Continue { hung } => format!("continue hung={hung}"),
        Next::Finish(ending) => format!("finish {:?}", ending.status),
        Next::Abandon(ending) => format!("abandon {:?}", ending.status),
    };
    (word, course)
}

#[test]
fn every_way_an_attempt_ends_with_and_without_retries_left_and_interrupted() {
    let provider = || {
        failure(
            FailureClass::Provider,
            Some(529),
            "API Error: 529 Overloaded",
        )
    };
    let answered_dropped = || TurnReport {
        dropped_prompt: true,
        ..report(TurnEnd::Answered(Some("a summary".into())))
    };
    let spent = Course {
        retries: 2,
        handed_off: true,
        restarts: 2,
        resent: true,
    };
    // (what ended, course, cancelled, expected)
    let cases: Vec<(&str, TurnReport, Course, bool, &str)> = vec![
        (
            "answered",
            report(TurnEnd::Answered(Some("hi".into()))),
            Course::default(),
            false,
            "finish Success",
        ),
        (
            "answered, interrupted late",
            report(TurnEnd::Answered(None)),
            Course::default(),
            true,
            "finish Success",
        ),
        (
            "prompt dropped",
            answered_dropped(),
            Course::default(),
            false,
            "resend",
        ),
        (
            "prompt dropped again",
            answered_dropped(),
            spent.clone(),
            false,
            "finish Success",
        ),
        (
            "prompt dropped, interrupted",
            answered_dropped(),
            Course::default(),
            true,
            "finish Success",
        ),
        (
            "provider error",
            report(provider()),
            Course::default(),
            false,
            "backoff 0",
        ),
        (
            "provider error, second",
            report(provider()),
            Course {
                retries: 1,
                ..Course::default()
            },
            false,
            "backoff 1",
        ),
        (
            "provider error, no retries left",
            report(provider()),
            spent.clone(),
            false,
            "finish ProviderError",
        ),
        (
            "provider error, interrupted",
            report(provider()),
            Course::default(),
            true,
            "finish Interrupted",
        ),
        (
            "full",
            report(failure(
                FailureClass::Overflow,
                Some(400),
                "Prompt is too long",
            )),
            Course::default(),
            false,
            "hand off",
        ),
        (
            "full again",
            report(failure(
                FailureClass::Overflow,
                Some(400),
                "Prompt is too long",
            )),
            spent.clone(),
            false,
            "abandon Error",
        ),
        (
            "full, interrupted",
            report(failure(
                FailureClass::Overflow,
                Some(400),
                "Prompt is too long",
            )),
            Course::default(),
            true,
            "finish Interrupted",
        ),
        (
            "interrupted result",
            report(failure(FailureClass::Interrupted, None, "")),
            Course::default(),
            false,
            "finish Interrupted",
        ),
        (
            "other error",
            report(failure(FailureClass::Other, None, "max turns")),
            Course::default(),
            false,
            "finish Error",
        ),
        (
            "other error, interrupted",
            report(failure(FailureClass::Other, None, "max turns")),
            Course::default(),
            true,
            "finish Interrupted",
        ),
        (
            "exited",
            report(TurnEnd::Exited("signal 9".into())),
            Course::default(),
            false,
            "continue hung=false",
        ),
        (
            "exited, restarts spent",
            report(TurnEnd::Exited("signal 9".into())),
            spent.clone(),
            false,
            "finish Crashed",
        ),
        (
            "exited, interrupted",
            report(TurnEnd::Exited("signal 9".into())),
            Course::default(),
            true,
            "finish Crashed",
        ),
        (
            "silent",
            report(TurnEnd::Silent),
            Course::default(),
            false,
            "continue hung=true",
        ),
        (
            "silent, restarts spent",
            report(TurnEnd::Silent),
            spent.clone(),
            false,
            "finish Hung",
        ),
        (
            "killed",
            report(TurnEnd::Killed),
            Course::default(),
            false,
            "finish Interrupted",
        ),
        (
            "not started",
            report(TurnEnd::NotStarted(Error::setup("cannot start claude"))),
            Course::default(),
            false,
            "finish Crashed",
        ),
        (
            "not started, interrupted in the backoff",
            report(TurnEnd::NotStarted(Error::new(
                ErrorKind::Interrupted,
                "interrupted",
            ))),
            Course::default(),
            true,
            "finish Interrupted",
        ),
        (
            "cancelled before it was sent",
            report(TurnEnd::Cancelled),
            Course::default(),
            true,
            "finish Interrupted",
        ),
    ];
    for (what, report, course, cancelled, expected) in cases {
        let (got, _) = decide(&course, &rules(), &report, cancelled);
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn what_the_turn_spends_is_counted_in_its_course() {
    let provider = report(failure(FailureClass::Provider, Some(529), "API Error"));
    let (_, course) = decide(&Course::default(), &rules(), &provider, false);
    assert_eq!(course.retries, 1);
    let dropped = TurnReport {
        dropped_prompt: true,
        ..report(TurnEnd::Answered(None))
    };
    let (_, course) = decide(&course, &rules(), &dropped, false);
    assert!(course.resent);
    let (_, course) = decide(&course, &rules(), &report(TurnEnd::Silent), false);
    assert_eq!(course.restarts, 1);
    let (_, after) = decide(&course, &rules(), &report(TurnEnd::Answered(None)), false);
    assert_eq!(after, course, "an answer changes nothing");
}

#[test]
fn a_plain_turn_does_not_go_on_after_claude_died() {
    let rules = Rules {
        continue_on_crash: false,
        ..rules()
    };
    let (got, _) = decide(
        &Course::default(),
        &rules,
        &report(TurnEnd::Exited("exit code 1".into())),
        false,
    );
    assert_eq!(got, "finish Crashed");
    let (got, _) = decide(&Course::default(), &rules, &report(TurnEnd::Silent), false);
    assert_eq!(got, "finish Hung");
}

#[test]
fn a_rate_limit_refusal_waits_until_it_resets_within_the_bound() {
    let refused = TurnReport {
        rejected_by: Some(limit(30_000)),
        ..report(failure(
            FailureClass::Provider,
            Some(429),
            "API Error: Request rejected (429)",
        ))
    };
    let (got, course) = decide(&Course::default(), &rules(), &refused, false);
    assert_eq!(got, "until reset 31000", "a second after the reset");
    assert_eq!(course.retries, 1);
    let later = TurnReport {
        rejected_by: Some(limit(2 * 3_600_000)),
        ..refused
    };
    let mut course = Course::default();
    let Next::Finish(ending) = next(&mut course, &rules(), &later, false, NOW) else {
        panic!("a reset beyond provider_max_wait ends the turn")
    };
    assert_eq!(ending.status, TurnStatus::ProviderError);
    let message = ending.message.unwrap();
    assert!(
        message.contains("later than provider_max_wait"),
        "{message}"
    );
    assert!(message.contains("in 2 h"), "{message}");
    assert_eq!(course.retries, 0, "no retry was spent");
}

#[test]
fn a_limit_that_is_not_this_refusals_or_already_reset_backs_off_as_usual() {
    let overloaded = TurnReport {
        rejected_by: Some(limit(30_000)),
        ..report(failure(FailureClass::Provider, Some(529), "API Error: 529"))
    };
    assert_eq!(
        decide(&Course::default(), &rules(), &overloaded, false).0,
        "backoff 0"
    );
    let reset = TurnReport {
        rejected_by: Some(RateLimit {
            resets_at: Some(NOW - 1),
            ..limit(0)
        }),
        ..report(failure(FailureClass::Provider, Some(429), "API Error"))
    };
    assert_eq!(
        decide(&Course::default(), &rules(), &reset, false).0,
        "backoff 0"
    );
}

#[test]
fn endings_say_what_happened_in_claudes_terms() {
    let ended = |end: TurnEnd, course: &Course| ending(course, &rules(), &report(end), false);
    let provider = ended(
        failure(
            FailureClass::Provider,
            Some(529),
            "API Error: 529 Overloaded",
        ),
        &Course::default(),
    );
    assert_eq!(
        provider.message.as_deref(),
        Some("the API failed with HTTP 529: API Error: 529 Overloaded")
    );
    assert_eq!(provider.api_error_status, Some(529));
    let full = ended(
        failure(FailureClass::Overflow, Some(400), "Prompt is too long"),
        &Course::default(),
    );
    assert!(
        full.message
            .unwrap()
            .starts_with("the conversation is full (HTTP 400)")
    );
    let handed_off = Course {
        handed_off: true,
        ..Course::default()
    };
    let still_full = ended(
        failure(FailureClass::Overflow, Some(400), "Prompt is too long"),
        &handed_off,
    );
    assert!(
        still_full
            .message
            .unwrap()
            .contains("the prompt alone does not fit")
    );
    let silent = ended(TurnEnd::Silent, &Course::default());
    assert!(
        silent
            .message
            .unwrap()
            .starts_with("claude went silent for 30 min")
    );
    let exited = ended(
        TurnEnd::Exited("signal 9; claude said: boom".into()),
        &Course::default(),
    );
    assert!(
        exited
            .message
            .unwrap()
            .contains("(signal 9; claude said: boom)")
    );
    assert_eq!(
        Ending::interrupted_waiting().status,
        TurnStatus::Interrupted,
        "a wait cut short"
    );
}

#[test]
fn a_compaction_succeeds_only_when_claude_drew_the_boundary() {
    let rules = Rules {
        compaction: true,
        ..rules()
    };
    let done = Compaction {
        trigger: "manual".into(),
        pre_tokens: Some(150_000),
        post_tokens: Some(2_600),
        ts: 1,
    };
    let with = |end: TurnEnd, news: Option<CompactionNews>| {
        let report = TurnReport {
            compaction: news,
            ..report(end)
        };
        ending(&Course::default(), &rules, &report, false)
    };
    let ok = with(TurnEnd::Answered(None), Some(CompactionNews::Done(done)));
    assert_eq!(ok.status, TurnStatus::Success);
    assert_eq!(
        ok.result.as_deref(),
        Some("compacted 150k -> 2k tokens (manual)")
    );
    let refused = with(
        TurnEnd::Answered(None),
        Some(CompactionNews::Failed("too_few_groups".into())),
    );
    assert_eq!(
        refused.message.as_deref(),
        Some("compaction failed: too_few_groups")
    );
    let silent = with(TurnEnd::Answered(Some("nothing to do".into())), None);
    assert_eq!(silent.status, TurnStatus::Error);
    assert_eq!(
        silent.message.as_deref(),
        Some("claude did not compact the conversation: nothing to do")
    );
    let error = with(failure(FailureClass::Other, None, "boom"), None);
    assert_eq!(
        error.message.as_deref(),
        Some("compaction failed (no reason given): boom")
    );
    let dropped = TurnReport {
        dropped_prompt: true,
        ..report(TurnEnd::Answered(None))
    };
    assert_eq!(
        decide(&Course::default(), &rules, &dropped, false).0,
        "finish Error",
        "a compaction has no prompt to send again"
    );
}

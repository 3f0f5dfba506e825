//! What a turn does after each attempt, pure: how the attempt ended, what happened to
//! the turn so far ([`Course`]), its rules and the time go in; what to do next comes
//! out. Provider errors are sent again after a backoff (or once the rate limit resets),
//! a full conversation is handed off to a new one, a prompt claude's own compaction
//! dropped is sent again, a claude that died or hung mid-step is told to continue;
//! anything else ends the turn, with its status and message.

use std::time::Duration;

use crate::claude::limits::RateLimit;
use crate::claude::session::{CompactionNews, Failure, FailureClass, TurnEnd, TurnReport};
use crate::human::duration as human;
use crate::turn::TurnStatus;

/// What happened to a turn on its way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Course {
    /// Provider-error retries spent.
    pub retries: u32,
    /// The conversation was full and the turn went on in a new one.
    pub handed_off: bool,
    /// claude died or hung during the turn and was restarted to continue it.
    pub restarts: u32,
    /// The prompt was sent again because claude's own compaction dropped it.
    pub resent: bool,
}

/// The bounds and wishes a turn runs with.
#[derive(Debug, Clone)]
pub struct Rules {
    /// leash's own re-sends after provider errors.
    pub max_retries: u32,
    /// The longest wait for a rate limit to reset.
    pub max_wait_ms: u64,
    /// Go on after claude died or hung (worker steps, `--continue-on-crash`), at most
    /// `restart_limit` times per turn.
    pub continue_on_crash: bool,
    pub restart_limit: u32,
    /// The turn is a compaction (`/compact`): it has no prompt to lose, and succeeds
    /// only when claude drew the compact boundary.
    pub compaction: bool,
    /// For the message of a turn that went silent.
    pub silence_timeout: Duration,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send the turn again after leash's own backoff (retry `attempt`, from 0).
    Backoff { attempt: u32 },
    /// Send the turn again once the provider's rate limit resets.
    UntilReset { delay: Duration, limit: RateLimit },
    /// The conversation is full: retire it, and send a hand-off and the prompt in a
    /// new one.
    HandOff,
    /// claude's own compaction dropped the prompt: send it again.
    Resend,
    /// claude died (or hung, `hung`) and is restarted: tell it to continue.
    Continue { hung: bool },
    /// The turn is over.
    Finish(Ending),
    /// The turn is over, and its conversation cannot go on: the prompt alone does not
    /// fit even a new one, which now holds it. That conversation is retired too, and
    /// the prompt is in no later one.
    Abandon(Ending),
}

/// How a turn ended, for its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub status: TurnStatus,
    /// Why it did not succeed, in one line.
    pub message: Option<String>,
    /// claude's final text, when it gave one.
    pub result: Option<String>,
    pub api_error_status: Option<u16>,
}

impl Ending {
    fn new(status: TurnStatus, message: impl Into<String>) -> Ending {
        Ending {
            status,
            message: Some(message.into()),
            result: None,
            api_error_status: None,
        }
    }

    /// Interrupted while waiting to send the turn again.
    pub fn interrupted_waiting() -> Ending {
        Ending::new(
            TurnStatus::Interrupted,
            "interrupted while waiting to retry",
        )
    }
}

/// A rate limit's reset is in whole seconds: the turn goes again a little after it.
const AFTER_RESET: Duration = Duration::from_secs(1);

/// The next step after an attempt that ended as `report` says; `cancelled` when the
/// turn was interrupted meanwhile, `now_ms` Unix milliseconds.
pub fn next(
    course: &mut Course,
    rules: &Rules,
    report: &TurnReport,
    cancelled: bool,
    now_ms: u64,
) -> Next {
    let failure_class = match &report.end {
        TurnEnd::Failed(failure) => Some(failure.class),
        _ => None,
    };
    match &report.end {
        TurnEnd::Failed(failure)
            if failure.class == FailureClass::Provider
                && course.retries < rules.max_retries
                && !cancelled =>
        {
            let next = provider_retry(course, rules, report, failure, now_ms);
            if !matches!(next, Next::Finish(_)) {
                course.retries += 1;
            }
            next
        }
        TurnEnd::Failed(_)
            if failure_class == Some(FailureClass::Overflow)
                && !course.handed_off
                && !cancelled =>
        {
            Next::HandOff
        }
        TurnEnd::Failed(_) if failure_class == Some(FailureClass::Overflow) && !cancelled => {
            Next::Abandon(ending(course, rules, report, cancelled))
        }
        TurnEnd::Answered(_)
            if !rules.compaction && report.dropped_prompt && !course.resent && !cancelled =>
        {
            course.resent = true;
            Next::Resend
        }
        TurnEnd::Exited(_) | TurnEnd::Silent
            if rules.continue_on_crash && !cancelled && course.restarts < rules.restart_limit =>
        {
            course.restarts += 1;
            Next::Continue {
                hung: report.end == TurnEnd::Silent,
            }
        }
        _ => Next::Finish(ending(course, rules, report, cancelled)),
    }
}

/// A refusal claude tied to a rate limit (a 429, or no status, and a `rejected` rate
/// limit reported during the attempt) waits until the limit resets, within the bound;
/// anything else backs off as usual.
fn provider_retry(
    course: &Course,
    rules: &Rules,
    report: &TurnReport,
    failure: &Failure,
    now_ms: u64,
) -> Next {
    let limit = report
        .rejected_by
        .as_ref()
        .filter(|_| matches!(failure.api_error_status, Some(429) | None));
    let Some((limit, reset)) = limit.and_then(|l| Some((l, l.resets_at.filter(|r| *r > now_ms)?)))
    else {
        return Next::Backoff {
            attempt: course.retries,
        };
    };
    let delay = Duration::from_millis(reset - now_ms) + AFTER_RESET;
    if delay > Duration::from_millis(rules.max_wait_ms) {
        let text = failure.text.as_deref().unwrap_or("no details");
        return Next::Finish(Ending {
            api_error_status: failure.api_error_status,
            result: failure.text.clone(),
            ..Ending::new(
                TurnStatus::ProviderError,
                format!(
                    "{}, in {}: later than provider_max_wait lets leash wait; {text}",
                    limit.describe(),
                    human(Duration::from_millis(reset - now_ms))
                ),
            )
        });
    }
    Next::UntilReset {
        delay,
        limit: limit.clone(),
    }
}

/// How the turn ended, from how its last attempt did.
pub fn ending(course: &Course, rules: &Rules, report: &TurnReport, cancelled: bool) -> Ending {
    match &report.end {
        end @ (TurnEnd::Answered(_) | TurnEnd::Failed(_)) if rules.compaction => {
            compacted(end, report.compaction.as_ref())
        }
        TurnEnd::Answered(text) => Ending {
            status: TurnStatus::Success,
            message: None,
            result: text.clone(),
            api_error_status: None,
        },
        TurnEnd::Failed(failure) => failed(course, failure, cancelled),
        TurnEnd::Exited(how) => Ending::new(
            TurnStatus::Crashed,
            format!(
                "claude exited during the turn ({how}); the next turn restarts it with --resume"
            ),
        ),
        TurnEnd::Silent => Ending::new(
            TurnStatus::Hung,
            format!(
                "claude went silent for {} and the turn was stopped; the next turn goes on in the same conversation",
                human(rules.silence_timeout)
            ),
        ),
        TurnEnd::Killed => Ending::new(
            TurnStatus::Interrupted,
            "the turn was interrupted (claude had to be restarted)",
        ),
        TurnEnd::NotStarted(e) => Ending::new(
            match e.kind {
                crate::error::ErrorKind::Interrupted => TurnStatus::Interrupted,
                _ => TurnStatus::Crashed,
            },
            e.message.clone(),
        ),
        TurnEnd::Cancelled => Ending::new(
            TurnStatus::Interrupted,
            "interrupted before claude received the turn",
        ),
    }
}

/// An error result: the status a script branches on, and what went wrong in claude's
/// own words (never its `subtype`, which says `success` for most errors).
fn failed(course: &Course, failure: &Failure, cancelled: bool) -> Ending {
    let text = failure.text.as_deref().unwrap_or("no details");
    let reason = &failure.reason;
    let (status, message) = match failure.class {
        FailureClass::Interrupted => (
            TurnStatus::Interrupted,
            "the turn was interrupted".to_string(),
        ),
        _ if cancelled => (
            TurnStatus::Interrupted,
            "the turn was interrupted".to_string(),
        ),
        FailureClass::Provider => (
            TurnStatus::ProviderError,
            format!(
                "the API failed{}: {text}",
                failure
                    .api_error_status
                    .map(|s| format!(" with HTTP {s}"))
                    .unwrap_or_default(),
            ),
        ),
        FailureClass::Overflow if course.handed_off => (
            TurnStatus::Error,
            format!(
                "the conversation was full, and so is a new one: the prompt alone does not fit ({reason}): {text}"
            ),
        ),
        FailureClass::Overflow => (
            TurnStatus::Error,
            format!("the conversation is full ({reason}): {text}"),
        ),
        FailureClass::Other => (
            TurnStatus::Error,
            format!("claude ended the turn with an error ({reason}): {text}"),
        ),
    };
    Ending {
        status,
        message: Some(message),
        result: failure.text.clone(),
        api_error_status: failure.api_error_status,
    }
}

/// A compaction succeeded when claude drew the compact boundary; its result says
/// nothing (and says `success` even when compaction failed).
fn compacted(end: &TurnEnd, compaction: Option<&CompactionNews>) -> Ending {
    let (text, failure) = match end {
        TurnEnd::Answered(text) => (text.clone(), None),
        TurnEnd::Failed(failure) => (failure.text.clone(), Some(failure)),
        _ => (None, None),
    };
    let failed = |message: String| Ending {
        status: TurnStatus::Error,
        message: Some(message),
        result: text.clone(),
        api_error_status: None,
    };
    match (compaction, failure) {
        (Some(CompactionNews::Done(c)), _) => Ending {
            status: TurnStatus::Success,
            message: None,
            result: Some(c.describe()),
            api_error_status: None,
        },
        (Some(CompactionNews::Failed(reason)), _) => failed(format!("compaction failed: {reason}")),
        (_, Some(failure)) => failed(format!(
            "compaction failed ({}): {}",
            failure.reason,
            failure.text.as_deref().unwrap_or("no details")
        )),
        _ => failed(format!(
            "claude did not compact the conversation: {}",
            text.as_deref().unwrap_or("it said nothing")
        )),
    }
}

#[cfg(test)]
mod tests;

//! Running one turn: the session runs each attempt, the pure [`turn_policy`] decides
//! what comes after it, and this carries that out (a pause before sending again, a
//! hand-off to a new conversation, a continuation after a crash) until the turn's
//! [`Outcome`].
//!
//! [`turn_policy`]: super::turn_policy

use std::time::Duration;

use tokio::time::Instant;

use super::job::{Wait, Wake};
use super::parts::Parts;
use super::turn_policy::{self, Course, Ending, Next, Rules};
use crate::claude::session::{Cancel, Done, TurnAsk, TurnEnd, TurnReport};
use crate::human::duration as human;
use crate::protocol::{EventBody, Fault};
use crate::time::now_ms;
use crate::turn::{Outcome, TurnKind, TurnSpec};
use crate::worker::prompts::{CONTINUE_AFTER_RESTART, Handoff, handoff_prompt};
use crate::worktree::clear_index_lock_of_dead_git;

/// What the turn waits for.
enum Stage {
    /// An attempt runs in the session.
    Attempt,
    /// The pause before the next attempt.
    Pausing,
    /// The full conversation is being retired; `report` is the attempt that found it
    /// full, `handoff` what the new one is told first.
    Retiring {
        report: Box<TurnReport>,
        handoff: String,
    },
    /// The conversation that holds a prompt too big for any is being retired; the turn
    /// ends so.
    Abandoning(Ending),
}

/// How the turn goes on after it was woken.
pub enum Progress {
    Wait(Wait),
    Ended(Outcome),
}

pub struct TurnRun {
    id: u64,
    spec: TurnSpec,
    rules: Rules,
    course: Course,
    /// What the next attempt sends.
    prompt: String,
    stage: Stage,
    started: Instant,
    /// What the attempts cost so far.
    cost_usd: Option<f64>,
    /// Where claude's transcript ended when the latest attempt's prompt went out.
    sent_at: u64,
}

impl TurnRun {
    pub fn new(id: u64, spec: TurnSpec, parts: &Parts) -> TurnRun {
        let rules = Rules {
            max_retries: spec.retry.max_retries,
            max_wait_ms: spec.retry.max_wait_ms,
            continue_on_crash: spec.continue_on_crash,
            restart_limit: parts.limits().restart_limit,
            compaction: spec.kind == TurnKind::Compact,
            silence_timeout: parts.limits().silence_timeout,
        };
        TurnRun {
            id,
            prompt: spec.prompt.clone(),
            spec,
            rules,
            course: Course::default(),
            stage: Stage::Attempt,
            started: Instant::now(),
            cost_usd: None,
            sent_at: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The turn begins: it is told to its clients, and its first attempt goes out.
    pub fn begin(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.started = Instant::now();
        let continuation = self.continuation(parts);
        parts.turn_began(
            self.id,
            self.spec.kind,
            &self.spec.prompt,
            self.spec.interactive,
        );
        parts.emit(EventBody::TurnStarted {
            kind: self.spec.kind,
            prompt: self.prompt.clone(),
            continuation,
        });
        self.attempt(parts, cancel)
    }

    /// A turn that goes on from one cut off is continued if claude's conversation holds
    /// its prompt, else sent as itself: claude hears it once, never twice, never not.
    fn continuation(&mut self, parts: &mut Parts) -> bool {
        let Some(cut_off) = self.spec.cut_off_prompt.clone() else {
            return false;
        };
        let since = self.spec.cut_off_since.unwrap_or(0);
        if parts.session().view().holds_prompt(&cut_off, since) {
            parts.info(
                "claude's conversation holds the cut-off turn's prompt: it is told to continue"
                    .into(),
            );
            return true;
        }
        parts.info(
            "claude's conversation does not hold the cut-off turn's prompt (claude never answered it): it is sent again"
                .into(),
        );
        self.prompt = cut_off;
        false
    }

    fn attempt(&mut self, parts: &mut Parts, cancel: &Cancel) -> Wait {
        self.stage = Stage::Attempt;
        self.sent_at = parts.session().view().transcript_length();
        let ask = TurnAsk {
            prompt: self.prompt.clone(),
            settings: self.spec.settings.clone(),
            claude: self.spec.claude.clone(),
        };
        parts.session().turn(ask, cancel.clone());
        Wait::Session
    }

    pub fn wake(&mut self, parts: &mut Parts, wake: Wake, cancel: &Cancel) -> Progress {
        let stage = std::mem::replace(&mut self.stage, Stage::Attempt);
        match (stage, wake) {
            (Stage::Attempt, Wake::Session(Done::Turn(report))) => {
                self.attempted(parts, report, cancel)
            }
            (Stage::Pausing, Wake::Timer) => {
                parts.tally().set_rate_limited_until(None);
                Progress::Wait(self.attempt(parts, cancel))
            }
            (Stage::Pausing, Wake::Cancelled) => {
                parts.tally().set_rate_limited_until(None);
                Progress::Ended(self.finish(parts, Ending::interrupted_waiting()))
            }
            (Stage::Retiring { report, handoff }, Wake::Session(Done::Retired(new))) => {
                let Some(new) = new else {
                    let ending = turn_policy::ending(
                        &self.course,
                        &self.rules,
                        &report,
                        cancel.is_cancelled(),
                    );
                    return Progress::Ended(self.finish(parts, ending));
                };
                self.course.handed_off = true;
                parts.fault(
                    Fault::HandOff,
                    format!("the conversation was full; continued in a new one: {new}"),
                );
                self.prompt = format!("{handoff}\n\n{}", self.spec.prompt);
                Progress::Wait(self.attempt(parts, cancel))
            }
            (Stage::Abandoning(ending), Wake::Session(Done::Retired(_))) => {
                Progress::Ended(self.finish(parts, ending))
            }
            (_, wake) => {
                let ending = Ending {
                    status: crate::turn::TurnStatus::Error,
                    message: Some(format!(
                        "leash lost its place in the turn (woken by {wake:?})"
                    )),
                    result: None,
                    api_error_status: None,
                };
                Progress::Ended(self.finish(parts, ending))
            }
        }
    }

    /// An attempt ended: the policy says what comes next.
    fn attempted(
        &mut self,
        parts: &mut Parts,
        report: Box<TurnReport>,
        cancel: &Cancel,
    ) -> Progress {
        if let Some(cost) = report.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += cost;
        }
        let cancelled = cancel.is_cancelled();
        let max = self.rules.max_retries;
        match turn_policy::next(&mut self.course, &self.rules, &report, cancelled, now_ms()) {
            Next::Backoff { attempt } => {
                let delay = Duration::from_millis(self.spec.retry.delay_ms(attempt));
                let text = match &report.end {
                    TurnEnd::Failed(failure) => failure.text.as_deref().unwrap_or("no details"),
                    _ => "no details",
                };
                parts.fault(
                    Fault::ProviderError,
                    format!(
                        "provider error ({text}); retrying in {} (retry {} of {max})",
                        human(delay),
                        self.course.retries
                    ),
                );
                self.pause(delay)
            }
            Next::UntilReset { delay, limit } => {
                parts.fault(Fault::ProviderError, format!(
                    "{}; waiting {} until it resets before sending the turn again (retry {} of {max})",
                    limit.describe(),
                    human(delay),
                    self.course.retries
                ));
                parts.tally().set_rate_limited_until(limit.resets_at);
                self.pause(delay)
            }
            Next::HandOff => {
                let handoff = handoff_text(parts, self.spec.kind);
                parts.session().retire();
                self.stage = Stage::Retiring { report, handoff };
                Progress::Wait(Wait::Session)
            }
            Next::Resend => {
                parts.warn(
                    "claude compacted the conversation and dropped the prompt (claude before 2.1.153 does); sending it again"
                        .to_string(),
                );
                Progress::Wait(self.attempt(parts, cancel))
            }
            Next::Continue { hung } => {
                let what = match (&report.end, hung) {
                    (TurnEnd::Exited(how), false) => format!(
                        "claude exited during the turn ({how}); restarting it with --resume and"
                    ),
                    _ => "claude hung and was restarted;".to_string(),
                };
                let cwd = parts.session().view().cwd();
                if let Some(removed) = cwd.and_then(|cwd| clear_index_lock_of_dead_git(&cwd)) {
                    parts.info(removed);
                }
                // The rule of a cut-off turn: continued if claude had the prompt, else
                // the prompt is sent again.
                if parts
                    .session()
                    .view()
                    .holds_prompt(&self.prompt, self.sent_at)
                {
                    parts.fault(Fault::Crash, format!("{what} telling it to continue"));
                    self.prompt = CONTINUE_AFTER_RESTART.to_string();
                } else {
                    parts.fault(
                        Fault::Crash,
                        format!("{what} sending the prompt again (claude never answered it)"),
                    );
                }
                Progress::Wait(self.attempt(parts, cancel))
            }
            Next::Finish(ending) => Progress::Ended(self.finish(parts, ending)),
            Next::Abandon(ending) => {
                parts.tally().forget_latest_prompt();
                parts.warn(
                    "the prompt alone does not fit a conversation; the one that holds it is left for a new one"
                        .to_string(),
                );
                parts.session().retire();
                self.stage = Stage::Abandoning(ending);
                Progress::Wait(Wait::Session)
            }
        }
    }

    fn pause(&mut self, delay: Duration) -> Progress {
        self.stage = Stage::Pausing;
        Progress::Wait(Wait::Until(Instant::now() + delay))
    }

    /// The turn's end: its questions are over, it is counted, and its clients told.
    fn finish(&mut self, parts: &mut Parts, ending: Ending) -> Outcome {
        let base = parts.outcome(self.id, ending.status, self.course.retries);
        let outcome = Outcome {
            message: ending.message,
            result: ending.result,
            api_error_status: ending.api_error_status,
            cost_usd: self.cost_usd,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..base
        };
        parts.turn_ended(outcome.clone());
        outcome
    }
}

/// The first message of the conversation that takes over from a full one: the
/// worker's task and state for a worker's turn, and the latest prompts.
fn handoff_text(parts: &mut Parts, kind: TurnKind) -> String {
    let recent = parts.tally().earlier_prompts();
    if matches!(kind, TurnKind::User | TurnKind::Compact) {
        return handoff_prompt(&Handoff {
            recent_prompts: &recent,
            ..Handoff::default()
        });
    }
    let cwd = parts.session().view().cwd();
    parts.worker().handoff(cwd.as_deref(), &recent)
}

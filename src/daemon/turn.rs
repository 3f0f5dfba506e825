//! Running one turn: the session runs it; leash re-sends it after provider errors
//! (with backoff), hands a full conversation off to a new one, restarts a claude that
//! died mid-step and tells it to continue; how it ended becomes its [`Outcome`].

use std::time::Duration;

use tokio::time::Instant;

use super::actor::Actor;
use crate::claude::context::CompactionNews;
use crate::claude::limits::RateLimit;
use crate::claude::messages::ResultMessage;
use crate::claude::session::{TurnAsk, TurnEnd};
use crate::error::ErrorKind;
use crate::git;
use crate::human::duration as human;
use crate::time::now_ms;
use crate::turn::{Outcome, TurnKind, TurnSpec, TurnStatus};
use crate::worker::prompts::{CONTINUE_AFTER_RESTART, Handoff, handoff_prompt};

/// What happened to a turn on its way, for judging how it ended.
#[derive(Default)]
struct Course {
    retries: u32,
    /// The conversation was full and the turn went on in a new one.
    handed_off: bool,
    /// claude died or hung during the turn and was restarted to continue it.
    restarts: u32,
    /// The prompt was sent again because claude's own compaction dropped it.
    resent: bool,
    /// The provider refused the turn for a rate limit that resets later than leash
    /// may wait.
    refused_until: Option<RateLimit>,
}

/// How long to wait before sending a turn the provider refused again.
enum Backoff {
    /// leash's own backoff.
    Generic(Duration),
    /// Until the rate limit claude reported during the attempt resets.
    UntilReset { delay: Duration, limit: RateLimit },
    /// The rate limit resets later than `provider_max_wait`.
    BeyondBound(RateLimit),
}

/// A rate limit's reset is in whole seconds: the turn goes again a little after it.
const AFTER_RESET: Duration = Duration::from_secs(1);

impl Actor {
    /// Runs one turn to its end and returns its outcome (also sent as `turn_ended`).
    /// A worker step's turn leaves the step running (`finishes` false).
    pub(super) async fn run_turn(&mut self, id: u64, spec: &TurnSpec, finishes: bool) -> Outcome {
        let started = Instant::now();
        self.hub
            .begin_turn(id, spec.kind, &spec.prompt, spec.interactive);
        if let Some(claude) = &spec.claude {
            self.claude.use_binary(claude.clone(), &mut self.hub);
        }
        let mut prompt = spec.prompt.clone();
        let mut course = Course::default();
        let outcome = loop {
            let attempt_started = now_ms();
            let ask = TurnAsk {
                prompt: &prompt,
                model: spec.model.as_deref(),
                permission_mode: spec.permission_mode.as_deref(),
            };
            let end = self.claude.turn(&ask, &mut self.hub).await;
            let cancelled = self.hub.interrupted();
            match &end {
                TurnEnd::Result(result)
                    if result.is_provider_error()
                        && course.retries < spec.retry.max_retries
                        && !cancelled =>
                {
                    let (delay, until) = match self.backoff(result, attempt_started, spec, &course)
                    {
                        Backoff::Generic(delay) => (delay, None),
                        Backoff::UntilReset { delay, limit } => (delay, Some(limit)),
                        Backoff::BeyondBound(limit) => {
                            course.refused_until = Some(limit);
                            break self.judge(id, end, &course, spec.kind);
                        }
                    };
                    course.retries += 1;
                    let retry = format!("retry {} of {}", course.retries, spec.retry.max_retries);
                    let reset_at = until.as_ref().and_then(|l| l.resets_at);
                    self.hub.warn(match &until {
                        Some(limit) => format!(
                            "{}; waiting {} until it resets before sending the turn again ({retry})",
                            limit.describe(),
                            human(delay)
                        ),
                        None => format!(
                            "provider error ({}); retrying in {} ({retry})",
                            result.result.as_deref().unwrap_or("no details"),
                            human(delay)
                        ),
                    });
                    self.hub.set_rate_limited_until(reset_at);
                    let interrupted = self.claude.pause(delay, &mut self.hub).await;
                    self.hub.set_rate_limited_until(None);
                    if interrupted {
                        break Outcome {
                            message: Some("interrupted while waiting to retry".to_string()),
                            ..self
                                .hub
                                .outcome(id, TurnStatus::Interrupted, course.retries)
                        };
                    }
                }
                TurnEnd::Result(result)
                    if result.is_overflow() && !course.handed_off && !cancelled =>
                {
                    let handoff = self.handoff(spec.kind);
                    let Some(new) = self.claude.retire_conversation(&mut self.hub).await else {
                        break self.judge(id, end, &course, spec.kind);
                    };
                    course.handed_off = true;
                    self.hub.warn(format!(
                        "the conversation was full; continued in a new one: {new}"
                    ));
                    prompt = format!("{handoff}\n\n{}", spec.prompt);
                }
                TurnEnd::Result(result)
                    if !result.is_error
                        && spec.kind != TurnKind::Compact
                        && self.claude.dropped_prompt()
                        && !course.resent
                        && !cancelled =>
                {
                    course.resent = true;
                    self.hub.warn(
                        "claude compacted the conversation and dropped the prompt (claude before 2.1.153 does); sending it again"
                            .to_string(),
                    );
                }
                TurnEnd::Exited(_) | TurnEnd::Silent
                    if spec.continue_on_crash
                        && !cancelled
                        && course.restarts < self.restart_limit =>
                {
                    course.restarts += 1;
                    let what = match &end {
                        TurnEnd::Exited(how) => format!(
                            "claude exited during the turn ({how}); restarting it with --resume and"
                        ),
                        _ => "claude hung and was restarted;".to_string(),
                    };
                    self.hub.warn(format!("{what} telling it to continue"));
                    prompt = CONTINUE_AFTER_RESTART.to_string();
                }
                _ => break self.judge(id, end, &course, spec.kind),
            }
        };
        let outcome = Outcome {
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..outcome
        };
        self.hub.end_turn(id, outcome.clone(), finishes);
        outcome
    }

    /// A refusal that claude tied to a rate limit (a 429 and a `rejected` rate limit
    /// reported during the attempt) waits until the limit resets, within the bound;
    /// anything else backs off as usual.
    fn backoff(
        &self,
        result: &ResultMessage,
        attempt_started: u64,
        spec: &TurnSpec,
        course: &Course,
    ) -> Backoff {
        let generic = Backoff::Generic(Duration::from_millis(spec.retry.delay_ms(course.retries)));
        let now = now_ms();
        let limit = self.claude.rate_limit().filter(|limit| {
            limit.rejected()
                && limit.ts >= attempt_started
                && matches!(result.api_error_status, Some(429) | None)
        });
        let Some((limit, reset)) = limit.and_then(|l| Some((l, l.resets_at.filter(|r| *r > now)?)))
        else {
            return generic;
        };
        let delay = Duration::from_millis(reset - now) + AFTER_RESET;
        if delay > Duration::from_millis(spec.retry.max_wait_ms) {
            return Backoff::BeyondBound(limit.clone());
        }
        Backoff::UntilReset {
            delay,
            limit: limit.clone(),
        }
    }

    /// The first message of the conversation that takes over from a full one: the
    /// worker's task and state for a worker's turn, and the latest prompts.
    fn handoff(&mut self, kind: TurnKind) -> String {
        let recent = self.hub.earlier_prompts();
        let cwd = self.claude.conversation().map(|c| c.cwd.clone());
        let state = self.hub.worker().clone();
        let worker_turn = !matches!(kind, TurnKind::User | TurnKind::Compact);
        if !worker_turn || state.task.is_none() {
            return handoff_prompt(&Handoff {
                recent_prompts: &recent,
                ..Handoff::default()
            });
        }
        let (commits, uncommitted) = match &cwd {
            Some(cwd) => (
                git::head(cwd)
                    .ok()
                    .flatten()
                    .and_then(|head| {
                        git::commits_between(cwd, state.head_at_start.as_deref(), &head).ok()
                    })
                    .unwrap_or_default(),
                git::changes(cwd).unwrap_or_default(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        handoff_prompt(&Handoff {
            task: state.task.as_deref(),
            plan: state.plan.as_deref(),
            phase: Some(state.phase.to_string()),
            last_verdict: state.last.as_ref().map(|j| j.message.as_str()),
            nudges: Some((state.nudges, state.max_nudges)),
            head_at_start: state.head_at_start.as_deref(),
            commits: &commits,
            uncommitted: &uncommitted,
            recent_prompts: &recent,
        })
    }

    /// Turns how an attempt ended into the turn's outcome.
    fn judge(&mut self, id: u64, end: TurnEnd, course: &Course, kind: TurnKind) -> Outcome {
        let compaction = self.claude.take_turn_compaction();
        let cost_usd = self.claude.take_cost();
        let outcome = self.ending(id, end, course, kind, compaction);
        Outcome {
            cost_usd,
            ..outcome
        }
    }

    fn ending(
        &self,
        id: u64,
        end: TurnEnd,
        course: &Course,
        kind: TurnKind,
        compaction: Option<CompactionNews>,
    ) -> Outcome {
        let base = |status| self.hub.outcome(id, status, course.retries);
        match end {
            TurnEnd::Result(result) if kind == TurnKind::Compact => {
                self.compacted(result, compaction, base(TurnStatus::Success))
            }
            TurnEnd::Result(result) => {
                let status = if !result.is_error {
                    TurnStatus::Success
                } else if result.is_interrupted() || self.hub.interrupted() {
                    TurnStatus::Interrupted
                } else if result.is_provider_error() {
                    TurnStatus::ProviderError
                } else {
                    TurnStatus::Error
                };
                let text = result.result.as_deref().unwrap_or("no details");
                let message = match status {
                    TurnStatus::Success => None,
                    TurnStatus::Interrupted => Some("the turn was interrupted".to_string()),
                    TurnStatus::ProviderError if course.refused_until.is_some() => {
                        course.refused_until.as_ref().map(|limit| {
                            let resets = limit.resets_at.unwrap_or_default();
                            format!(
                                "{}, in {}: later than provider_max_wait lets leash wait; {text}",
                                limit.describe(),
                                human(Duration::from_millis(resets.saturating_sub(now_ms())))
                            )
                        })
                    }
                    // claude reports these with subtype "success": name the HTTP status.
                    TurnStatus::ProviderError => Some(format!(
                        "the API failed{}: {text}",
                        result
                            .api_error_status
                            .map(|s| format!(" with HTTP {s}"))
                            .unwrap_or_default(),
                    )),
                    _ if result.is_overflow() && course.handed_off => Some(format!(
                        "the conversation was full, and so is a new one: the prompt alone does not fit ({}): {text}",
                        result.error_reason()
                    )),
                    _ if result.is_overflow() => Some(format!(
                        "the conversation is full ({}): {text}",
                        result.error_reason()
                    )),
                    _ => Some(format!(
                        "claude ended the turn with an error ({}): {text}",
                        result.error_reason()
                    )),
                };
                Outcome {
                    result: result.result.clone(),
                    message,
                    api_error_status: result.api_error_status,
                    ..base(status)
                }
            }
            TurnEnd::Exited(how) => Outcome {
                message: Some(format!(
                    "claude exited during the turn ({how}); the next turn restarts it with --resume"
                )),
                ..base(TurnStatus::Crashed)
            },
            TurnEnd::Silent => Outcome {
                message: Some(format!(
                    "claude went silent for {} and the turn was stopped; the next turn goes on in the same conversation",
                    human(self.silence_timeout)
                )),
                ..base(TurnStatus::Hung)
            },
            TurnEnd::Killed => Outcome {
                message: Some("the turn was interrupted (claude had to be restarted)".to_string()),
                ..base(TurnStatus::Interrupted)
            },
            TurnEnd::NotStarted(e) => Outcome {
                message: Some(e.message),
                ..base(if e.kind == ErrorKind::Interrupted {
                    TurnStatus::Interrupted
                } else {
                    TurnStatus::Crashed
                })
            },
            TurnEnd::Cancelled => Outcome {
                message: Some("interrupted before claude received the turn".to_string()),
                ..base(TurnStatus::Interrupted)
            },
        }
    }

    /// A compaction turn succeeded when claude drew the compact boundary; its result
    /// says nothing (and says `success` even when compaction failed).
    fn compacted(
        &self,
        result: ResultMessage,
        compaction: Option<CompactionNews>,
        base: Outcome,
    ) -> Outcome {
        let failed = |message: String| Outcome {
            status: TurnStatus::Error,
            exit_code: TurnStatus::Error.exit_code(),
            message: Some(message),
            result: result.result.clone(),
            ..base.clone()
        };
        match compaction {
            Some(CompactionNews::Done(c)) => Outcome {
                result: Some(c.describe()),
                ..base.clone()
            },
            Some(CompactionNews::Failed(reason)) => failed(format!("compaction failed: {reason}")),
            _ if result.is_error => failed(format!(
                "compaction failed ({}): {}",
                result.error_reason(),
                result.result.as_deref().unwrap_or("no details")
            )),
            _ => failed(format!(
                "claude did not compact the conversation: {}",
                result.result.as_deref().unwrap_or("it said nothing")
            )),
        }
    }
}

//! Running one turn: the session runs it, leash re-sends it after provider errors
//! (with backoff), and how it ended becomes its [`Outcome`].

use std::time::Duration;

use tokio::time::Instant;

use super::actor::Actor;
use crate::claude::session::{TurnAsk, TurnEnd};
use crate::error::ErrorKind;
use crate::time::human;
use crate::turn::{Outcome, TurnSpec, TurnStatus};

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
        let ask = TurnAsk {
            prompt: &spec.prompt,
            model: spec.model.as_deref(),
            permission_mode: spec.permission_mode.as_deref(),
        };
        let mut retries = 0;
        let outcome = loop {
            let end = self.claude.turn(&ask, &mut self.hub).await;
            if let TurnEnd::Result(result) = &end
                && result.is_provider_error()
                && retries < spec.retry.max_retries
                && !self.hub.interrupted()
            {
                let delay = Duration::from_millis(spec.retry.delay_ms(retries));
                retries += 1;
                self.hub.warn(format!(
                    "provider error ({}); retrying in {} (retry {retries} of {})",
                    result.result.as_deref().unwrap_or("no details"),
                    human(delay),
                    spec.retry.max_retries
                ));
                if self.claude.pause(delay, &mut self.hub).await {
                    break Outcome {
                        message: Some("interrupted while waiting to retry".to_string()),
                        ..self.hub.outcome(id, TurnStatus::Interrupted, retries)
                    };
                }
                continue;
            }
            break self.judge(id, end, retries);
        };
        let outcome = Outcome {
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..outcome
        };
        self.hub.end_turn(id, outcome.clone(), finishes);
        outcome
    }

    /// Turns how an attempt ended into the turn's outcome.
    fn judge(&self, id: u64, end: TurnEnd, retries: u32) -> Outcome {
        let base = |status| self.hub.outcome(id, status, retries);
        match end {
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
                let message = match status {
                    TurnStatus::Success => None,
                    TurnStatus::Interrupted => Some("the turn was interrupted".to_string()),
                    // claude reports these with subtype "success": name the HTTP status.
                    TurnStatus::ProviderError => Some(format!(
                        "the API failed{}: {}",
                        result
                            .api_error_status
                            .map(|s| format!(" with HTTP {s}"))
                            .unwrap_or_default(),
                        result.result.as_deref().unwrap_or("no details")
                    )),
                    _ => Some(format!(
                        "claude reported an error ({}): {}",
                        result.subtype,
                        result.result.as_deref().unwrap_or("no details")
                    )),
                };
                Outcome {
                    result: result.result.clone(),
                    message,
                    cost_usd: result.total_cost_usd,
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
            TurnEnd::Killed { hung: true } => Outcome {
                message: Some(format!(
                    "claude went silent for {} and was restarted; the next turn resumes the conversation",
                    human(self.silence_timeout)
                )),
                ..base(TurnStatus::Hung)
            },
            TurnEnd::Killed { hung: false } => Outcome {
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
}

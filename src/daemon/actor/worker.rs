//! Worker steps in the daemon: plan, implement, nudge. Each runs at most one turn in the
//! worker's conversation, judges the work from git, updates the persisted phase, and
//! ends with one `judged` event.

use super::*;
use crate::git::{self, CommitInfo};
use crate::protocol::{TurnKind, WorkerStep};
use crate::worker::prompts::{NudgeContext, implement_prompt, nudge_prompt, plan_prompt};
use crate::worker::{Judgement, Phase, Step, WorkerConfig, blocked_reason, judge_work};

pub(super) fn step_of(step: &WorkerStep) -> Step {
    match step {
        WorkerStep::Plan { .. } => Step::Plan,
        WorkerStep::Implement { .. } => Step::Implement,
        WorkerStep::Nudge { .. } => Step::Nudge,
    }
}

/// What a merged nudge carries at most: hooks firing all day must not grow it without
/// bound, and the latest words matter most.
const MAX_MERGED: usize = 10;

/// Adds what is new to a pending nudge's list, keeping the latest [`MAX_MERGED`].
fn merge_into(pending: &mut Vec<String>, new: &[String]) {
    for item in new {
        if !pending.contains(item) {
            pending.push(item.clone());
        }
    }
    let excess = pending.len().saturating_sub(MAX_MERGED);
    pending.drain(..excess);
}

/// How a step runs: the client's settings, and whether a person is there to answer
/// claude's tool requests.
struct StepSettings {
    config: WorkerConfig,
    interactive: bool,
}

impl StepSettings {
    /// A step's turn: planning on the planning model, read-only; everything else on the
    /// implementation model and permission mode.
    fn turn(&self, kind: TurnKind, prompt: String) -> TurnSpec {
        let config = &self.config;
        let (model, mode) = match kind {
            TurnKind::Plan => (&config.plan_model, &config.plan_permission_mode),
            _ => (&config.implement_model, &config.implement_permission_mode),
        };
        TurnSpec {
            prompt,
            kind,
            model: Some(model.clone()),
            permission_mode: Some(mode.clone()),
            interactive: self.interactive,
            retry: config.retry,
        }
    }
}

/// The verdict for a turn that did not complete, if it did not.
fn turn_failure(outcome: &Outcome) -> Option<Verdict> {
    match outcome.status {
        TurnStatus::Success => None,
        TurnStatus::ProviderError => Some(Verdict::ProviderError),
        TurnStatus::Interrupted => Some(Verdict::Interrupted),
        TurnStatus::Error | TurnStatus::Crashed | TurnStatus::Hung => Some(Verdict::TurnFailed),
    }
}

impl Actor {
    /// Queues a step. A nudge while another nudge waits is merged into it: at most one
    /// pending nudge per worker, however many hooks fire.
    pub(super) fn submit_worker_step(
        &mut self,
        request: WorkerRequest,
        feed: Option<Feed>,
    ) -> Result<(u64, usize), Error> {
        self.accepting()?;
        let running = usize::from(self.current_turn.is_some());
        if let WorkerStep::Nudge { reasons, events } = &request.step {
            let pending = self
                .jobs
                .iter_mut()
                .enumerate()
                .find_map(|(at, job)| match job {
                    Job::Worker {
                        id,
                        request:
                            WorkerRequest {
                                step:
                                    WorkerStep::Nudge {
                                        reasons: r,
                                        events: e,
                                    },
                                ..
                            },
                    } => Some((at, *id, r, e)),
                    _ => None,
                });
            if let Some((at, id, pending_reasons, pending_events)) = pending {
                merge_into(pending_reasons, reasons);
                merge_into(pending_events, events);
                self.subscribe_step(id, feed);
                return Ok((id, at + running));
            }
        }
        let id = self.next_job_id();
        let ahead = self.queued_turns() + running;
        self.subscribe_step(id, feed);
        self.jobs.push_back(Job::Worker { id, request });
        Ok((id, ahead))
    }

    fn subscribe_step(&mut self, id: u64, feed: Option<Feed>) {
        if let Some(feed) = feed {
            self.subscribers.push(Subscriber {
                turn: Some(id),
                until: Until::Judged,
                feed,
            });
        }
    }

    pub(super) async fn run_worker_step(&mut self, id: u64, request: WorkerRequest) {
        self.current_turn = Some(id);
        self.interrupt_requested = false;
        let step = step_of(&request.step);
        let how = StepSettings {
            config: request.config,
            interactive: request.interactive,
        };
        let result = match request.step {
            WorkerStep::Plan { task } => self.plan(id, task, &how).await,
            WorkerStep::Implement { restart } => self.implement(id, restart, &how).await,
            WorkerStep::Nudge { reasons, events } => self.nudge(id, reasons, events, &how).await,
        };
        let judgement = result.unwrap_or_else(|e| Judgement {
            exit_code: e.exit_code(),
            ..self.judgement(step, Verdict::TurnFailed, e.message)
        });
        self.current_turn = None;
        self.interrupt_requested = false;
        self.end_step(id, judgement);
    }

    async fn plan(
        &mut self,
        id: u64,
        task: String,
        how: &StepSettings,
    ) -> Result<Judgement, Error> {
        self.worker.begin_plan(task.clone());
        self.save_worker();
        let outcome = self
            .run_turn(id, how.turn(TurnKind::Plan, plan_prompt(&task)))
            .await;
        if let Some(verdict) = turn_failure(&outcome) {
            return Ok(self.failed_turn(Step::Plan, verdict, &outcome));
        }
        let plan = outcome.result.unwrap_or_default();
        if let Some(reason) = blocked_reason(&plan) {
            self.worker.phase = Phase::Blocked;
            return Ok(Judgement {
                blocked_reason: Some(reason.clone()),
                ..self.judgement(
                    Step::Plan,
                    Verdict::Blocked,
                    format!("the agent is blocked: {reason}"),
                )
            });
        }
        self.worker.plan = Some(plan);
        self.worker.phase = Phase::Planned;
        Ok(self.judgement(Step::Plan, Verdict::Planned, "planned".to_string()))
    }

    async fn implement(
        &mut self,
        id: u64,
        restart: bool,
        how: &StepSettings,
    ) -> Result<Judgement, Error> {
        let cwd = self.repository()?;
        let under_way = matches!(
            self.worker.phase,
            Phase::Implementing | Phase::Done | Phase::Blocked | Phase::OutOfNudges
        );
        if under_way && self.worker.implement_sent && !restart {
            // The phase is under way: judge it again, do not send the prompt twice.
            return self.judge_implementation(Step::Implement, None);
        }
        // An implementation turn that failed (provider, crash) is sent again in the same
        // phase; anything else begins the phase at the current HEAD.
        let resend = self.worker.phase == Phase::Implementing && !self.worker.implement_sent;
        if restart || !resend {
            self.worker
                .begin_implement(git::head(&cwd)?, how.config.max_nudges);
            self.save_worker();
        }
        self.ensure_tools(&how.config).await;
        let prompt = implement_prompt(self.worker.task.as_deref(), self.worker.plan.is_some());
        let outcome = self
            .run_turn(id, how.turn(TurnKind::Implement, prompt))
            .await;
        if let Some(verdict) = turn_failure(&outcome) {
            return Ok(self.failed_turn(Step::Implement, verdict, &outcome));
        }
        self.worker.implement_sent = true;
        self.judge_implementation(Step::Implement, outcome.result.as_deref())
    }

    async fn nudge(
        &mut self,
        id: u64,
        reasons: Vec<String>,
        events: Vec<String>,
        how: &StepSettings,
    ) -> Result<Judgement, Error> {
        match self.worker.phase {
            Phase::Implementing => {}
            // A person answering the blocker: the nudge carries the answer.
            Phase::Blocked if !reasons.is_empty() => {}
            Phase::Blocked => {
                let reason = self.last_blocked_reason();
                return Ok(Judgement {
                    blocked_reason: Some(reason.clone()),
                    ..self.judgement(
                        Step::Nudge,
                        Verdict::Blocked,
                        format!("the agent is blocked ({reason}); answer it with `leash nudge --reason ...`"),
                    )
                });
            }
            Phase::OutOfNudges => {
                let max = self.worker.max_nudges;
                return Ok(self.judgement(
                    Step::Nudge,
                    Verdict::OutOfNudges,
                    format!("no nudges left ({max} used); `leash implement --restart` starts the phase over"),
                ));
            }
            phase => {
                return Ok(self.judgement(
                    Step::Nudge,
                    Verdict::NothingToDo,
                    format!("nothing to nudge: the worker is {phase}"),
                ));
            }
        }
        let cwd = self.repository()?;
        self.observe_head(id);
        let blocked = self.worker.phase == Phase::Blocked;
        let before = self.judge_implementation(Step::Nudge, None)?;
        if before.verdict == Verdict::Committed {
            return Ok(Judgement {
                message: format!("no nudge needed: {}", before.message),
                ..before
            });
        }
        if before.verdict == Verdict::OutOfNudges {
            return Ok(before);
        }
        if blocked {
            self.worker.phase = Phase::Implementing;
        }
        let used = self.worker.nudges;
        let since_last = self
            .worker
            .last_nudge_ms
            .map_or(u64::MAX, |at| now_ms().saturating_sub(at));
        let wait = how.config.nudge_delay_ms(used).saturating_sub(since_last);
        if wait > 0 {
            self.notice(
                Some(id),
                format!(
                    "waiting {} before nudge {} (backoff)",
                    human(Duration::from_millis(wait)),
                    used + 1
                ),
            );
            if self.pause(Duration::from_millis(wait)).await {
                return Ok(self.judgement(
                    Step::Nudge,
                    Verdict::Interrupted,
                    "interrupted while waiting to nudge".to_string(),
                ));
            }
        }
        // Look again: the wait may have changed things.
        self.observe_head(id);
        let changes = git::changes(&cwd)?;
        let foreign: Vec<CommitInfo> = std::mem::take(&mut self.worker.foreign_commits);
        let prompt = nudge_prompt(&NudgeContext {
            verdict: if changes.is_empty() {
                Verdict::NoChanges
            } else {
                Verdict::Uncommitted
            },
            changes: &changes,
            reason: (!reasons.is_empty()).then(|| reasons.join("\n")).as_deref(),
            events: &events,
            foreign_commits: &foreign,
            number: used + 1,
            max: self.worker.max_nudges,
        });
        self.ensure_tools(&how.config).await;
        let outcome = self.run_turn(id, how.turn(TurnKind::Nudge, prompt)).await;
        // A provider that fails the turn is not the agent stalling: no nudge is spent.
        if outcome.status != TurnStatus::ProviderError {
            self.worker.nudges += 1;
        }
        self.worker.last_nudge_ms = Some(now_ms());
        if let Some(verdict) = turn_failure(&outcome) {
            return Ok(self.failed_turn(Step::Nudge, verdict, &outcome));
        }
        let judged = self.judge_implementation(Step::Nudge, outcome.result.as_deref())?;
        // The nudge went out: that is what this command reports with its exit code.
        Ok(Judgement {
            exit_code: 0,
            message: format!(
                "nudge {} of {} sent; {}",
                used + 1,
                self.worker.max_nudges,
                judged.message
            ),
            ..judged
        })
    }

    /// Judges the implement phase from git and the agent's last words, and moves the
    /// phase accordingly. `result` is `None` when no turn ran (a re-judge).
    fn judge_implementation(
        &mut self,
        step: Step,
        result: Option<&str>,
    ) -> Result<Judgement, Error> {
        let cwd = self.repository()?;
        let own = self.own_commits(&cwd)?;
        let changes = git::changes(&cwd)?;
        let mut blocked = result.and_then(blocked_reason);
        if result.is_none() && self.worker.phase == Phase::Blocked {
            blocked = Some(self.last_blocked_reason());
        }
        let mut verdict = judge_work(&own, &changes, blocked.as_deref());
        if own.is_empty() && blocked.is_none() && self.worker.nudges >= self.worker.max_nudges {
            verdict = Verdict::OutOfNudges;
        }
        self.worker.phase = match verdict {
            Verdict::Committed => Phase::Done,
            Verdict::Blocked => Phase::Blocked,
            Verdict::OutOfNudges => Phase::OutOfNudges,
            _ => Phase::Implementing,
        };
        let files = || {
            let names: Vec<&str> = changes.iter().take(5).map(|c| c.path.as_str()).collect();
            let more = changes.len().saturating_sub(5);
            format!(
                "{}{}",
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        };
        let message = match verdict {
            Verdict::Committed => format!(
                "committed: {} new commit(s), latest {}",
                own.len(),
                own.first().map(CommitInfo::short).unwrap_or_default()
            ),
            Verdict::Uncommitted => format!(
                "not committed yet: {} changed file(s): {}",
                changes.len(),
                files()
            ),
            Verdict::NoChanges => "no changes at all since the implement phase began".to_string(),
            Verdict::Blocked => format!(
                "the agent is blocked: {}",
                blocked.clone().unwrap_or_default()
            ),
            _ => format!(
                "still not committed after {} nudge(s){}",
                self.worker.nudges,
                if changes.is_empty() {
                    String::new()
                } else {
                    format!("; changed: {}", files())
                }
            ),
        };
        Ok(Judgement {
            commits: own,
            uncommitted: changes,
            blocked_reason: blocked,
            ..self.judgement(step, verdict, message)
        })
    }

    fn failed_turn(&mut self, step: Step, verdict: Verdict, outcome: &Outcome) -> Judgement {
        let message = outcome
            .message
            .clone()
            .unwrap_or_else(|| format!("the turn ended {:?}", outcome.status));
        Judgement {
            exit_code: outcome.exit_code,
            ..self.judgement(step, verdict, message)
        }
    }

    pub(super) fn judgement(&self, step: Step, verdict: Verdict, message: String) -> Judgement {
        Judgement {
            step,
            verdict,
            exit_code: verdict.exit_code(),
            phase: self.worker.phase,
            message,
            nudges_used: self.worker.nudges,
            max_nudges: self.worker.max_nudges,
            commits: Vec::new(),
            uncommitted: Vec::new(),
            plan: self.worker.plan.clone(),
            blocked_reason: None,
        }
    }

    /// Records the step's judgement and tells its clients. Once the work is committed,
    /// nudges still waiting are dropped.
    pub(super) fn end_step(&mut self, id: u64, judgement: Judgement) {
        let done = judgement.phase == Phase::Done;
        self.worker.last = Some(judgement.clone());
        self.save_worker();
        self.emit(Some(id), |seq, ts| Event::<Value>::Judged {
            seq,
            ts,
            turn: id,
            judgement,
        });
        if !done {
            return;
        }
        let (nudges, rest): (VecDeque<Job>, VecDeque<Job>) =
            std::mem::take(&mut self.jobs).into_iter().partition(|job| {
                matches!(
                    job,
                    Job::Worker {
                        request: WorkerRequest {
                            step: WorkerStep::Nudge { .. },
                            ..
                        },
                        ..
                    }
                )
            });
        self.jobs = rest;
        for job in nudges {
            if let Job::Worker { id, .. } = job {
                let judgement = self.judgement(
                    Step::Nudge,
                    Verdict::NothingToDo,
                    "dropped: the work is already committed".to_string(),
                );
                self.end_step(id, judgement);
            }
        }
    }

    fn repository(&self) -> Result<PathBuf, Error> {
        let cwd = self.record.cwd.clone();
        if !git::is_repository(&cwd) {
            return Err(Error::usage(format!(
                "{} is not a git repository; the worker judges its work by commits",
                cwd.display()
            )));
        }
        Ok(cwd)
    }

    /// The worker's commits that are still in the history since the phase began.
    fn own_commits(&self, cwd: &std::path::Path) -> Result<Vec<CommitInfo>, Error> {
        let Some(head) = git::head(cwd)? else {
            return Ok(Vec::new());
        };
        Ok(
            git::commits_between(cwd, self.worker.head_at_start.as_deref(), &head)?
                .into_iter()
                .filter(|c| self.worker.own_commits.contains(&c.id))
                .collect(),
        )
    }

    fn last_blocked_reason(&self) -> String {
        self.worker
            .last
            .as_ref()
            .and_then(|j| j.blocked_reason.clone())
            .unwrap_or_else(|| "no reason given".to_string())
    }

    /// Looks at HEAD before a turn of the implement phase. A move since the last look
    /// is someone else's commit: remembered, and told to the agent in the next nudge.
    /// `None` when leash is not tracking commits (no implement phase, no repository).
    pub(super) fn observe_head(&mut self, turn: u64) -> Option<Option<String>> {
        if self.worker.phase != Phase::Implementing {
            return None;
        }
        let cwd = self.record.cwd.clone();
        let head = git::head(&cwd).ok()?;
        if head != self.worker.last_seen_head
            && let Some(now) = &head
        {
            let foreign: Vec<CommitInfo> =
                git::commits_between(&cwd, self.worker.last_seen_head.as_deref(), now)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| !self.worker.own_commits.contains(&c.id))
                    .collect();
            if !foreign.is_empty() {
                self.notice(
                    Some(turn),
                    format!(
                        "{} commit(s) by someone else since the last turn",
                        foreign.len()
                    ),
                );
                self.worker.foreign_commits.extend(foreign);
            }
            self.worker.last_seen_head = head.clone();
            self.save_worker();
        }
        Some(head)
    }

    /// After a turn: commits that appeared during it are the worker's own.
    pub(super) fn attribute_commits(&mut self, before: Option<Option<String>>) {
        let Some(before) = before else { return };
        let cwd = self.record.cwd.clone();
        let Ok(Some(after)) = git::head(&cwd) else {
            return;
        };
        if before.as_deref() == Some(after.as_str()) {
            return;
        }
        let made = git::commits_between(&cwd, before.as_deref(), &after).unwrap_or_default();
        self.worker
            .own_commits
            .extend(made.into_iter().map(|c| c.id));
        self.worker.last_seen_head = Some(after);
        self.save_worker();
    }

    /// The implementing turns need tools claude only takes at spawn: when they differ
    /// from the running claude's, restart it on the same conversation.
    async fn ensure_tools(&mut self, config: &WorkerConfig) {
        if self.record.allowed_tools == config.allowed_tools {
            return;
        }
        self.record.allowed_tools = config.allowed_tools.clone();
        self.save_record();
        if self.child.is_some() {
            self.notice(
                self.current_turn,
                format!(
                    "restarting claude to allow tools {:?} (same conversation)",
                    config.allowed_tools
                ),
            );
            self.shutdown_child().await;
        }
    }

    pub(super) fn save_worker(&mut self) {
        if let Err(e) = self.worker.save(&self.state_dir) {
            eprintln!("leash daemon: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_nudges_stay_bounded_and_keep_the_latest() {
        let mut pending = vec!["a".to_string()];
        merge_into(&mut pending, &["a".to_string(), "b".to_string()]);
        assert_eq!(pending, ["a", "b"]);
        let many: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
        merge_into(&mut pending, &many);
        assert_eq!(pending.len(), MAX_MERGED);
        assert_eq!(pending.last().unwrap(), "r24");
    }
}

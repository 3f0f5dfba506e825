//! Running a worker step: the pure machine in `worker::machine` decides, this carries
//! its actions out (looking at git, pausing, running turns in the conversation) and
//! feeds back what it saw, until the step's judgement.

use std::path::Path;

use super::actor::Actor;
use super::checks;
use crate::error::Error;
use crate::git;
use crate::protocol::WorkerRequest;
use crate::time::now_ms;
use crate::turn::{TurnKind, TurnSpec};
use crate::worker::machine::{Action, GitView, Seen, StepMachine, judgement};
use crate::worker::{Judgement, Verdict, WorkerConfig, WorkerState, WorkerStep};

/// How much of a diff a reviewer is shown.
const MAX_REVIEW_DIFF: usize = 64 * 1024;

impl Actor {
    pub(super) async fn run_step(&mut self, id: u64, request: WorkerRequest) {
        self.hub.begin(id);
        let WorkerRequest {
            step,
            config,
            interactive,
            claude,
            task_id,
            ..
        } = request;
        if let Some(claude) = claude {
            self.claude.use_binary(claude, &mut self.hub);
        }
        if let Err(e) = self.ready_for(&step) {
            let judgement = Judgement {
                exit_code: e.exit_code(),
                ..judgement(
                    self.hub.worker(),
                    step.step(),
                    Verdict::TurnFailed,
                    e.message,
                )
            };
            return self.end_step(id, judgement);
        }
        let mut machine = StepMachine::new(step, config.clone(), task_id)
            .with_context(self.hub.context_percent());
        let mut seen = Seen::Start;
        let judgement = loop {
            let action = machine.advance(self.hub.worker(), seen, now_ms());
            self.hub.save_worker();
            for note in machine.take_notes() {
                self.hub.worker_note(note);
            }
            seen = match action {
                Action::Finish(judgement) => break judgement,
                Action::Look => self.look(),
                Action::Pause { ms, why } => {
                    self.hub.info(why);
                    let delay = std::time::Duration::from_millis(ms);
                    if self.claude.pause(delay, &mut self.hub).await {
                        Seen::Interrupted
                    } else {
                        Seen::Waited
                    }
                }
                Action::Compact { instructions } => {
                    let spec = TurnSpec {
                        kind: TurnKind::Compact,
                        ..TurnSpec::user(format!("/compact {instructions}"))
                    };
                    Seen::Compacted(self.run_turn(id, &spec, false).await)
                }
                Action::Send { kind, prompt } => {
                    self.step_turn(id, kind, prompt, &config, interactive).await
                }
                Action::RunChecks {
                    commands,
                    timeout_ms,
                } => self.run_checks(&commands, timeout_ms).await,
                Action::Diff => self.diff(),
            };
        };
        self.end_step(id, judgement);
    }

    fn end_step(&mut self, id: u64, judgement: Judgement) {
        self.hub.end_step(id, judgement);
    }

    /// A step needs a work tree to judge commits in, and the worker's state: a new
    /// task replaces a damaged one, anything else reports it.
    fn ready_for(&mut self, step: &WorkerStep) -> Result<(), Error> {
        let cwd = self.cwd().ok_or_else(|| {
            Error::usage("this worker has no session yet")
                .hint("start one with `leash session start`")
        })?;
        git::work_tree(&cwd)?;
        if matches!(step, WorkerStep::Plan { .. }) {
            self.hub.replace_damaged_worker();
        }
        match self.hub.worker_damage() {
            Some(e) => Err(Error::setup(e.message.clone()).hint(
                "`leash loop --fresh --task ...` starts over (the damaged file is kept aside)",
            )),
            None => Ok(()),
        }
    }

    /// A step's turn: planning on the planning model, read-only; everything else on
    /// the implementation model and permission mode, with its tools.
    async fn step_turn(
        &mut self,
        id: u64,
        kind: TurnKind,
        prompt: String,
        config: &WorkerConfig,
        interactive: bool,
    ) -> Seen {
        let (model, mode) = match kind {
            TurnKind::Plan | TurnKind::Review => (&config.plan_model, &config.plan_permission_mode),
            _ => (&config.implement_model, &config.implement_permission_mode),
        };
        if !matches!(kind, TurnKind::Plan | TurnKind::Review) {
            self.claude
                .set_allowed_tools(&config.allowed_tools, &mut self.hub)
                .await;
        }
        let spec = TurnSpec {
            prompt,
            kind,
            model: Some(model.clone()),
            permission_mode: Some(mode.clone()),
            interactive,
            retry: config.retry,
            claude: None,
            continue_on_crash: true,
        };
        let cwd = self.cwd();
        let before = cwd.as_deref().and_then(|cwd| git::head(cwd).ok());
        let outcome = self.run_turn(id, &spec, false).await;
        let after = cwd.as_deref().and_then(|cwd| git::head(cwd).ok().flatten());
        let (made, foreign) = match (&cwd, &before, &after) {
            (Some(cwd), Some(before), Some(after)) if before.as_deref() != Some(after.as_str()) => {
                self.attribute(cwd, before.as_deref(), after)
            }
            _ => (Vec::new(), Vec::new()),
        };
        Seen::Turn {
            outcome,
            made,
            foreign,
            head: after,
        }
    }

    /// The commits that appeared during a turn: the worker's (its tools' commits
    /// carry its mark in HEAD's reflog) and anyone else's. Where the reflog is off,
    /// a commit made during the turn counts as the worker's, as before there was one.
    fn attribute(
        &self,
        cwd: &Path,
        before: Option<&str>,
        after: &str,
    ) -> (Vec<String>, Vec<crate::git::CommitInfo>) {
        let appeared = git::commits_between(cwd, before, after).unwrap_or_default();
        let worker = self.hub.worker_name();
        let made_by = git::made_by_worker(cwd, worker, &appeared)
            .unwrap_or_else(|_| vec![None; appeared.len()]);
        let mut made = Vec::new();
        let mut foreign = Vec::new();
        for (commit, by_worker) in appeared.into_iter().zip(made_by) {
            match by_worker {
                Some(false) => foreign.push(commit),
                Some(true) | None => made.push(commit.id),
            }
        }
        (made, foreign)
    }

    /// The checks, one after the other at the repository root, while the daemon goes on
    /// serving; an interrupt stops them (their process groups are killed).
    async fn run_checks(&mut self, commands: &[String], timeout_ms: u64) -> Seen {
        let root = match self.cwd().map(|cwd| git::work_tree(&cwd)) {
            Some(Ok(root)) => root,
            Some(Err(e)) => return Seen::GitFailed(e),
            None => return Seen::GitFailed(Error::internal("the worker lost its session")),
        };
        self.hub.info(format!(
            "running {} check(s) in {}",
            commands.len(),
            root.display()
        ));
        let timeout = std::time::Duration::from_millis(timeout_ms);
        let work = checks::run_all(commands, &root, timeout);
        match self.claude.serve_while(work, &mut self.hub).await {
            Some(results) => Seen::Checked(results),
            None => Seen::Interrupted,
        }
    }

    /// The change from the implement phase's start to HEAD, bounded, for a review.
    fn diff(&mut self) -> Seen {
        let Some(cwd) = self.cwd() else {
            return Seen::GitFailed(Error::internal("the worker lost its session"));
        };
        let state = self.hub.worker();
        let from = state.head_at_start.clone();
        let diff = git::head(&cwd).and_then(|head| match head {
            Some(head) => git::diff_between(&cwd, from.as_deref(), &head, MAX_REVIEW_DIFF),
            None => Ok(git::Diff::default()),
        });
        match diff {
            Ok(diff) => Seen::Diff(diff),
            Err(e) => Seen::GitFailed(e),
        }
    }

    /// The worker's repository as it is now, for the machine.
    fn look(&mut self) -> Seen {
        let Some(cwd) = self.cwd() else {
            return Seen::GitFailed(Error::internal("the worker lost its session"));
        };
        match git_view(&cwd, self.hub.worker()) {
            Ok(view) => Seen::Git(view),
            Err(e) => Seen::GitFailed(e),
        }
    }

    fn cwd(&self) -> Option<std::path::PathBuf> {
        self.claude.conversation().map(|c| c.cwd.clone())
    }
}

/// HEAD, the phase's commits, those since leash last looked, and the loose changes.
fn git_view(cwd: &Path, state: &WorkerState) -> Result<GitView, Error> {
    let head = git::head(cwd)?;
    let (commits, new_commits) = match &head {
        Some(head) => (
            git::commits_between(cwd, state.head_at_start.as_deref(), head)?,
            if state.last_seen_head.as_deref() == Some(head.as_str()) {
                Vec::new()
            } else {
                git::commits_between(cwd, state.last_seen_head.as_deref(), head).unwrap_or_default()
            },
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(GitView {
        head,
        commits,
        new_commits,
        changes: git::changes(cwd)?,
    })
}

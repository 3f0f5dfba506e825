//! A landing step: `leash land` hands the worker's branch back (it conflicts with the
//! target, or fails a landing check on it), gives a landing up, or has the worker take
//! the landed work in. A handed-back branch gets landing turns in the worker's own
//! conversation, each judged by the landing gate, capped by the nudges with their
//! backoff; a landing given up leaves the branch and worktree as they were before it.
//! Its own type: the step machine only hands it what was seen.

use super::*;
use crate::landing_git::{Adoption, Kept, LandView, Restored};
use crate::worker::land::LandOrder;
use crate::worker::prompts::{Hitch, LandingContext, landing_prompt};

/// What git must do for a landing in the worker's worktree; the daemon carries it out
/// with hooks off and answers [`Seen::Land`].
#[derive(Debug, Clone, PartialEq)]
pub enum LandGit {
    /// Keep the branch's tip before anything rewrites it (unless one is kept already),
    /// aborting a rebase or merge that no landing turn is running; answer
    /// [`LandSeen::Kept`].
    Keep { branch: String },
    /// The branch against the target's tip; answer [`LandSeen::Looked`].
    Look { branch: String, target_tip: String },
    /// The branch and worktree back to the kept tip, what the landing left kept aside;
    /// answer [`LandSeen::Restored`].
    Restore { branch: String },
    /// The branch moves from `expected_tip` to `branch_tip`, the worktree with it; the
    /// worker's commits began at `since`. Answer [`LandSeen::Adopted`].
    Adopt {
        branch: String,
        branch_tip: String,
        expected_tip: String,
        since: Option<String>,
    },
}

/// The answers to [`LandGit`].
#[derive(Debug, Clone)]
pub enum LandSeen {
    Kept(Kept),
    Looked(LandView),
    Restored(Restored),
    Adopted(Adoption),
}

/// The landing gate's word on a branch.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// It lands: the branch descends from the target's tip, on a clean worktree with
    /// no rebase or merge under way, and its landing checks passed.
    Pass,
    /// git says it lands; its landing checks must run on it first.
    Check,
    Fail(Hitch),
}

/// The landing gate, pure: `checks` are the landing checks' results on this tip
/// (`None` when they have not run), `has_checks` whether there are any.
pub fn landing_gate(view: &LandView, has_checks: bool, checks: Option<&[CheckResult]>) -> Gate {
    if let Some(what) = view.in_progress {
        return Gate::Fail(Hitch::InProgress {
            what,
            conflicted: view.conflicted.clone(),
        });
    }
    if !view.on_branch {
        return Gate::Fail(Hitch::OffBranch);
    }
    if !view.descends {
        return Gate::Fail(Hitch::NotOnTarget);
    }
    if !view.changes.is_empty() {
        return Gate::Fail(Hitch::Dirty(view.changes.clone()));
    }
    if !has_checks {
        return Gate::Pass;
    }
    match checks {
        None => Gate::Check,
        Some(results) => match results.iter().find(|c| !c.passed()) {
            Some(failed) => Gate::Fail(Hitch::CheckFailed(failed.clone())),
            None => Gate::Pass,
        },
    }
}

/// Where a landing step is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Landing {
    at: At,
    /// Landing turns sent for this hand-back (one a dead daemon cut off included).
    turns: u32,
    /// What the next landing turn is told.
    hitch: Option<Hitch>,
    /// The branch as the step last looked at it.
    view: Option<LandView>,
}

#[derive(Debug, Clone, PartialEq)]
enum At {
    Keeping,
    Looking,
    Checking,
    Waiting,
    Turn,
    /// Giving up, then finishing with this verdict and why.
    Restoring {
        verdict: Verdict,
        why: String,
    },
    Adopting,
}

impl Landing {
    fn at(at: At) -> Landing {
        Landing {
            at,
            turns: 0,
            hitch: None,
            view: None,
        }
    }

    /// Landing turn `number`, which a dead daemon cut off: the step goes on from it.
    pub(super) fn cut_off(number: u32) -> Landing {
        Landing {
            turns: number,
            ..Landing::at(At::Turn)
        }
    }

    /// The in-flight marker of the turn it waits for, if it waits for one.
    pub(super) fn marker(&self) -> Option<InFlight> {
        (self.at == At::Turn).then_some(InFlight::Land { number: self.turns })
    }
}

/// What a landing step reads: the worker's state, its configuration, the order.
pub(super) struct Ctx<'a> {
    pub state: &'a mut WorkerState,
    pub config: &'a WorkerConfig,
    pub order: &'a LandOrder,
    pub notes: &'a mut Vec<Note>,
}

type Next = (Stage, Action);

fn stage(landing: Landing) -> Stage {
    Stage::Land(Box::new(landing))
}

fn finish(ctx: &Ctx<'_>, verdict: Verdict, message: String) -> Next {
    (
        Stage::Over,
        Action::Finish(judgement(ctx.state, Step::Land, verdict, message)),
    )
}

/// The step begins with its order.
pub(super) fn begin(ctx: &mut Ctx<'_>) -> Next {
    let Some(branch) = ctx.config.gates.branch.clone() else {
        return finish(
            ctx,
            Verdict::NotLanded,
            "not a worktree worker: `leash land` lands the branch of a worker started with --worktree".to_string(),
        );
    };
    if let Some(odd) = not_a_commit_id(ctx.order) {
        let message = format!(
            "the landing order names {:?}, which is no commit id",
            crate::human::one_line(&crate::human::safe(odd), 60)
        );
        return finish(ctx, Verdict::NotLanded, message);
    }
    match ctx.order.clone() {
        // Only done work lands: the worker is not to be told to rebase work under way.
        LandOrder::Resolve { .. } if ctx.state.phase != Phase::Done => {
            let message = format!(
                "the task is not done (the worker is {}): only done work lands",
                ctx.state.phase
            );
            finish(ctx, Verdict::NotLanded, message)
        }
        LandOrder::Resolve { .. } => (
            stage(Landing::at(At::Keeping)),
            Action::Land(LandGit::Keep { branch }),
        ),
        LandOrder::Restore => (
            stage(Landing::at(At::Restoring {
                verdict: Verdict::NotLanded,
                why: "the landing was given up".to_string(),
            })),
            Action::Land(LandGit::Restore { branch }),
        ),
        LandOrder::Adopt {
            branch_tip,
            expected_tip,
            ..
        } => (
            stage(Landing::at(At::Adopting)),
            Action::Land(LandGit::Adopt {
                branch,
                branch_tip,
                expected_tip,
                since: ctx.state.run.head_at_start.clone(),
            }),
        ),
    }
}

/// The first of the order's commits that is not a full commit id: they go to git as
/// arguments, where a word beginning with `-` would be an option.
fn not_a_commit_id(order: &LandOrder) -> Option<&str> {
    let ids: Vec<&str> = match order {
        LandOrder::Resolve { target_tip, .. } => vec![target_tip],
        LandOrder::Adopt {
            landed,
            branch_tip,
            expected_tip,
            ..
        } => vec![landed, branch_tip, expected_tip],
        LandOrder::Restore => Vec::new(),
    };
    ids.into_iter()
        .find(|id| !matches!(id.len(), 40 | 64) || !id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The step goes on from what was seen; what it did not ask for is given back.
pub(super) fn next(mut landing: Landing, ctx: &mut Ctx<'_>, seen: Seen) -> Result<Next, Box<Seen>> {
    let branch = ctx.config.gates.branch.clone().unwrap_or_default();
    Ok(match (landing.at.clone(), seen) {
        (At::Keeping, Seen::Land(LandSeen::Kept(kept))) => {
            if !kept.dirty.is_empty() {
                let names: Vec<String> = kept.dirty.iter().map(ToString::to_string).collect();
                let message = format!(
                    "the worktree has uncommitted changes ({}): a landing begins on a clean one; nothing was touched",
                    crate::human::first_of(&names, 5)
                );
                return Ok(finish(ctx, Verdict::NotLanded, message));
            }
            if let Some(what) = kept.aborted {
                ctx.notes.push(Note::Info(format!(
                    "a {what} no landing turn was running was aborted"
                )));
            }
            look(landing, ctx)
        }
        (At::Looking, Seen::Land(LandSeen::Looked(view))) => {
            let commands = landing_checks(ctx.state);
            let gate = landing_gate(&view, !commands.is_empty(), None);
            landing.view = Some(view);
            match gate {
                Gate::Pass => landable(&landing, ctx, 0),
                Gate::Check => {
                    landing.at = At::Checking;
                    let timeout_ms = ctx.config.gates.check_timeout_ms;
                    (
                        stage(landing),
                        Action::RunChecks {
                            commands,
                            timeout_ms,
                        },
                    )
                }
                Gate::Fail(hitch) => failed(landing, ctx, hitch),
            }
        }
        (At::Checking, Seen::Checked(results)) => {
            ctx.notes.push(Note::ChecksRan(results.clone()));
            let view = landing.view.clone().unwrap_or_default();
            match landing_gate(&view, true, Some(&results)) {
                Gate::Fail(hitch) => failed(landing, ctx, hitch),
                _ => landable(&landing, ctx, results.len()),
            }
        }
        (At::Checking, Seen::Interrupted) => finish(
            ctx,
            Verdict::Interrupted,
            "interrupted while the landing checks ran".to_string(),
        ),
        (At::Waiting, Seen::Waited) => send(landing, ctx),
        (At::Waiting, Seen::Interrupted) => finish(
            ctx,
            Verdict::Interrupted,
            "interrupted while waiting for the next landing turn".to_string(),
        ),
        (At::Restoring { verdict, why }, Seen::Land(LandSeen::Restored(restored))) => {
            let mut message = format!("{why}; {branch} and its worktree are back as they were");
            if !restored.reset {
                message = format!("{why}; no landing had begun on {branch}: nothing to restore");
            }
            if let Some(leftovers) = &restored.leftovers {
                message.push_str(&format!(
                    " (what the landing left is kept at {}, commit {})",
                    leftovers.reference,
                    crate::git::short_id(&leftovers.commit)
                ));
            }
            finish(ctx, verdict, message)
        }
        (At::Adopting, Seen::Land(LandSeen::Adopted(adoption))) => adopted(ctx, adoption),
        (_, seen) => return Err(Box::new(seen)),
    })
}

/// A landing turn ended: the gate judges the branch again.
pub(super) fn turn_ended(landing: Landing, ctx: &mut Ctx<'_>, outcome: &Outcome) -> Next {
    if let Some(failed) = failed_turn(ctx.state, Step::Land, outcome) {
        return (Stage::Over, Action::Finish(failed));
    }
    if let Some(reason) = outcome.result.as_deref().and_then(blocked_reason) {
        let why = format!("the agent says it cannot land it: {reason}");
        return restore(landing, ctx, Verdict::NotLanded, why);
    }
    look(landing, ctx)
}

/// The checks the task was judged with: the landing checks (none: the gate has none).
fn landing_checks(state: &WorkerState) -> Vec<String> {
    state
        .run
        .gates
        .checked
        .as_ref()
        .map(|checked| checked.commands.clone())
        .unwrap_or_default()
}

fn look(mut landing: Landing, ctx: &Ctx<'_>) -> Next {
    let LandOrder::Resolve { target_tip, .. } = ctx.order else {
        return finish(
            ctx,
            Verdict::TurnFailed,
            "leash lost its place in the landing".to_string(),
        );
    };
    landing.at = At::Looking;
    let branch = ctx.config.gates.branch.clone().unwrap_or_default();
    (
        stage(landing),
        Action::Land(LandGit::Look {
            branch,
            target_tip: target_tip.clone(),
        }),
    )
}

fn landable(landing: &Landing, ctx: &Ctx<'_>, checks: usize) -> Next {
    let LandOrder::Resolve {
        target, target_tip, ..
    } = ctx.order
    else {
        return finish(ctx, Verdict::Landable, "landable".to_string());
    };
    let tip = landing
        .view
        .as_ref()
        .and_then(|view| view.branch_tip.as_deref())
        .map_or("?", crate::git::short_id);
    let checked = match checks {
        0 => String::new(),
        n => format!("; {n} landing check(s) passed"),
    };
    let turns = match landing.turns {
        0 => String::new(),
        n => format!(" after {n} landing turn(s)"),
    };
    finish(
        ctx,
        Verdict::Landable,
        format!(
            "landable{turns}: the branch, at {tip}, descends from {target} at {}{checked}",
            crate::git::short_id(target_tip)
        ),
    )
}

/// The gate said no: the next landing turn, after the backoff, tells why; with no
/// turns (or budget) left the landing is given up.
fn failed(mut landing: Landing, ctx: &mut Ctx<'_>, hitch: Hitch) -> Next {
    let hitch = match (&hitch, ctx.order) {
        // Before any turn, what keeps it off the target is what land found.
        (Hitch::NotOnTarget, LandOrder::Resolve { trouble, .. }) if landing.turns == 0 => {
            Hitch::Handed(trouble.clone())
        }
        _ => hitch,
    };
    let max = ctx.config.nudges.max_nudges;
    if landing.turns >= max {
        let why = format!(
            "not landable after {} landing turn(s): {}",
            landing.turns,
            hitch.describe()
        );
        return restore(landing, ctx, Verdict::NotLanded, why);
    }
    let spent = ctx.state.task.cost.total_usd();
    if let Some(budget) = ctx.config.task_budget_usd
        && spent >= budget
    {
        let why = format!(
            "budget exhausted: the task spent {} of its {} budget; no landing turn is sent (a larger --budget goes on)",
            usd(spent),
            usd(budget)
        );
        return restore(landing, ctx, Verdict::BudgetExhausted, why);
    }
    landing.hitch = Some(hitch);
    let wait = ctx.config.nudges.delay_ms(landing.turns);
    if wait == 0 {
        return send(landing, ctx);
    }
    landing.at = At::Waiting;
    let why = format!(
        "waiting {} before landing turn {} (backoff)",
        crate::human::duration(std::time::Duration::from_millis(wait)),
        landing.turns + 1
    );
    (stage(landing), Action::Pause { ms: wait, why })
}

fn send(mut landing: Landing, ctx: &Ctx<'_>) -> Next {
    let LandOrder::Resolve {
        target,
        target_tip,
        trouble,
        landed_since,
    } = ctx.order
    else {
        return finish(
            ctx,
            Verdict::TurnFailed,
            "leash lost its place in the landing".to_string(),
        );
    };
    landing.turns += 1;
    landing.at = At::Turn;
    let handed = Hitch::Handed(trouble.clone());
    let prompt = landing_prompt(&LandingContext {
        branch: ctx.config.gates.branch.as_deref().unwrap_or_default(),
        target,
        target_tip,
        landed_since,
        hitch: landing.hitch.as_ref().unwrap_or(&handed),
        count: (landing.turns, ctx.config.nudges.max_nudges),
    });
    let action = sending(ctx.config, TurnKind::Land, prompt);
    (stage(landing), action)
}

fn restore(mut landing: Landing, ctx: &Ctx<'_>, verdict: Verdict, why: String) -> Next {
    landing.at = At::Restoring { verdict, why };
    let branch = ctx.config.gates.branch.clone().unwrap_or_default();
    (stage(landing), Action::Land(LandGit::Restore { branch }))
}

/// The landed work is the worker's: its commits are the landed ones (so hooks,
/// `implement` and `session rm` see work done and merged), its gates passed there.
fn adopted(ctx: &mut Ctx<'_>, adoption: Adoption) -> Next {
    let LandOrder::Adopt {
        target,
        landed,
        branch_tip,
        ..
    } = ctx.order.clone()
    else {
        return finish(
            ctx,
            Verdict::TurnFailed,
            "leash lost its place in the landing".to_string(),
        );
    };
    let (rebased, base, already) = match adoption {
        Adoption::Refused(why) => {
            return finish(ctx, Verdict::NotLanded, format!("not adopted: {why}"));
        }
        Adoption::Adopted {
            rebased,
            base,
            already,
        } => (rebased, base, already),
    };
    let state = &mut *ctx.state;
    if !rebased.is_empty() {
        state.run.head_at_start = base;
        state.run.own_commits = rebased.iter().map(|c| c.id.clone()).collect();
    }
    state.run.last_seen_head = Some(branch_tip.clone());
    // The landing checks passed on the landed tree; a review saw the same change.
    if let Some(checked) = state.run.gates.checked.as_mut() {
        checked.head = Some(branch_tip.clone());
    }
    if let Some(review) = state.run.gates.review.as_mut() {
        review.head = Some(branch_tip.clone());
    }
    let news = state.task.landed.as_deref() != Some(landed.as_str());
    state.task.landed = Some(landed.clone());
    if news && let Some(task_id) = state.task.id.clone() {
        ctx.notes.push(Note::Landed {
            task_id,
            commit: landed.clone(),
            target: target.clone(),
        });
    }
    let how = match already {
        true => "already adopted".to_string(),
        false => format!("{} commit(s)", rebased.len()),
    };
    finish(
        ctx,
        Verdict::Landed,
        format!(
            "landed on {target} at {} ({how})",
            crate::git::short_id(&landed)
        ),
    )
}

//! The words leash says to the agent. Nudges are specific to what was observed (which
//! files, which hook, whose commit, how many nudges are left): a worker told the same
//! sentence over and over loops forever.

use crate::git::{CommitInfo, Diff, FileChange};
use crate::human::{one_line, safe};
use crate::landing_git::InProgress;

use super::attempts::WINNER_MARKER;
use super::checks::CheckResult;
use super::land::LandTrouble;
use super::{APPROVED_MARKER, BLOCKED_MARKER, CHANGES_MARKER, Review, Verdict};

/// Appended to claude's system prompt for every session leash starts, so it survives
/// compaction of the conversation.
pub fn system_prompt() -> String {
    format!(
        "You are a coding worker driven by leash. Your work counts as done only when it is \
committed with git in this repository: a new commit must exist. If you cannot go on \
without help (missing access, unclear requirement, a decision only a person can make), \
answer with a line that starts with `{BLOCKED_MARKER}` followed by the reason, and stop. \
When you are asked to review work, end your answer with a line `{APPROVED_MARKER}` if it is \
correct and complete, or `{CHANGES_MARKER} <what must change>`."
    )
}

/// What a reviewer is shown of the work.
pub struct ReviewContext<'a> {
    pub task: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub diff: &'a Diff,
    /// The checks it passed.
    pub checks: &'a [CheckResult],
    /// Which review of the phase this is, of at most how many that ask for changes.
    pub round: u32,
    pub max_rounds: u32,
}

/// A read-only review of committed work, in the conversation that made it.
pub fn review_prompt(ctx: &ReviewContext<'_>) -> String {
    let mut parts = vec![format!(
        "Review the work done for the task below, as a careful reviewer would (review {} \
of at most {}). Read whatever you need; do not change any files.",
        ctx.round, ctx.max_rounds
    )];
    if let Some(task) = ctx.task {
        parts.push(format!("<task>\n{task}\n</task>"));
    }
    if let Some(plan) = ctx.plan {
        parts.push(format!("<plan>\n{plan}\n</plan>"));
    }
    if !ctx.checks.is_empty() {
        let list: Vec<String> = ctx
            .checks
            .iter()
            .map(|c| format!("  {}", c.command))
            .collect();
        parts.push(format!("These checks pass:\n{}", list.join("\n")));
    }
    let cut = if ctx.diff.truncated {
        " (cut short: it is longer than leash shows; read the files for the rest)"
    } else {
        ""
    };
    parts.push(format!(
        "The change since the implementation began (`git diff --stat`, then the diff{cut}):\n\
<diffstat>\n{}</diffstat>\n<diff>\n{}</diff>",
        ctx.diff.stat, ctx.diff.patch
    ));
    parts.push(format!(
        "Is it correct, complete, and what the task asked for? End your answer with one \
line: `{APPROVED_MARKER}` if it is, or `{CHANGES_MARKER} <what must change>` if it is not."
    ));
    parts.join("\n\n")
}

/// The plan model chooses among the green attempts of its own plan: each one's diff
/// against the branch point, its checks, cost and turns.
pub fn judge_prompt(
    task: Option<&str>,
    plan: Option<&str>,
    candidates: &[super::attempts::Candidate],
) -> String {
    let mut parts = vec![format!(
        "Your plan was implemented {} times independently; these attempts passed their \
checks. Choose the best one, as a careful reviewer would: correct, complete, what the task \
asked for, and no more than it needs. Do not change any files.",
        candidates.len()
    )];
    if let Some(task) = task {
        parts.push(format!("<task>\n{task}\n</task>"));
    }
    if let Some(plan) = plan {
        parts.push(format!("<plan>\n{plan}\n</plan>"));
    }
    for c in candidates {
        let checks = match c.checks.as_slice() {
            [] => "no checks".to_string(),
            checks => format!("checks passed: {}", checks.join("; ")),
        };
        let cut = match c.truncated {
            true => " (cut short to its share of what leash shows: the stat lists every file)",
            false => "",
        };
        parts.push(format!(
            "<attempt number=\"{k}\">\n{checks}; cost ${cost:.2}; {turns} turn(s)\n\
The change against the branch point (`git diff --stat`, then the diff{cut}):\n\
<diffstat>\n{stat}</diffstat>\n<diff>\n{patch}</diff>\n</attempt>",
            k = c.k,
            cost = c.cost_usd,
            turns = c.turns,
            stat = c.stat,
            patch = c.patch,
        ));
    }
    parts.push(format!(
        "Give your reason in a few sentences, then end with one line: `{WINNER_MARKER} N`, \
N the number of the attempt to keep."
    ));
    parts.join("\n\n")
}

/// A judge's answer that named no green attempt: asked once more.
pub fn judge_again_prompt(green: &[u32]) -> String {
    let numbers: Vec<String> = green.iter().map(u32::to_string).collect();
    format!(
        "Your answer named none of the attempts that passed ({}). End your answer with one \
line `{WINNER_MARKER} N`, N one of those numbers.",
        numbers.join(", ")
    )
}

/// What the implementer is told of a review that asked for changes: the review, verbatim.
pub fn review_feedback(review: &Review, max_rounds: u32) -> String {
    format!(
        "A review of your work (review {} of at most {max_rounds}) asked for changes:\n\n\
{}\n\nMake the changes, run the checks, and commit.",
        review.round,
        review.text.trim()
    )
}

/// The nudges ran out: plan the task again from what was tried.
pub fn rescope_prompt(task: &str, plan: Option<&str>, tried: &[String]) -> String {
    let plan = plan.map_or(String::new(), |p| format!("<plan>\n{p}\n</plan>\n\n"));
    let tried: Vec<String> = tried.iter().map(|t| format!("  - {t}")).collect();
    format!(
        "The implementation did not get done within its nudges. Step back and plan the task \
again: do not change any files now. Say briefly why the plan below did not work, then answer \
with a new short, concrete, numbered plan that will. If the task cannot be done, say so with \
`{BLOCKED_MARKER} <reason>`.\n\n<task>\n{task}\n</task>\n\n{plan}What was tried and what came \
of it, oldest first:\n{}",
        tried.join("\n")
    )
}

pub fn plan_prompt(task: &str) -> String {
    format!(
        "Plan the task below. Do not change any files yet: read what you need, then answer \
with a short, concrete, numbered plan: the files to change, the checks to run, and how \
you will know it works. If the task cannot be done, say so with `{BLOCKED_MARKER} <reason>`.\n\n\
<task>\n{task}\n</task>"
    )
}

/// A planning blocker answered: plan again with the answer.
pub fn replan_prompt(task: &str, answer: &str) -> String {
    format!(
        "You could not plan the task because you needed something from a person. Their \
answer:\n\n{answer}\n\n{}",
        plan_prompt(task)
    )
}

pub fn implement_prompt(task: Option<&str>, has_plan: bool) -> String {
    let what = match (has_plan, task) {
        (true, _) => "Implement the plan you made above.".to_string(),
        (false, Some(task)) => format!("Implement the task below.\n\n<task>\n{task}\n</task>\n"),
        (false, None) => "Implement the work discussed above.".to_string(),
    };
    format!(
        "{what} Edit the files, run the relevant checks, then commit with git (`git add` and \
`git commit`, with a message that says why). This step is done when a new commit exists. \
If you cannot go on, answer with `{BLOCKED_MARKER} <reason>`."
    )
}

/// Sent when a step goes on from a turn that was cut off: claude died or hung and was
/// restarted, the daemon died, or the turn was interrupted (a daemon that stops does).
pub const CONTINUE_AFTER_RESTART: &str = "Your last step was cut off: the process running \
this conversation was stopped or restarted in the middle of it. Check the state of your work \
before you go on (the files you were changing, `git status`, `git log`), then continue where \
you left off.";

/// What a new conversation is told when the last one was full.
#[derive(Default)]
pub struct Handoff<'a> {
    pub task: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub phase: Option<String>,
    /// The last verdict, in a sentence.
    pub last_verdict: Option<&'a str>,
    pub nudges: Option<(u32, u32)>,
    pub head_at_start: Option<&'a str>,
    pub commits: &'a [CommitInfo],
    pub uncommitted: &'a [FileChange],
    /// The latest prompts before the one that did not fit, oldest first.
    pub recent_prompts: &'a [String],
}

/// The first message of a conversation that takes over from a full one: what leash
/// knows of the work, never what filled the old conversation (tool output).
pub fn handoff_prompt(h: &Handoff<'_>) -> String {
    let mut parts = vec![
        "The conversation you were working in became too long to continue, so this is a new \
one. Here is what you need to know to go on; check the repository for anything else."
            .to_string(),
    ];
    if let Some(task) = h.task {
        parts.push(format!("<task>\n{task}\n</task>"));
    }
    if let Some(plan) = h.plan {
        parts.push(format!("<plan>\n{plan}\n</plan>"));
    }
    let mut state = Vec::new();
    if let Some(phase) = &h.phase {
        state.push(format!("phase: {phase}"));
    }
    if let Some(verdict) = h.last_verdict {
        state.push(format!("last verdict: {verdict}"));
    }
    if let Some((used, max)) = h.nudges {
        state.push(format!("nudges sent in this phase: {used} of {max}"));
    }
    if let Some(head) = h.head_at_start {
        state.push(format!("HEAD when the phase began: {head}"));
    }
    if !state.is_empty() {
        parts.push(state.join("\n"));
    }
    if !h.commits.is_empty() {
        let list: Vec<String> = h
            .commits
            .iter()
            .map(|c| format!("  {}", c.short()))
            .collect();
        parts.push(format!("Commits since then:\n{}", list.join("\n")));
    }
    if !h.uncommitted.is_empty() {
        let list: Vec<String> = h
            .uncommitted
            .iter()
            .take(MAX_LISTED_FILES)
            .map(|c| format!("  {} {}", c.code, c.path))
            .collect();
        parts.push(format!("Uncommitted files:\n{}", list.join("\n")));
    }
    if !h.recent_prompts.is_empty() {
        let list: Vec<String> = h
            .recent_prompts
            .iter()
            .map(|p| format!("<prompt>\n{p}\n</prompt>"))
            .collect();
        parts.push(format!(
            "The last prompts of the old conversation, oldest first:\n{}",
            list.join("\n")
        ));
    }
    parts
        .push("What follows is what you were asked when the old conversation ran out:".to_string());
    parts.join("\n\n")
}

/// Instructions for compacting at a phase boundary: what must survive.
pub fn compact_instructions(
    task: Option<&str>,
    plan: Option<&str>,
    last_verdict: Option<&str>,
    nudges: (u32, u32),
) -> String {
    let mut keep = vec!["Keep, verbatim where you can:".to_string()];
    if let Some(task) = task {
        keep.push(format!("the task: {task}"));
    }
    if let Some(plan) = plan {
        keep.push(format!("the plan: {plan}"));
    }
    if let Some(verdict) = last_verdict {
        keep.push(format!("the verdicts so far, the last: {verdict}"));
    }
    keep.push(format!(
        "the nudges sent in this phase: {} of {}",
        nudges.0, nudges.1
    ));
    keep.push("and the state of the work (files changed, commits made).".to_string());
    keep.join("\n")
}

/// Everything a nudge can be about.
pub struct NudgeContext<'a> {
    /// What a gate of the committed work said: a failed check, a review's changes.
    pub feedback: Option<&'a str>,
    pub verdict: Verdict,
    pub changes: &'a [FileChange],
    pub reason: Option<&'a str>,
    pub events: &'a [String],
    pub foreign_commits: &'a [CommitInfo],
    /// Which nudge of how many; `None` for a person's answer to a blocker, which is
    /// no nudge.
    pub count: Option<(u32, u32)>,
}

const MAX_LISTED_FILES: usize = 30;

pub fn nudge_prompt(ctx: &NudgeContext<'_>) -> String {
    let mut parts = Vec::new();
    if !ctx.foreign_commits.is_empty() {
        let list: Vec<String> = ctx
            .foreign_commits
            .iter()
            .map(|c| format!("  {}", c.short()))
            .collect();
        parts.push(format!(
            "Someone else committed to this repository while you worked; their changes are \
already in your working tree, so take them into account:\n{}",
            list.join("\n")
        ));
    }
    for event in ctx.events {
        if !event.starts_with("post-") {
            parts.push(format!("The git `{event}` hook reported a problem."));
        }
    }
    if let Some(reason) = ctx.reason {
        parts.push(reason.trim().to_string());
    }
    if let Some(feedback) = ctx.feedback {
        parts.push(feedback.to_string());
    }
    match ctx.verdict {
        Verdict::Uncommitted => {
            let mut list: Vec<String> = ctx
                .changes
                .iter()
                .take(MAX_LISTED_FILES)
                .map(|c| format!("  {} {}", c.code, c.path))
                .collect();
            if ctx.changes.len() > MAX_LISTED_FILES {
                list.push(format!(
                    "  ... and {} more",
                    ctx.changes.len() - MAX_LISTED_FILES
                ));
            }
            parts.push(format!(
                "Your changes are not committed yet. Uncommitted files:\n{}\nReview them, run \
the checks, and commit them with git (revert what should not be kept).",
                list.join("\n")
            ));
        }
        // The work is committed; what is wrong with it was said above.
        Verdict::NoChanges if ctx.feedback.is_some() => {}
        Verdict::NoChanges => parts.push(
            "Nothing has changed in the repository since this step began: no edits and no new \
commit. Make the changes the plan calls for, then commit them with git."
                .to_string(),
        ),
        _ => parts.push("Continue the work, and commit it with git when it is done.".to_string()),
    }
    parts.push(match ctx.count {
        Some((number, max)) => format!(
            "(leash nudge {number} of {max}. If something stops you, answer with `{BLOCKED_MARKER} <reason>`.)"
        ),
        None => format!("(If something stops you, answer with `{BLOCKED_MARKER} <reason>`.)"),
    });
    parts.join("\n\n")
}

/// The nudge for work committed off the worker's branch (`actual`: "branch x" or "a
/// detached HEAD").
pub fn off_branch(actual: &str, expected: &str) -> String {
    format!(
        "Your commits are on {actual}, not on {expected}, the branch your work is taken from. Put them on {expected} (for example `git checkout {expected}`, then `git merge --ff-only` or `git cherry-pick` your commits), and keep working on {expected}."
    )
}

/// What keeps a handed-back branch from landing, as the next landing turn is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Hitch {
    /// What `leash land` found on its stack: conflicts, or a landing check failing.
    Handed(LandTrouble),
    /// A rebase, merge or cherry-pick is still under way; these files are unresolved.
    InProgress {
        what: InProgress,
        conflicted: Vec<String>,
    },
    /// HEAD is not the worker's branch.
    OffBranch,
    /// The branch does not contain the target's tip.
    NotOnTarget,
    /// The worktree holds uncommitted changes.
    Dirty(Vec<FileChange>),
    /// On the branch as it is, this landing check failed.
    CheckFailed(CheckResult),
}

impl Hitch {
    /// In a sentence, for a judgement.
    pub fn describe(&self) -> String {
        match self {
            Hitch::Handed(LandTrouble::Conflict { files }) => {
                format!("it conflicts with the target in {}", first_of_files(files))
            }
            Hitch::Handed(LandTrouble::ChecksFailed { checks }) => match checks.last() {
                Some(check) => format!("on the target, the check {}", check.describe()),
                None => "a landing check failed on the target".to_string(),
            },
            Hitch::InProgress { what, .. } => format!("a {what} is still under way"),
            Hitch::OffBranch => "the worktree is not on its branch".to_string(),
            Hitch::NotOnTarget => "the branch does not contain the target's tip".to_string(),
            Hitch::Dirty(changes) => format!("{} uncommitted change(s)", changes.len()),
            Hitch::CheckFailed(check) => format!("the check {}", check.describe()),
        }
    }
}

fn first_of_files(files: &[String]) -> String {
    let shown: Vec<String> = files.iter().map(|f| one_line(&safe(f), 200)).collect();
    crate::human::first_of(&shown, 10)
}

/// Everything a landing turn is told.
pub struct LandingContext<'a> {
    pub branch: &'a str,
    pub target: &'a str,
    pub target_tip: &'a str,
    /// The subjects of what landed on the target since the branch began, oldest first.
    pub landed_since: &'a [String],
    pub hitch: &'a Hitch,
    /// Which landing turn of how many.
    pub count: (u32, u32),
}

/// How many of the target's new commits a landing turn lists (the newest).
const MAX_LISTED_SUBJECTS: usize = 30;

/// A failed check's end, as a landing turn shows it.
fn failed_check(check: &CheckResult, on: &str) -> String {
    let output = match check.output_tail.trim() {
        "" => "It printed nothing.".to_string(),
        tail => format!("The end of its output:\n```\n{}\n```", safe(tail)),
    };
    format!(
        "{on}, the landing check `{}` {}. {output}",
        safe(&check.command),
        check.outcome()
    )
}

/// A landing turn: the branch, handed back by `leash land`, does not land on the
/// target as it is; what landed there meanwhile, what is wrong, and what to do.
pub fn landing_prompt(ctx: &LandingContext<'_>) -> String {
    let (branch, target) = (safe(ctx.branch), safe(ctx.target));
    let tip = crate::git::short_id(ctx.target_tip);
    let mut parts = vec![format!(
        "`leash land` is landing your work on `{target}`, and your branch `{branch}` does not land \
on it as it is."
    )];
    parts.push(match ctx.hitch {
        Hitch::Handed(LandTrouble::Conflict { files }) => format!(
            "Rebased onto `{target}` ({tip}), your commits conflict with it in: {}.",
            first_of_files(files)
        ),
        Hitch::Handed(LandTrouble::ChecksFailed { checks }) => match checks.last() {
            Some(check) => failed_check(check, &format!("Rebased onto `{target}` ({tip})")),
            None => format!("Rebased onto `{target}` ({tip}), a landing check failed."),
        },
        Hitch::InProgress { what, conflicted } if conflicted.is_empty() => format!(
            "A {what} is still under way in your worktree: finish it (`git {what} --continue`) or \
abort it and start again."
        ),
        Hitch::InProgress { what, conflicted } => format!(
            "A {what} is still under way in your worktree, with conflicts unresolved in: {}. \
Resolve them, `git add` them and `git {what} --continue`.",
            first_of_files(conflicted)
        ),
        Hitch::OffBranch => format!(
            "Your worktree is not on `{branch}`: check it out again (`git checkout {branch}`) \
with your work on it."
        ),
        Hitch::NotOnTarget => {
            format!("Your branch does not contain `{target}`'s tip ({tip}) yet.")
        }
        Hitch::Dirty(changes) => {
            let list: Vec<String> = changes
                .iter()
                .take(MAX_LISTED_FILES)
                .map(|c| format!("  {}", safe(&c.to_string())))
                .collect();
            format!(
                "Your worktree has uncommitted changes:\n{}\nCommit what belongs to the work; \
remove what does not.",
                list.join("\n")
            )
        }
        Hitch::CheckFailed(check) => failed_check(check, "On your branch as it is now"),
    });
    if !ctx.landed_since.is_empty() {
        let skipped = ctx.landed_since.len().saturating_sub(MAX_LISTED_SUBJECTS);
        let mut list: Vec<String> = Vec::new();
        if skipped > 0 {
            list.push(format!("  ... {skipped} earlier commit(s)"));
        }
        list.extend(
            ctx.landed_since[skipped..]
                .iter()
                .map(|s| format!("  - {}", one_line(&safe(s), 120))),
        );
        parts.push(format!(
            "What landed on `{target}` since your branch began, oldest first:\n{}",
            list.join("\n")
        ));
    }
    parts.push(format!(
        "Bring your branch onto `{target}` as it is now ({tip}): rebase it onto `{target}` \
(`git rebase {target}`), or merge `{target}` into it; resolve every conflict keeping what both \
sides meant, run the checks, and commit. Leave `{branch}` checked out, the worktree clean and \
no rebase or merge under way. Do not push, and do not change `{target}` itself: leash lands it."
    ));
    parts.push(format!(
        "(leash landing turn {} of {}. If something stops you, answer with `{BLOCKED_MARKER} <reason>`.)",
        ctx.count.0, ctx.count.1
    ));
    parts.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(verdict: Verdict, changes: &'a [FileChange]) -> NudgeContext<'a> {
        NudgeContext {
            feedback: None,
            verdict,
            changes,
            reason: None,
            events: &[],
            foreign_commits: &[],
            count: Some((1, 5)),
        }
    }

    #[test]
    fn nudges_name_what_was_observed() {
        let changes = [FileChange {
            code: "??".into(),
            path: "src/new.rs".into(),
        }];
        let text = nudge_prompt(&ctx(Verdict::Uncommitted, &changes));
        assert!(text.contains("?? src/new.rs"), "{text}");
        assert!(text.contains("1 of 5"));
        let none = nudge_prompt(&ctx(Verdict::NoChanges, &[]));
        assert!(none.contains("Nothing has changed"));
        assert_ne!(text, none);

        let events = ["pre-commit".to_string()];
        let commits = [CommitInfo {
            id: "0123456789abcdef".into(),
            summary: "fix typo".into(),
            author: "Ann".into(),
        }];
        let text = nudge_prompt(&NudgeContext {
            reason: Some("the pre-commit hook failed (exit 1): lint error in a.rs"),
            events: &events,
            foreign_commits: &commits,
            ..ctx(Verdict::Uncommitted, &changes)
        });
        assert!(text.contains("lint error in a.rs"), "{text}");
        assert!(text.contains("`pre-commit` hook"), "{text}");
        assert!(text.contains("fix typo (Ann)"), "{text}");
    }

    #[test]
    fn the_task_is_embedded_verbatim() {
        let task = "Rename `foo` to `bar`\n<weird> & \"quoted\"";
        assert!(plan_prompt(task).contains(task));
        assert!(implement_prompt(Some(task), false).contains(task));
        assert!(!implement_prompt(Some(task), true).contains(task));
    }

    #[test]
    fn a_landing_turn_lists_what_landed_bounded_and_escaped() {
        let subjects: Vec<String> = (1..=40)
            .map(|n| format!("commit {n}\u{1b}]0;retitled\u{7}\nsecond line"))
            .collect();
        let hitch = Hitch::Dirty(vec![FileChange {
            code: "??".into(),
            path: "left\u{1b}[2J.txt".into(),
        }]);
        let text = landing_prompt(&LandingContext {
            branch: "leash/w",
            target: "main",
            target_tip: "0123456789abcdef",
            landed_since: &subjects,
            hitch: &hitch,
            count: (2, 5),
        });
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("... 10 earlier commit(s)"), "{text}");
        assert!(
            !text.contains("commit 10\\"),
            "the oldest are left out: {text}"
        );
        assert!(text.contains("commit 40"), "{text}");
        assert!(text.contains("0123456789") && text.contains("landing turn 2 of 5"));
        assert!(text.contains("uncommitted changes"), "{text}");
    }
}

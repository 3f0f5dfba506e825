//! The words leash says to the agent. Nudges are specific to what was observed (which
//! files, which hook, whose commit, how many nudges are left): a worker told the same
//! sentence over and over loops forever.

use crate::git::{CommitInfo, FileChange};

use super::{BLOCKED_MARKER, Verdict};

/// Appended to claude's system prompt for every session leash starts, so it survives
/// compaction of the conversation.
pub fn system_prompt() -> String {
    format!(
        "You are a coding worker driven by leash. Your work counts as done only when it is \
committed with git in this repository: a new commit must exist. If you cannot go on \
without help (missing access, unclear requirement, a decision only a person can make), \
answer with a line that starts with `{BLOCKED_MARKER}` followed by the reason, and stop."
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

/// Everything a nudge can be about.
pub struct NudgeContext<'a> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(verdict: Verdict, changes: &'a [FileChange]) -> NudgeContext<'a> {
        NudgeContext {
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
}

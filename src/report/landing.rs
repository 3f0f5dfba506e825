//! What `leash land` did with a task, as the report keeps it: the target's commit that
//! holds the task's work (from the `landed` event land's step writes, never guessed
//! from git), and how the task's latest landing ended. A landing is no judgement of the
//! work: the task's own verdict, exit code and standing stay as its steps left them.

use serde::{Deserialize, Serialize};

use super::TaskRow;
use crate::worker::Verdict;

/// A task's latest landing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Landing {
    /// How it ended: `landed`, `landable` (handed back, resolved, landed next) or
    /// `not_landed` (given up; the branch back as it was); `null` while it runs.
    pub verdict: Option<Verdict>,
    /// What its step said: for `not_landed`, why.
    pub message: Option<String>,
    /// The branch it landed on, once it landed.
    pub target: Option<String>,
    /// When it ended (or, while it runs, began), Unix ms.
    pub at_ms: u64,
}

impl Landing {
    /// A landing under way since `at_ms`.
    pub fn under_way(at_ms: u64) -> Landing {
        Landing {
            verdict: None,
            message: None,
            target: None,
            at_ms,
        }
    }

    /// How it stands, in a word or two: `landed`, `landable`, `not landed`, `landing`.
    pub fn label(&self) -> &'static str {
        match self.verdict {
            None => "landing",
            Some(Verdict::Landed) => "landed",
            Some(Verdict::Landable) => "landable",
            Some(_) => "not landed",
        }
    }

    /// Its name in markup (`not_landed`), where the picture styles it.
    pub fn class(&self) -> String {
        self.label().replace(' ', "_")
    }
}

/// The target moved to `commit`, which holds the task's work.
pub fn landed(row: &mut TaskRow, commit: &str, target: &str, at_ms: u64) {
    row.landed = Some(commit.to_string());
    let landing = row.landing.get_or_insert_with(|| Landing::under_way(at_ms));
    landing.verdict = Some(Verdict::Landed);
    landing.target = Some(target.to_string());
    landing.at_ms = landing.at_ms.max(at_ms);
}

/// A land step ended with `verdict`, saying `message`.
pub fn judged(row: &mut TaskRow, verdict: Verdict, message: &str, at_ms: u64) {
    // The target it landed on stays told: a later word on the same landing keeps it.
    let target = row.landing.take().and_then(|l| l.target);
    row.landing = Some(Landing {
        verdict: Some(verdict),
        message: Some(message.to_string()),
        target: target.filter(|_| row.landed.is_some()),
        at_ms,
    });
}

/// The row, seen again in a log that lost the task's beginning: what it says of the
/// task's landing is newer than what was kept. Taking it twice changes nothing (the
/// history's row, saved again after a landing, meets the same log later).
pub fn take_newer(kept: &mut TaskRow, folded: &TaskRow) {
    if folded.landed.is_some() {
        kept.landed.clone_from(&folded.landed);
    }
    if let Some(landing) = &folded.landing
        && kept
            .landing
            .as_ref()
            .is_none_or(|k| k.at_ms <= landing.at_ms)
    {
        kept.landing = Some(landing.clone());
    }
    // The landing turns this log saw: their cost once, whichever row told it first.
    let more = folded.cost.land_usd - kept.cost.land_usd;
    if more > 0.0 {
        kept.cost.land_usd = folded.cost.land_usd;
        kept.cost_usd += more;
    }
    for span in folded
        .spans
        .iter()
        .filter(|s| s.phase == super::SpanPhase::Landing)
    {
        if !kept.spans.contains(span) {
            kept.spans.push(span.clone());
        }
    }
}

/// The LANDED cell: the target's commit, else how the latest landing stands.
pub fn cell(row: &TaskRow) -> String {
    match (&row.landed, &row.landing) {
        (Some(commit), _) => crate::git::short_id(commit).to_string(),
        (None, Some(landing)) => landing.label().to_string(),
        (None, None) => "-".to_string(),
    }
}

/// The landing in a sentence, for hovering a task or `leash status`: `landed
/// 1a2b3c4d5e on main`, `not landed: the worker could not resolve it`; `None` before
/// any landing.
pub fn describe(row: &TaskRow) -> Option<String> {
    let landing = row.landing.as_ref()?;
    Some(match (&row.landed, &landing.target) {
        (Some(commit), target) => landed_text(commit, target.as_deref()),
        (None, _) => match landing.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("{}: {}", landing.label(), super::one_line(message, 160)),
            None => landing.label().to_string(),
        },
    })
}

/// `landed 1a2b3c4d5e on main`, or without the target when nothing told it.
pub fn landed_text(commit: &str, target: Option<&str>) -> String {
    let mut text = format!("landed {}", crate::git::short_id(commit));
    if let Some(target) = target {
        text.push_str(" on ");
        text.push_str(&super::one_line(target, 80));
    }
    text
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fold::Ledger;
    use crate::report::{Span, SpanPhase, Standing, Totals, svg, table};

    /// Three tasks done: one landed the morning after, one given up, one never tried.
    fn morning() -> Vec<TaskRow> {
        let mut ledger = Ledger::new();
        for i in 1..=3 {
            ledger.line(&format!(
                r#"{{"type":"step_started","seq":{i},"ts":{i}000000,"turn":{i},"step":"plan","task_id":"t{i}","task":"task {i}"}}"#
            ));
        }
        let mut rows = ledger.rows();
        for (i, row) in rows.iter_mut().enumerate() {
            row.worker = format!("w{}", i + 1);
            row.standing = Standing::Done;
            row.exit_code = Some(0);
            row.last_ms = row.started_ms + 500_000;
        }
        landed(&mut rows[0], "f00dfeedbeef0123", "main", 9_000_000);
        rows[0].spans.push(Span {
            phase: SpanPhase::Landing,
            start_ms: 8_000_000,
            end_ms: 8_900_000,
            failure: None,
        });
        judged(
            &mut rows[1],
            Verdict::NotLanded,
            "the worker could not resolve <b>a.txt</b>",
            7_000_000,
        );
        rows
    }

    #[test]
    fn the_table_has_a_landed_column_once_land_has_been_at_the_tasks() {
        let rows = morning();
        let totals = [Totals::of(None, &rows)];
        assert_eq!((totals[0].landed, totals[0].not_landed), (1, 1));
        let text = table::text(&rows, &totals, None, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("LANDED"), "{text}");
        assert!(lines[1].contains("f00dfeedbe"), "{text}");
        assert!(lines[2].contains("not landed"), "{text}");
        assert!(lines[4].contains("1 landed, 1 not landed"), "{text}");
        let markdown = table::markdown(&rows, &totals);
        assert!(
            markdown.starts_with("| WORKER | TASK | OUTCOME | EXIT | LANDED |"),
            "{markdown}"
        );
        assert!(markdown.contains("| done | 0 | f00dfeedbe |"), "{markdown}");
        let html = table::html(&rows, &totals);
        assert!(html.contains("<th>LANDED</th>"), "{html}");
        assert!(html.contains("<td>not landed</td>"), "{html}");
        let never = &rows[2..];
        let text = table::text(never, &[Totals::of(None, never)], None, false);
        assert!(!text.contains("LANDED"), "no landing, no column:\n{text}");
    }

    #[test]
    fn the_picture_marks_each_landing_at_its_time_on_its_task_s_lane() {
        let rows = morning();
        let picture = svg::render(&rows, 10_000_000);
        let doc = roxmltree::Document::parse(&picture).unwrap_or_else(|e| panic!("{e}"));
        let marks: Vec<roxmltree::Node> = doc
            .descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.starts_with("landing "))
                    && n.parent().is_some_and(|p| {
                        p.attribute("class").is_some_and(|c| c.starts_with("task "))
                    })
            })
            .collect();
        let classes: Vec<&str> = marks.iter().filter_map(|n| n.attribute("class")).collect();
        assert_eq!(
            classes,
            ["landing landed", "landing not_landed"],
            "{picture}"
        );
        let title = |n: &roxmltree::Node| -> String {
            n.first_child()
                .and_then(|t| t.text())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            title(&marks[0]).starts_with("landed f00dfeedbe on main at "),
            "{}",
            title(&marks[0])
        );
        assert!(
            title(&marks[1]).contains("<b>a.txt</b>"),
            "escaped, shown as typed"
        );
        // The morning after is on the axis: the landed mark is at its right end.
        let x = |n: &roxmltree::Node| -> f64 {
            let points = n.attribute("points").unwrap();
            points.split([' ', ',']).next().unwrap().parse().unwrap()
        };
        assert!(x(&marks[0]) > 1_100.0, "{}", x(&marks[0]));
        assert!(x(&marks[1]) < x(&marks[0]));
        assert!(picture.contains(r#"class="span landing""#), "{picture}");
        for legend in ["legend-landing landed", "legend-landing not_landed"] {
            assert!(picture.contains(legend), "{legend}");
        }
        assert!(
            picture.contains("3 done · 1 landed · 1 not landed"),
            "{picture}"
        );
    }
}

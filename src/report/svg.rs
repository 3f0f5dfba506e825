//! The night as a picture: a header with the verdict (repository, time range, how the
//! tasks ended, what they cost), then one row per worker along a time axis fitted to
//! the data, a bar per stretch of a task's time colored by its phase (a failed check in
//! red), a mark per nudge and per fault, and each task's end as a mark of its kind.
//! Hovering anywhere on a task's bar shows what it is (SVG `<title>`).

use std::fmt::Write;

use super::landing::Landing;
use super::{Marker, Span, SpanPhase, Standing, TaskRow, Totals, clock_of_day, one_line};
use crate::protocol::Fault;
use crate::worker::Verdict;

const WIDTH: f64 = 1200.0;
const LABEL: f64 = 150.0;
const RIGHT: f64 = 40.0;
/// The header: what the night came to, above the axis.
const HEADER: f64 = 52.0;
const TOP: f64 = HEADER + 34.0;
const ROW: f64 = 44.0;
const BAR: f64 = 16.0;
const LEGEND_ROW: f64 = 22.0;
const LEGEND: f64 = 16.0 + 3.0 * LEGEND_ROW;
/// Roughly how wide a character of a bar's label is (10 px sans-serif).
const LABEL_CHAR: f64 = 5.8;
const FAILED_CHECK: &str = "#cf222e";
const NUDGE: &str = "#0550ae";
const LANDING: &str = "#0a3069";

/// The picture of `rows` (a worker's tasks in the order they began); a task still
/// running reaches `now_ms`.
pub fn render(rows: &[TaskRow], now_ms: u64) -> String {
    let lanes = super::attempts::lanes(rows);
    let workers = super::by_worker(&lanes);
    let axis = Axis::fitted(rows, now_ms);
    let height = TOP + ROW * workers.len().max(1) as f64 + LEGEND;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<title>leash report: {} task(s) of {} worker(s)</title><rect width="100%" height="100%" fill="#ffffff"/>"##,
        rows.len(),
        workers.len()
    );
    header(&mut svg, rows, &axis);
    axis.draw(&mut svg, height - LEGEND);
    for (i, (worker, tasks)) in workers.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = write!(
            svg,
            r##"<g class="worker" data-worker="{w}"><text x="8" y="{ty}" fill="#24292f">{w}</text>"##,
            w = xml(worker),
            ty = y + ROW / 2.0 + 4.0
        );
        for task in tasks {
            draw_task(&mut svg, task, &axis, y + (ROW - BAR) / 2.0 + 2.0, now_ms);
        }
        svg.push_str("</g>");
    }
    legend(&mut svg, height - LEGEND + 16.0);
    svg.push_str("</svg>\n");
    svg
}

/// The verdict over the picture, as a CI run's summary: where, when, how it ended.
fn header(svg: &mut String, rows: &[TaskRow], axis: &Axis) {
    let mut repositories: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.repository.as_deref())
        .collect();
    repositories.sort_unstable();
    repositories.dedup();
    let place = match repositories.as_slice() {
        [] => "leash report".to_string(),
        [one] => one.to_string(),
        many => format!("{} repositories", many.len()),
    };
    let _ = write!(
        svg,
        r##"<text class="heading" x="8" y="20" font-size="15" font-weight="bold" fill="#24292f">{} <tspan font-weight="normal" fill="#57606a">{}</tspan></text>"##,
        xml(&place),
        time_range(axis.start, axis.end)
    );
    let _ = write!(
        svg,
        r##"<text class="verdict" x="8" y="40" font-size="13" fill="#24292f">{}</text>"##,
        xml(&verdict(&Totals::of(None, rows)))
    );
}

/// `6 done · 1 needs you · $0.004`.
pub fn verdict(totals: &Totals) -> String {
    let mut parts = vec![format!("{} done", totals.done)];
    if totals.landed > 0 {
        parts.push(format!("{} landed", totals.landed));
    }
    let needs = match totals.need_you {
        1 => "needs you",
        _ => "need you",
    };
    for (n, what) in [
        (totals.need_you, needs),
        (totals.running, "running"),
        (totals.unfinished, "unfinished"),
        (totals.replaced, "replaced"),
        (totals.not_landed, "not landed"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.push(crate::human::usd(totals.cost_usd));
    parts.join(" · ")
}

/// `2026-12-06 08:41:00 – 08:41:02 UTC`, the second date only when it differs.
fn time_range(start: u64, end: u64) -> String {
    let (first, last) = (crate::time::utc_date(start), crate::time::utc_date(end));
    let to = match first == last {
        true => clock_of_day(end),
        false => format!("{last} {}", clock_of_day(end)),
    };
    format!("{first} {} – {to} UTC", clock_of_day(start))
}

/// The last thing drawn of a task: its end, or a landing after it.
fn last_drawn(row: &TaskRow, now_ms: u64) -> u64 {
    let landing = row.landing.as_ref().map_or(0, |l| l.at_ms);
    let spans = row.spans.iter().map(|s| s.end_ms).max().unwrap_or(0);
    end_of(row, now_ms).max(landing).max(spans)
}

/// Where a task's time ends: its last event, or now while it runs.
fn end_of(row: &TaskRow, now_ms: u64) -> u64 {
    match row.standing {
        Standing::Running => now_ms.max(row.last_ms),
        _ => row.last_ms,
    }
}

/// Time to x.
struct Axis {
    start: u64,
    end: u64,
}

/// Tick steps, in ms: the first that puts at most [`MAX_TICKS`] on the axis is taken.
const STEPS_MS: [u64; 33] = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    28 * DAY,
    91 * DAY,
    365 * DAY,
];
const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const MAX_TICKS: u64 = 8;

impl Axis {
    /// From the first task's beginning to the last one's end, nothing more: the data
    /// fills the width.
    fn fitted(rows: &[TaskRow], now_ms: u64) -> Axis {
        let start = rows.iter().map(|r| r.started_ms).min().unwrap_or(now_ms);
        let end = rows
            .iter()
            .map(|r| last_drawn(r, now_ms))
            .max()
            .unwrap_or(now_ms);
        let end = match rows.is_empty() {
            true => start.saturating_add(MINUTE),
            false => end.max(start.saturating_add(1)),
        };
        Axis { start, end }
    }

    fn x(&self, ms: u64) -> f64 {
        let span = (self.end - self.start) as f64;
        let at = ms.clamp(self.start, self.end) - self.start;
        LABEL + (WIDTH - LABEL - RIGHT) * at as f64 / span
    }

    /// The round step that puts a few ticks across the whole range.
    fn step_ms(&self) -> u64 {
        let span = self.end - self.start;
        STEPS_MS
            .iter()
            .copied()
            .find(|s| span / s <= MAX_TICKS)
            .unwrap_or_else(|| (span / MAX_TICKS).div_ceil(DAY).saturating_mul(DAY))
    }

    /// Ticks at a round step across the range, labelled in UTC: a time of day (to the
    /// fraction of a second the step needs), the date at midnight, and only dates once
    /// the step is a day or more.
    fn draw(&self, svg: &mut String, bottom: f64) {
        let step = self.step_ms();
        let mut next = Some(self.start.div_ceil(step).saturating_mul(step));
        while let Some(tick) = next.filter(|t| *t <= self.end) {
            next = tick.checked_add(step);
            let x = self.x(tick);
            let label = match step {
                s if s >= DAY || tick % DAY == 0 => crate::time::utc_date(tick),
                s if s < 10 => format!("{}.{:03}", clock_of_day(tick), tick % 1000),
                s if s < 100 => format!("{}.{:02}", clock_of_day(tick), tick % 1000 / 10),
                s if s < SECOND => format!("{}.{}", clock_of_day(tick), tick % 1000 / 100),
                s if s < MINUTE => clock_of_day(tick),
                _ => clock_of_day(tick)[..5].to_string(),
            };
            let _ = write!(
                svg,
                r##"<line class="tick" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#d0d7de"/><text class="tick-label" x="{x:.1}" y="{}" text-anchor="middle" fill="#57606a">{label}</text>"##,
                TOP - 6.0,
                TOP - 12.0
            );
        }
        let _ = write!(
            svg,
            r##"<text x="8" y="{}" fill="#57606a">UTC</text>"##,
            TOP - 12.0
        );
    }
}

/// How each kind of end is marked: a glyph and a color of its own.
fn end_style(standing: Standing) -> (&'static str, &'static str) {
    match standing {
        Standing::Done => ("✓", "#1a7f37"),
        Standing::Blocked => ("?", "#cf222e"),
        Standing::OutOfNudges => ("✗", "#cf222e"),
        Standing::OverBudget => ("$", "#953800"),
        Standing::Replaced => ("↷", "#57606a"),
        Standing::Failed => ("!", "#cf222e"),
        Standing::Interrupted => ("‖", "#bf8700"),
        Standing::Running => ("▸", "#0969da"),
        Standing::Unfinished => ("…", "#57606a"),
    }
}

const ENDS: [Standing; 9] = [
    Standing::Done,
    Standing::Blocked,
    Standing::OutOfNudges,
    Standing::OverBudget,
    Standing::Failed,
    Standing::Interrupted,
    Standing::Replaced,
    Standing::Running,
    Standing::Unfinished,
];

fn draw_task(svg: &mut String, task: &TaskRow, axis: &Axis, y: f64, now_ms: u64) {
    let summary = describe(task);
    let (from, to) = (axis.x(task.started_ms), axis.x(end_of(task, now_ms)));
    let _ = write!(
        svg,
        r##"<g class="task {}" data-task-id="{}"><title>{}</title><rect class="hover" x="{from:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#000000" fill-opacity="0"/>"##,
        task.standing.class(),
        xml(&task.task_id),
        xml(&summary),
        y - 12.0,
        to - from + 14.0,
        BAR + 22.0
    );
    let label = one_line(&task.task, 200);
    if label.chars().count() as f64 * LABEL_CHAR + 4.0 <= to - from {
        let _ = write!(
            svg,
            r##"<text class="bar-label" x="{from:.1}" y="{:.1}" font-size="10" fill="#57606a">{}</text>"##,
            y - 4.0,
            xml(&label)
        );
    }
    for span in &task.spans {
        draw_span(svg, span, &summary, axis, y);
    }
    for at in &task.nudged_ms {
        let x = axis.x(*at);
        let _ = write!(
            svg,
            r##"<polygon class="nudge" points="{:.1},{:.1} {:.1},{:.1} {x:.1},{:.1}" fill="{NUDGE}"><title>nudge at {}</title></polygon>"##,
            x - 4.0,
            y + BAR + 8.0,
            x + 4.0,
            y + BAR + 8.0,
            y + BAR + 1.0,
            crate::human::clock_seconds(*at, crate::human::Zone::Utc)
        );
    }
    for marker in &task.markers {
        draw_marker(svg, marker, axis, y);
    }
    let (glyph, color) = end_style(task.standing);
    let _ = write!(
        svg,
        r#"<text class="outcome {}" x="{:.1}" y="{:.1}" fill="{color}" font-weight="bold">{glyph}</text>"#,
        task.standing.class(),
        to + 2.0,
        y + BAR - 3.0,
    );
    if let Some(landing) = &task.landing {
        let what = super::landing::describe(task).unwrap_or_default();
        draw_landing(svg, landing, &what, axis.x(landing.at_ms), y);
    }
    svg.push_str("</g>");
}

fn draw_span(svg: &mut String, span: &Span, summary: &str, axis: &Axis, y: f64) {
    let x = axis.x(span.start_ms);
    let width = (axis.x(span.end_ms) - x).max(1.5);
    let (name, mut color) = phase_style(span.phase);
    let mut what = format!(
        "{name} {}",
        crate::human::duration(std::time::Duration::from_millis(
            span.end_ms.saturating_sub(span.start_ms)
        ))
    );
    let mut class = format!("span {name}");
    if let Some(failure) = &span.failure {
        color = FAILED_CHECK;
        class.push_str(" failed");
        let _ = write!(what, ", failed: {failure}");
    }
    let _ = write!(
        svg,
        r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR}" fill="{color}"><title>{}

{}</title></rect>"#,
        xml(&what),
        xml(summary)
    );
}

fn draw_marker(svg: &mut String, marker: &Marker, axis: &Axis, y: f64) {
    let (name, color) = fault_style(marker.fault);
    let _ = write!(
        svg,
        r##"<circle class="marker {name}" cx="{:.1}" cy="{y:.1}" r="5" fill="{color}" stroke="#ffffff"><title>{} at {}</title></circle>"##,
        axis.x(marker.at_ms),
        name.replace('_', " "),
        crate::human::clock_seconds(marker.at_ms, crate::human::Zone::Utc)
    );
}

/// A landing: a diamond on the task's lane at its time, filled once the target holds
/// the work, hollow while it runs or when it was given up.
fn draw_landing(svg: &mut String, landing: &Landing, what: &str, x: f64, y: f64) {
    let (fill, stroke) = landing_style(landing);
    let mid = y + BAR / 2.0;
    let _ = write!(
        svg,
        r#"<polygon class="landing {}" points="{:.1},{:.1} {:.1},{mid:.1} {x:.1},{:.1} {:.1},{mid:.1}" fill="{fill}" stroke="{stroke}" stroke-width="2"><title>{} at {}</title></polygon>"#,
        landing.class(),
        x,
        mid - 8.0,
        x + 6.0,
        mid + 8.0,
        x - 6.0,
        xml(what),
        crate::human::clock_seconds(landing.at_ms, crate::human::Zone::Utc)
    );
}

/// A landing's fill and outline.
fn landing_style(landing: &Landing) -> (&'static str, &'static str) {
    match landing.verdict {
        Some(Verdict::Landed) => (LANDING, "#ffffff"),
        Some(Verdict::Landable) | None => ("#ffffff", LANDING),
        Some(_) => ("#ffffff", FAILED_CHECK),
    }
}

/// Three rows: the phases (and a failed check, a nudge, a landing), the faults, the
/// ends.
fn legend(svg: &mut String, y: f64) {
    let mut x = LABEL;
    let advance = |x: &mut f64, name: &str| *x += 36.0 + name.chars().count() as f64 * 7.0;
    for phase in [
        SpanPhase::Planning,
        SpanPhase::Implementing,
        SpanPhase::Checks,
        SpanPhase::Review,
        SpanPhase::Landing,
    ] {
        let (name, color) = phase_style(phase);
        swatch(svg, x, y, color, name);
        advance(&mut x, name);
    }
    swatch(svg, x, y, FAILED_CHECK, "check failed");
    advance(&mut x, "check failed");
    let _ = write!(
        svg,
        r##"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{NUDGE}"/><text x="{:.1}" y="{y}" fill="#24292f">nudge</text>"##,
        x + 2.0,
        y + 1.0,
        x + 10.0,
        y + 1.0,
        x + 6.0,
        y - 8.0,
        x + 16.0
    );
    advance(&mut x, "nudge");
    for verdict in [Verdict::Landed, Verdict::NotLanded] {
        let landing = Landing {
            verdict: Some(verdict),
            ..Landing::under_way(0)
        };
        let name = landing.label();
        let _ = write!(svg, r#"<g class="legend-landing {}">"#, landing.class());
        draw_landing(svg, &landing, name, x + 6.0, y - 12.0);
        let _ = write!(
            svg,
            r##"<text x="{}" y="{y}" fill="#24292f">{name}</text></g>"##,
            x + 16.0
        );
        advance(&mut x, name);
    }
    let mut x = LABEL;
    let y = y + LEGEND_ROW;
    for fault in [
        Fault::Crash,
        Fault::DaemonRestart,
        Fault::Compaction,
        Fault::HandOff,
        Fault::ProviderError,
        Fault::Budget,
    ] {
        let (name, color) = fault_style(fault);
        let name = name.replace('_', " ");
        let _ = write!(
            svg,
            r##"<circle cx="{}" cy="{}" r="5" fill="{color}"/><text x="{}" y="{y}" fill="#24292f">{name}</text>"##,
            x + 6.0,
            y - 4.0,
            x + 16.0,
        );
        advance(&mut x, &name);
    }
    let mut x = LABEL;
    let y = y + LEGEND_ROW;
    for standing in ENDS {
        let (glyph, color) = end_style(standing);
        let _ = write!(
            svg,
            r##"<g class="legend-end {}"><text x="{x}" y="{y}" fill="{color}" font-weight="bold">{glyph}</text><text x="{}" y="{y}" fill="#24292f">{}</text></g>"##,
            standing.class(),
            x + 14.0,
            standing.label()
        );
        advance(&mut x, standing.label());
    }
}

fn swatch(svg: &mut String, x: f64, y: f64, color: &str, name: &str) {
    let _ = write!(
        svg,
        r##"<rect x="{x}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{y}" fill="#24292f">{name}</text>"##,
        y - 10.0,
        x + 16.0
    );
}

fn phase_style(phase: SpanPhase) -> (&'static str, &'static str) {
    match phase {
        SpanPhase::Planning => ("planning", "#8250df"),
        SpanPhase::Implementing => ("implementing", "#0969da"),
        SpanPhase::Checks => ("checks", "#bf8700"),
        SpanPhase::Review => ("review", "#1a7f37"),
        SpanPhase::Landing => ("landing", "#3e8eaa"),
    }
}

fn fault_style(fault: Fault) -> (&'static str, &'static str) {
    match fault {
        Fault::Crash => ("crash", "#cf222e"),
        Fault::DaemonRestart => ("daemon_restart", "#24292f"),
        Fault::Compaction => ("compaction", "#8c959f"),
        Fault::HandOff => ("hand_off", "#fb8500"),
        Fault::ProviderError => ("provider_error", "#bf3989"),
        Fault::Budget => ("budget", "#953800"),
    }
}

/// What hovering a task shows.
pub fn describe(task: &TaskRow) -> String {
    let mut text = format!(
        "{}\n{} ({}): {}",
        one_line(&task.task, 120),
        task.standing.label(),
        task.exit_code
            .map_or("no step ended".to_string(), |c| format!("exit {c}")),
        task.message.as_deref().unwrap_or("")
    );
    let _ = write!(
        text,
        "\n{} commit(s), {} turn(s), {}, {}",
        task.commits,
        task.turns,
        crate::human::usd(task.cost_usd),
        crate::human::duration(std::time::Duration::from_millis(task.duration_ms))
    );
    let mut went = Vec::new();
    if task.checks_passed + task.checks_failed > 0 {
        went.push(format!(
            "checks: {} passed, {} failed",
            task.checks_passed, task.checks_failed
        ));
    }
    if task.nudges > 0 {
        went.push(format!("{} nudge(s)", task.nudges));
    }
    let faults = task.faults.describe();
    if !faults.is_empty() {
        went.push(faults);
    }
    if !went.is_empty() {
        let _ = write!(text, "\n{}", went.join("; "));
    }
    if let Some(failure) = task.spans.iter().rev().find_map(|s| s.failure.as_deref()) {
        let _ = write!(text, "\nlast failed check: {failure}");
    }
    if let Some(landing) = super::landing::describe(task) {
        let _ = write!(text, "\n{landing}");
    }
    text
}

/// Text from outside, made safe to put in XML: markup escaped, control characters
/// (which XML 1.0 cannot hold) and bidirectional overrides (which would reorder what
/// the text shows) shown as `\u{..}`.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in crate::human::safe(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            // What XML cannot hold at all (control characters, U+FFFE, U+FFFF) is shown.
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_cannot_break_the_markup() {
        let shown = xml("a <b> & \"c\" \u{1b}[2J\u{7}");
        assert_eq!(shown, "a &lt;b&gt; &amp; &quot;c&quot; \\u{1b}[2J\\u{7}");
        assert_eq!(xml("\u{fffe}\u{ffff}"), "\\u{fffe}\\u{ffff}");
        assert_eq!(xml("a\u{202e}b"), "a\\u{202e}b", "no bidi override");
    }

    fn ticks(start: u64, end: u64) -> Vec<String> {
        let mut svg = String::new();
        Axis { start, end }.draw(&mut svg, 100.0);
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, rest)| rest.split_once('<')))
            .map(|(label, _)| label.to_string())
            .filter(|label| label != "UTC")
            .collect()
    }

    #[test]
    fn the_time_axis_has_a_few_ticks_and_dates_once_days_go_by() {
        const DAY: u64 = 86_400_000;
        let night = ticks(1_764_720_000_000, 1_764_720_000_000 + DAY / 2);
        assert!(night.len() <= 11 && night.len() >= 5, "{night:?}");
        assert_eq!(night[0], "2025-12-03", "midnight is a date");
        assert_eq!(night[1], "02:00");
        let month = ticks(1_764_720_000_000 - 30 * DAY, 1_764_720_000_000);
        assert!(month.len() <= 11, "{month:?}");
        assert!(month.iter().all(|t| t.starts_with("2025-")), "{month:?}");
        let forever = ticks(0, u64::MAX);
        assert!(forever.len() <= 11, "{forever:?}");
    }

    #[test]
    fn a_night_shorter_than_a_second_still_has_ticks_across_it() {
        let start = 1_764_720_000_000 + 41 * 60_000 + 250;
        let short = ticks(start, start + 1_400);
        assert!(short.len() >= 3, "{short:?}");
        assert_eq!(short[0], "00:41:00.4", "{short:?}");
        let xs: Vec<f64> = {
            let mut svg = String::new();
            let axis = Axis {
                start,
                end: start + 1_400,
            };
            axis.draw(&mut svg, 100.0);
            svg.split("x1=\"")
                .skip(1)
                .filter_map(|t| t.split('"').next()?.parse().ok())
                .collect()
        };
        let plot = WIDTH - LABEL - RIGHT;
        assert!(xs[0] < LABEL + plot / 3.0, "{xs:?}");
        assert!(*xs.last().unwrap() > LABEL + plot * 2.0 / 3.0, "{xs:?}");
    }
}

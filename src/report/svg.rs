//! The night as a picture: one row per worker along a time axis, a bar per stretch of
//! a task's time colored by its phase, a marker where each fault happened, and each
//! task's outcome where it ended. Hovering shows what each is (SVG `<title>`).

use std::fmt::Write;

use super::{Marker, Span, SpanPhase, Standing, TaskRow, one_line};
use crate::protocol::Fault;

const WIDTH: f64 = 1200.0;
const LABEL: f64 = 150.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 34.0;
const ROW: f64 = 40.0;
const BAR: f64 = 16.0;
const LEGEND: f64 = 56.0;

/// The picture of `rows` (a worker's tasks in the order they began); a task still
/// running reaches `now_ms`.
pub fn render(rows: &[TaskRow], now_ms: u64) -> String {
    let workers = super::by_worker(rows);
    let start = rows.iter().map(|r| r.started_ms).min().unwrap_or(now_ms);
    let end = rows
        .iter()
        .map(|r| end_of(r, now_ms))
        .max()
        .unwrap_or(now_ms)
        .max(start.saturating_add(1000));
    let axis = Axis { start, end };
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
            draw_task(&mut svg, task, &axis, y + (ROW - BAR) / 2.0, now_ms);
        }
        svg.push_str("</g>");
    }
    legend(&mut svg, height - LEGEND + 16.0);
    svg.push_str("</svg>\n");
    svg
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

impl Axis {
    fn x(&self, ms: u64) -> f64 {
        let span = (self.end - self.start) as f64;
        let at = ms.clamp(self.start, self.end) - self.start;
        LABEL + (WIDTH - LABEL - RIGHT) * at as f64 / span
    }

    /// At most about ten ticks at a round step, labelled in UTC: a time of day, the
    /// date at midnight, and only dates once the step is a day or more.
    fn draw(&self, svg: &mut String, bottom: f64) {
        const DAY: u64 = 86_400;
        const STEPS_S: [u64; 17] = [
            1,
            5,
            15,
            30,
            60,
            300,
            900,
            1800,
            3600,
            7200,
            21600,
            43200,
            DAY,
            2 * DAY,
            7 * DAY,
            14 * DAY,
            28 * DAY,
        ];
        let span_s = (self.end - self.start) / 1000;
        let step_s = STEPS_S
            .iter()
            .copied()
            .find(|s| span_s / s <= 10)
            .unwrap_or_else(|| (span_s / 10).div_ceil(DAY) * DAY);
        let step = step_s.saturating_mul(1000);
        let mut next = Some(self.start.div_ceil(step).saturating_mul(step));
        while let Some(tick) = next.filter(|t| *t <= self.end) {
            next = tick.checked_add(step);
            let x = self.x(tick);
            let secs = (tick / 1000) % DAY;
            let label = match step_s {
                s if s >= DAY || secs == 0 => crate::time::utc_date(tick),
                s if s < 60 => format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
                _ => format!("{:02}:{:02}", secs / 3600, secs / 60 % 60),
            };
            let _ = write!(
                svg,
                r##"<line class="tick" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#d0d7de"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#57606a">{label}</text>"##,
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

fn draw_task(svg: &mut String, task: &TaskRow, axis: &Axis, y: f64, now_ms: u64) {
    let summary = describe(task);
    let _ = write!(
        svg,
        r#"<g class="task" data-task-id="{}"><title>{}</title>"#,
        xml(&task.task_id),
        xml(&summary)
    );
    for span in &task.spans {
        draw_span(svg, span, task, axis, y);
    }
    for marker in &task.markers {
        draw_marker(svg, marker, axis, y);
    }
    let end = axis.x(end_of(task, now_ms));
    let (glyph, color) = match task.standing {
        Standing::Done => ("✓", "#1a7f37"),
        Standing::Running | Standing::Unfinished => ("…", "#57606a"),
        Standing::Replaced => ("↷", "#57606a"),
        _ => ("✗", "#cf222e"),
    };
    let _ = write!(
        svg,
        r#"<text class="outcome {}" x="{:.1}" y="{:.1}" fill="{color}" font-weight="bold"><title>{}</title>{glyph}</text>"#,
        task.standing.class(),
        end + 2.0,
        y + BAR - 3.0,
        xml(&summary)
    );
    svg.push_str("</g>");
}

fn draw_span(svg: &mut String, span: &Span, task: &TaskRow, axis: &Axis, y: f64) {
    let x = axis.x(span.start_ms);
    let width = (axis.x(span.end_ms) - x).max(1.5);
    let (name, color) = phase_style(span.phase);
    let _ = write!(
        svg,
        r#"<rect class="span {name}" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR}" fill="{color}"><title>{name} {}: {}</title></rect>"#,
        crate::human::duration(std::time::Duration::from_millis(
            span.end_ms.saturating_sub(span.start_ms)
        )),
        xml(&one_line(&task.task, 80))
    );
}

fn draw_marker(svg: &mut String, marker: &Marker, axis: &Axis, y: f64) {
    let (name, color) = fault_style(marker.fault);
    let _ = write!(
        svg,
        r##"<circle class="marker {name}" cx="{:.1}" cy="{:.1}" r="5" fill="{color}" stroke="#ffffff"><title>{} at {}</title></circle>"##,
        axis.x(marker.at_ms),
        y - 4.0,
        name.replace('_', " "),
        crate::human::clock_seconds(marker.at_ms, crate::human::Zone::Utc)
    );
}

fn legend(svg: &mut String, y: f64) {
    let mut x = LABEL;
    for phase in [
        SpanPhase::Planning,
        SpanPhase::Implementing,
        SpanPhase::Checks,
        SpanPhase::Review,
    ] {
        let (name, color) = phase_style(phase);
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{y}" fill="#24292f">{name}</text>"##,
            y - 10.0,
            x + 16.0
        );
        x += 110.0;
    }
    let mut x = LABEL;
    let y = y + 20.0;
    for fault in [
        Fault::Crash,
        Fault::DaemonRestart,
        Fault::Compaction,
        Fault::HandOff,
        Fault::ProviderError,
        Fault::Budget,
    ] {
        let (name, color) = fault_style(fault);
        let _ = write!(
            svg,
            r##"<circle cx="{}" cy="{}" r="5" fill="{color}"/><text x="{}" y="{y}" fill="#24292f">{}</text>"##,
            x + 6.0,
            y - 4.0,
            x + 16.0,
            name.replace('_', " ")
        );
        x += 130.0;
    }
}

fn phase_style(phase: SpanPhase) -> (&'static str, &'static str) {
    match phase {
        SpanPhase::Planning => ("planning", "#8250df"),
        SpanPhase::Implementing => ("implementing", "#0969da"),
        SpanPhase::Checks => ("checks", "#bf8700"),
        SpanPhase::Review => ("review", "#1a7f37"),
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
    let faults = task.faults.describe();
    if !faults.is_empty() {
        let _ = write!(text, "\n{faults}");
    }
    text
}

/// Text from outside, made safe to put in XML: markup escaped, control characters
/// (which XML 1.0 cannot hold) shown as `\u{..}`.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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
}

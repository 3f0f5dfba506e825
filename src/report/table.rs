//! The report as a table: its columns are declared once and drawn three ways (for a
//! terminal, as Markdown, as HTML).

use std::time::Duration;

use super::svg::xml;
use super::{Standing, TaskRow, Totals, one_line};
use crate::human::{safe, usd};
use crate::table as grid;

/// A column: its header, how a task and a total fill it, and whether it holds a number
/// (right-aligned). Which go first on a narrow terminal is [`crate::table::RANKING`]'s.
struct Column {
    name: &'static str,
    numeric: bool,
    /// Whether the report's rows call for it at all.
    wanted: fn(&[TaskRow]) -> bool,
    cell: fn(&TaskRow) -> String,
    total: fn(&Totals) -> String,
}

fn always(_: &[TaskRow]) -> bool {
    true
}

/// A report over workers of more than one repository names each row's.
fn several_repositories(rows: &[TaskRow]) -> bool {
    let mut repositories = rows.iter().map(|r| r.repository.as_deref());
    let first = repositories.next();
    repositories.any(|r| Some(r) != first)
}

/// Whether `leash land` has been at any of the tasks.
fn any_landing(rows: &[TaskRow]) -> bool {
    rows.iter()
        .any(|r| r.landed.is_some() || r.landing.is_some())
}

/// `3 landed, 1 not landed`.
fn landed_total(t: &Totals) -> String {
    let mut parts = Vec::new();
    for (n, what) in [(t.landed, "landed"), (t.not_landed, "not landed")] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    or_dash(parts.join(", "))
}

/// Whether the tasks ran on more than one machine.
fn several_hosts(rows: &[TaskRow]) -> bool {
    let mut hosts = rows.iter().map(|r| r.host.as_deref());
    let first = hosts.next();
    hosts.any(|h| Some(h) != first)
}

/// The items of the columns `wanted`.
fn only<T>(items: Vec<T>, wanted: &[bool]) -> Vec<T> {
    items
        .into_iter()
        .zip(wanted)
        .filter(|(_, w)| **w)
        .map(|(item, _)| item)
        .collect()
}

/// Which columns the rows call for.
fn wanted(rows: &[TaskRow]) -> Vec<bool> {
    COLUMNS.iter().map(|c| (c.wanted)(rows)).collect()
}

fn dash(n: u32) -> String {
    if n == 0 {
        "-".to_string()
    } else {
        n.to_string()
    }
}

fn time(ms: u64) -> String {
    crate::human::duration(Duration::from_millis(ms))
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

const COLUMNS: &[Column] = &[
    Column {
        name: "WORKER",
        numeric: false,
        wanted: always,
        cell: |r| r.worker.clone(),
        total: |t| t.worker.clone().unwrap_or_else(|| "all".to_string()),
    },
    Column {
        name: "TASK",
        numeric: false,
        wanted: always,
        cell: |r| one_line(&r.task, 200),
        total: |t| {
            let mut parts = vec![format!("{} task(s): {} done", t.tasks, t.done)];
            for (n, what) in [
                (t.need_you, "need you"),
                (t.running, "running"),
                (t.unfinished, "unfinished"),
                (t.replaced, "replaced"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            parts.join(", ")
        },
    },
    Column {
        name: "OUTCOME",
        numeric: false,
        wanted: always,
        cell: |r| r.standing.label().to_string(),
        total: |_| String::new(),
    },
    Column {
        name: "EXIT",
        numeric: true,
        wanted: always,
        cell: |r| r.exit_code.map_or("-".to_string(), |c| c.to_string()),
        total: |_| String::new(),
    },
    Column {
        name: "LANDED",
        numeric: false,
        wanted: any_landing,
        cell: super::landing::cell,
        total: landed_total,
    },
    Column {
        name: "COMMITS",
        numeric: true,
        wanted: always,
        cell: |r| match &r.latest_commit {
            Some(c) => format!("{} {}", r.commits, crate::git::short_id(&c.id)),
            None => dash(r.commits),
        },
        total: |t| dash(t.commits),
    },
    Column {
        name: "CHECKS",
        numeric: false,
        wanted: always,
        cell: |r| match (r.checks_passed, r.checks_failed) {
            (0, 0) => "-".to_string(),
            (p, 0) => format!("{p} pass"),
            (p, f) => format!("{p} pass {f} fail"),
        },
        total: |_| String::new(),
    },
    Column {
        name: "REVIEWS",
        numeric: true,
        wanted: always,
        cell: |r| dash(r.reviews),
        total: |_| String::new(),
    },
    Column {
        name: "NUDGES",
        numeric: true,
        wanted: always,
        cell: |r| dash(r.nudges),
        total: |_| String::new(),
    },
    Column {
        name: "RESCOPES",
        numeric: true,
        wanted: always,
        cell: |r| dash(r.rescopes),
        total: |_| String::new(),
    },
    Column {
        name: "COST",
        numeric: true,
        wanted: always,
        cell: |r| usd(r.cost_usd),
        total: |t| usd(t.cost_usd),
    },
    Column {
        name: "TURNS",
        numeric: true,
        wanted: always,
        cell: |r| r.turns.to_string(),
        total: |t| t.turns.to_string(),
    },
    Column {
        name: "TIME",
        numeric: true,
        wanted: always,
        cell: |r| time(r.duration_ms),
        total: |t| time(t.duration_ms),
    },
    Column {
        name: "WENT WRONG",
        numeric: false,
        wanted: always,
        cell: |r| or_dash(r.faults.describe()),
        total: |t| or_dash(t.faults.describe()),
    },
    Column {
        name: "REPOSITORY",
        numeric: false,
        wanted: several_repositories,
        cell: |r| r.repository.clone().unwrap_or_else(|| "-".to_string()),
        total: |_| String::new(),
    },
    Column {
        name: "HOST",
        numeric: false,
        wanted: several_hosts,
        cell: |r| r.host.clone().unwrap_or_else(|| "-".to_string()),
        total: |_| String::new(),
    },
    Column {
        name: "BRANCH",
        numeric: false,
        wanted: always,
        cell: |r| r.branch.clone().unwrap_or_else(|| "-".to_string()),
        total: |_| String::new(),
    },
];

/// Every cell: the tasks' rows, then the totals'.
fn cells(rows: &[TaskRow], totals: &[Totals]) -> Vec<Vec<String>> {
    let tasks = rows
        .iter()
        .map(|r| COLUMNS.iter().map(|c| (c.cell)(r)).collect());
    let sums = totals
        .iter()
        .map(|t| COLUMNS.iter().map(|c| (c.total)(t)).collect());
    tasks.chain(sums).collect()
}

/// For a terminal `width` columns wide (`None`: as wide as it takes); with `color`,
/// each outcome in its color. Text from outside is escaped.
pub fn text(rows: &[TaskRow], totals: &[Totals], width: Option<usize>, color: bool) -> String {
    let cells: Vec<Vec<String>> = cells(rows, totals)
        .into_iter()
        .map(|row| row.into_iter().map(|c| safe(&c).into_owned()).collect())
        .collect();
    let columns: Vec<grid::Column> = COLUMNS
        .iter()
        .map(|c| grid::Column {
            name: c.name,
            numeric: c.numeric,
        })
        .collect();
    let fitted = grid::Fitted::new(&columns, &cells, wanted(rows), TASK, width);
    let header: Vec<String> = COLUMNS.iter().map(|c| c.name.to_string()).collect();
    let mut out = fitted.line(&columns, &header, grid::Kind::Header, |_, c| c);
    out.push('\n');
    for (r, row) in cells.iter().enumerate() {
        let line = match rows.get(r) {
            Some(task) => fitted.line(&columns, row, grid::Kind::Row, |i, cell| {
                match color && i == OUTCOME {
                    true => paint(task.standing, &cell),
                    false => cell,
                }
            }),
            None => fitted.line(&columns, row, grid::Kind::Total, |_, c| c),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

const TASK: usize = 1;
const OUTCOME: usize = 2;

fn paint(standing: Standing, text: &str) -> String {
    let styled = console::style(text);
    match standing {
        Standing::Done => styled.green(),
        Standing::Running | Standing::Unfinished | Standing::Replaced => styled.cyan(),
        _ => styled.red().bold(),
    }
    .force_styling(true)
    .to_string()
}

/// As a Markdown table, for a pull request or a chat.
pub fn markdown(rows: &[TaskRow], totals: &[Totals]) -> String {
    // Markdown renders HTML and its own marks: a task's `<b>`, `**x**` or `[a](b)` is
    // shown as typed, not obeyed.
    let escape = |s: &str| {
        let mut out = String::new();
        for c in safe(s).chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '~' | '#' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    };
    let mut out = String::new();
    let wanted = wanted(rows);
    let line = |cells: Vec<String>| format!("| {} |\n", only(cells, &wanted).join(" | "));
    out.push_str(&line(COLUMNS.iter().map(|c| c.name.to_string()).collect()));
    out.push_str(&line(
        COLUMNS
            .iter()
            .map(|c| if c.numeric { "---:" } else { "---" }.to_string())
            .collect(),
    ));
    for (i, row) in cells(rows, totals).into_iter().enumerate() {
        let total = i >= rows.len();
        out.push_str(&line(
            row.iter()
                .map(|c| match (total, c.is_empty()) {
                    (true, false) => format!("**{}**", escape(c)),
                    _ => escape(c),
                })
                .collect(),
        ));
    }
    out
}

/// As an HTML table.
pub fn html(rows: &[TaskRow], totals: &[Totals]) -> String {
    let wanted = wanted(rows);
    let columns = only(COLUMNS.iter().collect(), &wanted);
    let mut out = String::from("<table>\n<tr>");
    for c in &columns {
        out.push_str(&format!("<th>{}</th>", c.name));
    }
    out.push_str("</tr>\n");
    for (i, row) in cells(rows, totals).into_iter().enumerate() {
        let class = match rows.get(i) {
            Some(r) => r.standing.class(),
            None => "total".to_string(),
        };
        out.push_str(&format!("<tr class=\"{class}\">"));
        for (c, cell) in columns.iter().zip(only(row, &wanted)) {
            // Numbers, branches and outcomes stay on one line; only prose wraps.
            let align = match (c.numeric, c.name) {
                (true, _) => " class=\"n\"",
                (false, "TASK" | "WENT WRONG") => " class=\"prose\"",
                (false, _) => "",
            };
            out.push_str(&format!("<td{align}>{}</td>", xml(&cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// A page of its own: the picture above the table, nothing fetched from elsewhere.
pub fn page(svg: &str, table: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>leash report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #24292f; }}
table {{ border-collapse: collapse; margin-top: 1.5em; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left; white-space: nowrap; }}
td.n {{ text-align: right; }}
td.prose {{ white-space: normal; }}
svg {{ width: 100%; height: auto; display: block; }}
tr.done td:nth-child(3) {{ color: #1a7f37; }}
tr.blocked td:nth-child(3), tr.out_of_nudges td:nth-child(3), tr.over_budget td:nth-child(3),
tr.failed td:nth-child(3), tr.interrupted td:nth-child(3) {{ color: #cf222e; font-weight: bold; }}
tr.total td {{ font-weight: bold; }}
</style>
</head>
<body>
<h1>leash report</h1>
{svg}{table}</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fold::Ledger;

    /// A night of five tasks that ended each its own way.
    fn night() -> (Vec<TaskRow>, Vec<Totals>) {
        let mut ledger = Ledger::new();
        for i in 1..=5 {
            ledger.line(&format!(
                r#"{{"type":"step_started","seq":{i},"ts":{i}000,"turn":{i},"step":"plan","task_id":"t{i}","task":"Add a --version flag that prints the build's commit, number {i}"}}"#
            ));
        }
        let mut rows = ledger.rows();
        let ends = [
            Standing::Done,
            Standing::Done,
            Standing::Blocked,
            Standing::Running,
            Standing::Replaced,
        ];
        for (i, (row, standing)) in rows.iter_mut().zip(ends).enumerate() {
            row.worker = format!("task-{}", i + 1);
            row.branch = Some(format!("leash/task-{}", i + 1));
            row.standing = standing;
            row.exit_code = Some(0);
            row.cost_usd = 0.0012;
            row.turns = 3;
            row.duration_ms = 16_400;
            row.checks_passed = 1;
            row.faults.crashes = 1;
        }
        let totals = vec![Totals::of(None, &rows)];
        (rows, totals)
    }

    #[test]
    fn a_host_column_shows_only_when_tasks_ran_on_several_machines() {
        let (mut rows, totals) = night();
        for row in &mut rows {
            row.host = Some("node-a".to_string());
        }
        let one = text(&rows, &totals, None, false);
        assert!(!one.lines().next().unwrap().contains("HOST"), "{one}");
        rows[2].host = Some("node-b".to_string());
        let two = text(&rows, &totals, None, false);
        assert!(two.lines().next().unwrap().contains("HOST"), "{two}");
        assert!(two.contains("node-b"), "{two}");
    }

    #[test]
    fn at_80_100_and_120_columns_the_table_fits_header_and_rows_alike() {
        let (rows, totals) = night();
        let breakdown = "5 task(s): 2 done, 1 need you, 1 running, 1 replaced";
        for width in [80, 100, 120] {
            let table = text(&rows, &totals, Some(width), false);
            let lines: Vec<&str> = table.lines().collect();
            for line in &lines {
                assert!(grid::width_of(line) <= width, "{width}: {line}\n{table}");
            }
            let header = lines[0];
            for (name, mark) in [
                ("COST", "$0.0012"),
                ("TIME", "16.4 s"),
                ("BRANCH", "leash/task-1"),
            ] {
                let in_rows = lines[1..=rows.len()].iter().all(|l| l.contains(mark));
                assert_eq!(header.contains(name), in_rows, "{width}: {name}\n{table}");
            }
            assert!(
                lines[1].contains("Add a --version flag"),
                "{width}:\n{table}"
            );
            assert!(
                lines.last().unwrap().contains(breakdown),
                "the totals are not cut at {width}:\n{table}"
            );
        }
    }

    #[test]
    fn a_task_s_markdown_and_html_are_shown_as_typed() {
        let mut ledger = Ledger::new();
        ledger.line(
            r#"{"type":"step_started","seq":1,"ts":1,"turn":1,"step":"plan","task_id":"t","task":"**bold** a\\|b [x](y) <b>"}"#,
        );
        let rows = ledger.rows();
        let table = markdown(&rows, &[Totals::of(None, &rows)]);
        let cell = table.lines().nth(2).unwrap();
        assert!(
            cell.contains(r"\*\*bold\*\* a\\\|b \[x\](y) &lt;b&gt;"),
            "{cell}"
        );
    }
}

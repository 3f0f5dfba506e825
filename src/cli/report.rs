//! `leash report`: what each worker did with its tasks, one row per task, from the
//! workers' event logs and task histories: a table, JSON, Markdown, or a picture.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{block_on, current_dir};
use super::session::list::running_statuses;
use super::{Global, Output};
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::paths::{Dirs, WorkerName};
use crate::protocol::SessionStatus;
use crate::record::SessionRecord;
use crate::report::gather::{self, Gathered, WorkerFacts};
use crate::report::history::{self, HISTORY_FILE};
use crate::report::{Standing, TaskRow, Totals, natural_cmp, svg, table};
use crate::time::now_ms;

pub const EXAMPLES: &str = "Examples:
  leash report                          # this repository's workers, every task they kept
  leash report --since 12h              # last night
  leash report --all --since 2026-12-02 # every worker of yours since that day (UTC)
  leash report --markdown | pbcopy      # for a pull request
  leash report --svg > night.svg        # the night as a picture
  leash report --json | jq 'select(.type == \"task\" and .standing != \"done\")'";

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Every worker of yours, not only this repository's
    #[arg(long)]
    pub all: bool,
    /// Only tasks active since then: a time back from now (`12h`, `3d`) or a UTC date
    /// (`2026-12-02`, `2026-12-02T18:00`)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// As a Markdown table, for a pull request or a chat
    #[arg(long, conflicts_with_all = ["svg", "html"])]
    pub markdown: bool,
    /// As a picture: the workers' tasks along a time axis (SVG)
    #[arg(long, conflicts_with = "html")]
    pub svg: bool,
    /// As a self-contained HTML page: the picture and the table
    #[arg(long)]
    pub html: bool,
}

pub fn run(args: ReportArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    if out.json && (args.markdown || args.svg || args.html) {
        return Err(
            Error::usage("--json prints JSON lines; it cannot be Markdown or a picture")
                .hint("drop --json, or drop --markdown/--svg/--html"),
        );
    }
    let since = args.since.as_deref().map(since_ms).transpose()?;
    let dirs = Dirs::from_env()?;
    let workers = workers(&dirs, global, args.all)?;
    let targets = workers
        .into_iter()
        .map(|worker| Target::for_worker(dirs.clone(), worker))
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = block_on(async { Ok(running_statuses(&targets).await) })?;
    let now = now_ms();
    let mut rows = Vec::new();
    let mut skipped = 0;
    for (target, status) in targets.iter().zip(statuses) {
        let gathered = tasks_of(target, status, now)?;
        rows.extend(gathered.rows);
        skipped += gathered.skipped;
        if gathered.long_lines > 0 {
            out.say(format!(
                "skipped {} line(s) of {} longer than {} KiB (no task row is that long)",
                gathered.long_lines,
                target.state_dir.join(HISTORY_FILE).display(),
                history::MAX_LINE >> 10
            ));
        }
    }
    if skipped > 0 {
        out.note(format!(
            "{skipped} history row(s) skipped: dated before 2020 or more than a day ahead"
        ));
    }
    rows.retain(|r| {
        since.is_none_or(|since| r.last_ms >= since) || r.standing == Standing::Running
    });
    rows.sort_by(|a, b| natural_cmp(&a.worker, &b.worker).then(a.started_ms.cmp(&b.started_ms)));
    let totals = totals(&rows);
    if out.json {
        for row in &rows {
            out.json(row);
        }
        for total in &totals {
            out.json(total);
        }
        return Ok(0);
    }
    if args.svg {
        out.data(svg::render(&rows, now).trim_end());
        return Ok(0);
    }
    if args.html {
        let page = table::page(&svg::render(&rows, now), &table::html(&rows, &totals));
        out.data(page.trim_end());
        return Ok(0);
    }
    if rows.is_empty() {
        out.note(&match (&global.worker, args.all) {
            (Some(worker), _) => format!("worker {worker} has no tasks yet"),
            (None, true) => "no tasks yet".to_string(),
            (None, false) => {
                "no tasks yet in this repository (`leash report --all` shows every worker's)"
                    .to_string()
            }
        });
        return Ok(0);
    }
    if args.markdown {
        out.data(table::markdown(&rows, &totals).trim_end());
        return Ok(0);
    }
    let terminal = std::io::stdout().is_terminal();
    let width = terminal
        .then(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(_, w)| usize::from(w))
        })
        .flatten();
    let color = terminal && console::colors_enabled();
    out.data(table::text(&rows, &totals, width, color).trim_end());
    Ok(0)
}

/// Each worker's totals (when there are several), then everyone's.
fn totals(rows: &[TaskRow]) -> Vec<Totals> {
    let by_worker = crate::report::by_worker(rows);
    let mut totals: Vec<Totals> = Vec::new();
    if by_worker.len() > 1 {
        for (worker, tasks) in by_worker {
            totals.push(Totals::of(Some(worker.to_string()), tasks));
        }
    }
    totals.push(Totals::of(None, rows));
    totals
}

/// The workers the report is about: `--worker`, every one with `--all`, else those of
/// the repository this runs in.
fn workers(dirs: &Dirs, global: &Global, all: bool) -> Result<Vec<WorkerName>, Error> {
    let known = dirs.known_workers();
    if global.worker.is_some() && all {
        return Err(
            Error::usage("--all reports on every worker and --worker on one")
                .hint("drop one of them"),
        );
    }
    if let Some(name) = &global.worker {
        let worker = WorkerName::parse(name)?;
        if !known.contains(&worker) {
            return Err(
                Error::new(ErrorKind::NoSession, format!("there is no worker {worker}"))
                    .hint("`leash session list` names your workers; `leash report --all` reports on every one"),
            );
        }
        return Ok(vec![worker]);
    }
    if all {
        return Ok(known);
    }
    let here = repository_of(&current_dir()?);
    Ok(known
        .into_iter()
        .filter(|worker| {
            let state = dirs.worker_state(worker);
            let cwd = SessionRecord::load(&state)
                .ok()
                .flatten()
                .map(|r| r.conversation.cwd);
            cwd.is_some_and(|cwd| here.is_some() && repository_of(&cwd) == here)
        })
        .collect())
}

/// The repository a directory is in, by its common git dir (so a worktree's is its
/// repository's).
fn repository_of(dir: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::discover(dir).ok()?;
    repo.commondir().canonicalize().ok()
}

/// What a person calls the repository a directory is in: its directory's name (a
/// worktree's is its main repository's).
fn repository_name(dir: &Path) -> Option<String> {
    let common = repository_of(dir)?;
    let top = match common.file_name().is_some_and(|name| name == ".git") {
        true => common.parent()?.to_path_buf(),
        false => common,
    };
    Some(top.file_name()?.to_string_lossy().into_owned())
}

/// A worker's tasks, as the report module merges its history and logs, with what only
/// the CLI knows: where the worker works, and what its daemon runs now.
fn tasks_of(target: &Target, status: Option<SessionStatus>, now: u64) -> Result<Gathered, Error> {
    let cwd = SessionRecord::load(&target.state_dir)
        .ok()
        .flatten()
        .map(|r| r.conversation.cwd);
    let worker = WorkerFacts {
        worker: target.worker.to_string(),
        // As the daemon records it: the branch where the worker works.
        branch: cwd.as_deref().and_then(crate::worktree::branch_at),
        repository: cwd.as_deref().and_then(repository_name),
        current_turn: status.and_then(|status| status.current_turn),
    };
    gather::tasks(&target.state_dir, &worker, now)
}

/// `--since`: a time back from now, or a UTC date (and time).
fn since_ms(text: &str) -> Result<u64, Error> {
    // A time back names its unit (`20261202` is no date, nor that many seconds).
    let with_unit = text.trim().ends_with(|c: char| c.is_ascii_alphabetic());
    if let Some(back) = with_unit
        .then(|| crate::settings::parse_duration(text))
        .flatten()
    {
        return Ok(now_ms().saturating_sub(u64::try_from(back.as_millis()).unwrap_or(u64::MAX)));
    }
    utc_ms(text).ok_or_else(|| {
        Error::usage(format!("cannot read --since {text:?}")).hint(
            "give a time back from now (`12h`, `3d`) or a UTC date (`2026-12-02`, `2026-12-02T18:00`)",
        )
    })
}

/// `YYYY-MM-DD`, optionally `THH:MM[:SS]`, in UTC, as Unix ms. A date that is not in
/// the calendar (`2026-02-31`) is no date.
fn utc_ms(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let numbers = |text: &str, sep: char| -> Option<Vec<i64>> {
        text.split(sep).map(|p| p.parse::<i64>().ok()).collect()
    };
    let (y, m, d) = match numbers(date, '-')?.as_slice() {
        [y, m, d] => (*y, *m, *d),
        _ => return None,
    };
    let (h, min, s) = match numbers(time, ':')?.as_slice() {
        [h, min] => (*h, *min, 0),
        [h, min, s] => (*h, *min, *s),
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || h > 23 || min > 59 || s > 59 || h < 0 || min < 0 || s < 0 {
        return None;
    }
    let days = crate::time::days_from_civil(y, m, d);
    if crate::time::civil_from_days(days) != (y, m, d) {
        return None;
    }
    let secs = days * 86_400 + h * 3600 + min * 60 + s;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_a_utc_date_or_a_time_back() {
        assert_eq!(utc_ms("1970-01-01"), Some(0));
        assert_eq!(utc_ms("2026-12-02"), Some(1_796_169_600_000));
        assert_eq!(utc_ms("2026-12-02T18:30"), Some(1_796_236_200_000));
        assert_eq!(utc_ms("2024-02-29T00:00:01"), Some(1_709_164_801_000));
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-12-02T25:00",
            "2026-12",
            "",
            "99999999999999-01-01",
            "2026-02-31",
            "2026-12-02T18:00:zz",
            "2026-12-02T18:00:00:99",
            "2026-12-02T-1:00",
        ] {
            assert_eq!(utc_ms(bad), None, "{bad}");
        }
        let back = since_ms("12h").unwrap();
        assert!(now_ms() - back >= 12 * 3_600_000);
        assert!(since_ms("soon").is_err());
        assert!(since_ms("20261202").is_err(), "no unit, no date");
    }
}

//! `leash session logs`: the event log as lines for people (or JSON lines), then,
//! with `--follow`, new events as they happen.

use std::io::Write;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::common::target;
use crate::cli::describe::{Kind, describe};
use crate::cli::{Global, Output};
use crate::client::parse_line;
use crate::error::{Error, ErrorKind};
use crate::eventlog::{read_entries, seq_of};
use crate::framing::peek_type;
use crate::human::{Zone, clock_seconds, one_line};
use crate::protocol::{Event, Reply, Request, ServerLine};

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new events as they happen, like `tail -f`
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the latest events to show first (0 = all)
    #[arg(short = 'n', long, value_name = "N", default_value_t = 40)]
    pub lines: usize,
}

pub async fn run(args: LogsArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let dir = target.state_dir.clone();
    let entries = read_entries(&dir, None, None).map_err(|e| {
        crate::state_file::error(format!("cannot read the event log in {}", dir.display()), e)
    })?;
    let last_seq = entries.last().and_then(|l| seq_of(l)).unwrap_or(0);
    let skip = if args.lines == 0 {
        0
    } else {
        entries.len().saturating_sub(args.lines)
    };
    let mut stdout = out.data_writer();
    for line in &entries[skip..] {
        print_log_line(&mut stdout, line, out);
    }
    drop(stdout);
    if !args.follow {
        return Ok(0);
    }
    let Some(mut conn) = target.open().await? else {
        out.note(format!(
            "worker {} is not running; nothing more to follow",
            target.worker
        ));
        return Ok(0);
    };
    conn.send(&Request::Follow {
        after_seq: Some(last_seq),
    })
    .await?;
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut stdout = out.data_writer();
    loop {
        if !conn.has_buffered() {
            let _ = stdout.flush();
        }
        let next = tokio::select! {
            line = conn.next_raw() => line?,
            _ = ctrl_c.recv() => return Ok(0),
        };
        let Some(raw) = next else {
            out.note("the daemon stopped; nothing more to follow");
            return Ok(0);
        };
        // Events are printed as they are; only an error reply needs reading.
        if peek_type(&raw).as_deref() != Some("error") {
            print_log_line(&mut stdout, &raw, out);
            continue;
        }
        let _ = stdout.flush();
        if let ServerLine::Reply(reply @ Reply::Error { .. }) = parse_line(&raw)?
            && let Err(e) = reply.into_error()
        {
            if e.kind == ErrorKind::NoSession {
                out.note(e.message);
                return Ok(0);
            }
            return Err(e);
        }
    }
}

fn print_log_line(stdout: &mut impl Write, line: &str, out: &Output) {
    if out.json {
        let _ = writeln!(stdout, "{line}");
        return;
    }
    let Ok(event) = serde_json::from_str::<Event>(line) else {
        return;
    };
    let clock = clock_seconds(event.ts, Zone::Local);
    for line in describe(&event) {
        let text = match line.kind {
            Kind::Words => format!("claude: {}", one_line(&line.text, 200)),
            Kind::Tool => format!("tool: {}", line.text),
            Kind::Warn | Kind::News | Kind::Detail => format!("leash: {}", line.text),
            Kind::Record => line.text,
            Kind::Raw if out.verbose > 0 => line.text,
            Kind::Raw | Kind::Piece => continue,
        };
        let _ = writeln!(stdout, "{clock} {}", crate::human::safe(&text));
    }
}

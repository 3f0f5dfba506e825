//! How results reach the terminal or a script. Data goes to stdout, everything about
//! the data (notices, tool lines, errors) to stderr. With `--json`, stdout carries the
//! daemon's lines untouched, one JSON object per line.

use std::io::{self, IsTerminal, Write};

use console::style;

use crate::claude::display::{Part, Said, said, said_in};
use crate::cli::Global;
use crate::cli::describe::{Kind, Line, describe, describe_said};
use crate::cli::json::{ErrorLine, JsonLine, Typed};
use crate::error::Error;
use crate::human::safe;
use crate::protocol::{EventBody, ServerLine, claude_msg};
use crate::turn::Outcome;

// session/watch.rs still imports the tool line from here; it now lives with the other
// descriptions, which this file shows and does not make.
pub use crate::cli::describe::tool_summary;

#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Nothing at all is printed: a best-of-N attempt's own steps run unseen.
    pub muted: bool,
}

impl Output {
    pub fn new(global: &Global) -> Output {
        Output {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            muted: false,
        }
    }

    /// An output that prints nothing.
    pub fn muted() -> Output {
        Output {
            json: false,
            quiet: true,
            verbose: 0,
            muted: true,
        }
    }

    /// For a command line that could not be read, which asked for `--json`.
    pub fn json_only() -> Output {
        Output {
            json: true,
            quiet: false,
            verbose: 0,
            muted: false,
        }
    }

    /// A line of the data asked for, on stdout.
    pub fn data(&self, line: impl std::fmt::Display) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
    }

    /// A buffered stdout for many data lines (a log); flushed by the caller.
    pub fn data_writer(&self) -> io::BufWriter<io::Stdout> {
        io::BufWriter::with_capacity(64 * 1024, io::stdout())
    }

    /// `key  value` rows, aligned, on stdout; the values are made safe for a terminal.
    pub fn rows<'r>(&self, rows: impl IntoIterator<Item = (&'r str, String)>) {
        for (key, value) in rows {
            self.data(format!("{key:<12}{}", safe(&value)));
        }
    }

    /// A line about what happened, for people. Silent with `--quiet`.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let message = message.to_string();
            eprintln!("{} {}", style("leash:").dim().for_stderr(), safe(&message));
        }
    }

    /// A line about the outcome on stderr, shown even with `--quiet` and `--json`.
    pub fn say(&self, message: impl std::fmt::Display) {
        if self.muted {
            return;
        }
        eprintln!("leash: {}", safe(&message.to_string()));
    }

    /// A person is at this terminal to answer questions (tool permissions).
    pub fn interactive(&self) -> bool {
        !self.json && !self.muted && io::stdin().is_terminal() && io::stderr().is_terminal()
    }

    /// A spinner may be drawn: both streams are terminals and plain output was not asked.
    pub fn progress_enabled(&self) -> bool {
        !self.json && !self.quiet && io::stdout().is_terminal() && io::stderr().is_terminal()
    }

    /// One of the commands' own JSON lines, with its `type`.
    pub fn json<T: JsonLine>(&self, body: &T) {
        self.json_line(&Typed {
            kind: T::TYPE,
            body,
        });
    }

    /// One JSON value that carries its own `type` (a daemon reply) as one stdout line.
    pub fn json_line<T: serde::Serialize>(&self, value: &T) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string(value).unwrap_or_default()
        );
    }

    /// How main reports a failed command: the error and its hint on stderr,
    /// cargo-style, and under `--json` a final `error` object on stdout as well.
    pub fn error(&self, err: &Error) {
        let message = err.to_string();
        eprintln!(
            "{} {}",
            style("leash: error:").red().bold().for_stderr(),
            safe(&message)
        );
        if let Some(hint) = &err.hint {
            eprintln!(
                "{} {}",
                style("hint:").cyan().bold().for_stderr(),
                safe(hint)
            );
        }
        if self.json {
            self.json(&ErrorLine::from(err));
        }
    }
}

/// The spinner under a running turn: worker, phase, model, elapsed time, the tool in
/// use, tokens and cost so far. Drawn on stderr, only when both streams are terminals
/// and neither `--json` nor `--quiet` asked for plain output.
struct Progress {
    bar: indicatif::ProgressBar,
    worker: String,
    phase: String,
    model: String,
    tool: Option<String>,
    tokens: u64,
    cost: f64,
}

impl Progress {
    fn start(worker: &str) -> Progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} · {elapsed}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let progress = Progress {
            bar,
            worker: worker.to_string(),
            phase: "waiting".to_string(),
            model: "…".to_string(),
            tool: None,
            tokens: 0,
            cost: 0.0,
        };
        progress.redraw();
        progress
    }

    fn redraw(&self) {
        let activity = self.tool.as_deref().unwrap_or("thinking");
        self.bar.set_message(format!(
            "{} · {} · {} · {activity} · {} tok · ${:.4}",
            self.worker, self.phase, self.model, self.tokens, self.cost
        ));
    }
}

/// Prints a turn's stream as it arrives: the assistant's text on stdout, one short
/// line per tool call and per API retry on stderr, and a spinner while it runs.
pub struct TurnPrinter<'a> {
    out: &'a Output,
    stdout: io::BufWriter<io::Stdout>,
    progress: Option<Progress>,
    /// Partial text already printed for the current message (with
    /// `--include-partial-messages`), so the whole message is not printed twice.
    streamed_text: bool,
    /// The cursor is not at the start of a line.
    mid_line: bool,
    pub printed_text: bool,
}

impl<'a> TurnPrinter<'a> {
    pub fn new(out: &'a Output, worker: &str) -> TurnPrinter<'a> {
        TurnPrinter {
            out,
            stdout: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            progress: out.progress_enabled().then(|| Progress::start(worker)),
            streamed_text: false,
            mid_line: false,
            printed_text: false,
        }
    }

    /// A line printed as it came (`--json`).
    pub fn raw(&mut self, raw: &str) {
        if self.out.muted {
            return;
        }
        let _ = self.stdout.write_all(raw.as_bytes());
        let _ = self.stdout.write_all(b"\n");
    }

    pub fn line(&mut self, raw: &str, parsed: &ServerLine) {
        if self.out.muted {
            return;
        }
        if self.out.json {
            self.raw(raw);
            return;
        }
        let ServerLine::Event(event) = parsed else {
            return;
        };
        let EventBody::Claude { msg } = &event.body else {
            self.follow(&event.body);
            for line in describe(event) {
                self.show(line);
            }
            return;
        };
        self.show_said(&said(msg), msg);
    }

    /// A `claude` event line, read only for what claude said.
    pub fn claude(&mut self, raw: &str) {
        if self.out.muted {
            return;
        }
        if self.out.json {
            return self.raw(raw);
        }
        if let Some(msg) = claude_msg(raw) {
            self.show_said(&said_in(msg.get()), &msg.get());
        }
    }

    fn show_said(&mut self, said: &Said, msg: &dyn std::fmt::Display) {
        self.follow_said(said);
        for line in describe_said(said, msg) {
            self.show(line);
        }
        // The whole message is in: the next one streams anew.
        if matches!(said, Said::Message { .. }) {
            self.streamed_text = false;
        }
    }

    /// Shows one line the way its kind is shown while a turn runs.
    fn show(&mut self, mut line: Line) {
        line.text = safe(&line.text).into_owned();
        let quiet = self.out.quiet;
        let verbose = self.out.verbose > 0;
        match line.kind {
            Kind::Words if !self.streamed_text => self.text(&line.text, true),
            Kind::Piece => {
                self.streamed_text = true;
                self.text(&line.text, false);
            }
            Kind::Tool => {
                let text = format!("  {} {}", style(">").cyan().for_stderr(), line.text);
                self.aside(&text);
            }
            Kind::Warn if !quiet || verbose => {
                let text = format!("{} {}", style("leash:").yellow().for_stderr(), line.text);
                self.aside(&text);
            }
            Kind::News if !quiet || verbose => {
                let text = format!("{} {}", style("leash:").dim().for_stderr(), line.text);
                self.aside(&text);
            }
            Kind::Detail if verbose => {
                let text = format!("{} {}", style("leash:").dim().for_stderr(), line.text);
                self.aside(&text);
            }
            _ => {}
        }
    }

    /// What the spinner shows of leash's events.
    fn follow(&mut self, body: &EventBody) {
        match body {
            EventBody::TurnStarted { kind, .. } => {
                let phase = kind.to_string();
                self.update(|p| p.phase = phase);
            }
            EventBody::Compacting => {
                self.update(|p| p.tool = Some("compacting the conversation".to_string()));
            }
            EventBody::CheckStarted { command } => {
                let doing = check_doing(command);
                self.update(|p| p.tool = Some(doing));
            }
            EventBody::ChecksRan { .. } => self.update(|p| p.tool = None),
            EventBody::Compacted { .. } | EventBody::CompactFailed { .. } => {
                self.update(|p| p.tool = None);
            }
            EventBody::RateLimit { limit } if limit.rejected() => {
                let until = limit.resets_at.map(crate::human::clock);
                let wait = format!("rate limited until {}", until.as_deref().unwrap_or("?"));
                self.update(|p| p.tool = Some(wait));
            }
            EventBody::TurnEnded { outcome } => {
                let cost = outcome.cost_usd.unwrap_or(0.0);
                self.update(|p| p.cost += cost);
            }
            _ => {}
        }
    }

    /// What the spinner shows of claude's lines.
    fn follow_said(&mut self, said: &Said) {
        match said {
            Said::Message {
                parts,
                output_tokens,
                synthetic: false,
            } => {
                let tool = parts.iter().rev().find_map(|part| match part {
                    Part::Tool { name, input } => Some(tool_summary(name, input)),
                    Part::Text(_) => None,
                });
                let tokens = *output_tokens;
                self.update(|p| {
                    p.tokens += tokens;
                    p.tool = tool;
                });
            }
            Said::ToolsDone => self.update(|p| p.tool = None),
            Said::Init { model, .. } => {
                let model = model.clone().unwrap_or_default();
                self.update(|p| p.model = model);
            }
            _ => {}
        }
    }

    fn update(&mut self, change: impl FnOnce(&mut Progress)) {
        if let Some(progress) = self.progress.as_mut() {
            change(progress);
            progress.redraw();
        }
    }

    /// Runs `f` with the spinner hidden, so nothing else drawn on the terminal mixes
    /// with it.
    pub fn suspend<R>(&mut self, f: impl FnOnce(&mut io::BufWriter<io::Stdout>) -> R) -> R {
        let stdout = &mut self.stdout;
        match &self.progress {
            Some(progress) => progress.bar.suspend(|| {
                let result = f(stdout);
                let _ = stdout.flush();
                result
            }),
            None => f(stdout),
        }
    }

    fn text(&mut self, text: &str, whole: bool) {
        if text.is_empty() {
            return;
        }
        let end_line = whole && !text.ends_with('\n');
        self.suspend(|stdout| {
            let _ = stdout.write_all(text.as_bytes());
            if end_line {
                let _ = stdout.write_all(b"\n");
            }
        });
        self.mid_line = !text.ends_with('\n') && !end_line;
        self.printed_text = true;
    }

    fn aside(&mut self, line: &str) {
        // Keep stdout and stderr in order on a shared terminal.
        let break_line = std::mem::take(&mut self.mid_line);
        self.suspend(|stdout| {
            if break_line {
                let _ = stdout.write_all(b"\n");
            }
            let _ = stdout.flush();
            eprintln!("{line}");
        });
    }

    /// Ends the turn's output: the final text if nothing was streamed, and a newline.
    pub fn finish(&mut self, outcome: &Outcome) {
        if !self.out.json
            && !self.out.muted
            && !self.printed_text
            && let Some(text) = &outcome.result
        {
            self.text(text, true);
        }
        if std::mem::take(&mut self.mid_line) {
            let _ = self.stdout.write_all(b"\n");
        }
        let _ = self.stdout.flush();
    }

    pub fn flush(&mut self) {
        let _ = self.stdout.flush();
    }
}

impl Drop for TurnPrinter<'_> {
    fn drop(&mut self) {
        if let Some(progress) = self.progress.take() {
            progress.bar.finish_and_clear();
        }
        let _ = self.stdout.flush();
    }
}

/// What a worker does while a check runs, for the spinner and the watch: the command on
/// one line, cut to fit.
pub fn check_doing(command: &str) -> String {
    format!("check: {}", crate::human::one_line(command, 60))
}

//! `leash session list --watch`: the workers' list redrawn in place as their daemons'
//! events arrive, like `watch`, but told by the daemons rather than polled: each
//! running worker's events are followed, and a row changes when its worker does. `q`
//! or Ctrl-C quits.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::list::{row_of, running_status};
use crate::claude::display::{Part, Said, said};
use crate::cli::Output;
use crate::cli::json::WorkerRow;
use crate::cli::render::tool_summary;
use crate::client::Target;
use crate::error::Error;
use crate::paths::{Dirs, WorkerName};
use crate::protocol::{Event, EventBody, Request, SessionState, SessionStatus};
use crate::table::{Column, Fitted};
use crate::time::now_ms;

/// Redraws are at most this often; a busy worker streams far faster.
const FRAME: Duration = Duration::from_millis(100);
/// How often the elapsed times move on, and new workers are looked for.
const TICK: Duration = Duration::from_secs(1);

/// What reached the watch.
enum Update {
    Event(String, Box<Event<Value>>),
    Status(String, Box<SessionStatus>),
    /// The worker's daemon stopped (its follow ended).
    Gone(String),
    /// A worker not yet followed, as a discovery round found it (`None`: not running).
    Found(String, Option<Box<SessionStatus>>),
    /// A discovery round is over.
    Discovered,
}

/// A worker as the watch shows it: its list row, and what it is doing now.
struct Live {
    row: WorkerRow,
    since_ms: Option<u64>,
    doing: Option<String>,
    task: Option<String>,
    followed: bool,
}

pub async fn run() -> Result<u8, Error> {
    let dirs = Dirs::from_env()?;
    let (tx, mut updates) = mpsc::channel::<Update>(1024);
    let mut live: BTreeMap<String, Live> = BTreeMap::new();
    tokio::spawn(discover(dirs.clone(), Vec::new(), tx.clone()));
    let mut discovering = true;
    let keys = Keys::listen();
    let mut quit = keys.quit;
    let watch = |kind| signal(kind).map_err(|e| Error::io("cannot watch for signals", e));
    let (mut ctrl_c, mut term, mut hangup) = (
        watch(SignalKind::interrupt())?,
        watch(SignalKind::terminate())?,
        watch(SignalKind::hangup())?,
    );
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let _screen = Screen::enter();
    loop {
        draw(&live);
        tokio::select! {
            Some(update) = updates.recv() => {
                discovering &= !matches!(update, Update::Discovered);
                apply(&dirs, &mut live, update, &tx);
                // What else arrives within a frame is drawn with it.
                let frame = tokio::time::Instant::now() + FRAME;
                while let Ok(Some(update)) = tokio::time::timeout_at(frame, updates.recv()).await {
                    discovering &= !matches!(update, Update::Discovered);
                    apply(&dirs, &mut live, update, &tx);
                }
            }
            _ = tick.tick(), if !discovering => {
                discovering = true;
                let followed = live.iter().filter(|(_, l)| l.followed).map(|(w, _)| w.clone());
                tokio::spawn(discover(dirs.clone(), followed.collect(), tx.clone()));
            }
            // (Standard input at its end is no `q`: the watch goes on.)
            Some(()) = quit.recv() => break,
            // The terminal is put back as it was however the watch is stopped.
            _ = ctrl_c.recv() => break,
            _ = term.recv() => break,
            _ = hangup.recv() => break,
        }
    }
    Ok(0)
}

/// Asks every worker not yet followed, all at once, whether its daemon runs (a daemon
/// slow to answer holds back only its own row), then says the round is over.
async fn discover(dirs: Dirs, followed: Vec<String>, tx: mpsc::Sender<Update>) {
    let mut asks = tokio::task::JoinSet::new();
    for worker in dirs.known_workers() {
        let name = worker.to_string();
        if followed.contains(&name) {
            continue;
        }
        let Ok(target) = Target::for_worker(dirs.clone(), worker) else {
            continue;
        };
        let tx = tx.clone();
        asks.spawn(async move {
            let status = running_status(&target).await.map(Box::new);
            let _ = tx.send(Update::Found(name, status)).await;
        });
    }
    while asks.join_next().await.is_some() {}
    let _ = tx.send(Update::Discovered).await;
}

/// Shows a worker a discovery round found, and follows it if its daemon runs.
fn found(
    dirs: &Dirs,
    live: &mut BTreeMap<String, Live>,
    worker: String,
    status: Option<SessionStatus>,
    tx: &mpsc::Sender<Update>,
) {
    let running = status.is_some();
    let busy_with = status.as_ref().and_then(|s| s.current_turn);
    let shown = live.get(&worker);
    if shown.is_some_and(|l| l.followed) || (shown.is_some() && !running) {
        return;
    }
    let Ok(target) = WorkerName::parse(&worker).and_then(|n| Target::for_worker(dirs.clone(), n))
    else {
        return;
    };
    let mut shown = Live {
        row: row_of(&target, status),
        since_ms: None,
        doing: None,
        task: task_of(&target),
        followed: running,
    };
    if let Some(turn) = busy_with {
        for event in began(&target.state_dir, turn) {
            changed(&mut shown, &event);
        }
    }
    live.insert(worker.clone(), shown);
    if running {
        tokio::spawn(follow(target, worker, tx.clone()));
    }
}

/// The events so far of the turn or step running as the watch finds the worker (it
/// began before the watch followed), from the tail of its event log.
fn began(state_dir: &std::path::Path, running: u64) -> Vec<Event<Value>> {
    const TAIL: u64 = 256 * 1024;
    const TOLD: [&str; 7] = [
        "step_started",
        "turn_started",
        "claude",
        "compacting",
        "compacted",
        "check_started",
        "checks_ran",
    ];
    let Ok(Some(mut file)) = crate::state_file::open(&state_dir.join(crate::eventlog::LOG_FILE))
    else {
        return Vec::new();
    };
    let Ok((tail, _)) = crate::eventlog::tail(&mut file, TAIL) else {
        return Vec::new();
    };
    tail.lines()
        .filter(|line| crate::framing::peek_type(line).is_some_and(|t| TOLD.contains(&t.as_ref())))
        .filter_map(|line| serde_json::from_str::<Event<Value>>(line).ok())
        .filter(|event| event.turn == Some(running))
        .collect()
}

/// The worker's task, one line.
fn task_of(target: &Target) -> Option<String> {
    let state = crate::worker::WorkerState::load(&target.state_dir).ok()?;
    state.task.text.map(|t| crate::report::one_line(&t, 60))
}

/// Every event of a running worker from now on, until its daemon stops.
async fn follow(target: Target, worker: String, tx: mpsc::Sender<Update>) {
    let followed = async {
        let mut conn = target.open().await.ok()??;
        conn.send(&Request::Follow { after_seq: None }).await.ok()?;
        while let Ok(Some(raw)) = conn.next_raw().await {
            let Ok(event) = serde_json::from_str::<Event<Value>>(&raw) else {
                continue;
            };
            if tx
                .send(Update::Event(worker.clone(), Box::new(event)))
                .await
                .is_err()
            {
                return None;
            }
        }
        Some(())
    };
    followed.await;
    let _ = tx.send(Update::Gone(worker)).await;
}

/// What an update changes in the worker's row.
fn apply(
    dirs: &Dirs,
    live: &mut BTreeMap<String, Live>,
    update: Update,
    tx: &mpsc::Sender<Update>,
) {
    match update {
        Update::Discovered => {}
        Update::Found(worker, status) => found(dirs, live, worker, status.map(|s| *s), tx),
        Update::Gone(worker) => {
            if let Some(l) = live.get_mut(&worker) {
                l.followed = false;
                l.row.state = SessionState::Stopped;
                l.row.daemon_pid = None;
                l.since_ms = None;
                l.doing = None;
            }
        }
        Update::Status(worker, status) => {
            if let Some(l) = live.get_mut(&worker)
                && let Ok(name) = WorkerName::parse(&worker)
                && let Ok(target) = Target::for_worker(dirs.clone(), name)
            {
                l.row = row_of(&target, Some(*status));
                l.task = task_of(&target);
            }
        }
        Update::Event(worker, event) => {
            let Some(l) = live.get_mut(&worker) else {
                return;
            };
            if changed(l, &event) {
                refresh(dirs, &worker, tx);
            }
        }
    }
}

/// Takes an event in; true when the worker's status should be asked again (a turn or
/// step ended: its cost, context and phase moved).
fn changed(l: &mut Live, event: &Event<Value>) -> bool {
    match &event.body {
        EventBody::StepStarted { step, task, .. } => {
            l.since_ms = Some(event.ts);
            l.doing = Some(format!("{step} step"));
            l.row.step = Some(*step);
            if let Some(task) = task {
                l.task = Some(crate::report::one_line(task, 60));
            }
            l.row.state = SessionState::Busy;
            // Its phase is the worker's to say.
            return true;
        }
        EventBody::TurnStarted { kind, .. } => {
            // Its pause (if the watch saw one) is over.
            l.row.waiting_until_ms = None;
            l.since_ms.get_or_insert(event.ts);
            l.doing = Some(format!("{kind} turn"));
            l.row.state = SessionState::Busy;
        }
        EventBody::Claude { msg } => {
            if let Said::Message { parts, .. } = said(msg)
                && let Some(Part::Tool { name, input }) =
                    parts.iter().rev().find(|p| matches!(p, Part::Tool { .. }))
            {
                l.doing = Some(tool_summary(name, input));
            }
        }
        EventBody::Waiting { until_ms } => l.row.waiting_until_ms = Some(*until_ms),
        EventBody::Compacting => l.doing = Some("compacting".to_string()),
        EventBody::Compacted { .. } => l.doing = None,
        EventBody::CheckStarted { command } => {
            l.doing = Some(crate::cli::render::check_doing(command));
        }
        EventBody::ChecksRan { .. } => l.doing = Some("checks ran".to_string()),
        EventBody::TurnEnded { .. } => return true,
        EventBody::Judged { judgement } => {
            l.row.phase = Some(judgement.phase);
            l.row.step = None;
            l.since_ms = None;
            l.doing = None;
            return true;
        }
        _ => {}
    }
    false
}

/// Asks the worker's daemon how it is now, in the background.
fn refresh(dirs: &Dirs, worker: &str, tx: &mpsc::Sender<Update>) {
    let Ok(name) = WorkerName::parse(worker) else {
        return;
    };
    let Ok(target) = Target::for_worker(dirs.clone(), name) else {
        return;
    };
    let (tx, worker) = (tx.clone(), worker.to_string());
    tokio::spawn(async move {
        if let Some(status) = running_status(&target).await {
            let _ = tx.send(Update::Status(worker, Box::new(status))).await;
        }
    });
}

const COLUMNS: [Column; 8] = [
    Column::text("WORKER"),
    Column::text("STATE"),
    Column::text("PHASE"),
    Column::text("DOING"),
    Column::number("ELAPSED"),
    Column::number("CTX"),
    Column::number("COST"),
    Column::text("TASK"),
];
const TASK: usize = 7;
/// A worker's line in the colour of its state: busy yellow, waiting between nudges
/// cyan, failed red, stopped dim; idle as it is.
fn paint(row: &WorkerRow, line: &str) -> String {
    let styled = console::style(line).force_styling(true);
    match row.state {
        SessionState::Busy if row.waiting_until_ms.is_some() => styled.cyan(),
        SessionState::Busy => styled.yellow(),
        SessionState::Failed => styled.red(),
        SessionState::Cold | SessionState::Stopped => styled.dim(),
        SessionState::Idle => return line.to_string(),
    }
    .to_string()
}

/// What a tool's line may take before the task gets the rest.
const DOING_MAX: usize = 36;

fn draw(live: &BTreeMap<String, Live>) {
    // What fits the terminal: a line each, no wrapping; the summary stays on top, and
    // workers beyond its height are counted, busy ones first so none hides below.
    let (height, width) = console::Term::stdout()
        .size_checked()
        .map_or((usize::MAX, usize::MAX), |(h, w)| {
            (usize::from(h), usize::from(w))
        });
    let room = height.saturating_sub(4).max(1);
    let busy = live
        .values()
        .filter(|l| l.row.state == SessionState::Busy)
        .count();
    let mut workers: Vec<(&String, &Live)> = live.iter().collect();
    workers.sort_by(|a, b| {
        let idle = |l: &Live| l.row.state != SessionState::Busy;
        idle(a.1)
            .cmp(&idle(b.1))
            .then_with(|| crate::report::natural_cmp(a.0, b.0))
    });
    let hidden = workers.len().saturating_sub(room);
    if hidden > 0 {
        workers.truncate(room - 1);
    }
    let now = now_ms();
    let cells: Vec<Vec<String>> = workers
        .iter()
        .map(|(worker, l)| row_cells(worker, l, now))
        .collect();
    let fitted = Fitted::new(
        &COLUMNS,
        &cells,
        vec![true; COLUMNS.len()],
        TASK,
        Some(width),
    );
    let lines = vec![
        format!("leash: {} worker(s), {busy} busy · q quits", live.len()),
        String::new(),
    ];
    let mut lines: Vec<String> = lines
        .into_iter()
        .chain(fitted.lines(&COLUMNS, &cells))
        .map(|line| crate::table::cut(&line, width))
        .collect();
    // Colour by state, once each line is cut to fit (an escape has no width).
    let colour = console::colors_enabled();
    for (line, (_, l)) in lines.iter_mut().skip(3).zip(&workers) {
        if colour {
            *line = paint(&l.row, line);
        }
    }
    if hidden > 0 {
        lines.push(format!("… and {} more", hidden + 1));
    }
    let mut screen = String::from("\x1b[H\x1b[2J");
    for line in lines {
        screen.push_str(&line);
        screen.push_str("\r\n");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(screen.as_bytes());
    let _ = stdout.flush();
}

/// A worker's cells. What it does and since when only while it is busy: an idle
/// worker's last tool is history. Tasks, tools and paths come from outside: shown,
/// never obeyed.
fn row_cells(worker: &str, l: &Live, now: u64) -> Vec<String> {
    let busy = l.row.state == SessionState::Busy;
    let elapsed = l
        .since_ms
        .filter(|_| busy)
        .map_or("-".to_string(), |since| {
            let secs = now.saturating_sub(since) / 1000;
            format!("{}:{:02}", secs / 60, secs % 60)
        });
    let doing = l.doing.as_deref().filter(|_| busy).unwrap_or("-");
    [
        worker.to_string(),
        super::list::state_of(&l.row, now),
        l.row.phase.map_or("-".to_string(), |p| p.to_string()),
        cut(doing, DOING_MAX),
        elapsed,
        l.row
            .context_percent
            .map_or("-".to_string(), |p| format!("{p}%")),
        crate::human::usd(l.row.cost_usd),
        cut(l.task.as_deref().unwrap_or("-"), 200),
    ]
    .into_iter()
    .map(|cell| crate::human::safe(&cell).into_owned())
    .collect()
}

/// On one line (a tool's command may span several), at most `width` characters.
fn cut(text: &str, width: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= width {
        return text;
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Keys typed while the watch runs: the terminal reads them one by one, unechoed
/// (Ctrl-C still signals), and `q` quits.
struct Keys {
    quit: mpsc::UnboundedReceiver<()>,
}

impl Keys {
    fn listen() -> Keys {
        let (tx, quit) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut byte = [0u8; 1];
            while let Ok(1) = stdin.read(&mut byte) {
                if matches!(byte[0], b'q' | b'Q') {
                    let _ = tx.send(());
                    return;
                }
            }
        });
        Keys { quit }
    }
}

/// The terminal while the watch draws on it: keys unbuffered and unechoed, cursor
/// hidden; all of it put back as it was when the watch ends.
struct Screen {
    saved: Option<libc::termios>,
}

impl Screen {
    fn enter() -> Screen {
        let saved = std::io::stdin().is_terminal().then(|| {
            // SAFETY: termios calls on stdin with a struct we own.
            unsafe {
                let mut term: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut term) != 0 {
                    return None;
                }
                let saved = term;
                term.c_lflag &= !(libc::ICANON | libc::ECHO);
                term.c_cc[libc::VMIN] = 1;
                term.c_cc[libc::VTIME] = 0;
                libc::tcsetattr(0, libc::TCSANOW, &term);
                Some(saved)
            }
        });
        print!("\x1b[?25l");
        Screen {
            saved: saved.flatten(),
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some(saved) = self.saved {
            // SAFETY: restores the settings read at the start.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &saved);
            }
        }
        print!("\x1b[?25h\r\n");
        let _ = std::io::stdout().flush();
    }
}

/// Whether the watch can draw here; off a terminal the list is printed once.
pub fn possible(out: &Output) -> bool {
    !out.json && std::io::stdout().is_terminal()
}

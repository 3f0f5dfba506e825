//! The claude session: one conversation and the process that holds it, run as a task
//! of its own behind a [`SessionHandle`]. The daemon sends it commands (a turn, a
//! model switch, a restart, a start, any control request); the session reports, in order, on one stream of
//! [`SessionEvent`]s: what claude wrote, what it did about it, and how each command
//! ended; and it keeps a [`View`] of itself in a watch for anyone to read.
//!
//! stream-json stays in here: the daemon hears of a turn's end already classified
//! ([`TurnEnd`]) and of claude's wish to use a tool as a [`ToolRequest`] to allow or
//! deny.

mod process;
mod reader;
mod task;
mod tools;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};

pub use super::context::CompactionNews;
pub use super::conversation::{Conversation, SessionChange};
use super::limits::RateLimit;
pub use super::messages::ControlAsk;
use crate::error::Error;
use crate::turn::TurnSettings;
pub use tools::ToolRequest;
#[cfg(test)]
pub use tools::stub_request;

/// The session's bounds: every wait it makes has one.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub init_timeout: Duration,
    pub control_timeout: Duration,
    pub silence_timeout: Duration,
    pub interrupt_grace: Duration,
    pub stop_grace: Duration,
    pub max_crashes: u32,
    pub crash_backoff: Duration,
    /// While claude compacts it may be silent this long (instead of the silence
    /// timeout): on the real service a compaction can take minutes.
    pub compact_timeout: Duration,
    /// Restart claude before a turn once it uses more memory than this (0: never).
    pub max_rss: u64,
}

/// The session as anyone may read it, kept current by the session itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The conversation and how claude is started on it; `None` until the daemon is
    /// told what conversation to hold.
    pub conversation: Option<Conversation>,
    pub pid: Option<u32>,
    /// Why leash gave up on claude, when it did.
    pub failure: Option<String>,
    /// The model claude reported in its latest init line.
    pub model: Option<String>,
    /// The permission mode claude reported last.
    pub permission_mode: Option<String>,
    /// The model's context window, as claude told it.
    pub context_window: Option<u64>,
    /// The provider's rate limit, as claude reported it last.
    pub rate_limit: Option<RateLimit>,
}

impl View {
    /// How full the conversation is, in percent of the window, when both are known.
    pub fn context_percent(&self) -> Option<u32> {
        let tokens = self.conversation.as_ref()?.tally.context_tokens?;
        let window = self.context_window.filter(|w| *w > 0)?;
        u32::try_from(tokens * 100 / window).ok()
    }

    /// Where claude works.
    pub fn cwd(&self) -> Option<PathBuf> {
        self.conversation.as_ref().map(|c| c.cwd.clone())
    }

    /// Whether claude's conversation holds `prompt` from byte `from` of its transcript
    /// on: what `--resume` gives claude back is its transcript, and a prompt is there
    /// once the model's answer began. False when that cannot be read.
    pub fn holds_prompt(&self, prompt: &str, from: u64) -> bool {
        let Some(conversation) = &self.conversation else {
            return false;
        };
        let (session, cwd) = (&conversation.session_id, &conversation.cwd);
        super::transcript::holds_prompt(session, cwd, prompt, from) == Some(true)
    }

    /// Where claude's transcript ends now: a prompt sent next is looked for from here.
    pub fn transcript_length(&self) -> u64 {
        self.conversation.as_ref().map_or(0, |conversation| {
            super::transcript::length(&conversation.session_id, &conversation.cwd)
        })
    }
}

/// What the session reports, in the order it happened.
#[derive(Debug)]
pub enum SessionEvent {
    /// A stdout line from claude, to relay untouched.
    Line(Box<RawValue>),
    Stderr(String),
    /// Something the session did or saw: routine.
    Info(String),
    /// Something went wrong and the session handled it.
    Warn(String),
    /// claude compacts the conversation, or finished, or failed to.
    Compaction(CompactionNews),
    /// claude reported the provider's rate limit.
    RateLimit(RateLimit),
    /// claude asks to use a tool; it waits until the request is answered.
    ToolRequest(ToolRequest),
    /// The conversation's saved facts changed (its id, its settings): to be saved now.
    /// Its running tallies (cost, context) are saved with the turn that ends.
    ConversationChanged,
    /// A command ended.
    Done(Done),
}

/// How a command ended.
#[derive(Debug)]
pub enum Done {
    Turn(Box<TurnReport>),
    Started(Started),
    ModelSet(Result<(), Error>),
    Restarted(Result<(), Error>),
    /// The new conversation's id; `None` when there was no conversation to retire.
    Retired(Option<String>),
    /// claude's answer to a control request: the `response` of its `control_response`.
    Control(Result<serde_json::Value, Error>),
}

/// How a start ended.
#[derive(Debug)]
pub struct Started {
    /// The start began a new conversation (its tallies begin at nothing).
    pub new_conversation: bool,
    pub result: Result<(), Error>,
}

/// One attempt at a turn, as it ended.
#[derive(Debug)]
pub struct TurnReport {
    pub end: TurnEnd,
    /// What claude spent since the previous report (this turn, and any result that
    /// arrived between turns).
    pub cost_usd: Option<f64>,
    /// How a compaction during the turn came out, if there was one.
    pub compaction: Option<CompactionNews>,
    /// claude compacted by itself as the turn began and dropped its prompt (claude
    /// before 2.1.153 does): the answer is to the summary, not to the prompt.
    pub dropped_prompt: bool,
    /// A refusal claude reported during this attempt: the rate limit and when it
    /// resets.
    pub rejected_by: Option<RateLimit>,
}

/// How an attempt at a turn ended, classified from claude's result.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    /// claude answered; its final text, when it gave one.
    Answered(Option<String>),
    /// claude ended the turn with an error result.
    Failed(Failure),
    /// claude exited during the turn (how, and its last words).
    Exited(String),
    /// claude went silent past its bound and the turn was stopped (interrupted, or
    /// claude killed when it would not stop): a hang, not a person's interrupt.
    Silent,
    /// claude did not end an interrupted turn in time and was killed.
    Killed,
    /// claude could not be started or prepared for the turn.
    NotStarted(Error),
    /// Cancelled before claude received the prompt.
    Cancelled,
}

/// An error result, in claude's own terms (never its `subtype`, which says `success`
/// for most errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: FailureClass,
    /// The result's text, when it had one.
    pub text: Option<String>,
    /// The HTTP status claude reported.
    pub api_error_status: Option<u16>,
    /// `HTTP 529, prompt_too_long`, or `no reason given`.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The turn was interrupted (`aborted_streaming`, `aborted_tools`).
    Interrupted,
    /// The conversation no longer fits; only a new conversation recovers.
    Overflow,
    /// The API kept failing (429, 529, 5xx) after claude's own retries.
    Provider,
    Other,
}

/// What claude should run a turn with.
#[derive(Debug, Clone, Default)]
pub struct TurnAsk {
    pub prompt: String,
    pub settings: TurnSettings,
    /// The claude binary the client resolved: spawns from now on use it.
    pub claude: Option<PathBuf>,
}

/// What a start asks of the session.
#[derive(Debug, Clone)]
pub struct StartAsk {
    /// Begin a new conversation even if the session has one (claude, if it runs, is
    /// stopped first).
    pub fresh: bool,
    /// The conversation to begin when there is none, or with `fresh`.
    pub new: Conversation,
    /// Changes to the conversation, taken while claude does not run.
    pub change: SessionChange,
    /// Answer only once claude runs and has answered `initialize`.
    pub warm: bool,
}

/// Tells a command that its work was interrupted (or the daemon is stopping). Cheap to
/// clone; every clone sees the same interrupt.
#[derive(Debug, Clone)]
pub struct Cancel(watch::Receiver<bool>);

/// The side that interrupts.
#[derive(Debug)]
pub struct Canceller(watch::Sender<bool>);

impl Canceller {
    pub fn new() -> (Canceller, Cancel) {
        let (tx, rx) = watch::channel(false);
        (Canceller(tx), Cancel(rx))
    }

    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once cancelled (never, if the canceller is gone uncancelled).
    pub async fn cancelled(&mut self) {
        if self.0.wait_for(|cancelled| *cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

enum Command {
    Turn(TurnAsk, Cancel),
    Start(Box<StartAsk>, Cancel),
    SetModel(String, Cancel),
    Restart(Option<PathBuf>, Cancel),
    Retire,
    Control(ControlAsk, Cancel),
}

/// The daemon's end of the session.
pub struct SessionHandle {
    /// `None` once closed: the session then stops claude and ends.
    commands: Option<mpsc::UnboundedSender<Command>>,
    view: watch::Receiver<View>,
}

/// Events the daemon has not read yet, at most: a flood from claude then waits in
/// claude's pipe, not in memory.
const EVENT_QUEUE: usize = 256;

/// Starts the session's task on the worker's conversation (if it has one). Closing the
/// handle (or dropping it) stops claude the polite way and ends the task; the events
/// end after that.
pub fn spawn(
    conversation: Option<Conversation>,
    bounds: Bounds,
    pid_file: PathBuf,
) -> (SessionHandle, mpsc::Receiver<SessionEvent>) {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let view = View {
        conversation: conversation.clone(),
        ..View::default()
    };
    let (view_tx, view_rx) = watch::channel(view);
    let task = task::SessionTask::new(conversation, bounds, pid_file, events_tx, view_tx);
    tokio::spawn(task.run(commands));
    let handle = SessionHandle {
        commands: Some(commands_tx),
        view: view_rx,
    };
    (handle, events)
}

impl SessionHandle {
    /// The session as it is now.
    pub fn view(&self) -> watch::Ref<'_, View> {
        self.view.borrow()
    }

    /// Runs one attempt at a turn; ends with [`Done::Turn`].
    pub fn turn(&self, ask: TurnAsk, cancel: Cancel) {
        self.send(Command::Turn(ask, cancel));
    }

    /// Sets the session up as asked (and with `warm` starts claude); ends with
    /// [`Done::Started`]. Also the explicit "try again" after leash gave up on claude.
    pub fn start(&self, ask: StartAsk, cancel: Cancel) {
        self.send(Command::Start(Box::new(ask), cancel));
    }

    /// Switches the model, keeping the conversation; ends with [`Done::ModelSet`].
    pub fn set_model(&self, model: String, cancel: Cancel) {
        self.send(Command::SetModel(model, cancel));
    }

    /// A new claude process on the same conversation (with `claude`, that binary);
    /// ends with [`Done::Restarted`].
    pub fn restart(&self, claude: Option<PathBuf>, cancel: Cancel) {
        self.send(Command::Restart(claude, cancel));
    }

    /// One control request for claude (started for it when it does not run); ends
    /// with [`Done::Control`] and claude's answer. A request that changes what the
    /// conversation keeps (its model, its mode) has its own command instead.
    pub fn control(&self, ask: ControlAsk, cancel: Cancel) {
        self.send(Command::Control(ask, cancel));
    }

    /// The conversation is full: the worker goes on in a new one; ends with
    /// [`Done::Retired`].
    pub fn retire(&self) {
        self.send(Command::Retire);
    }

    /// No more commands: the session stops claude the polite way, reports what
    /// happened meanwhile, and its events end.
    pub fn close(&mut self) {
        self.commands = None;
    }

    fn send(&self, command: Command) {
        // The task outlives its handle; a send fails only once it was closed.
        if let Some(commands) = &self.commands {
            let _ = commands.send(command);
        }
    }
}

//! A scripted stand-in for the `claude` CLI in bidirectional stream-json mode, for
//! leash's tests and benchmarks. It behaves like Claude Code 2.1.332 as measured
//! against the real CLI (tests/it/e2e.rs runs leash against that CLI): init is lazy and
//! re-emitted per turn, `--session-id` refuses a used id and `--resume` an unknown one,
//! control requests are answered with the real shapes, an interrupt ends the running
//! turn with an `error_during_execution` result, provider errors are `success` results
//! with `is_error` and the CLI's own texts, `/model NAME` as a prompt switches models.
//!
//! What a turn does is scripted, in order of precedence:
//! 1. the next line of `$FAKE_CLAUDE_SCRIPT` (lines are consumed across respawns; `%w`
//!    in its path is the worker's name),
//! 2. `[[...]]` directives in the prompt,
//! 3. otherwise it answers `echo: <prompt>`, as it does after a script without `reply`.
//!
//! A script is directives separated by `;`:
//!   echo | reply TEXT (`\\n` is a newline) | sleep MS | silent MS | stream N MS | crash [CODE] | exit |
//!   kill_daemon (SIGKILL this process's parent, the leash daemon, mid-turn) |
//!   api_error STATUS | retry N STATUS | error TEXT | malformed | flood N | hang |
//!   bigline BYTES | stderr N | write FILE [TEXT] | commit MESSAGE | sh COMMAND | tool NAME |
//!   grow MB (hold that much more memory until exit) | ask TOOL | cost USD (what the turn costs; results report the conversation's running
//!   total, carried over a resume as 2.1.332 does) | grandchild (a long `sleep` in claude's process group) |
//!   rate_limit STATUS UTILIZATION [RESET_SECS [WINDOW]] (a `rate_limit_event`) |
//!   usage_limit RESET_SECS (the window is used up: a 429 until it resets) |
//!   usage INPUT [CACHE_READ [CACHE_CREATION]] (the reply's usage: the context's size) |
//!   overflow (the conversation no longer fits: this and every later turn end with
//!   `prompt_too_long`, even resumed) | compact_slow MS, compact_fail REASON (for an
//!   auto-compaction this turn begins with)
//!
//! Context, as 2.1.332 measures it: the window is 1M tokens (200k for `-4-` models);
//! a turn that begins with the last context at or over the window less 33k compacts
//! first (`status compacting`, `compact_boundary`, a continuation line); `/compact TEXT`
//! as a prompt compacts on request (a script line `compact_fail REASON` makes it
//! fail); `get_context_usage` is answered with the window and the threshold.
//!
//! Process-wide behaviour comes from the environment:
//!   FAKE_CLAUDE_LOG=file          append a JSON line per spawn and per turn
//!   FAKE_CLAUDE_HOME=dir          where conversations are kept (default $HOME/.fake-claude)
//!   FAKE_CLAUDE_EXIT_AT_START=N   print an error and exit N at once (e.g. bypass as root)
//!   FAKE_CLAUDE_DIE_AT_START=file while `file` holds a number N > 0, write N-1 to it and
//!                                 SIGKILL itself before reading stdin (a claude killed
//!                                 during its startup, before it answers `initialize`)
//!   FAKE_CLAUDE_SLOW_START_MS=N   take N ms to start before reading stdin (a Node CLI's
//!                                 startup: a window for kills before `initialize`)
//!   FAKE_CLAUDE_IGNORE=a,b        never answer these control subtypes (e.g. set_model)
//!   FAKE_CLAUDE_LATE_RESULT_MS=N  delay the result of an interrupted turn
//!   FAKE_CLAUDE_IGNORE_INTERRUPT=1  keep going after an interrupt
//!   FAKE_CLAUDE_IGNORE_SIGTERM=1  survive SIGTERM (only SIGKILL stops it)
//!   FAKE_CLAUDE_DROPS_PROMPT=1    as claude before 2.1.153: a turn that begins with an
//!                                 auto-compaction loses its prompt (the model answers
//!                                 the summary)

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod conversation;
mod output;
mod turn;

const VERSION: &str = "2.1.332-fake";

struct Args {
    session_id: Option<String>,
    resume: Option<String>,
    model: String,
    permission_mode: String,
    allowed_tools: Vec<String>,
    /// `--resume A --fork-session`: a new conversation that starts as a copy of A.
    fork: bool,
    argv: Vec<String>,
}

/// SIGKILLs this process while `counter` holds a positive number, counting it down.
fn die_at_start(counter: &std::path::Path) {
    let left: u32 = std::fs::read_to_string(counter)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    if left == 0 {
        return;
    }
    let _ = std::fs::write(counter, (left - 1).to_string());
    // SAFETY: signalling this very process has no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args = Args {
        session_id: None,
        resume: None,
        model: resolve_model("default"),
        permission_mode: "default".to_string(),
        allowed_tools: Vec::new(),
        fork: false,
        argv: argv.clone(),
    };
    let mut it = argv.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--session-id" => args.session_id = it.next().cloned(),
            "--resume" | "-r" => args.resume = it.next().cloned(),
            "--fork-session" => args.fork = true,
            "--model" => args.model = resolve_model(it.next().map_or("default", |s| s)),
            "--permission-mode" => {
                args.permission_mode = it.next().cloned().unwrap_or_default();
            }
            "--dangerously-skip-permissions" => args.permission_mode = "bypassPermissions".into(),
            // Variadic, like the real CLI's: values until the next flag.
            "--allowedTools" | "--allowed-tools" => {
                while let Some(tool) = it.next_if(|a| !a.starts_with("--")) {
                    args.allowed_tools
                        .extend(tool.split(',').map(|t| t.trim().to_string()));
                }
            }
            _ => {}
        }
    }
    args
}

/// The aliases as Claude Code 2.1.332 resolves them: `default` is opus, and legacy
/// opus names are remapped to the current one.
fn resolve_model(name: &str) -> String {
    match name {
        "default" | "claude-opus-4-1" => resolve_model("opus"),
        "opus" | "sonnet" | "haiku" => format!("claude-{name}-5-5"),
        other => other.to_string(),
    }
}

/// The alias a resolved model id came from, for the CLI's "Set model to" texts.
fn alias_of(model: &str) -> &str {
    ["opus", "sonnet", "haiku"]
        .into_iter()
        .find(|alias| model == format!("claude-{alias}-5-5"))
        .unwrap_or(model)
}

enum Input {
    Line(Value),
    Eof,
}

struct Fake {
    session_id: String,
    model: String,
    permission_mode: String,
    allowed_tools: Vec<String>,
    denials: Vec<Value>,
    history: PathBuf,
    inputs: Receiver<Input>,
    /// User turns that arrived while another ran.
    pending: VecDeque<Value>,
    ignore: Vec<String>,
    stdin_closed: bool,
    log: Option<PathBuf>,
    request_seq: u64,
    turns_run: u64,
    /// The conversation's size after its last turn (its last reply's usage).
    context: u64,
    /// The conversation no longer fits: every turn ends with `prompt_too_long`.
    full: bool,
    /// This turn's reply usage.
    usage: Value,
    /// The conversation's running cost, as every result reports it (`total_cost_usd`);
    /// like 2.1.332's, it carries over a `--resume`.
    spent: f64,
    /// Memory held on purpose (`grow MB`).
    leaked: Vec<Vec<u8>>,
    /// Behave as claude before 2.1.153: an auto-compaction at the start of a turn keeps
    /// nothing after the summary and drops the turn's prompt.
    drops_prompt: bool,
    /// The prompts the conversation has had, as its file says.
    prompts: usize,
    /// This turn's prompt until the model's first answer, when claude writes it to the
    /// conversation's transcript (measured: not before, on 2.1.110 and 2.1.332).
    untranscribed: std::cell::RefCell<Option<String>>,
}

enum TurnEnd {
    Done,
    Interrupted,
}

fn main() {
    if std::env::args().any(|a| a == "--version" || a == "-v") {
        println!("{VERSION} (Claude Code)");
        return;
    }
    if let Ok(code) = std::env::var("FAKE_CLAUDE_EXIT_AT_START") {
        eprintln!(
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
        );
        std::process::exit(code.parse().unwrap_or(1));
    }
    if let Some(counter) = std::env::var_os("FAKE_CLAUDE_DIE_AT_START") {
        die_at_start(&PathBuf::from(counter));
    }
    if let Some(ms) = std::env::var("FAKE_CLAUDE_SLOW_START_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if std::env::var_os("FAKE_CLAUDE_IGNORE_SIGTERM").is_some() {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    let args = parse_args();
    let home = std::env::var_os("FAKE_CLAUDE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".fake-claude")))
        .unwrap_or_else(|| PathBuf::from("/tmp/fake-claude"));
    let _ = std::fs::create_dir_all(&home);
    let session_id = match (&args.session_id, &args.resume) {
        (_, Some(id)) => {
            if args.session_id.is_some() && !args.fork {
                eprintln!(
                    "Error: --session-id with --continue or --resume also needs --fork-session."
                );
                std::process::exit(1);
            }
            if !home.join(format!("{id}.jsonl")).exists() {
                eprintln!("No conversation found with session ID: {id}");
                emit(
                    &json!({"type":"result","subtype":"error_during_execution","is_error":true,
                    "session_id": id, "errors":[format!("No conversation found with session ID: {id}")]}),
                );
                std::process::exit(1);
            }
            if !args.fork {
                id.clone()
            } else {
                // The copy is taken at start-up, as 2.1.332 does; the id is the one
                // asked for with --session-id, else a new one.
                let new = args.session_id.clone().unwrap_or_else(|| {
                    format!("{:08x}-0000-4000-8000-00000000f0c0", std::process::id())
                });
                let copy = home.join(format!("{new}.jsonl"));
                if copy.exists() {
                    eprintln!("Error: Session ID {new} is already in use.");
                    std::process::exit(1);
                }
                let _ = std::fs::copy(home.join(format!("{id}.jsonl")), &copy);
                new
            }
        }
        (Some(id), None) => {
            if home.join(format!("{id}.jsonl")).exists() {
                eprintln!("Error: Session ID {id} is already in use.");
                std::process::exit(1);
            }
            id.clone()
        }
        (None, None) => format!("{:08x}-0000-4000-8000-000000000000", std::process::id()),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(value) => {
                    if tx.send(Input::Line(value)).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("fake-claude: ignoring a malformed input line: {e}"),
            }
        }
        let _ = tx.send(Input::Eof);
    });
    let mut fake = Fake {
        history: home.join(format!("{session_id}.jsonl")),
        session_id,
        model: args.model,
        permission_mode: args.permission_mode,
        allowed_tools: args.allowed_tools,
        denials: Vec::new(),
        inputs: rx,
        pending: VecDeque::new(),
        ignore: std::env::var("FAKE_CLAUDE_IGNORE")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        stdin_closed: false,
        log: std::env::var_os("FAKE_CLAUDE_LOG").map(PathBuf::from),
        request_seq: 0,
        turns_run: 0,
        context: 0,
        full: false,
        usage: default_usage(),
        spent: 0.0,
        leaked: Vec::new(),
        drops_prompt: std::env::var_os("FAKE_CLAUDE_DROPS_PROMPT").is_some(),
        prompts: 0,
        untranscribed: std::cell::RefCell::new(None),
    };
    fake.load_history();
    fake.log_event(json!({"event": "spawn", "argv": args.argv, "cwd": cwd()}));
    fake.run();
}

/// Appends one JSON line in one write, as the files it keeps are read while it runs.
fn append_line(path: &std::path::Path, value: &Value) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{value}\n").as_bytes());
    }
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Fake {
    fn run(&mut self) {
        loop {
            let input = match self.pending.pop_front() {
                Some(turn) => Input::Line(turn),
                None if self.stdin_closed => return,
                None => match self.inputs.recv() {
                    Ok(input) => input,
                    Err(_) => return,
                },
            };
            match input {
                Input::Eof => self.stdin_closed = true,
                Input::Line(value) => match value["type"].as_str() {
                    Some("user") => self.turn(&value),
                    Some("control_request") => {
                        self.control(&value, false);
                    }
                    _ => {}
                },
            }
        }
    }

    /// `/model NAME` sent as a prompt: a local command, answered without the API.
    fn model_command(&mut self, name: &str, started: Instant) {
        self.model = resolve_model(name);
        let alias = alias_of(&self.model);
        let mut display = alias.to_string();
        if alias != self.model {
            display = format!("{}{} 5.5", alias[..1].to_uppercase(), &alias[1..]);
        }
        let text = format!("Set model to `{display}` for this session only");
        emit(
            &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>","role":"assistant",
            "content":[{"type":"text","text":text}]},"local_command_run":{"command":"model","args":name},
            "session_id":self.session_id,"uuid":uuid()}),
        );
        emit(
            &json!({"type":"result","subtype":"success","is_error":false,"num_turns":0,"result":text,
            "local_command":"model","duration_ms":started.elapsed().as_millis() as u64,
            "session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},"modelUsage":{},
            "permission_denials":[],"uuid":uuid()}),
        );
    }

    fn log_event(&self, mut event: Value) {
        let Some(path) = &self.log else { return };
        event["pid"] = json!(std::process::id());
        append_line(path, &event);
    }

    /// Answers a control request; true when it was an interrupt.
    fn control(&mut self, value: &Value, in_turn: bool) -> bool {
        let id = value["request_id"].as_str().unwrap_or_default().to_string();
        let subtype = value["request"]["subtype"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.ignore.contains(&subtype) {
            return false;
        }
        let success = |response: Value| {
            emit(
                &json!({"type":"control_response","response":{"subtype":"success","request_id":id,"response":response}}),
            );
        };
        match subtype.as_str() {
            "initialize" => success(json!({
                "commands": [], "output_style": "default", "available_output_styles": ["default"],
                "models": (["default", "opus", "sonnet", "haiku"]
                    .map(|value| json!({"value": value, "resolvedModel": resolve_model(value)}))),
                "account": {"apiKeySource": "ANTHROPIC_API_KEY", "apiProvider": "firstParty"},
                "pid": std::process::id(), "claude_code_version": VERSION,
                "current_permission_mode": self.permission_mode, "session_state": "idle",
            })),
            "interrupt" => {
                // Answered even when idle (then nothing else follows).
                success(json!({"still_queued": []}));
                return in_turn;
            }
            "set_model" => {
                let model = resolve_model(value["request"]["model"].as_str().unwrap_or("default"));
                // The switch is replayed (before the answer) only when the model changes
                // after this process ran a turn (not before, even in a resumed one).
                if model != self.model && self.turns_run > 0 {
                    let text = format!(
                        "<local-command-stdout>Set model to `{} ({model})`</local-command-stdout>",
                        alias_of(&model)
                    );
                    emit(
                        &json!({"type":"user","message":{"role":"user","content":text},
                        "isReplay": true, "parent_tool_use_id": null,
                        "session_id": self.session_id, "uuid": uuid()}),
                    );
                }
                self.model = model.clone();
                success(json!({"model": model}));
            }
            "get_context_usage" => {
                let window = self.window();
                success(
                    json!({"categories": [], "totalTokens": self.context.max(13_000),
                    "maxTokens": window, "rawMaxTokens": window,
                    "percentage": self.context * 100 / window, "model": self.model,
                    "autoCompactThreshold": self.compact_threshold(), "isAutoCompactEnabled": true,
                    "apiUsage": null}),
                );
            }
            "set_permission_mode" => {
                self.permission_mode = value["request"]["mode"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string();
                success(json!({"mode": self.permission_mode}));
                emit(&json!({"type":"system","subtype":"status","status":null,
                    "permissionMode":self.permission_mode,"session_id":self.session_id,"uuid":uuid()}));
            }
            other => emit(
                &json!({"type":"control_response","response":{"subtype":"error","request_id":id,
                "error": format!("Unsupported control request subtype: {other}"),"error_code":"unsupported_request"}}),
            ),
        }
        false
    }

    /// Waits up to `ms`, answering control requests; `Interrupted` if one was an
    /// interrupt (unless interrupts are ignored).
    fn wait(&mut self, ms: u64) -> Option<TurnEnd> {
        let until = Instant::now() + Duration::from_millis(ms);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if self.stdin_closed {
                std::thread::sleep(left);
                return None;
            }
            match self.inputs.recv_timeout(left) {
                Ok(Input::Line(value)) => {
                    let interrupt = match value["type"].as_str() {
                        Some("control_request") => self.control(&value, true),
                        Some("user") => {
                            self.pending.push_back(value);
                            false
                        }
                        _ => false,
                    };
                    if interrupt && std::env::var_os("FAKE_CLAUDE_IGNORE_INTERRUPT").is_none() {
                        return Some(TurnEnd::Interrupted);
                    }
                }
                Ok(Input::Eof) => self.stdin_closed = true,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => self.stdin_closed = true,
            }
        }
    }
}

/// How the real CLI reports an API failure with an HTTP status (2.1.332's texts).
struct ApiFailure {
    /// `api_error_type` on the assistant and result lines.
    kind: &'static str,
    /// `error` on the synthetic assistant line.
    assistant_error: &'static str,
    /// `error` on the `api_retry` lines.
    retry_error: &'static str,
    /// The result text.
    text: String,
}

impl ApiFailure {
    fn of(status: u16) -> ApiFailure {
        let server_side = ". This is a server-side issue, usually temporary — try again in a \
moment. If it persists, check your inference gateway (fake-claude).";
        match status {
            429 => ApiFailure {
                kind: "rate_limit_error",
                assistant_error: "rate_limit",
                retry_error: "rate_limit",
                text: "API Error: Request rejected (429) · This request would exceed the rate \
limit for your organization."
                    .to_string(),
            },
            529 => ApiFailure {
                kind: "overloaded_error",
                assistant_error: "server_error",
                retry_error: "overloaded",
                text: format!("API Error: 529 Overloaded{server_side}"),
            },
            _ => ApiFailure {
                kind: "api_error",
                assistant_error: "server_error",
                retry_error: "server_error",
                text: format!("API Error: {status} Internal server error{server_side}"),
            },
        }
    }
}

fn emit_raw(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn prompt_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `[[...]]` segments of the prompt, joined as one script.
fn prompt_directives(prompt: &str) -> Option<String> {
    let mut steps = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find("[[") {
        let Some(len) = rest[start + 2..].find("]]") else {
            break;
        };
        steps.push(rest[start + 2..start + 2 + len].to_string());
        rest = &rest[start + 2 + len + 2..];
    }
    (!steps.is_empty()).then(|| steps.join(";"))
}

/// The unix second (claude's `resetsAt`) a window that resets in `secs` seconds names:
/// the first whole second no sooner than that, as a limit is never lifted early. Rounding
/// down would put "in 1 s" a few milliseconds away.
fn resets_in(secs: u64) -> u64 {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + std::time::Duration::from_secs(secs);
    at.as_secs() + u64::from(at.subsec_nanos() > 0)
}

fn default_usage() -> Value {
    json!({"input_tokens": 10, "output_tokens": 5})
}

/// The text claude puts in the conversation in place of what it compacted.
const SUMMARY: &str = "This session is being continued from a previous conversation that ran \
out of context. Summary:\nFake summary.";

/// `$FAKE_CLAUDE_SCRIPT`, where `%w` stands for the worker (leash sets `LEASH_WORKER`
/// in claude's environment), so workers side by side each follow their own script.
fn script_path() -> Option<PathBuf> {
    let path = std::env::var("FAKE_CLAUDE_SCRIPT").ok()?;
    let worker = std::env::var("LEASH_WORKER").unwrap_or_default();
    Some(PathBuf::from(path.replace("%w", &worker)))
}

/// Puts the line last taken back: the turn that took it did not get to it.
fn unread_script_line() {
    let Some(path) = script_path() else {
        return;
    };
    let pos_path = path.with_extension("pos");
    let pos: usize = std::fs::read_to_string(&pos_path)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let _ = std::fs::write(&pos_path, pos.saturating_sub(1).to_string());
}

/// The next unread line of the script, left unread.
fn peek_script_line() -> Option<String> {
    let path = script_path()?;
    let script = std::fs::read_to_string(&path).ok()?;
    let pos: usize = std::fs::read_to_string(path.with_extension("pos"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    script.lines().nth(pos).map(str::to_string)
}

/// Takes the next unread line of `$FAKE_CLAUDE_SCRIPT`; the position lives beside the
/// script so a respawned fake continues where the last one stopped.
fn next_script_line() -> Option<String> {
    let path = script_path()?;
    let script = std::fs::read_to_string(&path).ok()?;
    let pos_path = path.with_extension("pos");
    let pos: usize = std::fs::read_to_string(&pos_path)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let line = script.lines().nth(pos)?.to_string();
    let _ = std::fs::write(&pos_path, (pos + 1).to_string());
    Some(line)
}

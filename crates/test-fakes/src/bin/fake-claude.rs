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
//!   api_error STATUS | retry N STATUS | error TEXT | malformed | flood N | hang |
//!   bigline BYTES | stderr N | write FILE [TEXT] | commit MESSAGE | tool NAME |
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
    };
    fake.load_history();
    fake.log_event(json!({"event": "spawn", "argv": args.argv, "cwd": cwd()}));
    fake.run();
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
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{event}");
        }
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

    fn assistant(&self, content: Value) {
        emit(
            &json!({"type":"assistant","message":{"id":format!("msg_{}", uuid()),"type":"message",
            "role":"assistant","model":self.model,"content":content,"stop_reason":null,
            "usage":self.usage},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid()}),
        );
    }

    /// What the conversation's file says of it: its prompts, its size, whether full.
    fn load_history(&mut self) {
        let text = std::fs::read_to_string(&self.history).unwrap_or_default();
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(context) = entry["context"].as_u64() {
                self.context = context;
            }
            if entry["full"] == true {
                self.full = true;
            }
            if let Some(spent) = entry["spent"].as_f64() {
                self.spent = spent;
            }
        }
    }

    fn remember(&self, entry: Value) {
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.history)
        {
            let _ = writeln!(file, "{entry}");
        }
    }

    /// The earlier prompts of this conversation.
    fn previous_prompts(&self) -> usize {
        std::fs::read_to_string(&self.history)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("{\"prompt\""))
            .count()
    }

    fn window(&self) -> u64 {
        if self.model.contains("-4-") {
            200_000
        } else {
            1_000_000
        }
    }

    fn compact_threshold(&self) -> u64 {
        self.window() - 33_000
    }

    fn system(&self, mut fields: Value) {
        fields["type"] = json!("system");
        fields["session_id"] = json!(self.session_id);
        fields["uuid"] = json!(uuid());
        emit(&fields);
    }

    /// The lines of a compaction that worked, after `silent_ms` of silence (an
    /// interrupt meanwhile ends the turn instead).
    fn compaction(&mut self, trigger: &str, silent_ms: u64) -> Option<TurnEnd> {
        self.system(json!({"subtype":"status","status":"compacting","compact_output_chars":0}));
        if silent_ms > 0
            && let Some(end) = self.wait(silent_ms)
        {
            return Some(end);
        }
        self.system(json!({"subtype":"status","status":null,"compact_result":"success"}));
        let post = 2_608;
        let mut metadata = json!({"trigger":trigger,"pre_tokens":self.context,"post_tokens":post,
            "duration_ms":silent_ms.max(40),"cumulative_dropped_tokens":self.context.saturating_sub(post)});
        if !self.drops_prompt {
            // What 2.1.153 and later keep word for word after the summary.
            let (head, anchor) = (uuid(), uuid());
            metadata["preserved_segment"] =
                json!({"head_uuid":head,"anchor_uuid":anchor,"tail_uuid":head});
            metadata["preserved_messages"] =
                json!({"anchor_uuid":anchor,"uuids":[head],"all_uuids":[head]});
        }
        self.system(json!({"subtype":"compact_boundary","compact_metadata":metadata}));
        emit(
            &json!({"type":"user","message":{"role":"user","content":SUMMARY},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid(),"isReplay":false,"isSynthetic":true}),
        );
        self.context = post;
        self.remember(json!({"context": post}));
        None
    }

    /// A `rate_limit_event` as claude writes it when the API's unified rate-limit
    /// headers change; a warning carries the window's use at the top level too.
    fn rate_limit_event(&self, status: &str, utilization: f64, secs: u64, window: &str) {
        let resets = unix_secs() + secs;
        let mut info = json!({"status":status,"resetsAt":resets,"rateLimitType":window,
            "isUsingOverage":false,
            "unifiedWindows":{window:{"utilization":utilization,"resetsAt":resets}}});
        if status == "allowed_warning" {
            info["utilization"] = json!(utilization);
        }
        emit(
            &json!({"type":"rate_limit_event","rate_limit_info":info,"uuid":uuid(),
            "session_id":self.session_id}),
        );
    }

    fn compaction_failed(&self, error: &str) {
        self.system(json!({"subtype":"status","status":"compacting","compact_output_chars":0}));
        self.system(
            json!({"subtype":"status","status":null,"compact_result":"failed","compact_error":error}),
        );
    }

    /// `/compact TEXT`: a compaction asked for, answered without a turn of the model.
    fn manual_compact(&mut self, instructions: &str, started: Instant) {
        self.log_event(
            json!({"event":"compact","instructions":instructions,"session_id":self.session_id}),
        );
        let failure = peek_script_line()
            .filter(|line| line.starts_with("compact_fail"))
            .map(|line| {
                let _ = next_script_line();
                line.trim_start_matches("compact_fail").trim().to_string()
            });
        let text = match failure {
            Some(reason) => {
                let text = format!("Error during compaction: {reason}");
                self.compaction_failed(&text);
                text
            }
            None => {
                let _ = self.compaction("manual", 0);
                emit(
                    &json!({"type":"user","message":{"role":"user","content":"<local-command-stdout>Compacted </local-command-stdout>"},
                    "parent_tool_use_id":null,"session_id":self.session_id,"uuid":uuid(),"isReplay":true}),
                );
                String::new()
            }
        };
        emit(
            &json!({"type":"result","subtype":"success","is_error":false,"num_turns":0,"result":text,
            "local_command":"compact","duration_ms":started.elapsed().as_millis() as u64,
            "session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},"modelUsage":{},
            "permission_denials":[],"uuid":uuid()}),
        );
    }

    /// A conversation that no longer fits: the API refused it and compaction could
    /// not help. `reason` is `prompt_too_long`, or `blocking_limit` when compaction
    /// failed before the turn.
    fn overflow(&mut self, started: Instant, reason: &str, text: &str) {
        if !self.full {
            self.full = true;
            self.remember(json!({"full": true}));
        }
        let status = (reason == "prompt_too_long").then_some(400);
        emit(
            &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>","role":"assistant",
            "stop_reason":"stop_sequence","content":[{"type":"text","text":text}]},
            "session_id":self.session_id,"error":"invalid_request","is_api_error_message":true,
            "api_error_status":status,"parent_tool_use_id":null,"uuid":uuid()}),
        );
        emit(
            &json!({"type":"result","subtype":"success","is_error":true,"api_error_status":status,
            "api_error_type":"invalid_request_error","duration_ms":started.elapsed().as_millis() as u64,
            "num_turns":1,"result":text,"session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},
            "modelUsage":{},"permission_denials":[],"stop_reason":"stop_sequence",
            "terminal_reason":reason,"uuid":uuid()}),
        );
    }

    /// Many assistant lines as fast as a pipe takes them: one buffered write, so a
    /// benchmark measures leash, not this fake.
    fn flood(&self, lines: u64) {
        let template = json!({"type":"assistant","message":{"id":"msg_flood","type":"message",
            "role":"assistant","model":self.model,"content":[{"type":"text","text":"flood line N"}],
            "stop_reason":null,"usage":{"input_tokens":10,"output_tokens":5}},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":"00000000-0000-4000-8000-000000000000"})
        .to_string();
        let (head, tail) = template
            .split_once("flood line N")
            .unwrap_or((&template, ""));
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        for i in 0..lines {
            let _ = writeln!(out, "{head}flood line {i}{tail}");
        }
        let _ = out.flush();
    }

    fn text(&self, text: &str) {
        self.assistant(json!([{"type":"text","text":text}]));
    }

    /// A tool call and its result.
    fn tool(&mut self, name: &str, input: Value, output: &str, is_error: bool) {
        let id = self.tool_use(name, input);
        self.tool_result(&id, output, is_error);
    }

    /// The assistant's tool call; returns its id for the result.
    fn tool_use(&mut self, name: &str, input: Value) -> String {
        self.request_seq += 1;
        let id = format!("toolu_{}", self.request_seq);
        self.assistant(json!([{"type":"tool_use","id":id,"name":name,"input":input}]));
        id
    }

    fn tool_result(&self, id: &str, output: &str, is_error: bool) {
        emit(
            &json!({"type":"user","message":{"role":"user","content":[{"type":"tool_result",
            "tool_use_id":id,"content":output,"is_error":is_error}]},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid()}),
        );
    }

    fn result(&mut self, started: Instant, text: &str, cost: f64) {
        self.spent += cost;
        self.remember(json!({"spent": self.spent}));
        emit(
            &json!({"type":"result","subtype":"success","is_error":false,
            "duration_ms":started.elapsed().as_millis() as u64,"duration_api_ms":1,"ttft_ms":1,
            "num_turns":1,"result":text,"session_id":self.session_id,"total_cost_usd":self.spent,
            "usage":{"input_tokens":10,"output_tokens":5},
            "modelUsage":{self.model.clone():{"costUSD":self.spent,"contextWindow":self.window(),
                "maxOutputTokens":64000}},
            "model_usage_since_last_result":{self.model.clone():{"costUSD":cost,
                "contextWindow":self.window()}},
            "permission_denials":self.denials,"api_error_status":null,"stop_reason":"end_turn",
            "terminal_reason":"completed","uuid":uuid()}),
        );
    }

    fn interrupted(&self, started: Instant) {
        if let Some(ms) = std::env::var("FAKE_CLAUDE_LATE_RESULT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        emit(
            &json!({"type":"user","message":{"role":"user","content":[{"type":"text",
            "text":"[Request interrupted by user]"}]},"session_id":self.session_id,"uuid":uuid()}),
        );
        emit(
            &json!({"type":"result","subtype":"error_during_execution","is_error":true,
            "duration_ms":started.elapsed().as_millis() as u64,"num_turns":2,"session_id":self.session_id,
            "total_cost_usd":self.spent,"usage":{},"modelUsage":{},"permission_denials":[],"stop_reason":null,
            "errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
            "terminal_reason":"aborted_streaming","uuid":uuid()}),
        );
    }

    fn turn(&mut self, value: &Value) {
        let started = Instant::now();
        self.turns_run += 1;
        self.denials.clear();
        self.usage = default_usage();
        let prompt = prompt_text(&value["message"]["content"]);
        let previous = self.previous_prompts();
        self.remember(json!({"prompt": prompt}));
        emit(
            &json!({"type":"system","subtype":"init","cwd":cwd(),"session_id":self.session_id,
            "tools":["Bash","Edit","Read","Write"],"mcp_servers":[],"model":self.model,
            "permissionMode":self.permission_mode,"slash_commands":[],"apiKeySource":"none",
            "claude_code_version":VERSION,"output_style":"default","agents":[],"uuid":uuid()}),
        );
        if let Some(model) = prompt.strip_prefix("/model ") {
            return self.model_command(model.trim(), started);
        }
        if let Some(instructions) = prompt.strip_prefix("/compact") {
            return self.manual_compact(instructions.trim(), started);
        }
        if self.full {
            self.log_event(json!({"event":"turn","prompt":prompt,"model":self.model,
                "session_id":self.session_id,"history":previous,"full":true}));
            return self.overflow(started, "prompt_too_long", "Prompt is too long");
        }
        let scripted = next_script_line();
        let script = scripted.clone().or_else(|| prompt_directives(&prompt));
        self.log_event(json!({"event":"turn","prompt":prompt,"model":self.model,
            "permission_mode":self.permission_mode,"allowed_tools":self.allowed_tools,"session_id":self.session_id,
            "history":previous,"script":script}));
        // claude compacts lazily: at the start of the turn after the context filled up.
        if self.context >= self.compact_threshold() {
            let directive = |name: &str| {
                script.as_deref().and_then(|s| {
                    s.split(';')
                        .map(str::trim)
                        .find_map(|d| d.strip_prefix(name))
                        .map(str::trim)
                })
            };
            if let Some(reason) = directive("compact_fail") {
                self.compaction_failed(reason);
                return self.overflow(
                    started,
                    "blocking_limit",
                    &format!("Prompt is too long · automatic compaction failed: {reason}"),
                );
            }
            let silent = directive("compact_slow")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            if let Some(end) = self.compaction("auto", silent) {
                return self.finish(end, started, &prompt, None, 0.0);
            }
            if self.drops_prompt {
                // As claude before 2.1.153: the prompt never reaches the model, which
                // answers the summary; what the prompt would have done waits for it.
                if scripted.is_some() {
                    unread_script_line();
                }
                self.log_event(json!({"event":"prompt_dropped","prompt":prompt}));
                return self.finish(TurnEnd::Done, started, SUMMARY, None, 0.001);
            }
        }
        let script = script.unwrap_or_else(|| "echo".to_string());
        let mut reply = None;
        let mut cost = 0.001;
        for step in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (verb, rest) = step.split_once(' ').unwrap_or((step, ""));
            let rest = rest.trim();
            let number = |default: u64| {
                rest.split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(default)
            };
            let end = match verb {
                "echo" => {
                    reply = Some(format!("echo: {prompt}"));
                    None
                }
                "reply" => {
                    reply = Some(rest.replace("\\n", "\n"));
                    None
                }
                "cost" => {
                    cost = rest.parse().unwrap_or(cost);
                    None
                }
                "usage" => {
                    let mut n = rest
                        .split_whitespace()
                        .map(|n| n.parse::<u64>().unwrap_or(0));
                    self.usage = json!({"input_tokens": n.next().unwrap_or(0),
                        "cache_read_input_tokens": n.next().unwrap_or(0),
                        "cache_creation_input_tokens": n.next().unwrap_or(0), "output_tokens": 5});
                    None
                }
                "overflow" => {
                    return self.overflow(started, "prompt_too_long", "Prompt is too long");
                }
                "compact_slow" | "compact_fail" => None,
                "sleep" => self.wait(number(1000)),
                "silent" => self.wait(number(1000)),
                "stream" => {
                    let mut parts = rest.split_whitespace();
                    let chunks: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(5);
                    let delay: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(100);
                    let mut end = None;
                    for i in 0..chunks {
                        self.text(&format!("chunk {i}"));
                        end = self.wait(delay);
                        if end.is_some() {
                            break;
                        }
                    }
                    end
                }
                "crash" => {
                    eprintln!("fake-claude: crashing on purpose");
                    std::process::exit(number(3) as i32);
                }
                "exit" => std::process::exit(0),
                "hang" => loop {
                    std::thread::sleep(Duration::from_secs(3600));
                },
                "api_error" | "retry" => {
                    let mut parts = rest.split_whitespace();
                    let (retries, status) = if verb == "retry" {
                        let n = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1u64);
                        (
                            n,
                            parts.next().and_then(|s| s.parse().ok()).unwrap_or(529u16),
                        )
                    } else {
                        (
                            0,
                            parts.next().and_then(|s| s.parse().ok()).unwrap_or(529u16),
                        )
                    };
                    let failure = ApiFailure::of(status);
                    for attempt in 1..=retries {
                        emit(
                            &json!({"type":"system","subtype":"api_retry","attempt":attempt,
                            "max_retries":retries,"retry_delay_ms":20.5,"error_status":status,
                            "error":failure.retry_error,"session_id":self.session_id,"uuid":uuid()}),
                        );
                        if let Some(end) = self.wait(20) {
                            return self.finish(end, started, &prompt, None, cost);
                        }
                    }
                    if verb == "api_error" {
                        let ApiFailure {
                            kind,
                            text,
                            assistant_error,
                            ..
                        } = failure;
                        emit(
                            &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>",
                            "role":"assistant","stop_reason":"stop_sequence",
                            "content":[{"type":"text","text":text}]},"session_id":self.session_id,
                            "error":assistant_error,"is_api_error_message":true,"api_error_status":status,
                            "api_error_type":kind,"uuid":uuid()}),
                        );
                        // The status stays set even when the CLI's own retries ran out.
                        emit(
                            &json!({"type":"result","subtype":"success","is_error":true,"api_error_status":status,
                            "api_error_type":kind,"duration_ms":started.elapsed().as_millis() as u64,"num_turns":1,
                            "result":text,"session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},
                            "modelUsage":{},"permission_denials":[],"stop_reason":"stop_sequence",
                            "terminal_reason":"api_error","uuid":uuid()}),
                        );
                        return;
                    }
                    None
                }
                "rate_limit" => {
                    let mut parts = rest.split_whitespace();
                    let status = parts.next().unwrap_or("allowed_warning");
                    let utilization: f64 =
                        parts.next().and_then(|u| u.parse().ok()).unwrap_or(0.92);
                    let secs: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
                    let window = parts.next().unwrap_or("five_hour");
                    self.rate_limit_event(status, utilization, secs, window);
                    None
                }
                "usage_limit" => {
                    // The subscription's window is used up: claude 2.1.332 with gateway
                    // auth, its own retries off.
                    let secs = number(2);
                    self.rate_limit_event("rejected", 1.0, secs, "five_hour");
                    let resets = unix_secs() + secs;
                    let info = json!({"status":"rejected","resetsAt":resets,"rateLimitType":"five_hour",
                        "isUsingOverage":false});
                    let text = "You've hit your 5-hour limit · resets 7:24pm (UTC)";
                    emit(
                        &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>",
                        "role":"assistant","stop_reason":"stop_sequence",
                        "content":[{"type":"text","text":text}]},"parent_tool_use_id":null,
                        "session_id":self.session_id,"error":"rate_limit","is_api_error_message":true,
                        "api_error_status":429,"api_error":"usage_limit_reached",
                        "api_error_params":{"rate_limit_info":info},"api_error_type":"rate_limit_error",
                        "uuid":uuid()}),
                    );
                    emit(
                        &json!({"type":"result","subtype":"success","is_error":true,"num_turns":1,
                        "terminal_reason":"api_error","api_error_status":429,
                        "api_error_type":"rate_limit_error","api_error":"usage_limit_reached",
                        "duration_ms":started.elapsed().as_millis() as u64,"result":text,
                        "stop_reason":"stop_sequence","session_id":self.session_id,
                        "total_cost_usd":self.spent,"usage":{},"modelUsage":{},"permission_denials":[],
                        "uuid":uuid()}),
                    );
                    return;
                }
                "error" => {
                    emit(
                        &json!({"type":"result","subtype":"error_max_turns","is_error":true,
                        "duration_ms":started.elapsed().as_millis() as u64,"num_turns":1,"result":rest,
                        "session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},"modelUsage":{},
                        "permission_denials":[],"terminal_reason":"max_turns","uuid":uuid()}),
                    );
                    return;
                }
                "malformed" => {
                    emit_raw("{this is not json");
                    emit_raw(r#"{"type":"brand_new_type","surprise":true}"#);
                    None
                }
                "flood" => {
                    self.flood(number(1000));
                    None
                }
                "bigline" => {
                    self.text(&"x".repeat(number(1 << 20) as usize));
                    None
                }
                "stderr" => {
                    for i in 0..number(100) {
                        eprintln!("fake-claude: stderr line {i}");
                    }
                    None
                }
                "write" => {
                    let (file, text) = rest
                        .split_once(' ')
                        .unwrap_or((rest, "written by fake-claude\n"));
                    if self.denied("Write") {
                        self.tool(
                            "Write",
                            json!({"file_path": file}),
                            "permission denied",
                            true,
                        );
                        None
                    } else {
                        let ok = std::fs::write(file, format!("{text}\n")).is_ok();
                        self.tool(
                            "Write",
                            json!({"file_path": file, "content": text}),
                            "ok",
                            !ok,
                        );
                        None
                    }
                }
                "commit" => {
                    if self.denied("Bash") {
                        self.tool(
                            "Bash",
                            json!({"command": "git commit"}),
                            "This command requires approval",
                            true,
                        );
                    } else {
                        let command = format!("git add -A && git commit -q -m {rest:?}");
                        let id = self.tool_use("Bash", json!({"command": command}));
                        let output = std::process::Command::new("sh")
                            .arg("-c")
                            .arg(&command)
                            .output();
                        let (text, failed) = match output {
                            Ok(o) => (
                                format!(
                                    "{}{}",
                                    String::from_utf8_lossy(&o.stdout),
                                    String::from_utf8_lossy(&o.stderr)
                                ),
                                !o.status.success(),
                            ),
                            Err(e) => (e.to_string(), true),
                        };
                        if !failed {
                            // The real CLI notices commits its Bash tool makes.
                            emit(
                                &json!({"type":"system","subtype":"vcs_state_changed","kind":"commit",
                                "cwd":cwd(),"session_id":self.session_id,"uuid":uuid()}),
                            );
                        }
                        self.tool_result(&id, &text, failed);
                    }
                    None
                }
                "grow" => {
                    // A leak, as long-lived Node processes have had: kept until exit.
                    let mut block = vec![0u8; (number(100) << 20) as usize];
                    for page in block.iter_mut().step_by(4096) {
                        *page = 1;
                    }
                    self.leaked.push(block);
                    None
                }
                "grandchild" => {
                    // A tool that outlives its turn, as a dev server would.
                    if let Ok(child) = std::process::Command::new("sleep").arg("300").spawn() {
                        self.log_event(json!({"event": "grandchild", "grandchild": child.id()}));
                    }
                    None
                }
                "tool" => {
                    self.tool(
                        if rest.is_empty() { "Read" } else { rest },
                        json!({"file_path": "README.md"}),
                        "contents",
                        false,
                    );
                    None
                }
                "ask" => {
                    self.request_seq += 1;
                    let id = format!("fake-{}", self.request_seq);
                    emit(
                        &json!({"type":"control_request","request_id":id,"request":{"subtype":"can_use_tool",
                        "tool_name":rest,"input":{"command":"true"},"tool_use_id":format!("toolu_{id}"),
                        "permission_suggestions":[]}}),
                    );
                    reply = Some(self.await_permission(&id));
                    None
                }
                unknown => {
                    reply = Some(format!("fake-claude does not know {unknown:?}"));
                    None
                }
            };
            if let Some(end) = end {
                return self.finish(end, started, &prompt, None, cost);
            }
        }
        self.finish(TurnEnd::Done, started, &prompt, reply, cost);
    }

    /// Whether the permission mode and `--allowedTools` let a tool run, as the real CLI
    /// decides without a permission prompt tool: plan mode denies changes, acceptEdits
    /// allows edits, Bash needs an allow rule; a denial is listed in the result.
    fn denied(&mut self, tool: &str) -> bool {
        let allowed_by_rule = self
            .allowed_tools
            .iter()
            .any(|rule| rule == tool || rule.starts_with(&format!("{tool}(")));
        let allowed = match self.permission_mode.as_str() {
            "plan" => !matches!(tool, "Write" | "Edit" | "Bash"),
            "bypassPermissions" => true,
            "acceptEdits" => matches!(tool, "Write" | "Edit") || allowed_by_rule,
            _ => allowed_by_rule,
        };
        if !allowed {
            self.denials.push(json!({"tool_name": tool}));
        }
        !allowed
    }

    fn await_permission(&mut self, id: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match self.inputs.recv_timeout(Duration::from_millis(100)) {
                Ok(Input::Line(v))
                    if v["type"] == "control_response" && v["response"]["request_id"] == id =>
                {
                    let answer = &v["response"]["response"];
                    let behavior = answer["behavior"].as_str().unwrap_or("none");
                    return match answer["message"].as_str() {
                        Some(message) => format!("permission: {behavior} ({message})"),
                        None => format!("permission: {behavior}"),
                    };
                }
                Ok(Input::Line(v)) if v["type"] == "user" => self.pending.push_back(v),
                Ok(Input::Line(v)) if v["type"] == "control_request" => {
                    self.control(&v, true);
                }
                Ok(Input::Eof) => self.stdin_closed = true,
                _ => {}
            }
        }
        "permission: no answer".to_string()
    }

    fn finish(
        &mut self,
        end: TurnEnd,
        started: Instant,
        prompt: &str,
        reply: Option<String>,
        cost: f64,
    ) {
        match end {
            TurnEnd::Interrupted => self.interrupted(started),
            TurnEnd::Done => {
                let text = reply.unwrap_or_else(|| format!("echo: {prompt}"));
                self.text(&text);
                self.context = [
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                ]
                .iter()
                .filter_map(|k| self.usage[*k].as_u64())
                .sum();
                self.remember(json!({"context": self.context}));
                self.result(started, &text, cost);
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

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

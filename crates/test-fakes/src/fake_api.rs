//! A scriptable fake of the Anthropic Messages API, for driving the real `claude`
//! CLI offline (integration tests, benchmarks).
//!
//! Self-contained: depends only on `hyper` 1.x (server, http1), `hyper-util`
//! (tokio), `http-body-util` (feature `channel`), `bytes`, `serde_json` and `tokio`
//! (rt, net, time, sync, macros).
//!
//! ```ignore
//! let api = FakeApi::start([Reply::text("hi there"), Reply::error(529)]);
//! // spawn claude with ANTHROPIC_BASE_URL=api.url() ...
//! assert!(api.wait_for_turns(1, Duration::from_secs(10)));
//! let turns = api.turn_requests();
//! assert_eq!(last_user_text(&turns[0]).as_deref(), Some("hello"));
//! ```
//!
//! The server runs on its own tokio runtime on a background thread, so plain
//! (sync) tests and async tests can both use it. Dropping the `FakeApi` stops it.
//!
//! # Routes
//! * `POST /v1/messages` (any query, the CLI adds `?beta=true`): SSE when the body
//!   has `"stream": true`, one JSON message otherwise.
//! * `POST /v1/messages/count_tokens`: `{"input_tokens": N}`.
//! * `HEAD` anything: 200, empty. Anything else: 200 `{}`.
//!
//! # Turn requests vs side requests
//! `POST /v1/messages` requests are classified by [`classify`] (replaceable with
//! [`FakeApi::set_classifier`]):
//! * [`RequestKind::Compact`]: the CLI's conversation-summary request (`/compact`
//!   or auto-compaction). It carries the same tools as a turn; it is recognised by
//!   its last user message ("CRITICAL: Respond with TEXT ONLY..." / "Your task is
//!   to create a detailed summary of the conversation").
//! * [`RequestKind::Turn`]: any other request whose body has a non-empty `tools`
//!   array (the main agent loop, including follow-ups carrying `tool_result`s and
//!   sub-agent requests).
//! * [`RequestKind::Side`]: a request without tools (background calls the CLI may
//!   make for itself on a small model, e.g. title generation). CLI 2.1.332 made
//!   none in stream-json or `-p` mode, with or without
//!   `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`.
//!
//! Only `Turn` requests consume the scripted queue (falling back to the turn
//! default, `echo: <last user text>`, when it is empty). `Compact` and `Side`
//! requests never touch the queue: the side responder answers them (default: a
//! fake `<summary>` for `Compact`, text `Fake reply` for `Side`). A CLI started
//! with no tools at all (`--tools ""`) would make every request a side request:
//! use [`FakeApi::set_classifier`] then. All other HTTP requests are
//! [`RequestKind::Other`] and are answered 200 (the CLI sends `HEAD /api/hello`
//! when non-essential traffic is allowed).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Channel, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// A function that computes a reply from the request it answers.
pub type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;
/// A function that classifies a `POST /v1/messages` body.
pub type ClassifyFn = Arc<dyn Fn(&Value) -> RequestKind + Send + Sync>;

/// One scripted answer to one `/v1/messages` request.
#[derive(Clone)]
pub enum Reply {
    /// A plain assistant text answer, `stop_reason: "end_turn"`.
    Text(String),
    /// Text streamed in chunks, sleeping `delay_per_chunk` before each chunk
    /// (for interrupt tests). Non-streaming requests get the joined text after
    /// the total delay.
    SlowText {
        chunks: Vec<String>,
        delay_per_chunk: Duration,
    },
    /// A `tool_use` block (id `toolu_fake_<n>`), `stop_reason: "tool_use"`. The CLI
    /// runs the tool and sends a new request carrying the `tool_result`; the next
    /// queued reply answers that one.
    ToolUse { name: String, input: Value },
    /// An HTTP error with Anthropic's error JSON:
    /// `{"type":"error","error":{"type":<error_type>,"message":<message>}}`.
    /// `retry_after` (seconds) adds a `retry-after` header.
    Error {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<u64>,
    },
    /// HTTP 200 SSE that streams `text` and then an `event: error` (mid-stream
    /// failure, as the real API does when it becomes overloaded while streaming);
    /// a non-streaming request gets HTTP 529 with the error JSON. CLI 2.1.332
    /// answers a mid-stream error by retrying the turn once without streaming
    /// (`stream:false`, `max_tokens` 64000, even with `CLAUDE_CODE_MAX_RETRIES=0`),
    /// and that request takes the next queued reply.
    StreamError {
        text: String,
        error_type: String,
        message: String,
    },
    /// Wait before answering with the inner reply (before any response header).
    Delay(Duration, Box<Reply>),
    /// The inner reply, reporting this many input tokens in its usage (the size of
    /// the conversation as the API saw it).
    Usage(u64, Box<Reply>),
    /// Compute the reply from the request.
    Dynamic(ReplyFn),
}

impl Reply {
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Text(s.into())
    }
    pub fn slow<S: Into<String>>(
        chunks: impl IntoIterator<Item = S>,
        delay_per_chunk: Duration,
    ) -> Reply {
        Reply::SlowText {
            chunks: chunks.into_iter().map(Into::into).collect(),
            delay_per_chunk,
        }
    }
    pub fn tool_use(name: impl Into<String>, input: Value) -> Reply {
        Reply::ToolUse {
            name: name.into(),
            input,
        }
    }
    /// The `Bash` tool running `command`.
    pub fn bash(command: impl Into<String>) -> Reply {
        Reply::tool_use(
            "Bash",
            json!({"command": command.into(), "description": "run a command"}),
        )
    }
    /// An error with the type and message the real API uses for `status`
    /// (529 overloaded_error, 429 rate_limit_error, 500 api_error, ...).
    pub fn error(status: u16) -> Reply {
        let (error_type, message) = error_kind(status);
        Reply::Error {
            status,
            error_type: error_type.into(),
            message: message.into(),
            retry_after: None,
        }
    }
    /// A mid-stream `overloaded_error` after some text.
    pub fn stream_overloaded(text: impl Into<String>) -> Reply {
        Reply::StreamError {
            text: text.into(),
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        }
    }
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delay(delay, Box::new(reply))
    }
    /// `reply`, reporting `input_tokens` as the conversation's size.
    pub fn with_usage(input_tokens: u64, reply: Reply) -> Reply {
        Reply::Usage(input_tokens, Box::new(reply))
    }
    /// What the API answers a conversation that no longer fits.
    pub fn prompt_too_long() -> Reply {
        Reply::Error {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "prompt is too long: 1000123 tokens > 1000000 maximum".into(),
            retry_after: None,
        }
    }
    pub fn dynamic(f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::Dynamic(Arc::new(f))
    }
    /// The default turn reply: `echo: <last user text>`.
    pub fn echo(req: &RecordedRequest) -> Reply {
        Reply::Text(format!("echo: {}", last_user_text(req).unwrap_or_default()))
    }

    fn describe(&self) -> String {
        match self {
            Reply::Text(t) => format!("text {:?}", trunc(t, 60)),
            Reply::SlowText {
                chunks,
                delay_per_chunk,
            } => {
                format!("slow {} chunks x {:?}", chunks.len(), delay_per_chunk)
            }
            Reply::ToolUse { name, .. } => format!("tool_use {name}"),
            Reply::Error {
                status, error_type, ..
            } => format!("error {status} {error_type}"),
            Reply::StreamError { error_type, .. } => format!("stream error {error_type}"),
            Reply::Delay(d, r) => format!("after {d:?}: {}", r.describe()),
            Reply::Usage(n, r) => format!("{} (usage {n})", r.describe()),
            Reply::Dynamic(_) => "dynamic".into(),
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The error type and message of the real API for an HTTP status.
pub fn error_kind(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "Invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "Not found"),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    }
}

/// How a request was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/messages` that answers a conversation turn (has `tools`).
    Turn,
    /// `POST /v1/messages` asking for a conversation summary (compaction).
    Compact,
    /// `POST /v1/messages` made by the CLI for itself (no `tools`).
    Side,
    /// Any other method or path.
    Other,
}

/// Markers of the CLI's compaction prompt (the last user message).
pub const COMPACT_MARKERS: &[&str] = &[
    "CRITICAL: Respond with TEXT ONLY",
    "Your task is to create a detailed summary of the conversation",
];

/// The default classifier for `POST /v1/messages` bodies (see the module docs).
pub fn classify(body: &Value) -> RequestKind {
    let last_user_text = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .map(|m| {
            blocks(m)
                .into_iter()
                .filter_map(|b| b.as_str().or_else(|| b.get("text")?.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    if COMPACT_MARKERS.iter().any(|m| last_user_text.contains(m)) {
        return RequestKind::Compact;
    }
    match body.get("tools").and_then(Value::as_array) {
        Some(tools) if !tools.is_empty() => RequestKind::Turn,
        _ => RequestKind::Side,
    }
}

/// The default reply to `Side` and `Compact` requests.
pub fn default_side_reply(req: &RecordedRequest) -> Reply {
    if req.kind == RequestKind::Compact {
        Reply::text(
            "<analysis>Fake analysis.</analysis>\n<summary>Fake summary of the conversation.</summary>",
        )
    } else {
        Reply::text("Fake reply")
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// 0-based arrival order over all requests (not reset by `clear_requests`).
    pub seq: usize,
    /// Arrival time since the server started.
    pub at: Duration,
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// Query string without `?`, e.g. `beta=true`.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub kind: RequestKind,
    pub model: Option<String>,
    /// The system prompt as text (blocks joined with `\n`).
    pub system: Option<String>,
    /// The `messages` array (`Value::Null` when absent).
    pub messages: Value,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    /// The raw body (lossy UTF-8).
    pub body: String,
    /// The parsed body (`Value::Null` when not JSON).
    pub json: Value,
    /// What the server answered (short description), for debugging.
    pub reply: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `role` of the last message.
    pub fn last_role(&self) -> Option<&str> {
        self.messages.as_array()?.last()?.get("role")?.as_str()
    }
    /// `tool_result` blocks in the last user message (as JSON).
    pub fn tool_results(&self) -> Vec<Value> {
        let Some(last) = self.messages.as_array().and_then(|m| m.last()) else {
            return vec![];
        };
        if last.get("role").and_then(Value::as_str) != Some("user") {
            return vec![];
        }
        blocks(last)
            .into_iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .cloned()
            .collect()
    }
}

fn blocks(msg: &Value) -> Vec<&Value> {
    match msg.get("content") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        _ => vec![],
    }
}

/// Tags whose whole `<tag>...</tag>` sections the CLI adds to user messages by
/// itself: reminders, and the records of local commands such as the `/model`
/// switch done by a `set_model` control request.
pub const CLI_TAGS: &[&str] = &[
    "system-reminder",
    "local-command-caveat",
    "command-name",
    "command-message",
    "command-args",
    "local-command-stdout",
    "local-command-stderr",
];

/// Removes every `<tag>...</tag>` section of the [`CLI_TAGS`] and trims.
pub fn strip_cli_sections(text: &str) -> String {
    let mut s = text.to_string();
    for tag in CLI_TAGS {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        while let Some(i) = s.find(&open) {
            let end = s[i..].find(&close).map_or(s.len(), |j| i + j + close.len());
            s.replace_range(i..end, "");
        }
    }
    s.trim().to_string()
}

/// The user's own text blocks in the latest user message that has any: text
/// blocks with `<system-reminder>` and local-command sections removed
/// ([`CLI_TAGS`]), empty blocks, `tool_result` and other non-text blocks, and the
/// CLI's `[Request interrupted by user]` notes skipped. Earlier user messages are
/// searched when the last one holds only tool results or reminders.
///
/// The CLI merges consecutive user messages into one: after failed turns (API
/// errors) or an interrupt, the last user message holds the texts of the
/// earlier turns too, one block each, oldest first.
pub fn user_texts(req: &RecordedRequest) -> Vec<String> {
    let Some(msgs) = req.messages.as_array() else {
        return vec![];
    };
    for msg in msgs.iter().rev() {
        if msg.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let texts: Vec<String> = blocks(msg)
            .into_iter()
            .filter_map(|b| match b {
                Value::String(s) => Some(s.as_str()),
                _ if b.get("type").and_then(Value::as_str) == Some("text") => {
                    b.get("text")?.as_str()
                }
                _ => None,
            })
            .map(strip_cli_sections)
            .filter(|t| !t.is_empty() && !t.starts_with("[Request interrupted by user"))
            .collect();
        if !texts.is_empty() {
            return texts;
        }
    }
    vec![]
}

/// The user's words of the current turn: the last of [`user_texts`].
pub fn last_user_text(req: &RecordedRequest) -> Option<String> {
    user_texts(req).pop()
}

struct State {
    queue: VecDeque<Reply>,
    turn_default: ReplyFn,
    side_default: ReplyFn,
    classifier: ClassifyFn,
    requests: Vec<RecordedRequest>,
    next_seq: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    started: Instant,
    ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    /// Starts on a free port of 127.0.0.1 with `script` queued for turn requests.
    pub fn start(script: impl IntoIterator<Item = Reply>) -> FakeApi {
        Self::start_on(0, script).expect("fake api: bind 127.0.0.1:0")
    }

    /// Starts on 127.0.0.1:`port` (0: any free port).
    pub fn start_on(
        port: u16,
        script: impl IntoIterator<Item = Reply>,
    ) -> std::io::Result<FakeApi> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: script.into_iter().collect(),
                turn_default: Arc::new(Reply::echo),
                side_default: Arc::new(default_side_reply),
                classifier: Arc::new(classify),
                requests: Vec::new(),
                next_seq: 0,
            }),
            changed: Condvar::new(),
            started: Instant::now(),
            ids: AtomicU64::new(1),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-api-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("fake api: {e}");
                            return;
                        }
                    };
                    accept_loop(listener, sh, rx).await;
                });
                // Dropping `rt` here cancels every connection task.
            })?;
        Ok(FakeApi {
            shared,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (for `ANTHROPIC_BASE_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// When a request arrived, on the caller's clock (`RecordedRequest::at` counts from
    /// the server's start).
    pub fn arrival(&self, req: &RecordedRequest) -> Instant {
        self.shared.started + req.at
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }
    /// Only the turn requests (those that consumed the script).
    pub fn turn_requests(&self) -> Vec<RecordedRequest> {
        self.of_kind(RequestKind::Turn)
    }
    /// The requests that did not consume the script (`Side` and `Compact`).
    pub fn side_requests(&self) -> Vec<RecordedRequest> {
        let st = self.shared.lock();
        st.requests
            .iter()
            .filter(|r| matches!(r.kind, RequestKind::Side | RequestKind::Compact))
            .cloned()
            .collect()
    }
    /// The requests of one kind.
    pub fn of_kind(&self, kind: RequestKind) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect()
    }
    /// Forgets the recorded requests (the script is kept).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Appends a reply to the turn script.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().queue.push_back(reply);
    }
    /// Appends several replies to the turn script.
    pub fn extend(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().queue.extend(replies);
    }
    /// Replaces the whole turn script.
    pub fn replace(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().queue = replies.into_iter().collect();
    }
    /// How many scripted replies are still queued.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }
    /// The reply for turn requests when the script is empty (default: [`Reply::echo`]).
    pub fn set_default(&self, f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) {
        self.shared.lock().turn_default = Arc::new(f);
    }
    /// The reply for `Side` and `Compact` requests (default: [`default_side_reply`]).
    pub fn set_side_reply(&self, f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) {
        self.shared.lock().side_default = Arc::new(f);
    }
    /// Replaces the turn/side classifier for `POST /v1/messages` bodies.
    pub fn set_classifier(&self, f: impl Fn(&Value) -> RequestKind + Send + Sync + 'static) {
        self.shared.lock().classifier = Arc::new(f);
    }

    /// Waits until `pred` holds for the recorded requests; false on timeout.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[RecordedRequest]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if pred(&st.requests) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    /// Waits until at least `n` turn requests arrived; false on timeout.
    pub fn wait_for_turns(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |r| {
            r.iter().filter(|r| r.kind == RequestKind::Turn).count() >= n
        })
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Small SSE writes + delayed ACKs would add ~40 ms per turn.
        let _ = stream.set_nodelay(true);
        let sh = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(sh.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let at = shared.started.elapsed();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body = String::from_utf8_lossy(&raw).into_owned();
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let is_messages = method == Method::POST && path.trim_end_matches('/') == "/v1/messages";

    let mut rec = RecordedRequest {
        seq: 0,
        at,
        method: method.to_string(),
        path: path.clone(),
        query,
        headers,
        kind: RequestKind::Other,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
        system: system_text(json.get("system")),
        messages: json.get("messages").cloned().unwrap_or(Value::Null),
        tools: json
            .get("tools")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        max_tokens: json.get("max_tokens").and_then(Value::as_u64),
        stream: json.get("stream").and_then(Value::as_bool).unwrap_or(false),
        body,
        json,
        reply: String::new(),
    };

    if !is_messages {
        let resp = if method == Method::HEAD {
            rec.reply = "200 empty".into();
            Response::builder()
                .status(200)
                .body(Empty::new().boxed())
                .expect("response")
        } else if path.ends_with("/count_tokens") {
            let n = rec.body.len() / 4;
            rec.reply = format!("count_tokens {n}");
            full(
                StatusCode::OK,
                "application/json",
                json!({"input_tokens": n}).to_string(),
            )
        } else {
            rec.reply = "200 {}".into();
            full(StatusCode::OK, "application/json", "{}")
        };
        record(&shared, rec);
        return Ok(resp);
    }

    // Classify and pick the reply under the lock; run closures outside it.
    let classifier = shared.lock().classifier.clone();
    let kind = classifier(&rec.json);
    let (scripted, fallback) = {
        let mut st = shared.lock();
        match kind {
            RequestKind::Turn => (st.queue.pop_front(), st.turn_default.clone()),
            _ => (None, st.side_default.clone()),
        }
    };
    rec.kind = kind;
    let mut reply = scripted.unwrap_or_else(|| Reply::Dynamic(fallback));
    let mut delay = Duration::ZERO;
    let mut usage = None;
    loop {
        match reply {
            Reply::Dynamic(f) => reply = f(&rec),
            Reply::Delay(d, r) => {
                delay += d;
                reply = *r;
            }
            Reply::Usage(n, r) => {
                usage = Some(n);
                reply = *r;
            }
            _ => break,
        }
    }
    rec.reply = if delay.is_zero() {
        reply.describe()
    } else {
        format!("after {delay:?}: {}", reply.describe())
    };
    let model = rec.model.clone().unwrap_or_else(|| "claude-fake".into());
    let input_tokens = usage.unwrap_or((rec.body.len() / 4) as u64);
    let stream = rec.stream;
    record(&shared, rec);

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let id = shared.ids.fetch_add(1, Ordering::Relaxed);
    Ok(respond(reply, &model, input_tokens, stream, id))
}

fn record(shared: &Shared, mut rec: RecordedRequest) {
    let mut st = shared.lock();
    rec.seq = st.next_seq;
    st.next_seq += 1;
    st.requests.push(rec);
    drop(st);
    shared.changed.notify_all();
}

fn system_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "..."
    }
}

fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard"
    })
}

fn message_start(id: u64, model: &str, input: u64) -> String {
    let msg = json!({
        "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(input, 1)
    });
    sse(
        "message_start",
        &json!({"type": "message_start", "message": msg}),
    ) + &sse("ping", &json!({"type": "ping"}))
}

fn text_block_start() -> String {
    sse(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    )
}

fn text_delta(index: usize, text: &str) -> String {
    sse(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
    )
}

fn block_stop(index: usize) -> String {
    sse(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

fn message_end(stop_reason: &str, input: u64, output: u64) -> String {
    sse(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage(input, output)}),
    ) + &sse("message_stop", &json!({"type": "message_stop"}))
}

fn tokens(s: &str) -> u64 {
    (s.len() as u64 / 4).max(1)
}

fn sse_response(id: u64) -> hyper::http::response::Builder {
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("request-id", format!("req_fake_{id}"))
}

fn json_response(status: u16, id: u64, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", format!("req_fake_{id}"))
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

fn message_json(
    id: u64,
    model: &str,
    content: Value,
    stop_reason: &str,
    input: u64,
    output: u64,
) -> Value {
    json!({
        "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage(input, output)
    })
}

fn respond(reply: Reply, model: &str, input: u64, stream: bool, id: u64) -> Response<Body> {
    match reply {
        Reply::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            let body = json!({"type": "error", "error": {"type": error_type, "message": message},
                              "request_id": format!("req_fake_{id}")});
            let mut b = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("request-id", format!("req_fake_{id}"));
            if let Some(s) = retry_after {
                b = b.header("retry-after", s.to_string());
            }
            b.body(Full::new(Bytes::from(body.to_string())).boxed())
                .expect("response")
        }
        Reply::Text(text) if stream => {
            let out = tokens(&text);
            let s = message_start(id, model, input)
                + &text_block_start()
                + &text_delta(0, &text)
                + &block_stop(0)
                + &message_end("end_turn", input, out);
            sse_response(id)
                .body(Full::new(Bytes::from(s)).boxed())
                .expect("response")
        }
        Reply::Text(text) => {
            let out = tokens(&text);
            json_response(
                200,
                id,
                &message_json(
                    id,
                    model,
                    json!([{"type": "text", "text": text}]),
                    "end_turn",
                    input,
                    out,
                ),
            )
        }
        Reply::ToolUse { name, input: args } => {
            let tid = format!("toolu_fake_{id}");
            if stream {
                let start = json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}});
                let delta = json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": args.to_string()}});
                let s = message_start(id, model, input)
                    + &sse("content_block_start", &start)
                    + &sse("content_block_delta", &delta)
                    + &block_stop(0)
                    + &message_end("tool_use", input, 20);
                sse_response(id)
                    .body(Full::new(Bytes::from(s)).boxed())
                    .expect("response")
            } else {
                let content = json!([{"type": "tool_use", "id": tid, "name": name, "input": args}]);
                json_response(
                    200,
                    id,
                    &message_json(id, model, content, "tool_use", input, 20),
                )
            }
        }
        Reply::SlowText {
            chunks,
            delay_per_chunk,
        } => {
            if !stream {
                let (tx, body) = Channel::<Bytes, Infallible>::new(1);
                let model = model.to_string();
                tokio::spawn(async move {
                    let mut tx = tx;
                    tokio::time::sleep(delay_per_chunk * chunks.len() as u32).await;
                    let text = chunks.concat();
                    let out = tokens(&text);
                    let m = message_json(
                        id,
                        &model,
                        json!([{"type": "text", "text": text}]),
                        "end_turn",
                        input,
                        out,
                    );
                    let _ = tx.send_data(Bytes::from(m.to_string())).await;
                });
                return Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(body.boxed())
                    .expect("response");
            }
            let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
            let head = message_start(id, model, input) + &text_block_start();
            tokio::spawn(async move {
                if tx.send_data(Bytes::from(head)).await.is_err() {
                    return;
                }
                let mut out = 0;
                for c in &chunks {
                    tokio::time::sleep(delay_per_chunk).await;
                    out += tokens(c);
                    if tx.send_data(Bytes::from(text_delta(0, c))).await.is_err() {
                        return; // client went away (e.g. interrupted)
                    }
                }
                let _ = tx
                    .send_data(Bytes::from(
                        block_stop(0) + &message_end("end_turn", input, out),
                    ))
                    .await;
            });
            sse_response(id).body(body.boxed()).expect("response")
        }
        Reply::StreamError {
            text,
            error_type,
            message,
        } => {
            let err = json!({"type": "error", "error": {"type": error_type, "message": message}});
            if stream {
                let s = message_start(id, model, input)
                    + &text_block_start()
                    + &text_delta(0, &text)
                    + &sse("error", &err);
                sse_response(id)
                    .body(Full::new(Bytes::from(s)).boxed())
                    .expect("response")
            } else {
                json_response(529, id, &err)
            }
        }
        Reply::Delay(_, r) => respond(*r, model, input, stream, id),
        Reply::Usage(n, r) => respond(*r, model, n, stream, id),
        Reply::Dynamic(_) => json_response(
            500,
            id,
            &json!({"type": "error", "error": {"type": "api_error", "message": "unresolved dynamic reply"}}),
        ),
    }
}

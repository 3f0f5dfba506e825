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

mod reply;
mod request;
mod sse;

pub use reply::*;
pub use request::*;
use sse::*;

/// A function that computes a reply from the request it answers.
pub type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;
/// A function that classifies a `POST /v1/messages` body.
pub type ClassifyFn = Arc<dyn Fn(&Value) -> RequestKind + Send + Sync>;

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

//! One client connection: check who it is, check its protocol version, read its one
//! request, then answer or stream. A client that misbehaves (garbage, silence, huge
//! lines, slow reading, vanishing) loses its connection and nothing else.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::feed::{self, Feed, FeedReceiver, Outgoing};
use super::hub::{ClientCount, Command, Submitted};
use super::permissions::Decision;
use crate::error::{Error, ErrorKind};
use crate::eventlog::read_entries;
use crate::framing::{LineRead, LineReader};
use crate::paths::current_uid;
use crate::protocol::{
    MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, Request, StartSpec, WorkerRequest, decode_request,
};
use crate::turn::{TurnKind, TurnSpec};

/// A client that does not take a line within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines a client sends after its request (interrupts) are small.
const CONTROL_LINE_BYTES: usize = 64 * 1024;

pub struct Shared {
    pub commands: mpsc::Sender<Command>,
    /// A client must say hello and make its request within this time.
    pub request_timeout: Duration,
    /// Bytes of events a client may fall behind before it is dropped.
    pub feed_budget: usize,
    pub clients: ClientCount,
    pub worker: String,
    pub state_dir: PathBuf,
}

pub async fn serve(stream: UnixStream, shared: Arc<Shared>) {
    let _client = shared.clients.enter();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == current_uid() => {}
        Ok(cred) => {
            eprintln!(
                "leash daemon: rejected a connection from uid {} (pid {:?}): only uid {} may use this worker",
                cred.uid(),
                cred.pid(),
                current_uid()
            );
            return;
        }
        Err(e) => {
            eprintln!("leash daemon: rejected a connection whose credentials cannot be read: {e}");
            return;
        }
    }
    let (read, write) = stream.into_split();
    let mut conn = Conn {
        reader: BufReader::new(read),
        writer: BufWriter::new(write),
        lines: LineReader::new(MAX_REQUEST_BYTES),
        written: 0,
    };
    // An error here means the client went away; there is no one left to tell.
    let _ = conn.handle(&shared).await;
    if conn.written > RELEASE_AFTER {
        release_memory();
    }
}

/// A client that took this much had a backlog queued for it: worth giving back.
const RELEASE_AFTER: u64 = 1 << 20;

/// Hands the memory a large stream used (events queued for a slow reader) back to the
/// system, so a daemon that runs for days keeps a small footprint.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    lines: LineReader,
    written: u64,
}

enum Next {
    Out(Option<Outgoing>),
    Client(io::Result<LineRead>),
}

impl Conn {
    async fn handle(&mut self, shared: &Shared) -> io::Result<()> {
        let hello = match self.read_request(shared.request_timeout).await {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return self.reply(&Reply::error(&e)).await,
        };
        match hello {
            Request::Hello { version } if version == PROTOCOL_VERSION => {
                self.reply(&Reply::Hello {
                    version: PROTOCOL_VERSION,
                    daemon_pid: std::process::id(),
                    worker: shared.worker.clone(),
                })
                .await?;
            }
            Request::Hello { version } => {
                let e = Error::setup(format!(
                    "the daemon speaks protocol version {PROTOCOL_VERSION} and this leash speaks {version}"
                ))
                .hint("stop the worker with the leash that started it, then start it again");
                return self.reply(&Reply::error(&e)).await;
            }
            _ => {
                let e = Error::usage("a connection must start with a hello").hint(format!(
                    "send {{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION}}} first"
                ));
                return self.reply(&Reply::error(&e)).await;
            }
        }
        let request = match self.read_request(shared.request_timeout).await {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return self.reply(&Reply::error(&e)).await,
        };
        match request {
            Request::Hello { .. } => {
                self.refuse(
                    Error::usage("hello was already said").hint("send one request after it"),
                )
                .await
            }
            Request::Status => self.status(shared).await,
            Request::Start(spec) => self.start(shared, spec).await,
            Request::Send(spec) => self.send(shared, spec).await,
            Request::Compact { instructions } => self.compact(shared, instructions).await,
            Request::Interrupt { turn } => self.interrupt(shared, turn).await,
            Request::SetModel { model } => self.set_model(shared, model).await,
            Request::Restart { claude } => self.restart(shared, claude).await,
            Request::Follow { after_seq } => self.follow(shared, after_seq).await,
            Request::Permission { .. } => {
                self.refuse(
                    Error::usage(
                        "a tool request is answered on the connection that streams its turn",
                    )
                    .hint("answer it where `leash session send` or the worker step runs"),
                )
                .await
            }
            Request::Worker(request) => self.step(shared, request).await,
            Request::Stop => self.stop(shared).await,
        }
    }

    async fn status(&mut self, shared: &Shared) -> io::Result<()> {
        let reply = match ask(shared, Command::Status).await {
            Ok(status) => Reply::Status(Box::new(status)),
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn start(&mut self, shared: &Shared, spec: StartSpec) -> io::Result<()> {
        let reply = match ask(shared, |reply| Command::Start { spec, reply })
            .await
            .and_then(|r| r)
        {
            Ok(status) => Reply::Status(Box::new(status)),
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn send(&mut self, shared: &Shared, spec: TurnSpec) -> io::Result<()> {
        if spec.prompt.trim().is_empty() {
            return self
                .refuse(Error::usage("the prompt is empty").hint("send a prompt with some text"))
                .await;
        }
        self.queue(shared, true, |feed, reply| Command::Send {
            spec,
            feed,
            reply,
        })
        .await
    }

    async fn compact(&mut self, shared: &Shared, instructions: Option<String>) -> io::Result<()> {
        let prompt = match instructions.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => format!("/compact {text}"),
            _ => "/compact".to_string(),
        };
        let spec = TurnSpec {
            kind: TurnKind::Compact,
            ..TurnSpec::user(prompt)
        };
        self.queue(shared, true, |feed, reply| Command::Send {
            spec,
            feed,
            reply,
        })
        .await
    }

    async fn interrupt(&mut self, shared: &Shared, turn: Option<u64>) -> io::Result<()> {
        let reply = match ask(shared, |reply| Command::Interrupt { turn, reply }).await {
            Ok(message) => Reply::Ok { message },
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn set_model(&mut self, shared: &Shared, model: String) -> io::Result<()> {
        let reply = match ask(shared, |reply| Command::SetModel { model, reply })
            .await
            .and_then(|r| r)
        {
            Ok(message) => Reply::Ok { message },
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn restart(&mut self, shared: &Shared, claude: Option<PathBuf>) -> io::Result<()> {
        let reply = match ask(shared, |reply| Command::Restart { claude, reply })
            .await
            .and_then(|r| r)
        {
            Ok(status) => Reply::Status(Box::new(status)),
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn step(&mut self, shared: &Shared, request: WorkerRequest) -> io::Result<()> {
        let wait = request.wait;
        self.queue(shared, wait, |feed, reply| Command::Step {
            request,
            feed: wait.then_some(feed),
            reply,
        })
        .await
    }

    async fn stop(&mut self, shared: &Shared) -> io::Result<()> {
        let reply = match ask(shared, |reply| Command::Stop(Some(reply))).await {
            Ok(()) => Reply::Ok {
                message: format!("stopped worker {}", shared.worker),
            },
            Err(e) => Reply::error(&e),
        };
        self.reply(&reply).await
    }

    async fn refuse(&mut self, e: Error) -> io::Result<()> {
        self.reply(&Reply::error(&e)).await
    }

    /// Queues a turn or worker step, says so, and streams its events when the client
    /// waits for them.
    async fn queue(
        &mut self,
        shared: &Shared,
        wait: bool,
        command: impl FnOnce(Feed, Submitted) -> Command,
    ) -> io::Result<()> {
        let (feed, rx) = feed::channel(shared.feed_budget);
        match ask(shared, |reply| command(feed, reply))
            .await
            .and_then(|r| r)
        {
            Ok((turn, ahead)) => {
                self.reply(&Reply::Queued { turn, ahead }).await?;
                if wait {
                    self.stream(shared, rx, Some(turn)).await?;
                }
                Ok(())
            }
            Err(e) => self.reply(&Reply::error(&e)).await,
        }
    }

    async fn follow(&mut self, shared: &Shared, after_seq: Option<u64>) -> io::Result<()> {
        let (feed, rx) = feed::channel(shared.feed_budget);
        let upto = match ask(shared, |reply| Command::Follow { feed, reply }).await {
            Ok(seq) => seq,
            Err(e) => return self.reply(&Reply::error(&e)).await,
        };
        if let Some(after) = after_seq.filter(|after| *after < upto) {
            let dir = shared.state_dir.clone();
            let backlog =
                tokio::task::spawn_blocking(move || read_entries(&dir, Some(after), Some(upto)))
                    .await
                    .map_err(io::Error::other)??;
            for line in backlog {
                self.write(line.as_bytes()).await?;
                self.write(b"\n").await?;
            }
            self.flush().await?;
        }
        self.stream(shared, rx, None).await
    }

    /// Relays a feed to the client until its turn ends (or forever for a follower),
    /// while listening for the client's interrupt. The client leaving ends only this.
    async fn stream(
        &mut self,
        shared: &Shared,
        mut rx: FeedReceiver,
        turn: Option<u64>,
    ) -> io::Result<()> {
        let mut control = LineReader::new(CONTROL_LINE_BYTES);
        loop {
            let next = tokio::select! {
                out = rx.recv() => Next::Out(out),
                read = control.next(&mut self.reader) => Next::Client(read),
            };
            match next {
                Next::Out(Some(out)) => {
                    let mut last = out.last;
                    self.write(out.line.as_bytes()).await?;
                    // Batch whatever is already waiting into one flush.
                    while !last {
                        let Some(more) = rx.try_recv() else { break };
                        last = more.last;
                        self.write(more.line.as_bytes()).await?;
                    }
                    self.flush().await?;
                    if last {
                        return Ok(());
                    }
                }
                Next::Out(None) => {
                    let e = if rx.dropped_for_slowness() {
                        Error::new(
                            ErrorKind::TurnFailed,
                            "this client read too slowly and was dropped; the session goes on",
                        )
                        .hint("see `leash session logs` for what it missed")
                    } else {
                        Error::new(ErrorKind::NoSession, "the session daemon stopped")
                            .hint("`leash session start` starts it again")
                    };
                    return self.reply(&Reply::error(&e)).await;
                }
                Next::Client(Ok(LineRead::Line)) => {
                    let command = match decode_request(control.line()) {
                        Ok(Request::Interrupt { turn: wanted }) => {
                            let (reply, _) = oneshot::channel();
                            Command::Interrupt {
                                turn: wanted.or(turn),
                                reply,
                            }
                        }
                        Ok(Request::Permission {
                            request_id,
                            allow,
                            always,
                            message,
                        }) => Command::Permission {
                            request_id,
                            decision: Decision {
                                allow,
                                always,
                                message,
                            },
                        },
                        _ => continue,
                    };
                    let _ = shared.commands.send(command).await;
                }
                Next::Client(Ok(LineRead::TooLong(_))) => {}
                // The client left; the turn goes on without it.
                Next::Client(Ok(LineRead::Eof) | Err(_)) => {
                    if let Some(turn) = turn {
                        let _ = shared.commands.send(Command::Detach { turn }).await;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// The next request line; `None` when the client left without sending one.
    async fn read_request(&mut self, wait: Duration) -> Result<Option<Request>, Error> {
        let read = tokio::time::timeout(wait, self.lines.next(&mut self.reader))
            .await
            .map_err(|_| {
                Error::usage(format!("no request within {} ms", wait.as_millis()))
                    .hint("send the hello and the request at once (LEASH_CLIENT_TIMEOUT)")
            })?
            .map_err(|e| Error::io("cannot read the request", e))?;
        match read {
            LineRead::Eof => Ok(None),
            LineRead::TooLong(len) => Err(Error::usage(format!(
                "a request of {len} bytes is over the {} MiB limit",
                MAX_REQUEST_BYTES >> 20
            ))
            .hint("send a shorter prompt or task (a file's path rather than its contents)")),
            LineRead::Line => decode_request(self.lines.line()).map(Some),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written += bytes.len() as u64;
        tokio::time::timeout(WRITE_TIMEOUT, self.writer.write_all(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
    }

    async fn flush(&mut self) -> io::Result<()> {
        tokio::time::timeout(WRITE_TIMEOUT, self.writer.flush())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
    }

    async fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        self.write(crate::protocol::to_line(reply).as_bytes())
            .await?;
        self.flush().await
    }
}

/// Sends a command built around a reply channel and waits for the answer.
async fn ask<T>(
    shared: &Shared,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Error> {
    let gone = || {
        Error::new(ErrorKind::NoSession, "the session daemon is shutting down")
            .hint("`leash session start` starts it again")
    };
    let (tx, rx) = oneshot::channel();
    shared
        .commands
        .send(command(tx))
        .await
        .map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

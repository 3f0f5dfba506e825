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
use tokio::sync::mpsc;

use super::actor::Inbound;
use super::answer::{Answer, Answered};
use super::feed::{FeedReceiver, Outgoing};
use super::lifecycle::ClientCount;
use crate::error::{Error, ErrorKind};
use crate::eventlog::read_entries;
use crate::framing::{LineRead, LineReader};
use crate::paths::current_uid;
use crate::protocol::{MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, Request, decode_request};

/// A client that does not take a line within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines a client sends after its request (interrupts) are small.
const CONTROL_LINE_BYTES: usize = 64 * 1024;

pub struct Shared {
    pub inbox: mpsc::Sender<Inbound>,
    /// A client must say hello and make its request within this time.
    pub request_timeout: Duration,
    pub clients: ClientCount,
    pub worker: String,
    pub state_dir: PathBuf,
}

pub async fn serve(stream: UnixStream, shared: Arc<Shared>) {
    let _client = shared.clients.enter();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == current_uid() => {}
        Ok(cred) => {
            log_line!(
                "leash daemon: rejected a connection from uid {} (pid {:?}): only uid {} may use this worker",
                cred.uid(),
                cred.pid(),
                current_uid()
            );
            return;
        }
        Err(e) => {
            log_line!("leash daemon: rejected a connection whose credentials cannot be read: {e}");
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
        // Events queued for a slow reader: handed back, so a daemon that runs for
        // days keeps a small footprint.
        crate::process::release_free_memory();
    }
}

/// A client that took this much had a backlog queued for it: worth giving back.
const RELEASE_AFTER: u64 = 1 << 20;

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
        let (answer, answered) = Answer::new();
        let answered = match shared
            .inbox
            .send(Inbound::Request(Box::new(request), answer))
            .await
        {
            Ok(()) => answered.await.ok(),
            Err(_) => None,
        };
        match answered {
            None => {
                let e = Error::new(ErrorKind::NoSession, "the session daemon is shutting down")
                    .hint("`leash session start` starts it again");
                self.reply(&Reply::error(&e)).await
            }
            Some(Answered::Reply(reply)) => self.reply(&reply).await,
            Some(Answered::Stream(queued, feed)) => {
                let turn = match &queued {
                    Reply::Queued { turn, .. } => Some(*turn),
                    _ => None,
                };
                self.reply(&queued).await?;
                self.stream(shared, feed, turn).await
            }
            Some(Answered::Follow { after, upto, feed }) => {
                self.backlog(shared, after, upto).await?;
                self.stream(shared, feed, None).await
            }
        }
    }

    /// The log after `after` up to `upto`, for a follower that asked for it.
    async fn backlog(&mut self, shared: &Shared, after: Option<u64>, upto: u64) -> io::Result<()> {
        let Some(after) = after.filter(|after| *after < upto) else {
            return Ok(());
        };
        let dir = shared.state_dir.clone();
        let backlog =
            tokio::task::spawn_blocking(move || read_entries(&dir, Some(after), Some(upto)))
                .await
                .map_err(io::Error::other)??;
        for line in backlog {
            self.write(line.as_bytes()).await?;
            self.write(b"\n").await?;
        }
        self.flush().await
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
                    let request = match decode_request(control.line()) {
                        Ok(Request::Interrupt { turn: wanted }) => Request::Interrupt {
                            turn: wanted.or(turn),
                        },
                        Ok(request @ Request::Permission { .. }) => request,
                        _ => continue,
                    };
                    let _ = shared
                        .inbox
                        .send(Inbound::Request(Box::new(request), Answer::none()))
                        .await;
                }
                Next::Client(Ok(LineRead::TooLong(_))) => {}
                // The client left; the turn goes on without it.
                Next::Client(Ok(LineRead::Eof) | Err(_)) => {
                    if let Some(turn) = turn {
                        let _ = shared.inbox.send(Inbound::Left { turn }).await;
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

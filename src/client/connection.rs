//! One open, greeted connection to a daemon: say hello, send a request, read what comes
//! back.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::error::{Error, ErrorKind};
use crate::framing::{LineRead, LineReader};
use crate::protocol::{
    PROTOCOL_VERSION, Reply, Request, ServerLine, SessionStatus, StartSpec, to_line,
};

/// Event lines can carry whole files from claude.
const MAX_SERVER_LINE: usize = 256 << 20;
/// A daemon that accepts but does not greet within this time is stuck.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a one-answer request may take: warming up claude and stopping it are
/// the slow ones, each bounded by the daemon's own timeouts.
const CALL_TIMEOUT: Duration = Duration::from_secs(180);

/// One open, greeted connection to a daemon.
pub struct Connection {
    socket: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    lines: LineReader,
    pub daemon_pid: u32,
}

impl Connection {
    /// Connects and says hello. `Ok(None)` when no daemon is listening.
    pub async fn open(socket: &Path) -> Result<Option<Connection>, Error> {
        let stream = match UnixStream::connect(socket).await {
            Ok(stream) => stream,
            Err(e) if is_not_running(&e) => return Ok(None),
            // Our connection was still in the queue of a listener that died then (a
            // daemon killed in the middle of an fsync keeps its socket a moment longer).
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot connect to {}", socket.display()),
                    e,
                ));
            }
        };
        let (read, writer) = stream.into_split();
        let mut conn = Connection {
            socket: socket.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, read),
            writer,
            lines: LineReader::new(MAX_SERVER_LINE),
            daemon_pid: 0,
        };
        // A daemon killed while a thread of it was still busy (in an fsync, say) keeps
        // its socket for a moment after it is gone: the connection is then reset. It is
        // no daemon to talk to, as one that closes during hello is not.
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
        };
        if let Err(e) = conn.writer.write_all(to_line(&hello).as_bytes()).await {
            return match is_gone(&e) {
                true => Ok(None),
                false => Err(Error::io("cannot write to the daemon", e)),
            };
        }
        let read = tokio::time::timeout(HELLO_TIMEOUT, conn.lines.next(&mut conn.reader)).await;
        let read = match read {
            Err(_) => {
                return Err(Error::setup(format!(
                    "the daemon at {} accepts connections but does not answer",
                    socket.display()
                ))
                .hint("see its daemon.log, or kill it"));
            }
            Ok(Err(e)) if is_gone(&e) => return Ok(None),
            Ok(Err(e)) => return Err(Error::io("cannot read from the daemon", e)),
            Ok(Ok(read)) => read,
        };
        let greeting = match conn.line_of(read)? {
            Some(raw) => Some((raw.clone(), parse_line(&raw)?)),
            None => None,
        };
        match greeting {
            Some((_, ServerLine::Reply(Reply::Hello { daemon_pid, .. }))) => {
                conn.daemon_pid = daemon_pid;
                Ok(Some(conn))
            }
            Some((_, ServerLine::Reply(error @ Reply::Error { .. }))) => {
                error.into_error().map(|_| None)
            }
            Some((line, _)) => Err(Error::internal(format!(
                "the daemon answered hello with {line}"
            ))),
            // A daemon that closes during hello is on its way out.
            None => Ok(None),
        }
    }

    /// The socket this connection reached.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn send(&mut self, request: &Request) -> Result<(), Error> {
        self.writer
            .write_all(to_line(request).as_bytes())
            .await
            .map_err(|e| Error::io("cannot write to the daemon", e))
    }

    /// The next line from the daemon, raw and parsed; `None` when it closed.
    pub async fn next(&mut self) -> Result<Option<(String, ServerLine)>, Error> {
        let Some(raw) = self.next_raw().await? else {
            return Ok(None);
        };
        let parsed = parse_line(&raw)?;
        Ok(Some((raw, parsed)))
    }

    /// The next line from the daemon as it came; `None` when it closed.
    pub async fn next_raw(&mut self) -> Result<Option<String>, Error> {
        let read = match self.lines.next(&mut self.reader).await {
            // A daemon that died with our last words unread resets the connection: it
            // is gone, as one that closed it is.
            Err(e) if is_gone(&e) => return Ok(None),
            read => read.map_err(|e| Error::io("cannot read from the daemon", e))?,
        };
        self.line_of(read)
    }

    /// What a read gave: a line, or `None` at the end.
    fn line_of(&self, read: LineRead) -> Result<Option<String>, Error> {
        match read {
            LineRead::Eof => Ok(None),
            // The daemon died in the middle of a line: the line is no answer, and the
            // daemon is gone.
            LineRead::Line if self.lines.unterminated() => Ok(None),
            // The daemon skips claude's lines over 64 MiB; a longer one is a bug.
            LineRead::TooLong(len) => Err(Error::internal(format!(
                "the daemon sent a {len}-byte line, over the {} MiB a client reads",
                MAX_SERVER_LINE >> 20
            ))),
            LineRead::Line => Ok(Some(
                String::from_utf8_lossy(self.lines.line()).into_owned(),
            )),
        }
    }

    /// True when the next line is already buffered (no need to flush output yet).
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Sends one request and returns its single reply, turning error replies into errors.
    pub async fn call(self, request: &Request) -> Result<Reply, Error> {
        self.call_within(request, CALL_TIMEOUT).await
    }

    /// [`Connection::call`] for a request that waits its turn behind running work.
    pub async fn call_within(mut self, request: &Request, bound: Duration) -> Result<Reply, Error> {
        self.send(request).await?;
        let answer = tokio::time::timeout(bound, self.next())
            .await
            .map_err(|_| {
                Error::internal(format!(
                    "the daemon did not answer within {}",
                    crate::human::duration(bound)
                ))
            })??;
        match answer {
            Some((_, ServerLine::Reply(reply))) => reply.into_error(),
            Some((line, ServerLine::Event(_))) => {
                Err(Error::internal(format!("expected a reply, got {line}")))
            }
            None => Err(Error::new(
                ErrorKind::NoSession,
                "the daemon closed the connection before answering",
            )),
        }
    }
}

impl Connection {
    /// The session as the daemon sees it.
    pub async fn status(self) -> Result<SessionStatus, Error> {
        match self.call(&Request::Status).await? {
            Reply::Status(status) => Ok(*status),
            other => Err(unexpected("status", &other)),
        }
    }

    /// Sets the session up as `spec` asks; answers its status.
    pub async fn start(self, spec: StartSpec) -> Result<SessionStatus, Error> {
        match self.call(&Request::Start(spec)).await? {
            Reply::Status(status) => Ok(*status),
            other => Err(unexpected("start", &other)),
        }
    }
}

/// The message of an `ok` reply.
pub fn ok_message(reply: Reply) -> Result<String, Error> {
    match reply {
        Reply::Ok { message } => Ok(message),
        other => Err(unexpected("the request", &other)),
    }
}

pub fn unexpected(what: &str, reply: &Reply) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("unexpected answer to {what}: {reply:?}"),
    )
    .hint("the daemon and this leash may be different versions: `leash session stop`, then retry")
}

pub fn parse_line(raw: &str) -> Result<ServerLine, Error> {
    serde_json::from_str(raw).map_err(|e| {
        Error::internal(format!(
            "the daemon sent a line leash cannot read ({e}): {raw}"
        ))
    })
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn is_not_running(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a daemon killed mid-fsync looks like from outside: its socket accepts, then
    /// the connection is reset without a word.
    #[test]
    fn a_daemon_that_resets_the_hello_is_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("dying.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let dying = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // Unread data in its buffer: closing it resets the connection.
            std::thread::sleep(Duration::from_millis(100));
            drop(stream);
        });
        let opened = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(Connection::open(&socket));
        dying.join().unwrap();
        assert!(matches!(opened, Ok(None)), "{:?}", opened.err());
    }

    /// A connection queued at a listener that then dies is reset before it is
    /// accepted: what `connect` reports when a killed daemon's socket outlives it by a
    /// moment. That is no daemon either.
    #[test]
    fn a_connection_queued_at_a_dying_listener_is_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("dying.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let queued = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        drop(listener);
        let error = queued.take_error().unwrap().expect("the kernel resets it");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        assert!(is_gone(&error));
    }
}

//! The one guarded way to open a file of a worker's state dir. Anyone with the user's
//! rights may have put something else there: a FIFO blocks an open or a read forever, a
//! link to `/dev/zero` never ends, a link elsewhere reads (or appends to) a file that is
//! not leash's. So a state file is opened without following a symlink and without
//! waiting for a writer, and used only when it is a regular file; it is read in bounded
//! pieces, never whole.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::Error;

/// The most a whole-file state (`worker.json`, `session.json`) is read: far above what
/// it takes even with a task and a plan of the largest request leash accepts (a test
/// holds it so; a state file stands below the protocol and does not import it).
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A state file that is no regular file, and what it is instead.
#[derive(Debug)]
struct NotRegular(String);

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotRegular {}

/// The state file at `path` for reading; `Ok(None)` when there is none.
pub fn open(path: &Path) -> io::Result<Option<File>> {
    match guarded(path, OpenOptions::new().read(true)) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The state file at `path` for appending (and reading what it holds), created (0600)
/// when missing.
pub fn open_append(path: &Path) -> io::Result<File> {
    guarded(
        path,
        OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .mode(0o600),
    )
}

/// The whole of a small state file (`worker.json`, `session.json`), at most `max`
/// bytes: a larger one is refused, not read. `Ok(None)` when there is none.
pub fn read(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} is larger than {} KiB", path.display(), max >> 10),
        ));
    }
    Ok(Some(bytes))
}

/// Calls `each` with every line of `file` (without its newline), read in pieces: a line
/// longer than `max_line` is skipped whole and counted, and the lines after it are read
/// as usual. A last line without a newline (torn by a crash) is passed on too. Returns
/// how many lines were skipped.
pub fn each_line(file: File, max_line: usize, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::new();
    let mut oversized = false;
    let mut skipped = 0;
    loop {
        let piece = match reader.fill_buf() {
            Ok(piece) => piece,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if piece.is_empty() {
            break;
        }
        let newline = piece.iter().position(|b| *b == b'\n');
        let text = &piece[..newline.unwrap_or(piece.len())];
        if !oversized && line.len() + text.len() > max_line {
            oversized = true;
            line = Vec::new();
        }
        if !oversized {
            line.extend_from_slice(text);
        }
        let used = newline.map_or(piece.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            if oversized {
                skipped += 1;
            } else {
                each(&line);
            }
            oversized = false;
            line.clear();
        }
    }
    if oversized {
        skipped += 1;
    } else if !line.is_empty() {
        each(&line);
    }
    Ok(skipped)
}

/// A state file that failed the guard, as a command reports it: a setup error (the
/// state dir holds what leash did not put there), naming the file; any other failure
/// is an I/O error, said with `context`.
pub fn error(context: impl std::fmt::Display, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<NotRegular>()) {
        return Error::setup(e.to_string())
            .hint("move it away: leash writes a new one where it needs one");
    }
    Error::io(context, e)
}

/// Opens without following a symlink or waiting for a FIFO's other end, then insists
/// on a regular file.
fn guarded(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = match options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        // ELOOP: a symlink; ENXIO: a FIFO with no reader; EISDIR, and the like.
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(refusal(path).unwrap_or(e));
        }
        Err(e) => return Err(e),
    };
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(refusal(path)
            .unwrap_or_else(|| not_regular(format!("{} is not a regular file", path.display()))))
    }
}

/// Why the file at `path` is refused, when it is no regular file.
fn refusal(path: &Path) -> Option<io::Error> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    let what = if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        return None;
    };
    Some(not_regular(format!(
        "{} is {what}, not a regular file; leash refuses it",
        path.display()
    )))
}

fn not_regular(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, NotRegular(why))
}

/// Writes `bytes` to `path` so that a reader sees the old content or the new one, never
/// a mix: a crash mid-write leaves only a stray temp file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        // A link planted at the temp path is refused, never written through.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new and longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"theirs").unwrap();
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&elsewhere, &tmp).unwrap();
        assert!(
            write_atomic(&path, b"mine").is_err(),
            "a planted link is refused"
        );
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"theirs");
    }

    #[test]
    fn a_record_holds_a_task_and_a_plan_of_the_largest_request() {
        assert!(MAX_RECORD_BYTES >= 2 * crate::protocol::MAX_REQUEST_BYTES as u64);
    }

    fn fifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn only_a_regular_file_is_opened_and_a_fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        assert!(open(&path).unwrap().is_none(), "none there");
        fifo(&path);
        let e = open(&path).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = open_append(&path).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert_eq!(error("reading", e).kind, crate::error::ErrorKind::Setup);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let e = read(&path, 1024).unwrap_err();
        assert!(e.to_string().contains("a symlink"), "{e}");
        let e = open_append(&path).unwrap_err();
        assert!(e.to_string().contains("a symlink"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "x".repeat(2048)).unwrap();
        assert!(read(&path, 1024).is_err(), "over the bound");
        assert_eq!(read(&path, 2048).unwrap().unwrap().len(), 2048);
    }

    #[test]
    fn an_oversized_line_is_skipped_and_the_lines_after_it_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text = format!("first\n{}\nsecond\nthird", "y".repeat(1 << 20));
        std::fs::write(&path, text).unwrap();
        let mut lines = Vec::new();
        let file = open(&path).unwrap().unwrap();
        let skipped = each_line(file, 1000, |l| {
            lines.push(String::from_utf8(l.to_vec()).unwrap())
        })
        .unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(lines, ["first", "second", "third"]);
    }
}

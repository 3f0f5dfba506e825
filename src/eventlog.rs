//! The worker's event log: append-only JSON lines (the protocol's [`Event`]s), rotated
//! at a size bound so a worker running for days cannot fill the disk. Only the daemon
//! writes it; anyone may read it, and readers skip a torn last line left by a crash.
//!
//! [`Event`]: crate::protocol::Event

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const LOG_FILE: &str = "events.jsonl";
pub const ROTATED_FILE: &str = "events.1.jsonl";

pub struct EventLog {
    dir: PathBuf,
    file: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    next_seq: u64,
    dirty: bool,
}

impl EventLog {
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<EventLog> {
        let path = dir.join(LOG_FILE);
        let mut file = open_append(&path)?;
        let mut size = file.metadata()?.len();
        if size > 0 && last_byte(&path)? != Some(b'\n') {
            // A crash tore the last line; start ours on a fresh one.
            file.write_all(b"\n")?;
            size += 1;
        }
        let last_seq = match last_seq(&path)? {
            Some(seq) => Some(seq),
            None => last_seq(&dir.join(ROTATED_FILE))?,
        };
        Ok(EventLog {
            dir: dir.to_path_buf(),
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            max_bytes: max_bytes.max(4096),
            next_seq: last_seq.map_or(1, |s| s + 1),
            dirty: false,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The seq of the newest entry, 0 when there is none.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Appends one line (newline included). Buffered: call [`EventLog::flush`] when the
    /// daemon goes idle.
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.flush()?;
            self.dirty = false;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        std::fs::rename(self.dir.join(LOG_FILE), self.dir.join(ROTATED_FILE))?;
        self.file = BufWriter::with_capacity(64 * 1024, open_append(&self.dir.join(LOG_FILE))?);
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn last_byte(path: &Path) -> io::Result<Option<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut byte = [0u8; 1];
    file.read_exact(&mut byte)?;
    Ok(Some(byte[0]))
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

pub fn seq_of(line: &str) -> Option<u64> {
    serde_json::from_str::<SeqOnly>(line).ok().map(|s| s.seq)
}

/// The seq of the last well-formed entry, reading backwards in growing windows so a
/// large log is not read whole.
fn last_seq(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut window = 64 * 1024u64;
    loop {
        let (text, whole) = tail(&mut file, window)?;
        // The first line of a window may be cut; only trust it when the window is the file.
        let found = text
            .lines()
            .skip(usize::from(!whole))
            .filter_map(seq_of)
            .last();
        if found.is_some() || whole {
            return Ok(found);
        }
        window *= 4;
    }
}

/// The last `bytes` of a log file as text, and whether that is the whole file (if not,
/// its first line is likely cut).
pub fn tail(file: &mut File, bytes: u64) -> io::Result<(String, bool)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut read = Vec::with_capacity((len - start) as usize);
    Read::by_ref(file)
        .take(len - start)
        .read_to_end(&mut read)?;
    Ok((String::from_utf8_lossy(&read).into_owned(), start == 0))
}

/// Every well-formed entry with `after < seq <= upto`, oldest first, from the rotated
/// file and the current one. Torn or foreign lines are skipped.
pub fn read_entries(dir: &Path, after: Option<u64>, upto: Option<u64>) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for name in [ROTATED_FILE, LOG_FILE] {
        let text = match std::fs::read(dir.join(name)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in text.lines() {
            let Some(seq) = seq_of(line) else { continue };
            if after.is_some_and(|a| seq <= a) || upto.is_some_and(|u| seq > u) {
                continue;
            }
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Every line of a worker's logs, the rotated file first, streamed (a log may be
/// large); a line that is not UTF-8 is skipped. Both files are opened before either is
/// read, so a rotation meanwhile loses nothing.
pub fn for_each_line(dir: &Path, mut each: impl FnMut(&str)) {
    use std::io::BufRead;
    let files: Vec<File> = [ROTATED_FILE, LOG_FILE]
        .iter()
        .filter_map(|name| File::open(dir.join(name)).ok())
        .collect();
    for file in files {
        let mut reader = io::BufReader::with_capacity(256 * 1024, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(text) = std::str::from_utf8(&line) {
                        each(text);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> String {
        format!("{{\"type\":\"notice\",\"seq\":{seq},\"ts\":0,\"turn\":null,\"message\":\"m\"}}\n")
    }

    #[test]
    fn continues_seq_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = EventLog::open(dir.path(), 1 << 20).unwrap();
            for _ in 0..3 {
                let seq = log.take_seq();
                log.append(&line(seq)).unwrap();
            }
            log.flush().unwrap();
        }
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(b"{\"type\":\"notice\",\"seq\":4,\"ts").unwrap();
        drop(f);

        let mut log = EventLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.last_seq(), 3);
        let seq = log.take_seq();
        log.append(&line(seq)).unwrap();
        log.flush().unwrap();
        let seqs: Vec<u64> = read_entries(dir.path(), None, None)
            .unwrap()
            .iter()
            .filter_map(|l| seq_of(l))
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }

    #[test]
    fn rotates_at_the_bound_and_reads_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path(), 4096).unwrap();
        for _ in 0..500 {
            let seq = log.take_seq();
            log.append(&line(seq)).unwrap();
        }
        log.flush().unwrap();
        let current = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        let rotated = std::fs::metadata(dir.path().join(ROTATED_FILE))
            .unwrap()
            .len();
        assert!(current <= 4096 && rotated <= 4096, "{current} {rotated}");
        let entries = read_entries(dir.path(), Some(450), None).unwrap();
        assert_eq!(entries.len(), 50);
        drop(log);
        assert_eq!(EventLog::open(dir.path(), 4096).unwrap().last_seq(), 500);
    }
}

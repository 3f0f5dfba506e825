//! `session.json`, written by the daemon alone. Saving it (an atomic replace, with
//! fsync) must not hold up the turn whose end changed it: writes happen on a blocking
//! thread, the newest always winning; the last one at exit, and a changed conversation,
//! are written at once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::record::SessionRecord;

pub struct RecordFile {
    dir: PathBuf,
    /// The number of the latest save asked for.
    asked: u64,
    /// The number of the latest save written: an older one that comes late is skipped.
    written: Arc<Mutex<u64>>,
}

impl RecordFile {
    pub fn new(dir: PathBuf) -> RecordFile {
        RecordFile {
            dir,
            asked: 0,
            written: Arc::new(Mutex::new(0)),
        }
    }

    /// Saves `record` in the background. A failure is in `daemon.log`; the step that
    /// ends next saves again with [`RecordFile::save_now`], and fails with it.
    pub fn save(&mut self, record: SessionRecord) {
        self.asked += 1;
        let (number, dir, written) = (self.asked, self.dir.clone(), self.written.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write(&dir, &record, number, &written) {
                log_line!("leash daemon: {e}");
            }
        });
    }

    /// Saves `record` now; a write that failed (a full disk) is returned.
    pub fn save_now(&mut self, record: SessionRecord) -> Result<(), Error> {
        self.asked += 1;
        write(&self.dir, &record, self.asked, &self.written)
    }
}

fn write(
    dir: &std::path::Path,
    record: &SessionRecord,
    number: u64,
    written: &Mutex<u64>,
) -> Result<(), Error> {
    let mut last = written
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if number <= *last {
        return Ok(());
    }
    *last = number;
    record.save(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::conversation::Conversation;

    fn record(turns: u64) -> SessionRecord {
        let conversation = Conversation::new("w", "/tmp".into(), "claude".into(), String::new());
        SessionRecord {
            turns,
            ..SessionRecord::new(conversation)
        }
    }

    #[test]
    fn a_late_older_save_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let written = Mutex::new(0);
        write(dir.path(), &record(2), 2, &written).unwrap();
        write(dir.path(), &record(1), 1, &written).unwrap();
        let saved = SessionRecord::load(dir.path()).unwrap().unwrap();
        assert_eq!(saved.turns, 2);
    }

    #[tokio::test]
    async fn the_last_save_at_exit_is_on_disk_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RecordFile::new(dir.path().to_path_buf());
        file.save(record(1));
        file.save_now(record(7)).unwrap();
        tokio::task::yield_now().await;
        let saved = SessionRecord::load(dir.path()).unwrap().unwrap();
        assert_eq!(saved.turns, 7);
    }
}

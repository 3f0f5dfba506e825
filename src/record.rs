//! `session.json`: what a worker's session is and how to bring it back. Written only by
//! the worker's daemon (atomically, whenever the conversation or the counters change);
//! commands read it to describe a worker that is not running.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::claude::session::Conversation;
use crate::error::Error;
use crate::paths::RECORD_FILE;
use crate::state_file::write_atomic;

const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub version: u32,
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Tools approved when no one is attached to approve.
    #[serde(default)]
    pub permission_allow: Vec<String>,
    /// Tools a person allowed "always" in this session.
    #[serde(default)]
    pub always_allow: Vec<String>,
    /// Turn ids are never reused within a worker's life.
    pub last_turn: u64,
    pub turns: u64,
    pub cost_usd: f64,
}

impl SessionRecord {
    pub fn new(conversation: Conversation) -> SessionRecord {
        SessionRecord {
            version: RECORD_VERSION,
            conversation,
            permission_allow: Vec::new(),
            always_allow: Vec::new(),
            last_turn: 0,
            turns: 0,
            cost_usd: 0.0,
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(RECORD_FILE)
    }

    /// `Ok(None)` when the worker has never been started.
    pub fn load(state_dir: &Path) -> Result<Option<SessionRecord>, Error> {
        let path = Self::path(state_dir);
        let bytes = match crate::state_file::read(&path, crate::state_file::MAX_RECORD_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(crate::state_file::error(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::setup(format!("{} is damaged ({e})", path.display()))
                .hint("move it away to start a fresh conversation")
        })
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), Error> {
        let path = Self::path(state_dir);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode the session record: {e}")))?;
        write_atomic(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SessionRecord::load(dir.path()).unwrap(), None);
        let record = SessionRecord::new(Conversation::new(
            "w",
            "/tmp".into(),
            "/bin/claude".into(),
            String::new(),
        ));
        record.save(dir.path()).unwrap();
        assert_eq!(SessionRecord::load(dir.path()).unwrap(), Some(record));
        std::fs::write(SessionRecord::path(dir.path()), b"{torn").unwrap();
        let err = SessionRecord::load(dir.path()).unwrap_err();
        assert!(err.message.contains("damaged"), "{err}");
    }
}

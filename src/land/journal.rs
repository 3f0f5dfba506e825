//! `.leash/land/journal.json`: written before the target moves, removed once every
//! landed worker took its work in. A `land` killed between the two finds it when run
//! again and finishes the adopts; one whose target never moved drops it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::worker::land::LandOrder;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub target: String,
    pub from: String,
    pub to: String,
    /// Each landed worker and the order that tells it.
    pub adopts: Vec<(String, LandOrder)>,
}

fn path(root: &Path) -> PathBuf {
    super::land_dir(root).join("journal.json")
}

impl Journal {
    pub fn write(&self, root: &Path) -> Result<(), String> {
        let file = path(root);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        crate::state_file::write_atomic(&file, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    }

    /// The journal a `land` left, if one did (a damaged one is left out and kept aside).
    pub fn read(root: &Path) -> Option<Journal> {
        let file = path(root);
        let bytes = std::fs::read(&file).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(journal) => Some(journal),
            Err(_) => {
                let _ = std::fs::rename(&file, file.with_extension("json.damaged"));
                None
            }
        }
    }

    pub fn remove(root: &Path) {
        let _ = std::fs::remove_file(path(root));
    }
}

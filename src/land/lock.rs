//! One `land` per repository: an exclusive `flock` on `leash-land.lock` in the
//! repository's git dir (shared by all its worktrees, never in anyone's work tree),
//! which the kernel drops with the process that holds it (a killed `land` leaves no
//! lock behind).

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Error, ErrorKind};

/// The lock, held while this value lives.
pub struct LandLock {
    _file: File,
}

/// Takes the repository's land lock; when another `land` holds it, `waiting` is told
/// (with its pid, if it wrote one) and this one waits, or with `no_wait` fails with 14.
pub fn take(root: &Path, no_wait: bool, waiting: impl FnOnce(&str)) -> Result<LandLock, Error> {
    let common = super::git(root, &["rev-parse", "--git-common-dir"]).map_err(Error::internal)?;
    let path = root.join(common).join("leash-land.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = match holder.trim().parse::<u32>() {
            Ok(pid) => format!("another `leash land` (pid {pid})"),
            Err(_) => "another `leash land`".to_string(),
        };
        if no_wait {
            return Err(Error::new(
                ErrorKind::Busy,
                format!("{holder} is landing in this repository"),
            )
            .hint("wait for it, or run `leash land` without --no-wait to wait for it"));
        }
        waiting(&format!("waiting for {holder} to finish"));
        // SAFETY: as above; blocks until the holder ends.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io(
                format!("cannot lock {}", path.display()),
                std::io::Error::last_os_error(),
            ));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(LandLock { _file: file })
}

//! Where claude keeps a conversation's transcript, for forking a conversation into
//! another directory (a worker's worktree): `$CLAUDE_CONFIG_DIR` (else `~/.claude`)
//! `/projects/<the directory, every character but ASCII letters and digits as '-'>/
//! <session id>.jsonl` (measured on 2.1.110 and 2.1.332). claude 2.1.332 resumes a
//! conversation from any directory; 2.1.110 only finds one in the directory's own
//! project folder, so the original's transcript is linked there before the fork
//! starts. claude cuts folder names over 200 characters and adds a hash: those are
//! left alone (a fork there works with claude versions that look everywhere).

use std::path::{Path, PathBuf};

const MAX_FOLDER: usize = 200;

/// claude's folder of conversations that ran in `cwd`, when its name is not cut.
fn project_dir(cwd: &Path) -> Option<PathBuf> {
    let config = match std::env::var_os("CLAUDE_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".claude"),
    };
    let name: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    (name.len() <= MAX_FOLDER).then(|| config.join("projects").join(name))
}

/// Makes the transcript of `session`, which ran in `from`, findable from `to` (a
/// symbolic link, so the fork copies it as it is when it starts: 2.1.110 writes a
/// turn to its transcript some 70 ms after the turn's result, so the file may not even
/// be there yet). Says why not, when it cannot.
pub fn link(session: &str, from: &Path, to: &Path) -> Result<(), String> {
    let (Some(from_dir), Some(to_dir)) = (project_dir(from), project_dir(to)) else {
        return Err("claude's folder for one of the directories has a hashed name".into());
    };
    let file = format!("{session}.jsonl");
    let original = from_dir.join(&file);
    std::fs::create_dir_all(&to_dir)
        .map_err(|e| format!("cannot create {}: {e}", to_dir.display()))?;
    let link = to_dir.join(&file);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&original, &link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_like_claudes() {
        // SAFETY: tests in this module are the only ones reading these variables.
        let dir = project_dir(Path::new("/tmp/x/.leash/worktrees/n1")).unwrap();
        assert!(
            dir.ends_with("projects/-tmp-x--leash-worktrees-n1"),
            "{}",
            dir.display()
        );
        let long = format!("/{}", "a".repeat(300));
        assert_eq!(project_dir(Path::new(&long)), None);
    }
}

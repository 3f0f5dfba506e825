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

/// The most of a transcript leash reads to find a prompt in it.
const MAX_TRANSCRIPT: u64 = 256 * 1024 * 1024;

/// claude's configuration folder, as claude finds it.
fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("CLAUDE_CONFIG_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".claude")),
    }
}

/// claude's folder of conversations that ran in `cwd`, when its name is not cut.
fn project_dir(cwd: &Path) -> Option<PathBuf> {
    project_dir_under(&config_dir()?, cwd)
}

fn project_dir_under(config: &Path, cwd: &Path) -> Option<PathBuf> {
    let name: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    (name.len() <= MAX_FOLDER).then(|| config.join("projects").join(name))
}

/// How long the transcript of the conversation `session`, which runs in `cwd`, is now
/// (0 when there is none yet): where the next prompt's line will be.
pub fn length(session: &str, cwd: &Path) -> u64 {
    let path = config_dir()
        .and_then(|config| project_dir_under(&config, cwd))
        .map(|dir| dir.join(format!("{session}.jsonl")));
    path.and_then(|path| std::fs::metadata(path).ok())
        .map_or(0, |meta| meta.len())
}

/// Whether the conversation `session`, which runs in `cwd`, holds `prompt` as a
/// person's message at or after byte `from` of its transcript (its [`length`] when the
/// prompt was sent: the same words sent earlier, as a second task's implementation
/// prompt repeats the first's, are not this turn's). claude writes a prompt to its
/// transcript once it has it, before the turn ends (measured on 2.1.110 and 2.1.332).
/// `None` when there is no transcript to read.
pub fn holds_prompt(session: &str, cwd: &Path, prompt: &str, from: u64) -> Option<bool> {
    holds_prompt_under(&config_dir()?, cwd, session, prompt, from)
}

/// [`holds_prompt`] for claude's configuration folder `config`.
pub fn holds_prompt_under(
    config: &Path,
    cwd: &Path,
    session: &str,
    prompt: &str,
    from: u64,
) -> Option<bool> {
    use std::io::{BufRead, Read, Seek};
    let path = project_dir_under(config, cwd)?.join(format!("{session}.jsonl"));
    let mut file = std::fs::File::open(path).ok()?;
    // A line cut by `from` (claude was writing it) is a fragment no prompt line matches.
    file.seek(std::io::SeekFrom::Start(from)).ok()?;
    let reader = std::io::BufReader::new(file.take(MAX_TRANSCRIPT));
    // Most lines are claude's own: only a line that holds the prompt as JSON text is
    // parsed.
    let needle = serde_json::to_string(prompt).unwrap_or_default();
    let needle = needle.trim_matches('"').as_bytes();
    let found = reader
        .split(b'\n')
        .map_while(Result::ok)
        .filter(|line| line.windows(needle.len().max(1)).any(|w| w == needle))
        .any(|line| is_prompt_line(&line, prompt));
    Some(found)
}

/// A transcript line that is the person's message `prompt` (text, or text blocks).
fn is_prompt_line(line: &[u8], prompt: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        message: Option<Message>,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        #[serde(default)]
        content: serde_json::Value,
    }
    let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
        return false;
    };
    let Some(message) = entry.message.filter(|_| entry.kind == "user") else {
        return false;
    };
    match &message.content {
        serde_json::Value::String(text) => text == prompt,
        serde_json::Value::Array(blocks) => blocks
            .iter()
            .any(|b| b["type"] == "text" && b["text"].as_str() == Some(prompt)),
        _ => false,
    }
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

/// Makes the transcript of `session`, kept for `from`, findable from `to`, where its
/// worker works from now on (a best-of-N winner's worktree moved): a copy, so the
/// conversation resumes there on claude versions that look only in the directory's own
/// folder. Says why not, when it cannot; nothing to copy is no failure.
pub fn carry(session: &str, from: &Path, to: &Path) -> Result<(), String> {
    let (Some(from_dir), Some(to_dir)) = (project_dir(from), project_dir(to)) else {
        return Err("claude's folder for one of the directories has a hashed name".into());
    };
    let file = format!("{session}.jsonl");
    let (original, copy) = (from_dir.join(&file), to_dir.join(&file));
    if !original.exists() || copy.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&to_dir)
        .map_err(|e| format!("cannot create {}: {e}", to_dir.display()))?;
    let partial = to_dir.join(format!(".{file}.leash-copy"));
    std::fs::copy(&original, &partial)
        .and_then(|_| std::fs::rename(&partial, &copy))
        .map(|_| ())
        .map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                original.display(),
                copy.display()
            )
        })
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

    #[test]
    fn a_prompt_is_found_only_from_where_the_transcript_stood_when_it_was_sent() {
        let config = std::env::temp_dir().join(format!("leash-transcript-{}", std::process::id()));
        let cwd = Path::new("/repo");
        let dir = project_dir_under(&config, cwd).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let line = r#"{"type":"user","message":{"role":"user","content":"Implement it"}}"#;
        let first = format!("{line}\n");
        std::fs::write(dir.join("s.jsonl"), &first).unwrap();
        let sent_at = first.len() as u64;
        assert_eq!(
            holds_prompt_under(&config, cwd, "s", "Implement it", 0),
            Some(true)
        );
        assert_eq!(
            holds_prompt_under(&config, cwd, "s", "Implement it", sent_at),
            Some(false)
        );
        std::fs::write(dir.join("s.jsonl"), format!("{first}{first}")).unwrap();
        assert_eq!(
            holds_prompt_under(&config, cwd, "s", "Implement it", sent_at),
            Some(true)
        );
        // Cut inside a line: the fragment is no prompt.
        assert_eq!(
            holds_prompt_under(&config, cwd, "s", "Implement it", sent_at + 1),
            Some(false)
        );
        std::fs::remove_dir_all(&config).unwrap();
    }
}

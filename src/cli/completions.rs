//! `leash completions`: shell completions, generated from the clap definitions.

use clap::Args;

use super::Output;
use crate::error::Error;

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script for one shell.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = super::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "leash", &mut out);
    out
}

pub fn run(args: &CompletionsArgs, out: &Output) -> Result<u8, Error> {
    if out.json {
        return Err(Error::usage("completions are a shell script, not JSON")
            .hint("drop --json: `leash completions bash > ~/.local/share/bash-completion/completions/leash`"));
    }
    out.data(String::from_utf8_lossy(&script(args.shell)).trim_end());
    Ok(0)
}

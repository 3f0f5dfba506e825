//! Shell completions and man pages, generated from the clap definitions so they can
//! never disagree with `--help`. `cargo run -p leash-gen` writes them to
//! `completions/` and `man/`; a test fails when the checked-in copies are stale.

use std::path::PathBuf;

use clap_complete::Shell;

pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Every generated file, as (path relative to the repository root, contents).
pub fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let name = match shell {
            Shell::Bash => "leash.bash",
            Shell::Zsh => "_leash",
            Shell::Fish => "leash.fish",
            _ => continue,
        };
        files.push((
            PathBuf::from("completions").join(name),
            crate::cli::completion_script(shell),
        ));
    }
    let command = crate::cli::command();
    collect_man_pages(&command, "leash", &mut files);
    files
}

/// One page per command and subcommand, named like git's: `leash-session-start.1`.
fn collect_man_pages(command: &clap::Command, name: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    if command.is_hide_set() {
        return;
    }
    let page = command
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(page).render(&mut out);
    files.push((PathBuf::from("man").join(format!("{name}.1")), out));
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        collect_man_pages(sub, &format!("{name}-{}", sub.get_name()), files);
    }
}

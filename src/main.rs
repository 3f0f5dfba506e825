//! The `leash` binary: reads the command line with clap, runs it through the library
//! (`leash::cli::run`) and turns the outcome into the process's exit code. A command
//! line clap cannot read ends here, as clap prints it (with an `error` line on stdout
//! under `--json`).

use std::process::ExitCode;

use clap::Parser;
use leash::cli::{Cli, Output, run};
use leash::error::Error;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let out = Output::new(&cli.global);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// A command line clap could not read. `--help` and `--version` print as clap prints
/// them; a mistake is clap's message on stderr, and with `--json` anywhere on the line
/// also an `error` line on stdout, so a script reads the outcome as always.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os().skip(1).any(|arg| arg == "--json");
    if e.kind() == ErrorKind::InvalidUtf8 {
        // clap says only that some argument is not UTF-8: say which.
        let err = not_text_argument();
        let out = Output {
            json,
            quiet: false,
            verbose: 0,
            muted: false,
        };
        out.error(&err);
        return ExitCode::from(err.exit_code());
    }
    let _ = e.print();
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    }
    if json {
        let rendered = e.to_string();
        // clap's first paragraph says what is wrong; the rest is usage.
        let first: Vec<&str> = rendered
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .map(str::trim)
            .collect();
        let message = first.join(" ");
        let message = message.trim_start_matches("error: ");
        let err = Error::usage(message).hint("`leash --help` lists the commands and their flags");
        Output::json_only().json(&leash::cli::ErrorLine::from(&err));
        return ExitCode::from(err.exit_code());
    }
    ExitCode::from(Error::usage("").exit_code())
}

/// The argument (or `LEASH_WORKER`, which stands for `--worker`) that is not UTF-8, as
/// a usage error naming it.
fn not_text_argument() -> Error {
    let bad = std::env::args_os()
        .enumerate()
        .skip(1)
        .find(|(_, arg)| arg.to_str().is_none());
    match bad {
        Some((at, arg)) => Error::usage(format!(
            "argument {at} ({:?}) is not valid UTF-8",
            arg.to_string_lossy()
        ))
        .hint("leash reads its arguments as UTF-8 text: pass text that is, or write it to a file for `--task-file`"),
        None => Error::usage("the environment variable LEASH_WORKER is not valid UTF-8")
            .hint("set it to a worker name (letters, digits, '.', '_' and '-'), or unset it"),
    }
}

use std::process::ExitCode;

use clap::Parser;
use leash::cli::{Cli, Output, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(&cli.global);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

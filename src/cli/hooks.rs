//! `leash hooks install|uninstall`: git hooks that nudge the worker.

use clap::{Args, Subcommand};

use super::Output;
use super::common::current_dir;
use crate::error::Error;
use crate::git::{DEFAULT_HOOKS, SUPPORTED_HOOKS, install_hooks, uninstall_hooks};

const EXAMPLES: &str = "Examples:
  leash hooks install                                  # post-commit
  leash hooks install --hook post-merge --hook pre-commit
  leash hooks uninstall                                # removes only leash's, restores what was there";

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install hooks in this repository that run `leash nudge --event <hook> --no-wait`
    #[command(after_help = EXAMPLES)]
    Install(HooksArgs),
    /// Remove the hooks leash installed, restoring any hook that was there before
    Uninstall(HooksArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HooksArgs {
    /// Which hooks [default: post-commit; also post-merge, post-rewrite, post-checkout,
    /// pre-commit, pre-push, commit-msg]
    #[arg(long = "hook", value_name = "HOOK")]
    pub hooks: Vec<String>,
}

pub fn run(command: HooksCommand, out: &Output) -> Result<u8, Error> {
    let cwd = current_dir()?;
    let (args, install) = match command {
        HooksCommand::Install(args) => (args, true),
        HooksCommand::Uninstall(args) => (args, false),
    };
    let hooks = chosen_hooks(&args, install)?;
    if install {
        crate::git::work_tree(&cwd)?;
    }
    let changes = if install {
        install_hooks(&cwd, &hooks)?
    } else {
        uninstall_hooks(&cwd, &hooks)?
    };
    for change in &changes {
        if out.json {
            out.json(change);
        } else {
            out.data(format!(
                "{}: {} ({})",
                change.hook,
                change.action,
                change.path.display()
            ));
        }
    }
    if changes.is_empty() {
        super::say_done(out, "no leash hooks to remove".to_string());
    }
    Ok(0)
}

/// The hooks named with `--hook`; by default post-commit to install, and every hook
/// leash knows to uninstall.
fn chosen_hooks(args: &HooksArgs, install: bool) -> Result<Vec<String>, Error> {
    if args.hooks.is_empty() {
        let defaults = if install {
            DEFAULT_HOOKS
        } else {
            SUPPORTED_HOOKS
        };
        return Ok(defaults.iter().map(|h| h.to_string()).collect());
    }
    for hook in &args.hooks {
        if !SUPPORTED_HOOKS.contains(&hook.as_str()) {
            return Err(Error::usage(format!("unknown hook {hook:?}"))
                .hint(format!("leash supports {}", SUPPORTED_HOOKS.join(", "))));
        }
    }
    Ok(args.hooks.clone())
}

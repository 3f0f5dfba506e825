//! `leash hooks install|uninstall`: git hooks that nudge the worker.

use super::render::Output;
use super::{Global, HooksArgs, HooksCommand};
use crate::error::Error;
use crate::git::{DEFAULT_HOOKS, SUPPORTED_HOOKS, install_hooks, uninstall_hooks};

pub fn run(command: HooksCommand, _global: &Global, out: &Output) -> Result<u8, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let (args, install) = match command {
        HooksCommand::Install(args) => (args, true),
        HooksCommand::Uninstall(args) => (args, false),
    };
    let hooks = chosen_hooks(&args, install)?;
    let changes = if install {
        install_hooks(&cwd, &hooks)?
    } else {
        uninstall_hooks(&cwd, &hooks)?
    };
    for change in &changes {
        if out.json {
            let mut line = serde_json::to_value(change).unwrap_or_default();
            line["type"] = "hook".into();
            out.json_line(&line);
        } else {
            println!(
                "{}: {} ({})",
                change.hook,
                change.action,
                change.path.display()
            );
        }
    }
    if changes.is_empty() && !out.json {
        out.note("no leash hooks to remove");
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
            return Err(Error::usage(format!(
                "unknown hook {hook:?}; leash supports {}",
                SUPPORTED_HOOKS.join(", ")
            )));
        }
    }
    Ok(args.hooks.clone())
}

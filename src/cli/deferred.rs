//! Building clap's whole command tree (every command, every flag, every help text)
//! took half a millisecond of each run, more than anything else leash does before it
//! talks to its daemon. A command or group wrapped in [`Deferred`] is built only when
//! the command line enters it (clap's `Command::defer`); the generators build it all
//! for the man pages and completions.

use clap::{ArgMatches, Args, Command, Error, FromArgMatches, Subcommand};

/// `T`'s arguments (or subcommands), built only when clap enters its command.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: Command) -> Command {
        cmd.defer(|cmd| keeping_texts(cmd, T::augment_args))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(|cmd| keeping_texts(cmd, T::augment_args_for_update))
    }
}

/// The command's own texts (set by the variant that names it) stay what they were:
/// built later, an arguments struct's doc comment would otherwise replace them.
fn keeping_texts(cmd: Command, augment: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let after_help = cmd.get_after_help().cloned();
    let after_long_help = cmd.get_after_long_help().cloned();
    let mut cmd = augment(cmd);
    if let Some(text) = about {
        cmd = cmd.about(text);
    }
    if let Some(text) = long_about {
        cmd = cmd.long_about(text);
    }
    if let Some(text) = after_help {
        cmd = cmd.after_help(text);
    }
    if let Some(text) = after_long_help {
        cmd = cmd.after_long_help(text);
    }
    cmd
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

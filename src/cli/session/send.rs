//! `leash session send`: one turn in the worker's conversation, streamed as it comes.

use crate::cli::common::with_default;
use clap::Args;

use crate::cli::common::{
    Autostart, connect_or_start, read_stdin, resolve_claude, settings, target,
};
use crate::cli::stream::{Ending, Survive, daemon_died, stream_surviving};
use crate::cli::{Global, Output};
use crate::error::Error;
use crate::protocol::Request;
use crate::settings::Name;
use crate::turn::{Outcome, TurnSpec, TurnStatus};

pub const EXAMPLES: &str = "Examples:
  leash session send \"Find the flaky test in tests/\"
  echo \"Now fix it\" | leash session send -
  leash session send --json \"hi\" | jq -r 'select(.type == \"turn_ended\") | .outcome.status'
  leash session send --retries 5 \"Summarise the last commit\"   # re-send after 429/529";

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub worktree: crate::cli::common::WorktreeArg,
    /// The prompt, or `-` to read it from standard input
    #[arg(value_name = "PROMPT")]
    pub prompt: String,
    /// Fail with exit code 3 instead of starting a session when none is running
    #[arg(long)]
    pub no_start: bool,
    #[arg(long, value_name = "N", help = with_default(
        "Re-send the turn this many times after provider errors (429/529/5xx)",
        Name::provider_retries,
    ))]
    pub retries: Option<u32>,
    /// When claude, or the session daemon, dies during the turn, restart it and tell
    /// claude to continue (the prompt is not sent twice)
    #[arg(long)]
    pub continue_on_crash: bool,
}

pub async fn run(args: SendArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let prompt = if args.prompt == "-" {
        read_stdin("the prompt")?
    } else {
        args.prompt
    };
    if prompt.trim().is_empty() {
        return Err(Error::usage("the prompt is empty")
            .hint("give the prompt, or - to read it from standard input"));
    }
    let (resolved, settings) =
        settings(&[(Name::provider_retries, args.retries.map(|n| n.to_string()))])?;
    let target = args.worktree.apply(target(global)?, global, &settings)?;
    let autostart = (!args.no_start).then(|| Autostart {
        resolved: &resolved,
        settings: &settings,
        allowed_tools: Vec::new(),
    });
    let conn = connect_or_start(&target, autostart.clone()).await?;
    // A turn goes on through its daemon's death only when asked to, as through claude's.
    let survive = autostart
        .filter(|_| args.continue_on_crash)
        .map(|autostart| Survive {
            autostart,
            max_deaths: settings.max_crashes,
        });
    let spec = TurnSpec {
        retry: settings.provider_retry(),
        interactive: out.interactive(),
        claude: Some(resolve_claude(&settings.claude)?),
        continue_on_crash: args.continue_on_crash,
        ..TurnSpec::user(prompt)
    };
    match stream_surviving(&target, conn, Request::Send(spec), out, survive).await? {
        Ending::Turn(outcome) => Ok(report_outcome(&outcome, out)),
        Ending::Step(judgement) => Ok(judgement.exit_code),
        Ending::DaemonDied { .. } => Err(daemon_died()),
    }
}

/// Says why a turn failed (the JSON outcome line is already out) and gives its exit
/// code.
pub fn report_outcome(outcome: &Outcome, out: &Output) -> u8 {
    if outcome.status != TurnStatus::Success {
        out.say(format!(
            "turn {} {}: {}",
            outcome.turn,
            outcome.status.describe(),
            outcome.message.as_deref().unwrap_or("no details")
        ));
    } else if out.verbose > 0 {
        out.say(format!(
            "turn {} done in {:.1} s{}",
            outcome.turn,
            outcome.duration_ms as f64 / 1000.0,
            outcome
                .cost_usd
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default()
        ));
    }
    outcome.exit_code
}

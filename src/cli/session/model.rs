//! `leash session model`: switch model for the next turns, keeping the conversation.

use clap::Args;

use crate::cli::common::{settings, target};
use crate::cli::{Global, Output};
use crate::client::ok_message;
use crate::error::{Error, ErrorKind};
use crate::protocol::Request;
use crate::record::SessionRecord;

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: an alias such as `opus`, `sonnet`, `haiku`, or a full model name
    #[arg(value_name = "MODEL")]
    pub model: String,
}

pub async fn run(args: ModelArgs, global: &Global, out: &Output) -> Result<u8, Error> {
    let model = args.model.trim().to_string();
    if model.is_empty() || model.chars().any(char::is_whitespace) {
        return Err(
            Error::usage(format!("{:?} is not a model name", args.model))
                .hint("use an alias such as `opus`, `sonnet`, `haiku`, or a full model name"),
        );
    }
    let target = target(global)?;
    let conn = match target.open().await? {
        Some(conn) => conn,
        None => {
            // The daemon keeps the record; a stopped worker's daemon starts cold for it.
            if SessionRecord::load(&target.state_dir)?.is_none() {
                return Err(Error::new(
                    ErrorKind::NoSession,
                    format!("worker {} has no session", target.worker),
                )
                .hint(format!(
                    "start one with `leash session start --model {model}`"
                )));
            }
            let (resolved, _) = settings(&[])?;
            target.revive(&resolved.daemon_env()).await?
        }
    };
    let message = ok_message(conn.call(&Request::SetModel { model }).await?)?;
    crate::cli::say_done(out, message);
    Ok(0)
}

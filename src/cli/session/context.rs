//! `leash session context`: how full the conversation is, in claude's own count.

use crate::cli::common::target;
use crate::cli::{Global, Output};
use crate::client::ok_message;
use crate::error::Error;
use crate::protocol::Request;

pub async fn run(global: &Global, out: &Output) -> Result<u8, Error> {
    let target = target(global)?;
    let conn = target.connect().await?;
    let message = ok_message(conn.call(&Request::Context).await?)?;
    crate::cli::say_done(out, message);
    Ok(0)
}

//! `context`: claude's own count of the conversation's context, from its
//! `get_context_usage` control request; after whatever runs.

use serde_json::{Value, json};

use super::{Answering, SessionCommand};
use crate::claude::session::{Cancel, ControlAsk, Done};
use crate::daemon::parts::Parts;

pub struct Context;

impl SessionCommand for Context {
    fn send(&mut self, parts: &mut Parts, cancel: &Cancel) {
        let ask = ControlAsk::new("get_context_usage", json!({}));
        parts.session().control(ask, cancel.clone());
    }

    fn ended(&mut self, _: &mut Parts, done: Done) -> Option<Answering> {
        let Done::Control(result) = done else {
            return None;
        };
        Some(match result {
            Ok(usage) => Answering::Ok(said(&usage)),
            Err(e) => Answering::Error(e),
        })
    }
}

/// `12k of 1M tokens (1%); claude compacts at 967k`.
fn said(usage: &Value) -> String {
    let count = |key: &str| usage[key].as_u64().map(crate::human::tokens);
    let (Some(total), Some(max)) = (count("totalTokens"), count("maxTokens")) else {
        return "claude did not say how full its context is".to_string();
    };
    let percent = usage["percentage"].as_f64().unwrap_or_default();
    let compacts = match count("autoCompactThreshold") {
        Some(at) if usage["isAutoCompactEnabled"] != false => format!("; claude compacts at {at}"),
        _ => String::new(),
    };
    format!("{total} of {max} tokens ({percent:.0}%){compacts}")
}

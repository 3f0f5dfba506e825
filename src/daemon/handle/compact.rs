//! `compact`: claude compacts the conversation now (`/compact`), keeping what the
//! instructions name; queued and streamed like a turn.

use super::Answer;
use crate::daemon::parts::Parts;
use crate::daemon::queue::Queue;
use crate::turn::{TurnKind, TurnSpec};

pub fn handle(parts: &mut Parts, queue: &mut Queue, instructions: Option<String>, answer: Answer) {
    let prompt = match instructions.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => format!("/compact {text}"),
        _ => "/compact".to_string(),
    };
    let spec = TurnSpec {
        kind: TurnKind::Compact,
        ..TurnSpec::user(prompt)
    };
    super::send::enqueue(parts, queue, spec, answer);
}

//! Property tests for everything that decodes bytes from outside: the socket protocol
//! (requests and server lines), the line framing, and claude's stream-json lines.
//! Whatever arrives, decoding answers `Ok` or a clear `Err`, never a panic, and what
//! leash encodes decodes to the same value.

use std::io::Cursor;

use leash::claude::messages::StreamMessage;
use leash::framing::{LineRead, LineReader};
use leash::protocol::{
    NewSession, Request, ServerLine, SessionChange, StartSpec, WorkerRequest, decode_request,
    to_line,
};
use leash::retry::RetryPolicy;
use leash::settings::Settings;
use leash::turn::{TurnKind, TurnSettings, TurnSpec};
use leash::worker::WorkerStep;
use proptest::prelude::*;

/// Cases per property; six properties run this many each.
const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn turn_kind() -> impl Strategy<Value = TurnKind> {
    prop_oneof![
        Just(TurnKind::User),
        Just(TurnKind::Plan),
        Just(TurnKind::Implement),
        Just(TurnKind::Nudge)
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let text = ".{0,200}";
    prop_oneof![
        any::<u32>().prop_map(|version| Request::Hello { version }),
        Just(Request::Status),
        (text, any::<bool>(), any::<bool>()).prop_map(|(path, fresh, warm)| {
            Request::Start(StartSpec {
                fresh,
                warm,
                new: NewSession {
                    cwd: path.clone().into(),
                    claude: "claude".into(),
                    model: path.clone(),
                    permission_allow: vec![path.clone()],
                    allowed_tools: Vec::new(),
                    fork_of: warm.then(|| leash::claude::conversation::ForkOf {
                        session_id: path.clone(),
                        cwd: path.clone().into(),
                    }),
                    worker: fresh.then(|| {
                        Box::new(leash::worker::WorkerState {
                            task: leash::worker::Task {
                                text: Some(path.clone()),
                                ..Default::default()
                            },
                            ..Default::default()
                        })
                    }),
                },
                change: SessionChange {
                    model: fresh.then(|| path.clone()),
                    claude_args: vec![path],
                    ..SessionChange::default()
                },
            })
        }),
        Just(Request::Stop),
        proptest::option::of(any::<u64>()).prop_map(|turn| Request::Interrupt { turn }),
        proptest::option::of(any::<u64>()).prop_map(|after_seq| Request::Follow { after_seq }),
        text.prop_map(|model| Request::SetModel { model }),
        proptest::option::of(text).prop_map(|claude| Request::Restart {
            claude: claude.map(Into::into)
        }),
        proptest::option::of(text).prop_map(|instructions| Request::Compact { instructions }),
        (text, turn_kind(), proptest::option::of(text), any::<u32>()).prop_map(
            |(prompt, kind, model, retries)| {
                Request::Send(TurnSpec {
                    prompt,
                    kind,
                    settings: TurnSettings {
                        model,
                        permission_mode: None,
                        allowed_tools: (retries % 7 == 0).then(|| vec!["Bash(git:*)".into()]),
                    },
                    interactive: retries % 2 == 0,
                    retry: RetryPolicy {
                        max_retries: retries,
                        ..RetryPolicy::NONE
                    },
                    claude: (retries % 3 == 0).then(|| "/usr/bin/claude".into()),
                    continue_on_crash: retries % 5 == 0,
                    cut_off_prompt: (retries % 11 == 0).then(|| "the cut-off prompt".into()),
                    cut_off_since: (retries % 13 == 0).then_some(u64::from(retries)),
                })
            }
        ),
        (text, proptest::collection::vec(text, 0..3), any::<bool>()).prop_map(
            |(task, reasons, wait)| {
                let step = if wait {
                    WorkerStep::Plan {
                        task,
                        replace: reasons.is_empty(),
                    }
                } else {
                    WorkerStep::Nudge {
                        reasons,
                        events: vec![task],
                    }
                };
                Request::Worker(WorkerRequest {
                    step,
                    config: Settings::defaults().worker_config(),
                    wait,
                    interactive: !wait,
                    claude: None,
                    task_id: None,
                })
            }
        ),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_request(&bytes);
        let _ = serde_json::from_slice::<ServerLine>(&bytes);
    }

    #[test]
    fn requests_survive_the_wire(request in request()) {
        let line = to_line(&request);
        prop_assert!(line.ends_with('\n'));
        prop_assert_eq!(line.matches('\n').count(), 1, "one request, one line");
        let back = decode_request(line.trim_end().as_bytes()).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(back, request);
    }

    #[test]
    fn damaged_requests_are_refused_or_still_valid(
        request in request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = to_line(&request).trim_end().as_bytes().to_vec();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(decoded) = decode_request(&bytes) {
            // Whatever it became, it is a request leash can encode again.
            let again = decode_request(to_line(&decoded).trim_end().as_bytes());
            prop_assert_eq!(again.ok(), Some(decoded));
        }
    }

    #[test]
    fn any_json_from_claude_is_read_or_refused(value in arbitrary_json()) {
        let line = value.to_string();
        let _ = serde_json::from_str::<StreamMessage>(&line);
        let _ = serde_json::from_str::<ServerLine>(&line);
    }

    #[test]
    fn framing_splits_any_stream_into_bounded_lines(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..4096),
        capacity in 1usize..64,
        max in 1usize..300,
    ) {
        let expected = reference_lines(&bytes, max);
        let got = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(capacity, Cursor::new(bytes.clone()));
            let mut lines = LineReader::new(max);
            let mut out = Vec::new();
            loop {
                match lines.next(&mut reader).await.unwrap() {
                    LineRead::Eof => return out,
                    LineRead::Line => out.push(Ok(lines.line().to_vec())),
                    LineRead::TooLong(len) => out.push(Err(len)),
                }
            }
        });
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn decoding_json_shaped_requests_never_panics(value in arbitrary_json()) {
        let _ = decode_request(value.to_string().as_bytes());
    }
}

/// The lines of `bytes` as the framing must return them: a line longer than `max`
/// comes back as its length.
fn reference_lines(bytes: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
    let mut parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // A trailing newline ends the last line; it does not start an empty one.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .map(|p| {
            if p.len() > max {
                Err(p.len())
            } else {
                Ok(p.to_vec())
            }
        })
        .collect()
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        prop_oneof![
            Just("type".to_string()),
            Just("result".to_string()),
            Just("system".to_string()),
            Just("assistant".to_string()),
            Just("control_response".to_string()),
            Just("hello".to_string()),
            Just("send".to_string()),
            ".{0,20}"
        ]
        .prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("subtype".to_string()),
                    Just("message".to_string()),
                    Just("content".to_string()),
                    Just("version".to_string()),
                    Just("prompt".to_string()),
                    Just("is_error".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

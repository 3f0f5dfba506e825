//! The fake claude keeps the promises leash's tests rely on (and testing it here makes
//! `cargo test` build it for them).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

fn lines_until_result(stdout: &mut impl BufRead) -> Vec<Value> {
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = value["type"] == "result";
        lines.push(value);
        if done {
            break;
        }
    }
    lines
}

#[test]
fn init_is_lazy_and_each_turn_ends_with_a_result() {
    let home = std::env::temp_dir().join(format!("fake-claude-smoke-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-claude"))
        .args([
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
        ])
        .args([
            "--verbose",
            "--session-id",
            "00000000-0000-4000-8000-00000000abcd",
        ])
        .env("FAKE_CLAUDE_HOME", &home)
        .env_remove("FAKE_CLAUDE_SCRIPT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(
        stdin,
        r#"{{"type":"control_request","request_id":"r1","request":{{"subtype":"initialize"}}}}"#
    )
    .unwrap();
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let answer: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        answer["type"], "control_response",
        "nothing before the answer"
    );
    assert_eq!(answer["response"]["request_id"], "r1");
    for prompt in ["one", "two"] {
        writeln!(
            stdin,
            r#"{{"type":"user","message":{{"role":"user","content":"{prompt}"}}}}"#
        )
        .unwrap();
        let lines = lines_until_result(&mut stdout);
        assert_eq!(lines[0]["subtype"], "init", "init opens every turn");
        let result = lines.last().unwrap();
        assert_eq!(result["result"], format!("echo: {prompt}"));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "closing stdin ends it");
    let _ = std::fs::remove_dir_all(home);
}

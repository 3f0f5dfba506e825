//! What the continuation rule stands on, measured on both pinned CLIs: a conversation
//! resumed with `--resume` holds a prompt exactly when claude's transcript of it does.
//! Both CLIs write a prompt to the transcript once the model's answer begins to stream
//! (measured: absent while the request is out, present mid-stream): a claude killed
//! before that leaves no trace of the prompt, so a turn cut off then must be sent
//! again, as itself; one cut off later is continued.

use super::*;

const SESSION: &str = "3f2b9c1e-0d4a-4c6b-9a7e-5b8c1d2e3f40";

pub fn a_resumed_conversation_holds_a_prompt_exactly_when_its_transcript_does(cli: &'static Cli) {
    let slow = Reply::Delay(Duration::from_secs(60), Box::new(Reply::text("late")));
    let Some(e2e) = E2e::start(cli, [Reply::text("noted"), slow_reply("streaming"), slow]) else {
        return;
    };
    let home = e2e
        .vars
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| PathBuf::from(v).join(".claude"))
        .unwrap();
    let holds = |prompt: &str| {
        leash::claude::transcript::holds_prompt_under(&home, &e2e.repo, SESSION, prompt, 0)
    };

    let mut claude = spawn_claude(cli, &e2e, &["--session-id", SESSION]);
    say(&mut claude, "First, the word alpha");
    wait_for(&mut || holds("First, the word alpha") == Some(true));

    say(&mut claude, "Meanwhile, the word mango");
    e2e.wait_for_request("Meanwhile, the word mango");
    let_some_chunks_stream();
    let streaming = holds("Meanwhile, the word mango");
    let _ = claude.kill();
    let _ = claude.wait();
    let mut claude = spawn_claude(cli, &e2e, &["--resume", SESSION]);

    say(&mut claude, "Then, the word tangerine");
    e2e.wait_for_request("Then, the word tangerine");
    let during = holds("Then, the word tangerine");
    let _ = claude.kill();
    let _ = claude.wait();

    let mut resumed = spawn_claude(cli, &e2e, &["--resume", SESSION]);
    say(&mut resumed, "Which words?");
    e2e.wait_for_request("Which words?");
    let _ = resumed.kill();
    let _ = resumed.wait();
    let request = e2e
        .turns()
        .into_iter()
        .rev()
        .find(|r| last_user_text(r).as_deref() == Some("Which words?"))
        .unwrap();
    let carried = request.body.contains("tangerine");
    assert!(
        request.body.contains("alpha"),
        "the answered prompt is kept"
    );
    assert_eq!(
        request.body.contains("mango"),
        streaming == Some(true),
        "the transcript said {streaming:?} while the answer streamed"
    );
    assert_eq!(
        carried,
        during == Some(true),
        "the transcript said {during:?} while the request was out; the resumed conversation carried it: {carried}"
    );
}

fn spawn_claude(cli: &'static Cli, e2e: &E2e, session: &[&str]) -> std::process::Child {
    std::process::Command::new(real_claude(cli).unwrap())
        .args([
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
        ])
        .args(session)
        .current_dir(&e2e.repo)
        .env_clear()
        .envs(e2e.vars.iter().map(|(k, v)| (k, v)))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn say(claude: &mut std::process::Child, prompt: &str) {
    let line = json!({"type":"user","message":{"role":"user","content":prompt}});
    writeln!(claude.stdin.as_mut().unwrap(), "{line}").unwrap();
}

fn wait_for(check: &mut dyn FnMut() -> bool) {
    crate::support::wait_until("the transcript to hold the prompt", PATIENCE, check);
}

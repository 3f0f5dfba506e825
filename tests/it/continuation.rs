//! One rule for a turn that was cut off, whatever its kind (issue 27, cases 2, 3 and
//! 11): on resume it is continued if and only if claude's conversation holds its prompt
//! (what `--resume` gives claude back), else it is sent as itself — claude hears every
//! prompt once, never twice, never not at all. The real CLI writes a prompt into the
//! conversation once the model's answer begins (tests/it/e2e/transcript.rs measures
//! it), and the fake claude does the same.

use crate::support::{Env, count_holding};

const CONTINUE: &str = "Your last step was cut off";

/// Case 2: the daemon dies before claude answered the plan prompt; the loop run on
/// plans the task, instead of telling claude to continue a turn it never had.
#[test]
fn a_plan_cut_off_before_claude_answered_it_is_sent_again_not_continued() {
    let env = Env::worker();
    env.script(&[
        "kill_daemon",
        "reply 1. write a.txt",
        "write a.txt; commit add a.txt",
    ]);
    let run = env.leash(&["--json", "loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.last_json()["exit_code"], 0, "{run:?}");
    let answered = env.answered_prompts();
    assert_eq!(
        count_holding(&answered, "Add a.txt"),
        1,
        "the conversation holds the task once: {answered:#?}"
    );
    assert_eq!(count_holding(&answered, CONTINUE), 0, "{answered:#?}");
    let prompts = env.prompts_received();
    assert!(
        prompts[1].contains("Add a.txt") && !prompts[1].contains(CONTINUE),
        "the plan prompt went again, as itself: {prompts:#?}"
    );
    let status = env.worker_status();
    assert_eq!(status["plan"], "1. write a.txt", "{status}");
    assert_eq!(status["phase"], "done", "{status}");
}

/// The same rule the other way: a turn the model had begun to answer is continued.
#[test]
fn an_implement_turn_cut_off_mid_answer_is_continued_not_sent_again() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "stream 1 10; kill_daemon",
        "write a.txt; commit add a.txt",
    ]);
    let run = env.leash(&["loop", "--task", "Add a.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let answered = env.answered_prompts();
    assert_eq!(count_holding(&answered, "Implement"), 1, "{answered:#?}");
    assert_eq!(count_holding(&answered, CONTINUE), 1, "{answered:#?}");
}

/// The same words sent for an earlier task are not this turn's: a second task's
/// implementation prompt repeats the first's word for word, and when the daemon dies
/// before claude answered it, it is sent again, not continued (the chaos night caught
/// a task implemented by "continue" alone).
#[test]
fn a_second_tasks_implement_prompt_cut_off_unanswered_is_sent_again() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write a.txt",
        "write a.txt; commit add a.txt",
        "reply 1. write b.txt",
        "kill_daemon",
        "write b.txt; commit add b.txt",
    ]);
    for task in ["Add a.txt", "Add b.txt"] {
        let run = env.leash(&["loop", "--task", task]);
        assert_eq!(run.code(), 0, "{task}: {run:?}");
    }
    let answered = env.answered_prompts();
    assert_eq!(count_holding(&answered, "Implement"), 2, "{answered:#?}");
    assert_eq!(count_holding(&answered, CONTINUE), 0, "{answered:#?}");
}

/// Case 3: `session send --continue-on-crash`: the daemon dies after the turn started
/// but before claude answered; the prompt is what claude answers, not "continue".
#[test]
fn a_plain_turn_cut_off_before_claude_answered_it_is_sent_as_itself() {
    let env = Env::new();
    env.script(&["kill_daemon", "echo"]);
    let run = env.leash(&[
        "--json",
        "session",
        "send",
        "--continue-on-crash",
        "Remember the word tangerine",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let ended = run.last_json();
    assert_eq!(
        ended["outcome"]["result"], "echo: Remember the word tangerine",
        "{run:?}"
    );
    let answered = env.answered_prompts();
    assert_eq!(
        answered,
        ["Remember the word tangerine"],
        "once, as itself: {answered:#?}"
    );
    let started: Vec<bool> = env
        .events()
        .iter()
        .filter(|e| e["type"] == "turn_started")
        .map(|e| e["continuation"] == true)
        .collect();
    assert_eq!(started, [false, false], "no turn continued: {started:?}");
}

/// Case 11: a review cut off by its daemon's death is continued when the model had
/// begun it, not sent a second time; one cut off before is sent once more, as itself.
#[test]
fn a_review_cut_off_by_a_daemon_death_is_reviewed_once() {
    for (cut, continued) in [("stream 1 10; kill_daemon", 1), ("kill_daemon", 0)] {
        let env = Env::worker();
        env.script(&[
            "reply 1. write feature.txt",
            "write feature.txt v1; commit add the feature",
            cut,
            "reply Looks complete.\\nLEASH-APPROVED",
        ]);
        let run = env.leash(&["loop", "--review", "--task", "Add feature.txt"]);
        assert_eq!(run.code(), 0, "{cut}: {run:?}");
        let answered = env.answered_prompts();
        let reviews = answered
            .iter()
            .filter(|p| p.contains("LEASH-APPROVED") && !p.contains(CONTINUE))
            .count();
        assert_eq!(reviews, 1, "{cut}: the review prompt once: {answered:#?}");
        assert_eq!(
            count_holding(&answered, CONTINUE),
            continued,
            "{cut}: {answered:#?}"
        );
        assert_eq!(env.worker_status()["phase"], "done");
    }
}

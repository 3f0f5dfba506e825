//! Done means green: the worker's commit passes the project's checks and a review by
//! the plan model, and a worker out of nudges plans again, against the fake claude in
//! real temporary git repositories.

use crate::support::Env;
use serde_json::Value;

/// The check these tests use: it fails until feature.txt says "fixed", printing it.
const CHECK: &str = "cat feature.txt && grep -q fixed feature.txt";

fn prompts(env: &Env) -> Vec<String> {
    env.turns()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn events(env: &Env, kind: &str) -> Vec<Value> {
    env.events()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn a_commit_that_fails_its_check_is_nudged_with_the_output_and_done_after_the_fix() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write feature.txt\\n2. commit it",
        "write feature.txt broken; commit add the feature",
        "write feature.txt fixed; commit fix the feature",
    ]);
    let run = env.leash(&["loop", "--check", CHECK, "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(env.commits(), 3);
    assert!(
        run.stderr
            .contains(&format!("check `{CHECK}` failed (exit 1)")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("checks_failed") || run.stderr.contains("but the check"),
        "{run:?}"
    );
    let nudge = &prompts(&env)[2];
    assert!(
        nudge.contains(&format!(
            "The check `{CHECK}` failed (exit 1) at your commit"
        )),
        "{nudge}"
    );
    assert!(
        nudge.contains("```\nbroken\n```"),
        "its output, verbatim: {nudge}"
    );
    assert!(nudge.contains("leash nudge 1 of 5"), "it counts: {nudge}");
    let ran = events(&env, "checks_ran");
    assert_eq!(ran.len(), 2, "at each commit");
    assert_eq!(ran[0]["checks"][0]["exit_code"], 1);
    assert_eq!(ran[1]["checks"][0]["exit_code"], 0);
    let status = env.worker_status();
    assert_eq!(status["phase"], "done");
    assert_eq!(status["checks"][0]["command"], CHECK);
    assert_eq!(status["checks"][0]["output_tail"], "fixed");
    let human = env.ok(&["status"]);
    assert!(
        human
            .stdout
            .contains(&format!("checks      pass  `{CHECK}` passed in")),
        "{human:?}"
    );
}

#[test]
fn implement_exits_12_while_a_check_fails_and_the_bash_loop_finishes_the_job() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write feature.txt",
        "write feature.txt broken; commit add the feature",
        "write feature.txt fixed; commit fix the feature",
    ]);
    env.ok(&["plan", "--task", "Add feature.txt"]);
    let run = env.leash(&["implement", "--check", CHECK, "--json"]);
    assert_eq!(run.code(), 12, "{run:?}");
    let judged = run.last_json();
    assert_eq!(judged["judgement"]["verdict"], "checks_failed");
    assert_eq!(judged["judgement"]["checks"][0]["exit_code"], 1);
    assert_eq!(judged["judgement"]["checks"][0]["timed_out"], false);
    let run = env.bash(&format!(
        "until leash implement --check '{CHECK}'; do leash nudge --check '{CHECK}' || exit $?; done"
    ));
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(env.worker_status()["phase"], "done");
    assert_eq!(env.turns().len(), 3, "plan, implement, one nudge");
}

#[test]
fn a_check_that_hangs_is_killed_with_its_process_group_at_its_timeout() {
    let mut env = Env::worker();
    env.set("LEASH_CHECK_TIMEOUT", "500ms");
    env.script(&[
        "reply 1. write feature.txt",
        "write feature.txt fixed; commit add the feature",
    ]);
    let pid_file = env.dir.path().join("sleeper.pid");
    let hang = format!(
        "sleep 300 & echo $! > {}; echo waiting; wait",
        pid_file.display()
    );
    env.ok(&["plan", "--task", "Add feature.txt"]);
    let run = env.leash(&["implement", "--check", &hang, "--json"]);
    assert_eq!(run.code(), 12, "{run:?}");
    let check = &run.last_json()["judgement"]["checks"][0];
    assert_eq!(check["timed_out"], true, "{check}");
    assert!(check["exit_code"].is_null());
    let tail = check["output_tail"].as_str().unwrap();
    assert!(
        tail.starts_with("waiting\n[leash: stopped after 500 ms"),
        "{tail}"
    );
    let sleeper: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    env.wait_until("the check's child to be gone", || {
        !crate::support::alive(sleeper)
    });
    let human = env.ok(&["status"]);
    assert!(human.stdout.contains("FAIL  `"), "{human:?}");
    assert!(human.stdout.contains("` timed out in"), "{human:?}");
}

#[test]
fn a_review_that_asks_for_changes_reaches_the_implementer_and_a_second_approves() {
    let env = Env::worker();
    env.script(&[
        "reply 1. write feature.txt",
        "write feature.txt v1; commit add the feature",
        "reply The feature has no test.\\nLEASH-CHANGES: add feature_test.txt",
        "write feature_test.txt tested; commit add the test",
        "reply Looks complete.\\nLEASH-APPROVED",
    ]);
    let run = env.leash(&["loop", "--review", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let turns = env.turns();
    assert_eq!(turns.len(), 5, "plan, implement, review, nudge, review");
    for review in [&turns[2], &turns[4]] {
        assert_eq!(review["model"], "claude-opus-5-5", "the plan model reviews");
        assert_eq!(review["permission_mode"], "plan", "read-only");
        let prompt = review["prompt"].as_str().unwrap();
        assert!(prompt.contains("<diff>"), "{prompt}");
        assert!(prompt.contains("Add feature.txt"), "the task: {prompt}");
    }
    assert!(
        turns[4]["prompt"]
            .as_str()
            .unwrap()
            .contains("feature_test.txt"),
        "the second review sees the new change"
    );
    let nudge = turns[3]["prompt"].as_str().unwrap();
    assert_eq!(turns[3]["model"], "claude-sonnet-5-5");
    assert!(
        nudge.contains("The feature has no test.\nLEASH-CHANGES: add feature_test.txt"),
        "the review, verbatim: {nudge}"
    );
    let reviews = events(&env, "reviewed");
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["review"]["approved"], false);
    assert_eq!(reviews[1]["review"]["approved"], true);
    let status = env.worker_status();
    assert_eq!(status["phase"], "done");
    assert_eq!(status["review"]["approved"], true);
    assert!(
        env.ok(&["status"])
            .stdout
            .contains("review      review 2: approved")
    );
    let cost = &status["cost"];
    assert!(cost["review_usd"].as_f64().unwrap() > 0.0, "{cost}");
}

#[test]
fn max_reviews_bounds_the_rounds() {
    let mut env = Env::worker();
    env.set("LEASH_MAX_REVIEWS", "1");
    env.script(&[
        "reply 1. write feature.txt",
        "write feature.txt v1; commit add the feature",
        "reply LEASH-CHANGES: rename it",
        "write feature.txt v2; commit rename it",
        "reply LEASH-APPROVED (never asked)",
    ]);
    let run = env.leash(&["loop", "--review", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(env.turns().len(), 4, "one review round only");
    assert!(
        run.stderr
            .contains("accepted without approval after 1 review round(s)"),
        "{run:?}"
    );
}

#[test]
fn a_rescope_after_the_cap_brings_a_new_plan_that_the_next_implement_turn_carries() {
    let env = Env::worker();
    env.script(&[
        "reply 1. plan A",
        "reply reading the code",
        "reply still reading",
        "reply Plan A read too much.\\n1. plan B: write feature.txt and commit",
        "write feature.txt; commit add the feature",
    ]);
    let run = env.leash(&[
        "loop",
        "--max-nudges",
        "1",
        "--rescopes",
        "1",
        "--task",
        "Add feature.txt",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let turns = env.turns();
    assert_eq!(turns.len(), 5, "plan, implement, nudge, rescope, implement");
    let rescope = &turns[3];
    assert_eq!(rescope["model"], "claude-opus-5-5");
    assert_eq!(rescope["permission_mode"], "plan");
    let prompt = rescope["prompt"].as_str().unwrap();
    assert!(prompt.contains("1. plan A"), "the old plan: {prompt}");
    assert!(
        prompt.contains("still not committed after 1 nudge(s)"),
        "{prompt}"
    );
    let implement = &turns[4];
    assert_eq!(implement["model"], "claude-sonnet-5-5");
    assert!(
        implement["prompt"]
            .as_str()
            .unwrap()
            .contains("Implement the plan you made above"),
        "{implement}"
    );
    assert_eq!(
        implement["history"], 4,
        "the new plan is in the conversation it implements in"
    );
    let status = env.worker_status();
    assert_eq!(status["phase"], "done");
    assert_eq!(status["rescopes"], 1);
    assert_eq!(status["earlier_plans"][0], "1. plan A");
    assert!(status["plan"].as_str().unwrap().contains("plan B"));
    assert_eq!(events(&env, "rescoped").len(), 1);
    assert!(run.stderr.contains("rescope 1 of 1"), "{run:?}");
}

#[test]
fn without_rescopes_the_nudge_cap_ends_the_loop_with_10_as_before() {
    let env = Env::worker();
    env.script(&["reply 1. plan A", "reply reading", "reply still reading"]);
    let run = env.leash(&["loop", "--max-nudges", "1", "--task", "Add feature.txt"]);
    assert_eq!(run.code(), 10, "{run:?}");
    assert_eq!(env.turns().len(), 3);
    assert!(events(&env, "rescoped").is_empty());
}

//! A landing step in a worker's own daemon (issue 29, the worker's side), driven over the
//! real socket as `leash land` drives it: a branch handed back with a conflict or a
//! failing landing check gets landing turns until it lands on the target, or its branch
//! and worktree back exactly as they were; the landed work taken in.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use leash::protocol::{PROTOCOL_VERSION, Request, WorkerRequest, to_line};
use leash::settings::Settings;
use leash::worker::land::{LandOrder, LandTrouble};
use leash::worker::{WorkerConfig, WorkerStep};
use serde_json::Value;

use crate::support::{Env, count_holding, git};

const LANDING: &str = "`leash land` is landing your work";
const CONTINUE: &str = "Your last step was cut off";

/// What `leash land` found: the target's tip, and subjects since the branch began.
pub(crate) fn resolve(env: &Env, trouble: LandTrouble) -> LandOrder {
    let target_tip = git(&env.repo, &["rev-parse", "main"]);
    let landed_since = git(
        &env.repo,
        &["log", "--reverse", "--format=%s", "leash/w..main"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    LandOrder::Resolve {
        target: "main".into(),
        target_tip,
        trouble,
        landed_since,
    }
}

/// One landing order to worker w's daemon, as `leash land` sends it; every line the
/// daemon answered, up to the step's judgement (or its death).
pub(crate) fn land(env: &Env, order: LandOrder, max_nudges: u32) -> Vec<Value> {
    land_with(env, order, |config| config.nudges.max_nudges = max_nudges)
}

/// [`land`] with the worker's configuration as `tweak` makes it.
fn land_with(env: &Env, order: LandOrder, tweak: impl FnOnce(&mut WorkerConfig)) -> Vec<Value> {
    let mut config = Settings::defaults().worker_config();
    config.gates.branch = Some("leash/w".into());
    config.nudges.nudge_backoff_ms = 10;
    config.nudges.nudge_backoff_max_ms = 20;
    tweak(&mut config);
    let socket = env.runtime.join("w.sock");
    let stream = UnixStream::connect(&socket).unwrap_or_else(|e| panic!("{socket:?}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream).lines();
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
    };
    writer.write_all(to_line(&hello).as_bytes()).unwrap();
    let greeting = lines.next().unwrap().unwrap();
    assert!(greeting.contains("\"hello\""), "{greeting}");
    let request = Request::Worker(WorkerRequest {
        step: WorkerStep::Land { order },
        config,
        wait: true,
        interactive: false,
        claude: None,
        task_id: None,
    });
    writer.write_all(to_line(&request).as_bytes()).unwrap();
    let mut answered = Vec::new();
    for line in lines {
        let Ok(line) = line else { break };
        let value: Value = serde_json::from_str(&line).unwrap();
        let last = matches!(value["type"].as_str(), Some("judged" | "error"));
        answered.push(value);
        if last {
            break;
        }
    }
    answered
}

pub(crate) fn judged(lines: &[Value]) -> &Value {
    let last = lines.last().unwrap_or_else(|| panic!("no answer"));
    assert_eq!(last["type"], "judged", "{lines:#?}");
    &last["judgement"]
}

fn tree(env: &Env) -> PathBuf {
    env.repo.join(".leash/worktrees/w")
}

/// Worker w's task, done on its branch by its loop (`implement` after a plan's
/// reply); the script's `landing` lines are the turns after.
fn done(env: &Env, implement: &str, checks: &[&str], landing: &[&str]) {
    let mut lines = vec!["reply 1. do it", implement];
    lines.extend(landing);
    env.script(&lines);
    let mut args = vec!["--worker", "w", "loop", "--worktree", "--task", "Do it"];
    for check in checks {
        args.extend(["--check", check]);
    }
    env.ok(&args);
}

/// A person's commit on main, in the main work tree.
fn person_commits(env: &Env, file: &str, text: &str) {
    std::fs::write(env.repo.join(file), text).unwrap();
    git(&env.repo, &["add", file]);
    git(
        &env.repo,
        &["commit", "-q", "-m", &format!("person: {file}")],
    );
}

fn worker_json(env: &Env) -> Value {
    let text = std::fs::read_to_string(env.state.join("w/worker.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every file of the worktree (`.git` pointer included) with a hash of its bytes.
fn listing(dir: &Path) -> BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&path).unwrap().hash(&mut hasher);
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            out.insert(name, hasher.finish());
        }
    }
    out
}

fn landing_prompts(env: &Env) -> Vec<String> {
    env.prompts_received()
        .into_iter()
        .filter(|p| p.contains(LANDING))
        .collect()
}

const MINE: &str = "sh echo mine >> shared.txt; commit w: mine";
const CONFLICT: fn() -> LandTrouble = || LandTrouble::Conflict {
    files: vec!["shared.txt".into()],
};
/// A landing turn that rebases, resolves the conflict keeping both lines, and commits.
const RESOLVES: &str = "sh git rebase main >/dev/null 2>&1 || printf 'base\\ntheirs\\nmine\\n' > shared.txt && git add shared.txt && GIT_EDITOR=true git rebase --continue; cost 0.5";

fn conflicting(env: &Env, landing: &[&str]) -> String {
    person_commits(env, "shared.txt", "base\n");
    done(env, MINE, &[], landing);
    std::fs::write(env.repo.join("shared.txt"), "base\ntheirs\n").unwrap();
    git(&env.repo, &["commit", "-q", "-am", "person: theirs"]);
    git(&tree(env), &["rev-parse", "leash/w"])
}

#[test]
fn a_conflict_resolved_by_the_worker_lands_on_the_target() {
    let env = Env::worker();
    let before = conflicting(&env, &[RESOLVES]);
    let order = resolve(&env, CONFLICT());
    let lines = land(&env, order, 3);
    let j = judged(&lines);
    assert_eq!(j["verdict"], "landable", "{lines:#?}");
    assert_eq!(j["exit_code"], 0);
    let prompts = landing_prompts(&env);
    assert_eq!(prompts.len(), 1, "{prompts:#?}");
    assert!(
        prompts[0].contains("shared.txt") && prompts[0].contains("person: theirs"),
        "{}",
        prompts[0]
    );
    let t = tree(&env);
    git(&t, &["merge-base", "--is-ancestor", "main", "leash/w"]);
    assert_eq!(
        std::fs::read_to_string(t.join("shared.txt")).unwrap(),
        "base\ntheirs\nmine\n"
    );
    assert_eq!(git(&t, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&t, &["rev-parse", "refs/leash/pre-land/w"]),
        before,
        "the old tip is kept until it lands"
    );
    let state = worker_json(&env);
    assert_eq!(state["cost"]["land_usd"], 0.5, "{state}");
    assert_eq!(state["phase"], "done");
    assert_eq!(
        state["last"]["verdict"], "committed",
        "the task's verdict stays"
    );

    // land stacks it again, a fast-forward now, and moves main to it.
    let tip = git(&t, &["rev-parse", "leash/w"]);
    git(&env.repo, &["merge", "-q", "--ff-only", "leash/w"]);
    let lines = land(
        &env,
        LandOrder::Adopt {
            target: "main".into(),
            landed: tip.clone(),
            branch_tip: tip.clone(),
            expected_tip: tip.clone(),
        },
        3,
    );
    let j = judged(&lines);
    assert_eq!(j["verdict"], "landed", "{lines:#?}");
    assert!(
        j["message"].as_str().unwrap().contains("1 commit(s)"),
        "{j}"
    );
    let state = worker_json(&env);
    assert_eq!(state["own_commits"], serde_json::json!([tip]), "{state}");
    assert_eq!(state["landed"], tip.as_str());
    let kept = std::process::Command::new("git")
        .args(["rev-parse", "-q", "--verify", "refs/leash/pre-land/w"])
        .current_dir(&t)
        .output()
        .unwrap();
    assert!(
        !kept.status.success(),
        "the pre-land ref is dropped once it landed"
    );
}

#[test]
fn a_worker_that_never_resolves_gets_its_branch_and_worktree_back_as_they_were() {
    let env = Env::worker();
    let gives_up = "sh git rebase main >/dev/null 2>&1 || echo junk > junk.txt; reply I could not";
    let before = conflicting(
        &env,
        &[gives_up, "sh echo more >> junk.txt; reply still no"],
    );
    let files = listing(&tree(&env));
    let lines = land(&env, resolve(&env, CONFLICT()), 2);
    let j = judged(&lines);
    assert_eq!(j["verdict"], "not_landed", "{lines:#?}");
    assert_eq!(j["exit_code"], 16);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("after 2 landing turn(s)"),
        "{j}"
    );
    assert_eq!(landing_prompts(&env).len(), 2);
    let t = tree(&env);
    assert_eq!(git(&t, &["rev-parse", "leash/w"]), before);
    assert_eq!(listing(&t), files, "byte for byte as before");
    let leftovers = git(&t, &["rev-parse", "refs/leash/land-leftovers/w"]);
    assert_eq!(
        git(&t, &["show", &format!("{leftovers}:junk.txt")]),
        "junk\nmore"
    );
    let kept = std::process::Command::new("git")
        .args(["rev-parse", "-q", "--verify", "refs/leash/pre-land/w"])
        .current_dir(&t)
        .output()
        .unwrap();
    assert!(!kept.status.success(), "the pre-land ref is dropped");
}

#[test]
fn a_check_failing_only_after_the_rebase_is_handed_back_with_its_output() {
    let env = Env::worker();
    let check =
        "if test -e person.txt && ! test -e fix.txt; then echo 'fix.txt is missing'; exit 1; fi";
    let landing = [
        "sh git rebase main >/dev/null 2>&1; reply rebased",
        "write fix.txt ok; commit w: fix",
    ];
    done(&env, "write a.txt mine; commit w: a", &[check], &landing);
    person_commits(&env, "person.txt", "p\n");
    let trouble = LandTrouble::ChecksFailed { checks: Vec::new() };
    let lines = land(&env, resolve(&env, trouble), 3);
    let j = judged(&lines);
    assert_eq!(j["verdict"], "landable", "{lines:#?}");
    let prompts = landing_prompts(&env);
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[1].contains("fix.txt is missing"), "{}", prompts[1]);
    let ran: Vec<&Value> = lines.iter().filter(|l| l["type"] == "checks_ran").collect();
    assert_eq!(
        ran.len(),
        2,
        "the landing checks ran after each turn: {lines:#?}"
    );
}

#[test]
fn a_landing_turn_cut_off_by_a_dead_daemon_is_continued_not_sent_again() {
    let env = Env::worker();
    let cut = "sh git rebase main >/dev/null 2>&1; stream 1 10; kill_daemon";
    conflicting(&env, &[cut, RESOLVES]);
    let order = resolve(&env, CONFLICT());
    let cut = land(&env, order.clone(), 3);
    assert!(
        !cut.iter().any(|l| l["type"] == "judged"),
        "the daemon died first: {cut:#?}"
    );
    env.wait_until("the daemon to be gone", || {
        env.leash(&["--worker", "w", "session", "status", "--json"])
            .code()
            != 0
    });
    env.ok(&["--worker", "w", "session", "start"]);
    let lines = land(&env, order, 3);
    assert_eq!(judged(&lines)["verdict"], "landable", "{lines:#?}");
    let answered = env.answered_prompts();
    assert_eq!(count_holding(&answered, LANDING), 1, "{answered:#?}");
    assert_eq!(count_holding(&answered, CONTINUE), 1, "{answered:#?}");
    git(
        &tree(&env),
        &["merge-base", "--is-ancestor", "main", "leash/w"],
    );
}

#[test]
fn the_landed_work_is_taken_in_and_the_task_is_over() {
    let env = Env::worker();
    done(&env, "write a.txt mine; commit w: a", &[], &[]);
    person_commits(&env, "b.txt", "b\n");
    let t = tree(&env);
    let tip = git(&t, &["rev-parse", "leash/w"]);
    // What land does: the branch's commits on the target, the target moved to them.
    git(&env.repo, &["cherry-pick", "--allow-empty", &tip]);
    let landed = git(&env.repo, &["rev-parse", "main"]);
    let adopt = |expected: &str| LandOrder::Adopt {
        target: "main".into(),
        landed: landed.clone(),
        branch_tip: landed.clone(),
        expected_tip: expected.into(),
    };
    let moved = land(&env, adopt("0123456789012345678901234567890123456789"), 3);
    let j = judged(&moved);
    assert_eq!(j["verdict"], "not_landed", "{moved:#?}");
    assert!(j["message"].as_str().unwrap().contains("moved"), "{j}");
    assert_eq!(git(&t, &["rev-parse", "leash/w"]), tip, "untouched");

    let lines = land(&env, adopt(&tip), 3);
    let j = judged(&lines);
    assert_eq!(j["verdict"], "landed", "{lines:#?}");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(git(&t, &["rev-parse", "HEAD"]), landed);
    assert_eq!(git(&t, &["status", "--porcelain"]), "");
    assert!(t.join("b.txt").exists(), "the worktree follows the branch");
    let events = env.events();
    let landed_event = events
        .iter()
        .find(|e| e["type"] == "landed")
        .unwrap_or_else(|| panic!("no landed event: {events:#?}"));
    assert_eq!(landed_event["commit"], landed.as_str());
    assert_eq!(landed_event["target"], "main");
    let state = worker_json(&env);
    assert_eq!(state["landed"], landed.as_str(), "{state}");
    assert_eq!(state["own_commits"][0], landed.as_str(), "{state}");

    for step in [["--worker", "w", "nudge"], ["--worker", "w", "implement"]] {
        let run = env.leash(&step);
        assert_eq!(run.code(), 0, "{run:?}");
        assert!(run.stderr.contains("nothing to do"), "{run:?}");
    }
    let rm = env.leash(&["session", "rm", "w"]);
    assert_eq!(rm.code(), 0, "{rm:?}");
    assert!(!t.exists(), "the worktree is removed");
    let branches = git(&env.repo, &["branch", "--list", "leash/w"]);
    assert_eq!(branches, "", "the branch is deleted as merged: {rm:?}");
}

/// Worker w's session reports a running turn.
fn wait_busy(env: &Env) {
    env.wait_until("worker w to be busy", || {
        let run = env.leash(&["--worker", "w", "session", "status", "--json"]);
        run.code() == 0 && run.last_json()["state"] == "busy"
    });
}

#[test]
fn a_landing_is_refused_while_another_turn_runs() {
    let env = Env::worker();
    conflicting(&env, &["sleep 3000; reply done"]);
    let turn = env.spawn(&["--worker", "w", "session", "send", "a question"]);
    wait_busy(&env);
    let lines = land(&env, resolve(&env, CONFLICT()), 3);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "error", "{lines:#?}");
    assert_eq!(last["kind"], "busy", "{lines:#?}");
    let turn = crate::support::finish(turn, Duration::from_secs(30));
    assert_eq!(turn.code(), 0, "{turn:?}");
    assert!(landing_prompts(&env).is_empty());
}

#[test]
fn a_hook_s_nudge_during_a_landing_is_dropped_with_a_notice() {
    let env = Env::worker();
    let slow = "sleep 1500; sh git rebase main >/dev/null 2>&1 || printf 'base\\ntheirs\\nmine\\n' > shared.txt && git add shared.txt && GIT_EDITOR=true git rebase --continue";
    conflicting(&env, &[slow]);
    let order = resolve(&env, CONFLICT());
    let landing = std::thread::scope(|scope| {
        let landing = scope.spawn(|| land(&env, order, 3));
        wait_busy(&env);
        let hook = env.leash(&[
            "--worker",
            "w",
            "nudge",
            "--event",
            "post-commit",
            "--no-wait",
        ]);
        assert_eq!(hook.code(), 0, "{hook:?}");
        landing.join().unwrap()
    });
    assert_eq!(judged(&landing)["verdict"], "landable", "{landing:#?}");
    assert_eq!(env.said("a git hook's nudge meanwhile is dropped"), 1);
    let nudges = env
        .events()
        .into_iter()
        .filter(|e| e["type"] == "judged" && e["judgement"]["step"] == "nudge")
        .collect::<Vec<_>>();
    assert_eq!(nudges.len(), 1, "{nudges:#?}");
    assert_eq!(nudges[0]["judgement"]["verdict"], "nothing_to_do");
    let kinds: Vec<Value> = env
        .events()
        .into_iter()
        .filter(|e| e["type"] == "turn_started")
        .map(|e| e["kind"].clone())
        .collect();
    assert!(!kinds.contains(&Value::from("nudge")), "{kinds:?}");
}

#[test]
fn a_landing_turn_whose_claude_crashed_goes_on_in_a_new_one() {
    let env = Env::worker();
    conflicting(
        &env,
        &[
            "sh git rebase main >/dev/null 2>&1; stream 1 10; crash",
            RESOLVES,
        ],
    );
    let lines = land(&env, resolve(&env, CONFLICT()), 3);
    assert_eq!(judged(&lines)["verdict"], "landable", "{lines:#?}");
    let answered = env.answered_prompts();
    assert_eq!(count_holding(&answered, LANDING), 1, "{answered:#?}");
    assert_eq!(count_holding(&answered, CONTINUE), 1, "{answered:#?}");
    assert_eq!(env.spawns().len(), 2, "claude started again once");
}

#[test]
fn a_spent_budget_sends_no_further_landing_turn_and_gives_the_branch_back() {
    let env = Env::worker();
    let costly = "sh git rebase main >/dev/null 2>&1 || echo junk > junk.txt; cost 0.5";
    let before = conflicting(&env, &[costly, RESOLVES]);
    let files = listing(&tree(&env));
    let lines = land_with(&env, resolve(&env, CONFLICT()), |config| {
        config.task_budget_usd = Some(0.4);
    });
    let j = judged(&lines);
    assert_eq!(j["verdict"], "budget_exhausted", "{lines:#?}");
    assert_eq!(j["exit_code"], 13);
    assert_eq!(landing_prompts(&env).len(), 1, "no second landing turn");
    assert_eq!(git(&tree(&env), &["rev-parse", "leash/w"]), before);
    assert_eq!(listing(&tree(&env)), files);
}

#[test]
fn a_landing_interrupted_mid_turn_is_given_up_by_land_and_nothing_is_lost() {
    let env = Env::worker();
    let slow = "sh git rebase main >/dev/null 2>&1 || echo junk > junk.txt; sleep 20000";
    let before = conflicting(&env, &[slow]);
    let files = listing(&tree(&env));
    let order = resolve(&env, CONFLICT());
    let cut = std::thread::scope(|scope| {
        let landing = scope.spawn(|| land(&env, order, 3));
        wait_busy(&env);
        env.ok(&["--worker", "w", "session", "interrupt"]);
        landing.join().unwrap()
    });
    assert_eq!(judged(&cut)["verdict"], "interrupted", "{cut:#?}");
    let lines = land(&env, LandOrder::Restore, 3);
    let j = judged(&lines);
    assert_eq!(j["verdict"], "not_landed", "{lines:#?}");
    let t = tree(&env);
    assert_eq!(git(&t, &["rev-parse", "leash/w"]), before);
    assert_eq!(listing(&t), files, "byte for byte as before");
    let leftovers = git(&t, &["rev-parse", "refs/leash/land-leftovers/w"]);
    assert_eq!(git(&t, &["show", &format!("{leftovers}:junk.txt")]), "junk");
}

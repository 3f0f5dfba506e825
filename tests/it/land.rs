//! `leash land` with real daemons, real git and the fake claude: worktree workers whose
//! tasks are done land on main through the merge queue.

use std::path::{Path, PathBuf};

use crate::support::{Env, finish, git};

/// A worker's task: the file it writes (with this text), and its check.
struct Work<'a> {
    worker: &'a str,
    file: &'a str,
    check: &'a str,
}

/// A fleet whose workers each did their task in their own worktree, one after the
/// other (so they ended in this order).
fn night(works: &[Work]) -> Env {
    let mut env = Env::worker();
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for work in works {
        let script = format!(
            "reply 1. write {file}\n write {file} from-{w}; commit {w} adds {file}\n",
            file = work.file,
            w = work.worker
        );
        let path = env.dir.path().join(format!("script-{}.txt", work.worker));
        std::fs::write(path, script.replace("\n ", "\n")).unwrap();
        let task = format!("Add {}", work.file);
        env.ok(&[
            "--worker",
            work.worker,
            "loop",
            "--worktree",
            "--check",
            work.check,
            "--task",
            &task,
        ]);
    }
    env
}

fn worktree(env: &Env, worker: &str) -> PathBuf {
    env.repo.join(".leash/worktrees").join(worker)
}

fn on_main(env: &Env, file: &str) -> bool {
    std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("main:{file}")])
        .current_dir(&env.repo)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn landings(run: &crate::support::Run) -> Vec<serde_json::Value> {
    run.json_lines()
        .into_iter()
        .filter(|l| l["type"] == "landing")
        .collect()
}

fn leftovers(repo: &Path) -> (Vec<String>, String) {
    let dir = repo.join(".leash/land");
    let dirs = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (dirs, git(repo, &["for-each-ref", "refs/leash/land/"]))
}

const THREE: [Work; 3] = [
    Work {
        worker: "w1",
        file: "one.txt",
        check: "test -f one.txt && git rev-parse HEAD >> ../../../../checked.log",
    },
    Work {
        worker: "w2",
        file: "two.txt",
        check: "test -f two.txt && git rev-parse HEAD >> ../../../../checked.log",
    },
    Work {
        worker: "w3",
        file: "three.txt",
        check: "test -f three.txt && git rev-parse HEAD >> ../../../../checked.log",
    },
];

#[test]
fn three_done_branches_land_on_main_with_a_persons_commit_and_its_work_tree_follows() {
    let env = night(&THREE);
    std::fs::write(env.repo.join("person.txt"), "by hand\n").unwrap();
    env.git(&["add", "person.txt"]);
    env.git(&["commit", "-q", "-m", "a person's commit"]);

    let run = env.leash(&["land", "--all", "--json", "--parallel", "3"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = landings(&run);
    assert_eq!(lines.len(), 3, "{run:?}");
    let tip = git(&env.repo, &["rev-parse", "main"]);
    for (line, work) in lines.iter().zip(&THREE) {
        assert_eq!(line["worker"], work.worker, "oldest first: {line}");
        assert_eq!(line["outcome"], "landed", "{line}");
        assert_eq!(line["branch"], format!("leash/{}", work.worker));
        assert_eq!(line["target"], "main");
        assert_eq!(line["commits"], 1, "{line}");
        assert_eq!(line["target_tip"], tip.as_str(), "one move for the stack");
    }
    assert_eq!(run.last_json()["type"], "ok", "{run:?}");
    for file in ["one.txt", "two.txt", "three.txt", "person.txt"] {
        assert!(on_main(&env, file), "{file} on main");
        assert!(env.repo.join(file).exists(), "main's work tree has {file}");
    }
    assert_eq!(
        git(&env.repo, &["log", "--format=%s", "-n", "4", "main"]),
        "w3 adds three.txt\nw2 adds two.txt\nw1 adds one.txt\na person's commit"
    );
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    assert_eq!(leftovers(&env.repo), (Vec::new(), String::new()));
    // Each worker took its rebased branch in, and knows where its task landed.
    for work in &THREE {
        let branch = format!("leash/{}", work.worker);
        git(&env.repo, &["merge-base", "--is-ancestor", &branch, "main"]);
        let status = env
            .ok(&["--worker", work.worker, "status", "--json"])
            .last_json();
        assert_eq!(status["landed"], tip.as_str(), "{status}");
    }
    // Each landing's checks passed on the tree it landed: the stacks main moved along.
    let checked = std::fs::read_to_string(env.dir.path().join("checked.log")).unwrap();
    for back in ["main~2", "main~1", "main"] {
        let commit = git(&env.repo, &["rev-parse", back]);
        assert!(checked.contains(&commit), "{back} was checked: {checked}");
    }
    // No hook of land's fired a nudge: no worker turned since.
    let second = env.leash(&["land", "--all"]);
    assert_eq!(second.code(), 0, "{second:?}");
    assert!(second.stderr.contains("nothing to land"), "{second:?}");
    assert_eq!(git(&env.repo, &["rev-parse", "main"]), tip);
}

#[test]
fn a_failing_branch_in_the_middle_of_a_stack_drops_out_and_the_rest_land_without_it() {
    // w2's check fails once w1's file is under it: only on the stack.
    let works = [
        Work {
            worker: "w1",
            file: "one.txt",
            check: "test -f one.txt",
        },
        Work {
            worker: "w2",
            file: "two.txt",
            check: "test -f two.txt && test ! -f one.txt",
        },
        Work {
            worker: "w3",
            file: "three.txt",
            check: "test -f three.txt",
        },
    ];
    let env = night(&works);
    let before = git(&env.repo, &["rev-parse", "leash/w2"]);
    let run = env.leash(&["land", "--all", "--json", "--parallel", "3"]);
    assert_eq!(run.code(), 16, "{run:?}");
    let lines = landings(&run);
    let outcome = |worker: &str| {
        lines
            .iter()
            .find(|l| l["worker"] == worker)
            .map(|l| l["outcome"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(outcome("w1").as_deref(), Some("landed"), "{run:?}");
    assert_eq!(outcome("w3").as_deref(), Some("landed"), "{run:?}");
    assert_eq!(outcome("w2").as_deref(), Some("checks_failed"), "{run:?}");
    assert!(on_main(&env, "one.txt") && on_main(&env, "three.txt"));
    assert!(!on_main(&env, "two.txt"));
    assert_eq!(git(&env.repo, &["rev-parse", "leash/w2"]), before);
    let error = run.last_json();
    assert_eq!(error["exit_code"], 16, "{error}");
    assert!(error["message"].as_str().unwrap().contains("w2"), "{error}");
}

#[test]
fn a_dirty_main_work_tree_stops_land_before_main_moves() {
    let env = night(&THREE[..1]);
    std::fs::write(env.repo.join("README.md"), "a person's edit\n").unwrap();
    let tip = git(&env.repo, &["rev-parse", "main"]);
    let run = env.leash(&["land", "--all"]);
    assert_eq!(run.code(), 16, "{run:?}");
    assert!(run.stderr.contains("uncommitted changes"), "{run:?}");
    assert_eq!(git(&env.repo, &["rev-parse", "main"]), tip);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("README.md")).unwrap(),
        "a person's edit\n"
    );
    assert_eq!(leftovers(&env.repo), (Vec::new(), String::new()));
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let env = night(&[]);
    for (args, says) in [
        (&["land", "w1", "--all"][..], "cannot be used with"),
        (&["land"][..], "no worker to land"),
        (&["land", "--all", "--onto", "nope"][..], "no branch nope"),
    ] {
        let run = env.leash(args);
        assert_eq!(run.code(), 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {run:?}");
    }
    let head = git(&env.repo, &["rev-parse", "HEAD"]);
    env.git(&["checkout", "-q", "--detach", &head]);
    let run = env.leash(&["land", "--all"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("--onto"), "{run:?}");
    let bare = env.dir.path().join("bare.git");
    git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &env.repo.display().to_string(),
            "bare.git",
        ],
    );
    let run = env.leash_in(&bare, &["land", "--all"]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("bare repository"), "{run:?}");
}

#[test]
fn named_workers_that_cannot_land_are_skipped_with_why_and_count() {
    let env = night(&THREE[..2]);
    std::fs::write(worktree(&env, "w2").join("loose.txt"), "not committed\n").unwrap();
    let run = env.leash(&["land", "--all", "--json"]);
    assert_eq!(run.code(), 0, "--all skips do not count: {run:?}");
    let skipped: Vec<_> = landings(&run)
        .into_iter()
        .filter(|l| l["outcome"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{run:?}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("uncommitted changes"),
        "{run:?}"
    );
    let run = env.leash(&["land", "w2", "nobody"]);
    assert_eq!(run.code(), 16, "a named skip counts: {run:?}");
    assert!(run.stderr.contains("not a worktree worker"), "{run:?}");
}

/// One worker done, whose landing check holds on while the file `slow` exists (and
/// only where land checks, not in the worker's own worktree).
fn slowly_checked_worker() -> (Env, PathBuf) {
    // Relative to a stack's worktree, `<repo>/.leash/land/sN`: the test's own dir.
    let check = "test -f one.txt && case \"$PWD\" in *.leash/land/*) while test -f ../../../../slow; do sleep 0.05; done;; esac";
    let env = night(&[Work {
        worker: "w1",
        file: "one.txt",
        check,
    }]);
    let slow = env.dir.path().join("slow");
    std::fs::write(&slow, "").unwrap();
    (env, slow)
}

fn checking(env: &Env) -> bool {
    leftovers(&env.repo)
        .0
        .iter()
        .any(|d| d.ends_with(".check.pid"))
}

/// Whether process `pid` waits for a file lock.
fn waits_for_a_lock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("->") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
}

#[test]
fn two_lands_at_once_wait_for_each_other_or_exit_14() {
    let (env, slow) = slowly_checked_worker();
    let first = env.spawn(&["land", "--all"]);
    env.wait_until("the first land to check", || checking(&env));
    let busy = env.leash(&["land", "--all", "--no-wait"]);
    assert_eq!(busy.code(), 14, "{busy:?}");
    assert!(busy.stderr.contains("another `leash land`"), "{busy:?}");
    let second = env.spawn(&["land", "--all"]);
    env.wait_until("the second land to wait", || waits_for_a_lock(second.id()));
    std::fs::remove_file(&slow).unwrap();
    let first = finish(first, std::time::Duration::from_secs(60));
    assert_eq!(first.code(), 0, "{first:?}");
    let second = finish(second, std::time::Duration::from_secs(60));
    assert_eq!(second.code(), 0, "{second:?}");
    assert!(second.stderr.contains("waiting for another"), "{second:?}");
    assert!(second.stderr.contains("nothing to land"), "{second:?}");
    assert!(on_main(&env, "one.txt"));
}

#[test]
fn a_land_killed_mid_way_is_set_right_by_the_next() {
    let (env, slow) = slowly_checked_worker();
    let branch = git(&env.repo, &["rev-parse", "leash/w1"]);
    let mut first = env.spawn(&["land", "--all"]);
    env.wait_until("land to check", || checking(&env));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!leftovers(&env.repo).1.is_empty(), "it left its stack");
    assert_eq!(git(&env.repo, &["rev-parse", "leash/w1"]), branch);
    std::fs::remove_file(&slow).unwrap();
    let again = env.leash(&["land", "--all"]);
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(on_main(&env, "one.txt"));
    assert_eq!(leftovers(&env.repo), (Vec::new(), String::new()));
    assert_eq!(
        git(&env.repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
}

/// A night of three workers, two tasks each, every task adding its own file and a line
/// at the same place of `shared.txt` (so the second and third landings conflict); the
/// `landing` lines of each worker's script answer its landing turns.
fn conflicting_night(landing: &[(&str, Vec<String>)]) -> Env {
    let mut env = Env::worker();
    env.set("LEASH_MAX_NUDGES", "2");
    std::fs::write(env.repo.join("shared.txt"), "top\nbottom\n").unwrap();
    env.git(&["add", "shared.txt"]);
    env.git(&["commit", "-q", "-m", "a shared file"]);
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    for worker in ["w1", "w2", "w3"] {
        let mut lines = Vec::new();
        for task in 1..=2 {
            lines.push("reply 1. add it".to_string());
            lines.push(format!(
                "write {worker}-t{task}.txt {worker}; sh sed -i '1a {worker}-t{task}' shared.txt; commit {worker} task {task}"
            ));
        }
        if let Some((_, answers)) = landing.iter().find(|(w, _)| *w == worker) {
            lines.extend(answers.iter().cloned());
        }
        let path = env.dir.path().join(format!("script-{worker}.txt"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
        for task in 1..=2 {
            let check = format!(
                "test -f {worker}-t{task}.txt && ! grep -q '<<<<<<<' shared.txt && git rev-parse HEAD >> ../../../../checked.log"
            );
            let text = format!("Task {task} of {worker}");
            env.ok(&[
                "--worker",
                worker,
                "loop",
                "--worktree",
                "--check",
                &check,
                "--task",
                &text,
            ]);
        }
    }
    std::fs::write(env.repo.join("person.txt"), "by hand\n").unwrap();
    env.git(&["add", "person.txt"]);
    env.git(&["commit", "-q", "-m", "a person's commit"]);
    env
}

/// A landing turn that merges main into the branch and keeps every line: main's shared
/// file with the worker's own two lines where it put them.
fn resolves(worker: &str) -> String {
    format!(
        "sh git merge -q main >/dev/null 2>&1 || git show main:shared.txt > shared.txt && sed -i '1a {worker}-t1' shared.txt && sed -i '1a {worker}-t2' shared.txt && git add shared.txt && git commit -q --no-edit; reply merged"
    )
}

/// Every file of a worktree (the `.git` pointer too) with its bytes.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn conflicting_branches_go_back_to_their_workers_and_every_task_lands() {
    let env = conflicting_night(&[
        ("w2", vec![resolves("w2"), resolves("w2")]),
        ("w3", vec![resolves("w3"), resolves("w3"), resolves("w3")]),
    ]);
    let run = env.leash(&["land", "--all", "--json", "--parallel", "3"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = landings(&run);
    assert_eq!(lines.len(), 3, "{run:?}");
    assert!(lines.iter().all(|l| l["outcome"] == "landed"), "{run:?}");
    let shared = std::fs::read_to_string(env.repo.join("shared.txt")).unwrap();
    for worker in ["w1", "w2", "w3"] {
        for task in 1..=2 {
            let line = format!("{worker}-t{task}");
            assert_eq!(shared.matches(&line).count(), 1, "{line} once: {shared}");
            assert!(on_main(&env, &format!("{line}.txt")), "{line}.txt on main");
        }
        let status = env
            .ok(&["--worker", worker, "status", "--json"])
            .last_json();
        assert!(status["landed"].is_string(), "{worker} landed: {status}");
        git(
            &env.repo,
            &[
                "merge-base",
                "--is-ancestor",
                &format!("leash/{worker}"),
                "main",
            ],
        );
    }
    assert!(
        !shared.contains("<<<<<<<") && !shared.contains(">>>>>>>"),
        "{shared}"
    );
    assert!(
        shared.starts_with("top\n") && shared.ends_with("bottom\n"),
        "{shared}"
    );
    assert!(on_main(&env, "person.txt"));
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
    let checked = std::fs::read_to_string(env.dir.path().join("checked.log")).unwrap();
    for line in &lines {
        let tip = line["target_tip"].as_str().unwrap();
        assert!(checked.contains(tip), "{tip} was checked before it landed");
    }
    assert_eq!(leftovers(&env.repo), (Vec::new(), String::new()));
    let again = env.leash(&["land", "--all"]);
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(again.stderr.contains("nothing to land"), "{again:?}");
}

#[test]
fn a_worker_that_never_resolves_is_named_and_keeps_its_branch_and_worktree() {
    let never = "sh git merge -q main >/dev/null 2>&1 || echo junk > junk.txt; reply I could not";
    let env = conflicting_night(&[
        ("w2", vec![resolves("w2"), resolves("w2")]),
        (
            "w3",
            vec![never.to_string(), never.to_string(), never.to_string()],
        ),
    ]);
    let branch = git(&env.repo, &["rev-parse", "leash/w3"]);
    let files = listing(&worktree(&env, "w3"));
    let run = env.leash(&["land", "--all", "--json"]);
    assert_eq!(run.code(), 16, "{run:?}");
    let lines = landings(&run);
    let of = |worker: &str| {
        lines
            .iter()
            .find(|l| l["worker"] == worker)
            .unwrap()
            .clone()
    };
    assert_eq!(of("w1")["outcome"], "landed", "{run:?}");
    assert_eq!(of("w2")["outcome"], "landed", "{run:?}");
    assert_eq!(of("w3")["outcome"], "conflict", "{run:?}");
    assert!(run.last_json()["message"].as_str().unwrap().contains("w3"));
    assert_eq!(git(&env.repo, &["rev-parse", "leash/w3"]), branch);
    assert_eq!(
        listing(&worktree(&env, "w3")),
        files,
        "byte for byte as before"
    );
    assert!(!on_main(&env, "w3-t1.txt"));
}

#[test]
fn a_check_failing_only_after_the_rebase_is_handed_back_fixed_and_landed() {
    let mut env = night(&THREE[..1]);
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    std::fs::write(
        env.dir.path().join("script-w2.txt"),
        "reply 1. add two\nwrite two.txt two; commit w2 adds two.txt\n\
         sh git merge -q main >/dev/null 2>&1 && echo fixed > fixed.txt && git add fixed.txt && git commit -qm 'w2 fixes it'; reply fixed\n",
    )
    .unwrap();
    // Green alone; red once one.txt is under it, until fixed.txt says it copes.
    let check = "test -f two.txt && { test ! -f one.txt || test -f fixed.txt; }";
    env.ok(&[
        "--worker",
        "w2",
        "loop",
        "--worktree",
        "--check",
        check,
        "--task",
        "Add two",
    ]);
    let run = env.leash(&["land", "--all", "--json"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = landings(&run);
    assert!(lines.iter().all(|l| l["outcome"] == "landed"), "{run:?}");
    for file in ["one.txt", "two.txt", "fixed.txt"] {
        assert!(on_main(&env, file), "{file}");
    }
    let prompts = env.prompts_received();
    assert!(
        prompts.iter().any(|p| p.contains("test -f two.txt")),
        "the failing check went back to the worker: {prompts:#?}"
    );
}

#[test]
fn a_worker_daemon_killed_during_its_landing_turn_is_followed_through_a_new_one() {
    // The landing turn resolves and commits, then its daemon is killed before the turn
    // ends: a new daemon continues the turn (claude told to go on), and land follows it.
    let cut = format!(
        "{}; stream 1 10; kill_daemon",
        resolves("w2").trim_end_matches("; reply merged")
    );
    let finish = "reply done, merged";
    let env = conflicting_night(&[
        // Whoever lands second conflicts again, and resolves again.
        (
            "w2",
            vec![cut, finish.to_string(), resolves("w2"), resolves("w2")],
        ),
        ("w3", vec![resolves("w3"), resolves("w3"), resolves("w3")]),
    ]);
    let run = env.leash(&["land", "--all", "--json"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        landings(&run).iter().all(|l| l["outcome"] == "landed"),
        "{run:?}"
    );
    assert_eq!(env.said("died without stopping"), 1, "{:#?}", env.events());
    let shared = std::fs::read_to_string(env.repo.join("shared.txt")).unwrap();
    assert_eq!(shared.matches("w2-t").count(), 2, "{shared}");
}

#[test]
fn ctrl_c_interrupts_the_hand_backs_and_gives_their_branches_back() {
    let slow = "sleep 30000; reply too late".to_string();
    let env = conflicting_night(&[("w2", vec![slow.clone()]), ("w3", vec![slow])]);
    let before: Vec<String> = ["leash/w2", "leash/w3"]
        .iter()
        .map(|b| git(&env.repo, &["rev-parse", b]))
        .collect();
    let land = env.spawn(&["land", "--all"]);
    env.wait_until("a landing turn", || {
        env.events()
            .iter()
            .any(|e| e["type"] == "turn_started" && e["kind"] == "land")
    });
    crate::support::signal(land.id(), libc::SIGINT);
    let run = finish(land, std::time::Duration::from_secs(60));
    assert_eq!(run.code(), 130, "{run:?}");
    assert!(on_main(&env, "w1-t1.txt"), "what landed stays landed");
    let after: Vec<String> = ["leash/w2", "leash/w3"]
        .iter()
        .map(|b| git(&env.repo, &["rev-parse", b]))
        .collect();
    assert_eq!(after, before, "{run:?}");
    assert_eq!(
        git(&env.repo, &["for-each-ref", "refs/leash/pre-land/"]),
        ""
    );
    assert_eq!(leftovers(&env.repo), (Vec::new(), String::new()));
}

#[test]
fn a_land_killed_during_a_hand_back_follows_the_step_when_run_again() {
    let slow = format!("sleep 1500; {}", resolves("w2"));
    let env = conflicting_night(&[
        ("w2", vec![slow, resolves("w2"), resolves("w2")]),
        ("w3", vec![resolves("w3"), resolves("w3"), resolves("w3")]),
    ]);
    let mut land = env.spawn(&["land", "--all"]);
    env.wait_until("w2's landing turn", || {
        env.events().iter().any(|e| {
            e["type"] == "turn_started"
                && e["kind"] == "land"
                && e["prompt"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("leash/w2")
        })
    });
    land.kill().unwrap();
    land.wait().unwrap();
    // Its daemon goes on with the step; the next land waits for it, and lands it.
    let run = env.leash(&["land", "--all", "--json"]);
    assert_eq!(run.code(), 0, "{run:?}");
    for worker in ["w1", "w2", "w3"] {
        for task in 1..=2 {
            assert!(on_main(&env, &format!("{worker}-t{task}.txt")), "{run:?}");
        }
    }
    assert_eq!(git(&env.repo, &["for-each-ref", "refs/leash/"]), "");
    assert_eq!(git(&env.repo, &["status", "--porcelain"]), "");
}

#[test]
fn a_move_whose_land_was_killed_before_its_workers_were_told_is_finished_by_the_next() {
    let env = night(&THREE[..1]);
    let from = git(&env.repo, &["rev-parse", "main"]);
    let to = git(&env.repo, &["rev-parse", "leash/w1"]);
    // As a land killed right after its move left it: main moved, its journal there.
    env.git(&["merge", "-q", "--ff-only", "leash/w1"]);
    let journal = serde_json::json!({
        "target": "main",
        "from": from,
        "to": to,
        "adopts": [["w1", {
            "order": "adopt",
            "target": "main",
            "landed": to,
            "branch_tip": to,
            "expected_tip": to,
        }]],
    });
    std::fs::create_dir_all(env.repo.join(".leash/land")).unwrap();
    std::fs::write(
        env.repo.join(".leash/land/journal.json"),
        journal.to_string(),
    )
    .unwrap();
    let run = env.leash(&["land", "--all"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("cut off"), "{run:?}");
    assert!(run.stderr.contains("nothing to land"), "{run:?}");
    let status = env.ok(&["--worker", "w1", "status", "--json"]).last_json();
    assert_eq!(status["landed"], to.as_str(), "{status}");
    assert!(!env.repo.join(".leash/land/journal.json").exists());
}

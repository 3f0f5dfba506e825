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

#[test]
fn two_lands_at_once_wait_for_each_other_or_exit_14() {
    let mut env = night(&[]);
    let slow = env.dir.path().join("slow");
    std::fs::write(&slow, "").unwrap();
    // The landing check is slow while `slow` exists, and only where land checks.
    let check = format!(
        "test -f one.txt && case \"$PWD\" in *.leash/land/*) while test -f {}; do sleep 0.05; done;; esac",
        slow.display()
    );
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    std::fs::write(
        env.dir.path().join("script-w1.txt"),
        "reply 1. write one.txt\nwrite one.txt one; commit w1 adds one.txt\n",
    )
    .unwrap();
    env.ok(&[
        "--worker",
        "w1",
        "loop",
        "--worktree",
        "--check",
        &check,
        "--task",
        "Add one",
    ]);
    let first = env.spawn(&["land", "--all"]);
    env.wait_until("the first land to check", || {
        leftovers(&env.repo)
            .0
            .iter()
            .any(|d| d.ends_with(".check.pid"))
    });
    let busy = env.leash(&["land", "--all", "--no-wait"]);
    assert_eq!(busy.code(), 14, "{busy:?}");
    assert!(busy.stderr.contains("another `leash land`"), "{busy:?}");
    let second = env.spawn(&["land", "--all"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(&slow).unwrap();
    let first = finish(first, std::time::Duration::from_secs(60));
    assert_eq!(first.code(), 0, "{first:?}");
    let second = finish(second, std::time::Duration::from_secs(60));
    assert_eq!(second.code(), 0, "{second:?}");
    assert!(second.stderr.contains("waiting for another"), "{second:?}");
    assert!(on_main(&env, "one.txt"));
}

#[test]
fn a_land_killed_mid_way_is_set_right_by_the_next() {
    let mut env = night(&[]);
    let slow = env.dir.path().join("slow");
    std::fs::write(&slow, "").unwrap();
    let check = format!(
        "test -f one.txt && case \"$PWD\" in *.leash/land/*) while test -f {}; do sleep 0.05; done;; esac",
        slow.display()
    );
    let scripts = env.dir.path().join("script-%w.txt");
    env.set("FAKE_CLAUDE_SCRIPT", &scripts.display().to_string());
    std::fs::write(
        env.dir.path().join("script-w1.txt"),
        "reply 1. write one.txt\nwrite one.txt one; commit w1 adds one.txt\n",
    )
    .unwrap();
    env.ok(&[
        "--worker",
        "w1",
        "loop",
        "--worktree",
        "--check",
        &check,
        "--task",
        "Add one",
    ]);
    let branch = git(&env.repo, &["rev-parse", "leash/w1"]);
    let mut first = env.spawn(&["land", "--all"]);
    env.wait_until("land to check", || {
        leftovers(&env.repo)
            .0
            .iter()
            .any(|d| d.ends_with(".check.pid"))
    });
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

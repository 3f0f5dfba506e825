//! What an adversarial user found, case by case (issue 20): each test fails on the
//! leash before the fix.

use crate::support::Env;

/// Six sends at once to a worker with no daemon: whoever wins the start, every turn is
/// answered and every prompt reaches claude.
#[test]
fn concurrent_sends_to_a_cold_worker_are_all_answered() {
    let env = Env::worker();
    for round in 0..4 {
        let run = env.bash(
            "pids=''; for i in 0 1 2 3 4 5; do leash session send \"race $round-$i\" >/dev/null 2>err.$i & pids=\"$pids $!\"; done
             rc=0; for p in $pids; do wait $p || rc=$?; done
             cat err.*; exit $rc"
                .replace("$round", &round.to_string())
                .as_str(),
        );
        assert_eq!(run.code(), 0, "round {round}: {run:?}");
        let prompts: Vec<String> = env
            .turns()
            .iter()
            .filter_map(|t| t["prompt"].as_str().map(str::to_string))
            .collect();
        for i in 0..6 {
            let prompt = format!("race {round}-{i}");
            assert!(
                prompts.iter().any(|p| p.contains(&prompt)),
                "{prompt} never reached claude: {prompts:?}"
            );
        }
        env.ok(&["session", "stop"]);
    }
}

//! Best of N (`leash loop --attempts N`), pure: one plan, N attempts forked from it, the
//! green ones judged, the winner kept. [`AttemptSet`] is what is saved in the worker's
//! state dir (`attempts.json`) as the attempts go; [`AttemptSet::next`] decides, from it
//! alone, what the command does next, so a run cut off anywhere and run again goes on
//! where it was. The command carries out what it decides.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Phase;
use super::checks::CheckResult;
use crate::error::{Error, ErrorKind};
use crate::state_file::write_atomic;

/// The attempt set in its worker's state dir.
pub const ATTEMPTS_FILE: &str = "attempts.json";
/// How many attempts `--attempts` takes.
pub const MIN_ATTEMPTS: u32 = 2;
pub const MAX_ATTEMPTS: u32 = 8;
/// What the judge writes, alone on a line, before the number of the attempt it keeps.
pub const WINNER_MARKER: &str = "LEASH-WINNER:";
/// Where the losers' tips are kept once their branches go.
pub const ATTEMPTS_REFS: &str = "refs/leash/attempts";

/// The attempts of one task, as far as they got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSet {
    /// The task they attempt (planned once, in the worker's conversation).
    pub task_id: String,
    /// How many attempts (`--attempts`).
    pub attempts: u32,
    /// The commit the attempts branch from.
    #[serde(default)]
    pub base: Option<String>,
    /// What planning cost: every attempt's task cost begins with it.
    #[serde(default)]
    pub plan_usd: f64,
    /// The attempts that ended, in the order they did.
    #[serde(default)]
    pub ended: Vec<AttemptEnd>,
    /// The winner, once chosen.
    #[serde(default)]
    pub chosen: Option<Chosen>,
    /// The winner is the worker now (renamed, the losers settled).
    #[serde(default)]
    pub done: bool,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptEnd {
    pub k: u32,
    /// The code its loop ended with (0: green).
    pub exit_code: u8,
    pub phase: Phase,
    pub message: String,
    /// The checks of its last commit.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// What its own turns cost (the shared plan not included).
    pub cost_usd: f64,
    /// Lines added and removed since the branch point.
    pub changed_lines: u64,
    /// Its branch's tip when it ended.
    pub tip: Option<String>,
}

/// How the winner was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// It was the only green attempt: no judge turn.
    Alone,
    /// The plan model named it.
    Judge,
    /// The judge named none of the green attempts, twice: the one with the fewest
    /// changed lines (the lowest number on a tie).
    FewestLines,
}

/// The winner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    pub k: u32,
    pub by: ChosenBy,
    /// The judge's answer (or why it was not asked).
    pub reason: String,
}

/// What the judge answered: the attempt it named, if it named a green one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pick {
    /// The green attempt it named; `null` when it named none.
    pub k: Option<u32>,
    /// The answer, verbatim.
    pub reason: String,
}

/// A green attempt as the judge is shown it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub k: u32,
    /// `git diff --stat` against the branch point.
    pub stat: String,
    /// The diff, cut to its share of what one review shows.
    pub patch: String,
    pub truncated: bool,
    /// The checks it passed.
    pub checks: Vec<String>,
    pub cost_usd: f64,
    pub turns: u64,
}

/// What `loop --attempts` does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run these attempts (forking those that do not exist yet) until each ends.
    Run(Vec<u32>),
    /// Ask the plan model to choose among these green attempts.
    Judge(Vec<u32>),
    /// This one wins: rename it to the worker, settle the others.
    Keep(u32),
    /// Done: exit with this code (0: the worker is the winner).
    Finish(u8),
}

impl AttemptSet {
    pub fn new(task_id: String, attempts: u32) -> AttemptSet {
        AttemptSet {
            task_id,
            attempts,
            base: None,
            plan_usd: 0.0,
            ended: Vec::new(),
            chosen: None,
            done: false,
        }
    }

    /// What comes next, from what is saved.
    pub fn next(&self) -> Next {
        if self.done {
            return Next::Finish(0);
        }
        if let Some(chosen) = &self.chosen {
            return Next::Keep(chosen.k);
        }
        let pending: Vec<u32> = (1..=self.attempts)
            .filter(|k| self.ended_of(*k).is_none())
            .collect();
        if !pending.is_empty() {
            return Next::Run(pending);
        }
        let green = self.green();
        match green.as_slice() {
            [] => Next::Finish(self.no_winner_code()),
            [_] => Next::Keep(green[0]),
            _ => Next::Judge(green),
        }
    }

    /// The winner when there is no judge to ask: the only green attempt.
    pub fn alone(&self) -> Option<Chosen> {
        match self.green().as_slice() {
            [k] => Some(Chosen {
                k: *k,
                by: ChosenBy::Alone,
                reason: "the only attempt that passed".to_string(),
            }),
            _ => None,
        }
    }

    /// The winner after the judge answered (`None`: it could not be asked).
    pub fn after_judge(&self, pick: Option<&Pick>) -> Option<Chosen> {
        let green = self.green();
        if let Some(pick) = pick
            && let Some(k) = pick.k.filter(|k| green.contains(k))
        {
            return Some(Chosen {
                k,
                by: ChosenBy::Judge,
                reason: pick.reason.clone(),
            });
        }
        let fewest = self
            .ended
            .iter()
            .filter(|e| green.contains(&e.k))
            .min_by_key(|e| (e.changed_lines, e.k))?;
        Some(Chosen {
            k: fewest.k,
            by: ChosenBy::FewestLines,
            reason: format!(
                "the judge named no green attempt; attempt {} changed the fewest lines ({})",
                fewest.k, fewest.changed_lines
            ),
        })
    }

    /// The green attempts, by number.
    pub fn green(&self) -> Vec<u32> {
        let mut green: Vec<u32> = self
            .ended
            .iter()
            .filter(|e| e.exit_code == 0)
            .map(|e| e.k)
            .collect();
        green.sort_unstable();
        green
    }

    pub fn ended_of(&self, k: u32) -> Option<&AttemptEnd> {
        self.ended.iter().find(|e| e.k == k)
    }

    /// Records how an attempt ended (once: a second word on it is ignored).
    pub fn end(&mut self, end: AttemptEnd) {
        if self.ended_of(end.k).is_none() {
            self.ended.push(end);
        }
    }

    /// No attempt is green: the shared budget stopped them (13) when any stopped on
    /// it, else they did not get done (10).
    fn no_winner_code(&self) -> u8 {
        let budget = ErrorKind::BudgetExhausted.exit_code();
        match self.ended.iter().any(|e| e.exit_code == budget) {
            true => budget,
            false => ErrorKind::NotCommitted.exit_code(),
        }
    }

    /// What the attempts' own turns cost so far.
    pub fn cost_usd(&self) -> f64 {
        self.ended.iter().map(|e| e.cost_usd).sum()
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(ATTEMPTS_FILE)
    }

    /// The set saved in `state_dir`, if there is one.
    pub fn load(state_dir: &Path) -> Result<Option<AttemptSet>, Error> {
        let path = Self::path(state_dir);
        match crate::state_file::read(&path, crate::state_file::MAX_RECORD_BYTES) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::setup(format!("{} is damaged ({e})", path.display()))
                    .hint("move it away; `leash loop --attempts` then starts the attempts anew")
            }),
            Ok(None) => Ok(None),
            Err(e) => Err(crate::state_file::error(
                format!("cannot read {}", path.display()),
                e,
            )),
        }
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), Error> {
        let path = Self::path(state_dir);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode the attempt set: {e}")))?;
        write_atomic(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }
}

/// The attempt a judge's answer names: its last line with the marker counts; a number
/// that is no green attempt names none.
pub fn named_winner(answer: &str, green: &[u32]) -> Option<u32> {
    let line = answer
        .lines()
        .rev()
        .map(|line| line.trim().trim_matches(['*', '`', '>', ' ', '_']))
        .find_map(|line| line.strip_prefix(WINNER_MARKER))?;
    let number: String = line
        .trim()
        .trim_matches(['*', '`', '#'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    number.parse().ok().filter(|k| green.contains(k))
}

/// The name of attempt `k` of worker `name`.
pub fn attempt_name(name: &str, k: u32) -> String {
    format!("{name}-{k}")
}

/// The budget of one task of a shared `pool` (an attempt's, whose cost begins with the
/// plan's; the planner's, for the judge): the pool less what the others' own turns
/// spent (`others`, the plan not counted in them).
pub fn budget_of(pool: f64, others: &[f64]) -> f64 {
    pool - others.iter().sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(k: u32, exit_code: u8, changed_lines: u64) -> AttemptEnd {
        AttemptEnd {
            k,
            exit_code,
            phase: Phase::Done,
            message: String::new(),
            checks: Vec::new(),
            cost_usd: 0.5,
            changed_lines,
            tip: None,
        }
    }

    fn set(ended: Vec<AttemptEnd>) -> AttemptSet {
        AttemptSet {
            ended,
            ..AttemptSet::new("t".into(), 3)
        }
    }

    #[test]
    fn attempts_that_have_not_ended_run_first() {
        assert_eq!(set(vec![]).next(), Next::Run(vec![1, 2, 3]));
        assert_eq!(set(vec![end(2, 0, 1)]).next(), Next::Run(vec![1, 3]));
    }

    #[test]
    fn two_green_attempts_are_judged_one_wins_alone() {
        let two = set(vec![end(1, 10, 5), end(3, 0, 4), end(2, 0, 9)]);
        assert_eq!(two.next(), Next::Judge(vec![2, 3]));
        assert_eq!(two.alone(), None);
        let one = set(vec![end(1, 10, 5), end(2, 0, 9), end(3, 12, 1)]);
        assert_eq!(one.next(), Next::Keep(2));
        assert_eq!(one.alone().map(|c| (c.k, c.by)), Some((2, ChosenBy::Alone)));
    }

    #[test]
    fn no_green_attempt_exits_13_only_when_the_budget_stopped_one() {
        assert_eq!(
            set(vec![end(1, 10, 0), end(2, 11, 0), end(3, 12, 0)]).next(),
            Next::Finish(10)
        );
        assert_eq!(
            set(vec![end(1, 10, 0), end(2, 13, 0), end(3, 10, 0)]).next(),
            Next::Finish(13)
        );
    }

    #[test]
    fn a_chosen_winner_is_kept_and_a_done_set_finishes_at_once() {
        let mut chosen = set(vec![end(1, 0, 1), end(2, 0, 1), end(3, 0, 1)]);
        chosen.chosen = Some(Chosen {
            k: 3,
            by: ChosenBy::Judge,
            reason: String::new(),
        });
        assert_eq!(chosen.next(), Next::Keep(3));
        chosen.done = true;
        assert_eq!(chosen.next(), Next::Finish(0));
    }

    #[test]
    fn the_judge_must_name_a_green_attempt_else_the_fewest_lines_win() {
        let two = set(vec![end(1, 0, 30), end(2, 10, 1), end(3, 0, 7)]);
        let named = |k| Pick {
            k: Some(k),
            reason: "r".into(),
        };
        assert_eq!(two.after_judge(Some(&named(1))).unwrap().k, 1);
        let fallback = two.after_judge(Some(&named(2))).unwrap();
        assert_eq!((fallback.k, fallback.by), (3, ChosenBy::FewestLines));
        assert_eq!(two.after_judge(None).unwrap().k, 3);
        let tie = set(vec![end(3, 0, 7), end(1, 0, 7)]);
        assert_eq!(tie.after_judge(None).unwrap().k, 1, "lowest k on a tie");
    }

    #[test]
    fn the_last_winner_line_counts_and_must_be_green() {
        let green = [2, 3];
        assert_eq!(named_winner("Both pass.\nLEASH-WINNER: 3", &green), Some(3));
        assert_eq!(
            named_winner("LEASH-WINNER: 2\nno, rather\n**LEASH-WINNER: 3**", &green),
            Some(3)
        );
        assert_eq!(named_winner("LEASH-WINNER: 1", &green), None);
        assert_eq!(named_winner("I like 2", &green), None);
        assert_eq!(named_winner("LEASH-WINNER: two", &green), None);
    }

    #[test]
    fn a_later_word_on_an_ended_attempt_is_ignored() {
        let mut set = set(vec![end(1, 0, 1)]);
        set.end(end(1, 10, 1));
        assert_eq!(set.ended.len(), 1);
        assert_eq!(set.ended[0].exit_code, 0);
    }

    #[test]
    fn an_attempt_spends_what_the_others_left_of_the_pool() {
        assert!((budget_of(1.0, &[0.3, 0.1]) - 0.6).abs() < 1e-9);
        assert!(budget_of(1.0, &[0.6, 0.5]) < 0.0);
        assert_eq!(budget_of(1.0, &[]), 1.0);
    }
}

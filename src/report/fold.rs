//! A worker's event log, folded into one row per task. Pure: events go in, rows come
//! out. A step's events carry its id (`turn`), and `step_started` names the task the
//! step works on; a fault told outside any step (a daemon that died) belongs to the
//! task under way.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::exits::{self, LoopExit};
use super::landing;
use super::{MAX_MARKERS, MAX_SPANS, Marker, Span, SpanPhase, Standing, TaskRow};
use crate::framing::peek_type;
use crate::protocol::{Event, EventBody, Fault};
use crate::turn::TurnKind;
use crate::worker::prompts::CONTINUE_AFTER_RESTART;
use crate::worker::{Step, Verdict};

/// The event types the fold reads; the rest (claude's lines above all) are skipped
/// unparsed.
const READ: [&str; 11] = [
    "step_started",
    "loop_ended",
    "turn_started",
    "turn_ended",
    "judged",
    "checks_ran",
    "reviewed",
    "rescoped",
    "compacted",
    "notice",
    "landed",
];

/// Whether the fold needs this raw event line.
pub fn wanted(line: &str) -> bool {
    peek_type(line).is_some_and(|kind| READ.contains(&kind.as_ref()))
}

/// A turn of a step that has begun and not ended.
struct OpenTurn {
    kind: TurnKind,
    phase: SpanPhase,
    started: u64,
}

/// A task as the fold goes: its row, and what it needs to fill it in.
struct TaskSoFar {
    row: TaskRow,
    commits: BTreeSet<String>,
    /// The log saw the task planned here; without it (a fork's task, or a beginning
    /// rotated away) the task's own running cost would count spend this log never saw.
    planned_here: bool,
    /// How the task's latest loop ended, as its daemon was told.
    loop_exit: Option<LoopExit>,
}

#[derive(Default)]
pub struct Ledger {
    tasks: Vec<TaskSoFar>,
    by_id: HashMap<String, usize>,
    /// The task and step kind of each step id.
    steps: HashMap<u64, (usize, Step)>,
    /// The open turn of each task (one job runs at a time: a task has at most one).
    turns: HashMap<usize, OpenTurn>,
    /// The task that began last.
    latest: Option<usize>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Folds a raw event line in; a line that is not one the fold reads is skipped.
    pub fn line(&mut self, line: &str) {
        if !wanted(line) {
            return;
        }
        if let Ok(event) = serde_json::from_str::<Event<Value>>(line) {
            self.observe(&event);
        }
    }

    pub fn observe(&mut self, event: &Event<Value>) {
        let at = event.ts;
        if let EventBody::StepStarted {
            step,
            task_id: Some(id),
            task,
            host,
        } = &event.body
        {
            // A landing comes to a task that ended: it replaces none under way.
            let index = self.task(id, task.as_deref(), at, *step != Step::Land);
            if host.is_some() {
                self.tasks[index].row.host.clone_from(host);
            }
            if *step == Step::Plan {
                self.tasks[index].planned_here = true;
            }
            if let Some(step_id) = event.turn {
                self.steps.insert(step_id, (index, *step));
            }
            // A turn cut off (its daemon died) ended with the last word of it.
            self.cut_off(index);
            return;
        }
        if let EventBody::LoopEnded { task_id, exit_code } = &event.body {
            if let Some(index) = self.by_id.get(task_id) {
                self.tasks[*index].loop_exit = Some(LoopExit {
                    task_id: task_id.clone(),
                    exit_code: *exit_code,
                    at_ms: at,
                });
            }
            return;
        }
        if let EventBody::Landed {
            task_id,
            commit,
            target,
        } = &event.body
        {
            // By the task it names: the task's other events may be in an older log,
            // or only in the history.
            let index = self.task(task_id, None, at, false);
            landing::landed(&mut self.tasks[index].row, commit, target, at);
            return;
        }
        if let EventBody::Notice {
            fault: Some(Fault::DaemonRestart),
            ..
        } = &event.body
        {
            // The new daemon may hand out the dead one's step ids again.
            self.steps.clear();
        }
        let Some(index) = self.owner(event) else {
            return;
        };
        let step = event.turn.and_then(|id| self.steps.get(&id)).map(|s| s.1);
        // A landing, maybe the morning after, is drawn on its own: the task's time
        // is its work's.
        if about_the_work(&event.body) && step != Some(Step::Land) {
            self.tasks[index].row.reached(at);
        }
        match &event.body {
            EventBody::TurnStarted {
                kind,
                prompt,
                continuation,
            } => {
                // A plain `session send` is no part of a task.
                let Some(phase) = span_phase(*kind, step) else {
                    return;
                };
                self.cut_off(index);
                let row = &mut self.tasks[index].row;
                row.turns += 1;
                // Logs written before the event said so tell a continuation by its words.
                let continued = *continuation || prompt.starts_with(CONTINUE_AFTER_RESTART);
                if *kind == TurnKind::Nudge && !continued {
                    row.nudges += 1;
                    push_bounded(&mut row.nudged_ms, at, MAX_MARKERS);
                }
                let open = OpenTurn {
                    kind: *kind,
                    phase,
                    started: at,
                };
                self.turns.insert(index, open);
            }
            EventBody::TurnEnded { outcome } => {
                let Some(open) = self.turns.remove(&index) else {
                    return;
                };
                let tally = &mut self.tasks[index];
                close(tally, &open, at);
                let kind = match (open.kind, step) {
                    (TurnKind::Compact, Some(Step::Plan)) => TurnKind::Plan,
                    (TurnKind::Compact, Some(Step::Land)) => TurnKind::Land,
                    (kind, _) => kind,
                };
                let usd = outcome.cost_usd.unwrap_or(0.0);
                tally.row.cost.add(kind, usd);
                // No judgement of the work follows a landing to tell the task's cost.
                if kind == TurnKind::Land {
                    tally.row.cost_usd += usd;
                }
            }
            EventBody::ChecksRan { checks } => {
                let row = &mut self.tasks[index].row;
                let took: u64 = checks.iter().map(|c| c.duration_ms).sum();
                let failure = checks.iter().find(|c| !c.passed()).map(failure_of);
                push_span(row, SpanPhase::Checks, at.saturating_sub(took), at, failure);
                let passed = checks.iter().filter(|c| c.passed()).count() as u32;
                row.checks_passed += passed;
                row.checks_failed += checks.len() as u32 - passed;
            }
            EventBody::Reviewed { .. } => self.tasks[index].row.reviews += 1,
            EventBody::Rescoped { .. } => self.tasks[index].row.rescopes += 1,
            EventBody::Compacted { .. } => mark(&mut self.tasks[index].row, Fault::Compaction, at),
            EventBody::Notice {
                fault: Some(fault), ..
            } => mark(&mut self.tasks[index].row, *fault, at),
            EventBody::Judged { judgement } => {
                if let Some(id) = event.turn {
                    self.steps.remove(&id);
                }
                let tally = &mut self.tasks[index];
                if let Some(open) = self.turns.remove(&index) {
                    close(tally, &open, at);
                }
                if judgement.step == Step::Land {
                    landing::judged(&mut tally.row, judgement.verdict, &judgement.message, at);
                } else if judgement.verdict.concerns_the_work() {
                    judged(tally, judgement, at);
                }
            }
            _ => {}
        }
    }

    /// The steps begun and not yet judged, with the task each works on.
    pub fn open_steps(&self) -> Vec<(u64, String, Step)> {
        self.steps
            .iter()
            .map(|(id, (index, step))| (*id, self.tasks[*index].row.task_id.clone(), *step))
            .collect()
    }

    /// The row of a task, as far as the log told it.
    pub fn row(&self, task_id: &str) -> Option<TaskRow> {
        let index = *self.by_id.get(task_id)?;
        Some(self.tasks[index].row.clone())
    }

    /// How the task's latest loop ended, as the log told it.
    pub fn loop_exit(&self, task_id: &str) -> Option<&LoopExit> {
        let index = *self.by_id.get(task_id)?;
        self.tasks[index].loop_exit.as_ref()
    }

    /// Every task the log told of, in the order they began; a turn still open ends
    /// with the last word of its task.
    pub fn rows(mut self) -> Vec<TaskRow> {
        let open: Vec<usize> = self.turns.keys().copied().collect();
        for index in open {
            self.cut_off(index);
        }
        self.tasks
            .into_iter()
            .map(|mut t| {
                if let Some(exit) = t.loop_exit {
                    exits::apply(std::slice::from_ref(&exit), &mut t.row);
                }
                t.row
            })
            .collect()
    }

    /// The task's open turn, if any, closed at the task's last word.
    fn cut_off(&mut self, index: usize) {
        if let Some(open) = self.turns.remove(&index) {
            let tally = &mut self.tasks[index];
            let end = tally.row.last_ms.max(open.started);
            close(tally, &open, end);
        }
    }

    /// The task a step begins on: known, or new. A new task `replaces` one still under
    /// way (`plan --fresh`).
    fn task(&mut self, id: &str, text: Option<&str>, at: u64, replaces: bool) -> usize {
        if let Some(index) = self.by_id.get(id) {
            return *index;
        }
        if let Some(latest) = self.latest.filter(|_| replaces) {
            self.cut_off(latest);
            let old = &mut self.tasks[latest].row;
            if matches!(
                old.standing,
                Standing::Unfinished | Standing::Failed | Standing::Interrupted
            ) {
                // Its time ends with its last work, not when the next task began.
                old.standing = Standing::Replaced;
                old.exit_code = Some(Verdict::Replaced.exit_code());
            }
        }
        let index = self.tasks.len();
        self.tasks.push(TaskSoFar {
            row: new_row(id, text.unwrap_or_default(), at),
            commits: BTreeSet::new(),
            planned_here: false,
            loop_exit: None,
        });
        self.by_id.insert(id.to_string(), index);
        self.latest = Some(index);
        index
    }

    /// The task an event belongs to: its step's, or, for a fault told outside any
    /// step, the task under way.
    fn owner(&self, event: &Event<Value>) -> Option<usize> {
        if let Some(id) = event.turn {
            return self.steps.get(&id).map(|s| s.0);
        }
        match &event.body {
            EventBody::Notice { fault: Some(_), .. } => {
                self.latest.filter(|i| !self.tasks[*i].row.standing.ended())
            }
            _ => None,
        }
    }
}

/// A step's judgement about the work: the task's standing as the command reported it.
fn judged(tally: &mut TaskSoFar, judgement: &crate::worker::Judgement, at: u64) {
    let row = &mut tally.row;
    row.verdict = Some(judgement.verdict);
    row.standing = Standing::after(judgement.verdict);
    // A task that ended says what `leash loop` exits with for it; one under way, what
    // its last step's command did.
    row.exit_code = Some(match row.standing.ended() {
        true => judgement.verdict.exit_code(),
        false => judgement.exit_code,
    });
    row.message = Some(judgement.message.clone());
    row.phase = Some(judgement.phase);
    row.cost_usd = match tally.planned_here {
        true => judgement.task_cost_usd,
        false => row.cost.total_usd(),
    };
    if judgement.verdict == Verdict::BudgetExhausted {
        mark(row, Fault::Budget, at);
    }
    tally
        .commits
        .extend(judgement.commits.iter().map(|c| c.id.clone()));
    tally.row.commits = tally.commits.len() as u32;
    if let Some(newest) = judgement.commits.first() {
        tally.row.latest_commit = Some(newest.clone());
    }
}

/// Whether an event moves a task's time on: a refused step or a routine notice (a hook
/// nudging a done worker hours later) does not.
fn about_the_work(body: &EventBody<Value>) -> bool {
    match body {
        EventBody::Judged { judgement } => judgement.verdict.concerns_the_work(),
        EventBody::Notice { fault, .. } => fault.is_some(),
        _ => true,
    }
}

fn new_row(id: &str, task: &str, at: u64) -> TaskRow {
    TaskRow {
        worker: String::new(),
        branch: None,
        task_id: id.to_string(),
        task: task.to_string(),
        standing: Standing::Unfinished,
        verdict: None,
        exit_code: None,
        message: None,
        phase: None,
        started_ms: at,
        last_ms: at,
        commits: 0,
        latest_commit: None,
        checks_passed: 0,
        checks_failed: 0,
        reviews: 0,
        nudges: 0,
        rescopes: 0,
        cost_usd: 0.0,
        cost: Default::default(),
        turns: 0,
        duration_ms: 0,
        faults: Default::default(),
        spans: Vec::new(),
        markers: Vec::new(),
        nudged_ms: Vec::new(),
        repository: None,
        host: None,
        landed: None,
        landing: None,
        attempts: Vec::new(),
    }
}

/// Where a turn's time goes: its kind's phase; a compaction counts with its step's.
fn span_phase(kind: TurnKind, step: Option<Step>) -> Option<SpanPhase> {
    Some(match (kind, step) {
        (TurnKind::Plan, _) | (TurnKind::Compact, Some(Step::Plan)) => SpanPhase::Planning,
        (TurnKind::Land, _) | (TurnKind::Compact, Some(Step::Land)) => SpanPhase::Landing,
        (TurnKind::Implement | TurnKind::Nudge | TurnKind::Compact, _) => SpanPhase::Implementing,
        (TurnKind::Review | TurnKind::Judge, _) => SpanPhase::Review,
        (TurnKind::User, _) => return None,
    })
}

fn close(tally: &mut TaskSoFar, open: &OpenTurn, at: u64) {
    push_span(&mut tally.row, open.phase, open.started, at, None);
}

/// What a failed check's stretch says: the check, how it ended, and the first line of
/// its output that names a failure (else its first line).
fn failure_of(check: &crate::worker::checks::CheckResult) -> String {
    let lines = || {
        check
            .output_tail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
    };
    let telling = |line: &&str| {
        let lower = line.to_lowercase();
        ["error", "fail", "panicked", "assert"]
            .iter()
            .any(|word| lower.contains(word))
    };
    let first = lines().find(telling).or_else(|| lines().next());
    let mut text = format!("`{}` {}", check.command, check.outcome());
    if let Some(first) = first {
        text.push_str(": ");
        text.push_str(&super::one_line(first, 160));
    }
    text
}

fn push_span(
    row: &mut TaskRow,
    phase: SpanPhase,
    start_ms: u64,
    end_ms: u64,
    failure: Option<String>,
) {
    // Back to back in one phase, and alike: one stretch.
    if let Some(last) = row.spans.last_mut()
        && last.phase == phase
        && last.failure == failure
        && start_ms <= last.end_ms + 1
    {
        last.end_ms = last.end_ms.max(end_ms);
        return;
    }
    row.spans.push(Span {
        phase,
        start_ms,
        end_ms,
        failure,
    });
    if row.spans.len() > MAX_SPANS {
        row.spans.remove(0);
    }
}

/// Keeps the latest `max` of a list.
fn push_bounded(list: &mut Vec<u64>, at: u64, max: usize) {
    list.push(at);
    if list.len() > max {
        list.remove(0);
    }
}

fn mark(row: &mut TaskRow, fault: Fault, at_ms: u64) {
    row.faults.count(fault);
    row.markers.push(Marker { fault, at_ms });
    if row.markers.len() > MAX_MARKERS {
        row.markers.remove(0);
    }
}

#[cfg(test)]
mod tests;

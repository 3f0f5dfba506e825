//! What claude's turns cost. From 2.1.309 a `result` says what it cost on its own
//! (`model_usage_since_last_result`); every version says `total_cost_usd`, a running
//! total whose meaning changed (measured): up to 2.1.276 it counts from 0 in each
//! process, so a resumed claude starts over; from 2.1.277 a claude that exited cleanly
//! leaves its total in the transcript and the resumed one goes on from it (a killed one
//! leaves none). The meter takes the result's own cost where there is one, else the
//! difference to the previous total of the same process, and for a process's first
//! result, to the conversation's last known total when the new total is not below it
//! (carried over), else the whole total (counted from 0).

#[derive(Debug, Default)]
pub(super) struct CostMeter {
    /// The running total this process reported last; `None` before its first result.
    process_total: Option<f64>,
    /// Spent since the last [`CostMeter::take`].
    unclaimed: f64,
}

impl CostMeter {
    /// A new claude process: its first total is read against `carried`.
    pub fn process_started(&mut self) {
        self.process_total = None;
    }

    /// A result: its running total, its own cost if claude said it, and `carried`, the
    /// last total claude reported for this conversation (by this or an earlier
    /// process). Returns what this result cost.
    pub fn saw_result(
        &mut self,
        total: Option<f64>,
        own: Option<f64>,
        carried: Option<f64>,
    ) -> f64 {
        let from_total = total.map(|t| self.saw_total(t, carried)).unwrap_or(0.0);
        let cost = match own {
            Some(own) if own.is_finite() && own >= 0.0 => own,
            _ => from_total,
        };
        self.unclaimed += cost;
        cost
    }

    /// The difference a running total makes.
    fn saw_total(&mut self, total: f64, carried: Option<f64>) -> f64 {
        if !total.is_finite() || total < 0.0 {
            return 0.0;
        }
        let before = match self.process_total {
            Some(previous) => previous,
            None => carried.filter(|c| total >= *c).unwrap_or(0.0),
        };
        self.process_total = Some(total);
        (total - before).max(0.0)
    }

    /// What was spent since the last call, if anything was reported.
    pub fn take(&mut self) -> Option<f64> {
        let spent = std::mem::take(&mut self.unclaimed);
        (spent > 0.0).then_some(spent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl CostMeter {
        fn total(&mut self, total: f64, carried: Option<f64>) -> f64 {
            self.saw_result(Some(total), None, carried)
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_running_total_becomes_each_results_cost() {
        let mut meter = CostMeter::default();
        meter.process_started();
        assert!(close(meter.total(0.0246, None), 0.0246));
        assert!(close(meter.total(0.0492, Some(0.0246)), 0.0246));
        assert!(close(meter.total(0.0739, Some(0.0492)), 0.0247));
        assert!(close(meter.take().unwrap(), 0.0739));
        assert_eq!(meter.take(), None, "taken once");
    }

    #[test]
    fn a_total_carried_over_a_resume_counts_only_what_is_new() {
        // 2.1.332: three turns ended at 0.0739; the resumed process's first result
        // says 0.0986.
        let mut meter = CostMeter::default();
        meter.process_started();
        assert!(close(meter.total(0.0986, Some(0.0739)), 0.0247));
        assert!(close(meter.total(0.1234, Some(0.0986)), 0.0248));
    }

    #[test]
    fn a_total_that_starts_over_in_a_new_process_counts_whole() {
        // 2.1.110: three turns ended at 0.2315; the resumed process says 0.0773.
        let mut meter = CostMeter::default();
        meter.process_started();
        assert!(close(meter.total(0.0773, Some(0.2315)), 0.0773));
        assert!(close(meter.total(0.1547, Some(0.0773)), 0.0774));
    }

    #[test]
    fn a_results_own_cost_wins_over_the_running_total() {
        // 2.1.332 after a kill: the total starts over, the result still knows its cost.
        let mut meter = CostMeter::default();
        meter.process_started();
        assert!(close(
            meter.saw_result(Some(0.02), Some(0.02), Some(0.3)),
            0.02
        ));
        assert!(close(
            meter.saw_result(Some(0.05), Some(0.03), Some(0.02)),
            0.03
        ));
        assert!(close(meter.saw_result(None, None, None), 0.0));
        assert!(close(meter.take().unwrap(), 0.05));
    }

    #[test]
    fn nonsense_totals_cost_nothing() {
        let mut meter = CostMeter::default();
        assert_eq!(meter.total(f64::NAN, None), 0.0);
        assert_eq!(meter.total(-1.0, None), 0.0);
        assert!(close(meter.total(0.5, None), 0.5));
        assert_eq!(meter.total(0.4, Some(0.5)), 0.0, "never negative");
    }
}

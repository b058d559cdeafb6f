//! The scheduler's measured queue lag: how late a round started after it
//! was due *while the scheduler was running* (waiting for one of
//! `max_concurrent_rounds` slots). It widens the reach of the downtime
//! gap ending at that round ([`crate::delegation::Policy::reach_after`]),
//! so a backlog keeps the budget enforced. Time the scheduler was not
//! running at all — its loop did not turn for `STALL_GAP` (a frozen
//! process, a clock jump, a blocked loop) — is not queue lag: a gap that
//! spans it is the registry not looking, shown as unmeasured time.
//! Pure: times are the injected clock's milliseconds.

use std::collections::VecDeque;

/// A gap between two turns of the scheduler loop longer than this is a
/// stall (the loop turns at least every [`super::MAX_SLEEP`]).
pub const STALL_GAP_MS: i64 = 10_000;
/// Stalls remembered (a round due before the oldest kept one may be
/// credited more lag than it waited; with hourly rounds that takes 256
/// stalls within the hour).
const KEPT: usize = 256;

/// The loop's turns and the stalls between them.
#[derive(Debug, Default)]
pub struct Stalls {
    last_turn: Option<i64>,
    spans: VecDeque<(i64, i64)>,
}

impl Stalls {
    /// The loop turned at `now`.
    pub fn turn(&mut self, now: i64) {
        if let Some(last) = self.last_turn {
            if now - last > STALL_GAP_MS {
                self.spans.push_back((last, now));
                if self.spans.len() > KEPT {
                    self.spans.pop_front();
                }
            }
            if now <= last {
                return;
            }
        }
        self.last_turn = Some(now);
    }

    /// The queue lag of a round due at `due` and started at `start`: the
    /// time between them less the stalls within it.
    pub fn lag(&self, due: i64, start: i64) -> u64 {
        if start <= due {
            return 0;
        }
        let stalled: i64 = self
            .spans
            .iter()
            .map(|&(a, b)| (b.min(start) - a.max(due)).max(0))
            .sum();
        u64::try_from(start - due - stalled).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_loop_measures_the_whole_wait() {
        let mut s = Stalls::default();
        // The loop turns every second for ten minutes; a round due at
        // 1 s starts at 600 s.
        for t in 0..=600 {
            s.turn(t * 1000);
        }
        assert_eq!(s.lag(1000, 600_000), 599_000);
        assert_eq!(s.lag(600_000, 600_000), 0);
        assert_eq!(s.lag(700_000, 600_000), 0, "started before due");
    }

    #[test]
    fn a_stall_is_not_queue_lag() {
        let mut s = Stalls::default();
        s.turn(0);
        s.turn(1000);
        // Nothing turned for an hour (a jump, a frozen process).
        s.turn(3_601_000);
        s.turn(3_602_000);
        // Due before the stall: only the running parts count.
        assert_eq!(s.lag(500, 3_602_000), 500 + 1000);
        // Due inside it: only the time after it.
        assert_eq!(s.lag(60_000, 3_602_000), 1000);
        // A gap just under the threshold is the loop running.
        s.turn(3_602_000 + STALL_GAP_MS);
        assert_eq!(
            s.lag(3_602_000, 3_602_000 + STALL_GAP_MS),
            STALL_GAP_MS as u64
        );
    }

    #[test]
    fn a_clock_going_back_is_no_turn() {
        let mut s = Stalls::default();
        s.turn(100_000);
        s.turn(50_000);
        s.turn(105_000);
        assert_eq!(s.lag(100_000, 105_000), 5000);
    }
}

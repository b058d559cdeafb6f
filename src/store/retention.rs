//! Which probe rounds a store keeps (config `store.rounds_keep_last`,
//! `store.rounds_max_age`): every one of the last N rounds of a domain;
//! older ones only where something changed (verdict, findings, a server's
//! reachability), and those only until they are older than the maximum
//! age. At 1M domains probed hourly a steady domain then costs N rounds,
//! not a round per hour for ever.
//!
//! The decision is incremental, so an append costs two reads and at most
//! two deletes: rounds inside the window are never removed, so their
//! sequence numbers are contiguous, and the round that just left the
//! window is compared with the one stored before it (everything between
//! those two was, by induction, the same as the older one).

use crate::model::{RoundSummary, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rounds always kept per domain (the most recent ones).
    pub keep_last: usize,
    /// Older rounds that recorded a change are dropped after this.
    pub max_age: Option<chrono::Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: super::codec::ROUNDS_KEPT,
            max_age: Some(chrono::Duration::days(90)),
        }
    }
}

impl Retention {
    pub fn from_config(cfg: &crate::config::StoreConfig) -> Self {
        Self {
            keep_last: cfg.rounds_keep_last.max(1),
            max_age: cfg
                .rounds_max_age
                .and_then(|d| chrono::Duration::from_std(d).ok()),
        }
    }

    /// After appending round number `next`: the sequence number of the
    /// round that just left the window, if any.
    pub fn leaving(&self, next: u64) -> Option<u64> {
        next.checked_sub(self.keep_last as u64)
    }

    /// Whether `left` (just out of the window) is dropped, given the
    /// round stored before it (`None`: it is the first one kept).
    pub fn drop_leaving(&self, left: &RoundSummary, before: Option<&RoundSummary>) -> bool {
        before.is_some_and(|b| same(left, b))
    }

    /// Whether the oldest stored round, out of the window, is past the
    /// maximum age at `now`.
    pub fn expired(&self, oldest: &RoundSummary, now: Timestamp) -> bool {
        self.max_age.is_some_and(|age| oldest.at < now - age)
    }
}

/// Whether two rounds say the same: verdict, inconclusiveness, findings
/// (what and where) and which servers and addresses answered. Timings,
/// serials and messages' wording do not count.
pub fn same(a: &RoundSummary, b: &RoundSummary) -> bool {
    fn sig(r: &RoundSummary) -> (bool, bool, Vec<String>, Vec<String>) {
        let mut f: Vec<String> = r
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}|{:?}|{}|{}",
                    f.id,
                    f.severity,
                    f.server.as_deref().unwrap_or(""),
                    f.address.as_deref().unwrap_or("")
                )
            })
            .collect();
        f.sort();
        let mut s: Vec<String> = r
            .servers
            .iter()
            .map(|s| {
                let mut down = s.unreachable_addresses.clone();
                down.sort();
                format!("{}|{}|{}", s.name, s.reachable, down.join(","))
            })
            .collect();
        s.sort();
        (r.passed, r.inconclusive.is_some(), f, s)
    }
    sig(a) == sig(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn round(passed: bool, ms: u64) -> RoundSummary {
        RoundSummary {
            at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            passed,
            duration_ms: ms,
            findings: Vec::new(),
            servers: Vec::new(),
            inconclusive: None,
            queue_lag_ms: 0,
        }
    }

    #[test]
    fn timings_do_not_count_verdicts_do() {
        let r = Retention::default();
        assert!(r.drop_leaving(&round(true, 1), Some(&round(true, 9))));
        assert!(!r.drop_leaving(&round(false, 1), Some(&round(true, 1))));
        assert!(!r.drop_leaving(&round(true, 1), None));
        assert_eq!(r.leaving(r.keep_last as u64 - 1), None);
        assert_eq!(r.leaving(r.keep_last as u64), Some(0));
    }

    #[test]
    fn age_limit() {
        let r = Retention {
            keep_last: 3,
            max_age: Some(chrono::Duration::days(1)),
        };
        let old = round(true, 1);
        assert!(!r.expired(&old, old.at + chrono::Duration::hours(23)));
        assert!(r.expired(&old, old.at + chrono::Duration::hours(25)));
        let never = Retention { max_age: None, ..r };
        assert!(!never.expired(&old, old.at + chrono::Duration::days(999)));
    }
}

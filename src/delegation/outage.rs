//! Telling the registry's own outages from the registrants' (issue: a bad
//! hour on the registry's side must not be charged to every domain).
//!
//! Two signals, pure functions of what was observed and when:
//! - **canaries** (`probe.canaries`): addresses that must always answer.
//!   When none of them answered at the last look, the registry's network
//!   is down.
//! - without canaries, **the share of failing servers**: among the
//!   distinct servers probed in the last `probe.outage_window` that had
//!   answered at their previous probe, the share that failed now. At or
//!   above `probe.outage_threshold` (with at least [`MIN_SAMPLE`] servers
//!   in the sample) the failures are the registry's, not theirs: servers
//!   of unrelated registrants do not all fail in the same two minutes.
//!
//! A failing round during an outage is *inconclusive*: no downtime is
//! charged, no violation counted, no test-window time consumed. A round in
//! which every server passed is conclusive whatever the detector says.

use std::collections::HashMap;

use chrono::Duration;

use crate::model::{ServerDowntime, ServerReport, Timestamp};

/// Fewest previously answering servers in the window for the share to
/// mean anything (a single domain's two servers failing together is that
/// domain's outage).
pub const MIN_SAMPLE: usize = 4;

/// What the detector says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub since: Timestamp,
    pub reason: String,
}

#[derive(Debug)]
pub struct OutageDetector {
    threshold: f64,
    window: Duration,
    canaries: usize,
    /// Latest observation per server within the window: (ms, failed).
    seen: HashMap<String, (i64, bool)>,
    failed: usize,
    last_prune: i64,
    /// Canary mode: answered / asked at the last look, and when.
    canary: Option<(usize, Timestamp)>,
    current: Option<Outage>,
    /// Rounds judged inconclusive since start.
    pub inconclusive_rounds: u64,
}

impl OutageDetector {
    pub fn new(threshold: f64, window: Duration, canaries: usize) -> Self {
        Self {
            threshold,
            window,
            canaries,
            seen: HashMap::new(),
            failed: 0,
            last_prune: i64::MIN,
            canary: None,
            current: None,
            inconclusive_rounds: 0,
        }
    }

    pub fn from_config(c: &crate::config::ProbeConfig) -> Self {
        Self::new(
            c.outage_threshold,
            crate::config::Config::chrono(c.outage_window),
            c.canaries.len(),
        )
    }

    /// Feed one round: `before` is the record's downtime before it (which
    /// servers answered at their previous probe), `failing_since` the start
    /// of the domain's current run of failing rounds, `servers` what the
    /// round saw. Returns the outage state after it.
    ///
    /// A server is in the sample when it answered at its previous probe,
    /// or — while an outage is in force — when it has been failing only
    /// since about the outage began (its failures are the outage's).
    pub fn observe(
        &mut self,
        t: Timestamp,
        before: &[ServerDowntime],
        failing_since: Option<Timestamp>,
        servers: &[ServerReport],
    ) -> Option<Outage> {
        if self.canaries == 0 {
            let ms = t.timestamp_millis();
            let onset = self.current.as_ref().map(|o| o.since - self.window);
            let outage_failure = matches!((onset, failing_since), (Some(o), Some(f)) if f >= o);
            for s in servers {
                let prev = before
                    .iter()
                    .find(|d| {
                        d.address.is_none() && d.server.as_str() == s.name.trim_end_matches('.')
                    })
                    .and_then(|d| d.last_reachable);
                let counts = match prev {
                    Some(true) => true,
                    Some(false) => outage_failure,
                    None => false,
                };
                if !counts {
                    continue;
                }
                let failed = !s.reachable;
                if let Some((_, was)) = self.seen.insert(s.name.clone(), (ms, failed)) {
                    if was {
                        self.failed -= 1;
                    }
                }
                if failed {
                    self.failed += 1;
                }
            }
            self.prune(ms);
        }
        self.update(t)
    }

    /// Canary mode: `answered` of `asked` canaries answered at `t`.
    pub fn canaries_seen(&mut self, t: Timestamp, answered: usize, asked: usize) -> Option<Outage> {
        self.canary = Some((answered.min(asked), t));
        self.update(t)
    }

    fn prune(&mut self, now_ms: i64) {
        let w = self.window.num_milliseconds();
        // Amortised: a full pass at most four times per window.
        if now_ms.saturating_sub(self.last_prune) < w / 4 && self.seen.len() < 1_000_000 {
            return;
        }
        self.last_prune = now_ms;
        let cutoff = now_ms.saturating_sub(w);
        let mut dropped_failed = 0;
        self.seen.retain(|_, (ms, failed)| {
            let keep = *ms >= cutoff;
            if !keep && *failed {
                dropped_failed += 1;
            }
            keep
        });
        self.failed -= dropped_failed;
    }

    /// The share of failing servers now (statistical mode), and the sample.
    pub fn share(&self) -> (f64, usize) {
        let n = self.seen.len();
        if n == 0 {
            (0.0, 0)
        } else {
            (self.failed as f64 / n as f64, n)
        }
    }

    fn judge(&mut self, t: Timestamp) -> Option<String> {
        if self.canaries > 0 {
            return match self.canary {
                Some((0, at)) => Some(format!(
                    "none of the {} canaries answered (last look {})",
                    self.canaries,
                    at.format("%Y-%m-%dT%H:%M:%SZ")
                )),
                _ => None,
            };
        }
        self.prune(t.timestamp_millis());
        let (share, n) = self.share();
        if n < MIN_SAMPLE {
            // Too few looks to say anything: an outage in force is not
            // ended for lack of data (it ends when servers answer again).
            return self.current.as_ref().map(|c| c.reason.clone());
        }
        (share >= self.threshold).then(|| {
            format!(
                "{} of {n} servers that answered before failed within {}s ({:.0}% ≥ {:.0}%)",
                self.failed,
                self.window.num_seconds(),
                share * 100.0,
                self.threshold * 100.0
            )
        })
    }

    fn update(&mut self, t: Timestamp) -> Option<Outage> {
        match (self.judge(t), self.current.take()) {
            (Some(reason), Some(cur)) => {
                self.current = Some(Outage {
                    since: cur.since,
                    reason,
                });
            }
            (Some(reason), None) => {
                tracing::warn!(
                    "registry-side outage detected: {reason}; failing rounds are inconclusive (nothing charged)"
                );
                self.current = Some(Outage { since: t, reason });
            }
            (None, Some(cur)) => {
                tracing::info!(
                    since = %cur.since,
                    "registry-side outage over; rounds are conclusive again"
                );
            }
            (None, None) => {}
        }
        metrics::gauge!("zonekeeper_registry_outage").set(if self.current.is_some() {
            1.0
        } else {
            0.0
        });
        self.current.clone()
    }

    /// The outage in force, if any (for health, metrics, the dashboard).
    pub fn current(&self) -> Option<Outage> {
        self.current.clone()
    }

    /// Re-judge at `t` without a new observation (old failures age out).
    pub fn refresh(&mut self, t: Timestamp) -> Option<Outage> {
        self.update(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::parse_host;
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn up_before(name: &str) -> ServerDowntime {
        ServerDowntime {
            server: parse_host(name).unwrap(),
            period_start: t(0),
            unreachable_secs: 0,
            unreachable_ms: 0,
            last_reachable: Some(true),
            last_probe: Some(t(0)),
            address: None,
            unmeasured_ms: 0,
        }
    }

    fn rep(name: &str, up: bool) -> ServerReport {
        ServerReport {
            name: name.into(),
            addresses: vec![],
            reachable: up,
            soa_serial: None,
            rtt_ms: None,
            unreachable_addresses: vec![],
        }
    }

    #[test]
    fn a_share_of_previously_answering_servers_failing_at_once_is_an_outage() {
        let mut d = OutageDetector::new(0.5, Duration::seconds(120), 0);
        // Three of them fail: below the sample minimum.
        for i in 0..3 {
            let n = format!("ns{i}.a.net");
            assert_eq!(
                d.observe(t(i), &[up_before(&n)], None, &[rep(&n, false)]),
                None
            );
        }
        // The fourth makes the sample: 4/4 failed.
        let n = "ns3.a.net";
        let o = d
            .observe(t(4), &[up_before(n)], None, &[rep(n, false)])
            .unwrap();
        assert_eq!(o.since, t(4));
        // Servers that never answered do not count at all.
        d.observe(t(5), &[], None, &[rep("new.b.net", false)]);
        assert_eq!(d.share(), (1.0, 4));
        // Four answer: 4/8 is still at the threshold.
        for i in 0..4 {
            let n = format!("ok{i}.c.net");
            d.observe(t(6), &[up_before(&n)], None, &[rep(&n, true)]);
        }
        assert!(d.current().is_some());
        let n = "ok4.c.net";
        assert_eq!(
            d.observe(t(7), &[up_before(n)], None, &[rep(n, true)]),
            None
        );
        // Old failures age out of the window.
        let mut d = OutageDetector::new(0.5, Duration::seconds(120), 0);
        for i in 0..4 {
            let n = format!("ns{i}.a.net");
            d.observe(t(0), &[up_before(&n)], None, &[rep(&n, false)]);
        }
        assert!(d.current().is_some());
        // With no looks at all it is not ended for lack of data …
        assert!(d.refresh(t(200)).is_some());
        // … but by servers answering again.
        for i in 0..4 {
            let n = format!("ok{i}.c.net");
            d.observe(t(201), &[up_before(&n)], None, &[rep(&n, true)]);
        }
        assert_eq!(d.current(), None);
    }

    #[test]
    fn the_same_server_counts_once_with_its_latest_result() {
        let mut d = OutageDetector::new(0.5, Duration::seconds(120), 0);
        for s in 0..10 {
            d.observe(
                t(s),
                &[up_before("ns1.a.net")],
                None,
                &[rep("ns1.a.net", false)],
            );
        }
        assert_eq!(d.share(), (1.0, 1));
        d.observe(
            t(11),
            &[up_before("ns1.a.net")],
            None,
            &[rep("ns1.a.net", true)],
        );
        assert_eq!(d.share(), (0.0, 1));
    }

    #[test]
    fn servers_failing_since_the_onset_stay_in_the_sample() {
        let mut d = OnceDetector::new();
        // Four servers fail at once: an outage from t(0).
        for i in 0..4 {
            let n = format!("ns{i}.a.net");
            d.0.observe(t(0), &[up_before(&n)], Some(t(0)), &[rep(&n, false)]);
        }
        assert!(d.0.current().is_some());
        // Ten minutes on, their records say "down" (the onset round was
        // conclusive), but they have failed only since the outage began.
        let down = |n: &str| {
            let mut x = up_before(n);
            x.last_reachable = Some(false);
            x
        };
        for i in 0..4 {
            let n = format!("ns{i}.a.net");
            let o =
                d.0.observe(t(600), &[down(&n)], Some(t(0)), &[rep(&n, false)]);
            assert!(o.is_some());
        }
        assert_eq!(d.0.share(), (1.0, 4));
        // A server failing since long before the outage does not count.
        let old = d.0.observe(
            t(601),
            &[down("old.b.net")],
            Some(t(-3600)),
            &[rep("old.b.net", false)],
        );
        assert!(old.is_some());
        assert_eq!(d.0.share().1, 4);
    }

    struct OnceDetector(OutageDetector);
    impl OnceDetector {
        fn new() -> Self {
            Self(OutageDetector::new(0.5, Duration::seconds(1200), 0))
        }
    }

    #[test]
    fn canaries_decide_when_configured() {
        let mut d = OutageDetector::new(0.5, Duration::seconds(120), 2);
        // Failing servers alone do not make an outage in canary mode.
        for i in 0..10 {
            let n = format!("ns{i}.a.net");
            assert_eq!(
                d.observe(t(i), &[up_before(&n)], None, &[rep(&n, false)]),
                None
            );
        }
        assert_eq!(d.canaries_seen(t(20), 1, 2), None);
        let o = d.canaries_seen(t(30), 0, 2).unwrap();
        assert!(o.reason.contains("none of the 2 canaries"), "{}", o.reason);
        assert_eq!(d.canaries_seen(t(40), 0, 2).unwrap().since, t(30));
        assert_eq!(d.canaries_seen(t(50), 2, 2), None);
    }
}

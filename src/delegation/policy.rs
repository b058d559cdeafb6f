//! The delegation periods and policy, and what counts as a failing round
//! or a violation.

use super::*;

/// The delegation periods and policy, as chrono durations. Built once
/// from the config and shared (scheduler, API, WHOIS, dashboard).
#[derive(Debug, Clone)]
pub struct Policy {
    pub probe_interval: Duration,
    pub monitor_interval: Duration,
    pub test_window: Duration,
    pub downtime_budget: Duration,
    pub downtime_period: Duration,
    pub downtime_utc_offset: Duration,
    pub on_violation: OnViolation,
    pub jitter: f64,
    pub recheck_interval: Duration,
    pub violation_confirmations: u32,
    pub violation_min_span: Duration,
    /// `dnssec.on_invalid = "withdraw_ds"`: a violation made only of
    /// DNSSEC findings keeps the domain delegated (the zone writer then
    /// leaves its DS out: published insecure) instead of suspending it.
    pub dnssec_withdraw_ds: bool,
}

impl Policy {
    pub fn from_config(c: &DelegationConfig) -> Self {
        Self {
            probe_interval: Config::chrono(c.probe_interval),
            monitor_interval: Config::chrono(c.monitor_interval),
            test_window: Config::chrono(c.test_window),
            downtime_budget: Config::chrono(c.downtime_budget),
            downtime_period: Config::chrono(c.downtime_period),
            downtime_utc_offset: Duration::seconds(c.downtime_utc_offset_secs.into()),
            on_violation: c.on_violation,
            jitter: c.jitter,
            // A re-probe never waits longer than a plain monitoring round
            // (configs with shrunken periods keep working).
            recheck_interval: Config::chrono(c.recheck_interval.min(c.monitor_interval)),
            violation_confirmations: c.violation_confirmations.max(1),
            violation_min_span: Config::chrono(c.violation_min_span),
            dnssec_withdraw_ds: false,
        }
    }

    /// How often a domain in `state` is looked at when all is well.
    pub fn interval(&self, state: DelegationState) -> Duration {
        match state {
            DelegationState::Testing => self.probe_interval,
            _ => self.monitor_interval,
        }
    }

    /// How often a failing domain in `state` is looked at: testing keeps
    /// its pace, monitoring re-probes soon.
    pub fn failing_interval(&self, state: DelegationState) -> Duration {
        match state {
            DelegationState::Testing => self.probe_interval,
            _ => self.recheck_interval,
        }
    }

    /// The longest gap between two conclusive probes across which a
    /// down server is charged (twice the expected gap, for jitter and a
    /// busy queue); a longer one means the registry was not looking.
    pub fn reach(&self, state: DelegationState) -> Duration {
        self.failing_interval(state) * 2
    }

    /// [`Policy::reach`] of the gap ending at a round whose predecessor
    /// (`prev`, the record's last round) took `prev.duration_ms` and that
    /// itself started `queue_lag_ms` after it was due: the next round
    /// could not start before the previous one ended, so a round longer
    /// than the interval (a dead server's round lasts `probe.timeout` ×
    /// tries) does not make the gap after it "the registry not looking";
    /// nor does a round that waited in a running scheduler's queue for a
    /// slot (a backlog). Only time the registry was not looking at all
    /// (serve stopped, the scheduler stalled) is left out.
    pub fn reach_after(
        &self,
        state: DelegationState,
        prev: Option<&crate::model::RoundSummary>,
        queue_lag_ms: u64,
    ) -> Duration {
        let took = prev.map_or(0, |r| r.duration_ms);
        let extra = took.saturating_add(queue_lag_ms);
        self.reach(state) + Duration::milliseconds(i64::try_from(extra).unwrap_or(i64::MAX / 4))
    }

    /// The most test-window time one conclusive round credits.
    pub fn window_credit_cap(&self) -> Duration {
        self.probe_interval * 2
    }
}

/// Error findings that are a monitoring violation: those about a server
/// that answered (wrong data, not plain unreachability, which the downtime
/// budget covers, nor a dead address of an answering server, which its
/// address's budget covers), and findings about no single server when
/// every server answered.
pub fn violation_findings(report: &CheckReport) -> Vec<&crate::model::Finding> {
    let down: HashSet<String> = report
        .servers
        .iter()
        .filter(|s| !s.reachable)
        .map(|s| norm(&s.name))
        .collect();
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .filter(|f| !ADDRESS_DOWN_IDS.iter().any(|c| *c == f.id))
        .filter(|f| match &f.server {
            Some(s) => !down.contains(&norm(s)),
            None => down.is_empty(),
        })
        .collect()
}

/// Whether a round saw anything wrong at all (a violation finding, a
/// server or an address that did not answer): such a round is re-probed
/// soon, and is the kind a registry-side outage makes inconclusive.
pub fn round_failing(report: &CheckReport) -> bool {
    !report.passed()
        || report
            .servers
            .iter()
            .any(|s| !s.reachable || !s.unreachable_addresses.is_empty())
}

pub(super) fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

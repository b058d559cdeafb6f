//! The delegation state machine (SPEC §1 Delegation) as pure functions of
//! the record, the lifecycle status and the time. Writers share
//! [`on_declared`] and [`on_retest`]; the scheduler drives the rest with
//! [`plan`] (before a round) and [`on_round`] (after it).
//!
//! ```text
//! undelegated --declare--> testing --full pass within budget--> delegated
//!                            |  \--window_end reached--> test_failed --retest--> testing
//!                            \--blocked: paused; block lifts: fresh window
//! delegated --violation, on_violation=suspend--> suspended --no violation--> delegated
//! delegated --violation, on_violation=report--> delegated (+violation) --clean round--> delegated
//! delegated --lifecycle block--> suspended(blocked) --lifted, full pass--> delegated
//!                                                  \--lifted, no pass--> testing (fresh window)
//! any --registration cancelled--> undelegated (fingerprint kept) --restored--> testing
//! ```
//!
//! - A *full pass* is a round with verdict pass while every server's
//!   downtime in the current period is within `downtime_budget`.
//! - A *violation* (monitoring) is an error finding about a server that
//!   answered, or a server over its budget ([`DOWNTIME_BUDGET_ID`]);
//!   a server merely unreachable in one round is downtime, not a violation.
//! - Blocked domains (expired, hold, verification overdue) are not probed;
//!   a testing window cannot fail while blocked. The blocks are kept in
//!   `DelegationRecord::blocked`; `lifecycle::in_zone` keeps them out of
//!   the zone at once, the scheduler records the state at its next look
//!   (at once on `App::domain_changed`, and at the exact instant for
//!   changes by time: expiry, release, verification deadlines).
//! - Downtime: see [`accrue`] (nearest-round rule, gaps not counted,
//!   periods aligned to `downtime_utc_offset_secs`).

use crate::model::{
    delegation_fingerprint, DelegationRecord, DelegationState, DsRecord, HistoryEvent, Nameserver,
    Timestamp,
};

/// The record after `ns` (with DS set `ds`) is declared, or `None` when
/// neither set changed (re-importing the same sets leaves the state as it
/// is). A DS change restarts testing like an NS change.
pub fn on_declared(
    old: Option<&DelegationRecord>,
    ns: &[Nameserver],
    ds: &[DsRecord],
    now: Timestamp,
    window: chrono::Duration,
) -> Option<(DelegationRecord, HistoryEvent)> {
    let fp = delegation_fingerprint(ns, ds);
    if let Some(old) = old {
        if old.ns_fingerprint == fp {
            return None;
        }
    }
    let from = old.map(|o| o.state);
    let (rec, reason) = if ns.is_empty() {
        (
            DelegationRecord::undelegated(now),
            "nameservers removed".to_string(),
        )
    } else {
        (
            DelegationRecord::testing(fp, now, window),
            format!(
                "nameservers declared: {}{}",
                ns.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                match ds.len() {
                    0 => String::new(),
                    n => format!(" with {n} DS"),
                }
            ),
        )
    };
    let ev = HistoryEvent {
        at: now,
        from,
        to: rec.state,
        reason,
    };
    Some((rec, ev))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetestError {
    #[error("the domain has no nameservers to test")]
    NoNameservers,
    #[error("the domain is delegated; monitoring is already running")]
    AlreadyDelegated,
}

/// A fresh test window for the current NS set.
pub fn on_retest(
    old: &DelegationRecord,
    now: Timestamp,
    window: chrono::Duration,
) -> Result<(DelegationRecord, HistoryEvent), RetestError> {
    match old.state {
        DelegationState::Undelegated => Err(RetestError::NoNameservers),
        DelegationState::Delegated => Err(RetestError::AlreadyDelegated),
        DelegationState::Testing | DelegationState::TestFailed | DelegationState::Suspended => {
            let rec = DelegationRecord::testing(old.ns_fingerprint.clone(), now, window);
            let ev = HistoryEvent {
                at: now,
                from: Some(old.state),
                to: DelegationState::Testing,
                reason: "retest requested".into(),
            };
            Ok((rec, ev))
        }
    }
}

// ---------------------------------------------------------------------
// Round-driven transitions (the scheduler calls these; all pure).
// ---------------------------------------------------------------------

use std::collections::HashSet;

use chrono::Duration;

use crate::config::{Config, DelegationConfig, LifecycleConfig, OnViolation};
use crate::lifecycle::Status;
use crate::model::{CheckReport, Domain, RoundSummary, ServerDowntime, Severity, Violation};

/// Finding id of the synthetic finding for a server over its downtime budget.
pub const DOWNTIME_BUDGET_ID: &str = "DOWNTIME_BUDGET";

/// The delegation periods and policy, as chrono durations.
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
            dnssec_withdraw_ds: false,
        }
    }

    /// How often a domain in `state` is looked at.
    pub fn interval(&self, state: DelegationState) -> Duration {
        match state {
            DelegationState::Testing => self.probe_interval,
            _ => self.monitor_interval,
        }
    }
}

/// Start of the downtime accounting period that contains `t`: periods of
/// `period` aligned to the Unix epoch shifted by `offset` (east of UTC), so
/// a `1d` period with offset `+3h` is the calendar day in Moscow time.
pub fn period_start(t: Timestamp, period: Duration, offset: Duration) -> Timestamp {
    let p = period.num_milliseconds().max(1);
    let off = offset.num_milliseconds();
    let local = t.timestamp_millis().saturating_add(off);
    let start = local.div_euclid(p).saturating_mul(p).saturating_sub(off);
    chrono::DateTime::from_timestamp_millis(start).unwrap_or(t)
}

/// A server's downtime in the period containing `now` (0 when its figure
/// belongs to an earlier period). For the API and WHOIS.
pub fn downtime_ms_now(d: &ServerDowntime, now: Timestamp, pol: &Policy) -> u64 {
    if d.period_start == period_start(now, pol.downtime_period, pol.downtime_utc_offset) {
        d.unreachable_ms
    } else {
        0
    }
}

/// Add the unreachable span `[a, b)` to `d`, split at period boundaries.
/// Parts in periods before `d.period_start` are closed and ignored; a part
/// in a later period starts that period's figure afresh.
fn add_span(d: &mut ServerDowntime, a: Timestamp, b: Timestamp, pol: &Policy) {
    let mut a = a;
    while a < b {
        let ps = period_start(a, pol.downtime_period, pol.downtime_utc_offset);
        let pe = ps + pol.downtime_period;
        let end = b.min(pe);
        let ms = u64::try_from((end - a).num_milliseconds()).unwrap_or(0);
        if ps > d.period_start {
            d.period_start = ps;
            d.unreachable_ms = 0;
        }
        if ps == d.period_start {
            d.unreachable_ms = d.unreachable_ms.saturating_add(ms);
        }
        d.unreachable_secs = d.unreachable_ms / 1000;
        a = end;
    }
}

/// Account one round's reachability of one server seen at `t`.
///
/// The rule: every instant between two consecutive rounds takes the state
/// seen by the nearer round (a server unreachable at both rounds accrues
/// the whole gap, one unreachable at one of them accrues half of it). An
/// instant farther than `reach` (one round interval) from both rounds is
/// not known — the scheduler was stopped, the domain was blocked, or the
/// queue ran late — and is not counted: the registry does not charge a
/// registrant for time it did not measure. The first round of a server
/// has no earlier neighbour and accrues nothing yet.
pub fn accrue(
    d: &mut ServerDowntime,
    reachable: bool,
    t: Timestamp,
    reach: Duration,
    pol: &Policy,
) {
    if let (Some(t0), Some(r0)) = (d.last_probe, d.last_reachable) {
        if t > t0 {
            let mid = t0 + (t - t0) / 2;
            if !r0 {
                add_span(d, t0, mid.min(t0 + reach), pol);
            }
            if !reachable {
                add_span(d, mid.max(t - reach), t, pol);
            }
        }
    }
    let ps = period_start(t, pol.downtime_period, pol.downtime_utc_offset);
    if ps > d.period_start {
        d.period_start = ps;
        d.unreachable_ms = 0;
        d.unreachable_secs = 0;
    }
    if d.last_probe.is_none_or(|t0| t >= t0) {
        d.last_probe = Some(t);
        d.last_reachable = Some(reachable);
    }
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Update the per-server downtime of `downtime` with the servers of one
/// round. Servers not in the round are dropped (the NS set is fixed for a
/// record), new ones start at zero.
///
/// Round times are taken to the millisecond, so replaying the stored
/// rounds (`RoundSummary::at`, `servers`) gives exactly the stored figures.
pub fn accrue_round(
    downtime: &[ServerDowntime],
    at: Timestamp,
    servers: &[crate::model::ServerReport],
    reach: Duration,
    pol: &Policy,
) -> Vec<ServerDowntime> {
    let t = chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    servers
        .iter()
        .filter_map(|s| {
            let server = crate::names::parse_host(&s.name).ok()?;
            let mut d = downtime
                .iter()
                .find(|d| d.server == server)
                .cloned()
                .unwrap_or_else(|| ServerDowntime {
                    server,
                    period_start: period_start(t, pol.downtime_period, pol.downtime_utc_offset),
                    unreachable_secs: 0,
                    unreachable_ms: 0,
                    last_reachable: None,
                    last_probe: None,
                });
            accrue(&mut d, s.reachable, t, reach, pol);
            Some(d)
        })
        .collect()
}

/// Servers over the downtime budget in the period containing `t`.
pub fn over_budget(downtime: &[ServerDowntime], t: Timestamp, pol: &Policy) -> Vec<String> {
    let budget = u64::try_from(pol.downtime_budget.num_milliseconds()).unwrap_or(0);
    downtime
        .iter()
        .filter(|d| downtime_ms_now(d, t, pol) > budget)
        .map(|d| d.server.as_str().to_string())
        .collect()
}

/// Error findings that are a monitoring violation: those about a server
/// that answered (wrong data, not plain unreachability, which the downtime
/// budget covers), and findings about no single server when every server
/// answered.
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
        .filter(|f| match &f.server {
            Some(s) => !down.contains(&norm(s)),
            None => down.is_empty(),
        })
        .collect()
}

/// A deterministic spread in `[0, 1)` from a domain name and an instant,
/// so jitter is reproducible (tests) yet differs between domains.
pub fn spread(name: &str, t: Timestamp) -> f64 {
    // SplitMix64 over FNV-1a of the name, mixed with the instant.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ (t.timestamp_millis() as u64);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `t + interval`, spread by ±`jitter`/2 of the interval.
pub fn next_after(t: Timestamp, interval: Duration, jitter: f64, name: &str) -> Timestamp {
    let ms = interval.num_milliseconds() as f64;
    let delta = ms * (1.0 + jitter * (spread(name, t) - 0.5));
    t + Duration::milliseconds(delta.max(1.0) as i64)
}

/// The next instant after `now` at which the lifecycle status of `domain`
/// changes by time alone (expiry, release, verification deadlines), so
/// the scheduler can act on it then rather than at its next round.
pub fn next_lifecycle_change(
    domain: &Domain,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Option<Timestamp> {
    let ms = Duration::milliseconds(1);
    let mut cands = vec![
        // `expired` is `now > paid_till`, release is `now > free_at`.
        domain.paid_till + ms,
        crate::lifecycle::free_at(domain, cfg) + ms,
    ];
    if let Some(asked) = domain.verification_requested {
        cands.push(asked + Config::chrono(cfg.verification_suspend));
        cands.push(asked + Config::chrono(cfg.verification_cancel));
    }
    cands.into_iter().filter(|t| *t > now).min()
}

/// What the lifecycle says at the moment of a decision.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub status: &'a Status,
    /// [`next_lifecycle_change`] of the domain.
    pub lifecycle_next: Option<Timestamp>,
}

impl Ctx<'_> {
    fn blocks(&self) -> Vec<String> {
        if self.status.exists() {
            self.status
                .blocks
                .iter()
                .map(|b| b.as_str().to_string())
                .collect()
        } else {
            Vec::new()
        }
    }
    /// `t`, or the next lifecycle change if sooner.
    fn cap(&self, t: Timestamp) -> Timestamp {
        self.lifecycle_next.map_or(t, |l| l.min(t))
    }
}

/// What to do with a domain that is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to schedule (no nameservers, or `test_failed`: waits for a
    /// declaration or retest).
    Idle,
    /// Nothing to write; look again at this time (a block still holds).
    Wait(Timestamp),
    /// Write this record and event without probing.
    Write(Box<DelegationRecord>, HistoryEvent),
    /// Run a probe round, then [`on_round`].
    Probe,
}

fn event(
    from: DelegationState,
    to: DelegationState,
    at: Timestamp,
    reason: String,
) -> HistoryEvent {
    HistoryEvent {
        at,
        from: Some(from),
        to,
        reason,
    }
}

/// Decide what a due domain needs, before any probe.
///
/// Lifecycle blocks (expired, hold, verification overdue) override the
/// servers: a blocked domain is not probed; a delegated one becomes
/// `suspended` with the blocks recorded; a testing one stays `testing` but
/// paused (its window cannot fail while blocked) and gets a fresh window
/// when the block lifts. A cancelled registration drops to `undelegated`
/// (fingerprint kept: the record stays about the declared set); if the
/// registration is restored (new `paid_till`, verification answered)
/// testing restarts with a fresh window.
pub fn plan(rec: &DelegationRecord, ctx: &Ctx<'_>, pol: &Policy) -> Plan {
    let now = ctx.now;
    let st = rec.state;
    if st == DelegationState::Undelegated {
        // Undelegated with a fingerprint: the registration was cancelled
        // with servers declared. If it exists again (operator renewal,
        // verification answered), testing restarts.
        if !rec.ns_fingerprint.is_empty() && ctx.status.exists() {
            let r = DelegationRecord::testing(rec.ns_fingerprint.clone(), now, pol.test_window);
            let ev = event(
                st,
                DelegationState::Testing,
                now,
                "registration restored: testing restarted".into(),
            );
            return Plan::Write(Box::new(r), ev);
        }
        return Plan::Idle;
    }
    if st == DelegationState::TestFailed {
        return Plan::Idle;
    }
    if let Some(c) = ctx.status.cancelled {
        // The fingerprint stays (the record is about the declared set).
        let mut r = DelegationRecord::undelegated(now);
        r.ns_fingerprint = rec.ns_fingerprint.clone();
        r.last_round = rec.last_round.clone();
        r.downtime = rec.downtime.clone();
        let why = match c {
            crate::lifecycle::Cancelled::NotRenewed => "not renewed",
            crate::lifecycle::Cancelled::VerificationUnanswered => "verification unanswered",
        };
        return Plan::Write(
            Box::new(r),
            event(
                st,
                DelegationState::Undelegated,
                now,
                format!("registration cancelled ({why})"),
            ),
        );
    }
    let blocks = ctx.blocks();
    let recheck = ctx.cap(now + pol.interval(st));
    if !blocks.is_empty() {
        if blocks == rec.blocked {
            return Plan::Wait(recheck);
        }
        let mut r = rec.clone();
        r.blocked = blocks.clone();
        r.blocked_since = rec
            .blocked_since
            .filter(|_| !rec.blocked.is_empty())
            .or(Some(now));
        r.next_probe = Some(recheck);
        let what = blocks.join(", ");
        let (to, reason) = match st {
            DelegationState::Delegated => {
                r.state = DelegationState::Suspended;
                r.changed_at = now;
                (r.state, format!("suspended: {what}"))
            }
            DelegationState::Testing => (st, format!("testing paused: {what}")),
            _ => (st, format!("blocked: {what}")),
        };
        return Plan::Write(Box::new(r), event(st, to, now, reason));
    }
    if !rec.blocked.is_empty() && st == DelegationState::Testing {
        let mut r = DelegationRecord::testing(rec.ns_fingerprint.clone(), now, pol.test_window);
        r.downtime = rec.downtime.clone();
        let reason = format!(
            "block lifted ({}): test window restarted",
            rec.blocked.join(", ")
        );
        return Plan::Write(
            Box::new(r),
            event(st, DelegationState::Testing, now, reason),
        );
    }
    if st == DelegationState::Testing && rec.window_end.is_some_and(|end| now >= end) {
        let mut r = rec.clone();
        r.state = DelegationState::TestFailed;
        r.next_probe = None;
        r.changed_at = now;
        return Plan::Write(
            Box::new(r),
            event(
                st,
                DelegationState::TestFailed,
                now,
                format!(
                    "test window ended without a passing round ({} rounds)",
                    rec.rounds
                ),
            ),
        );
    }
    Plan::Probe
}

/// The record after a probe round (`report`) of a domain that [`plan`]
/// said to probe, and the history event when the state (or a violation)
/// changed. `name` seeds the jitter.
///
/// - `testing` → `delegated` on a round that passes while every server is
///   within the downtime budget of the current period; else stays testing
///   (the window end is scheduled as the last look).
/// - `delegated`: a round with violation findings (see
///   [`violation_findings`]) or a server over budget sets `violation`;
///   with `on_violation = suspend` the domain becomes `suspended`. A round
///   without either clears the violation (and un-suspends).
/// - `suspended` after a lifecycle block lifted: a fully passing round
///   within budget delegates it again; anything else restarts testing with
///   a fresh window.
pub fn on_round(
    rec: &DelegationRecord,
    report: &CheckReport,
    ctx: &Ctx<'_>,
    pol: &Policy,
    name: &str,
) -> (DelegationRecord, Option<HistoryEvent>) {
    let t = report.checked_at;
    let st = rec.state;
    let mut r = rec.clone();
    r.downtime = accrue_round(
        &rec.downtime,
        report.checked_at,
        &report.servers,
        pol.interval(st),
        pol,
    );
    r.rounds = rec.rounds.saturating_add(1);
    r.last_round = Some(RoundSummary::from_report(report));
    let over = over_budget(&r.downtime, t, pol);
    let full_pass = report.passed() && over.is_empty();
    let monitor_next = ctx.cap(next_after(t, pol.monitor_interval, pol.jitter, name));

    let delegate = |mut r: DelegationRecord, reason: String| {
        r.state = DelegationState::Delegated;
        r.delegated_at = Some(t);
        r.changed_at = t;
        r.rounds = 0;
        r.violation = None;
        r.blocked.clear();
        r.blocked_since = None;
        r.next_probe = Some(monitor_next);
        let ev = event(st, DelegationState::Delegated, t, reason);
        (r, Some(ev))
    };

    match st {
        DelegationState::Testing => {
            if full_pass {
                return delegate(
                    r,
                    format!(
                        "delegated: round {} passed within the downtime budget",
                        rec.rounds + 1
                    ),
                );
            }
            let mut next = next_after(t, pol.probe_interval, pol.jitter, name);
            if let Some(end) = rec.window_end {
                next = next.min(end);
            }
            r.next_probe = Some(ctx.cap(next));
            (r, None)
        }
        DelegationState::Suspended if !rec.blocked.is_empty() => {
            let lifted = rec.blocked.join(", ");
            if full_pass {
                return delegate(
                    r,
                    format!("block lifted ({lifted}): round passed, delegated again"),
                );
            }
            let mut fresh =
                DelegationRecord::testing(rec.ns_fingerprint.clone(), t, pol.test_window);
            fresh.downtime = r.downtime;
            fresh.rounds = 1;
            fresh.last_round = r.last_round;
            fresh.next_probe = Some(ctx.cap(next_after(t, pol.probe_interval, pol.jitter, name)));
            let ev = event(
                st,
                DelegationState::Testing,
                t,
                format!("block lifted ({lifted}): servers do not pass; test window restarted"),
            );
            (fresh, Some(ev))
        }
        DelegationState::Delegated | DelegationState::Suspended => {
            r.next_probe = Some(monitor_next);
            let vf = violation_findings(report);
            if vf.is_empty() && over.is_empty() {
                let was = rec.violation.is_some() || st == DelegationState::Suspended;
                if !was {
                    return (r, None);
                }
                if st == DelegationState::Suspended {
                    return delegate(r, "violation cleared: delegated again".into());
                }
                r.violation = None;
                let ev = event(st, st, t, "violation cleared".into());
                return (r, Some(ev));
            }
            let mut ids: Vec<String> = vf.iter().map(|f| f.id.clone()).collect();
            let mut parts: Vec<String> = vf
                .iter()
                .map(|f| match &f.server {
                    Some(s) => format!("{} ({s}): {}", f.id, f.message),
                    None => format!("{}: {}", f.id, f.message),
                })
                .collect();
            if !over.is_empty() {
                ids.push(DOWNTIME_BUDGET_ID.to_string());
                parts.push(format!(
                    "{DOWNTIME_BUDGET_ID}: over the {}s budget this period: {}",
                    pol.downtime_budget.num_seconds(),
                    over.join(", ")
                ));
            }
            ids.sort();
            ids.dedup();
            let message = parts.join("; ");
            let since = rec.violation.as_ref().map_or(t, |v| v.since);
            let new_violation = rec.violation.is_none();
            r.violation = Some(Violation {
                since,
                finding_ids: ids,
                message: message.clone(),
            });
            let dnssec_only = over.is_empty()
                && vf
                    .iter()
                    .all(|f| crate::checks::dnssec::is_dnssec_check(&f.id));
            let to = match pol.on_violation {
                _ if pol.dnssec_withdraw_ds && dnssec_only => DelegationState::Delegated,
                OnViolation::Suspend => DelegationState::Suspended,
                OnViolation::Report => DelegationState::Delegated,
            };
            if to != st {
                r.state = to;
                r.changed_at = t;
                let reason = match to {
                    DelegationState::Suspended => format!("suspended: violation: {message}"),
                    _ => format!("violation reported (policy: report), back in zone: {message}"),
                };
                return (r, Some(event(st, to, t, reason)));
            }
            if new_violation {
                return (r, Some(event(st, st, t, format!("violation: {message}"))));
            }
            (r, None)
        }
        DelegationState::Undelegated | DelegationState::TestFailed => (rec.clone(), None),
    }
}

/// When the scheduler should next look at a record it loads (start-up, a
/// wake): `None` for records it need not look at.
pub fn due_of(rec: &DelegationRecord) -> Option<Timestamp> {
    match rec.state {
        // A cancelled registration with servers: one look (at start-up)
        // in case it was restored meanwhile.
        DelegationState::Undelegated if !rec.ns_fingerprint.is_empty() => {
            Some(rec.next_probe.unwrap_or(rec.changed_at))
        }
        DelegationState::Undelegated | DelegationState::TestFailed => None,
        _ => Some(rec.next_probe.unwrap_or(rec.changed_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{evaluate, initial_paid_till};
    use crate::model::{ns_fingerprint, Finding, Hold, ServerReport, Verdict};
    use crate::names::{parse_host, DomainName};
    use chrono::{TimeZone, Utc};

    const S: Duration = Duration::seconds(1);

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
    }

    fn pol() -> Policy {
        Policy::from_config(&DelegationConfig::default())
    }

    fn ns() -> Vec<Nameserver> {
        ["ns1.example.ru", "ns2.example.net"]
            .iter()
            .map(|n| Nameserver {
                name: parse_host(n).unwrap(),
                addresses: vec![],
            })
            .collect()
    }

    fn domain() -> Domain {
        let created = t0() - Duration::days(30);
        Domain {
            name: DomainName::from_trusted("example.ru".into()),
            registrar: "R".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created,
            paid_till: initial_paid_till(created, &LifecycleConfig::default()).unwrap(),
            nameservers: ns(),
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: created,
            ds: Vec::new(),
        }
    }

    /// A report at `at`: `up[i]` = server i answered; `pass` = verdict.
    fn report(at: Timestamp, up: [bool; 2], pass: bool) -> CheckReport {
        let names = ["ns1.example.ru", "ns2.example.net"];
        let mut findings = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if !up[i] {
                findings.push(Finding {
                    id: "UNREACHABLE".into(),
                    severity: Severity::Error,
                    server: Some(n.to_string()),
                    address: None,
                    message: "timeout".into(),
                });
            }
        }
        if !pass && up.iter().all(|u| *u) {
            findings.push(Finding {
                id: "NS_SET_MISMATCH".into(),
                severity: Severity::Error,
                server: Some("ns2.example.net.".into()),
                address: None,
                message: "NS set differs".into(),
            });
        }
        CheckReport {
            domain: "example.ru".into(),
            verdict: if pass && up.iter().all(|u| *u) {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            checked_at: at,
            duration_ms: 5,
            findings,
            servers: names
                .iter()
                .zip(up)
                .map(|(n, r)| ServerReport {
                    name: n.to_string(),
                    addresses: vec![],
                    reachable: r,
                    soa_serial: r.then_some(1),
                    rtt_ms: None,
                })
                .collect(),
        }
    }

    fn ctx_at(d: &Domain, now: Timestamp) -> (Status, Option<Timestamp>) {
        let cfg = LifecycleConfig::default();
        (evaluate(d, now, &cfg), next_lifecycle_change(d, now, &cfg))
    }

    /// Plan then (if asked) probe with `rep`, as the scheduler does.
    fn step(
        rec: &DelegationRecord,
        d: &Domain,
        rep: Option<CheckReport>,
        now: Timestamp,
        pol: &Policy,
    ) -> (DelegationRecord, Option<HistoryEvent>, &'static str) {
        let (status, ln) = ctx_at(d, now);
        let ctx = Ctx {
            now,
            status: &status,
            lifecycle_next: ln,
        };
        match plan(rec, &ctx, pol) {
            Plan::Idle => (rec.clone(), None, "idle"),
            Plan::Wait(_) => (rec.clone(), None, "wait"),
            Plan::Write(r, e) => (*r, Some(e), "write"),
            Plan::Probe => {
                let rep = rep.expect("a probe was planned");
                let (r, e) = on_round(rec, &rep, &ctx, pol, "example.ru");
                (r, e, "probe")
            }
        }
    }

    fn testing(at: Timestamp, pol: &Policy) -> DelegationRecord {
        DelegationRecord::testing(ns_fingerprint(&ns()), at, pol.test_window)
    }

    #[test]
    fn period_start_is_the_local_calendar_day() {
        let p = pol();
        let msk = |y, m, d, h, mi, s| Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap();
        // Moscow midnight is 21:00 UTC the day before.
        assert_eq!(
            period_start(
                msk(2026, 1, 10, 20, 59, 59),
                p.downtime_period,
                p.downtime_utc_offset
            ),
            msk(2026, 1, 9, 21, 0, 0)
        );
        assert_eq!(
            period_start(
                msk(2026, 1, 10, 21, 0, 0),
                p.downtime_period,
                p.downtime_utc_offset
            ),
            msk(2026, 1, 10, 21, 0, 0)
        );
        // Negative offsets and short periods align to epoch + offset.
        let ps = period_start(msk(2026, 1, 10, 0, 0, 6), Duration::seconds(5), -S * 2);
        assert_eq!(ps, msk(2026, 1, 10, 0, 0, 2));
        let ps = period_start(msk(2026, 1, 10, 0, 0, 7), Duration::seconds(5), -S * 2);
        assert_eq!(ps, msk(2026, 1, 10, 0, 0, 7));
        let before_epoch = chrono::DateTime::from_timestamp(-1, 0).unwrap();
        assert_eq!(
            period_start(before_epoch, Duration::days(1), Duration::zero()),
            chrono::DateTime::from_timestamp(-86400, 0).unwrap()
        );
    }

    fn dt(server: &str, start: Timestamp) -> ServerDowntime {
        ServerDowntime {
            server: parse_host(server).unwrap(),
            period_start: start,
            unreachable_secs: 0,
            unreachable_ms: 0,
            last_reachable: None,
            last_probe: None,
        }
    }

    #[test]
    fn downtime_nearest_round_rule_gaps_and_period_split() {
        let mut p = pol();
        p.downtime_period = Duration::seconds(100);
        p.downtime_utc_offset = Duration::zero();
        let base = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap(); // a period start
        let reach = Duration::seconds(10);
        let mut d = dt("ns1.example.ru", base);
        // First sample: nothing before it is known.
        accrue(&mut d, false, base, reach, &p);
        assert_eq!(d.unreachable_ms, 0);
        // Down at both ends: the whole gap.
        accrue(&mut d, false, base + S * 10, reach, &p);
        assert_eq!(d.unreachable_ms, 10_000);
        // Down -> up: half the gap.
        accrue(&mut d, true, base + S * 20, reach, &p);
        assert_eq!(d.unreachable_ms, 15_000);
        // Up -> down: half again.
        accrue(&mut d, false, base + S * 24, reach, &p);
        assert_eq!(d.unreachable_ms, 17_000);
        assert_eq!(d.unreachable_secs, 17);
        // A 30 s gap (restart) down at both ends: only `reach` either side.
        accrue(&mut d, false, base + S * 54, reach, &p);
        assert_eq!(d.unreachable_ms, 37_000);
        // Down across the period boundary at 100 s: the part after the
        // boundary starts the new period; the old period is closed.
        accrue(&mut d, false, base + S * 60, reach, &p);
        assert_eq!(d.unreachable_ms, 43_000);
        accrue(&mut d, false, base + S * 96, reach, &p);
        accrue(&mut d, false, base + S * 104, reach, &p);
        assert_eq!(d.period_start, base + S * 100);
        assert_eq!(d.unreachable_ms, 4_000);
        // Up all through the next period: the figure resets to zero.
        accrue(&mut d, true, base + S * 110, reach, &p);
        assert_eq!(d.unreachable_ms, 4_000 + 3_000);
        accrue(&mut d, true, base + S * 205, reach, &p);
        assert_eq!((d.period_start, d.unreachable_ms), (base + S * 200, 0));
        assert_eq!(downtime_ms_now(&d, base + S * 299, &p), 0);
        // A round replayed with an older time changes nothing.
        let before = d.clone();
        accrue(&mut d, false, base + S * 150, reach, &p);
        assert_eq!(d, before);
    }

    #[test]
    fn testing_delegates_on_first_full_pass_within_budget() {
        let p = pol();
        let d = domain();
        let rec = testing(t0(), &p);
        // A failing round stays testing, next probe one interval (±jitter) on.
        let (r1, e, how) = step(&rec, &d, Some(report(t0(), [true, true], false)), t0(), &p);
        assert_eq!(
            (how, e, r1.state, r1.rounds),
            ("probe", None, DelegationState::Testing, 1)
        );
        let np = r1.next_probe.unwrap() - t0();
        assert!(
            np >= Duration::minutes(9) + S * 30 && np <= Duration::minutes(10) + S * 30,
            "{np}"
        );
        let at = t0() + Duration::minutes(10);
        let (r2, e, _) = step(&r1, &d, Some(report(at, [true, true], true)), at, &p);
        assert_eq!(r2.state, DelegationState::Delegated);
        assert_eq!(r2.delegated_at, Some(at));
        assert_eq!(r2.window_start, Some(t0()), "window kept for the record");
        let e = e.unwrap();
        assert_eq!(
            (e.from, e.to),
            (Some(DelegationState::Testing), DelegationState::Delegated)
        );
        assert!(e.reason.contains("round 2 passed"), "{}", e.reason);
        let mn = r2.next_probe.unwrap() - at;
        assert!(
            mn >= Duration::minutes(57) && mn <= Duration::minutes(63),
            "{mn}"
        );
    }

    #[test]
    fn a_pass_over_the_downtime_budget_does_not_delegate() {
        let mut p = pol();
        p.probe_interval = Duration::hours(1);
        p.jitter = 0.0;
        let d = domain();
        // Period (Moscow day) starts 2026-01-09T21:00Z; t0 is 12:00Z.
        let mut rec = testing(t0(), &p);
        let mut at = t0();
        // ns2 down at 12:00, 13:00, 14:00 → 2 h accrued (at budget: ok).
        for _ in 0..3 {
            let (r, _, _) = step(&rec, &d, Some(report(at, [true, false], false)), at, &p);
            rec = r;
            at += Duration::hours(1);
        }
        assert_eq!(rec.downtime[1].unreachable_ms, 2 * 3600 * 1000);
        // Down at 15:00 too: 2.5 h after the half interval to 15:00... then
        // up at 15:00 is the other half: 2h30 > 2h.
        let (r, _, _) = step(&rec, &d, Some(report(at, [true, true], true)), at, &p);
        assert_eq!(r.downtime[1].unreachable_ms, 2 * 3600 * 1000 + 1800 * 1000);
        assert_eq!(
            r.state,
            DelegationState::Testing,
            "passing round over budget"
        );
        assert_eq!(
            over_budget(&r.downtime, at, &p),
            vec!["ns2.example.net".to_string()]
        );
        // The next Moscow day starts at 21:00Z: budget fresh, a pass delegates.
        let next_day = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
        let (r, _, _) = step(
            &r,
            &d,
            Some(report(next_day - S, [true, true], true)),
            next_day - S,
            &p,
        );
        assert_eq!(r.state, DelegationState::Testing, "still the old day");
        let (r, _, _) = step(
            &r,
            &d,
            Some(report(next_day, [true, true], true)),
            next_day,
            &p,
        );
        assert_eq!(r.state, DelegationState::Delegated);
    }

    #[test]
    fn window_end_fails_the_test_exactly_at_its_end() {
        let p = pol();
        let d = domain();
        let rec = testing(t0(), &p);
        let end = t0() + Duration::days(4);
        assert_eq!(rec.window_end, Some(end));
        // A round near the end schedules the end itself as the last look.
        let late = end - Duration::minutes(3);
        let (r, _, _) = step(&rec, &d, Some(report(late, [true, true], false)), late, &p);
        assert_eq!(r.next_probe, Some(end));
        // One millisecond before the end a round still runs, and can pass.
        let just = end - Duration::milliseconds(1);
        let (ok, _, _) = step(&r, &d, Some(report(just, [true, true], true)), just, &p);
        assert_eq!(ok.state, DelegationState::Delegated);
        // At the end: test_failed, no probe, no next probe.
        let (f, e, how) = step(&r, &d, None, end, &p);
        assert_eq!(
            (how, f.state, f.next_probe),
            ("write", DelegationState::TestFailed, None)
        );
        assert!(e.unwrap().reason.contains("test window ended"));
        assert_eq!(step(&f, &d, None, end + S, &p).2, "idle");
        assert_eq!(due_of(&f), None);
        // Retest: a fresh window.
        let (rt, _) = on_retest(&f, end + S, p.test_window).unwrap();
        assert_eq!(rt.window_start, Some(end + S));
        assert_eq!(due_of(&rt), Some(end + S));
    }

    fn delegated(p: &Policy, d: &Domain) -> DelegationRecord {
        let rec = testing(t0(), p);
        let (r, _, _) = step(&rec, d, Some(report(t0(), [true, true], true)), t0(), p);
        assert_eq!(r.state, DelegationState::Delegated);
        r
    }

    #[test]
    fn monitoring_violation_report_and_suspend_then_recovery() {
        for policy in [OnViolation::Report, OnViolation::Suspend] {
            let mut p = pol();
            p.on_violation = policy;
            let d = domain();
            let rec = delegated(&p, &d);
            // Unreachable within budget: not a violation.
            let a = t0() + Duration::hours(1);
            let (r, e, _) = step(&rec, &d, Some(report(a, [false, true], false)), a, &p);
            assert_eq!(
                (r.state, r.violation.clone(), e),
                (DelegationState::Delegated, None, None)
            );
            // Wrong data from a server that answers: a violation.
            let b = a + Duration::hours(1);
            let (r, e, _) = step(&r, &d, Some(report(b, [true, true], false)), b, &p);
            let v = r.violation.clone().unwrap();
            assert_eq!(v.since, b);
            assert_eq!(v.finding_ids, vec!["NS_SET_MISMATCH".to_string()]);
            let e = e.unwrap();
            match policy {
                OnViolation::Report => {
                    assert_eq!(r.state, DelegationState::Delegated);
                    assert!(
                        e.reason.starts_with("violation: NS_SET_MISMATCH"),
                        "{}",
                        e.reason
                    );
                }
                OnViolation::Suspend => {
                    assert_eq!(r.state, DelegationState::Suspended);
                    assert!(e.reason.starts_with("suspended: violation"), "{}", e.reason);
                }
            }
            // Still failing: no new event, `since` kept.
            let c = b + Duration::hours(1);
            let (r, e, _) = step(&r, &d, Some(report(c, [true, true], false)), c, &p);
            assert!(e.is_none());
            assert_eq!(r.violation.as_ref().unwrap().since, b);
            // Recovery clears it (and un-suspends).
            let dd = c + Duration::hours(1);
            let (r, e, _) = step(&r, &d, Some(report(dd, [true, true], true)), dd, &p);
            assert_eq!(
                (r.state, r.violation.clone()),
                (DelegationState::Delegated, None)
            );
            assert!(e.unwrap().reason.contains("violation cleared"));
        }
    }

    #[test]
    fn monitoring_budget_exceeded_is_a_violation() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let mut r = delegated(&p, &d);
        let mut at = t0();
        let mut last = None;
        for _ in 0..4 {
            at += Duration::hours(1);
            let (n, e, _) = step(&r, &d, Some(report(at, [true, false], false)), at, &p);
            r = n;
            last = e.or(last);
        }
        // 0.5 + 1 + 1 + 1 h: over the 2 h budget.
        assert_eq!(r.state, DelegationState::Suspended);
        let v = r.violation.clone().unwrap();
        assert_eq!(v.finding_ids, vec![DOWNTIME_BUDGET_ID.to_string()]);
        assert!(v.message.contains("ns2.example.net"), "{}", v.message);
        assert!(last.unwrap().reason.contains("DOWNTIME_BUDGET"));
        // Back up, but the day's budget is spent: stays suspended until the
        // next period.
        at += Duration::hours(1);
        let (r, _, _) = step(&r, &d, Some(report(at, [true, true], true)), at, &p);
        assert_eq!(r.state, DelegationState::Suspended);
        let next_day = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
        let (r, e, _) = step(
            &r,
            &d,
            Some(report(next_day, [true, true], true)),
            next_day,
            &p,
        );
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(e.unwrap().reason.contains("violation cleared"));
    }

    #[test]
    fn lifecycle_blocks_suspend_and_lift() {
        let p = pol();
        let mut d = domain();
        let rec = delegated(&p, &d);
        let at = t0() + Duration::hours(1);
        d.hold = Some(Hold {
            since: at,
            reason: "court".into(),
        });
        let (s, e, how) = step(&rec, &d, None, at, &p);
        assert_eq!((how, s.state), ("write", DelegationState::Suspended));
        assert_eq!(s.blocked, vec!["hold".to_string()]);
        assert_eq!(s.blocked_since, Some(at));
        assert_eq!(e.unwrap().reason, "suspended: hold");
        // Still held: nothing written, no probe.
        assert_eq!(step(&s, &d, None, at + Duration::hours(1), &p).2, "wait");
        // Released and the servers pass: delegated again.
        d.hold = None;
        let b = at + Duration::hours(2);
        let (r, e, how) = step(&s, &d, Some(report(b, [true, true], true)), b, &p);
        assert_eq!((how, r.state), ("probe", DelegationState::Delegated));
        assert!(r.blocked.is_empty() && r.blocked_since.is_none());
        assert!(e.unwrap().reason.contains("block lifted (hold)"));
        // Released but the servers fail: testing with a fresh window.
        let (r, e, _) = step(&s, &d, Some(report(b, [true, true], false)), b, &p);
        assert_eq!(
            (r.state, r.window_start, r.rounds),
            (DelegationState::Testing, Some(b), 1)
        );
        assert_eq!(r.window_end, Some(b + p.test_window));
        assert!(e.unwrap().reason.contains("test window restarted"));
    }

    #[test]
    fn expiry_pauses_testing_and_renewal_restarts_the_window() {
        let p = pol();
        let mut d = domain();
        d.paid_till = t0() + Duration::days(1);
        let rec = testing(t0(), &p);
        // The next look is capped at the expiry instant.
        let (r, _, _) = step(
            &rec,
            &d,
            Some(report(
                t0() + Duration::hours(23) + Duration::minutes(55),
                [true, true],
                false,
            )),
            t0() + Duration::hours(23) + Duration::minutes(55),
            &p,
        );
        assert_eq!(r.next_probe, Some(d.paid_till + Duration::milliseconds(1)));
        let exp = d.paid_till + Duration::milliseconds(1);
        let (r, e, how) = step(&r, &d, None, exp, &p);
        assert_eq!((how, r.state), ("write", DelegationState::Testing));
        assert_eq!(r.blocked, vec!["expired".to_string()]);
        assert_eq!(e.unwrap().reason, "testing paused: expired");
        // The window ends while blocked: no test_failed.
        let late = t0() + Duration::days(5);
        assert_eq!(step(&r, &d, None, late, &p).2, "wait");
        // Renewed: a fresh window, probed at once.
        d.paid_till += Duration::days(365);
        let (r, e, how) = step(&r, &d, None, late, &p);
        assert_eq!(
            (how, r.state, r.window_start, r.next_probe),
            ("write", DelegationState::Testing, Some(late), Some(late))
        );
        assert!(r.blocked.is_empty());
        assert!(e.unwrap().reason.contains("block lifted (expired)"));
        assert_eq!(
            step(&r, &d, Some(report(late, [true, true], true)), late, &p)
                .0
                .state,
            DelegationState::Delegated
        );
    }

    #[test]
    fn cancellation_drops_to_undelegated_and_restoring_restarts_testing() {
        let p = pol();
        let mut d = domain();
        let rec = delegated(&p, &d);
        d.paid_till = t0();
        let free = t0() + Duration::days(30) + Duration::milliseconds(1);
        let (r, e, _) = step(&rec, &d, None, free, &p);
        assert_eq!(r.state, DelegationState::Undelegated);
        assert_eq!(
            r.ns_fingerprint, rec.ns_fingerprint,
            "record stays about the set"
        );
        assert_eq!(r.next_probe, None);
        assert!(e.unwrap().reason.contains("not renewed"));
        // Still cancelled: nothing to do.
        assert_eq!(step(&r, &d, None, free + S, &p).2, "idle");
        // Restored by the operator (new paid_till): testing restarts.
        d.paid_till = free + Duration::days(365);
        let (t, e, how) = step(&r, &d, None, free + S, &p);
        assert_eq!(
            (how, t.state, t.window_start),
            ("write", DelegationState::Testing, Some(free + S))
        );
        assert!(e.unwrap().reason.contains("registration restored"));
        // A plain undelegated record (no servers) stays idle.
        let u = DelegationRecord::undelegated(t0());
        assert_eq!(step(&u, &d, None, t0(), &p).2, "idle");
        assert_eq!(due_of(&u), None);
    }

    #[test]
    fn next_lifecycle_change_points() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let ms = Duration::milliseconds(1);
        assert_eq!(
            next_lifecycle_change(&d, t0(), &cfg),
            Some(d.paid_till + ms)
        );
        d.verification_requested = Some(t0());
        assert_eq!(
            next_lifecycle_change(&d, t0(), &cfg),
            Some(t0() + Duration::days(14))
        );
        assert_eq!(
            next_lifecycle_change(&d, t0() + Duration::days(14), &cfg),
            Some(t0() + Duration::days(60))
        );
    }

    #[test]
    fn violation_findings_ignore_unreachable_servers() {
        let r = report(t0(), [false, true], false);
        assert!(violation_findings(&r).is_empty());
        let r = report(t0(), [true, true], false);
        assert_eq!(violation_findings(&r).len(), 1);
    }

    #[test]
    fn jitter_spreads_within_bounds_and_is_deterministic() {
        let i = Duration::minutes(10);
        let mut lo = i;
        let mut hi = i;
        for k in 0..1000 {
            let n = format!("d{k}.ru");
            let x = next_after(t0(), i, 0.2, &n) - t0();
            assert_eq!(x, next_after(t0(), i, 0.2, &n) - t0());
            lo = lo.min(x);
            hi = hi.max(x);
        }
        assert!(lo >= Duration::minutes(9) && hi <= Duration::minutes(11));
        assert!(hi - lo > Duration::minutes(1) + S * 30, "spread {lo}..{hi}");
        assert_eq!(next_after(t0(), i, 0.0, "x.ru") - t0(), i);
    }
}

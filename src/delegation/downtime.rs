//! Downtime accounting (docs/delegation.md: a server's total unreachability must not
//! exceed `downtime_budget` per `downtime_period`), pure.
//!
//! What counts as down:
//! - a **server** is down in a round when none of its addresses answers any
//!   query; it then accrues on its own entry (`address: None`);
//! - an **address** of a server that answers elsewhere is down when it
//!   answers nothing; it accrues on an entry of its own (`address:
//!   Some(..)`), created the first time it is down, with the same budget.
//!
//! How time is counted: an outage is measured by probes, never
//! extrapolated. The span between two *conclusive* probes is charged when
//! the earlier one saw the entry down (so an outage runs from its first
//! failing probe to its first answering one), and only when the two are at
//! most `reach` apart ([`Policy::reach_after`]: twice the interval plus
//! the earlier round's own duration plus the later round's queue lag; the
//! scheduler re-probes a failing
//! domain every `recheck_interval`; a larger gap means the registry was
//! not looking —
//! serve stopped, or its own network was down — and is not charged). The
//! reach also widens by the later round's measured queue lag (how late a
//! running scheduler started it), so a backlog does not silently stop the
//! budget from being enforced. A gap longer than the reach after a down
//! probe is *unmeasured time*: not charged, but kept per entry and period
//! (`unmeasured_ms`) and shown (API, WHOIS, dashboard) instead of
//! vanishing. A probe of an inconclusive round (the registry's own outage)
//! breaks the chain: nothing before or after it is bridged across it. Spans
//! are split at period boundaries; periods are aligned to
//! `downtime_utc_offset` (a `1d` period is the Moscow calendar day by
//! default).

use chrono::Duration;

use super::Policy;
use crate::model::{ServerDowntime, ServerReport, Timestamp};

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

/// An entry's downtime in the period containing `now` (0 when its figure
/// belongs to an earlier period). For the API and WHOIS.
pub fn downtime_ms_now(d: &ServerDowntime, now: Timestamp, pol: &Policy) -> u64 {
    if d.period_start == period_start(now, pol.downtime_period, pol.downtime_utc_offset) {
        d.unreachable_ms
    } else {
        0
    }
}

/// An entry's unmeasured time in the period containing `now` (0 when its
/// figure belongs to an earlier period). For the API, WHOIS and dashboard.
pub fn unmeasured_ms_now(d: &ServerDowntime, now: Timestamp, pol: &Policy) -> u64 {
    if d.period_start == period_start(now, pol.downtime_period, pol.downtime_utc_offset) {
        d.unmeasured_ms
    } else {
        0
    }
}

/// Start the figures of a later period.
fn new_period(d: &mut ServerDowntime, ps: Timestamp) {
    d.period_start = ps;
    d.unreachable_ms = 0;
    d.unreachable_secs = 0;
    d.unmeasured_ms = 0;
}

/// Add the span `[a, b)` to `d` (to the charged downtime, or with
/// `unmeasured` to the unmeasured time), split at period boundaries.
/// Parts in periods before `d.period_start` are closed and ignored; a part
/// in a later period starts that period's figures afresh.
fn add_span(d: &mut ServerDowntime, a: Timestamp, b: Timestamp, unmeasured: bool, pol: &Policy) {
    let mut a = a;
    while a < b {
        let ps = period_start(a, pol.downtime_period, pol.downtime_utc_offset);
        let pe = ps + pol.downtime_period;
        let end = b.min(pe);
        let ms = u64::try_from((end - a).num_milliseconds()).unwrap_or(0);
        if ps > d.period_start {
            new_period(d, ps);
        }
        if ps == d.period_start {
            let f = if unmeasured {
                &mut d.unmeasured_ms
            } else {
                &mut d.unreachable_ms
            };
            *f = f.saturating_add(ms);
        }
        d.unreachable_secs = d.unreachable_ms / 1000;
        a = end;
    }
}

/// Account one probe of one entry at `t`: `Some(up)` for a conclusive
/// probe, `None` when the round said nothing about it (the registry's own
/// outage; an address of a server that was down as a whole).
pub fn accrue(
    d: &mut ServerDowntime,
    reachable: Option<bool>,
    t: Timestamp,
    reach: Duration,
    pol: &Policy,
) {
    if let (Some(t0), Some(false), Some(_)) = (d.last_probe, d.last_reachable, reachable) {
        if t > t0 {
            // Beyond reach the registry was not looking: the gap is shown
            // as unmeasured, never charged.
            add_span(d, t0, t, t - t0 > reach, pol);
        }
    }
    let ps = period_start(t, pol.downtime_period, pol.downtime_utc_offset);
    if ps > d.period_start {
        new_period(d, ps);
    }
    match reachable {
        Some(up) => {
            if d.last_probe.is_none_or(|t0| t >= t0) {
                d.last_probe = Some(t);
                d.last_reachable = Some(up);
            }
        }
        // The last state seen is kept (the outage detector asks which
        // servers answered before), but nothing bridges this probe.
        None => d.last_probe = None,
    }
}

fn entry(
    server: crate::names::HostName,
    address: Option<String>,
    t: Timestamp,
    pol: &Policy,
) -> ServerDowntime {
    ServerDowntime {
        server,
        period_start: period_start(t, pol.downtime_period, pol.downtime_utc_offset),
        unreachable_secs: 0,
        unreachable_ms: 0,
        last_reachable: None,
        last_probe: None,
        address,
        unmeasured_ms: 0,
    }
}

/// Update the downtime entries with the servers of one round (`conclusive`
/// false: an inconclusive round, which charges nothing and breaks every
/// chain). Servers not in the round are dropped (the NS set is fixed for a
/// record), new ones start at zero; an address entry is kept only while it
/// has downtime in the current period or is down.
///
/// Round times are taken to the millisecond, so replaying the stored
/// rounds gives exactly the stored figures.
pub fn accrue_round(
    downtime: &[ServerDowntime],
    at: Timestamp,
    servers: &[ServerReport],
    conclusive: bool,
    reach: Duration,
    pol: &Policy,
) -> Vec<ServerDowntime> {
    let t = chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        let Ok(server) = crate::names::parse_host(&s.name) else {
            continue;
        };
        let mut d = downtime
            .iter()
            .find(|d| d.server == server && d.address.is_none())
            .cloned()
            .unwrap_or_else(|| entry(server.clone(), None, t, pol));
        accrue(&mut d, conclusive.then_some(s.reachable), t, reach, pol);
        out.push(d);
        if s.addresses.len() < 2 {
            // One address: the address is the server.
            continue;
        }
        for a in &s.addresses {
            let dead = s.unreachable_addresses.contains(a);
            let old = downtime
                .iter()
                .find(|d| d.server == server && d.address.as_deref() == Some(a.as_str()));
            let seen = (conclusive && s.reachable).then_some(!dead);
            let mut d = match old {
                Some(d) => d.clone(),
                None if seen == Some(false) => entry(server.clone(), Some(a.clone()), t, pol),
                None => continue,
            };
            accrue(&mut d, seen, t, reach, pol);
            if downtime_ms_now(&d, t, pol) > 0 || d.last_reachable == Some(false) {
                out.push(d);
            }
        }
    }
    out
}

/// Human label of an entry: `ns1.example.ru` or `ns1.example.ru (192.0.2.1)`.
pub fn label(d: &ServerDowntime) -> String {
    match &d.address {
        None => d.server.as_str().to_string(),
        Some(a) => format!("{} ({a})", d.server.as_str()),
    }
}

/// Entries over the downtime budget in the period containing `t`.
pub fn over_budget(downtime: &[ServerDowntime], t: Timestamp, pol: &Policy) -> Vec<String> {
    let budget = u64::try_from(pol.downtime_budget.num_milliseconds()).unwrap_or(0);
    downtime
        .iter()
        .filter(|d| downtime_ms_now(d, t, pol) > budget)
        .map(label)
        .collect()
}

/// Entries over budget that are down right now (their last conclusive
/// probe failed): a monitoring violation. Once the server answers again
/// the day's figure no longer keeps the domain out.
pub fn down_over_budget(downtime: &[ServerDowntime], t: Timestamp, pol: &Policy) -> Vec<String> {
    let budget = u64::try_from(pol.downtime_budget.num_milliseconds()).unwrap_or(0);
    downtime
        .iter()
        .filter(|d| d.last_reachable == Some(false) && downtime_ms_now(d, t, pol) > budget)
        .map(label)
        .collect()
}

//! The API's response bodies and how records become them.

use serde::Serialize;

use crate::config::Config;
use crate::lifecycle::{self, Status};
use crate::model::{
    DelegationRecord, DelegationState, Domain, Finding, HistoryEvent, ServerReport, Timestamp,
    Violation,
};

// ---- responses -----------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct NameserverOut {
    pub name: String,
    pub addresses: Vec<std::net::IpAddr>,
}

#[derive(Debug, Serialize)]
pub struct RoundOut {
    pub at: Timestamp,
    pub passed: bool,
    pub duration_ms: u64,
    pub findings: Vec<Finding>,
    pub servers: Vec<ServerReport>,
    /// Set when the registry's own outage made the round say nothing
    /// about these servers (nothing was charged): the reason.
    pub inconclusive: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ServerDowntimeOut {
    pub server: String,
    /// Seconds of total unreachability in the current accounting period.
    pub unreachable_secs: u64,
    /// Budget left in the current period.
    pub remaining_secs: u64,
    pub last_reachable: Option<bool>,
    pub last_probe: Option<Timestamp>,
    /// Addresses of this server that were down while it answered on
    /// another: each has a budget of its own.
    pub addresses: Vec<AddressDowntimeOut>,
    /// Seconds in the current period the server was down at its last
    /// look and the registry did not probe again within reach: not
    /// charged (docs/delegation.md, "Unmeasured time").
    pub unmeasured_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct AddressDowntimeOut {
    pub address: String,
    pub unreachable_secs: u64,
    pub remaining_secs: u64,
    pub last_reachable: Option<bool>,
    /// As [`ServerDowntimeOut::unmeasured_secs`], for this address.
    pub unmeasured_secs: u64,
}

/// A newly declared NS set under test while the domain stays delegated
/// on the set in the zone.
#[derive(Debug, Serialize)]
pub struct PendingOut {
    /// `testing`, or `test_failed` when its window ran out (the change
    /// failed; retest or declare again).
    pub state: DelegationState,
    pub nameservers: Vec<NameserverOut>,
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    pub rounds: u32,
    pub last_round: Option<RoundOut>,
    pub next_probe: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
pub struct DowntimeOut {
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub budget_secs: u64,
    pub servers: Vec<ServerDowntimeOut>,
}

/// `GET …/delegation`: the whole progress of a domain's delegation.
#[derive(Debug, Serialize)]
pub struct DelegationView {
    pub domain: String,
    pub unicode_name: String,
    pub state: DelegationState,
    /// In the parent zone right now (delegated and not blocked).
    pub in_zone: bool,
    pub nameservers: Vec<NameserverOut>,
    /// The declared DS set (empty: unsigned delegation).
    pub ds: Vec<crate::model::DsRecord>,
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    /// Seconds left in the test window while testing.
    pub window_remaining_secs: Option<i64>,
    pub rounds: u32,
    pub last_round: Option<RoundOut>,
    pub downtime: DowntimeOut,
    pub next_probe: Option<Timestamp>,
    pub violation: Option<Violation>,
    /// The last violation that ended, with its start (`since`) and end
    /// (`until`).
    pub last_violation: Option<Violation>,
    /// Failing monitoring rounds not (yet) confirmed as a violation.
    pub failing: Option<crate::model::FailStreak>,
    /// The NS set in the zone (differs from `nameservers` while a change
    /// is pending).
    pub zone_nameservers: Vec<NameserverOut>,
    pub pending: Option<PendingOut>,
    /// Conclusive probing time the current test window has used.
    pub window_used_secs: Option<u64>,
    pub delegated_at: Option<Timestamp>,
    pub changed_at: Timestamp,
    pub lifecycle: Status,
    /// The latest state changes, oldest first.
    pub history: Vec<HistoryOut>,
}

#[derive(Debug, Serialize)]
pub struct HistoryOut {
    pub at: Timestamp,
    pub from: Option<DelegationState>,
    pub to: DelegationState,
    pub reason: String,
}

/// History events as a registrar may see them: the registry's hold reason
/// is an internal note, so it is replaced by a neutral text.
pub fn history_out(events: Vec<HistoryEvent>) -> Vec<HistoryOut> {
    events
        .into_iter()
        .map(|e| HistoryOut {
            at: e.at,
            from: e.from,
            to: e.to,
            reason: public_reason(e.reason),
        })
        .collect()
}

/// An event text as a registrar may see it: operator notes (hold and
/// dispute reasons) are replaced by neutral texts.
pub fn public_reason(reason: String) -> String {
    crate::public::event_reason(&reason)
}

pub fn delegation_view(
    cfg: &Config,
    domain: &Domain,
    rec: &DelegationRecord,
    now: Timestamp,
) -> DelegationView {
    let st = lifecycle::evaluate(domain, now, &cfg.lifecycle);
    let start = crate::delegation::downtime_period_start(now, cfg);
    let budget = cfg.delegation.downtime_budget.as_secs();
    let zone_set = rec.zone_set(&domain.nameservers);
    let servers = zone_set
        .iter()
        .map(|ns| {
            let d = rec
                .downtime
                .iter()
                .find(|d| d.server == ns.name && d.address.is_none());
            let used = d
                .filter(|d| d.period_start >= start)
                .map(|d| d.unreachable_secs)
                .unwrap_or(0);
            let addresses = rec
                .downtime
                .iter()
                .filter(|d| d.server == ns.name)
                .filter_map(|d| {
                    let a = d.address.clone()?;
                    let (used, unmeasured) = if d.period_start >= start {
                        (d.unreachable_secs, d.unmeasured_ms.div_ceil(1000))
                    } else {
                        (0, 0)
                    };
                    Some(AddressDowntimeOut {
                        address: a,
                        unreachable_secs: used,
                        remaining_secs: budget.saturating_sub(used),
                        last_reachable: d.last_reachable,
                        unmeasured_secs: unmeasured,
                    })
                })
                .collect();
            ServerDowntimeOut {
                server: ns.name.as_str().to_string(),
                unreachable_secs: used,
                remaining_secs: budget.saturating_sub(used),
                last_reachable: d.and_then(|d| d.last_reachable),
                last_probe: d.and_then(|d| d.last_probe),
                addresses,
                unmeasured_secs: d
                    .filter(|d| d.period_start >= start)
                    .map_or(0, |d| d.unmeasured_ms.div_ceil(1000)),
            }
        })
        .collect();
    let window_remaining_secs = match (rec.state, rec.window_end) {
        (DelegationState::Testing, Some(end)) => Some((end - now).num_seconds().max(0)),
        _ => None,
    };
    DelegationView {
        domain: domain.name.as_str().to_string(),
        unicode_name: domain.name.to_unicode(),
        state: rec.state,
        in_zone: lifecycle::in_zone(rec, &st),
        nameservers: domain
            .nameservers
            .iter()
            .map(|n| NameserverOut {
                name: n.name.as_str().to_string(),
                addresses: n.addresses.clone(),
            })
            .collect(),
        ds: domain.ds.clone(),
        window_start: rec.window_start,
        window_end: rec.window_end,
        window_remaining_secs,
        rounds: rec.rounds,
        last_round: rec.last_round.as_ref().map(round_out),
        downtime: DowntimeOut {
            period_start: start,
            period_end: start + Config::chrono(cfg.delegation.downtime_period),
            budget_secs: budget,
            servers,
        },
        next_probe: rec.next_probe,
        violation: rec.violation.clone(),
        last_violation: rec.last_violation.clone(),
        failing: rec.failing.clone(),
        zone_nameservers: ns_out(zone_set),
        pending: rec.pending.as_ref().map(|p| PendingOut {
            state: p.state,
            nameservers: ns_out(&domain.nameservers),
            window_start: p.window_start,
            window_end: p.window_end,
            rounds: p.rounds,
            last_round: p.last_round.as_ref().map(round_out),
            next_probe: p.next_probe,
        }),
        window_used_secs: (rec.state == DelegationState::Testing
            || rec.state == DelegationState::TestFailed)
            .then_some(rec.window_used_ms / 1000),
        delegated_at: rec.delegated_at,
        changed_at: rec.changed_at,
        lifecycle: st,
        history: Vec::new(),
    }
}

fn ns_out(ns: &[crate::model::Nameserver]) -> Vec<NameserverOut> {
    ns.iter()
        .map(|n| NameserverOut {
            name: n.name.as_str().to_string(),
            addresses: n.addresses.clone(),
        })
        .collect()
}

fn round_out(r: &crate::model::RoundSummary) -> RoundOut {
    RoundOut {
        at: r.at,
        passed: r.passed,
        duration_ms: r.duration_ms,
        findings: r.findings.clone(),
        servers: r.servers.clone(),
        inconclusive: r.inconclusive.clone(),
    }
}

#[derive(Debug, Serialize)]
pub struct DomainItem {
    pub name: String,
    pub unicode_name: String,
    pub state: DelegationState,
    pub in_zone: bool,
}

#[derive(Debug, Serialize)]
pub struct DomainList {
    pub domains: Vec<DomainItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

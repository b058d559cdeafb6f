//! What safe decisions cost in probes: a simulated day of monitoring for
//! a sample of delegated domains, run through the real state machine
//! (`delegation::plan` / `on_round`, the same pure functions the
//! scheduler calls), once with the registry's policy (re-probe failing
//! rounds every `recheck_interval`, confirm violations over 3 rounds /
//! 15 min) and once with the baseline of hourly rounds only (recheck =
//! monitor interval, sanction on the first failing round: the behaviour
//! before confirmation). Reported per day and scaled to 1M domains, with
//! the CPU per simulated round of both.
//!
//! The failure model (per domain per day; deterministic from the seed):
//! - 1 % one bad reply (the first probe after a random instant fails);
//! - 0.5 % a server outage of 5 min – 3 h starting at a random time;
//! - 0.2 % a SOA serial lag of 1–10 minutes;
//! - 0.1 % broken all day (wrong NS set);
//! - everything else answers every round.
//!
//! Run: `cargo bench --bench safe_decisions` (`ZK_BENCH_DOMAINS`, default
//! 100000, sampled domains).

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use zonekeeper::config::{DelegationConfig, LifecycleConfig, OnViolation};
use zonekeeper::delegation::{self, DecisionCtx, Plan, Policy};
use zonekeeper::lifecycle;
use zonekeeper::model::{
    ns_fingerprint, CheckReport, DelegationRecord, DelegationState, Domain, Finding, Nameserver,
    ServerReport, Severity, Timestamp, Verdict,
};
use zonekeeper::names::{parse_host, DomainName};

#[derive(Clone, Copy)]
enum Fault {
    None,
    /// The first probe at or after this second of the day fails.
    OneBadReply(i64),
    /// ns2 down from (second, for seconds).
    Outage(i64, i64),
    /// ns2 serves an old serial from (second, for seconds).
    SerialLag(i64, i64),
    Broken,
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The report of a probe at `at`; `fired` records that the one bad reply
/// has been given (it affects exactly one probe).
fn report(at: Timestamp, fault: Fault, t0: Timestamp, fired: &mut bool) -> CheckReport {
    let s = (at - t0).num_seconds();
    let (ns2_up, bad) = match fault {
        Fault::None => (true, None),
        Fault::OneBadReply(x) => {
            let now = s >= x && !*fired;
            *fired |= now;
            (true, now.then_some("MALFORMED_REPLY"))
        }
        Fault::Outage(a, d) => (!(s >= a && s < a + d), None),
        Fault::SerialLag(a, d) => (true, (s >= a && s < a + d).then_some("SOA_CONSISTENT")),
        Fault::Broken => (true, Some("NS_SET_MATCHES")),
    };
    let mut findings = Vec::new();
    if !ns2_up {
        findings.push(Finding {
            id: "RESPONSIVE".into(),
            severity: Severity::Error,
            server: Some("ns2.example.net".into()),
            address: Some("192.0.2.2".into()),
            message: "no answer".into(),
        });
    }
    if let Some(id) = bad {
        findings.push(Finding {
            id: id.into(),
            severity: Severity::Error,
            server: Some("ns2.example.net".into()),
            address: None,
            message: "bad".into(),
        });
    }
    let servers = ["ns1.example.net", "ns2.example.net"]
        .iter()
        .zip([true, ns2_up])
        .map(|(n, up)| ServerReport {
            name: n.to_string(),
            addresses: vec![],
            reachable: up,
            soa_serial: up.then_some(1),
            rtt_ms: Some(1),
            unreachable_addresses: vec![],
        })
        .collect();
    CheckReport {
        domain: "example.ru".into(),
        verdict: if findings.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        checked_at: at,
        duration_ms: 1,
        findings,
        servers,
    }
}

struct Day {
    probes: u64,
    suspensions: u64,
    cpu: std::time::Duration,
}

fn simulate(n: usize, pol: &Policy, seed0: u64) -> Day {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
    let end = t0 + Duration::days(1);
    let created = t0 - Duration::days(30);
    let ns: Vec<Nameserver> = ["ns1.example.net", "ns2.example.net"]
        .iter()
        .map(|h| Nameserver {
            name: parse_host(h).unwrap(),
            addresses: vec![],
        })
        .collect();
    let domain = Domain {
        name: DomainName::from_trusted("example.ru".into()),
        registrar: "R".into(),
        registrant: "C".into(),
        admin: None,
        tech: None,
        created,
        paid_till: created + Duration::days(365),
        nameservers: ns.clone(),
        auth_info: None,
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: created,
        registration: Default::default(),
        ds: Vec::new(),
    };
    let lc = LifecycleConfig::default();
    let status = lifecycle::evaluate(&domain, t0, &lc);
    let mut seed = seed0;
    let mut day = Day {
        probes: 0,
        suspensions: 0,
        cpu: std::time::Duration::ZERO,
    };
    let start = Instant::now();
    for i in 0..n {
        let r = rng(&mut seed) % 10_000;
        let mut at = || (rng(&mut seed) % 86_400) as i64;
        let fault = match r {
            0..100 => Fault::OneBadReply(at()),
            100..150 => Fault::Outage(at(), 300 + at() % 10_500),
            150..170 => Fault::SerialLag(at(), 60 + at() % 540),
            170..180 => Fault::Broken,
            _ => Fault::None,
        };
        let mut rec = DelegationRecord::testing(ns_fingerprint(&ns), t0, pol.test_window);
        rec.state = DelegationState::Delegated;
        rec.delegated_at = Some(t0);
        // Spread the first look over the first hour, as the jitter does.
        rec.next_probe = Some(t0 + Duration::seconds((i as i64 * 3600) / n.max(1) as i64));
        let name = format!("d{i}.ru");
        let mut fired = false;
        while let Some(t) = rec.next_probe {
            if t >= end {
                break;
            }
            let ctx = DecisionCtx {
                now: t,
                status: &status,
                lifecycle_next: None,
                queue_lag_ms: 0,
            };
            if delegation::plan(&rec, &ctx, pol) != Plan::Probe {
                break;
            }
            day.probes += 1;
            let rep = report(t, fault, t0, &mut fired);
            let was = rec.state;
            let (r, _) = delegation::on_round(&rec, &rep, &ctx, pol, &name, None);
            if was != DelegationState::Suspended && r.state == DelegationState::Suspended {
                day.suspensions += 1;
            }
            rec = r;
        }
    }
    day.cpu = start.elapsed();
    day
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: usize = std::env::var("ZK_BENCH_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let cfg = DelegationConfig {
        on_violation: OnViolation::Suspend,
        ..DelegationConfig::default()
    };
    let safe = Policy::from_config(&cfg);
    let mut base = safe.clone();
    base.recheck_interval = base.monitor_interval;
    base.violation_confirmations = 1;
    base.violation_min_span = Duration::zero();
    let seed = 0x9e37_79b9_7f4a_7c15;
    let b = simulate(n, &base, seed);
    let s = simulate(n, &safe, seed);
    let scale = 1_000_000.0 / n as f64;
    let per_round = |d: &Day| d.cpu.as_secs_f64() * 1e6 / d.probes.max(1) as f64;
    println!(
        "safe decisions: one simulated day of monitoring, {n} delegated domains (scaled to 1M)"
    );
    println!(
        "  baseline (hourly rounds, sanction on the first failing round): {:.0} probes/day, {:.0} suspensions, {:.2} µs CPU per simulated round",
        b.probes as f64 * scale,
        b.suspensions as f64 * scale,
        per_round(&b)
    );
    println!(
        "  safe decisions (re-probe every {} s, confirm {} rounds over {} s): {:.0} probes/day, {:.0} suspensions, {:.2} µs CPU per simulated round",
        safe.recheck_interval.num_seconds(),
        safe.violation_confirmations,
        safe.violation_min_span.num_seconds(),
        s.probes as f64 * scale,
        s.suspensions as f64 * scale,
        per_round(&s)
    );
    let extra = s.probes as f64 - b.probes as f64;
    println!(
        "  extra probes: {:.0}/day at 1M ({:+.2} % of the baseline)",
        extra * scale,
        extra * 100.0 / b.probes.max(1) as f64
    );
}

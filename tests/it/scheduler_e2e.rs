//! The scheduler end to end: the real verifier probing real loopback DNS
//! servers (started and stopped during the test to simulate outages), the
//! real redb store, and periods shrunk to seconds — the 4-day window, the
//! 2-hour budget and the day boundary all happen within the test.

use crate::support;
use std::sync::Arc;
use std::time::Duration;

use support::dns;
use support::sched::*;
use zonekeeper::app::App;
use zonekeeper::clock::{Clock, SystemClock};
use zonekeeper::config::{Config, OnViolation};
use zonekeeper::delegation::{self, Policy};
use zonekeeper::model::{DelegationState, HistoryEvent, Nameserver};
use zonekeeper::scheduler;

fn glue(z: &dns::LabZone) -> Vec<Nameserver> {
    z.ns.iter().map(|(n, ip)| ns(n, &[*ip])).collect()
}

fn e2e_config(port: u16) -> Config {
    let mut c = fast_config();
    let d = &mut c.delegation;
    d.probe_interval = Duration::from_millis(200);
    d.monitor_interval = Duration::from_millis(200);
    d.test_window = Duration::from_secs(3);
    d.downtime_period = Duration::from_secs(4);
    d.downtime_budget = Duration::from_secs(1);
    d.on_violation = OnViolation::Suspend;
    c.probe.port = port;
    c.probe.timeout = Duration::from_millis(400);
    c.probe.retries = 0;
    // Names carry glue; a closed loopback port keeps lookups off the host.
    c.probe.resolvers = vec!["127.0.0.1:9".parse().unwrap()];
    c.zones = vec!["ru".into()];
    c
}

fn st(app: &App, d: &str) -> DelegationState {
    app.store().delegation(d).unwrap().unwrap().state
}

fn reasons(h: &[HistoryEvent]) -> Vec<String> {
    h.iter()
        .map(|e| format!("{:?}->{:?}: {}", e.from, e.to, e.reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_budget_and_day_boundary_against_real_servers() {
    let block = dns::loopback_block();
    let ips: Vec<_> = (1..=8).map(|h| dns::ip(block, h)).collect();
    let port = dns::common_port(&ips).await;
    let z_up = dns::zone("up.ru", block, &[1, 2]);
    let z_dead = dns::zone("dead.ru", block, &[3, 4]);
    let z_blip = dns::zone("blip.ru", block, &[5, 6]);
    let z_mon = dns::zone("mon.ru", block, &[7, 8]);
    let start = |z: &dns::LabZone, i: usize| {
        let z = z.clone();
        let ip = z.ns[i].1;
        async move { z.serve_on(ip, port).await }
    };
    let _up = (start(&z_up, 0).await, start(&z_up, 1).await);
    let _dead1 = start(&z_dead, 0).await; // ns2.dead.ru never answers
    let _blip1 = start(&z_blip, 0).await;
    let _mon1 = start(&z_mon, 0).await;
    let mut mon2 = Some(start(&z_mon, 1).await);

    let cfg = e2e_config(port);
    let pol = Policy::from_config(&cfg.delegation);
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let store = store_with(
        &dir.path().join("z.redb"),
        vec![
            domain("up.ru", glue(&z_up), now),
            domain("dead.ru", glue(&z_dead), now),
            domain("blip.ru", glue(&z_blip), now),
            domain("mon.ru", glue(&z_mon), now),
        ],
        cfg.delegation.test_window,
    );
    let app = App::new(cfg, store, Arc::new(SystemClock)).unwrap();
    let zone = app.zone_dirty().clone();
    let zone_notice = tokio::spawn(async move { zone.notified().await });
    let task = tokio::spawn(scheduler::run(app.clone()));

    // blip.ru's ns2 comes up after a short outage (within the budget).
    let blip2 = {
        let z = z_blip.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            z.serve_on(z.ns[1].1, port).await
        })
    };
    // All servers answer: delegated on the first round; the zone writer hears.
    assert!(
        wait_for(Duration::from_secs(3), || st(&app, "up.ru")
            == DelegationState::Delegated)
        .await
    );
    tokio::time::timeout(Duration::from_secs(1), zone_notice)
        .await
        .unwrap()
        .unwrap();
    let _blip2 = blip2.await.unwrap();
    // Delegated once ns2 answers (in the next period at worst, if a loaded
    // machine stretched the outage past the budget).
    assert!(
        wait_for(Duration::from_secs(8), || st(&app, "blip.ru")
            == DelegationState::Delegated)
        .await
    );
    let rec = app.store().delegation("blip.ru").unwrap().unwrap();
    let ns2 = rec
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.blip.ru")
        .unwrap();
    assert!(
        ns2.last_reachable == Some(true) && ns2.unreachable_ms <= 1000,
        "{ns2:?}"
    );

    // mon.ru: delegated, then its ns2 goes away for longer than the budget.
    assert!(
        wait_for(Duration::from_secs(3), || st(&app, "mon.ru")
            == DelegationState::Delegated)
        .await
    );
    mon2.take();
    assert!(
        wait_for(Duration::from_secs(10), || st(&app, "mon.ru")
            == DelegationState::Suspended)
        .await
    );
    let v = app
        .store()
        .delegation("mon.ru")
        .unwrap()
        .unwrap()
        .violation
        .unwrap();
    assert_eq!(
        v.finding_ids,
        vec![delegation::DOWNTIME_BUDGET_ID.to_string()],
        "{v:?}"
    );
    let _mon2 = start(&z_mon, 1).await;
    // Back and passing: delegated again at its first clean round, even
    // though the period's budget is spent (the violation stays recorded).
    assert!(
        wait_for(Duration::from_secs(12), || st(&app, "mon.ru")
            == DelegationState::Delegated)
        .await
    );
    let h = app.store().history("mon.ru", 100).unwrap();
    let susp = h
        .iter()
        .find(|e| e.to == DelegationState::Suspended)
        .unwrap();
    let back = h
        .iter()
        .rev()
        .find(|e| e.to == DelegationState::Delegated)
        .unwrap();
    assert!(
        back.reason.contains("violation cleared"),
        "{:?}",
        reasons(&h)
    );
    assert!(back.at > susp.at, "{:?}", reasons(&h));
    assert!(
        susp.reason.contains("violation confirmed"),
        "{:?}",
        reasons(&h)
    );
    let rec = app.store().delegation("mon.ru").unwrap().unwrap();
    assert!(rec.violation.is_none());
    let last = rec.last_violation.unwrap();
    assert_eq!(last.finding_ids, v.finding_ids);
    assert!(last.until.is_some_and(|u| u >= last.since));
    let _ = &pol;

    // dead.ru never passes: test_failed exactly at the window's end.
    assert!(
        wait_for(Duration::from_secs(8), || st(&app, "dead.ru")
            == DelegationState::TestFailed)
        .await
    );
    let rec = app.store().delegation("dead.ru").unwrap().unwrap();
    let end = rec.window_end.unwrap();
    let rounds = app.store().rounds("dead.ru", 1000).unwrap();
    assert!(rounds.len() >= 5 && rounds.iter().all(|r| r.at < end && !r.passed));
    assert_eq!(rec.rounds as usize, rounds.len());
    let failed = app.store().history("dead.ru", 10).unwrap().pop().unwrap();
    assert!(failed.at >= end && failed.reason.contains("test window ended"));
    let ns2 = rec
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.dead.ru")
        .unwrap();
    assert!(
        ns2.unreachable_ms > 0 && ns2.last_reachable == Some(false),
        "{ns2:?}"
    );
    let findings = &rec.last_round.as_ref().unwrap().findings;
    assert!(
        findings.iter().any(|f| f
            .server
            .as_deref()
            .is_some_and(|s| s.contains("ns2.dead.ru"))),
        "{findings:?}"
    );

    app.shutdown().cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

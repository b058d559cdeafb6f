//! The scheduler loop against the real redb store, with a scripted network
//! standing in for the probe engine (the end-to-end tests with real
//! servers and the real verifier are in `scheduler_e2e.rs`). Periods are
//! shrunk to milliseconds.

use crate::support;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use support::net::Net;
use support::sched::*;
use zonekeeper::app::App;
use zonekeeper::clock::{Clock, SystemClock};
use zonekeeper::config::{Config, OnViolation};
use zonekeeper::model::{DelegationState, Nameserver};
use zonekeeper::registry::NameserverIn;
use zonekeeper::registry::{Actor, Registry};
use zonekeeper::scheduler;

fn two_ns(tag: &str) -> Vec<Nameserver> {
    vec![
        ns(&format!("ns1.{tag}.net"), &[]),
        ns(&format!("ns2.{tag}.net"), &[]),
    ]
}

struct Running {
    app: App,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(cfg: Config, domains: &[(&str, &str)], net: Arc<Net>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let ds = domains
        .iter()
        .map(|(d, tag)| domain(d, two_ns(tag), now))
        .collect();
    let store = store_with(&dir.path().join("z.redb"), ds, cfg.delegation.test_window);
    let app = App::new(cfg, store, Arc::new(SystemClock)).unwrap();
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));
    Running {
        app,
        task,
        _dir: dir,
    }
}

fn state(app: &App, d: &str) -> DelegationState {
    app.store().delegation(d).unwrap().unwrap().state
}

/// A scheduler on [`fast_config`] that monitors every 30 s, with the one
/// domain `name` (servers `ns1/ns2.{tag}.net`), once it is delegated.
async fn start_delegated(name: &str, tag: &str) -> (Arc<Net>, Running) {
    let mut cfg = fast_config();
    cfg.delegation.monitor_interval = Duration::from_secs(30);
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    let r = start(cfg, &[(name, tag)], net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(2), || state(&r.app, name)
            == DelegationState::Delegated)
        .await
    );
    (net, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_to_delegated_with_history_rounds_and_zone_notice() {
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    net.set_down("ns2.a.net", true);
    let r = start(fast_config(), &[("a.ru", "a")], net.clone()).await;
    let zone = r.app.zone_dirty().clone();
    let notified = tokio::spawn(async move { zone.notified().await });
    assert!(wait_for(Duration::from_secs(2), || net.checks("a.ru") >= 3).await);
    assert_eq!(state(&r.app, "a.ru"), DelegationState::Testing);
    net.set_down("ns2.a.net", false);
    assert!(
        wait_for(Duration::from_secs(2), || state(&r.app, "a.ru")
            == DelegationState::Delegated)
        .await
    );
    tokio::time::timeout(Duration::from_secs(2), notified)
        .await
        .expect("zone_dirty notified")
        .unwrap();
    let rec = r.app.store().delegation("a.ru").unwrap().unwrap();
    let hist = r.app.store().history("a.ru", 100).unwrap();
    let last = hist.last().unwrap();
    assert_eq!(last.to, DelegationState::Delegated);
    assert!(
        last.reason.contains("passed within the downtime budget"),
        "{}",
        last.reason
    );
    // ns2 was down for a few rounds: its downtime is in the record.
    let ns2 = rec
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.a.net")
        .unwrap();
    assert!(
        ns2.unreachable_ms > 0 && ns2.unreachable_ms < 1000,
        "{ns2:?}"
    );
    // Every check is one recorded round (none lost, none twice).
    r.app.shutdown().cancel();
    r.task.await.unwrap();
    let rounds = r.app.store().rounds("a.ru", 1000).unwrap();
    assert_eq!(rounds.len(), net.checks("a.ru"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_end_test_failed_then_retest_with_a_wake() {
    let mut cfg = fast_config();
    cfg.delegation.test_window = Duration::from_millis(700);
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    net.set_down("ns1.b.net", true);
    let r = start(cfg, &[("b.ru", "b")], net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(3), || state(&r.app, "b.ru")
            == DelegationState::TestFailed)
        .await
    );
    let rec = r.app.store().delegation("b.ru").unwrap().unwrap();
    let end = rec.window_end.unwrap();
    assert_eq!(rec.next_probe, None);
    // Rounds ran inside the window only.
    for round in r.app.store().rounds("b.ru", 100).unwrap() {
        assert!(round.at < end);
    }
    let n = net.checks("b.ru");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(net.checks("b.ru"), n, "no probes after test_failed");
    // Retest through the store (as the API does) and wake the scheduler.
    net.set_down("ns1.b.net", false);
    r.app.registry().retest(&Actor::Operator, "b.ru").unwrap();
    assert!(
        wait_for(Duration::from_secs(1), || state(&r.app, "b.ru")
            == DelegationState::Delegated)
        .await
    );
    r.app.shutdown().cancel();
    r.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_limit_and_every_domain_probed() {
    let mut cfg = fast_config();
    cfg.delegation.max_concurrent_rounds = 4;
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    *net.delay.lock().unwrap() = Duration::from_millis(30);
    let names: Vec<String> = (0..40).map(|i| format!("d{i}.ru")).collect();
    let doms: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "shared")).collect();
    let r = start(cfg, &doms, net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(5), || names
            .iter()
            .all(|n| state(&r.app, n) == DelegationState::Delegated))
        .await
    );
    assert!(net.max_in_flight.load(Ordering::SeqCst) <= 4);
    assert!(net.max_in_flight.load(Ordering::SeqCst) >= 2);
    r.app.shutdown().cancel();
    r.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_and_writes_rounds_in_flight() {
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    *net.delay.lock().unwrap() = Duration::from_millis(400);
    let r = start(fast_config(), &[("c.ru", "c")], net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(2), || net
            .in_flight
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    r.app.shutdown().cancel();
    tokio::time::timeout(Duration::from_secs(3), r.task)
        .await
        .expect("stops after the round")
        .unwrap();
    assert_eq!(net.checks("c.ru"), 1);
    assert_eq!(r.app.store().rounds("c.ru", 10).unwrap().len(), 1);
    assert_eq!(state(&r.app, "c.ru"), DelegationState::Delegated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_suspends_at_once_and_release_returns_it() {
    let (net, r) = start_delegated("h.ru", "h").await;
    r.app
        .registry()
        .hold(&Actor::Operator, "h.ru", "court")
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(1), || state(&r.app, "h.ru")
            == DelegationState::Suspended)
        .await
    );
    let rec = r.app.store().delegation("h.ru").unwrap().unwrap();
    assert_eq!(rec.blocked, vec!["hold".to_string()]);
    let checks = net.checks("h.ru");
    r.app.registry().release(&Actor::Operator, "h.ru").unwrap();
    assert!(
        wait_for(Duration::from_secs(1), || state(&r.app, "h.ru")
            == DelegationState::Delegated)
        .await
    );
    assert_eq!(net.checks("h.ru"), checks + 1, "one round on release");
    let hist = r.app.store().history("h.ru", 100).unwrap();
    let reasons: Vec<&str> = hist.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons.contains(&"suspended: hold"), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("block lifted (hold)")),
        "{reasons:?}"
    );
    r.app.shutdown().cancel();
    r.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violation_suspends_under_suspend_policy_and_recovery_clears_it() {
    let mut cfg = fast_config();
    cfg.delegation.on_violation = OnViolation::Suspend;
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    let r = start(cfg, &[("v.ru", "v")], net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(2), || state(&r.app, "v.ru")
            == DelegationState::Delegated)
        .await
    );
    net.bad_data.lock().unwrap().push("v.ru".into());
    assert!(
        wait_for(Duration::from_secs(2), || state(&r.app, "v.ru")
            == DelegationState::Suspended)
        .await
    );
    let v = r
        .app
        .store()
        .delegation("v.ru")
        .unwrap()
        .unwrap()
        .violation
        .unwrap();
    assert_eq!(v.finding_ids, vec!["NS_SET_MISMATCH".to_string()]);
    net.bad_data.lock().unwrap().clear();
    assert!(
        wait_for(Duration::from_secs(2), || state(&r.app, "v.ru")
            == DelegationState::Delegated)
        .await
    );
    assert!(r
        .app
        .store()
        .delegation("v.ru")
        .unwrap()
        .unwrap()
        .violation
        .is_none());
    r.app.shutdown().cancel();
    r.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_wake_finds_a_new_declaration() {
    let (_net, r) = start_delegated("w.ru", "w").await;
    // A new NS set, announced without a name.
    let now = r.app.now();
    // Offline: no notification; only the bare wake below.
    Registry::offline(r.app.store().as_ref(), r.app.config())
        .unwrap()
        .at(now)
        .declare_nameservers(
            &Actor::Registrar(registrar().handle),
            "w.ru",
            &ns_in(&two_ns("w2")),
        )
        .unwrap();
    r.app.scheduler_wake().notify_one();
    assert!(
        wait_for(Duration::from_secs(2), || {
            let rec = r.app.store().delegation("w.ru").unwrap().unwrap();
            rec.state == DelegationState::Delegated && rec.delegated_at > Some(now)
        })
        .await
    );
    r.app.shutdown().cancel();
    r.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retest_during_a_round_wins_and_the_round_is_discarded() {
    let net = Arc::new(Net::new(Arc::new(SystemClock)));
    net.set_down("ns2.r.net", true);
    *net.delay.lock().unwrap() = Duration::from_millis(300);
    let r = start(fast_config(), &[("r.ru", "r")], net.clone()).await;
    assert!(
        wait_for(Duration::from_secs(2), || net
            .in_flight
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    Registry::offline(r.app.store().as_ref(), r.app.config())
        .unwrap()
        .at(r.app.now())
        .retest(&Actor::Operator, "r.ru")
        .unwrap();
    let fresh = r.app.store().delegation("r.ru").unwrap().unwrap();
    r.app.domain_changed("r.ru");
    // The round in flight ends, is discarded, and testing goes on.
    assert!(wait_for(Duration::from_secs(3), || net.checks("r.ru") >= 3).await);
    r.app.shutdown().cancel();
    r.task.await.unwrap();
    let rec = r.app.store().delegation("r.ru").unwrap().unwrap();
    assert_eq!(
        rec.window_start, fresh.window_start,
        "the retest's window stands"
    );
    let rounds = r.app.store().rounds("r.ru", 100).unwrap();
    assert_eq!(
        rounds.len(),
        net.checks("r.ru") - 1,
        "exactly one round discarded"
    );
    assert_eq!(rec.rounds as usize, rounds.len());
    assert!(rounds.iter().all(|x| Some(x.at) >= fresh.window_start));
}

/// A declared set as the API takes it.
fn ns_in(ns: &[Nameserver]) -> Vec<NameserverIn> {
    ns.iter()
        .map(|n| NameserverIn {
            name: n.name.as_str().to_string(),
            addresses: n.addresses.iter().map(|a| a.to_string()).collect(),
        })
        .collect()
}

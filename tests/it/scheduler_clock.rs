//! The scheduler loop with the regulation's own periods (10-minute rounds,
//! the 4-day window, the 2-hour budget per Moscow day) run on an injected
//! clock: the test moves a `ManualClock` round by round, so four days take
//! a few seconds. A scripted network stands in for the servers (the real
//! ones are in `scheduler_e2e.rs` / `scheduler_restart.rs`).

use crate::support;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use support::net::Net;
use support::sched::*;
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::model::{DelegationState, Nameserver};
use zonekeeper::scheduler;

fn two_ns(tag: &str) -> Vec<Nameserver> {
    vec![
        ns(&format!("ns1.{tag}.net"), &[]),
        ns(&format!("ns2.{tag}.net"), &[]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_day_window_and_moscow_day_budget_on_a_manual_clock() {
    // 15:00 Moscow time; the Moscow day ends at 21:00 UTC.
    let t0 = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let mut cfg = Config::default();
    cfg.delegation.jitter = 0.0; // rounds exactly every 10 minutes
    let net = Arc::new(Net::new(Arc::new(clock.clone())));
    // fail.ru: ns2 never answers. short.ru: ns2 down 1h50m (12 rounds).
    // long.ru: ns2 down 2h10m (14 rounds).
    for s in ["ns2.fail.net", "ns2.short.net", "ns2.long.net"] {
        net.set_down(s, true);
    }
    let dir = tempfile::tempdir().unwrap();
    let names = ["fail.ru", "short.ru", "long.ru"];
    let doms = names
        .iter()
        .map(|n| domain(n, two_ns(n.trim_end_matches(".ru")), t0))
        .collect();
    let store = store_at(
        &dir.path().join("z.redb"),
        doms,
        cfg.delegation.test_window,
        t0,
    );
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));

    // The round of this step is written (record and round together).
    let last_at = |d: &str| {
        app.store
            .delegation(d)
            .unwrap()
            .unwrap()
            .last_round
            .map(|r| r.at)
    };
    let state = |d: &str| app.store.delegation(d).unwrap().unwrap().state;
    let step = chrono::Duration::minutes(10);
    for k in 0..=576 {
        if k > 0 {
            clock.advance(Duration::from_secs(600));
        }
        if k == 12 {
            net.set_down("ns2.short.net", false);
        }
        if k == 14 {
            net.set_down("ns2.long.net", false);
        }
        let testing: Vec<bool> = names
            .iter()
            .map(|d| state(d) == DelegationState::Testing)
            .collect();
        app.scheduler_wake.notify_one();
        let now = t0 + step * k;
        for (i, d) in names.iter().enumerate() {
            if testing[i] && !(k == 576 && *d == "fail.ru") {
                assert!(
                    wait_for(Duration::from_secs(5), || last_at(d) == Some(now)).await,
                    "{d}: no round at step {k}"
                );
            }
        }
    }
    // short.ru: 1h55m of downtime (the nearest-round rule), within 2 h:
    // delegated on the first round with both servers up.
    let short = app.store.delegation("short.ru").unwrap().unwrap();
    assert_eq!(short.delegated_at, Some(t0 + step * 12));
    // long.ru: 2h15m > 2 h: passing rounds do not delegate it until the
    // Moscow day ends at 21:00 UTC, when the budget is fresh.
    let long = app.store.delegation("long.ru").unwrap().unwrap();
    let midnight_msk = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
    assert_eq!(long.delegated_at, Some(midnight_msk));
    let hist = app.store.history("long.ru", 10).unwrap();
    assert_eq!(hist.last().unwrap().at, midnight_msk);
    // fail.ru: 576 rounds, then test_failed at exactly 4 days.
    assert!(
        wait_for(Duration::from_secs(5), || state("fail.ru")
            == DelegationState::TestFailed)
        .await
    );
    let fail = app.store.delegation("fail.ru").unwrap().unwrap();
    assert_eq!(fail.rounds, 576);
    assert_eq!(fail.changed_at, t0 + chrono::Duration::days(4));
    assert_eq!(fail.window_start, Some(t0));
    // Its ns2 was down all along: today's figure runs from the Moscow
    // midnight (2026-01-13T21:00Z) to the last round at 11:50Z.
    let ns2 = fail
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.fail.net")
        .unwrap();
    assert_eq!(
        ns2.period_start,
        Utc.with_ymd_and_hms(2026, 1, 13, 21, 0, 0).unwrap()
    );
    assert_eq!(ns2.unreachable_ms, (14 * 60 + 50) * 60 * 1000);
    assert_eq!(ns2.unreachable_secs, (14 * 60 + 50) * 60);
    app.shutdown.cancel();
    task.await.unwrap();
}

/// A scheduler held back (one round slot, taken by a slow round) while
/// the clock runs on: the oldest due round's lag passes the threshold and
/// `/healthz` says so; when the rounds catch up it is `ok` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_degraded_while_the_scheduler_is_behind() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let mut cfg = Config::default();
    cfg.delegation.jitter = 0.0;
    cfg.delegation.max_concurrent_rounds = 1;
    let net = Arc::new(Net::new(Arc::new(clock.clone())));
    *net.delay.lock().unwrap() = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let doms = ["a.ru", "b.ru"]
        .iter()
        .map(|n| domain(n, two_ns(n.trim_end_matches(".ru")), t0))
        .collect();
    let store = store_at(
        &dir.path().join("z.redb"),
        doms,
        cfg.delegation.test_window,
        t0,
    );
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    support::serve_http(&app, listener);
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));
    let health = || async move {
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(health().await, "ok\n");
    // One round holds the only slot; the other domain's round is due and
    // waits while 20 minutes pass (threshold: probe_interval, 10 min).
    clock.advance(Duration::from_secs(20 * 60));
    assert!(
        wait_for(Duration::from_secs(3), || app.scheduler_behind().is_some()).await,
        "the lag is measured"
    );
    let h = health().await;
    assert!(
        h.starts_with("degraded: scheduler behind: due rounds wait"),
        "{h}"
    );
    // Rounds finish (3 s each) and the queue catches up.
    *net.delay.lock().unwrap() = Duration::ZERO;
    assert!(wait_for(Duration::from_secs(10), || app.scheduler_behind().is_none()).await);
    assert_eq!(health().await, "ok\n");
    app.shutdown.cancel();
    task.await.unwrap();
}

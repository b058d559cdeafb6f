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
use zonekeeper::clock::{Clock, ManualClock};
use zonekeeper::config::Config;
use zonekeeper::model::{DelegationState, Domain, Nameserver, Timestamp};
use zonekeeper::scheduler;
use zonekeeper::store::redb::RedbStore;

fn two_ns(tag: &str) -> Vec<Nameserver> {
    vec![
        ns(&format!("ns1.{tag}.net"), &[]),
        ns(&format!("ns2.{tag}.net"), &[]),
    ]
}

/// Domains `names` (`x.ru` served by `ns1.x.net` and `ns2.x.net`),
/// registered before `t0`.
fn two_ns_domains(names: &[&str], t0: Timestamp) -> Vec<Domain> {
    names
        .iter()
        .map(|n| domain(n, two_ns(n.trim_end_matches(".ru")), t0))
        .collect()
}

/// What every test here starts from: the clock at `t0` =
/// 2026-01-10T12:00Z (15:00 Moscow time), a config whose rounds come
/// exactly every interval (`jitter = 0`), the scripted network on that
/// clock, and a temp dir for the store.
fn clock_setup() -> (Timestamp, ManualClock, Config, Arc<Net>, tempfile::TempDir) {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let mut cfg = Config::default();
    cfg.delegation.jitter = 0.0;
    let net = Arc::new(Net::new(Arc::new(clock.clone())));
    (t0, clock, cfg, net, tempfile::tempdir().unwrap())
}

/// A store in `dir` holding `doms`, under test since `t0`.
fn store_in(
    dir: &tempfile::TempDir,
    doms: Vec<Domain>,
    cfg: &Config,
    t0: Timestamp,
) -> Arc<RedbStore> {
    store_at(
        &dir.path().join("z.redb"),
        doms,
        cfg.delegation.test_window,
        t0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_day_window_and_moscow_day_budget_on_a_manual_clock() {
    // 15:00 Moscow time; the Moscow day ends at 21:00 UTC. Rounds exactly
    // every 10 minutes.
    let (t0, clock, cfg, net, dir) = clock_setup();
    // fail.ru: ns2 never answers. short.ru: ns2 down 1h50m (12 rounds).
    // long.ru: ns2 down 2h10m (14 rounds).
    for s in ["ns2.fail.net", "ns2.short.net", "ns2.long.net"] {
        net.set_down(s, true);
    }
    let names = ["fail.ru", "short.ru", "long.ru"];
    let doms = two_ns_domains(&names, t0);
    let store = store_in(&dir, doms, &cfg, t0);
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));

    // The round of this step is written (record and round together).
    let last_at = |d: &str| {
        app.store()
            .delegation(d)
            .unwrap()
            .unwrap()
            .last_round
            .map(|r| r.at)
    };
    let state = |d: &str| app.store().delegation(d).unwrap().unwrap().state;
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
        app.scheduler_wake().notify_one();
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
    let short = app.store().delegation("short.ru").unwrap().unwrap();
    assert_eq!(short.delegated_at, Some(t0 + step * 12));
    // long.ru: 2h15m > 2 h: passing rounds do not delegate it until the
    // Moscow day ends at 21:00 UTC, when the budget is fresh.
    let long = app.store().delegation("long.ru").unwrap().unwrap();
    let midnight_msk = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
    assert_eq!(long.delegated_at, Some(midnight_msk));
    let hist = app.store().history("long.ru", 10).unwrap();
    assert_eq!(hist.last().unwrap().at, midnight_msk);
    // fail.ru: 576 rounds, then test_failed at exactly 4 days.
    assert!(
        wait_for(Duration::from_secs(5), || state("fail.ru")
            == DelegationState::TestFailed)
        .await
    );
    let fail = app.store().delegation("fail.ru").unwrap().unwrap();
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
    app.shutdown().cancel();
    task.await.unwrap();
}

/// A scheduler held back (one round slot, taken by a slow round) while
/// the clock runs on: the oldest due round's lag passes the threshold and
/// `/healthz` says so; when the rounds catch up it is `ok` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_degraded_while_the_scheduler_is_behind() {
    let (t0, clock, mut cfg, net, dir) = clock_setup();
    cfg.delegation.max_concurrent_rounds = 1;
    *net.delay.lock().unwrap() = Duration::from_secs(3);
    let doms = two_ns_domains(&["a.ru", "b.ru"], t0);
    let store = store_in(&dir, doms, &cfg, t0);
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
    app.shutdown().cancel();
    task.await.unwrap();
}

/// Move `clock` on by `total` in 5 s steps, each seen by a turn of the
/// scheduler loop (woken at once): a scheduler that keeps running, so a
/// round waiting for a slot meanwhile has measured queue lag.
async fn run_for(app: &App, clock: &ManualClock, total: Duration) {
    let step = Duration::from_secs(5);
    let mut left = total;
    while !left.is_zero() {
        let s = step.min(left);
        clock.advance(s);
        left -= s;
        let target = clock.now().timestamp_millis();
        app.scheduler_wake().notify_one();
        assert!(
            wait_for(Duration::from_secs(5), || app.scheduler_turn_ms() >= target).await,
            "the scheduler loop turns"
        );
    }
}

/// Two testing domains whose ns2 is down, one round slot. The first round
/// at +10 min is held for 25 min (a round longer than the interval), so
/// the other domain's round waits in the queue and runs 35 min after its
/// previous one — beyond the plain reach (2 × 10 min), within the reach
/// widened by its measured queue lag (25 min): the downtime is charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_charged_across_a_round_longer_than_the_recheck_interval() {
    let (t0, clock, mut cfg, net, dir) = clock_setup();
    cfg.delegation.max_concurrent_rounds = 1;
    net.set_down("ns2.a.net", true);
    net.set_down("ns2.b.net", true);
    let doms = two_ns_domains(&["a.ru", "b.ru"], t0);
    let store = store_in(&dir, doms, &cfg, t0);
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));
    let rec = |d: &str| app.store().delegation(d).unwrap().unwrap();
    let last_at = |d: &str| rec(d).last_round.map(|r| r.at);
    app.scheduler_wake().notify_one();
    for d in ["a.ru", "b.ru"] {
        assert!(wait_for(Duration::from_secs(5), || last_at(d) == Some(t0)).await);
    }
    let hold = Arc::new(tokio::sync::Notify::new());
    *net.hold_next.lock().unwrap() = Some(hold.clone());
    run_for(&app, &clock, Duration::from_secs(10 * 60)).await;
    assert!(
        wait_for(Duration::from_secs(5), || net
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1
            && net.hold_next.lock().unwrap().is_none())
        .await,
        "one round is held"
    );
    run_for(&app, &clock, Duration::from_secs(25 * 60)).await;
    hold.notify_one();
    let t35 = t0 + chrono::Duration::minutes(35);
    for d in ["a.ru", "b.ru"] {
        assert!(
            wait_for(Duration::from_secs(5), || last_at(d) == Some(t35)).await,
            "{d}: a round at +35 min"
        );
    }
    let (held, waited) = if rec("a.ru").rounds == 3 {
        ("a.ru", "b.ru")
    } else {
        ("b.ru", "a.ru")
    };
    let w = rec(waited);
    assert_eq!(w.rounds, 2, "{waited}: rounds at +0 and +35 min");
    assert_eq!(w.last_round.as_ref().unwrap().queue_lag_ms, 25 * 60_000);
    let ns2 = &w.downtime[1];
    assert_eq!(
        (ns2.unreachable_ms, ns2.unmeasured_ms),
        (35 * 60_000, 0),
        "{waited}: the 35 min gap is charged"
    );
    // The held domain: rounds at +0, +10 (25 min long) and +35 min.
    let h = rec(held);
    assert_eq!(h.rounds, 3);
    assert_eq!(h.downtime[1].unreachable_ms, 35 * 60_000);
    app.shutdown().cancel();
    task.await.unwrap();
}

/// The scheduler held back (the clock jumps 50 min with no loop turn: a
/// frozen process): the gap is beyond reach and is no queue lag, so it is
/// not charged — and the unmeasured time shows in the registrar API,
/// WHOIS (the real client) and the dashboard's domain page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmeasured_time_shown_when_the_scheduler_is_held_back() {
    let Some(whois) = support::tool("whois", "whois") else {
        return;
    };
    let (t0, clock, cfg, net, dir) = clock_setup();
    net.set_down("ns2.ab.net", true);
    let doms = vec![domain("ab.ru", two_ns("ab"), t0)];
    let store = store_in(&dir, doms, &cfg, t0);
    let token = "token-unmeasured-test";
    {
        let mut r = registrar();
        r.api_token_sha256 = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            token.as_bytes(),
        )));
        let mut t = zonekeeper::store::Store::begin(store.as_ref()).unwrap();
        t.put_registrar(&r).unwrap();
        t.commit(t0).unwrap();
    }
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    support::serve_http(&app, listener);
    let wl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let waddr = wl.local_addr().unwrap();
    tokio::spawn(zonekeeper::whois::serve(app.clone(), wl));
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));
    let rec = || app.store().delegation("ab.ru").unwrap().unwrap();
    app.scheduler_wake().notify_one();
    assert!(wait_for(Duration::from_secs(5), || rec().rounds == 1).await);
    // Held back: 50 min pass with no turn of the loop.
    clock.advance(Duration::from_secs(50 * 60));
    app.scheduler_wake().notify_one();
    assert!(wait_for(Duration::from_secs(5), || rec().rounds == 2).await);
    let r = rec();
    assert_eq!(r.last_round.as_ref().unwrap().queue_lag_ms, 0, "a stall");
    let ns2 = &r.downtime[1];
    assert_eq!((ns2.unreachable_ms, ns2.unmeasured_ms), (0, 50 * 60_000));

    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{http}/api/v1/domains/ab.ru/delegation"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let servers = &v["downtime"]["servers"];
    assert_eq!(servers[1]["server"], "ns2.ab.net", "{v}");
    assert_eq!(servers[1]["unmeasured_secs"], 3000, "{v}");
    assert_eq!(servers[1]["unreachable_secs"], 0, "{v}");
    assert_eq!(servers[0]["unmeasured_secs"], 0, "{v}");

    let out = tokio::process::Command::new(whois)
        .args(["-h", "127.0.0.1", "-p", &waddr.port().to_string(), "ab.ru"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "remarks:       ns2.ab.net: 3000 s unmeasured (registry not probing) in the downtime period from 2026-01-09T21:00:00Z"
        ),
        "{text}"
    );

    let page = reqwest::get(format!("http://{http}/domains/ab.ru"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("id=\"unmeasured\"").expect("unmeasured section");
    let section = &page[at..];
    assert!(section.contains("ns2.ab.net"), "{section}");
    assert!(section.contains("50m"), "{section}");
    app.shutdown().cancel();
    task.await.unwrap();
}

/// A delegated domain that expires is one transition, so one event in its
/// registrar's feed: the scheduler's suspension ("suspended: expired");
/// the registry's sweep keeps the transition in the history only, and a
/// second sweep adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_delegated_domain_is_one_feed_event() {
    let (t0, clock, cfg, net, dir) = clock_setup();
    let mut d = domain("expiring.ru", two_ns("expiring"), t0);
    d.paid_till = t0 + chrono::Duration::minutes(30);
    let store = store_in(&dir, vec![d], &cfg, t0);
    use zonekeeper::store::Store;
    let old = store.delegation("expiring.ru").unwrap().unwrap();
    let rec = zonekeeper::model::DelegationRecord {
        state: DelegationState::Delegated,
        delegated_at: Some(t0),
        ..old.clone()
    };
    assert!(store
        .put_delegation("expiring.ru", &old.ns_fingerprint, &rec, None, None)
        .unwrap());
    let app = App::new(cfg, store, Arc::new(clock.clone())).unwrap();
    let feed_after = |t| {
        app.store()
            .feed("REGRU-RU", 0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.domain == "expiring.ru" && e.at >= t)
            .map(|e| e.reason)
            .collect::<Vec<_>>()
    };
    let task = tokio::spawn(scheduler::run_with(app.clone(), net.clone()));
    let paid = t0 + chrono::Duration::minutes(30);
    // Past paid_till: the sweep runs first, then the scheduler's round.
    clock.advance(Duration::from_secs(40 * 60));
    app.registry().sweep().unwrap();
    app.scheduler_wake().notify_one();
    let state = || {
        app.store()
            .delegation("expiring.ru")
            .unwrap()
            .unwrap()
            .state
    };
    assert!(
        wait_for(Duration::from_secs(5), || state()
            == DelegationState::Suspended)
        .await
    );
    app.registry().sweep().unwrap();
    let feed = feed_after(paid);
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert!(feed[0].contains("expired"), "{feed:?}");
    // The history has both: the lifecycle transition and the suspension.
    let hist = app.store().history("expiring.ru", 100).unwrap();
    let expired = zonekeeper::lifecycle::Transition::Expired.text();
    assert_eq!(
        hist.iter()
            .filter(|e| e.reason.starts_with(expired))
            .count(),
        1,
        "{hist:?}"
    );
    task.abort();
}

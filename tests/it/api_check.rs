//! `POST /api/v1/check` against small authoritative servers on loopback:
//! the same report as `zonekeeper check --json`, and no side effects.

use crate::support;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use support::api::{send, token, Server};
use support::dns::{closed_port, Behaviour, FakeServer, FakeZone};
use support::nsd::random_loopback;

fn two_ips() -> (IpAddr, IpAddr) {
    loop {
        let (a, b) = (random_loopback(), random_loopback());
        if a != b {
            return (IpAddr::V4(a), IpAddr::V4(b));
        }
    }
}

fn zone(apex: &str, ip1: IpAddr, ip2: IpAddr) -> FakeZone {
    FakeZone::new(apex, &[&format!("ns1.{apex}"), &format!("ns2.{apex}")])
        .host(&format!("ns1.{apex}"), ip1)
        .host(&format!("ns2.{apex}"), ip2)
}

async fn test_server() -> Server {
    Server::start(|c| {
        c.probe.allow_private_targets = true;
        // Never the system resolver: names without glue fail fast.
        c.probe.resolvers = vec![closed_port()];
        c.probe.timeout = Duration::from_millis(800);
    })
    .await
}

fn body(apex: &str, a: &FakeServer, b: &FakeServer) -> serde_json::Value {
    json!({"domain": apex, "nameservers": [
        {"name": format!("ns1.{apex}"), "addresses": [a.addr.to_string()]},
        {"name": format!("ns2.{apex}"), "addresses": [b.addr.to_string()]}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_and_fails_like_the_cli() {
    let s = test_server().await;
    let tok = token("REGRU-RU");
    let apex = "check-me.ru";
    let (ip1, ip2) = two_ips();
    let a = FakeServer::start_on(ip1, zone(apex, ip1, ip2), Behaviour::default()).await;
    let b = FakeServer::start_on(ip2, zone(apex, ip1, ip2), Behaviour::default()).await;
    let stats_before = s.store().stats().unwrap();
    let updated_before = s.store().last_update().unwrap();

    let (st, r) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(&tok)
            .json(&body(apex, &a, &b)),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["domain"], apex);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(r["servers"].as_array().unwrap().len(), 2);
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reachable"] == true));

    // The CLI's --json report of the same set has the same shape and verdict.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zk.toml");
    std::fs::write(
        &cfg,
        format!(
            "[probe]\nallow_private_targets = true\nresolvers = [\"{}\"]\ntimeout = \"800ms\"\n",
            closed_port()
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(&cfg)
        .args(["check", apex, "--json"])
        .arg("--ns")
        .arg(format!("ns1.{apex}/{}", a.addr))
        .arg("--ns")
        .arg(format!("ns2.{apex}/{}", b.addr))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&cli), keys(&r));
    assert_eq!(cli["verdict"], r["verdict"]);
    assert_eq!(cli["findings"], r["findings"]);
    assert_eq!(keys(&cli["servers"][0]), keys(&r["servers"][0]));

    // A lame second server: still 200 (the check ran), verdict fail, the
    // finding names the server.
    let (ip3, ip4) = two_ips();
    let good = FakeServer::start_on(ip3, zone(apex, ip3, ip4), Behaviour::default()).await;
    let lame = FakeServer::start_on(
        ip4,
        zone(apex, ip3, ip4),
        Behaviour {
            no_aa: true,
            ..Default::default()
        },
    )
    .await;
    let (st, r) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(&tok)
            .json(&body(apex, &good, &lame)),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["verdict"], "fail");
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "error")
        .expect("an error finding")
        .clone();
    assert_eq!(f["id"], "AUTHORITATIVE", "{r}");
    assert_eq!(f["server"], format!("ns2.{apex}"));

    // Side-effect free: the store did not change.
    assert_eq!(s.store().stats().unwrap().by_state, stats_before.by_state);
    assert_eq!(s.store().last_update().unwrap(), updated_before);
    assert!(s.store().domain(apex).unwrap().is_none());
}

#[tokio::test]
async fn check_of_a_registered_name_leaves_its_state_alone() {
    let s = test_server().await;
    let tok = token("REGRU-RU");
    let before = s.store().delegation("findomsky0.ru").unwrap();
    let (ip1, ip2) = two_ips();
    let a = FakeServer::start_on(ip1, zone("findomsky0.ru", ip1, ip2), Behaviour::default()).await;
    let b = FakeServer::start_on(ip2, zone("findomsky0.ru", ip1, ip2), Behaviour::default()).await;
    let (st, r) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(&tok)
            .json(&body("findomsky0.ru", &a, &b)),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(s.store().delegation("findomsky0.ru").unwrap(), before);
}

#[tokio::test]
async fn private_targets_are_refused_without_the_setting() {
    // Default probe config: no private targets, and ports refused at once.
    let s = Server::start(|c| c.probe.resolvers = vec![closed_port()]).await;
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(token("REGRU-RU"))
            .json(&json!({"domain": "x-y.ru", "nameservers": [
                {"name": "ns1.x-y.ru", "addresses": ["127.0.0.1"]},
                {"name": "ns2.x-y.ru", "addresses": ["127.0.0.2"]}
            ]})),
    )
    .await;
    // Port 53 on loopback is not a port error; the verifier's guard
    // refuses the targets without sending a packet.
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["verdict"], "fail");
    assert!(
        p.to_string().to_lowercase().contains("private") || p.to_string().contains("loopback"),
        "{p}"
    );
}

/// One registrar cannot hold every `/check` slot: past its own
/// share it gets 429 while another registrar's check still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_slots_are_shared_per_registrar() {
    let s = Server::start(|c| {
        c.probe.allow_private_targets = true;
        c.probe.resolvers = vec![closed_port()];
        c.probe.timeout = Duration::from_millis(1500);
        c.probe.retries = 0;
        c.api.max_concurrent_checks = 3;
        c.api.max_concurrent_checks_per_registrar = 2;
    })
    .await;
    let (ip1, ip2) = two_ips();
    let apex = "slow-ns.ru";
    let silent = Behaviour {
        silent: true,
        ..Behaviour::default()
    };
    let a = FakeServer::start_on(ip1, zone(apex, ip1, ip2), silent.clone()).await;
    let b = FakeServer::start_on(ip2, zone(apex, ip1, ip2), silent.clone()).await;
    // The second slow check asks servers of its own, so a query reaching
    // each pair shows that both checks hold their slots (a check takes its
    // slot before it sends anything).
    let (ip3, ip4) = two_ips();
    let c = FakeServer::start_on(ip3, zone(apex, ip3, ip4), silent.clone()).await;
    let d = FakeServer::start_on(ip4, zone(apex, ip3, ip4), silent).await;
    let post = |tok: String, x: &FakeServer, y: &FakeServer| {
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(tok)
            .json(&body(apex, x, y))
            .send()
    };
    // REGRU-RU fills its share with two slow checks…
    let first = tokio::spawn(post(token("REGRU-RU"), &a, &b));
    let second = tokio::spawn(post(token("REGRU-RU"), &c, &d));
    let asked = |x: &FakeServer, y: &FakeServer| {
        x.hits.load(Ordering::SeqCst) + y.hits.load(Ordering::SeqCst) > 0
    };
    support::eventually(Duration::from_secs(10), "both slow checks probing", || {
        std::future::ready((asked(&a, &b) && asked(&c, &d)).then_some(()))
    })
    .await;
    // …a third of its own is refused at once, naming the per-registrar limit…
    let started = std::time::Instant::now();
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(token("REGRU-RU"))
            .json(&body(apex, &a, &b)),
    )
    .await;
    assert_eq!(st, 429, "{p}");
    assert!(
        p["type"].as_str().unwrap().ends_with("checks-in-flight"),
        "{p}"
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
    // …while another registrar still gets the remaining global slot.
    let (st, r) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(token("RUCENTER-RU"))
            .json(&body(apex, &a, &b)),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["verdict"], "fail", "{r}");
    for h in [first, second] {
        let r = h.await.unwrap().unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // Slots come back: REGRU-RU can check again.
    let (st, _) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(token("REGRU-RU"))
            .json(&body(apex, &a, &b)),
    )
    .await;
    assert_eq!(st, 200);
}

//! Cost of the registrar API, the dashboard and `/metrics` over loopback
//! HTTP, against a large synthetic registry.
//!
//! `cargo bench --bench api_http` (ZK_BENCH_DOMAINS, default 200,000; without
//! `--bench`, e.g. under `cargo test --benches`, 2,000 and few requests).
//! Baseline measured in the same run: `GET /healthz` on the same server and
//! connection (the floor: HTTP + routing, no store, no auth). Every figure
//! is reported as a ratio to it. Bounded: a fixed number of sequential
//! requests per endpoint, then it stops.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::store::{RedbStore, Store};

async fn time_requests(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let mut r = client.get(url);
        if let Some(tok) = token {
            r = r.bearer_auth(tok);
        }
        let res = r.send().await.expect("request");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        let _ = res.bytes().await.expect("body");
    }
    t.elapsed() / n as u32
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("ZK_BENCH_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 200_000 });
    let reqs = if quick { 20 } else { 400 };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("registry.json");
    std::fs::write(&file, zonekeeper::synth::generate(n, 7)).expect("write");
    let mut cfg = Config::default();
    // Every request is measured, none refused.
    cfg.api.rate_limit_per_minute = 1_000_000;
    let store = RedbStore::open(&dir.path().join("zk.redb")).expect("store");
    let t = Instant::now();
    zonekeeper::import::import_file(&store, &file, &cfg, chrono::Utc::now()).expect("import");
    println!("domains: {n}; imported in {:.2?}", t.elapsed());
    let own = store
        .domains_by_registrar("REGRU-RU", None, 1000)
        .expect("list")
        .0;
    let domain = own[own.len() / 2].clone();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = App::new(cfg, Arc::new(store), Arc::new(SystemClock)).expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = zonekeeper::http::router(app.clone());
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let base = format!("http://{addr}");
        let tok = zonekeeper::synth::sample_token("REGRU-RU");
        // Warm up the connection and the token cache.
        time_requests(&client, &format!("{base}/healthz"), None, 5).await;
        time_requests(
            &client,
            &format!("{base}/api/v1/domains?limit=1"),
            Some(&tok),
            5,
        )
        .await;

        let baseline = time_requests(&client, &format!("{base}/healthz"), None, reqs).await;
        println!("baseline GET /healthz: {baseline:.2?} per request");
        let cases: Vec<(&str, String, bool, usize)> = vec![
            (
                "GET delegation (auth + 3 reads)",
                format!("{base}/api/v1/domains/{domain}/delegation"),
                true,
                reqs,
            ),
            (
                "GET domains page of 100 (own)",
                format!("{base}/api/v1/domains?limit=100"),
                true,
                reqs / 4,
            ),
            (
                "GET domains?state=testing page of 100",
                format!("{base}/api/v1/domains?state=testing&limit=100"),
                true,
                reqs / 4,
            ),
            ("GET /metrics", format!("{base}/metrics"), false, reqs / 4),
            ("GET / (dashboard)", format!("{base}/"), false, reqs / 20),
            (
                "GET /domains/{name} (dashboard)",
                format!("{base}/domains/{domain}"),
                false,
                reqs / 4,
            ),
        ];
        for (label, url, auth, count) in cases {
            let d = time_requests(&client, &url, auth.then_some(tok.as_str()), count.max(2)).await;
            println!(
                "{label:<42} {d:>10.2?}  = {:>7.1} x baseline",
                d.as_secs_f64() / baseline.as_secs_f64()
            );
        }
        app.shutdown().cancel();
    });
}

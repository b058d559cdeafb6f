//! Registrar webhooks (docs/api.md, "Webhooks"): a receiver on loopback
//! checks every signature and sees the feed in cursor order, at least
//! once, across an outage and a restart of the delivery workers; a wrong
//! URL scheme is refused at import; a dead endpoint delays no other
//! registrar.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zonekeeper::app::App;
use zonekeeper::registry::Actor;

use crate::support::api::{send, token, Server};
use crate::support::sched::wait_for;

const SECRET: &str = "s3cr3t-for-the-tests-0123456789";

/// What a receiver got: (event id header, signature header, body).
type Got = Arc<Mutex<Vec<(String, String, Bytes)>>>;

struct Receiver {
    url: String,
    got: Got,
    /// While set, every delivery is answered 503.
    down: Arc<AtomicBool>,
}

async fn receiver() -> Receiver {
    #[derive(Clone)]
    struct St(Got, Arc<AtomicBool>);
    async fn hook(State(St(got, down)): State<St>, h: HeaderMap, body: Bytes) -> StatusCode {
        if down.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let hv = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        got.lock().unwrap().push((
            hv("x-zonekeeper-event-id"),
            hv("x-zonekeeper-signature"),
            body,
        ));
        StatusCode::NO_CONTENT
    }
    let got: Got = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(St(got.clone(), down.clone()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
        down,
    }
}

/// A loopback endpoint that accepts connections and never answers.
async fn black_hole() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}/hook")
}

async fn server() -> Server {
    Server::start(|c| {
        c.webhook.poll_interval = Duration::from_millis(50);
        c.webhook.retry_initial = Duration::from_millis(50);
        c.webhook.retry_max = Duration::from_millis(200);
        c.webhook.connect_timeout = Duration::from_secs(2);
        c.webhook.timeout = Duration::from_secs(30);
    })
    .await
}

/// Run the delivery workers until the returned token is cancelled.
fn deliver(app: &App) -> tokio_util::sync::CancellationToken {
    let a = app.clone().with_shutdown(app.shutdown().child_token());
    let stop = a.shutdown().clone();
    tokio::spawn(zonekeeper::webhook::deliver::run(a));
    stop
}

fn set_hook(s: &Server, registrar: &str, url: &str) {
    s.app
        .registry()
        .set_webhook(&Actor::Operator, registrar, Some((url, SECRET)))
        .unwrap();
}

/// `n` feed events for `registrar`: its domains put on hold and released.
fn changes(s: &Server, registrar: &str, n: usize) {
    let names = s.domains_of(registrar, n.div_ceil(2));
    let reg = s.app.registry();
    for i in 0..n {
        let d = &names[i / 2];
        if i % 2 == 0 {
            reg.hold(&Actor::Operator, d, "webhook test").unwrap();
        } else {
            reg.release(&Actor::Operator, d).unwrap();
        }
    }
}

/// The registrar's feed after `after` as `GET /api/v1/events` returns it.
async fn feed(s: &Server, registrar: &str, after: &str) -> Vec<serde_json::Value> {
    let (st, v) = send(s.get(
        &format!("/api/v1/events?after={after}&limit=1000"),
        Some(&token(registrar)),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

fn sign(body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Every delivery signed and labelled with its own cursor; the distinct
/// events in cursor order, each delivered once or repeated identically.
fn check_deliveries(got: &[(String, String, Bytes)]) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    for (id, sig, body) in got {
        assert_eq!(sig, &sign(body), "bad signature on event {id}");
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["cursor"].as_str().unwrap(), id, "event id header");
        match out.last() {
            Some(last) if last["cursor"] == v["cursor"] => {
                assert_eq!(last, &v, "a redelivery is the same event")
            }
            Some(last) => {
                let (a, b): (u64, u64) = (
                    last["cursor"].as_str().unwrap().parse().unwrap(),
                    id.parse().unwrap(),
                );
                assert!(b > a, "out of order: {b} after {a}");
                out.push(v);
            }
            None => out.push(v),
        }
    }
    out
}

async fn webhook_state(s: &Server, registrar: &str) -> serde_json::Value {
    let (st, v) = send(s.get("/api/v1/webhook", Some(&token(registrar)))).await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_signed_and_in_cursor_order() {
    let s = server().await;
    let r = receiver().await;
    set_hook(&s, "REGRU-RU", &r.url);
    let start = webhook_state(&s, "REGRU-RU").await;
    assert_eq!(start["configured"], true);
    assert_eq!(start["url"], r.url.as_str());
    assert!(start.get("secret").is_none());
    let from = start["delivered_cursor"].as_str().unwrap().to_string();
    let stop = deliver(&s.app);
    changes(&s, "REGRU-RU", 20);
    let want = feed(&s, "REGRU-RU", &from).await;
    assert_eq!(want.len(), 20);
    assert!(
        wait_for(Duration::from_secs(20), || r.got.lock().unwrap().len()
            >= 20)
        .await,
        "got {} of 20",
        r.got.lock().unwrap().len()
    );
    let got = check_deliveries(&r.got.lock().unwrap());
    assert_eq!(got, want, "the webhook carries the feed's own events");
    // The cursor is stored once the receiver's answer is in.
    let mut st = serde_json::Value::Null;
    for _ in 0..100 {
        st = webhook_state(&s, "REGRU-RU").await;
        if st["delivered_cursor"] == want[19]["cursor"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["delivered_cursor"], want[19]["cursor"]);
    assert_eq!(st["pending"], 0);
    assert_eq!(st["consecutive_failures"], 0);
    let m = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("zonekeeper_webhook_deliveries_total{result=\"ok\"}"),
        "{m}"
    );
    assert!(m.contains("zonekeeper_webhook_pending"), "{m}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_restart_lose_nothing() {
    let s = server().await;
    let r = receiver().await;
    set_hook(&s, "RUCENTER-RU", &r.url);
    let from = webhook_state(&s, "RUCENTER-RU").await["delivered_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    r.down.store(true, Ordering::SeqCst);
    let stop = deliver(&s.app);
    changes(&s, "RUCENTER-RU", 6);
    // Failing: visible to the registrar, nothing delivered.
    let mut st = serde_json::Value::Null;
    for _ in 0..200 {
        st = webhook_state(&s, "RUCENTER-RU").await;
        if st["consecutive_failures"].as_u64().unwrap() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(st["consecutive_failures"].as_u64().unwrap() >= 3, "{st}");
    assert!(st["last_error"].as_str().unwrap().contains("503"), "{st}");
    assert_eq!(st["pending"], 6);
    assert_eq!(st["delivered_cursor"].as_str().unwrap(), from);
    // Back up: everything arrives.
    r.down.store(false, Ordering::SeqCst);
    assert!(wait_for(Duration::from_secs(20), || r.got.lock().unwrap().len() >= 6).await);
    // The workers stop; more changes meanwhile; a new run resumes from the
    // stored cursor (no replay of what was delivered).
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = r.got.lock().unwrap().len();
    changes(&s, "RUCENTER-RU", 4);
    let stop = deliver(&s.app);
    assert!(
        wait_for(Duration::from_secs(20), || r.got.lock().unwrap().len()
            >= before + 4)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = r.got.lock().unwrap().clone();
    // At least once: a repeat is only the event in flight at the stop.
    assert!(got.len() <= before + 5, "{} deliveries", got.len());
    let distinct = check_deliveries(&got);
    assert_eq!(distinct, feed(&s, "RUCENTER-RU", &from).await);
    assert_eq!(distinct.len(), 10);
    let st = webhook_state(&s, "RUCENTER-RU").await;
    assert_eq!(st["pending"], 0);
    assert_eq!(st["consecutive_failures"], 0);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_delays_no_other_registrar() {
    let s = server().await;
    let dead = black_hole().await;
    let r = receiver().await;
    set_hook(&s, "R01-RU", &dead);
    set_hook(&s, "NAUNET-RU", &r.url);
    let stop = deliver(&s.app);
    changes(&s, "R01-RU", 4);
    changes(&s, "NAUNET-RU", 4);
    // The dead endpoint holds its worker for webhook.timeout (30 s); the
    // other registrar's events arrive well within it.
    assert!(
        wait_for(Duration::from_secs(10), || r.got.lock().unwrap().len() >= 4).await,
        "got {}",
        r.got.lock().unwrap().len()
    );
    check_deliveries(&r.got.lock().unwrap());
    let st = webhook_state(&s, "R01-RU").await;
    assert_eq!(st["pending"], 4, "{st}");
    stop.cancel();
}

#[tokio::test]
async fn a_webhook_without_https_is_refused_at_import() {
    let cfg = zonekeeper::config::Config::default();
    let zones = zonekeeper::names::Zones::new(&cfg.zones).unwrap();
    let file = |url: &str| {
        serde_json::json!({"registrars": [
            {"handle": "OK-RU", "name": "Fine", "webhook": {"url": "https://hooks.example.net/zk", "secret": SECRET}},
            {"handle": "BAD-RU", "name": "Plain", "webhook": {"url": url, "secret": SECRET}}
        ]})
        .to_string()
    };
    for url in [
        "http://hooks.example.net/zk",
        "http://192.0.2.1/zk",
        "ftp://127.0.0.1/zk",
    ] {
        let e = zonekeeper::import::parse(
            file(url).as_bytes(),
            "f.json",
            &cfg,
            &zones,
            crate::support::api::start_time(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("registrars[1].webhook.url"), "{e}");
        assert!(e.contains("https://"), "{e}");
    }
    // Loopback http:// is fine (tests, the demo), and the import keeps it.
    let b = zonekeeper::import::parse(
        file("http://127.0.0.1:9/zk").as_bytes(),
        "f.json",
        &cfg,
        &zones,
        crate::support::api::start_time(),
    )
    .unwrap();
    assert_eq!(b.webhooks.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let store = zonekeeper::store::RedbStore::open(&dir.path().join("zk.redb")).unwrap();
    zonekeeper::import::apply(&store, &b, &cfg, crate::support::api::start_time()).unwrap();
    use zonekeeper::store::Store;
    let hooks = store.webhooks().unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].0, "BAD-RU");
    assert_eq!(hooks[0].1.url, "http://127.0.0.1:9/zk");
    // The public projection of a registrar has no webhook (nor secret).
    let r = store.registrar("OK-RU").unwrap().unwrap();
    let public = serde_json::to_string(&zonekeeper::public::registrar(&r)).unwrap();
    assert!(!public.contains(SECRET) && !public.contains("hooks.example.net"));
}

/// The operator command: set (secret from a file), refused without https,
/// cleared; the secret never shows in the registrar's view.
#[test]
fn the_operator_sets_and_clears_a_webhook() {
    use crate::support::bin::{text, Bin};
    let b = Bin::new("[store]\npath = \"@D@/zk.redb\"\ncache_mib = 16\n");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("fixtures/registry.json");
    let out = b.cli(&["import", fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(b.path("secret"), format!("{SECRET}\n")).unwrap();
    let secret = b.path("secret");
    let secret = secret.to_str().unwrap();
    let run = |args: &[&str]| b.cli(&[&["registrar", "webhook"][..], args].concat());
    let out = run(&[
        "REGRU-RU",
        "--url",
        "http://hooks.example.net/zk",
        "--secret-file",
        secret,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("https://"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "NOSUCH-RU",
        "--url",
        "https://hooks.example.net/zk",
        "--secret-file",
        secret,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let out = run(&[
        "REGRU-RU",
        "--url",
        "https://hooks.example.net/zk",
        "--secret-file",
        secret,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(SECRET));
    let store = zonekeeper::store::RedbStore::open(&b.path("zk.redb")).unwrap();
    use zonekeeper::store::Store;
    let hook = store.webhook("REGRU-RU").unwrap().unwrap();
    assert_eq!(hook.secret, SECRET);
    assert!(
        !format!("{hook:?}").contains(SECRET),
        "Debug hides the secret"
    );
    drop(store);
    let out = run(&["REGRU-RU", "--clear"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = zonekeeper::store::RedbStore::open(&b.path("zk.redb")).unwrap();
    assert!(store.webhooks().unwrap().is_empty());
}

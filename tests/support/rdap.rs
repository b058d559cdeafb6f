//! Shared by the RDAP tests: a real server on 127.0.0.1:0 over a redb store
//! loaded from an import file, with a manual clock.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::store::RedbStore;

pub struct Server {
    /// `http://127.0.0.1:PORT/rdap/`
    pub base: String,
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub app: App,
    _dir: tempfile::TempDir,
}

/// The instant tests run at: after the fixture's verification requests
/// (2026-11-01) went overdue, before any registration expires.
pub fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

pub async fn start(import: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.path = dir.path().join("rdap.redb");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Links without rdap.base_url derive from the listen address.
    cfg.http.listen = addr;
    tweak(&mut cfg);
    let store = RedbStore::open(&cfg.store.path).unwrap();
    let clock = ManualClock::new(now());
    zonekeeper::import::import_file(&store, import, &cfg, now()).unwrap();
    let app = App::new(cfg, Arc::new(store), Arc::new(clock.clone())).unwrap();
    super::serve_http(&app, listener);
    Server {
        base: format!("http://{addr}/rdap/"),
        addr,
        clock,
        app,
        _dir: dir,
    }
}

pub async fn fixture(tweak: impl FnOnce(&mut Config)) -> Server {
    start(Path::new("fixtures/registry.json"), tweak).await
}

impl Drop for Server {
    fn drop(&mut self) {
        self.app.shutdown().cancel();
    }
}

pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, h: &str) -> &str {
        self.headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn get(url: &str) -> Got {
    send(reqwest::Client::new().get(url)).await
}

pub async fn send(rb: reqwest::RequestBuilder) -> Got {
    let r = rb.send().await.unwrap();
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

/// [`get`] from a plain (non-async) test, such as the ones driving the
/// real binary; loopback only, so no proxy.
pub fn get_blocking(url: &str) -> Got {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let c = reqwest::Client::builder().no_proxy().build().unwrap();
            send(c.get(url)).await
        })
}

/// An RDAP object's `status` values.
pub fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The value of a WHOIS answer's `state:` line.
pub fn whois_state(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("state:"))
        .unwrap_or_else(|| panic!("no state line:\n{answer}"))
        .trim()
        .to_string()
}

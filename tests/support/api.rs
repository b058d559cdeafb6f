//! A real `zonekeeper` HTTP server on 127.0.0.1:0 over a temporary store
//! loaded from `fixtures/registry.json`, with a manual clock.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::model::Timestamp;
use zonekeeper::store::{RedbStore, Store};

pub struct Server {
    pub base: String,
    pub app: App,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn start_time() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

pub fn token(handle: &str) -> String {
    zonekeeper::synth::sample_token(handle)
}

impl Server {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.http.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut cfg);
        let store = RedbStore::open(&dir.path().join("zk.redb")).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        zonekeeper::import::import_file(
            &store,
            &root.join("fixtures/registry.json"),
            &cfg,
            start_time(),
        )
        .unwrap();
        let clock = ManualClock::new(start_time());
        let app = App::new(cfg, Arc::new(store), Arc::new(clock.clone())).unwrap();
        Self::serve(app, clock, dir).await
    }

    pub async fn serve(app: App, clock: ManualClock, dir: tempfile::TempDir) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        super::serve_http(&app, listener);
        Server {
            base: format!("http://{addr}"),
            app,
            clock,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn store(&self) -> &dyn Store {
        self.app.store().as_ref()
    }

    /// Domains of `registrar` (first `n`), as stored.
    pub fn domains_of(&self, registrar: &str, n: usize) -> Vec<String> {
        self.store()
            .domains_by_registrar(registrar, None, n)
            .unwrap()
            .0
    }

    pub fn get(&self, path: &str, tok: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.get(self.url(path));
        match tok {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn put_json(
        &self,
        path: &str,
        tok: &str,
        body: serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.http.put(self.url(path)).bearer_auth(tok).json(&body)
    }

    pub fn post(&self, path: &str, tok: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(tok)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.app.shutdown().cancel();
    }
}

/// Status and JSON body; asserts problem documents carry the right type.
pub async fn send(r: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status} {text}");
    }
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if status >= 400 {
        assert_eq!(v["status"], status, "{v}");
        assert!(v["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:zonekeeper:problem:"));
    }
    (status, v)
}

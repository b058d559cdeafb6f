//! What every dashboard page shares: the process handle and the HTML
//! response around a page.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::delegation::outage::{Outage, OutageDetector};
use crate::delegation::Policy;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::store::StoreError;

use super::html::{esc, page};

/// What the dashboard uses of the process, and nothing else (built by
/// [`crate::app::App::dashboard`]).
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    /// The delegation policy (rules shown on a domain page).
    pub policy: Arc<Policy>,
    /// The registry-side outage detector (a banner while one is in force).
    pub outage: Arc<Mutex<OutageDetector>>,
    /// EPP sessions logged in now.
    pub epp_sessions: Arc<Sessions>,
}

impl Deps {
    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(super) fn outage(&self) -> Option<Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
    }
}

pub(super) fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub(super) fn html_response(status: StatusCode, nonce: &str, body: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(super) fn error_page(deps: &Deps, status: StatusCode, title: &str, detail: &str) -> Response {
    let n = nonce();
    let body = format!(
        "<h2>{}</h2>\n<p>{}</p>\n<p><a href=\"/\">Back to the overview</a></p>",
        esc(title),
        esc(detail)
    );
    html_response(status, &n, page(title, deps.now(), &n, &body))
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

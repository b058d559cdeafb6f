//! What every handler of the registrar API shares: the state (tokens,
//! limits, the `/check` engine), the JSON body extractor, the hop to a
//! blocking thread, and the parsing and ownership checks of a path's
//! domain. A leaf: it imports nothing from `api`'s `mod.rs`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::auth::{Authenticates, Caller, Limits, Tokens};
use super::problem::Problem;
use crate::app::writer::Writer;
use crate::checks::{Profile, Verifier};
use crate::config::Config;
use crate::lifecycle::{self, Status};
use crate::model::{Domain, Timestamp};
use crate::names::DomainName;

/// Checks in flight per registrar, under the global limit, so one registrar
/// cannot hold every slot and starve the others.
pub type PerCaller = crate::ratelimit::Slots<String>;
/// One registrar's slot; given back on drop.
pub type CallerSlot = crate::ratelimit::Slot<String>;

#[derive(Clone)]
pub struct ApiState {
    /// The registry service and what it reads (store, config, zones,
    /// clock): all of the process the API uses.
    pub app: Writer,
    pub tokens: Arc<Tokens>,
    pub limits: Arc<Limits>,
    pub checks: Arc<tokio::sync::Semaphore>,
    /// Checks in flight per registrar (`api.max_concurrent_checks_per_registrar`).
    pub checks_per_caller: Arc<PerCaller>,
    /// The probe engine for `/check`, or why it could not be built (a bad
    /// profile file): then `/check` answers 503 and the rest works.
    pub verifier: Result<Arc<Verifier>, String>,
}

fn build_verifier(cfg: &Config) -> Result<Arc<Verifier>, String> {
    let profile = match &cfg.delegation.profile {
        Some(p) => Profile::load(p).map_err(|e| e.to_string())?,
        None => Profile::registry_default(),
    };
    Verifier::new(&cfg.probe, profile)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

impl ApiState {
    pub fn new(app: Writer) -> Self {
        Self {
            tokens: Arc::new(Tokens::new(app.store.clone(), app.clock.clone())),
            limits: Arc::new(Limits::new(app.config.api.rate_limit_per_minute)),
            checks: Arc::new(tokio::sync::Semaphore::new(
                app.config.api.max_concurrent_checks,
            )),
            checks_per_caller: PerCaller::new(app.config.api.max_concurrent_checks_per_registrar),
            verifier: build_verifier(&app.config).inspect_err(|e| {
                tracing::error!("registrar API: /check unavailable: {e}");
            }),
            app,
        }
    }
}

impl Authenticates for ApiState {
    fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }
}

// ---- request bodies ------------------------------------------------------

/// A JSON body: `application/json`, within the size limit, no unknown
/// fields (the target types deny them). Malformed JSON is 400; JSON that
/// does not fit the schema is 422.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Problem> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !(mime.eq_ignore_ascii_case("application/json")
            || (mime.starts_with("application/") && mime.ends_with("+json")))
        {
            return Err(Problem::unsupported_media_type());
        }
        let limit = state.app.config.http.max_body_bytes;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::too_large(limit)
                } else {
                    Problem::bad_request("bad-body", e.body_text())
                }
            })?;
        if bytes.len() > limit {
            return Err(Problem::too_large(limit));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => Problem::invalid(
                    format!("the body does not match the schema: {e}"),
                    Vec::new(),
                ),
                _ => Problem::bad_request("bad-json", format!("the body is not valid JSON: {e}")),
            })
    }
}

// ---- helpers -------------------------------------------------------------

/// Run store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(format!("task failed: {e}")))?
}

pub(crate) fn parse_name(
    app: &Writer,
    raw: Result<Path<String>, PathRejection>,
) -> Result<DomainName, Problem> {
    let Path(raw) = raw.map_err(|e| Problem::bad_request("bad-path", e.body_text()))?;
    app.zones
        .parse_domain(&raw)
        .map_err(|e| Problem::bad_request("bad-name", format!("'{raw}': {e}")))
}

/// The caller's own, existing domain with its lifecycle status.
pub(crate) fn own_domain(
    app: &Writer,
    caller: &Caller,
    name: &DomainName,
    now: Timestamp,
) -> Result<(Domain, Status), Problem> {
    let d = app
        .store
        .domain(name.as_str())?
        .ok_or_else(|| Problem::no_such_domain(name.as_str()))?;
    // As of now: a registrar change past its automatic approval is done.
    let d = lifecycle::as_of(&d, now);
    let st = lifecycle::evaluate(&d, now, &app.config.lifecycle);
    if !st.exists() {
        return Err(Problem::no_such_domain(name.as_str()));
    }
    if d.registrar != caller.handle {
        return Err(Problem::forbidden(name.as_str()));
    }
    Ok((d, st))
}

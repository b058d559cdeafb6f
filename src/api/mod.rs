//! The registrar API (docs/api.md) under `/api/v1/`.
//!
//! Every call but the OpenAPI document needs a bearer token; a registrar
//! reads and changes only the domains it sponsors. Errors are RFC 7807
//! problem documents.
//!
//! Existence vs authorisation: a name that is not registered (or whose
//! registration is cancelled) is 404 for every caller; a registered name
//! of another registrar is 403. This tells a registrar that the name is
//! registered, which WHOIS and RDAP publish anyway, and nothing more: the
//! 403 carries no data of the domain.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;

use crate::app::writer::Writer;
use crate::checks::NsTarget;
use crate::config::Config;
use crate::lifecycle;
use crate::model::{DelegationRecord, DelegationState, Timestamp};
use crate::names::DomainName;
use crate::registry::Actor;
use crate::registry::NameserverIn;
use crate::store::Store;

pub mod auth;
mod ops;
pub mod problem;
mod state;
mod view;
mod webhook;

pub use view::*;

use auth::Caller;
pub use ops::EventOut;
pub use problem::{FieldError, Problem};
use state::{blocking, own_domain, parse_name};
pub use state::{ApiJson, ApiState, CallerSlot, PerCaller};

/// The OpenAPI 3 description of this API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
/// Most domain keys one list call examines (keeps a filtered page cheap; a
/// page may then hold fewer than `limit` items and still have a cursor).
const LIST_SCAN_BUDGET: usize = 5000;
/// History events in a delegation view.
const HISTORY_SHOWN: usize = 20;

/// One route of the API: method, path template (as in the OpenAPI
/// document) and handler. The router is built from this table, and the
/// OpenAPI sync test walks it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    handler: MethodRouter<ApiState>,
}

fn routes() -> Vec<Route> {
    let r = |method, path, handler| Route {
        method,
        path,
        handler,
    };
    vec![
        r("GET", "/api/v1/openapi.json", get(openapi)),
        r("GET", "/api/v1/domains", get(list_domains)),
        r(
            "PUT",
            "/api/v1/domains/{name}/nameservers",
            put(declare_nameservers),
        ),
        r(
            "GET",
            "/api/v1/domains/{name}/delegation",
            get(get_delegation),
        ),
        r("PUT", "/api/v1/domains/{name}/ds", put(declare_ds)),
        r("DELETE", "/api/v1/domains/{name}/ds", delete(remove_ds)),
        r("POST", "/api/v1/domains/{name}/retest", post(retest)),
        r("POST", "/api/v1/check", post(check)),
        r("POST", "/api/v1/domains", post(ops::create)),
        r("GET", "/api/v1/domains/{name}", get(ops::show)),
        r(
            "GET",
            "/api/v1/domains/{name}/availability",
            get(ops::availability),
        ),
        r("POST", "/api/v1/domains/{name}/renew", post(ops::renew)),
        r("PUT", "/api/v1/domains/{name}/contacts", put(ops::contacts)),
        r(
            "PUT",
            "/api/v1/domains/{name}/client-statuses",
            put(ops::client_statuses),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/registrant-change",
            post(ops::registrant_request),
        ),
        r(
            "DELETE",
            "/api/v1/domains/{name}/registrant-change",
            delete(ops::registrant_cancel),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/registrant-change/accept",
            post(ops::registrant_accept),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/auth-code",
            post(ops::reset_auth_code),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/transfer",
            post(ops::transfer_request),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/transfer/approve",
            post(ops::transfer_approve),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/transfer/reject",
            post(ops::transfer_reject),
        ),
        r("GET", "/api/v1/transfers", get(ops::transfers)),
        r("POST", "/api/v1/domains/{name}/close", post(ops::close)),
        r(
            "DELETE",
            "/api/v1/domains/{name}/close",
            delete(ops::revoke_close),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/verification",
            post(ops::verification_answer),
        ),
        r(
            "POST",
            "/api/v1/domains/{name}/verification-request",
            post(ops::verification_request),
        ),
        r("GET", "/api/v1/events", get(ops::events)),
        r("GET", "/api/v1/webhook", get(webhook::get_webhook)),
    ]
}

/// `(method, path)` of every route, for the OpenAPI sync test.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|r| (r.method, r.path)).collect()
}

pub fn router(app: impl Into<Writer>) -> Router {
    let app: Writer = app.into();
    let state = ApiState::new(app);
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .route("/api/v1", any(no_route))
        .route("/api/v1/", any(no_route))
        .route("/api/v1/{*rest}", any(no_route))
        .layer(axum::middleware::map_response(count_response))
        .with_state(state)
}

async fn count_response(res: Response) -> Response {
    metrics::counter!("zonekeeper_api_requests_total", "status" => res.status().as_str().to_string())
        .increment(1);
    res
}

async fn no_route(uri: Uri) -> Problem {
    Problem::not_found(uri.path())
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

// ---- request bodies ------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareIn {
    pub nameservers: Vec<NameserverIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    pub domain: String,
    pub nameservers: Vec<NameserverIn>,
    /// A DS set to check with (the DNSSEC checks then run).
    #[serde(default)]
    pub ds: Vec<crate::registry::input::DsIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsSetIn {
    pub ds: Vec<crate::registry::input::DsIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

// ---- helpers -------------------------------------------------------------

fn to_field_errors(v: Vec<(String, String)>) -> Vec<FieldError> {
    v.into_iter()
        .map(|(field, reason)| FieldError { field, reason })
        .collect()
}

// ---- handlers ------------------------------------------------------------

async fn get_delegation(
    State(s): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DelegationView>, Problem> {
    let name = parse_name(&s.app, path)?;
    let app = s.app.clone();
    blocking(move || {
        let now = app.now();
        let (d, _) = own_domain(&app, &caller, &name, now)?;
        let rec = app
            .store
            .delegation(name.as_str())?
            .unwrap_or_else(|| DelegationRecord::undelegated(now));
        let mut view = delegation_view(&app.config, &d, &rec, now);
        view.history = history_out(app.store.history(name.as_str(), HISTORY_SHOWN)?);
        Ok(Json(view))
    })
    .await
}

async fn declare_nameservers(
    State(s): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<DeclareIn>,
) -> Result<Json<DelegationView>, Problem> {
    let name = parse_name(&s.app, path)?;
    let app = s.app.clone();
    blocking(move || {
        let actor = Actor::Registrar(caller.handle.clone());
        let (d, rec) = app
            .registry()
            .declare_nameservers(&actor, name.as_str(), &body.nameservers)?;
        tracing::info!(domain = %name, registrar = %caller.handle, state = rec.state.as_str(), "nameservers declared via API");
        let mut view = delegation_view(&app.config, &d, &rec, app.now());
        view.history = history_out(app.store.history(name.as_str(), HISTORY_SHOWN)?);
        Ok(Json(view))
    })
    .await
}

async fn declare_ds(
    State(s): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<DsSetIn>,
) -> Result<Json<DelegationView>, Problem> {
    set_ds(s, caller, path, body.ds).await
}

async fn remove_ds(
    State(s): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DelegationView>, Problem> {
    set_ds(s, caller, path, Vec::new()).await
}

/// Declare (or, empty, remove) the DS set: tested like an NS change.
async fn set_ds(
    s: ApiState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ds: Vec<crate::registry::input::DsIn>,
) -> Result<Json<DelegationView>, Problem> {
    let name = parse_name(&s.app, path)?;
    let app = s.app.clone();
    blocking(move || {
        // Not found and not yours come before the registry's DS rule.
        own_domain(&app, &caller, &name, app.now())?;
        let actor = Actor::Registrar(caller.handle.clone());
        let (d, rec) = app
            .registry()
            .declare_ds(&actor, name.as_str(), ds, "registrar API")?;
        tracing::info!(domain = %name, registrar = %caller.handle, state = rec.state.as_str(), ds = d.ds.len(), "DS set declared via API");
        let mut view = delegation_view(&app.config, &d, &rec, app.now());
        view.history = history_out(app.store.history(name.as_str(), HISTORY_SHOWN)?);
        Ok(Json(view))
    })
    .await
}

async fn retest(
    State(s): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DelegationView>, Problem> {
    let name = parse_name(&s.app, path)?;
    let app = s.app.clone();
    blocking(move || {
        let actor = Actor::Registrar(caller.handle.clone());
        let (d, rec) = app.registry().retest(&actor, name.as_str())?;
        tracing::info!(domain = %name, registrar = %caller.handle, "retest requested via API");
        let mut view = delegation_view(&app.config, &d, &rec, app.now());
        view.history = history_out(app.store.history(name.as_str(), HISTORY_SHOWN)?);
        Ok(Json(view))
    })
    .await
}

async fn list_domains(
    State(s): State<ApiState>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DomainList>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request("bad-query", e.body_text()))?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(x) => Some(DelegationState::parse(x).ok_or_else(|| {
            Problem::bad_request(
                "bad-query",
                format!(
                    "unknown state '{x}'; use one of: {}",
                    DelegationState::ALL.map(|s| s.as_str()).join(", ")
                ),
            )
        })?),
    };
    let page = s.app.config.api.page_size.max(1);
    let limit = q.limit.unwrap_or(page).clamp(1, page);
    let app = s.app.clone();
    blocking(move || {
        let now = app.now();
        let (domains, next_cursor) = list_page(
            app.store.as_ref(),
            &app.config,
            &caller.handle,
            state,
            q.cursor.as_deref().filter(|c| !c.is_empty()),
            limit,
            now,
        )?;
        Ok(Json(DomainList {
            domains,
            next_cursor,
        }))
    })
    .await
}

/// One page of the caller's domains, optionally in one state. Scans at most
/// `LIST_SCAN_BUDGET` index keys; the cursor is the last key examined.
pub fn list_page(
    store: &dyn Store,
    cfg: &Config,
    handle: &str,
    state: Option<DelegationState>,
    cursor: Option<&str>,
    limit: usize,
    now: Timestamp,
) -> Result<(Vec<DomainItem>, Option<String>), crate::store::StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = cursor.map(str::to_string);
    let mut scanned = 0usize;
    loop {
        let want = (LIST_SCAN_BUDGET - scanned).min((limit * 2).max(64));
        let (keys, next) = match state {
            None => store.domains_by_registrar(handle, after.as_deref(), want)?,
            Some(s) => store.domains_by_state(s, after.as_deref(), want)?,
        };
        let n = keys.len();
        for (i, k) in keys.into_iter().enumerate() {
            scanned += 1;
            let more_here = i + 1 < n;
            // Other registrars' names (state index) cost one read, not two.
            let d = match store.domain(&k)? {
                Some(d) if d.registrar == handle => d,
                _ => {
                    after = Some(k);
                    continue;
                }
            };
            let st = lifecycle::evaluate(&d, now, &cfg.lifecycle);
            let rec = store
                .delegation(&k)?
                .unwrap_or_else(|| DelegationRecord::undelegated(now));
            if st.exists() && state.is_none_or(|s| s == rec.state) {
                out.push(DomainItem {
                    name: k.clone(),
                    unicode_name: d.name.to_unicode(),
                    state: rec.state,
                    in_zone: lifecycle::in_zone(&rec, &st),
                });
            }
            after = Some(k);
            if out.len() == limit {
                let more = more_here || next.is_some();
                return Ok((out, if more { after } else { None }));
            }
        }
        if next.is_none() {
            return Ok((out, None));
        }
        if scanned >= LIST_SCAN_BUDGET {
            return Ok((out, after));
        }
    }
}

/// Nameservers with bare addresses, and each address's port.
type BarePorts = (Vec<NameserverIn>, Vec<Vec<u16>>);
/// A nameserver to probe and its addresses with ports.
pub type Target = (crate::names::HostName, Vec<std::net::SocketAddr>);

/// Test servers listen on high ports: like the CLI, `/check` accepts
/// `IP:PORT` / `[IPv6]:PORT`, but only for loopback addresses and only when
/// `probe.allow_private_targets` is set (a development or test registry).
/// Returns the nameservers with bare addresses and each address's port.
fn split_ports(cfg: &Config, ns: &[NameserverIn]) -> Result<BarePorts, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut bare = Vec::with_capacity(ns.len());
    let mut ports = Vec::with_capacity(ns.len());
    for (j, n) in ns.iter().enumerate() {
        let mut addrs = Vec::with_capacity(n.addresses.len());
        let mut ps = Vec::with_capacity(n.addresses.len());
        for (k, a) in n.addresses.iter().enumerate() {
            match a.trim().parse::<std::net::SocketAddr>() {
                Ok(sa) => {
                    if sa.port() != 53
                        && !(cfg.probe.allow_private_targets && sa.ip().is_loopback())
                    {
                        errs.push(FieldError {
                            field: format!("nameservers[{j}].addresses[{k}]"),
                            reason: "a port other than 53 is accepted only for loopback test servers (probe.allow_private_targets)".into(),
                        });
                    }
                    addrs.push(sa.ip().to_string());
                    ps.push(sa.port());
                }
                Err(_) => {
                    addrs.push(a.clone());
                    ps.push(53);
                }
            }
        }
        bare.push(NameserverIn {
            name: n.name.clone(),
            addresses: addrs,
        });
        ports.push(ps);
    }
    if errs.is_empty() {
        Ok((bare, ports))
    } else {
        Err(errs)
    }
}

/// Validate a `/check` request into the domain and its probe targets.
pub fn check_targets(app: &Writer, body: &CheckIn) -> Result<(DomainName, Vec<Target>), Problem> {
    let name = app.zones.parse_domain(&body.domain).map_err(|e| {
        Problem::invalid(
            "the domain name was refused",
            vec![FieldError {
                field: "domain".into(),
                reason: e.to_string(),
            }],
        )
    })?;
    if body.nameservers.is_empty() {
        return Err(Problem::invalid(
            "give the nameservers to check",
            vec![FieldError {
                field: "nameservers".into(),
                reason: format!(
                    "is empty; at least {} are required",
                    app.config.delegation.min_nameservers
                ),
            }],
        ));
    }
    let (bare, ports) = split_ports(&app.config, &body.nameservers)
        .map_err(|e| Problem::invalid("the nameserver set was refused", e))?;
    let ns = crate::registry::input::validate_nameservers(
        name.as_str(),
        &bare,
        app.config.delegation.min_nameservers,
    )
    .map_err(|e| Problem::invalid("the nameserver set was refused", to_field_errors(e)))?;
    let targets = ns
        .into_iter()
        .zip(ports)
        .map(|(n, ps)| {
            let addrs = n
                .addresses
                .iter()
                .zip(ps)
                .map(|(ip, p)| std::net::SocketAddr::new(*ip, p))
                .collect();
            (n.name, addrs)
        })
        .collect();
    Ok((name, targets))
}

async fn check(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CheckIn>,
) -> Result<Json<crate::model::CheckReport>, Problem> {
    let (name, targets) = check_targets(&s.app, &body)?;
    let ds = crate::registry::input::ds_records(&body.ds, true)?;
    let verifier = s
        .verifier
        .as_ref()
        .map_err(|e| Problem::unavailable(format!("the verifier is not available: {e}")))?
        .clone();
    // This registrar's share first, so its excess never takes a global slot.
    let _slot = s
        .checks_per_caller
        .try_acquire(&caller.handle)
        .ok_or_else(|| {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "checks-in-flight",
                "Too many of your checks are running",
            )
            .detail(format!(
                "at most {} checks of one registrar run at once; retry when one has finished",
                s.app.config.api.max_concurrent_checks_per_registrar
            ));
            p.retry_after = Some(1);
            p
        })?;
    let _permit = s
        .checks
        .clone()
        .try_acquire_owned()
        .map_err(|_| Problem::unavailable("too many checks are running; retry shortly"))?;
    let targets: Vec<NsTarget> = targets
        .into_iter()
        .map(|(name, addrs)| NsTarget { name, addrs })
        .collect();
    // Side-effect free: nothing is read from or written to the store.
    Ok(Json(verifier.check_targets_ds(&name, &targets, &ds).await))
}

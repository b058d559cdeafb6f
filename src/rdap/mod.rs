//! RDAP server (docs/rdap.md; RFC 7480–7484, 9082, 9083, 9536, 9537).
//!
//! Lookups and searches read the store directly (point reads take
//! microseconds) and publish only `crate::public` projections, rendered by
//! [`view`]. Every response — errors included — is `application/rdap+json`
//! with CORS `*`; rate limits are per client (IPv4 address or IPv6 /64).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::ratelimit::ClientLimiter;

mod error;
mod lookup;
mod search;
mod state;
pub mod view;

pub use error::RdapError;
use error::{method_not_allowed, unsupported};
use lookup::{domain, entity, help, nameserver};
use search::{domains, entities, nameservers, reverse_domains};
pub use state::Deps;
use state::{Rdap, Shared};

use view::MEDIA_TYPE;

pub fn router(deps: impl Into<Deps>) -> Router {
    let deps = deps.into();
    let limiter = ClientLimiter::new(
        deps.config.rdap.rate_limit_per_minute,
        deps.config.rdap.rate_limit_exempt.clone(),
    );
    let st: Shared = Arc::new(Rdap { deps, limiter });
    // Forget clients whose allowance refilled, so the limiter's memory is
    // bounded by the clients of the last minute or so.
    {
        let st = Arc::downgrade(&st);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    match st.upgrade() {
                        Some(s) => s.limiter.retain_recent(),
                        None => return,
                    }
                }
            });
        }
    }
    Router::new()
        .route("/domain/{name}", get(domain))
        .route("/nameserver/{name}", get(nameserver))
        .route("/entity/{handle}", get(entity))
        .route("/help", get(help))
        .route("/", get(unsupported))
        .route("/domains", get(domains))
        .route("/domains/reverse_search/entity", get(reverse_domains))
        .route("/nameservers", get(nameservers))
        .route("/entities", get(entities))
        .fallback(unsupported)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(st.clone(), edge))
        .with_state(st)
}

// ---- the edge: rate limit, content type, CORS, metrics --------------------

fn kind_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "domain" => "domain",
        "nameserver" => "nameserver",
        "entity" => "entity",
        "help" => "help",
        "domains" => "domains",
        "nameservers" => "nameservers",
        "entities" => "entities",
        _ => "other",
    }
}

fn status_label(s: StatusCode) -> metrics::SharedString {
    match s.as_u16() {
        200 => "200".into(),
        400 => "400".into(),
        404 => "404".into(),
        405 => "405".into(),
        422 => "422".into(),
        429 => "429".into(),
        500 => "500".into(),
        501 => "501".into(),
        n => n.to_string().into(),
    }
}

async fn edge(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let kind = kind_of(req.uri().path());
    let started = std::time::Instant::now();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let mut resp = match client.map(|ip| st.limiter.check(ip)) {
        Some(Err(wait)) => {
            metrics::counter!("zonekeeper_rate_limited_total", "service" => "rdap").increment(1);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut e = RdapError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests from this client; retry in {secs} s."),
            );
            e.retry_after = Some(secs.max(1));
            e.into_response()
        }
        _ => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    metrics::histogram!(crate::metrics::RDAP_DURATION, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "zonekeeper_rdap_requests_total",
        "kind" => kind,
        "status" => status_label(resp.status())
    )
    .increment(1);
    resp
}

//! RDAP server (docs/rdap.md; RFC 7480–7484, 9082, 9083, 9536, 9537).
//!
//! Lookups and searches read the store directly (point reads take
//! microseconds) and publish only `crate::public` projections, rendered by
//! [`view`]. Every response — errors included — is `application/rdap+json`
//! with CORS `*`; rate limits are per client (IPv4 address or IPv6 /64).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;

use crate::answer_cache::Answers;
use crate::answer_cache::{Entry, Fact, FactCache};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::lifecycle;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::names::{self, NameError};
use crate::public::{self, PublicContact, PublicDomain, PublicNameserver};
use crate::ratelimit::ClientLimiter;
use crate::store::stamps::Key;
use crate::store::Store;
use crate::store::StoreError;

/// Fact-cache kinds of the RDAP lookups (see [`FactCache::key`]).
const NAMESERVER: u8 = b'N';
const ENTITY: u8 = b'E';

pub mod view;

use view::{Ctx, Redacted, CONFORMANCE, MEDIA_TYPE};

/// Store pages read per search before giving up on filling the limit with
/// live (not cancelled) domains; bounds the work of one request.
const MAX_SEARCH_PAGES: usize = 8;

/// What the RDAP server uses of the process, and nothing else (built by
/// [`crate::app::App::rdap`]).
#[derive(Clone)]
pub struct Deps {
    /// `rdap.*` (limits, base URL, search limit) and `lifecycle.*`.
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    /// Cached answers and facts, shared with WHOIS.
    pub answers: Arc<Answers>,
}

impl Deps {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn last_update_shown(&self, now: Timestamp) -> crate::store::Result<Timestamp> {
        self.answers.last_update_shown(self.store.as_ref(), now)
    }
}

struct Rdap {
    deps: Deps,
    limiter: ClientLimiter,
}

type Shared = Arc<Rdap>;

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

// ---- errors -------------------------------------------------------------

/// An RDAP error response (RFC 9083 §6).
#[derive(Debug)]
pub struct RdapError {
    status: StatusCode,
    description: String,
    retry_after: Option<u64>,
    /// The store could not be read (a storage condition): the last answer
    /// kept may be served instead.
    storage: bool,
}

impl RdapError {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
            retry_after: None,
            storage: false,
        }
    }
    fn bad(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, d)
    }
    fn not_found(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, d)
    }
    fn unprocessable(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, d)
    }
    fn unsupported(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, d)
    }
}

/// A store that cannot be read now (an I/O error being recovered from, a
/// database restarting) is a temporary condition: 503 with `Retry-After`,
/// not a 500 (cached answers are still served before the store is read).
impl From<StoreError> for RdapError {
    fn from(e: StoreError) -> Self {
        let storage = e.storage().is_some();
        if storage {
            tracing::warn!("RDAP store read failed: {e}");
        } else {
            tracing::error!("RDAP store read failed: {e}");
        }
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The registry database could not be read; try again later.",
        );
        r.retry_after = Some(u64::from(crate::store::STORAGE_RETRY_AFTER));
        r.storage = storage;
        r
    }
}

impl IntoResponse for RdapError {
    fn into_response(self) -> Response {
        let body = view::ErrorObject {
            rdap_conformance: CONFORMANCE,
            error_code: self.status.as_u16(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            description: vec![self.description],
        };
        let mut r = (self.status, rdap_json(&body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

type Res = Result<Response, RdapError>;

/// Serialise as the response body (content type is set by [`edge`]).
fn rdap_json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => b.into_response(),
        // Our own types always serialise; keep a well-formed error anyway.
        Err(e) => {
            tracing::error!("RDAP serialisation failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "{\"errorCode\":500}").into_response()
        }
    }
}

async fn unsupported(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed().await;
    }
    RdapError::unsupported(
        "This server supports domain, nameserver, entity and help lookups and \
         domains, nameservers and entities searches.",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    let mut r = RdapError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "RDAP is read-only: use GET or HEAD.",
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
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

// ---- context ------------------------------------------------------------

/// The base URL for links: `rdap.base_url`, else derived from the HTTP
/// listen address (a development setup). Never from the request's Host
/// header, which any client sets: links in answers (and in caches between
/// the client and us) would point wherever it said.
fn base_url(st: &Rdap) -> String {
    crate::config::rdap_base_url(&st.deps.config)
}

fn ctx(st: &Rdap) -> Result<Ctx, RdapError> {
    ctx_at(st, st.deps.now())
}

fn ctx_at(st: &Rdap, now: crate::model::Timestamp) -> Result<Ctx, RdapError> {
    Ok(Ctx {
        base: base_url(st),
        now,
        db_updated: st.deps.last_update_shown(now)?,
    })
}

// ---- lookups ------------------------------------------------------------

fn name_error(e: NameError) -> RdapError {
    match e {
        // Well-formed names this registry is not authoritative for.
        NameError::NotInZone { .. } | NameError::WrongLevel { .. } => {
            RdapError::not_found(format!("{e}."))
        }
        _ => RdapError::bad(format!("Invalid name: {e}.")),
    }
}

/// A live domain's public view, and the domain record and lifecycle status
/// it was built from (for the answer cache).
type Loaded = (PublicDomain, crate::model::Domain, lifecycle::Status);

fn load_domain_full(
    st: &Rdap,
    ascii: &str,
    now: crate::model::Timestamp,
) -> Result<Option<Loaded>, RdapError> {
    let Some(b) = st.deps.store.bundle(ascii)? else {
        return Ok(None);
    };
    let status = lifecycle::evaluate(&b.domain, now, &st.deps.config.lifecycle);
    let Some(p) = public::domain_with(&b, &status) else {
        return Ok(None);
    };
    Ok(Some((p, b.domain, status)))
}

/// [`load_domain_full`]: the view alone.
fn load_domain(
    st: &Rdap,
    ascii: &str,
    now: crate::model::Timestamp,
) -> Result<Option<PublicDomain>, RdapError> {
    Ok(load_domain_full(st, ascii, now)?.map(|(p, _, _)| p))
}

/// What precedes the `last update of RDAP database` time in a serialised
/// domain object (a JSON string holds no unescaped `"`, so nothing a
/// registrant wrote can look like it).
const DB_EVENT: &[u8] = br#"{"eventAction":"last update of RDAP database","eventDate":""#;

/// The request's `If-None-Match` values: the one header a domain lookup
/// reads (extracting the whole `HeaderMap` would copy every header).
struct IfNoneMatch(Vec<HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .cloned()
                .collect(),
        ))
    }
}

/// `If-None-Match` names this representation (or is `*`): RFC 9110 §13.1.2,
/// weak comparison.
fn not_modified(inm: &IfNoneMatch, tag: &HeaderValue) -> bool {
    let ours = tag.as_bytes();
    inm.0
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == ours)
}

/// The body with its entity tag, or `304 Not Modified` when the client
/// already has it. (`HEAD` gets the same headers; axum drops the body.)
fn cached_response(inm: &IfNoneMatch, e: &Entry) -> Response {
    tagged(inm, e.body.clone(), e.etag.clone())
}

/// [`cached_response`] of a body with entity tag `tag`.
fn tagged(inm: &IfNoneMatch, body: Bytes, tag: HeaderValue) -> Response {
    let mut r = if not_modified(inm, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    r.headers_mut().insert(header::ETAG, tag);
    r
}

async fn domain(
    State(st): State<Shared>,
    headers: IfNoneMatch,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Res {
    let Path(name) = name.map_err(|e| RdapError::bad(format!("Bad domain name: {e}.")))?;
    let name = st.deps.zones.parse_domain(&name).map_err(name_error)?;
    let cache = &st.deps.answers.rdap_domain;
    let stamps = st.deps.store.stamps();
    let now = st.deps.now();
    // Read before the store: a commit after this makes the entry stale.
    let generation = stamps.map_or(0, |s| s.generation());
    if let Some(s) = stamps {
        if let Some(e) = cache.get(name.as_str(), s, now, &st.deps.config.lifecycle) {
            return Ok(cached_response(&headers, &e));
        }
    }
    match domain_fresh(&st, &headers, name.as_str(), now, generation) {
        // The store cannot be read: the last answer built, if any.
        Err(e) if e.storage => match cache.last_built(name.as_str()) {
            Some(entry) => {
                stale_served();
                Ok(cached_response(&headers, &entry))
            }
            None => Err(e),
        },
        r => r,
    }
}

/// A domain's answer read from the store (and kept in the answer cache,
/// tagged with `generation`, the store's before the read; 0 without
/// change stamps: kept only as the last answer built).
fn domain_fresh(
    st: &Rdap,
    headers: &IfNoneMatch,
    name: &str,
    now: crate::model::Timestamp,
    generation: u64,
) -> Res {
    let cache = &st.deps.answers.rdap_domain;
    let c = ctx_at(st, now)?;
    let Some((d, record, status)) = load_domain_full(st, name, c.now)? else {
        // Gone: not even a store outage may bring its last answer back.
        cache.forget(name);
        return Err(RdapError::not_found(format!(
            "Domain {name} is not registered."
        )));
    };
    let (mut dom, redacted) = view::domain(&c, &d, "$");
    dom.rdap_conformance = Some(CONFORMANCE);
    dom.notices = vec![view::terms(&c, &format!("domain/{}", d.name))];
    dom.redacted = redacted;
    let body = match serde_json::to_vec(&dom) {
        Ok(b) => Bytes::from(b),
        Err(_) => return Ok(rdap_json(&dom)),
    };
    let updated = c.db_updated;
    match Entry::new(generation, record, status, body.clone(), updated, DB_EVENT).map(Arc::new) {
        Some(e) => {
            cache.insert(name, e.clone());
            Ok(cached_response(headers, &e))
        }
        None => {
            let tag = crate::answer_cache::etag(crate::answer_cache::body_tag(&body));
            Ok(tagged(headers, body, tag))
        }
    }
}

/// Count an answer served from what was kept while the store could not
/// be read.
fn stale_served() {
    metrics::counter!("zonekeeper_stale_answers_total", "service" => "rdap").increment(1);
}

/// While the store cannot be read (`e` is a storage error): the context
/// and the last fact read under `key`, if any; else `e`.
fn last_fact(st: &Rdap, key: &str, e: RdapError) -> Result<(Ctx, Fact), RdapError> {
    if !e.storage {
        return Err(e);
    }
    let (Some(f), Some(db_updated)) = (
        st.deps.answers.facts.last_built(key),
        st.deps.answers.last_update_seen(),
    ) else {
        return Err(e);
    };
    stale_served();
    let c = Ctx {
        base: base_url(st),
        now: st.deps.now(),
        db_updated,
    };
    Ok((c, f.fact.clone()))
}

fn public_host(h: &crate::store::HostRecord) -> PublicNameserver {
    PublicNameserver {
        name: h.name.clone(),
        unicode_name: names::to_unicode(&h.name),
        addresses: h.addresses.clone(),
    }
}

async fn nameserver(
    State(st): State<Shared>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Res {
    let Path(name) = name.map_err(|e| RdapError::bad(format!("Bad nameserver name: {e}.")))?;
    let host =
        names::parse_host(&name).map_err(|e| RdapError::bad(format!("Invalid name: {e}.")))?;
    let key = FactCache::key(NAMESERVER, host.as_str());
    let k = Key::Host(host.as_str());
    let fresh = ctx(&st).and_then(|c| {
        let fact = st.deps.answers.facts.read_through(
            st.deps.store.stamps(),
            key.clone(),
            [k, k],
            || {
                Ok::<_, StoreError>(
                    st.deps
                        .store
                        .host(host.as_str())?
                        .map_or(Fact::Absent, Fact::Host),
                )
            },
        )?;
        Ok((c, fact))
    });
    let (c, fact) = match fresh {
        Ok(f) => f,
        Err(e) => last_fact(&st, &key, e)?,
    };
    let h = match fact {
        Fact::Host(h) if h.domains > 0 => h,
        _ => {
            return Err(RdapError::not_found(format!(
                "Nameserver {} is not known.",
                host.as_str()
            )))
        }
    };
    let mut ns = view::nameserver(&c, &public_host(&h));
    ns.rdap_conformance = Some(CONFORMANCE);
    ns.events = vec![view::db_event(&c)];
    ns.notices = vec![view::terms(&c, &format!("nameserver/{}", h.name))];
    Ok(rdap_json(&ns))
}

enum PublicEntity {
    Registrar(public::PublicRegistrar),
    Contact(PublicContact),
}

/// [`load_entity`] through the fact cache.
fn load_entity_cached(st: &Rdap, handle: &str) -> Result<Option<PublicEntity>, RdapError> {
    let key = FactCache::key(ENTITY, handle);
    let deps = [Key::Registrar(handle), Key::Contact(handle)];
    let fact = st
        .deps
        .answers
        .facts
        .read_through(st.deps.store.stamps(), key, deps, || {
            Ok::<_, RdapError>(match load_entity(st, handle)? {
                Some(PublicEntity::Registrar(r)) => Fact::Registrar(r),
                Some(PublicEntity::Contact(c)) => Fact::Contact(c),
                None => Fact::Absent,
            })
        })?;
    Ok(entity_of(fact))
}

fn entity_of(fact: Fact) -> Option<PublicEntity> {
    match fact {
        Fact::Registrar(r) => Some(PublicEntity::Registrar(r)),
        Fact::Contact(c) => Some(PublicEntity::Contact(c)),
        Fact::Absent | Fact::Host(_) => None,
    }
}

/// A registrar or an organisation by handle. A private person's handle is
/// not public: looking it up finds nothing, as if it did not exist.
fn load_entity(st: &Rdap, handle: &str) -> Result<Option<PublicEntity>, RdapError> {
    if let Some(r) = st.deps.store.registrar(handle)? {
        return Ok(Some(PublicEntity::Registrar(public::registrar(&r))));
    }
    Ok(st
        .deps
        .store
        .contact(handle)?
        .map(|c| public::contact(&c))
        .filter(|p| p.handle.is_some())
        .map(PublicEntity::Contact))
}

/// `handle` names a private person (whose handle is not public).
fn private_person(st: &Rdap, handle: &str) -> Result<bool, RdapError> {
    Ok(st.deps.store.registrar(handle)?.is_none()
        && st
            .deps
            .store
            .contact(handle)?
            .is_some_and(|c| c.kind == crate::model::ContactKind::Person))
}

fn entity_view(c: &Ctx, e: &PublicEntity, at: &str) -> (view::Entity, Vec<Redacted>) {
    match e {
        PublicEntity::Registrar(r) => (view::registrar_entity(c, r, vec!["registrar"]), vec![]),
        PublicEntity::Contact(p) => (
            view::contact_entity(c, p, vec![]),
            view::contact_redactions(p, at, "entity"),
        ),
    }
}

fn check_handle(h: &str) -> Result<(), RdapError> {
    if h.is_empty() || h.len() > 255 || h.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RdapError::bad("Invalid entity handle."));
    }
    Ok(())
}

async fn entity(
    State(st): State<Shared>,
    handle: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Res {
    let Path(handle) = handle.map_err(|e| RdapError::bad(format!("Bad entity handle: {e}.")))?;
    check_handle(&handle)?;
    let fresh = ctx(&st).and_then(|c| Ok((c, load_entity_cached(&st, &handle)?)));
    let (c, e) = match fresh {
        Ok(f) => f,
        Err(e) => {
            let (c, f) = last_fact(&st, &FactCache::key(ENTITY, &handle), e)?;
            (c, entity_of(f))
        }
    };
    let e = e.ok_or_else(|| RdapError::not_found(format!("Entity {handle} is not known.")))?;
    let (mut ent, redacted) = entity_view(&c, &e, "$");
    ent.rdap_conformance = Some(CONFORMANCE);
    ent.events = vec![view::db_event(&c)];
    ent.notices = vec![view::terms(
        &c,
        &format!("entity/{}", view::urlencode(&handle)),
    )];
    ent.redacted = redacted;
    Ok(rdap_json(&ent))
}

async fn help(State(st): State<Shared>) -> Res {
    let c = ctx(&st)?;
    let mut about = view::terms(&c, "help");
    about.description.push(
        "Lookups: domain/{name} (U- or A-label), nameserver/{name}, entity/{handle}. \
         Searches: domains?name=, domains?nsLdhName=, domains?nsIp=, nameservers?name=, \
         nameservers?ip=, entities?fn=, entities?handle= (a trailing * matches any \
         suffix). Reverse search (RFC 9536): domains/reverse_search/entity?handle= or \
         ?fn=, with optional role=registrant|administrative|technical|registrar."
            .into(),
    );
    Ok(rdap_json(&view::Help {
        rdap_conformance: CONFORMANCE,
        notices: vec![about],
        reverse_search_properties: view::reverse_search_properties(),
    }))
}

// ---- searches -----------------------------------------------------------

type Params = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// Exactly one supported search parameter, else 400 / 501.
fn one_param<'a>(
    q: &'a Params,
    supported: &[&'static str],
) -> Result<(&'static str, &'a str), RdapError> {
    let Ok(Query(q)) = q else {
        return Err(RdapError::bad("Malformed query string."));
    };
    let mut found = None;
    for (k, v) in q {
        let Some(key) = supported.iter().find(|s| **s == k) else {
            return Err(RdapError::unsupported(format!(
                "Unsupported search parameter '{k}'; supported: {}.",
                supported.join(", ")
            )));
        };
        if found.is_some() {
            return Err(RdapError::bad("Give exactly one search parameter."));
        }
        found = Some((*key, v.as_str()));
    }
    found.ok_or_else(|| {
        RdapError::bad(format!(
            "A search parameter is required: {}.",
            supported.join(", ")
        ))
    })
}

/// A search pattern: exact, or a prefix with one trailing `*`.
enum Pattern {
    Exact(String),
    Prefix(String),
}

/// Parse a name pattern (domains, nameservers): LDH characters and dots,
/// optionally ending in `*`. U-labels are converted when the pattern is
/// exact; a partial U-label cannot be matched against A-labels (422).
fn name_pattern(
    raw: &str,
    parse_exact: impl Fn(&str) -> Result<String, RdapError>,
) -> Result<Pattern, RdapError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(RdapError::bad("Empty search pattern."));
    }
    let Some(head) = raw.strip_suffix('*') else {
        if raw.contains('*') {
            return Err(RdapError::unprocessable(
                "Only a single trailing '*' is supported in search patterns.",
            ));
        }
        return parse_exact(raw).map(Pattern::Exact);
    };
    if head.contains('*') {
        return Err(RdapError::unprocessable(
            "Only a single trailing '*' is supported in search patterns.",
        ));
    }
    if !head.is_ascii() {
        return Err(RdapError::unprocessable(
            "Partial matching of U-labels is not supported; use the A-label (xn--) form.",
        ));
    }
    let head = head.to_ascii_lowercase();
    if let Some(c) = head
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(RdapError::bad(format!(
            "Invalid character {c:?} in search pattern."
        )));
    }
    if head.len() < 2 {
        return Err(RdapError::unprocessable(
            "Search pattern too broad: give at least 2 characters before '*'.",
        ));
    }
    Ok(Pattern::Prefix(head))
}

/// Collect up to `limit` items from successive store pages, skipping keys
/// `keep` rejects; returns whether more matched (truncated).
fn collect_pages<T>(
    limit: usize,
    mut page: impl FnMut(Option<&str>, usize) -> Result<crate::store::Page, RdapError>,
    mut keep: impl FnMut(&str) -> Result<Option<T>, RdapError>,
) -> Result<(Vec<T>, bool), RdapError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_SEARCH_PAGES {
        let (keys, next) = page(after.as_deref(), limit + 1)?;
        for k in &keys {
            if let Some(v) = keep(k)? {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(v);
            }
        }
        match next {
            Some(n) if !keys.is_empty() => after = Some(n),
            _ => return Ok((out, false)),
        }
    }
    // Gave up before exhausting the matches.
    Ok((out, true))
}

fn finish<T: Serialize>(
    c: &Ctx,
    self_path: &str,
    results: T,
    truncated: bool,
    redacted: Vec<Redacted>,
) -> Response {
    let mut notices = vec![view::terms(c, self_path)];
    if truncated {
        notices.push(view::truncated_notice());
    }
    rdap_json(&view::SearchResults {
        rdap_conformance: CONFORMANCE,
        results,
        notices,
        redacted,
    })
}

fn domain_results(c: &Ctx, names: Vec<PublicDomain>, truncated: bool, self_path: &str) -> Response {
    let mut redacted = Vec::new();
    let mut out = Vec::with_capacity(names.len());
    for (i, d) in names.iter().enumerate() {
        let (dom, r) = view::domain(c, d, &format!("$.domainSearchResults[{i}]"));
        out.push(dom);
        redacted.extend(r);
    }
    finish(
        c,
        self_path,
        view::DomainResults {
            domain_search_results: out,
        },
        truncated,
        redacted,
    )
}

/// A domain search by name prefix, through the search cache.
async fn search_by_prefix(st: &Rdap, c: &Ctx, prefix: &str, limit: usize) -> Res {
    let stamps = st.deps.store.stamps();
    let cache = &st.deps.answers.searches;
    let cfg = &st.deps.config.lifecycle;
    if let Some(e) = stamps.and_then(|s| cache.get(prefix, s, c.now, cfg)) {
        return Ok(e.body.clone().into_response());
    }
    // Read before the store: a later commit makes the answer stale.
    let generation = stamps.map(|s| s.generation());
    let mut listed = Vec::new();
    let (found, truncated) = collect_pages(
        limit,
        |after, n| Ok(st.deps.store.search_domains(prefix, after, n)?),
        |k| {
            Ok(load_domain_full(st, k, c.now)?.map(|(p, d, status)| {
                listed.push((d, status));
                p
            }))
        },
    )?;
    let resp = domain_results(c, found, truncated, "domains");
    let Some(g) = generation.filter(|_| resp.status() == StatusCode::OK) else {
        return Ok(resp);
    };
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Err(RdapError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The answer could not be built; try again later.",
        ));
    };
    cache.insert(prefix.to_string(), g, listed, c.db_updated, bytes.clone());
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

async fn domains(State(st): State<Shared>, q: Params) -> Res {
    let (key, value) = one_param(&q, &["name", "nsLdhName", "nsIp"])?;
    let c = ctx(&st)?;
    let limit = st.deps.config.rdap.search_limit.max(1);
    let live = |k: &str| load_domain(&st, k, c.now);
    let (found, truncated) = match key {
        "name" => {
            let zones = &st.deps.zones;
            let pat = name_pattern(value, |s| {
                zones
                    .parse_domain(s)
                    .map(|n| n.as_str().to_string())
                    .map_err(|e| match e {
                        NameError::NotInZone { .. } | NameError::WrongLevel { .. } => {
                            RdapError::unprocessable(format!("{e}."))
                        }
                        _ => RdapError::bad(format!("Invalid name: {e}.")),
                    })
            })?;
            match pat {
                Pattern::Exact(n) => (live(&n)?.into_iter().collect(), false),
                Pattern::Prefix(p) => return search_by_prefix(&st, &c, &p, limit).await,
            }
        }
        "nsLdhName" => {
            let host = names::parse_host(value)
                .map_err(|e| RdapError::bad(format!("Invalid name: {e}.")))?;
            collect_pages(
                limit,
                |after, n| Ok(st.deps.store.domains_by_host(host.as_str(), after, n)?),
                live,
            )?
        }
        _ => {
            let ip: IpAddr = value
                .trim()
                .parse()
                .map(|ip: IpAddr| ip.to_canonical())
                .map_err(|_| RdapError::bad(format!("'{value}' is not an IP address.")))?;
            let mut found: Vec<PublicDomain> = Vec::new();
            let mut truncated = false;
            for h in st.deps.store.hosts_by_ip(ip, limit + 1)? {
                if found.len() >= limit {
                    // More hosts with this address: conservatively truncated.
                    truncated = true;
                    break;
                }
                let (part, t) = collect_pages(
                    limit - found.len(),
                    |after, n| Ok(st.deps.store.domains_by_host(&h, after, n)?),
                    live,
                )?;
                truncated |= t;
                found.extend(part);
            }
            // A domain may use several hosts with this address.
            found.sort_by(|a, b| a.name.cmp(&b.name));
            found.dedup_by(|a, b| a.name == b.name);
            (found, truncated)
        }
    };
    Ok(domain_results(&c, found, truncated, "domains"))
}

async fn nameservers(State(st): State<Shared>, q: Params) -> Res {
    let (key, value) = one_param(&q, &["name", "ip"])?;
    let c = ctx(&st)?;
    let limit = st.deps.config.rdap.search_limit.max(1);
    let live = |k: &str| -> Result<Option<PublicNameserver>, RdapError> {
        Ok(st
            .deps
            .store
            .host(k)?
            .filter(|h| h.domains > 0)
            .map(|h| public_host(&h)))
    };
    let (found, truncated) = if key == "name" {
        let pat = name_pattern(value, |s| {
            names::parse_host(s)
                .map(|h| h.as_str().to_string())
                .map_err(|e| RdapError::bad(format!("Invalid name: {e}.")))
        })?;
        match pat {
            Pattern::Exact(n) => (live(&n)?.into_iter().collect(), false),
            Pattern::Prefix(p) => collect_pages(
                limit,
                |after, n| Ok(st.deps.store.search_hosts(&p, after, n)?),
                live,
            )?,
        }
    } else {
        let ip: IpAddr = value
            .trim()
            .parse()
            .map(|ip: IpAddr| ip.to_canonical())
            .map_err(|_| RdapError::bad(format!("'{value}' is not an IP address.")))?;
        let hosts = st.deps.store.hosts_by_ip(ip, limit + 1)?;
        let truncated = hosts.len() > limit;
        let mut out = Vec::new();
        for h in hosts.iter().take(limit) {
            if let Some(n) = live(h)? {
                out.push(n);
            }
        }
        (out, truncated)
    };
    let results = found.iter().map(|n| view::nameserver(&c, n)).collect();
    Ok(finish(
        &c,
        "nameservers",
        view::NameserverResults {
            nameserver_search_results: results,
        },
        truncated,
        Vec::new(),
    ))
}

/// Handles matching an entity search: `handle=` on handles, `fn=` on the
/// public-name index (which holds only names the public may see).
fn entity_handles(
    st: &Rdap,
    key: &str,
    value: &str,
    limit: usize,
) -> Result<(Vec<String>, bool), RdapError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RdapError::bad("Empty search pattern."));
    }
    let (head, partial) = match value.strip_suffix('*') {
        Some(h) => (h, true),
        None => (value, false),
    };
    if head.contains('*') {
        return Err(RdapError::unprocessable(
            "Only a single trailing '*' is supported in search patterns.",
        ));
    }
    if head.chars().any(|c| c.is_control()) {
        return Err(RdapError::bad("Invalid character in search pattern."));
    }
    if partial && head.chars().count() < 2 {
        return Err(RdapError::unprocessable(
            "Search pattern too broad: give at least 2 characters before '*'.",
        ));
    }
    let mut handles = if key == "handle" {
        check_handle(head)?;
        let found = if partial {
            st.deps.store.search_handles(head, limit + 1)?
        } else {
            vec![head.to_string()]
        };
        // Search by a private person's handle reveals nothing.
        let mut public = Vec::with_capacity(found.len());
        for h in found {
            if !private_person(st, &h)? {
                public.push(h);
            }
        }
        public
    } else {
        let lower = head.to_lowercase();
        let hs = st.deps.store.search_entity_names(&lower, limit + 1)?;
        if partial {
            hs
        } else {
            // Exact: the index key must equal the pattern, so re-check names.
            let mut exact = Vec::new();
            for h in hs {
                let name = match load_entity(st, &h)? {
                    Some(PublicEntity::Registrar(r)) => Some(r.name),
                    Some(PublicEntity::Contact(c)) => c.org.or(c.name),
                    None => None,
                };
                if name.is_some_and(|n| n.to_lowercase() == lower) {
                    exact.push(h);
                }
            }
            exact
        }
    };
    let truncated = handles.len() > limit;
    handles.truncate(limit);
    Ok((handles, truncated))
}

async fn entities(State(st): State<Shared>, q: Params) -> Res {
    let (key, value) = one_param(&q, &["fn", "handle"])?;
    let limit = st.deps.config.rdap.search_limit.max(1);
    let (handles, truncated) = entity_handles(&st, key, value, limit)?;
    let c = ctx(&st)?;
    let mut out = Vec::new();
    let mut redacted = Vec::new();
    for h in handles {
        if let Some(e) = load_entity(&st, &h)? {
            let at = format!("$.entitySearchResults[{}]", out.len());
            let (ent, r) = entity_view(&c, &e, &at);
            out.push(ent);
            redacted.extend(r);
        }
    }
    Ok(finish(
        &c,
        "entities",
        view::EntityResults {
            entity_search_results: out,
        },
        truncated,
        redacted,
    ))
}

/// RFC 9536 reverse search: domains related to entities found by `handle`
/// or `fn` (public names only), optionally restricted to one role.
async fn reverse_domains(State(st): State<Shared>, q: Params) -> Res {
    let Ok(Query(params)) = &q else {
        return Err(RdapError::bad("Malformed query string."));
    };
    let mut role = None;
    let mut rest = Vec::new();
    for (k, v) in params {
        if k == "role" {
            role = Some(match v.as_str() {
                "registrant" | "administrative" | "technical" | "registrar" => v.clone(),
                _ => {
                    return Err(RdapError::unprocessable(format!(
                        "Unsupported role '{v}'; supported: registrant, administrative, technical, registrar."
                    )))
                }
            });
        } else {
            rest.push((k.clone(), v.clone()));
        }
    }
    let q2: Params = Ok(Query(rest));
    let (key, value) = one_param(&q2, &["handle", "fn"])?;
    let limit = st.deps.config.rdap.search_limit.max(1);
    let (handles, mut truncated) = entity_handles(&st, key, value, limit)?;
    let c = ctx(&st)?;
    let mut found: Vec<PublicDomain> = Vec::new();
    'outer: for h in handles {
        let is_registrar = st.deps.store.registrar(&h)?.is_some();
        if is_registrar != (role.as_deref() == Some("registrar")) && role.is_some() {
            continue;
        }
        let (keys, more) = if is_registrar {
            st.deps.store.domains_by_registrar(&h, None, limit + 1)?
        } else {
            st.deps.store.domains_by_contact(&h, None, limit + 1)?
        };
        truncated |= more.is_some();
        for k in keys {
            let Some(d) = load_domain(&st, &k, c.now)? else {
                continue;
            };
            // Roles from the record: a private person's handle is not in
            // the public view, but a search by their public name may use it.
            let raw = st.deps.store.domain(&k)?;
            let has_role = |pick: fn(&crate::model::Domain) -> Option<&String>| {
                raw.as_ref().and_then(pick).is_some_and(|x| *x == h)
            };
            let ok = match role.as_deref() {
                None => true,
                Some("registrar") => d.registrar.as_ref().is_some_and(|r| r.handle == h),
                Some("registrant") => has_role(|d| Some(&d.registrant)),
                Some("administrative") => has_role(|d| d.admin.as_ref()),
                Some(_) => has_role(|d| d.tech.as_ref()),
            };
            if !ok || found.iter().any(|x| x.name == d.name) {
                continue;
            }
            if found.len() == limit {
                truncated = true;
                break 'outer;
            }
            found.push(d);
        }
    }
    Ok(domain_results(
        &c,
        found,
        truncated,
        "domains/reverse_search/entity",
    ))
}

//! RDAP lookups: domain, nameserver, entity, help.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::{rdap_json, RdapError, Res};
use super::state::{base_url, ctx, ctx_at, Rdap, Shared};
use super::view::{self, Ctx, Redacted, CONFORMANCE};
use crate::answer_cache::{Entry, Fact, FactCache};
use crate::lifecycle;
use crate::names::{self, NameError};
use crate::public::{self, PublicContact, PublicDomain, PublicNameserver};
use crate::store::stamps::Key;
use crate::store::StoreError;

/// Fact-cache kinds of the RDAP lookups (see [`FactCache::key`]).
pub(super) const NAMESERVER: u8 = b'N';
pub(super) const ENTITY: u8 = b'E';

// ---- lookups ------------------------------------------------------------

pub(super) fn name_error(e: NameError) -> RdapError {
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
pub(super) type Loaded = (PublicDomain, crate::model::Domain, lifecycle::Status);

pub(super) fn load_domain_full(
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
pub(super) fn load_domain(
    st: &Rdap,
    ascii: &str,
    now: crate::model::Timestamp,
) -> Result<Option<PublicDomain>, RdapError> {
    Ok(load_domain_full(st, ascii, now)?.map(|(p, _, _)| p))
}

/// What precedes the `last update of RDAP database` time in a serialised
/// domain object (a JSON string holds no unescaped `"`, so nothing a
/// registrant wrote can look like it).
pub(super) const DB_EVENT: &[u8] =
    br#"{"eventAction":"last update of RDAP database","eventDate":""#;

/// The request's `If-None-Match` values: the one header a domain lookup
/// reads (extracting the whole `HeaderMap` would copy every header).
pub(super) struct IfNoneMatch(Vec<HeaderValue>);

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
pub(super) fn not_modified(inm: &IfNoneMatch, tag: &HeaderValue) -> bool {
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
pub(super) fn cached_response(inm: &IfNoneMatch, e: &Entry) -> Response {
    tagged(inm, e.body.clone(), e.etag.clone())
}

/// [`cached_response`] of a body with entity tag `tag`.
pub(super) fn tagged(inm: &IfNoneMatch, body: Bytes, tag: HeaderValue) -> Response {
    let mut r = if not_modified(inm, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    r.headers_mut().insert(header::ETAG, tag);
    r
}

pub(super) async fn domain(
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
pub(super) fn domain_fresh(
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
pub(super) fn stale_served() {
    metrics::counter!("zonekeeper_stale_answers_total", "service" => "rdap").increment(1);
}

/// While the store cannot be read (`e` is a storage error): the context
/// and the last fact read under `key`, if any; else `e`.
pub(super) fn last_fact(st: &Rdap, key: &str, e: RdapError) -> Result<(Ctx, Fact), RdapError> {
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

pub(super) fn public_host(h: &crate::store::HostRecord) -> PublicNameserver {
    PublicNameserver {
        name: h.name.clone(),
        unicode_name: names::to_unicode(&h.name),
        addresses: h.addresses.clone(),
    }
}

pub(super) async fn nameserver(
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

pub(super) enum PublicEntity {
    Registrar(public::PublicRegistrar),
    Contact(PublicContact),
}

/// [`load_entity`] through the fact cache.
pub(super) fn load_entity_cached(
    st: &Rdap,
    handle: &str,
) -> Result<Option<PublicEntity>, RdapError> {
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

pub(super) fn entity_of(fact: Fact) -> Option<PublicEntity> {
    match fact {
        Fact::Registrar(r) => Some(PublicEntity::Registrar(r)),
        Fact::Contact(c) => Some(PublicEntity::Contact(c)),
        Fact::Absent | Fact::Host(_) => None,
    }
}

/// A registrar or an organisation by handle. A private person's handle is
/// not public: looking it up finds nothing, as if it did not exist.
pub(super) fn load_entity(st: &Rdap, handle: &str) -> Result<Option<PublicEntity>, RdapError> {
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
pub(super) fn private_person(st: &Rdap, handle: &str) -> Result<bool, RdapError> {
    Ok(st.deps.store.registrar(handle)?.is_none()
        && st
            .deps
            .store
            .contact(handle)?
            .is_some_and(|c| c.kind == crate::model::ContactKind::Person))
}

pub(super) fn entity_view(c: &Ctx, e: &PublicEntity, at: &str) -> (view::Entity, Vec<Redacted>) {
    match e {
        PublicEntity::Registrar(r) => (view::registrar_entity(c, r, vec!["registrar"]), vec![]),
        PublicEntity::Contact(p) => (
            view::contact_entity(c, p, vec![]),
            view::contact_redactions(p, at, "entity"),
        ),
    }
}

pub(super) fn check_handle(h: &str) -> Result<(), RdapError> {
    if h.is_empty() || h.len() > 255 || h.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RdapError::bad("Invalid entity handle."));
    }
    Ok(())
}

pub(super) async fn entity(
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

pub(super) async fn help(State(st): State<Shared>) -> Res {
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

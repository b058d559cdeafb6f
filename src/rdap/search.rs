//! RDAP searches: domains, nameservers, entities, reverse search.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{rdap_json, RdapError, Res};
use super::lookup::*;
use super::state::{ctx, Rdap, Shared};
use super::view::{self, Ctx, Redacted, CONFORMANCE};
use crate::names::{self, NameError};
use crate::public::{PublicDomain, PublicNameserver};

/// Store pages read per search before giving up on filling the limit with
/// live (not cancelled) domains; bounds the work of one request.
pub(super) const MAX_SEARCH_PAGES: usize = 8;

// ---- searches -----------------------------------------------------------

pub(super) type Params =
    Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// Exactly one supported search parameter, else 400 / 501.
pub(super) fn one_param<'a>(
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
pub(super) enum Pattern {
    Exact(String),
    Prefix(String),
}

/// Parse a name pattern (domains, nameservers): LDH characters and dots,
/// optionally ending in `*`. U-labels are converted when the pattern is
/// exact; a partial U-label cannot be matched against A-labels (422).
pub(super) fn name_pattern(
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
pub(super) fn collect_pages<T>(
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

pub(super) fn finish<T: Serialize>(
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

pub(super) fn domain_results(
    c: &Ctx,
    names: Vec<PublicDomain>,
    truncated: bool,
    self_path: &str,
) -> Response {
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
pub(super) async fn search_by_prefix(st: &Rdap, c: &Ctx, prefix: &str, limit: usize) -> Res {
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

pub(super) async fn domains(State(st): State<Shared>, q: Params) -> Res {
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

pub(super) async fn nameservers(State(st): State<Shared>, q: Params) -> Res {
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
pub(super) fn entity_handles(
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

pub(super) async fn entities(State(st): State<Shared>, q: Params) -> Res {
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
pub(super) async fn reverse_domains(State(st): State<Shared>, q: Params) -> Res {
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

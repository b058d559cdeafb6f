//! RDAP JSON objects (RFC 9083) built from the public projection only.
//!
//! Every function here takes `crate::public` types (or the public
//! `HostRecord`), never raw store records, so a private field cannot reach
//! a response. Redaction notices (RFC 9537) are derived from
//! `PublicContact::withheld`.

use std::net::IpAddr;

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{ContactKind, DiscloseField, Timestamp};
use crate::public::{PublicContact, PublicDomain, PublicNameserver, PublicRegistrar};

pub const MEDIA_TYPE: &str = "application/rdap+json";

/// Conformance values of every response (top level only).
pub const CONFORMANCE: &[&str] = &["rdap_level_0", "redacted", "reverse_search"];

pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Per-request facts every object needs.
pub struct Ctx {
    /// Base URL ending in `/`, e.g. `https://rdap.example/rdap/`.
    pub base: String,
    pub now: Timestamp,
    /// `last update of RDAP database`.
    pub db_updated: Timestamp,
}

impl Ctx {
    fn link(&self, rel: &'static str, path: String, value: &str) -> Link {
        Link {
            value: value.to_string(),
            rel,
            href: format!("{}{}", self.base, path),
            typ: MEDIA_TYPE,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub value: String,
    pub rel: &'static str,
    pub href: String,
    #[serde(rename = "type")]
    pub typ: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_action: &'static str,
    pub event_date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub title: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<&'static str>,
    pub description: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// Terms of service, on every response.
pub fn terms(ctx: &Ctx, self_path: &str) -> Notice {
    Notice {
        title: "Terms of Service".into(),
        typ: None,
        description: vec![
            "This service publishes registration data of the registry's domains for \
             lawful purposes only. Personal data of individuals is withheld unless the \
             contact chose to disclose it; withheld fields are listed in `redacted`."
                .into(),
            "Automated bulk collection is rate limited.".into(),
        ],
        links: vec![Link {
            value: format!("{}{}", ctx.base, self_path),
            rel: "terms-of-service",
            href: format!("{}help", ctx.base),
            typ: MEDIA_TYPE,
        }],
    }
}

pub fn truncated_notice() -> Notice {
    Notice {
        title: "Search results truncated".into(),
        typ: Some("result set truncated due to excessive load"),
        description: vec!["The search matched more objects than this server returns; \
             refine the search pattern."
            .into()],
        links: Vec::new(),
    }
}

/// RFC 9537 redaction entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redacted {
    pub name: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_path: Option<String>,
    pub path_lang: &'static str,
    pub method: &'static str,
    pub reason: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdap_conformance: Option<&'static [&'static str]>,
    pub object_class_name: &'static str,
    /// Absent for a private person (redacted, RFC 9537).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    pub vcard_array: Vcard,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<&'static str>,
    /// Empty (left out) for a private person: no lookup to link to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<Redacted>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IpAddresses {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub v4: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub v6: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nameserver {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdap_conformance: Option<&'static [&'static str]>,
    pub object_class_name: &'static str,
    pub handle: String,
    pub ldh_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicode_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<IpAddresses>,
    pub status: Vec<&'static str>,
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecureDns {
    /// A DS set is in the parent zone now (RFC 9083 §5.3).
    pub delegation_signed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ds_data: Vec<DsData>,
}

/// RFC 9083 §5.3 `dsData` member.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DsData {
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest: String,
    pub digest_type: u8,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdap_conformance: Option<&'static [&'static str]>,
    pub object_class_name: &'static str,
    pub handle: String,
    pub ldh_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicode_name: Option<String>,
    pub status: Vec<&'static str>,
    pub entities: Vec<Entity>,
    pub nameservers: Vec<Nameserver>,
    #[serde(rename = "secureDNS")]
    pub secure_dns: SecureDns,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<Redacted>,
}

/// `unicodeName` only when it differs from the LDH form (IDN).
fn unicode(ldh: &str, uni: &str) -> Option<String> {
    (ldh != uni).then(|| uni.to_string())
}

fn ip_addresses(addrs: &[IpAddr]) -> Option<IpAddresses> {
    if addrs.is_empty() {
        return None;
    }
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for a in addrs {
        match a {
            IpAddr::V4(x) => v4.push(x.to_string()),
            IpAddr::V6(x) => v6.push(x.to_string()),
        }
    }
    Some(IpAddresses { v4, v6 })
}

/// RDAP status values of a domain: the one status model's RDAP strings
/// (`crate::status`, docs/statuses.md: the RFC 8056 image of the EPP set,
/// with `active`/`inactive` for in the zone or not).
pub fn domain_status(d: &PublicDomain) -> Vec<&'static str> {
    d.status.rdap()
}

fn role_label(role: &str) -> &'static str {
    match role {
        "registrant" => "Registrant",
        "administrative" => "Admin",
        "technical" => "Tech",
        _ => "Contact",
    }
}

/// Redaction names registered in the IANA "RDAP JSON Values" registry
/// (type "redacted name"); others get a free-text description.
fn redaction_name(role: &str, field: DiscloseField) -> Value {
    let f = match field {
        DiscloseField::Name => "Name",
        DiscloseField::Org => "Organization",
        DiscloseField::Email => "Email",
        DiscloseField::Phone => "Phone",
        DiscloseField::Address => "Address",
    };
    let registered = matches!(
        (role, field),
        ("registrant", DiscloseField::Name)
            | ("registrant", DiscloseField::Org)
            | ("registrant", DiscloseField::Email)
            | ("registrant", DiscloseField::Phone)
            | ("technical", DiscloseField::Name)
            | ("technical", DiscloseField::Email)
            | ("technical", DiscloseField::Phone)
    );
    let label = format!("{} {}", role_label(role), f);
    if registered {
        json!({ "type": label })
    } else {
        json!({ "description": label })
    }
}

fn jcard_prop(field: DiscloseField) -> &'static str {
    match field {
        DiscloseField::Name => "fn",
        DiscloseField::Org => "org",
        DiscloseField::Email => "email",
        DiscloseField::Phone => "tel",
        DiscloseField::Address => "adr",
    }
}

/// The removed handle of a private person (`Registry Registrant ID` etc.,
/// RFC 9537 / the IANA redacted-names registry).
pub fn handle_redaction(at: &str, role: &str) -> Redacted {
    let name = match role {
        "registrant" => json!({ "type": "Registry Registrant ID" }),
        "administrative" => json!({ "type": "Registry Admin ID" }),
        "technical" => json!({ "type": "Registry Tech ID" }),
        other => json!({ "description": format!("Registry {other} ID") }),
    };
    Redacted {
        name,
        pre_path: Some(format!("{at}.handle")),
        post_path: None,
        path_lang: "jsonpath",
        method: "removal",
        reason: json!({ "description": "Identifier of a private person (privacy law)" }),
    }
}

/// Redactions of one contact. `at` is the JSONPath of the entity object,
/// e.g. `$` or `$.entities[?(@.handle=='C1')]`; `role` names the contact in
/// the redaction name (`registrant`, …, or `entity` on its own).
pub fn contact_redactions(c: &PublicContact, at: &str, role: &str) -> Vec<Redacted> {
    let reason = json!({
        "description": "Personal data not disclosed by the contact (privacy law)"
    });
    c.withheld
        .iter()
        .map(|&f| {
            let prop = jcard_prop(f);
            let path = format!("{at}.vcardArray[1][?(@[0]=='{prop}')]");
            // `fn` is mandatory in a jCard: a withheld person's name stays as
            // an empty value rather than being removed.
            let (pre, post, method) = if f == DiscloseField::Name && c.kind == ContactKind::Person {
                (None, Some(format!("{path}[3]")), "emptyValue")
            } else if f == DiscloseField::Name {
                // An organisation's contact person has no jCard property
                // here (`fn` is the organisation): nothing to point at.
                (None, None, "removal")
            } else {
                (Some(path), None, "removal")
            };
            Redacted {
                name: redaction_name(role, f),
                pre_path: pre,
                post_path: post,
                path_lang: "jsonpath",
                method,
                reason: reason.clone(),
            }
        })
        .collect()
}

/// One jCard property, serialised as `[name, params, type, value]`.
/// Typed rather than `serde_json::Value`: lookups are the hot path.
#[derive(Debug, Clone, Serialize)]
pub struct Prop(
    pub &'static str,
    pub Params,
    pub &'static str,
    pub PropValue,
);

#[derive(Debug, Clone, Default, Serialize)]
pub struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PropValue {
    Text(String),
    /// `adr`: pobox, ext, street (one or several), locality, region, code, country.
    Adr(Vec<AdrPart>),
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AdrPart {
    One(String),
    Many(Vec<String>),
}

/// A jCard: `["vcard", [props…]]`.
#[derive(Debug, Clone)]
pub struct Vcard(pub Vec<Prop>);

impl Serialize for Vcard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ("vcard", &self.0).serialize(s)
    }
}

fn text(name: &'static str, v: &str) -> Prop {
    Prop(
        name,
        Params::default(),
        "text",
        PropValue::Text(v.to_string()),
    )
}

/// jCard (RFC 7095) of a contact: only the fields the projection kept.
pub fn contact_vcard(c: &PublicContact) -> Vcard {
    let mut props = vec![text("version", "4.0")];
    let kind = match c.kind {
        ContactKind::Person => "individual",
        ContactKind::Org => "org",
    };
    // A person's withheld name is an empty `fn` (redacted by empty value);
    // an organisation shows its name.
    let fn_value = match c.kind {
        ContactKind::Person => c.name.as_deref().unwrap_or_default(),
        ContactKind::Org => c.display_name.as_str(),
    };
    props.push(text("fn", fn_value));
    props.push(text("kind", kind));
    if let Some(org) = &c.org {
        props.push(text("org", org));
    }
    if let Some(a) = &c.address {
        let street = match a.street.len() {
            0 => AdrPart::One(String::new()),
            1 => AdrPart::One(a.street[0].clone()),
            _ => AdrPart::Many(a.street.clone()),
        };
        let opt = |x: &Option<String>| AdrPart::One(x.clone().unwrap_or_default());
        props.push(Prop(
            "adr",
            Params {
                cc: a.country.clone(),
                typ: None,
            },
            "text",
            PropValue::Adr(vec![
                AdrPart::One(String::new()),
                AdrPart::One(String::new()),
                street,
                opt(&a.city),
                opt(&a.region),
                opt(&a.postal_code),
                AdrPart::One(String::new()),
            ]),
        ));
    }
    if let Some(e) = &c.email {
        props.push(text("email", e));
    }
    if let Some(p) = &c.phone {
        props.push(Prop(
            "tel",
            Params {
                cc: None,
                typ: Some("voice"),
            },
            "text",
            PropValue::Text(p.clone()),
        ));
    }
    Vcard(props)
}

pub fn registrar_vcard(r: &PublicRegistrar) -> Vcard {
    let mut props = vec![
        text("version", "4.0"),
        text("fn", &r.name),
        text("kind", "org"),
    ];
    if let Some(u) = &r.url {
        props.push(Prop(
            "url",
            Params::default(),
            "uri",
            PropValue::Text(u.clone()),
        ));
    }
    if let Some(e) = &r.email {
        props.push(text("email", e));
    }
    Vcard(props)
}

fn entity_path(handle: &str) -> String {
    format!("entity/{}", urlencode(handle))
}

/// Percent-encode a path segment (handles and names are LDH-ish, but a
/// stray character must not break the URL).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn registrar_entity(ctx: &Ctx, r: &PublicRegistrar, roles: Vec<&'static str>) -> Entity {
    let path = entity_path(&r.handle);
    Entity {
        rdap_conformance: None,
        object_class_name: "entity",
        handle: Some(r.handle.clone()),
        vcard_array: registrar_vcard(r),
        roles,
        links: vec![ctx.link("self", path.clone(), &format!("{}{path}", ctx.base))],
        events: Vec::new(),
        notices: Vec::new(),
        redacted: Vec::new(),
    }
}

/// A reseller named by a domain: an entity with the `reseller` role
/// (RFC 9083 §10.2.4). The registry keeps only its handle.
pub fn reseller_entity(_ctx: &Ctx, handle: &str) -> Entity {
    Entity {
        rdap_conformance: None,
        object_class_name: "entity",
        handle: Some(handle.to_string()),
        vcard_array: Vcard(vec![
            text("version", "4.0"),
            text("fn", handle),
            text("kind", "org"),
        ]),
        roles: vec!["reseller"],
        links: Vec::new(),
        events: Vec::new(),
        notices: Vec::new(),
        redacted: Vec::new(),
    }
}

/// A contact entity. A private person's has no handle and no self link
/// (nothing that identifies the person or leads to a lookup).
pub fn contact_entity(ctx: &Ctx, c: &PublicContact, roles: Vec<&'static str>) -> Entity {
    let links = match &c.handle {
        Some(h) => {
            let path = entity_path(h);
            vec![ctx.link("self", path.clone(), &format!("{}{path}", ctx.base))]
        }
        None => Vec::new(),
    };
    Entity {
        rdap_conformance: None,
        object_class_name: "entity",
        handle: c.handle.clone(),
        vcard_array: contact_vcard(c),
        roles,
        links,
        events: Vec::new(),
        notices: Vec::new(),
        redacted: Vec::new(),
    }
}

pub fn jsonpath_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

pub fn nameserver(ctx: &Ctx, ns: &PublicNameserver) -> Nameserver {
    let path = format!("nameserver/{}", ns.name);
    Nameserver {
        rdap_conformance: None,
        object_class_name: "nameserver",
        handle: ns.name.clone(),
        ldh_name: ns.name.clone(),
        unicode_name: unicode(&ns.name, &ns.unicode_name),
        ip_addresses: ip_addresses(&ns.addresses),
        status: vec!["active"],
        links: vec![ctx.link("self", path.clone(), &format!("{}{path}", ctx.base))],
        events: Vec::new(),
        notices: Vec::new(),
    }
}

/// A domain object. `at` is the JSONPath of this object in the response
/// (`$` for a lookup, `$.domainSearchResults[i]` in a search); redactions
/// are returned separately for the caller to place at the top level.
pub fn domain(ctx: &Ctx, d: &PublicDomain, at: &str) -> (Domain, Vec<Redacted>) {
    let path = format!("domain/{}", d.name);
    let mut entities: Vec<Entity> = Vec::new();
    let mut redacted = Vec::new();
    if let Some(r) = &d.registrar {
        entities.push(registrar_entity(ctx, r, vec!["registrar"]));
    }
    let contacts = [
        ("registrant", &d.registrant),
        ("administrative", &d.admin),
        ("technical", &d.tech),
    ];
    for (role, c) in contacts {
        let Some(c) = c else { continue };
        let Some(handle) = &c.handle else {
            // A private person: one entity per role, found by its role;
            // the handle is removed (RFC 9537 "Registry … ID").
            let epath = format!("{at}.entities[?(@.roles[0]=='{role}')]");
            redacted.push(handle_redaction(&epath, role));
            redacted.extend(contact_redactions(c, &epath, role));
            entities.push(contact_entity(ctx, c, vec![role]));
            continue;
        };
        // One entity per organisation, carrying all its roles.
        if let Some(e) = entities
            .iter_mut()
            .find(|e| e.handle.as_ref() == Some(handle) && !e.roles.contains(&"registrar"))
        {
            e.roles.push(role);
            continue;
        }
        let epath = format!("{at}.entities[?(@.handle=='{}')]", jsonpath_str(handle));
        redacted.extend(contact_redactions(c, &epath, role));
        entities.push(contact_entity(ctx, c, vec![role]));
    }
    if let Some(r) = &d.reseller {
        entities.push(reseller_entity(ctx, r));
    }
    let mut events = vec![
        Event {
            event_action: "registration",
            event_date: ts(d.created),
        },
        Event {
            event_action: "expiration",
            event_date: ts(d.paid_till),
        },
        Event {
            event_action: "last changed",
            event_date: ts(d.updated),
        },
    ];
    // The instant the pending deletion takes effect (never before the
    // expiration: the name is freed at `paid_till` + grace).
    if let Some(t) = d.status.deletion_at {
        events.push(Event {
            event_action: "deletion",
            event_date: ts(t),
        });
    }
    events.push(Event {
        event_action: "last update of RDAP database",
        event_date: ts(ctx.db_updated),
    });
    let dom = Domain {
        rdap_conformance: None,
        object_class_name: "domain",
        handle: d.name.clone(),
        ldh_name: d.name.clone(),
        unicode_name: unicode(&d.name, &d.unicode_name),
        status: domain_status(d),
        entities,
        nameservers: d.nameservers.iter().map(|n| nameserver(ctx, n)).collect(),
        secure_dns: SecureDns {
            delegation_signed: d.delegated && !d.ds.is_empty(),
            ds_data: d
                .ds
                .iter()
                .map(|x| DsData {
                    key_tag: x.key_tag,
                    algorithm: x.algorithm,
                    digest: x.digest.to_ascii_uppercase(),
                    digest_type: x.digest_type,
                })
                .collect(),
        },
        events,
        links: vec![ctx.link("self", path.clone(), &format!("{}{path}", ctx.base))],
        notices: Vec::new(),
        redacted: Vec::new(),
    };
    (dom, redacted)
}

/// The `last update of RDAP database` event alone (entities, nameservers).
pub fn db_event(ctx: &Ctx) -> Event {
    Event {
        event_action: "last update of RDAP database",
        event_date: ts(ctx.db_updated),
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults<T: Serialize> {
    pub rdap_conformance: &'static [&'static str],
    #[serde(flatten)]
    pub results: T,
    pub notices: Vec<Notice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<Redacted>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainResults {
    pub domain_search_results: Vec<Domain>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameserverResults {
    pub nameserver_search_results: Vec<Nameserver>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityResults {
    pub entity_search_results: Vec<Entity>,
}

/// RFC 9083 §6 error object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    pub rdap_conformance: &'static [&'static str],
    pub error_code: u16,
    pub title: String,
    pub description: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Help {
    pub rdap_conformance: &'static [&'static str],
    pub notices: Vec<Notice>,
    /// RFC 9536 §5: which reverse searches exist and what they match.
    pub reverse_search_properties: Vec<ReverseSearchProperty>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReverseSearchProperty {
    pub searchable_resource: &'static str,
    pub related_resource: &'static str,
    pub property: &'static str,
    pub property_path: &'static str,
}

pub fn reverse_search_properties() -> Vec<ReverseSearchProperty> {
    vec![
        ReverseSearchProperty {
            searchable_resource: "domains",
            related_resource: "entity",
            property: "fn",
            property_path: "$.entities[*].vcardArray[1][?(@[0]=='fn')][3]",
        },
        ReverseSearchProperty {
            searchable_resource: "domains",
            related_resource: "entity",
            property: "handle",
            property_path: "$.entities[*].handle",
        },
    ]
}

//! The public projection (docs/import.md, publication rules). Every published view —
//! WHOIS, RDAP, the dashboard, API lookups of other registrars' data — is
//! built from the types here, and only this module reads private fields to
//! decide what to drop. Tax id, birth date, passport, auth code, API token
//! hashes and hold reasons have no field here at all, so they cannot leak.

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::LifecycleConfig;
use crate::lifecycle::{self, Status};
use crate::model::{
    Contact, ContactKind, DelegationRecord, DelegationState, DiscloseField, Domain, PostalAddress,
    Registrar, Timestamp,
};
use crate::status::{self as status_model, DomainStatus};

/// What WHOIS prints for a person who did not disclose their name.
pub const PRIVATE_PERSON: &str = "Private Person";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicRegistrar {
    pub handle: String,
    pub name: String,
    pub url: Option<String>,
    pub email: Option<String>,
}

/// A contact as the public may see it. `None` fields are withheld (or
/// empty); `withheld` lists which, for RFC 9537 redaction notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicContact {
    /// An organisation's handle; `None` for a private person, whose
    /// identifiers (handle included) are never published.
    pub handle: Option<String>,
    pub kind: ContactKind,
    /// Name to show: the person's name if disclosed, else "Private Person";
    /// an organisation's name (always public).
    pub display_name: String,
    pub name: Option<String>,
    pub org: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<PostalAddress>,
    /// Fields that exist but are withheld.
    pub withheld: Vec<DiscloseField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicNameserver {
    pub name: String,
    pub unicode_name: String,
    /// Glue addresses (public: they are in the zone).
    pub addresses: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicDomain {
    pub name: String,
    pub unicode_name: String,
    pub registrar: Option<PublicRegistrar>,
    pub registrant: Option<PublicContact>,
    pub admin: Option<PublicContact>,
    pub tech: Option<PublicContact>,
    pub nameservers: Vec<PublicNameserver>,
    /// The DS set of the delegation: what the zone holds (the previous
    /// set while a newly declared one is still under test).
    pub ds: Vec<crate::model::DsRecord>,
    pub created: Timestamp,
    pub paid_till: Timestamp,
    pub free_date: NaiveDate,
    pub updated: Timestamp,
    /// Live delegation state of the state machine.
    pub delegation: DelegationState,
    /// A confirmed monitoring violation is in force (since when).
    pub violation_since: Option<Timestamp>,
    /// A newly declared NS/DS set is under test while the delegation
    /// stays on the published one.
    pub change_pending: bool,
    /// In the parent zone right now.
    pub delegated: bool,
    pub expired: bool,
    pub hold: bool,
    pub verification_pending: bool,
    pub transfer_locked_until: Option<Timestamp>,
    /// Operator dispute lock.
    pub dispute: bool,
    /// Registrant change and close are locked (recent acquisition or
    /// registrar change).
    pub registrant_locked: bool,
    pub transfer_pending: bool,
    /// An early cancellation is scheduled.
    pub closing: bool,
    /// The reseller's handle (public, like the registrar).
    pub reseller: Option<String>,
    /// The one status model (`crate::status`): every edge renders this.
    pub status: DomainStatus,
    /// Per server (or address): time in its downtime period the registry
    /// was not probing while the server was down at its last look — not
    /// charged, shown (docs/delegation.md, "Unmeasured time").
    pub unmeasured: Vec<PublicUnmeasured>,
}

/// A server's (or address's) unmeasured time in one downtime period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicUnmeasured {
    /// `ns1.example.ru` or `ns1.example.ru (192.0.2.1)`.
    pub server: String,
    pub period_start: Timestamp,
    pub secs: u64,
}

/// The unmeasured time of a delegation record's entries (the set in the
/// zone), largest first.
pub fn unmeasured(r: &DelegationRecord) -> Vec<PublicUnmeasured> {
    let mut v: Vec<PublicUnmeasured> = r
        .downtime
        .iter()
        .filter(|d| d.unmeasured_ms > 0)
        .map(|d| PublicUnmeasured {
            server: crate::delegation::downtime::label(d),
            period_start: d.period_start,
            secs: d.unmeasured_ms.div_ceil(1000),
        })
        .collect();
    v.sort_by(|a, b| b.secs.cmp(&a.secs).then_with(|| a.server.cmp(&b.server)));
    v
}

pub fn registrar(r: &Registrar) -> PublicRegistrar {
    PublicRegistrar {
        handle: r.handle.clone(),
        name: r.name.clone(),
        url: r.url.clone(),
        email: r.email.clone(),
    }
}

pub fn contact(c: &Contact) -> PublicContact {
    let shown = |f: DiscloseField| c.disclose.contains(&f);
    let mut withheld = Vec::new();
    let mut pick = |f: DiscloseField, present: bool| {
        // An organisation's name is public whatever is marked.
        let public = shown(f) || (c.kind == ContactKind::Org && f == DiscloseField::Org);
        if present && !public {
            withheld.push(f);
        }
        public && present
    };
    let name = pick(DiscloseField::Name, c.name.is_some())
        .then(|| c.name.clone())
        .flatten();
    let org = pick(DiscloseField::Org, c.org.is_some())
        .then(|| c.org.clone())
        .flatten();
    let email = pick(DiscloseField::Email, c.email.is_some())
        .then(|| c.email.clone())
        .flatten();
    let phone = pick(DiscloseField::Phone, c.phone.is_some())
        .then(|| c.phone.clone())
        .flatten();
    let address = pick(DiscloseField::Address, c.address.is_some())
        .then(|| c.address.clone())
        .flatten();
    let display_name = match c.kind {
        ContactKind::Org => org
            .clone()
            .or_else(|| c.name.clone().filter(|_| shown(DiscloseField::Name)))
            .unwrap_or_else(|| c.handle.clone()),
        ContactKind::Person => name.clone().unwrap_or_else(|| PRIVATE_PERSON.to_string()),
    };
    PublicContact {
        handle: (c.kind == ContactKind::Org).then(|| c.handle.clone()),
        kind: c.kind,
        display_name,
        name,
        org,
        email,
        phone,
        address,
        withheld,
    }
}

/// Everything needed to publish one domain, read in one transaction.
#[derive(Debug, Clone)]
pub struct DomainBundle {
    pub domain: Domain,
    pub delegation: DelegationRecord,
    pub registrar: Option<Registrar>,
    pub registrant: Option<Contact>,
    pub admin: Option<Contact>,
    pub tech: Option<Contact>,
}

/// What a public domain view shows of a delegation record: the answer
/// caches keep an answer across a delegation write that leaves this equal
/// (a probe round's bookkeeping), so [`domain_with`] reads the record only
/// through it.
#[derive(Debug, PartialEq, Eq)]
pub struct DelegationFacts<'a> {
    pub state: DelegationState,
    pub violation_since: Option<Timestamp>,
    pub change_pending: bool,
    /// The DS set in the zone when it is not the declared one (a change
    /// is pending): see [`DelegationRecord::zone_ds`].
    pub zone_ds: Option<&'a [crate::model::DsRecord]>,
}

pub fn delegation_facts(r: &DelegationRecord) -> DelegationFacts<'_> {
    DelegationFacts {
        state: r.state,
        violation_since: r.violation.as_ref().map(|v| v.since),
        change_pending: r
            .pending
            .as_ref()
            .is_some_and(|p| p.state == DelegationState::Testing),
        zone_ds: (!r.published.is_empty()).then(|| r.zone_ds(&[])),
    }
}

/// The public view of a domain, or `None` when the registration is
/// cancelled (the name is free: "not found").
pub fn domain(b: &DomainBundle, now: Timestamp, cfg: &LifecycleConfig) -> Option<PublicDomain> {
    domain_with(b, &lifecycle::evaluate(&b.domain, now, cfg))
}

/// [`domain`] for a caller that already evaluated the lifecycle `st` of
/// `b.domain` (the answer caches keep it beside the answer).
pub fn domain_with(b: &DomainBundle, st: &Status) -> Option<PublicDomain> {
    if !st.exists() {
        return None;
    }
    let d = &b.domain;
    let f = delegation_facts(&b.delegation);
    Some(PublicDomain {
        name: d.name.as_str().to_string(),
        unicode_name: d.name.to_unicode(),
        registrar: b.registrar.as_ref().map(registrar),
        registrant: b.registrant.as_ref().map(contact),
        admin: b.admin.as_ref().map(contact),
        tech: b.tech.as_ref().map(contact),
        nameservers: d
            .nameservers
            .iter()
            .map(|n| PublicNameserver {
                name: n.name.as_str().to_string(),
                unicode_name: n.name.to_unicode(),
                addresses: n.addresses.clone(),
            })
            .collect(),
        ds: f.zone_ds.unwrap_or(&d.ds).to_vec(),
        created: d.created,
        paid_till: d.paid_till,
        free_date: st.free_date,
        updated: d.updated,
        delegation: f.state,
        violation_since: f.violation_since,
        change_pending: f.change_pending,
        // `in_zone` reads only the state, which the facts hold.
        delegated: lifecycle::in_zone(&b.delegation, st),
        expired: st.expired,
        hold: st.hold,
        verification_pending: st.verification_pending,
        transfer_locked_until: st.transfer_locked_until,
        dispute: st.dispute,
        registrant_locked: st.registrant_locked_until.is_some(),
        transfer_pending: st.transfer_pending,
        closing: st.closing_at.is_some(),
        reseller: d.registration.reseller.clone(),
        status: status_model::compute(
            st,
            status_model::Delegation {
                state: f.state,
                change_pending: f.change_pending,
                violation: f.violation_since.is_some(),
            },
        ),
        unmeasured: unmeasured(&b.delegation),
    })
}

/// A history event as the public (the dashboard) and registrars (the
/// change feed, EPP poll, the API's history) may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicEvent {
    pub at: Timestamp,
    pub from: Option<DelegationState>,
    pub to: DelegationState,
    pub reason: String,
}

/// The one projection of an event text: operator notes (hold and
/// dispute reasons) become neutral texts, and contact handles (a private
/// person's handle is an identifier of the person; a court claimant's is
/// the court's business) are left out. Everything else the registry
/// writes in history is public already (states, registrars, dates,
/// nameservers).
pub fn event_reason(reason: &str) -> String {
    let neutral = [
        ("hold: ", "hold placed"),
        ("dispute lock: ", "dispute lock placed"),
        (
            "registrant changed ",
            "registrant changed (both sides consented)",
        ),
        ("cancelled by court decision", "cancelled by court decision"),
    ];
    for (prefix, text) in neutral {
        if reason.starts_with(prefix) {
            return text.into();
        }
    }
    if reason.starts_with("dispute lock lifted") {
        // The court's outcome is the operator's record, not public.
        return match reason.split_once("; outcome: ") {
            Some((head, _)) => head.to_string(),
            None => reason.to_string(),
        };
    }
    if let Some(rest) = reason.strip_prefix("registrant change to ") {
        // "… to HANDLE requested by the registrant" / "… lapsed (not accepted)".
        return match rest.split_once(' ') {
            Some((_, tail)) => format!("registrant change {tail}"),
            None => "registrant change".into(),
        };
    }
    reason.to_string()
}

/// The public history of the current registration of a name: events of
/// earlier registrations (before `registered`, or before the latest
/// "registered by" event) are left out, and each text goes through
/// [`event_reason`].
pub fn history(events: &[crate::model::HistoryEvent], registered: Timestamp) -> Vec<PublicEvent> {
    let start = events
        .iter()
        .rposition(|e| e.from.is_none() && e.reason.starts_with("registered by "))
        .unwrap_or(0);
    events[start..]
        .iter()
        .filter(|e| e.at >= registered)
        .map(|e| PublicEvent {
            at: e.at,
            from: e.from,
            to: e.to,
            reason: event_reason(&e.reason),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Hold, Nameserver};
    use crate::names::{DomainName, HostName};
    use chrono::{TimeZone, Utc};

    /// Markers that must never appear in any public output.
    pub const SECRET_MARKERS: &[&str] = &[
        "SECRET-TAXID-7d1",
        "SECRET-BIRTH-7d2",
        "SECRET-PASSPORT-7d3",
        "SECRET-AUTH-7d4",
        "SECRET-TOKENHASH-7d5",
        "SECRET-HOLDREASON-7d6",
    ];
    /// Markers for disclosable fields, private unless disclosed.
    pub const OPTIONAL_MARKERS: &[&str] = &[
        "PRIV-NAME-8e1",
        "PRIV-EMAIL-8e2@example.invalid",
        "PRIV-PHONE-8e3",
        "PRIV-STREET-8e4",
        "PRIV-CITY-8e5",
        "PRIV-ORG-8e6",
    ];

    pub fn full_contact(handle: &str, kind: ContactKind, disclose: Vec<DiscloseField>) -> Contact {
        Contact {
            handle: handle.into(),
            kind,
            name: Some(OPTIONAL_MARKERS[0].into()),
            org: Some(OPTIONAL_MARKERS[5].into()),
            email: Some(OPTIONAL_MARKERS[1].into()),
            phone: Some(OPTIONAL_MARKERS[2].into()),
            address: Some(PostalAddress {
                street: vec![OPTIONAL_MARKERS[3].into()],
                city: Some(OPTIONAL_MARKERS[4].into()),
                region: Some(OPTIONAL_MARKERS[4].into()),
                postal_code: Some(OPTIONAL_MARKERS[4].into()),
                country: Some("RU".into()),
            }),
            tax_id: Some(SECRET_MARKERS[0].into()),
            birth_date: Some(SECRET_MARKERS[1].into()),
            passport: Some(SECRET_MARKERS[2].into()),
            disclose,
            sponsor: None,
            created: None,
        }
    }

    fn bundle(c: Contact) -> DomainBundle {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        DomainBundle {
            domain: Domain {
                name: DomainName::from_trusted("example.ru".into()),
                registrar: "R".into(),
                registrant: c.handle.clone(),
                admin: Some(c.handle.clone()),
                tech: Some(c.handle.clone()),
                created: t,
                paid_till: t + chrono::Duration::days(365),
                nameservers: vec![Nameserver {
                    name: HostName::from_trusted("ns1.example.ru".into()),
                    addresses: vec!["192.0.2.1".parse().unwrap()],
                }],
                auth_info: Some(SECRET_MARKERS[3].into()),
                hold: Some(Hold {
                    since: t,
                    reason: SECRET_MARKERS[5].into(),
                }),
                verification_requested: Some(t),
                transferred: Some(t),
                updated: t,
                registration: Default::default(),
                ds: Vec::new(),
            },
            delegation: DelegationRecord::undelegated(t),
            registrar: Some(Registrar {
                handle: "R".into(),
                name: "Registrar".into(),
                url: Some("https://r.example".into()),
                email: Some("abuse@r.example".into()),
                api_token_sha256: Some(SECRET_MARKERS[4].into()),
                epp_cert_sha256: Vec::new(),
                epp_password_hash: None,
                epp_poll_acked: 0,
            }),
            registrant: Some(c.clone()),
            admin: Some(c.clone()),
            tech: Some(c),
        }
    }

    #[test]
    fn nothing_private_with_everything_filled() {
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let cfg = LifecycleConfig::default();
        for kind in [ContactKind::Person, ContactKind::Org] {
            // Nothing disclosed: no optional marker except an org's name.
            let v = domain(&bundle(full_contact("C1", kind, vec![])), now, &cfg).unwrap();
            let json = serde_json::to_string(&v).unwrap();
            for m in SECRET_MARKERS {
                assert!(!json.contains(m), "{m} leaked: {json}");
            }
            for m in OPTIONAL_MARKERS {
                let allowed = kind == ContactKind::Org && *m == OPTIONAL_MARKERS[5];
                assert_eq!(json.contains(m), allowed, "{kind:?} {m}: {json}");
            }
            let c = v.registrant.unwrap();
            if kind == ContactKind::Person {
                assert_eq!(c.display_name, PRIVATE_PERSON);
                assert_eq!(c.withheld.len(), 5);
            } else {
                assert_eq!(c.display_name, OPTIONAL_MARKERS[5]);
                assert!(!c.withheld.contains(&DiscloseField::Org));
            }
            // Everything disclosed: still no secret.
            use DiscloseField::*;
            let all = vec![Name, Org, Email, Phone, Address];
            let v = domain(&bundle(full_contact("C1", kind, all)), now, &cfg).unwrap();
            let json = serde_json::to_string(&v).unwrap();
            for m in SECRET_MARKERS {
                assert!(!json.contains(m), "{m} leaked: {json}");
            }
            for m in OPTIONAL_MARKERS {
                assert!(json.contains(m), "{m} missing when disclosed");
            }
        }
    }

    #[test]
    fn cancelled_is_not_found() {
        let mut b = bundle(full_contact("C1", ContactKind::Person, vec![]));
        let late = b.domain.paid_till + chrono::Duration::days(31);
        // A hold is never ended by time: the registration stays.
        assert!(domain(&b, late, &LifecycleConfig::default()).is_some());
        b.domain.hold = None;
        assert!(domain(&b, late, &LifecycleConfig::default()).is_none());
    }
}

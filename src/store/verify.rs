//! `zonekeeper store check`, the part both backends share: what a domain
//! record must agree with (its key, its delegation record) and which index
//! entries it implies ([`DomainIndexes`]), compared with what a backend
//! says it stores. Each backend reads its snapshot and adds the checks
//! only it can make (redb's state counters, PostgreSQL's set-wise joins).

use std::collections::BTreeSet;

use super::contract::Result;
use super::indexes::{DomainIndexes, IndexEntry};
use crate::model::{DelegationRecord, Domain};

/// What a backend holds of one domain's index entries.
pub(super) enum Stored<'a> {
    /// It answers whether it holds an entry; entries it holds beyond the
    /// expected ones are found by its own scans from the index side.
    Probe(&'a mut dyn FnMut(&IndexEntry) -> Result<bool>),
    /// It lists every entry it holds for the domain.
    Listed(BTreeSet<IndexEntry>),
}

/// The problems of domain record `d` stored under `name`, with its
/// delegation record `deleg` and the index entries `stored`.
pub(super) fn domain(
    name: &str,
    d: &Domain,
    deleg: Option<&DelegationRecord>,
    stored: Stored<'_>,
    problems: &mut Vec<String>,
) -> Result<()> {
    if d.name.as_str() != name {
        problems.push(format!("domain key {name} holds {}", d.name));
    }
    match deleg {
        None => problems.push(format!("{name}: no delegation record")),
        Some(r) if r.declared_fingerprint() != d.ns_fingerprint() => {
            problems.push(format!("{name}: delegation record is for another NS set"))
        }
        Some(_) => {}
    }
    let expected = DomainIndexes::of(d).entries();
    match stored {
        Stored::Probe(has) => {
            for e in &expected {
                if !has(e)? {
                    problems.push(format!("{name}: not in {}", describe(e)));
                }
            }
        }
        Stored::Listed(held) => {
            for e in expected.difference(&held) {
                problems.push(format!("{name}: not in {}", describe(e)));
            }
            for e in held.difference(&expected) {
                problems.push(format!("{name}: stale entry in {}", describe(e)));
            }
        }
    }
    Ok(())
}

/// The index an entry is in, for a message.
fn describe(e: &IndexEntry) -> String {
    match e {
        IndexEntry::Registrar(_) => "registrar index".into(),
        IndexEntry::Reseller(r) => format!("reseller index for {r}"),
        IndexEntry::PendingTransfer => "pending-transfer index".into(),
        IndexEntry::Contact(c) => format!("contact index for {c}"),
        IndexEntry::Host(h) => format!("host index for {h}"),
        IndexEntry::LookAlike(_) => "look-alike index".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Registration;
    use crate::names::DomainName;

    fn domain_rec(name: &str) -> Domain {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        Domain {
            name: DomainName::from_trusted(name.into()),
            registrar: "R1".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created: t,
            paid_till: t,
            nameservers: vec![],
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: t,
            registration: Registration::default(),
            ds: Vec::new(),
        }
    }

    #[test]
    fn listed_entries_report_missing_and_stale_ones() {
        let d = domain_rec("a.ru");
        let mut held = DomainIndexes::of(&d).entries();
        held.remove(&IndexEntry::Contact("C".into()));
        held.insert(IndexEntry::Host("ns.gone.ru".into()));
        let mut p = Vec::new();
        domain("a.ru", &d, None, Stored::Listed(held), &mut p).unwrap();
        assert_eq!(
            p,
            [
                "a.ru: no delegation record",
                "a.ru: not in contact index for C",
                "a.ru: stale entry in host index for ns.gone.ru",
            ]
        );
    }

    #[test]
    fn a_probe_that_holds_everything_finds_nothing_but_the_key() {
        let d = domain_rec("a.ru");
        let mut p = Vec::new();
        let mut all = |_: &IndexEntry| Ok(true);
        domain("b.ru", &d, None, Stored::Probe(&mut all), &mut p).unwrap();
        assert_eq!(
            p,
            ["domain key b.ru holds a.ru", "b.ru: no delegation record"]
        );
    }
}

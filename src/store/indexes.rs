//! What a record implies for the indexes, computed once for both
//! backends: a domain's index entries ([`DomainIndexes::of`]) and what a
//! write changes in them ([`IndexDiff::between`]); the public name a
//! contact is searched by; whether a delegation record has a new NS set
//! under test. Each backend applies these to its own tables (redb index
//! tables, PostgreSQL columns and link tables) and `store check` compares
//! what is stored with them (docs/architecture.md, "Store").

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::model::{Contact, ContactKind, DelegationRecord, DelegationState, Domain};
use crate::names::skeleton_index_key;

/// One index entry a domain implies; the domain's name is the entry's item
/// (the index maps the entry's key to the domains that have it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexEntry {
    /// Its sponsoring registrar.
    Registrar(String),
    /// The reseller it names.
    Reseller(String),
    /// It has a pending registrar change.
    PendingTransfer,
    /// A contact it names (registrant, admin or tech).
    Contact(String),
    /// A nameserver host it declares (the host's record counts its domains).
    Host(String),
    /// Its look-alike key ([`skeleton_index_key`]).
    LookAlike(String),
}

/// Every index entry of one domain, and the glue it owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainIndexes {
    pub registrar: String,
    pub reseller: Option<String>,
    pub pending_transfer: bool,
    /// Registrant, admin and tech, each once, in order.
    pub contacts: BTreeSet<String>,
    /// Its nameserver hosts, each with its glue addresses when the host is
    /// at or below the domain (glue belongs to the domain the host is in;
    /// only that domain sets a host's addresses).
    pub hosts: BTreeMap<String, Option<Vec<IpAddr>>>,
    pub skeleton: String,
}

impl DomainIndexes {
    pub fn of(d: &Domain) -> Self {
        let name = d.name.as_str();
        DomainIndexes {
            registrar: d.registrar.clone(),
            reseller: d.registration.reseller.clone(),
            pending_transfer: d.registration.pending_transfer.is_some(),
            contacts: [Some(&d.registrant), d.admin.as_ref(), d.tech.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            hosts: d
                .nameservers
                .iter()
                .map(|n| {
                    let owned = n.name.is_at_or_below(name);
                    (
                        n.name.as_str().to_string(),
                        owned.then(|| n.addresses.clone()),
                    )
                })
                .collect(),
            skeleton: skeleton_index_key(&d.name),
        }
    }

    /// The entries, as a set.
    pub fn entries(&self) -> BTreeSet<IndexEntry> {
        let mut s = BTreeSet::new();
        s.insert(IndexEntry::Registrar(self.registrar.clone()));
        if let Some(r) = &self.reseller {
            s.insert(IndexEntry::Reseller(r.clone()));
        }
        if self.pending_transfer {
            s.insert(IndexEntry::PendingTransfer);
        }
        s.extend(self.contacts.iter().cloned().map(IndexEntry::Contact));
        s.extend(self.hosts.keys().cloned().map(IndexEntry::Host));
        s.insert(IndexEntry::LookAlike(self.skeleton.clone()));
        s
    }

    /// The contacts, in order (a list for SQL arrays).
    pub fn contact_list(&self) -> Vec<String> {
        self.contacts.iter().cloned().collect()
    }
}

/// What rewriting a domain changes in its index entries and glue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDiff {
    /// Entries of the old record the new one lacks, in order.
    pub removed: Vec<IndexEntry>,
    /// Entries of the new record the old one lacked, in order.
    pub added: Vec<IndexEntry>,
    /// Hosts no longer declared whose glue the domain owned: their
    /// addresses go (the host may live on, declared by other domains).
    pub unglued: BTreeSet<String>,
    /// The glue the new record asserts: every host it declares and owns,
    /// with its addresses (set on each write; a backend skips an unchanged
    /// one).
    pub glue: Vec<(String, Vec<IpAddr>)>,
}

impl IndexDiff {
    /// From `old` (`None`: a new domain) to `new`.
    pub fn between(old: Option<&DomainIndexes>, new: &DomainIndexes) -> Self {
        let before = old.map(DomainIndexes::entries).unwrap_or_default();
        let after = new.entries();
        IndexDiff {
            removed: before.difference(&after).cloned().collect(),
            added: after.difference(&before).cloned().collect(),
            unglued: old
                .into_iter()
                .flat_map(|o| o.hosts.iter())
                .filter(|(h, glue)| glue.is_some() && !new.hosts.contains_key(*h))
                .map(|(h, _)| h.clone())
                .collect(),
            glue: new
                .hosts
                .iter()
                .filter_map(|(h, g)| g.as_ref().map(|a| (h.clone(), a.clone())))
                .collect(),
        }
    }

    /// `set` (the old record's entries) changed into the new record's.
    pub fn apply(&self, set: &mut BTreeSet<IndexEntry>) {
        for e in &self.removed {
            set.remove(e);
        }
        set.extend(self.added.iter().cloned());
    }

    /// Hosts the new record no longer declares.
    pub fn hosts_dropped(&self) -> impl Iterator<Item = &str> {
        self.removed.iter().filter_map(|e| match e {
            IndexEntry::Host(h) => Some(h.as_str()),
            _ => None,
        })
    }

    /// Hosts the new record declares for the first time.
    pub fn hosts_added(&self) -> impl Iterator<Item = &str> {
        self.added.iter().filter_map(|e| match e {
            IndexEntry::Host(h) => Some(h.as_str()),
            _ => None,
        })
    }

    /// Every host whose record or links the write touches, sorted, each
    /// once (the order PostgreSQL locks them in, so two writers cannot
    /// deadlock).
    pub fn hosts_touched(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .hosts_dropped()
            .chain(self.hosts_added())
            .chain(self.glue.iter().map(|(h, _)| h.as_str()))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The lower-cased public name of an entity, for `fn` search. Only names
/// the public may see are indexed (RFC 9536 §4: no reverse search on
/// private data).
pub fn public_fn(c: &Contact) -> Option<String> {
    let p = crate::public::contact(c);
    match c.kind {
        ContactKind::Org => p.org.or(p.name),
        ContactKind::Person => p.name,
    }
    .map(|s| s.to_lowercase())
}

/// Whether a delegated domain's newly declared NS set is under test (the
/// scheduler's rescan finds such domains like testing ones).
pub fn pending_testing(r: &DelegationRecord) -> bool {
    r.pending
        .as_ref()
        .is_some_and(|p| p.state == DelegationState::Testing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Nameserver, Registration};
    use crate::names::{DomainName, HostName};
    use proptest::prelude::*;

    fn domain(name: &str) -> Domain {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        Domain {
            name: DomainName::from_trusted(name.into()),
            registrar: "R1".into(),
            registrant: "C".into(),
            admin: Some("D".into()),
            tech: Some("C".into()),
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

    fn ns(name: &str, addrs: &[&str]) -> Nameserver {
        Nameserver {
            name: HostName::from_trusted(name.into()),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn of_lists_contacts_once_and_owns_only_in_domain_glue() {
        let mut d = domain("example.ru");
        d.nameservers = vec![
            ns("ns1.example.ru", &["192.0.2.1"]),
            ns("ns.other.ru", &["192.0.2.2"]),
        ];
        d.registration.reseller = Some("RS".into());
        let ix = DomainIndexes::of(&d);
        assert_eq!(ix.contact_list(), vec!["C".to_string(), "D".to_string()]);
        assert_eq!(
            ix.hosts.get("ns1.example.ru"),
            Some(&Some(vec!["192.0.2.1".parse().unwrap()]))
        );
        assert_eq!(ix.hosts.get("ns.other.ru"), Some(&None));
        let e = ix.entries();
        assert!(e.contains(&IndexEntry::Reseller("RS".into())));
        assert!(e.contains(&IndexEntry::Registrar("R1".into())));
        assert!(!e.contains(&IndexEntry::PendingTransfer));
        assert!(e.contains(&IndexEntry::LookAlike(skeleton_index_key(&d.name))));
    }

    #[test]
    fn a_dropped_own_host_is_unglued_and_a_foreign_one_is_not() {
        let mut old = domain("example.ru");
        old.nameservers = vec![
            ns("ns1.example.ru", &["192.0.2.1"]),
            ns("ns.other.ru", &[]),
            ns("ns2.example.ru", &["192.0.2.3"]),
        ];
        let mut new = old.clone();
        new.nameservers = vec![ns("ns2.example.ru", &["192.0.2.4"])];
        let diff = IndexDiff::between(Some(&DomainIndexes::of(&old)), &DomainIndexes::of(&new));
        assert_eq!(
            diff.hosts_dropped().collect::<Vec<_>>(),
            ["ns.other.ru", "ns1.example.ru"]
        );
        assert_eq!(diff.hosts_added().count(), 0);
        assert_eq!(diff.unglued, BTreeSet::from(["ns1.example.ru".to_string()]));
        assert_eq!(
            diff.glue,
            vec![(
                "ns2.example.ru".to_string(),
                vec!["192.0.2.4".parse().unwrap()]
            )]
        );
        assert_eq!(
            diff.hosts_touched(),
            ["ns.other.ru", "ns1.example.ru", "ns2.example.ru"]
        );
    }

    #[test]
    fn a_new_domain_adds_every_entry() {
        let mut d = domain("example.ru");
        d.nameservers = vec![ns("ns.other.ru", &[])];
        let ix = DomainIndexes::of(&d);
        let diff = IndexDiff::between(None, &ix);
        assert!(diff.removed.is_empty());
        assert_eq!(diff.added, ix.entries().into_iter().collect::<Vec<_>>());
        assert!(diff.glue.is_empty() && diff.unglued.is_empty());
    }

    fn arb_indexes() -> impl Strategy<Value = DomainIndexes> {
        let label = prop::sample::select(vec!["a", "b", "c", "d"]);
        let host = prop::sample::select(vec!["ns1.x.ru", "ns2.x.ru", "ns.y.ru", "ns.z.ru"]);
        let addr = prop::sample::select(vec!["192.0.2.1", "192.0.2.2", "2001:db8::1"]);
        (
            label.clone(),
            prop::option::of(label.clone()),
            any::<bool>(),
            prop::collection::btree_set(label.clone().prop_map(String::from), 1..4),
            prop::collection::btree_map(
                host.prop_map(String::from),
                prop::option::of(prop::collection::vec(
                    addr.prop_map(|a| a.parse::<IpAddr>().unwrap()),
                    0..3,
                )),
                0..4,
            ),
        )
            .prop_map(|(r, rs, p, contacts, hosts)| DomainIndexes {
                registrar: r.to_string(),
                reseller: rs.map(String::from),
                pending_transfer: p,
                contacts,
                hosts,
                skeleton: "x".into(),
            })
    }

    proptest! {
        #[test]
        fn applying_the_diff_to_the_old_entries_gives_the_new(
            old in prop::option::of(arb_indexes()),
            new in arb_indexes(),
        ) {
            let diff = IndexDiff::between(old.as_ref(), &new);
            let mut set = old.as_ref().map(DomainIndexes::entries).unwrap_or_default();
            diff.apply(&mut set);
            prop_assert_eq!(&set, &new.entries());
            // Nothing is both removed and added; only real changes are listed.
            let before = old.as_ref().map(DomainIndexes::entries).unwrap_or_default();
            for e in &diff.removed {
                prop_assert!(before.contains(e) && !new.entries().contains(e));
            }
            for e in &diff.added {
                prop_assert!(!before.contains(e));
            }
            // Unglued hosts were owned and are gone; glue is the new own hosts'.
            for h in &diff.unglued {
                prop_assert!(!new.hosts.contains_key(h));
                prop_assert!(old.as_ref().is_some_and(|o| o.hosts.get(h).is_some_and(Option::is_some)));
            }
            prop_assert_eq!(
                diff.glue.len(),
                new.hosts.values().filter(|g| g.is_some()).count()
            );
        }
    }
}

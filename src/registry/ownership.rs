//! Tests of the ownership invariant (docs/epp.md "Ownership") at the
//! registry service, which every edge calls: only a domain's sponsor (and
//! the operator) changes it.

use chrono::Duration;
use proptest::prelude::*;

use super::tests::{person, registrar, t0};
use super::{Actor, CreateIn, DomainUpdate, NameserverIn, Registry, Result};
use crate::config::Config;
use crate::lifecycle;
use crate::model::{DelegationRecord, Domain, Registration};
use crate::names::DomainName;
use crate::store::RedbStore;
use crate::store::{ImportBatch, Store};

fn domain(name: &str, registrar: &str, registrant: &str) -> Domain {
    let created = t0() - Duration::days(400);
    Domain {
        name: DomainName::from_trusted(name.into()),
        registrar: registrar.into(),
        registrant: registrant.into(),
        admin: None,
        tech: None,
        created,
        paid_till: created + Duration::days(730),
        nameservers: vec![],
        auth_info: Some("code-12345678".into()),
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: created,
        registration: Registration::default(),
        ds: Vec::new(),
    }
}

/// A store with registrars A and B, contacts CA/CA2 (A's) and CB/CB2 (B's),
/// domains a.ru (A) and b.ru (B), host objects ns1.a.ru (A), ns1.b.ru and
/// ns.ext.net (B); b.ru uses ns1.a.ru and ns.ext.net (linked), a.ru its own
/// ns1.a.ru and ns.ext.net by name.
fn setup() -> (tempfile::TempDir, RedbStore, Config) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
    let cfg = Config::default();
    let batch = ImportBatch {
        registrars: vec![registrar("A"), registrar("B")],
        webhooks: vec![],
        resellers: vec![
            crate::model::Reseller {
                handle: "RA".into(),
                name: "Reseller of A".into(),
                registrar: "A".into(),
            },
            crate::model::Reseller {
                handle: "RB".into(),
                name: "Reseller of B".into(),
                registrar: "B".into(),
            },
        ],
        contacts: vec![
            person("CA", Some("A")),
            person("CA2", Some("A")),
            person("CB", Some("B")),
            person("CB2", Some("B")),
        ],
        domains: vec![domain("a.ru", "A", "CA"), {
            // Sold by B's reseller.
            let mut d = domain("b.ru", "B", "CB");
            d.registration.reseller = Some("RB".into());
            d
        }],
    };
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    reg.import(&batch, t0()).unwrap();
    let (a, b) = (Actor::Registrar("A".into()), Actor::Registrar("B".into()));
    reg.host_create(&a, "ns1.a.ru", &["192.0.2.1".into()])
        .unwrap();
    reg.host_create(&b, "ns1.b.ru", &["192.0.2.2".into()])
        .unwrap();
    reg.host_create(&b, "ns.ext.net", &[]).unwrap();
    reg.update_domain(
        &b,
        "b.ru",
        &DomainUpdate {
            ns_add_hosts: vec!["ns1.a.ru".into(), "ns.ext.net".into()],
            ..Default::default()
        },
    )
    .unwrap();
    reg.declare_nameservers(
        &a,
        "a.ru",
        &[
            NameserverIn {
                name: "ns1.a.ru".into(),
                addresses: vec!["192.0.2.1".into()],
            },
            NameserverIn {
                name: "ns.ext.net".into(),
                addresses: vec![],
            },
        ],
    )
    .unwrap();
    (dir, store, cfg)
}

/// Everything of a domain the invariant protects.
fn snapshot(store: &dyn Store, name: &str) -> (Domain, Option<DelegationRecord>) {
    (
        store.domain(name).unwrap().unwrap(),
        store.delegation(name).unwrap(),
    )
}

type Op = fn(&Registry<'_>, &Actor, &str) -> Result<()>;

/// Every registry write a registrar can make on an existing domain (and on
/// the host objects it uses), as the edges call them.
fn ns(n: &str) -> NameserverIn {
    NameserverIn {
        name: n.into(),
        addresses: vec![],
    }
}

fn writes() -> Vec<(&'static str, Op)> {
    vec![
        ("declare_nameservers", |r, a, d| {
            r.declare_nameservers(a, d, &[ns("ns.x.net"), ns("ns.y.net")])
                .map(drop)
        }),
        ("update_domain ns add", |r, a, d| {
            let u = DomainUpdate {
                ns_add: vec![NameserverIn {
                    name: "ns.z.net".into(),
                    addresses: vec![],
                }],
                ..Default::default()
            };
            r.update_domain(a, d, &u).map(drop)
        }),
        ("update_domain hostObj", |r, a, d| {
            let u = DomainUpdate {
                ns_add_hosts: vec!["ns1.b.ru".into()],
                ..Default::default()
            };
            r.update_domain(a, d, &u).map(drop)
        }),
        ("declare_ds", |r, a, d| {
            r.declare_ds(a, d, Vec::new(), "test").map(drop)
        }),
        ("update_contacts", |r, a, d| {
            r.update_contacts(a, d, Some(Some("CB2".into())), None)
                .map(drop)
        }),
        ("registrant_change_request", |r, a, d| {
            r.registrant_change_request(a, d, "CB2").map(drop)
        }),
        ("registrant_change_accept", |r, a, d| {
            r.registrant_change_accept(a, d).map(drop)
        }),
        ("registrant_change_cancel", |r, a, d| {
            r.registrant_change_cancel(a, d).map(drop)
        }),
        ("set_auth_code", |r, a, d| {
            r.set_auth_code(a, d, "new-code-123456").map(drop)
        }),
        ("reset_auth_code", |r, a, d| {
            r.reset_auth_code(a, d).map(drop)
        }),
        ("renew", |r, a, d| r.renew(a, d).map(drop)),
        ("close", |r, a, d| r.close(a, d, true).map(drop)),
        ("revoke_close", |r, a, d| r.revoke_close(a, d).map(drop)),
        ("retest", |r, a, d| r.retest(a, d).map(drop)),
        ("verification_answer", |r, a, d| {
            r.verification_answer(a, d).map(drop)
        }),
        ("transfer_decide approve", |r, a, d| {
            r.transfer_decide(a, d, true).map(drop)
        }),
        ("host_update rename ns.ext.net", |r, a, _| {
            r.host_update(a, "ns.ext.net", &[], &[], Some("ns.evil.example"))
                .map(drop)
        }),
        ("host_update glue ns1.a.ru", |r, a, _| {
            r.host_update(a, "ns1.a.ru", &["192.0.2.9".into()], &[], None)
                .map(drop)
        }),
        ("host_delete ns.ext.net", |r, a, _| {
            r.host_delete(a, "ns.ext.net").map(drop)
        }),
        ("host_delete ns1.a.ru", |r, a, _| {
            r.host_delete(a, "ns1.a.ru").map(drop)
        }),
    ]
}

/// Every write × {another registrar, the sponsor}: a refused write
/// changes nothing, a write by another registrar never changes the
/// domain, and its refusal names a rule.
#[test]
fn only_the_sponsor_changes_a_domain() {
    for (what, op) in writes() {
        let (_d, store, cfg) = setup();
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        // A acts on B's domain b.ru.
        let before = snapshot(&store, "b.ru");
        let r = op(&reg, &Actor::Registrar("A".into()), "b.ru");
        assert_eq!(snapshot(&store, "b.ru"), before, "{what} by A changed b.ru");
        if let Err(e) = r {
            assert!(!e.rule().is_empty(), "{what}");
            assert_ne!(e.rule(), "internal", "{what}: {e}");
        }
        // The sponsor's own write is not refused for ownership (the host
        // writes act on A's hosts: for B they are another's).
        if what.starts_with("host_") {
            continue;
        }
        let (_d, store, cfg) = setup();
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        if let Err(e) = op(&reg, &Actor::Registrar("B".into()), "b.ru") {
            assert!(
                !matches!(e.rule(), "forbidden" | "contact-sponsor"),
                "{what} by the sponsor: {e}"
            );
        }
    }
}

#[test]
fn a_host_rename_never_reaches_another_registrars_domain() {
    let (_d, store, cfg) = setup();
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    let (a, b) = (Actor::Registrar("A".into()), Actor::Registrar("B".into()));
    // A created an external host object for a name B's domain uses (the
    // hijack): it links to nothing and cannot be renamed.
    reg.host_delete(&b, "ns.ext.net").unwrap_err();
    let e = reg
        .host_update(&b, "ns.ext.net", &[], &[], Some("ns.b2.net"))
        .unwrap_err();
    assert_eq!(e.rule(), "host-in-use", "a.ru (A) names it by name");
    reg.host_create(&a, "ns.popdns.net", &[]).unwrap();
    reg.declare_nameservers(
        &b,
        "b.ru",
        &[
            NameserverIn {
                name: "ns.popdns.net".into(),
                addresses: vec![],
            },
            NameserverIn {
                name: "ns.other.net".into(),
                addresses: vec![],
            },
        ],
    )
    .unwrap();
    let before = snapshot(&store, "b.ru");
    let e = reg
        .host_update(&a, "ns.popdns.net", &[], &[], Some("ns3.attacker.example"))
        .unwrap_err();
    assert_eq!(e.rule(), "host-in-use");
    assert_eq!(snapshot(&store, "b.ru"), before);
    // Unused by others: renamed; A's own unlinked use keeps the old name.
    reg.host_create(&a, "ns.mine.net", &[]).unwrap();
    reg.host_update(&a, "ns.mine.net", &[], &[], Some("ns.mine2.net"))
        .unwrap();
    // The glue of A's subordinate host changes although b.ru uses it: only
    // a.ru's entry carries that glue.
    let before = snapshot(&store, "b.ru");
    reg.host_update(
        &a,
        "ns1.a.ru",
        &["192.0.2.9".into()],
        &["192.0.2.1".into()],
        None,
    )
    .unwrap();
    assert_eq!(snapshot(&store, "b.ru").0.nameservers, before.0.nameservers);
    let a_ns = store.domain("a.ru").unwrap().unwrap().nameservers;
    assert_eq!(
        a_ns[0].addresses,
        vec!["192.0.2.9".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn contacts_and_court_reservations_belong_to_their_registrar() {
    let (_d, store, cfg) = setup();
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    let (a, b) = (Actor::Registrar("A".into()), Actor::Registrar("B".into()));
    let create = |who: &Actor, name: &str, registrant: &str| {
        reg.create(
            who,
            &CreateIn {
                name: name.into(),
                registrant: registrant.into(),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        create(&a, "court-case.ru", "CB").unwrap_err().rule(),
        "contact-sponsor"
    );
    create(&a, "court-case.ru", "CA").unwrap();
    assert_eq!(
        reg.update_contacts(&a, "court-case.ru", Some(Some("CB".into())), None)
            .unwrap_err()
            .rule(),
        "contact-sponsor"
    );
    assert_eq!(
        reg.registrant_change_request(&a, "court-case.ru", "CB")
            .unwrap_err()
            .rule(),
        "contact-sponsor"
    );
    // The court claimant (B's customer) is in no feed; the losing side (A)
    // cannot register the name for it; B's registration holds it for the
    // registrant lock.
    reg.court_cancel(&Actor::Operator, "court-case.ru", "CB")
        .unwrap();
    for r in ["A", "B"] {
        let feed = store.feed(r, 0, 1000).unwrap();
        assert!(
            feed.iter().all(|e| !e.reason.contains("CB")),
            "{r}: {feed:?}"
        );
    }
    assert_eq!(
        create(&a, "court-case.ru", "CB").unwrap_err().rule(),
        "contact-sponsor"
    );
    create(&b, "court-case.ru", "CB").unwrap();
    let mut c = person("CB3", Some("B"));
    c.sponsor = None;
    reg.contact_create(&b, (&c).into()).unwrap();
    let later = Registry::offline(&store, &cfg)
        .unwrap()
        .at(t0() + Duration::days(1));
    assert_eq!(
        later
            .registrant_change_request(&b, "court-case.ru", "CB3")
            .unwrap_err()
            .rule(),
        "registrant-lock"
    );
}

#[derive(Debug, Clone)]
enum Step {
    DeclareNs(usize, usize),
    AddHostObj(usize, usize),
    HostCreate(usize),
    HostRename(usize, usize),
    HostGlue(usize),
    HostDelete(usize),
    Contacts(usize, usize),
    Registrant(usize, usize),
    CloseNow(usize),
    Create(usize, usize),
    /// Create sold by a reseller (of A, of B in another case, or new).
    CreateSold(usize, usize, usize),
}

const RESELLERS: [&str; 3] = ["RA", "rb", "RNEW"];

const HOSTS: [&str; 5] = [
    "ns1.a.ru",
    "ns1.b.ru",
    "ns.ext.net",
    "ns.pop.net",
    "ns2.a.ru",
];
const DOMAINS: [&str; 3] = ["a.ru", "b.ru", "c.ru"];
const CONTACTS: [&str; 3] = ["CA", "CA2", "CB"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..5usize).prop_map(|(d, h)| Step::DeclareNs(d, h)),
        (0..3usize, 0..5usize).prop_map(|(d, h)| Step::AddHostObj(d, h)),
        (0..5usize).prop_map(Step::HostCreate),
        (0..5usize, 0..5usize).prop_map(|(h, n)| Step::HostRename(h, n)),
        (0..5usize).prop_map(Step::HostGlue),
        (0..5usize).prop_map(Step::HostDelete),
        (0..3usize, 0..3usize).prop_map(|(d, c)| Step::Contacts(d, c)),
        (0..3usize, 0..3usize).prop_map(|(d, c)| Step::Registrant(d, c)),
        (0..3usize).prop_map(Step::CloseNow),
        (0..3usize, 0..3usize).prop_map(|(d, c)| Step::Create(d, c)),
        (0..3usize, 0..3usize, 0..3usize).prop_map(|(d, c, r)| Step::CreateSold(d, c, r)),
    ]
}

fn run(reg: &Registry<'_>, who: &Actor, s: &Step) {
    let glue = |h: &str| {
        if h.ends_with(".ru") {
            vec!["192.0.2.1".to_string()]
        } else {
            vec![]
        }
    };
    let ns = |h: &str, d: &str| NameserverIn {
        name: h.into(),
        addresses: if h.ends_with(&format!(".{d}")) {
            glue(h)
        } else {
            vec![]
        },
    };
    // Refusals are expected; only what is written matters.
    let _ = match s {
        Step::DeclareNs(d, h) => reg
            .declare_nameservers(
                who,
                DOMAINS[*d],
                &[ns(HOSTS[*h], DOMAINS[*d]), ns("ns.fixed.net", DOMAINS[*d])],
            )
            .map(drop),
        Step::AddHostObj(d, h) => reg
            .update_domain(
                who,
                DOMAINS[*d],
                &DomainUpdate {
                    ns_add_hosts: vec![HOSTS[*h].into()],
                    ..Default::default()
                },
            )
            .map(drop),
        Step::HostCreate(h) => reg.host_create(who, HOSTS[*h], &glue(HOSTS[*h])).map(drop),
        Step::HostRename(h, n) => reg
            .host_update(who, HOSTS[*h], &[], &[], Some(HOSTS[*n]))
            .map(drop),
        Step::HostGlue(h) => reg
            .host_update(who, HOSTS[*h], &["192.0.2.77".into()], &[], None)
            .map(drop),
        Step::HostDelete(h) => reg.host_delete(who, HOSTS[*h]),
        Step::Contacts(d, c) => reg
            .update_contacts(who, DOMAINS[*d], Some(Some(CONTACTS[*c].into())), None)
            .map(drop),
        Step::Registrant(d, c) => reg
            .registrant_change_request(who, DOMAINS[*d], CONTACTS[*c])
            .map(drop),
        Step::CloseNow(d) => reg.close(who, DOMAINS[*d], false).map(drop),
        Step::Create(d, c) => reg
            .create(
                who,
                &CreateIn {
                    name: DOMAINS[*d].into(),
                    registrant: CONTACTS[*c].into(),
                    ..Default::default()
                },
            )
            .map(drop),
        Step::CreateSold(d, c, r) => reg
            .create(
                who,
                &CreateIn {
                    name: DOMAINS[*d].into(),
                    registrant: CONTACTS[*c].into(),
                    reseller: Some(RESELLERS[*r].into()),
                    ..Default::default()
                },
            )
            .map(drop),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random operations by random registrars never change a live domain
    /// of another sponsor, and never make a domain name another
    /// registrar's contact or reseller.
    #[test]
    fn random_operations_never_touch_another_sponsors_domain(
        steps in proptest::collection::vec((any::<bool>(), step()), 1..25)
    ) {
        let (_d, store, cfg) = setup();
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        for (as_a, s) in &steps {
            let me = if *as_a { "A" } else { "B" };
            let who = Actor::Registrar(me.into());
            let others: Vec<(String, (Domain, Option<DelegationRecord>))> = DOMAINS
                .iter()
                .filter_map(|d| store.domain(d).unwrap().map(|x| (d.to_string(), x)))
                .filter(|(_, x)| x.registrar != me && lifecycle::evaluate(x, t0(), &cfg.lifecycle).exists())
                .map(|(d, _)| (d.clone(), snapshot(&store, &d)))
                .collect();
            run(&reg, &who, s);
            for (d, before) in others {
                prop_assert_eq!(&snapshot(&store, &d), &before, "{:?} by {} changed {}", s, me, d);
            }
        }
        for d in DOMAINS {
            let Some(x) = store.domain(d).unwrap() else { continue };
            if !lifecycle::evaluate(&x, t0(), &cfg.lifecycle).exists() {
                continue;
            }
            for h in [Some(&x.registrant), x.admin.as_ref()].into_iter().flatten() {
                let c = store.contact(h).unwrap().unwrap();
                // setup's contacts are sponsored: a domain of B names only B's.
                prop_assert_eq!(c.sponsor.as_deref(), Some(x.registrar.as_str()), "{} names {}", d, h);
            }
            // A domain's reseller is its sponsor's (docs/import.md "Resellers").
            if let Some(r) = &x.registration.reseller {
                let owner = store.reseller(r).unwrap().map(|o| o.registrar);
                prop_assert_eq!(owner.as_deref(), Some(x.registrar.as_str()), "{} sold by {}", d, r);
            }
        }
    }
}

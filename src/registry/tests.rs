use super::{Actor, Registry};
use chrono::Duration;

use crate::config::Config;
use crate::model::{Contact, ContactKind, Registrar};
use crate::model::{Domain, Hold, Registration, Timestamp};
use crate::names::DomainName;
use crate::store::{ImportBatch, Store};
use crate::store::{Maintenance, RedbStore};
use chrono::{TimeZone, Utc};

pub(super) fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap()
}

pub(super) fn registrar(h: &str) -> Registrar {
    Registrar {
        handle: h.into(),
        name: format!("Registrar {h}"),
        url: None,
        email: None,
        api_token_sha256: None,
        epp_cert_sha256: Vec::new(),
        epp_password_hash: None,
        epp_poll_acked: 0,
    }
}

fn domain(name: &str, registrar: &str, reseller: Option<&str>) -> Domain {
    let created = t0() - Duration::days(400);
    Domain {
        name: DomainName::from_trusted(name.into()),
        registrar: registrar.into(),
        registrant: "C".into(),
        admin: None,
        tech: None,
        created,
        paid_till: created + Duration::days(730),
        nameservers: vec![],
        auth_info: Some("code".into()),
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: created,
        registration: Registration {
            reseller: reseller.map(str::to_string),
            ..Default::default()
        },
        ds: Vec::new(),
    }
}

/// A private person `h` sponsored by `sponsor`, nothing published.
pub(super) fn person(h: &str, sponsor: Option<&str>) -> Contact {
    Contact {
        handle: h.into(),
        kind: ContactKind::Person,
        name: Some("N".into()),
        org: None,
        email: None,
        phone: None,
        address: None,
        tax_id: None,
        birth_date: None,
        passport: None,
        disclose: vec![],
        sponsor: sponsor.map(Into::into),
        created: None,
    }
}

fn batch(domains: Vec<Domain>) -> ImportBatch {
    ImportBatch {
        registrars: vec![registrar("A"), registrar("B")],
        webhooks: vec![],
        resellers: vec![],
        contacts: vec![person("C", None)],
        domains,
    }
}

fn setup(domains: Vec<Domain>) -> (tempfile::TempDir, RedbStore, Config) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
    let cfg = Config::default();
    Registry::offline(&store, &cfg)
        .unwrap()
        .import(&batch(domains), t0())
        .unwrap();
    (dir, store, cfg)
}

#[test]
fn import_never_clears_operator_locks_but_clears_its_own_hold() {
    let mut held_by_import = domain("b.ru", "A", None);
    held_by_import.hold = Some(Hold {
        since: t0(),
        reason: "set by import".into(),
    });
    let (_d, store, cfg) = setup(vec![domain("a.ru", "A", None), held_by_import]);
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    reg.hold(&Actor::Operator, "a.ru", "court").unwrap();
    reg.dispute_lock(&Actor::Operator, "a.ru", "case").unwrap();
    // A registrar cannot.
    let e = reg
        .hold(&Actor::Registrar("A".into()), "a.ru", "x")
        .unwrap_err();
    assert_eq!(e.rule(), "not-allowed");
    // The same file again, every hold false.
    let later = t0() + Duration::days(1);
    let s = reg
        .import(
            &batch(vec![domain("a.ru", "A", None), domain("b.ru", "A", None)]),
            later,
        )
        .unwrap();
    assert_eq!(s.domains, 2);
    let a = store.domain("a.ru").unwrap().unwrap();
    assert_eq!(a.hold.unwrap().reason, "court");
    assert!(a.registration.dispute.is_some());
    assert!(store.domain("b.ru").unwrap().unwrap().hold.is_none());
    let h: Vec<String> = store
        .history("b.ru", 10)
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert!(h.contains(&"hold released by import".to_string()), "{h:?}");
}

/// EPP's check answers as create would: a look-alike of a registered
/// name is unavailable where the zone refuses them, available where
/// it only flags them.
#[test]
fn availability_applies_the_confusable_rule() {
    let (_d, store, cfg) = setup(vec![
        domain("xn--90ai7ab.xn--p1ai", "A", None), // сбер.рф
        domain("paypal.ru", "A", None),
    ]);
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    let (rule, why) = reg.availability("с6ер.рф").unwrap().unwrap_err();
    assert_eq!(rule, "confusable");
    assert!(why.contains("сбер.рф") && why.contains("TR39"), "{why}");
    assert!(reg.availability("пример.рф").unwrap().is_ok());
    assert_eq!(reg.availability("paypa1.ru").unwrap().unwrap(), "paypa1.ru");
    assert_eq!(
        reg.availability("paypal.ru").unwrap().unwrap_err().0,
        "exists"
    );
}

#[test]
fn reseller_move_is_one_transaction_with_one_event_per_domain() {
    let n = 2000;
    let mut ds: Vec<Domain> = (0..n)
        .map(|i| domain(&format!("r{i}.ru"), "A", Some("RS")))
        .collect();
    ds.push(domain("other.ru", "A", Some("RT")));
    let (_d, store, cfg) = setup(ds);
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    let before = store.feed("B", 0, 10).unwrap().len();
    let t = std::time::Instant::now();
    assert_eq!(
        reg.move_reseller(&Actor::Operator, "RS", "B")
            .unwrap()
            .domains
            .len(),
        n
    );
    eprintln!("moved {n} domains in {:?}", t.elapsed());
    assert_eq!(
        store
            .domains_by_registrar("B", None, 10_000)
            .unwrap()
            .0
            .len(),
        n
    );
    assert_eq!(store.domain("other.ru").unwrap().unwrap().registrar, "A");
    let feed = store.feed("B", 0, 10_000).unwrap();
    assert_eq!(feed.len() - before, n);
    assert!(feed.iter().all(|e| e.actor == "operator"));
    // The losing registrar's feed has them too.
    assert_eq!(store.feed("A", 0, 10_000).unwrap().len(), n);
    assert!(store.verify().unwrap().is_empty());
    // Unknown target: refused, nothing moved.
    assert!(reg.move_reseller(&Actor::Operator, "RT", "NOPE").is_err());
    assert_eq!(store.domain("other.ru").unwrap().unwrap().registrar, "A");
}

#[test]
fn reseller_move_cancels_transfers_clears_codes_and_locks_transfers_only() {
    let mut a = domain("a.ru", "A", Some("Res-X"));
    a.created = t0() - chrono::Duration::days(400);
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
    let cfg = Config::default();
    let mut b = batch(vec![a, domain("b.ru", "A", Some("RES-X"))]);
    b.registrars.push(registrar("C"));
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    reg.import(&b, t0()).unwrap();
    let c = Actor::Registrar("C".into());
    reg.transfer_request(&c, "a.ru", "code").unwrap();
    // Unknown reseller: refused by its rule, nothing written.
    let e = reg
        .move_reseller(&Actor::Operator, "nope", "B")
        .unwrap_err();
    assert_eq!(e.rule(), "no-reseller");
    let before_c = store.feed("C", 0, 100).unwrap().len();
    // Any case names the reseller; every spelling's domains move.
    let m = reg.move_reseller(&Actor::Operator, "res-x", "B").unwrap();
    assert_eq!(m.reseller, "Res-X");
    assert_eq!(m.domains.len(), 2);
    let ma = m.domains.iter().find(|d| d.name == "a.ru").unwrap();
    assert_eq!(ma.transfer_cancelled.as_deref(), Some("C"));
    assert!(ma.transfer_locked_until.is_some());
    let d = store.domain("a.ru").unwrap().unwrap();
    assert_eq!(d.registrar, "B");
    assert!(d.registration.pending_transfer.is_none());
    assert!(d.auth_info.is_none());
    let st = reg.status(&d, t0());
    assert!(st.transfer_locked_until.is_some());
    assert!(st.registrant_locked_until.is_none());
    // The gaining registrar of the cancelled change hears of it.
    let feed_c = store.feed("C", 0, 100).unwrap();
    assert_eq!(feed_c.len(), before_c + 1);
    // The old registrar's code is refused now (the domain is also
    // transfer-locked; either refusal keeps it).
    assert!(reg
        .transfer_request(&Actor::Registrar("A".into()), "a.ru", "code")
        .is_err());
    // The reseller belongs to B now: A may not tag a domain with it.
    assert_eq!(
        store.reseller("RES-X").unwrap().unwrap().registrar,
        "B".to_string()
    );
}

#[test]
fn transfer_is_approved_automatically_by_the_sweep() {
    let (_d, store, cfg) = setup(vec![domain("a.ru", "A", None)]);
    let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
    let b = Actor::Registrar("B".into());
    assert_eq!(
        reg.transfer_request(&b, "a.ru", "wrong")
            .unwrap_err()
            .rule(),
        "auth-code"
    );
    reg.transfer_request(&b, "a.ru", "code").unwrap();
    assert_eq!(reg.pending_transfers(&b).unwrap().len(), 1);
    let later = t0() + Config::chrono(cfg.lifecycle.transfer_auto_approve);
    let reg = Registry::offline(&store, &cfg)
        .unwrap()
        .at(later - Duration::seconds(1));
    assert_eq!(reg.sweep().unwrap(), 0);
    let reg = Registry::offline(&store, &cfg).unwrap().at(later);
    assert_eq!(reg.sweep().unwrap(), 1);
    let d = store.domain("a.ru").unwrap().unwrap();
    assert_eq!((d.registrar.as_str(), d.transferred), ("B", Some(later)));
    assert!(reg.pending_transfers(&b).unwrap().is_empty());
    assert!(store.verify().unwrap().is_empty());
}

//! One behaviour suite for every store backend: the same functions run
//! against the embedded redb file and against a PostgreSQL database of a
//! cluster the test starts itself (tests/support::pg). Each case gets a
//! fresh store.

use crate::support;
use chrono::{TimeZone, Utc};
use zonekeeper::config::Config;
use zonekeeper::import;
use zonekeeper::model::{DelegationRecord, DelegationState, HistoryEvent, RoundSummary};
use zonekeeper::store::{
    self, Backend, DelegationWrite, Location, OpenOptions, Store, StoreError, WriteIf,
};

// One test per (backend, case), so one failing case hides no other.
macro_rules! backend_suite {
    ($($case:ident),* $(,)?) => {
        mod redb_backend {
            $(
                #[test]
                fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let mut s = super::open_redb(dir.path(), stringify!($case));
                    super::$case(&mut *s);
                }
            )*
        }
        mod postgres_backend {
            $(
                #[test]
                fn $case() {
                    let Some(pg) = crate::support::pg::PgCluster::shared(stringify!($case)) else {
                        return;
                    };
                    let mut s = super::open_postgres(&pg, stringify!($case));
                    super::$case(&mut *s);
                }
            )*
        }
    };
}

backend_suite!(
    import_and_reads,
    reimport_moves_hosts_and_indexes,
    conditional_delegation_writes,
    dropped_txn_writes_nothing,
    auth_code_failures_are_stored,
    logs_are_bounded_and_ordered,
    walk_and_search,
    rejected_import_applies_nothing,
    cds_sightings_and_contact_delete,
    webhooks_and_their_state,
    look_alike_index,
    host_objects,
    bulk_import_writes,
    batched_delegation_writes,
    resellers_belong_to_a_registrar,
    client_statuses_round_trip,
);

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

fn data(ns_b: &str) -> String {
    format!(
        r#"{{
 "registrars": [{{"handle": "R1", "name": "Registrar One"}}, {{"handle": "R2", "name": "Second Registrar"}}],
 "contacts": [
   {{"handle": "C1", "kind": "person", "name": "Ivan Petrov"}},
   {{"handle": "C2", "kind": "org", "name": "Anna", "org": "Roga i Kopyta", "registrar": "R1"}}
 ],
 "domains": [
  {{"name": "alpha.ru", "registrar": "R1", "registrant": "C1",
   "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z",
   "nameservers": [{{"name": "ns1.alpha.ru", "addresses": ["192.0.2.1"]}}, {{"name": "ns.shared.net"}}]}},
  {{"name": "beta.ru", "registrar": "R1", "registrant": "C2", "admin": "C1",
   "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z",
   "nameservers": [{ns_b}]}},
  {{"name": "gamma.ru", "registrar": "R2", "registrant": "C2",
   "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z",
   "nameservers": [{{"name": "ns.shared.net"}}, {{"name": "ns2.other.net"}}]}}
 ]
}}"#
    )
}

const NS_B: &str = r#"{"name": "ns.shared.net"}, {"name": "ns.beta-dns.net"}"#;

fn load(s: &dyn Backend, text: &str) -> zonekeeper::store::ImportBatch {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    std::fs::write(&f, text).unwrap();
    let b = import::read_file(&f, &Config::default(), now()).unwrap();
    import::apply(s, &b, &Config::default(), now()).unwrap();
    b
}

fn import_and_reads(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let d = s.domain("alpha.ru").unwrap().unwrap();
    assert_eq!(d.registrar, "R1");
    let b = s.bundle("beta.ru").unwrap().unwrap();
    assert_eq!(b.registrar.unwrap().handle, "R1");
    assert_eq!(b.registrant.unwrap().handle, "C2");
    assert_eq!(b.admin.unwrap().handle, "C1");
    assert!(b.tech.is_none());
    assert_eq!(b.delegation.state, DelegationState::Testing);
    assert!(s.bundle("nothing.ru").unwrap().is_none());

    let shared = s.host("ns.shared.net").unwrap().unwrap();
    assert_eq!(shared.domains, 3);
    assert!(shared.addresses.is_empty());
    let own = s.host("ns1.alpha.ru").unwrap().unwrap();
    assert_eq!(
        own.addresses,
        vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        s.hosts_by_ip("192.0.2.1".parse().unwrap(), 10).unwrap(),
        vec!["ns1.alpha.ru"]
    );
    // Pages: keys in order, the cursor is the last key of a full page.
    let (p1, more) = s.domains_by_host("ns.shared.net", None, 2).unwrap();
    assert_eq!(p1, vec!["alpha.ru", "beta.ru"]);
    assert_eq!(more.as_deref(), Some("beta.ru"));
    let (p2, more) = s
        .domains_by_host("ns.shared.net", Some("beta.ru"), 2)
        .unwrap();
    assert_eq!((p2, more), (vec!["gamma.ru".to_string()], None));
    assert_eq!(
        s.domains_by_registrar("R1", None, 10).unwrap().0,
        vec!["alpha.ru", "beta.ru"]
    );
    assert_eq!(
        s.domains_by_contact("C1", None, 10).unwrap().0,
        vec!["alpha.ru", "beta.ru"]
    );
    assert_eq!(
        s.domains_by_state(DelegationState::Testing, None, 10)
            .unwrap()
            .0
            .len(),
        3
    );
    assert!(s.pending_transfers(None, 10).unwrap().0.is_empty());
    assert!(s.domains_by_reseller("X", None, 10).unwrap().0.is_empty());
    let st = s.stats().unwrap();
    assert_eq!((st.registrars, st.contacts, st.domains), (2, 2, 3));
    assert_eq!(st.hosts, 4);
    assert_eq!(st.by_state.get("testing"), Some(&3));
    assert_eq!(st.by_state.get("delegated"), Some(&0));
    assert_eq!(s.registrars().unwrap().len(), 2);
    assert_eq!(s.last_update().unwrap(), Some(now()));
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

fn reimport_moves_hosts_and_indexes(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    // beta.ru drops the shared host and takes an in-bailiwick one.
    let ns_b2 = r#"{"name": "ns.beta.ru", "addresses": ["192.0.2.7", "2001:db8::7"]}, {"name": "ns.beta-dns.net"}"#;
    let b = load(s, &data(ns_b2));
    assert_eq!(b.domains.len(), 3);
    assert_eq!(s.host("ns.shared.net").unwrap().unwrap().domains, 2);
    assert_eq!(
        s.domains_by_host("ns.shared.net", None, 10).unwrap().0,
        vec!["alpha.ru", "gamma.ru"]
    );
    let h = s.host("ns.beta.ru").unwrap().unwrap();
    assert_eq!(h.addresses.len(), 2);
    assert_eq!(
        s.hosts_by_ip("2001:db8::7".parse().unwrap(), 10).unwrap(),
        vec!["ns.beta.ru"]
    );
    // Again without beta.ru's own host: its record and glue go.
    load(
        s,
        &data(r#"{"name": "ns.beta-dns.net"}, {"name": "ns2.other.net"}"#),
    );
    assert!(s.host("ns.beta.ru").unwrap().is_none());
    assert!(s
        .hosts_by_ip("192.0.2.7".parse().unwrap(), 10)
        .unwrap()
        .is_empty());
    assert_eq!(s.host("ns2.other.net").unwrap().unwrap().domains, 2);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

fn event(to: DelegationState, reason: &str) -> HistoryEvent {
    HistoryEvent {
        at: now() + chrono::Duration::minutes(5),
        from: Some(DelegationState::Testing),
        to,
        reason: reason.into(),
    }
}

fn round(passed: bool, ms: u64) -> RoundSummary {
    RoundSummary {
        at: now(),
        passed,
        duration_ms: ms,
        findings: Vec::new(),
        servers: Vec::new(),
        inconclusive: None,
        queue_lag_ms: 0,
    }
}

fn conditional_delegation_writes(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let old = s.delegation("alpha.ru").unwrap().unwrap();
    let mut rec: DelegationRecord = old.clone();
    rec.state = DelegationState::Delegated;
    let ev = event(DelegationState::Delegated, "window passed");
    // A stale fingerprint loses.
    assert!(!s
        .put_delegation("alpha.ru", "not-it", &rec, Some(&ev), Some(&round(true, 1)))
        .unwrap());
    assert_eq!(
        s.delegation("alpha.ru").unwrap().unwrap().state,
        DelegationState::Testing
    );
    let before = s.feed("R1", 0, 100).unwrap().len();
    assert!(s
        .put_delegation(
            "alpha.ru",
            &old.ns_fingerprint,
            &rec,
            Some(&ev),
            Some(&round(true, 2))
        )
        .unwrap());
    assert_eq!(
        s.delegation("alpha.ru").unwrap().unwrap().state,
        DelegationState::Delegated
    );
    assert_eq!(s.rounds("alpha.ru", 10).unwrap().len(), 1);
    assert_eq!(s.history("alpha.ru", 1).unwrap(), vec![ev.clone()]);
    let feed = s.feed("R1", 0, 100).unwrap();
    assert_eq!(feed.len(), before + 1);
    let last = feed.last().unwrap();
    assert_eq!(
        (last.domain.as_str(), last.actor.as_str()),
        ("alpha.ru", "scheduler")
    );
    assert!(s.feed("R1", last.seq, 10).unwrap().is_empty());
    assert!(s
        .feed("R2", 0, 100)
        .unwrap()
        .iter()
        .all(|e| e.domain == "gamma.ru"));
    assert_eq!(
        s.domains_by_state(DelegationState::Delegated, None, 10)
            .unwrap()
            .0,
        vec!["alpha.ru"]
    );
    assert_eq!(s.stats().unwrap().by_state.get("delegated"), Some(&1));
    assert_eq!(s.last_update().unwrap(), Some(ev.at));
    // If-unchanged: only against the record as stored now.
    let mut next = rec.clone();
    next.state = DelegationState::Suspended;
    assert!(!s
        .put_delegation_if_unchanged("alpha.ru", &old, &next, None, None)
        .unwrap());
    assert!(s
        .put_delegation_if_unchanged("alpha.ru", &rec, &next, None, Some(&round(false, 3)))
        .unwrap());
    assert_eq!(s.rounds("alpha.ru", 10).unwrap().len(), 2);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

/// The scheduler's group commit: many rounds in one transaction, each
/// under its own condition; a failed condition skips that write only.
fn batched_delegation_writes(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    assert!(s.put_delegations(&[]).unwrap().is_empty());
    let a = s.delegation("alpha.ru").unwrap().unwrap();
    let b = s.delegation("beta.ru").unwrap().unwrap();
    let g = s.delegation("gamma.ru").unwrap().unwrap();
    let mut a2 = a.clone();
    a2.state = DelegationState::Delegated;
    let mut a3 = a2.clone();
    a3.state = DelegationState::Suspended;
    let ev = event(DelegationState::Delegated, "window passed");
    let feed_before = s.feed("R1", 0, 100).unwrap().len();
    let w = |name: &str, when: WriteIf, rec: &DelegationRecord, ev: Option<&HistoryEvent>, r| {
        DelegationWrite {
            name: name.into(),
            when,
            record: rec.clone(),
            event: ev.cloned(),
            round: r,
        }
    };
    let done = s
        .put_delegations(&[
            w(
                "alpha.ru",
                WriteIf::Unchanged(Box::new(a.clone())),
                &a2,
                Some(&ev),
                Some(round(true, 1)),
            ),
            // A re-declaration during the round: its fingerprint is stale.
            w(
                "beta.ru",
                WriteIf::Fingerprint("stale".into()),
                &b,
                None,
                Some(round(false, 1)),
            ),
            w(
                "gamma.ru",
                WriteIf::Unchanged(Box::new(g.clone())),
                &g,
                None,
                Some(round(true, 2)),
            ),
            // Sees the batch's own first write: `a` is no longer stored.
            w(
                "alpha.ru",
                WriteIf::Unchanged(Box::new(a.clone())),
                &a3,
                None,
                None,
            ),
            w(
                "beta.ru",
                WriteIf::Fingerprint(b.ns_fingerprint.clone()),
                &b,
                None,
                Some(round(true, 3)),
            ),
        ])
        .unwrap();
    assert_eq!(done, vec![true, false, true, false, true]);
    assert_eq!(s.delegation("alpha.ru").unwrap().unwrap(), a2);
    assert_eq!(s.rounds("alpha.ru", 10).unwrap(), vec![round(true, 1)]);
    assert_eq!(s.rounds("beta.ru", 10).unwrap(), vec![round(true, 3)]);
    assert_eq!(s.rounds("gamma.ru", 10).unwrap(), vec![round(true, 2)]);
    assert_eq!(s.history("alpha.ru", 1).unwrap(), vec![ev.clone()]);
    let feed = s.feed("R1", 0, 100).unwrap();
    assert_eq!(feed.len(), feed_before + 1);
    assert_eq!(
        (
            feed[feed.len() - 1].domain.as_str(),
            feed[feed.len() - 1].actor.as_str()
        ),
        ("alpha.ru", "scheduler")
    );
    assert_eq!(s.last_update().unwrap(), Some(ev.at));
    assert_eq!(
        s.domains_by_state(DelegationState::Delegated, None, 10)
            .unwrap()
            .0,
        vec!["alpha.ru"]
    );
    // Many rounds of one domain in one batch keep what the same writes
    // one at a time keep (retention included).
    let rounds: Vec<RoundSummary> = (0..3 * KEEP as u64)
        .map(|i| {
            let mut r = round(i % 3 != 0, i);
            r.at = now() + chrono::Duration::minutes(i as i64);
            r
        })
        .collect();
    let batch: Vec<DelegationWrite> = rounds
        .iter()
        .map(|r| {
            w(
                "beta.ru",
                WriteIf::Fingerprint(b.ns_fingerprint.clone()),
                &b,
                None,
                Some(r.clone()),
            )
        })
        .collect();
    assert!(s.put_delegations(&batch).unwrap().iter().all(|d| *d));
    for r in &rounds {
        assert!(
            s.put_delegations(&[w(
                "gamma.ru",
                WriteIf::Unchanged(Box::new(g.clone())),
                &g,
                None,
                Some(r.clone())
            )])
            .unwrap()[0]
        );
    }
    let kept = s.rounds("beta.ru", 100).unwrap();
    assert!(kept.len() < rounds.len(), "{} rounds kept", kept.len());
    let sig = |v: Vec<RoundSummary>| -> Vec<_> { v.iter().map(|r| (r.at, r.passed)).collect() };
    assert_eq!(sig(kept), sig(s.rounds("gamma.ru", 100).unwrap()));
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

fn dropped_txn_writes_nothing(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    {
        let mut t = s.begin().unwrap();
        let mut d = t.domain("alpha.ru").unwrap().unwrap();
        d.registrar = "R2".into();
        t.put_domain(&d).unwrap();
        assert_eq!(t.domain("alpha.ru").unwrap().unwrap().registrar, "R2");
        // dropped
    }
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap().registrar, "R1");
    let mut t = s.begin().unwrap();
    let mut d = t.domain("alpha.ru").unwrap().unwrap();
    d.registrar = "R2".into();
    t.put_domain(&d).unwrap();
    t.append_event(
        "alpha.ru",
        &event(DelegationState::Testing, "moved"),
        "operator",
        &["R1", "R2"],
    )
    .unwrap();
    t.commit(now() + chrono::Duration::hours(1)).unwrap();
    assert_eq!(
        s.domains_by_registrar("R2", None, 10).unwrap().0,
        vec!["alpha.ru", "gamma.ru"]
    );
    let f1 = s.feed("R1", 0, 100).unwrap();
    let f2 = s.feed("R2", 0, 100).unwrap();
    assert_eq!(f1.last().unwrap().seq, f2.last().unwrap().seq);
    assert_eq!(f2.last().unwrap().registrars, vec!["R1", "R2"]);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

/// Rounds kept by the suite's retention (the config's `rounds_keep_last`).
const KEEP: usize = 10;

/// Wrong auth codes are counted in the store, in the write transaction:
/// a registry built afresh (a restart) sees the lock.
fn auth_code_failures_are_stored(s: &mut dyn Backend) {
    use zonekeeper::registry::{Actor, Registry};
    load(s, &data(NS_B));
    let st: &dyn Store = s;
    let cfg = Config::default();
    let (r1, r2) = (Actor::Registrar("R1".into()), Actor::Registrar("R2".into()));
    Registry::offline(st, &cfg)
        .unwrap()
        .at(now())
        .set_auth_code(&r1, "alpha.ru", "Alpha-Code-1")
        .unwrap();
    for i in 0..5 {
        let reg = Registry::offline(st, &cfg).unwrap().at(now());
        let e = reg
            .transfer_request(&r2, "alpha.ru", &format!("Guess-{i}-xx"))
            .unwrap_err();
        assert_eq!(e.rule(), "auth-code");
    }
    let f = st
        .begin()
        .unwrap()
        .auth_failures("alpha.ru")
        .unwrap()
        .unwrap();
    assert_eq!(f.attempts.len(), 5);
    assert_eq!(f.locked, Some(now()));
    let reg = Registry::offline(st, &cfg).unwrap().at(now());
    let e = reg
        .transfer_request(&r2, "alpha.ru", "Alpha-Code-1")
        .unwrap_err();
    assert_eq!(e.rule(), "auth-code-locked");
    reg.set_auth_code(&r1, "alpha.ru", "Alpha-Code-2").unwrap();
    reg.transfer_request(&r2, "alpha.ru", "Alpha-Code-2")
        .unwrap();
}

fn retention() -> zonekeeper::store::Retention {
    zonekeeper::store::Retention {
        keep_last: KEEP,
        max_age: Some(chrono::Duration::days(1)),
    }
}

fn logs_are_bounded_and_ordered(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let old = s.delegation("beta.ru").unwrap().unwrap();
    let fp = old.ns_fingerprint.clone();
    // 31 rounds, the 16th failing: the last KEEP are kept, and before
    // them only the first and the two that changed something.
    for i in 0..31u64 {
        assert!(s
            .put_delegation("beta.ru", &fp, &old, None, Some(&round(i != 15, i)))
            .unwrap());
    }
    let kept: Vec<u64> = s
        .rounds("beta.ru", usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.duration_ms)
        .collect();
    let mut want = vec![0, 15, 16];
    want.extend(31 - KEEP as u64..31);
    assert_eq!(kept, want);
    let last3: Vec<u64> = s
        .rounds("beta.ru", 3)
        .unwrap()
        .iter()
        .map(|r| r.duration_ms)
        .collect();
    assert_eq!(last3, vec![28, 29, 30]);
    assert!(s.rounds("alpha.ru", 10).unwrap().is_empty());
    // Two days on, the old rounds outside the window age out (one per
    // round written).
    for i in 0..3u64 {
        let mut r = round(true, 100 + i);
        r.at = now() + chrono::Duration::days(2);
        s.put_delegation("beta.ru", &fp, &old, None, Some(&r))
            .unwrap();
    }
    let kept: Vec<u64> = s
        .rounds("beta.ru", usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.duration_ms)
        .collect();
    assert_eq!(kept.len(), KEEP, "{kept:?}");
    assert_eq!(kept.last(), Some(&102));
}

fn walk_and_search(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let mut seen = Vec::new();
    s.for_each_delegation(&mut |n, _| {
        seen.push(n.to_string());
        true
    })
    .unwrap();
    assert_eq!(seen, vec!["alpha.ru", "beta.ru", "gamma.ru"]);
    let mut first = Vec::new();
    s.for_each_delegation(&mut |n, _| {
        first.push(n.to_string());
        false
    })
    .unwrap();
    assert_eq!(first, vec!["alpha.ru"]);
    let (p, more) = s.search_domains("", None, 2).unwrap();
    assert_eq!(p, vec!["alpha.ru", "beta.ru"]);
    assert_eq!(more.as_deref(), Some("beta.ru"));
    assert_eq!(s.search_domains("be", None, 10).unwrap().0, vec!["beta.ru"]);
    assert_eq!(
        s.search_hosts("ns.", None, 10).unwrap().0,
        vec!["ns.beta-dns.net", "ns.shared.net"]
    );
    assert_eq!(s.search_handles("C", 10).unwrap(), vec!["C1", "C2"]);
    assert_eq!(s.search_handles("", 3).unwrap(), vec!["C1", "C2", "R1"]);
    // Public names only: the org of C2, the registrars; not the person.
    assert_eq!(s.search_entity_names("roga", 10).unwrap(), vec!["C2"]);
    assert_eq!(s.search_entity_names("second", 10).unwrap(), vec!["R2"]);
    assert!(s.search_entity_names("ivan", 10).unwrap().is_empty());
}

/// The look-alike index behind the confusable rule: every registered name
/// under its (zone, TR39 skeleton) key, read outside and inside a write
/// transaction, kept by every write path (import, then a registry write).
fn look_alike_index(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let zones = Config::default().zones().unwrap();
    let key = |n: &str| zonekeeper::names::skeleton_index_key(&zones.parse_domain(n).unwrap());
    assert_eq!(
        s.look_alike(&key("a1pha.ru"), "a1pha.ru")
            .unwrap()
            .as_deref(),
        Some("alpha.ru")
    );
    assert_eq!(s.look_alike(&key("alpha.ru"), "alpha.ru").unwrap(), None);
    assert_eq!(s.look_alike(&key("delta.ru"), "delta.ru").unwrap(), None);
    {
        let txn = s.begin().unwrap();
        assert_eq!(
            txn.look_alike(&key("gamrna.ru"), "").unwrap().as_deref(),
            Some("gamma.ru"),
            "rn looks like m"
        );
    }
    // An import of a look-alike of a registered .ru name is accepted and
    // flagged (.ru's rule), and indexed in turn.
    let more = data(NS_B).replace("\"gamma.ru\"", "\"a1pha.ru\"");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("more.json");
    std::fs::write(&f, more).unwrap();
    let sum = import::import_file(s, &f, &Config::default(), now()).unwrap();
    assert_eq!(sum.flagged.len(), 1, "{:?}", sum.flagged);
    assert!(sum.flagged[0].contains("alpha.ru"), "{:?}", sum.flagged);
    assert_eq!(
        s.look_alike(&key("alpha.ru"), "alpha.ru")
            .unwrap()
            .as_deref(),
        Some("a1pha.ru")
    );
}

fn rejected_import_applies_nothing(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let before = s.stats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.json");
    std::fs::write(
        &f,
        data(NS_B).replace("\"registrar\": \"R2\"", "\"registrar\": \"NOPE\""),
    )
    .unwrap();
    assert!(import::import_file(s, &f, &Config::default(), now()).is_err());
    let after = s.stats().unwrap();
    assert_eq!(
        (after.domains, after.hosts, after.by_state),
        (before.domains, before.hosts, before.by_state)
    );
    assert_eq!(s.domain("gamma.ru").unwrap().unwrap().registrar, "R2");
}

fn open_redb(dir: &std::path::Path, name: &str) -> Box<dyn Backend> {
    store::open(
        &Location::Path(dir.join(format!("{name}.redb"))),
        &OpenOptions {
            retention: retention(),
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

fn open_postgres(pg: &support::pg::PgCluster, name: &str) -> Box<dyn Backend> {
    store::open(
        &Location::parse(&pg.create_db(name)),
        &OpenOptions {
            retention: retention(),
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

/// The store is also usable from inside async code on both runtime
/// flavours (the PostgreSQL backend must not panic there).
#[test]
fn postgres_inside_tokio_runtimes() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_inside_tokio_runtimes") else {
        return;
    };
    let url = pg.create_db("rt");
    for multi in [false, true] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let url = url.clone();
        rt.block_on(async move {
            // Opened, used and dropped inside the runtime.
            let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
            load(&*s, &data(NS_B));
            let s: std::sync::Arc<dyn Store> = std::sync::Arc::from(s as Box<dyn Store>);
            let t = tokio::spawn({
                let s = s.clone();
                async move { s.domain("alpha.ru").unwrap().is_some() }
            });
            assert!(t.await.unwrap());
        });
    }
}

/// A scheduler's claim on PostgreSQL is one statement for the batch that
/// also returns each granted domain's records: names no live claim holds
/// are granted (a name without a domain without records), another owner
/// is refused them until they are given back, the holder renews them.
#[test]
fn postgres_claims_a_batch_with_its_records() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_claims_a_batch") else {
        return;
    };
    let url = pg.create_db("claims");
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    load(&*s, &data(NS_B));
    let names = vec!["alpha.ru".to_string(), "gone.ru".to_string()];
    let lease = std::time::Duration::from_secs(60);
    let got = s.claim_loaded("a", &names, lease).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    let (_, alpha) = got.iter().find(|c| c.0 == "alpha.ru").unwrap();
    let (d, r) = alpha.as_ref().expect("alpha.ru's records");
    assert_eq!(d, &s.domain("alpha.ru").unwrap().unwrap());
    assert_eq!(r, &s.delegation("alpha.ru").unwrap().unwrap());
    assert!(got.iter().any(|c| c.0 == "gone.ru" && c.1.is_none()));
    // Held by "a": refused to "b" (both ways of claiming), renewed for "a".
    assert!(s.claim_loaded("b", &names, lease).unwrap().is_empty());
    assert!(s.claim("b", &names, lease).unwrap().is_empty());
    assert_eq!(s.claim_loaded("a", &names, lease).unwrap().len(), 2);
    s.release("a", &[]).unwrap();
    assert_eq!(s.claim_loaded("b", &names, lease).unwrap().len(), 2);
    // An expired claim is taken over.
    let short = std::time::Duration::from_millis(1);
    s.claim_loaded("b", &names, short).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(s.claim_loaded("c", &names, lease).unwrap().len(), 2);
}

/// Schema 2 → 3 on PostgreSQL: contact records gain `created` (unknown
/// for old ones), in place, once.
#[test]
fn postgres_migrates_schema_2_contacts() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_migrates") else {
        return;
    };
    let url = pg.create_db("v2");
    {
        let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
        load(&*s, &data(NS_B));
        // An EPP contact as schema 2 stored it: its layout is the current
        // one without the trailing `created` (None: one zero byte).
        let mut c = s.contact("C1").unwrap().unwrap();
        c.sponsor = Some("R1".into());
        c.created = None;
        let mut t = s.begin().unwrap();
        t.put_contact(&c).unwrap();
        t.commit(now()).unwrap();
    }
    pg.psql(
        "v2",
        "UPDATE contacts SET rec = substring(rec from 1 for length(rec) - 1) WHERE handle = 'C1'",
    );
    pg.psql(
        "v2",
        "UPDATE contacts SET rec = substring(rec from 1 for length(rec) - 9) WHERE handle = 'C2'",
    );
    pg.psql(
        "v2",
        "UPDATE zk_meta SET value = '\\x02000000'::bytea WHERE key = 'schema_version'",
    );
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    let c = s.contact("C1").unwrap().unwrap();
    assert_eq!((c.sponsor.as_deref(), c.created), (Some("R1"), None));
    assert_eq!(s.contact("C2").unwrap().unwrap().created, None);
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap().registrar, "R1");
    drop(s);
    // Migrated once: a second open reads the same.
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    assert_eq!(s.contact("C1").unwrap().unwrap().created, None);
}

/// Schema 4 → 5 on PostgreSQL: domain records gain `registry_moved`
/// (none for old ones), in place.
#[test]
fn postgres_migrates_schema_4_domains() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_migrates_v4") else {
        return;
    };
    let url = pg.create_db("v4");
    let before = {
        let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
        load(&*s, &data(NS_B));
        s.domain("alpha.ru").unwrap().unwrap()
    };
    assert!(before.registration.registry_moved.is_none() && before.ds.is_empty());
    // Schema 4's layout: without the `registry_moved` and
    // `client_statuses` bytes before `ds`.
    pg.psql(
        "v4",
        "UPDATE domains SET rec = substring(rec from 1 for length(rec) - 3) || '\\x00'::bytea",
    );
    pg.psql(
        "v4",
        "UPDATE zk_meta SET value = '\\x04000000'::bytea WHERE key = 'schema_version'",
    );
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), before);
    assert_eq!(s.domain("gamma.ru").unwrap().unwrap().registrar, "R2");
}

#[test]
fn postgres_refuses_a_newer_schema_and_an_unreachable_server() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_refuses") else {
        return;
    };
    let url = pg.create_db("newer");
    drop(store::open(&Location::parse(&url), &OpenOptions::default()).unwrap());
    pg.psql(
        "newer",
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (99, 'future', 'x', '0')",
    );
    let e = store::open(&Location::parse(&url), &OpenOptions::default())
        .err()
        .expect("newer schema refused");
    assert!(matches!(e, StoreError::NewerSchema { .. }), "{e}");
    assert!(e.to_string().contains("newer than this zonekeeper"), "{e}");

    // Nothing listens on this port (taken and released just now).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bad = format!("postgres://zk:secret@127.0.0.1:{port}/none");
    let e = store::open(&Location::parse(&bad), &OpenOptions::default())
        .err()
        .expect("unreachable refused");
    let m = e.to_string();
    assert!(matches!(e, StoreError::Database { .. }), "{m}");
    assert!(m.contains("127.0.0.1") && !m.contains("secret"), "{m}");
}

/// A server restart cuts every pooled connection: operations on a cut
/// connection fail cleanly (no panic, nothing half-written) and the pool
/// reconnects for the next ones.
#[test]
fn postgres_reconnects_after_a_server_restart() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_reconnects") else {
        return;
    };
    let url = pg.create_db("restart");
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    load(&*s, &data(NS_B));
    let mut t = s.begin().unwrap();
    let mut d = t.domain("alpha.ru").unwrap().unwrap();
    d.registrar = "R2".into();
    t.put_domain(&d).unwrap();
    pg.restart();
    // The transaction's connection is gone: its commit fails.
    assert!(t.commit(now()).is_err());
    let mut ok = false;
    for _ in 0..3 {
        match s.domain("alpha.ru") {
            Ok(Some(d)) => {
                assert_eq!(d.registrar, "R1", "half-written change");
                ok = true;
                break;
            }
            Ok(None) => panic!("domain lost"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    assert!(ok, "no reconnection");
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

/// The CDS scanner's sightings (kept apart from registry data) and a
/// contact's removal inside a transaction.
fn cds_sightings_and_contact_delete(s: &mut dyn Backend) {
    load(s, &data(NS_B));
    let seen = |fp: &str| zonekeeper::model::CdsSighting {
        fingerprint: fp.into(),
        first_seen: now(),
        last_seen: now() + chrono::Duration::hours(1),
        ds: vec![zonekeeper::registry::input::ds::parse_presentation(
            "12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
        )
        .unwrap()],
    };
    let before = s.last_update().unwrap();
    assert_eq!(s.cds_sighting("beta.ru").unwrap(), None);
    s.put_cds_sighting("beta.ru", Some(&seen("b1"))).unwrap();
    s.put_cds_sighting("alpha.ru", Some(&seen("a1"))).unwrap();
    s.put_cds_sighting("beta.ru", Some(&seen("b2"))).unwrap();
    assert_eq!(s.cds_sighting("beta.ru").unwrap(), Some(seen("b2")));
    let all = s.cds_sightings().unwrap();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["alpha.ru", "beta.ru"]);
    s.put_cds_sighting("alpha.ru", None).unwrap();
    s.put_cds_sighting("nothing.ru", None).unwrap();
    assert_eq!(s.cds_sightings().unwrap().len(), 1);
    // Scanner state is not registry data.
    assert_eq!(s.last_update().unwrap(), before);

    let mut t = s.begin().unwrap();
    t.delete_contact("C2").unwrap();
    drop(t);
    assert!(
        s.contact("C2").unwrap().is_some(),
        "a dropped txn deletes nothing"
    );
    let mut t = s.begin().unwrap();
    t.delete_contact("C2").unwrap();
    t.commit(now()).unwrap();
    assert!(s.contact("C2").unwrap().is_none());
    assert!(s.contact("C1").unwrap().is_some());
}

/// Webhooks are written in a transaction; first set, delivery starts at
/// the feed's head; the delivery state survives a changed URL.
fn webhooks_and_their_state(s: &mut dyn Backend) {
    use zonekeeper::model::{Webhook, WebhookState};
    load(s, &data(NS_B));
    let hook = |u: &str| Webhook {
        url: u.into(),
        secret: "0123456789abcdef".into(),
    };
    let head = ["R1", "R2"]
        .iter()
        .flat_map(|r| s.feed(r, 0, 1000).unwrap())
        .map(|e| e.seq)
        .max()
        .unwrap_or(0);
    assert!(head > 0);
    let mut t = s.begin().unwrap();
    t.put_webhook("R1", Some(&hook("https://a.example/h")))
        .unwrap();
    drop(t);
    assert!(
        s.webhooks().unwrap().is_empty(),
        "a dropped txn sets nothing"
    );
    let mut t = s.begin().unwrap();
    t.put_webhook("R1", Some(&hook("https://a.example/h")))
        .unwrap();
    t.commit(now()).unwrap();
    assert_eq!(s.webhook("R1").unwrap(), Some(hook("https://a.example/h")));
    assert_eq!(s.webhook_state("R1").unwrap().unwrap().delivered, head);
    let st = WebhookState {
        delivered: head + 7,
        failures: 2,
        last_error: Some("HTTP 503".into()),
        last_error_at: Some(now()),
        ..WebhookState::default()
    };
    s.put_webhook_state("R1", &st).unwrap();
    let mut t = s.begin().unwrap();
    t.put_webhook("R1", Some(&hook("https://b.example/h")))
        .unwrap();
    t.put_webhook("R2", Some(&hook("https://c.example/h")))
        .unwrap();
    t.commit(now()).unwrap();
    assert_eq!(
        s.webhook_state("R1").unwrap(),
        Some(st),
        "kept across a new URL"
    );
    let all = s.webhooks().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], ("R1".to_string(), hook("https://b.example/h")));
    let mut t = s.begin().unwrap();
    t.put_webhook("R2", None).unwrap();
    t.commit(now()).unwrap();
    assert_eq!(s.webhooks().unwrap().len(), 1);
    assert_eq!(s.webhook("R2").unwrap(), None);
}

/// A database whose look-alike index is missing or was built by another
/// skeleton algorithm gets it rebuilt from the domains on open.
#[test]
fn postgres_rebuilds_the_look_alike_index_on_open() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_look_alikes") else {
        return;
    };
    let url = pg.create_db("skel");
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    load(&*s, &data(NS_B));
    drop(s);
    pg.psql(
        "skel",
        "DELETE FROM domain_skeletons; UPDATE zk_meta SET value = 'old' WHERE key = 'skeleton_index'",
    );
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    let zones = Config::default().zones().unwrap();
    for n in ["alpha.ru", "beta.ru", "gamma.ru"] {
        let k = zonekeeper::names::skeleton_index_key(&zones.parse_domain(n).unwrap());
        assert_eq!(s.look_alike(&k, "").unwrap().as_deref(), Some(n));
    }
}

/// EPP host objects: their table (transactional like the rest), and the
/// registry's host rules over it — glue, the superordinate domain, a change
/// re-declaring the NS sets that use the host, deletion while in use.
fn host_objects(s: &mut dyn Backend) {
    use zonekeeper::registry::{Actor, Registry};
    load(s, &data(NS_B));
    let st: &dyn Store = s;
    let mut t = st.begin().unwrap();
    let h = zonekeeper::model::HostObject {
        name: zonekeeper::names::parse_host("ns7.alpha.ru").unwrap(),
        sponsor: "R1".into(),
        addresses: vec!["192.0.2.7".parse().unwrap()],
        created: now(),
        updated: now(),
    };
    t.put_host_object(&h).unwrap();
    assert_eq!(t.host_object("ns7.alpha.ru").unwrap().as_ref(), Some(&h));
    drop(t);
    assert_eq!(st.host_object("ns7.alpha.ru").unwrap(), None, "dropped");
    let mut t = st.begin().unwrap();
    t.put_host_object(&h).unwrap();
    t.commit(now()).unwrap();
    assert_eq!(st.host_object("ns7.alpha.ru").unwrap(), Some(h));
    let mut t = st.begin().unwrap();
    t.delete_host_object("ns7.alpha.ru").unwrap();
    t.commit(now()).unwrap();
    assert_eq!(st.host_object("ns7.alpha.ru").unwrap(), None);

    let cfg = Config::default();
    let reg = Registry::offline(st, &cfg).unwrap().at(now());
    let (r1, r2) = (Actor::Registrar("R1".into()), Actor::Registrar("R2".into()));
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    reg.host_create(&r1, "NS9.Alpha.RU.", &v(&["192.0.2.9"]))
        .unwrap();
    let rule = |e: zonekeeper::registry::RegistryError| e.rule();
    assert_eq!(
        rule(
            reg.host_create(&r1, "ns9.alpha.ru", &v(&["192.0.2.8"]))
                .unwrap_err()
        ),
        "host-exists"
    );
    // Inside another registrar's domain; inside an unregistered one; no glue
    // inside; glue outside.
    assert_eq!(
        rule(
            reg.host_create(&r2, "ns9.beta.ru", &v(&["192.0.2.8"]))
                .unwrap_err()
        ),
        "forbidden"
    );
    assert_eq!(
        rule(
            reg.host_create(&r1, "ns1.nosuch.ru", &v(&["192.0.2.8"]))
                .unwrap_err()
        ),
        "superordinate"
    );
    assert_eq!(
        rule(reg.host_create(&r1, "ns8.alpha.ru", &[]).unwrap_err()),
        "invalid"
    );
    assert_eq!(
        rule(
            reg.host_create(&r2, "ns.ext.net", &v(&["192.0.2.10"]))
                .unwrap_err()
        ),
        "invalid"
    );
    assert_eq!(
        rule(
            reg.host_create(&r1, "ns8.alpha.ru", &v(&["192.0.2.300"]))
                .unwrap_err()
        ),
        "invalid"
    );
    reg.host_create(&r2, "ns.ext.net", &[]).unwrap();

    // Both domains use both hosts; glue only inside alpha.ru.
    let set = |d: &str| {
        reg.nameservers_of_hosts(d, &v(&["ns9.alpha.ru", "ns.ext.net"]))
            .unwrap()
    };
    reg.declare_nameservers(&r1, "alpha.ru", &set("alpha.ru"))
        .unwrap();
    reg.declare_nameservers(&r2, "gamma.ru", &set("gamma.ru"))
        .unwrap();
    let ns = |d: &str| -> Vec<(String, Vec<String>)> {
        st.domain(d)
            .unwrap()
            .unwrap()
            .nameservers
            .iter()
            .map(|n| {
                (
                    n.name.to_string(),
                    n.addresses.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        ns("alpha.ru")[0],
        ("ns9.alpha.ru".into(), v(&["192.0.2.9"]))
    );
    assert_eq!(ns("gamma.ru")[0], ("ns9.alpha.ru".into(), vec![]));
    assert_eq!(
        rule(
            reg.nameservers_of_hosts("beta.ru", &v(&["ns.none.net"]))
                .unwrap_err()
        ),
        "no-host"
    );

    // An address change re-declares alpha.ru (gamma.ru has no glue for it).
    assert_eq!(
        rule(
            reg.host_update(&r2, "ns9.alpha.ru", &v(&["192.0.2.99"]), &[], None)
                .unwrap_err()
        ),
        "forbidden"
    );
    // (An hour later: only the domain whose NS set changes is rewritten.)
    let later = Registry::offline(st, &cfg)
        .unwrap()
        .at(now() + chrono::Duration::hours(1));
    later
        .host_update(
            &r1,
            "ns9.alpha.ru",
            &v(&["192.0.2.99"]),
            &v(&["192.0.2.9"]),
            None,
        )
        .unwrap();
    assert_eq!(st.domain("gamma.ru").unwrap().unwrap().updated, now());
    assert_eq!(
        st.domain("alpha.ru").unwrap().unwrap().updated,
        now() + chrono::Duration::hours(1)
    );
    assert_eq!(
        ns("alpha.ru")[0],
        ("ns9.alpha.ru".into(), v(&["192.0.2.99"]))
    );
    assert_eq!(
        st.host("ns9.alpha.ru").unwrap().unwrap().addresses,
        vec!["192.0.2.99".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(st.history("alpha.ru", 10).unwrap().iter().any(|e| e
        .reason
        .starts_with("host ns9.alpha.ru changed by registrar:R1")));
    // A host object's glue is the host's, whichever edge declares the set
    // (here as the API does: names with addresses).
    let with_glue = |a: &[&str]| {
        vec![
            zonekeeper::registry::NameserverIn {
                name: "ns9.alpha.ru".into(),
                addresses: v(a),
            },
            zonekeeper::registry::NameserverIn {
                name: "ns.ext.net".into(),
                addresses: vec![],
            },
        ]
    };
    let e = reg
        .declare_nameservers(&r1, "alpha.ru", &with_glue(&["192.0.2.50"]))
        .unwrap_err();
    assert_eq!(e.rule(), "host-glue");
    assert!(e.to_string().contains("192.0.2.99, not 192.0.2.50"), "{e}");
    reg.declare_nameservers(&r1, "alpha.ru", &with_glue(&["192.0.2.99"]))
        .unwrap();
    // Removing its last address is the glue rule's refusal.
    assert_eq!(
        rule(
            reg.host_update(&r1, "ns9.alpha.ru", &[], &v(&["192.0.2.99"]), None)
                .unwrap_err()
        ),
        "invalid"
    );

    // In use: not deleted. Another registrar's domain (alpha.ru, R1) names
    // it: R2 cannot rename it (that would re-declare R1's domain).
    assert_eq!(
        rule(reg.host_delete(&r2, "ns.ext.net").unwrap_err()),
        "host-in-use"
    );
    assert_eq!(
        rule(
            reg.host_update(&r2, "ns.ext.net", &[], &[], Some("ns.ext2.net"))
                .unwrap_err()
        ),
        "host-in-use"
    );
    assert_eq!(ns("alpha.ru")[1].0, "ns.ext.net");
    // Once R1's domain no longer names it, the rename reaches R2's linked
    // domain (gamma.ru, declared through host objects).
    reg.declare_nameservers(
        &r1,
        "alpha.ru",
        &reg.nameservers_of_hosts("alpha.ru", &v(&["ns9.alpha.ru"]))
            .unwrap()
            .into_iter()
            .chain([zonekeeper::registry::NameserverIn {
                name: "ns.other.net".into(),
                addresses: vec![],
            }])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    reg.update_domain(
        &r2,
        "gamma.ru",
        &zonekeeper::registry::DomainUpdate {
            ns_rem: v(&["ns.ext.net"]),
            ns_add_hosts: v(&["ns.ext.net"]),
            ..Default::default()
        },
    )
    .unwrap();
    reg.host_update(&r2, "ns.ext.net", &[], &[], Some("ns.ext2.net"))
        .unwrap();
    assert_eq!(ns("gamma.ru")[1].0, "ns.ext2.net");
    assert_eq!(ns("alpha.ru")[1].0, "ns.other.net");
    assert!(st.host_object("ns.ext.net").unwrap().is_none());
    assert!(st
        .feed("R2", 0, 1000)
        .unwrap()
        .iter()
        .any(|e| e.domain == "gamma.ru" && e.reason.contains("renamed to ns.ext2.net")));
    let info = reg.host_info("ns.ext2.net").unwrap();
    assert!(info.linked);
    assert_eq!(info.sponsor, "R2");

    // Unused again: deleted.
    for (a, d) in [(&r1, "alpha.ru"), (&r2, "gamma.ru")] {
        reg.declare_nameservers(
            a,
            d,
            &reg.nameservers_of_hosts(d, &v(&["ns9.alpha.ru"]))
                .unwrap()
                .into_iter()
                .chain([zonekeeper::registry::NameserverIn {
                    name: "ns.other.net".into(),
                    addresses: vec![],
                }])
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    reg.host_delete(&r2, "ns.ext2.net").unwrap();
    assert!(st.host_object("ns.ext2.net").unwrap().is_none());
    // alpha.ru's host is gamma.ru's nameserver: alpha.ru is not deleted.
    let under: Vec<String> = st
        .host_objects_under("alpha.ru")
        .unwrap()
        .into_iter()
        .map(|h| h.name.to_string())
        .collect();
    assert_eq!(under, ["ns9.alpha.ru"]);
    assert!(st.host_objects_under("pha.ru").unwrap().is_empty());
    assert_eq!(
        rule(reg.close(&r1, "alpha.ru", true).unwrap_err()),
        "host-in-use"
    );

    // A host object created for a name its domain already declares starts
    // from the declared glue.
    let mut set = reg
        .nameservers_of_hosts("alpha.ru", &v(&["ns9.alpha.ru"]))
        .unwrap();
    set.push(zonekeeper::registry::NameserverIn {
        name: "ns5.alpha.ru".into(),
        addresses: v(&["192.0.2.5"]),
    });
    reg.declare_nameservers(&r1, "alpha.ru", &set).unwrap();
    assert_eq!(
        rule(
            reg.host_create(&r1, "ns5.alpha.ru", &v(&["192.0.2.6"]))
                .unwrap_err()
        ),
        "host-glue"
    );
    reg.host_create(&r1, "ns5.alpha.ru", &v(&["192.0.2.5"]))
        .unwrap();
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

/// An import of more domains than one bulk chunk (PostgreSQL batches each
/// chunk's writes): every domain, delegation record, history event, feed
/// entry and host is written as row by row, on both backends alike; a
/// second import of the same file changes nothing; a hold set by a third
/// goes to history and feed after the earlier events.
fn bulk_import_writes(s: &mut dyn Backend) {
    const N: usize = 2_500;
    let text = |hold_all: bool| {
        let doms: Vec<String> = (0..N)
            .map(|i| {
                format!(
                    r#"{{"name": "bulk{i:05}.ru", "registrar": "R{r}", "registrant": "C{r}",
   "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z", "hold": {hold},
   "nameservers": [{{"name": "ns.bulk{i:05}.ru", "addresses": ["192.0.2.{a}"]}}, {{"name": "ns.shared.net"}}]}}"#,
                    r = 1 + i % 2,
                    a = 1 + i % 200,
                    hold = hold_all || i == 7,
                )
            })
            .collect();
        format!(
            r#"{{"registrars": [{{"handle": "R1", "name": "One"}}, {{"handle": "R2", "name": "Two"}}],
 "contacts": [{{"handle": "C1", "kind": "person", "name": "Ivan"}}, {{"handle": "C2", "kind": "person", "name": "Anna"}}],
 "domains": [{}]}}"#,
            doms.join(",\n")
        )
    };
    load(s, &text(false));
    assert_eq!(s.stats().unwrap().domains as usize, N);
    assert_eq!(
        s.host("ns.shared.net").unwrap().unwrap().domains as usize,
        N
    );
    let own = s.host("ns.bulk01234.ru").unwrap().unwrap();
    assert_eq!(own.domains, 1);
    assert_eq!(
        own.addresses,
        vec!["192.0.2.35".parse::<std::net::IpAddr>().unwrap()]
    );
    let b = s.bundle("bulk02222.ru").unwrap().unwrap();
    assert_eq!(b.delegation.state, DelegationState::Testing);
    assert_eq!(b.registrant.unwrap().handle, "C1");
    assert_eq!(b.registrar.unwrap().handle, "R1");
    // bulk00007: the testing event, then the hold.
    let h = s.history("bulk00007.ru", 10).unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(s.history("bulk00008.ru", 10).unwrap().len(), 1);
    let feed = |r: &str| s.feed(r, 0, 10 * N).unwrap();
    let (f1, f2) = (feed("R1"), feed("R2"));
    assert_eq!(f1.len() + f2.len(), N + 1);
    let mut seqs: Vec<u64> = f1.iter().chain(&f2).map(|e| e.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), N + 1, "feed sequence numbers are unique");
    // Again: nothing changes, nothing is logged.
    load(s, &text(false));
    assert_eq!(feed("R1").len() + feed("R2").len(), N + 1);
    // Holds on all: one more event each, after the first.
    load(s, &text(true));
    let h = s.history("bulk01500.ru", 10).unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(h.iter().any(|e| e.reason.contains("hold")), "{h:?}");
    assert_eq!(feed("R1").len() + feed("R2").len(), 2 * N);
}

/// An import's contacts are written under its one import lock (a lock per
/// contact overflowed PostgreSQL's lock table at 1M domains, 500k
/// contacts: `benches/import.rs`), and a re-import changes nothing.
#[test]
fn postgres_imports_ten_thousand_contacts_under_one_lock() {
    let Some(pg) = support::pg::PgCluster::start_or_skip(
        "postgres_imports_ten_thousand_contacts_under_one_lock",
    ) else {
        return;
    };
    let url = pg.create_db("many");
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    // 20,000 domains: 10,000 contacts.
    std::fs::write(&f, zonekeeper::synth::generate(20_000, 3)).unwrap();
    let cfg = zonekeeper::config::Config::default();
    let now = chrono::Utc::now();
    let spooled = zonekeeper::import::spool_file(&f, &cfg, now).unwrap();
    let sum = zonekeeper::import::apply_spooled(&*s, &spooled, &cfg, now).unwrap();
    assert_eq!((sum.contacts, sum.domains), (10_000, 20_000));
    let again = zonekeeper::import::apply_spooled(&*s, &spooled, &cfg, now).unwrap();
    assert_eq!(again.unchanged, 20_000);
}

/// Resellers are stored objects of one registrar (docs/import.md
/// "Resellers"), handles in any case: from a file's `resellers` entry or
/// inferred from its domains; a file naming one reseller for domains of
/// two registrars without an entry is refused; a registrar cannot give its
/// domain another registrar's reseller; a reseller move hands it over.
fn resellers_belong_to_a_registrar(s: &mut dyn Backend) {
    use zonekeeper::registry::{Actor, CreateIn, Registry};
    let with = |resellers: &str, ra: &str, rg: &str| {
        data(NS_B)
            .replace(
                "\"contacts\": [",
                &format!("\"resellers\": [{resellers}],\n \"contacts\": ["),
            )
            .replace(
                "\"name\": \"alpha.ru\", \"registrar\": \"R1\",",
                &format!("\"name\": \"alpha.ru\", \"registrar\": \"R1\", \"reseller\": \"{ra}\","),
            )
            .replace(
                "\"name\": \"gamma.ru\", \"registrar\": \"R2\",",
                &format!("\"name\": \"gamma.ru\", \"registrar\": \"R2\", \"reseller\": \"{rg}\","),
            )
    };
    let refused = |s: &dyn Backend, text: String, why: &str| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.json");
        std::fs::write(&f, text).unwrap();
        let e = import::import_file(s, &f, &Config::default(), now()).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    };
    // One handle for domains of R1 and R2, no entry: refused, nothing stored.
    refused(
        &*s,
        with("", "Shop-X", "shop-x"),
        "belongs to one registrar",
    );
    assert!(s.domain("alpha.ru").unwrap().is_none());
    assert!(s.reseller("shop-x").unwrap().is_none());
    // An entry says whose it is: the other registrar's domain is refused.
    refused(
        &*s,
        with(
            r#"{"handle": "SHOP-X", "name": "Shop X", "registrar": "R1"}"#,
            "shop-x",
            "shop-x",
        ),
        "belongs to R1",
    );
    // Entry for R1, inferred for R2 (any case is one reseller).
    load(
        s,
        &with(
            r#"{"handle": "SHOP-X", "name": "Shop X", "registrar": "R1"}"#,
            "shop-x",
            "Gamma-Shop",
        ),
    );
    let x = s.reseller("Shop-X").unwrap().unwrap();
    assert_eq!(
        (x.handle.as_str(), x.name.as_str(), x.registrar.as_str()),
        ("SHOP-X", "Shop X", "R1")
    );
    let g = s.reseller("GAMMA-SHOP").unwrap().unwrap();
    assert_eq!(
        (g.handle.as_str(), g.registrar.as_str()),
        ("Gamma-Shop", "R2")
    );
    // The domain carries the reseller's one spelling.
    let a = s.domain("alpha.ru").unwrap().unwrap();
    assert_eq!(a.registration.reseller.as_deref(), Some("SHOP-X"));
    // Through the registry: another registrar's reseller is refused.
    let st: &dyn Store = s;
    let cfg = Config::default();
    let reg = Registry::offline(st, &cfg).unwrap().at(now());
    let create = |who: &str, name: &str, r: &str| {
        reg.create(
            &Actor::Registrar(who.into()),
            &CreateIn {
                name: name.into(),
                registrant: "C1".into(),
                reseller: Some(r.into()),
                ..CreateIn::default()
            },
        )
    };
    let e = create("R2", "delta.ru", "shop-X").unwrap_err();
    assert_eq!(e.rule(), "reseller-sponsor");
    assert!(s.domain("delta.ru").unwrap().is_none());
    create("R1", "delta.ru", "shop-x").unwrap();
    assert_eq!(
        s.domain("delta.ru")
            .unwrap()
            .unwrap()
            .registration
            .reseller
            .as_deref(),
        Some("SHOP-X")
    );
    // A new handle becomes the creating registrar's.
    create("R1", "epsilon.ru", "New-Shop").unwrap();
    assert_eq!(s.reseller("new-shop").unwrap().unwrap().registrar, "R1");
    // Moved: every domain of it, and the reseller is R2's now.
    let m = reg.move_reseller(&Actor::Operator, "shop-x", "R2").unwrap();
    assert_eq!(m.domains.len(), 2);
    assert_eq!(s.reseller("SHOP-X").unwrap().unwrap().registrar, "R2");
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap().registrar, "R2");
    assert_eq!(
        reg.move_reseller(&Actor::Operator, "nobody", "R2")
            .unwrap_err()
            .rule(),
        "no-reseller"
    );
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
}

/// The sponsor's `client*` statuses are stored with the domain and read
/// back the same, through the store and through the registry service.
fn client_statuses_round_trip(s: &mut dyn Backend) {
    use zonekeeper::model::ClientStatus;
    use zonekeeper::registry::{Actor, ClientStatusChange, Registry};
    load(&*s, &data(NS_B));
    let mut d = s.domain("alpha.ru").unwrap().unwrap();
    assert!(d.registration.client_statuses.is_empty());
    d.registration.client_statuses = ClientStatus::ALL.into_iter().collect();
    let mut txn = s.begin().unwrap();
    txn.put_domain(&d).unwrap();
    txn.commit(now()).unwrap();
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), d);
    let st: &dyn Store = s;
    let cfg = Config::default();
    let reg = Registry::offline(st, &cfg).unwrap().at(now());
    let r1 = Actor::Registrar("R1".into());
    let set = |v: &[ClientStatus]| ClientStatusChange::Set(v.iter().copied().collect());
    // clientUpdateProhibited: a set that keeps it is refused.
    let keep = [
        ClientStatus::ClientUpdateProhibited,
        ClientStatus::ClientHold,
    ];
    let e = reg
        .client_statuses(&r1, "alpha.ru", &set(&keep))
        .unwrap_err();
    assert_eq!(e.rule(), "client-update-prohibited");
    let d = reg
        .client_statuses(
            &r1,
            "alpha.ru",
            &ClientStatusChange::AddRem {
                add: vec![],
                rem: vec![ClientStatus::ClientUpdateProhibited],
            },
        )
        .unwrap();
    assert!(!d
        .registration
        .client_statuses
        .contains(&ClientStatus::ClientUpdateProhibited));
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), d);
    let d = reg
        .client_statuses(&r1, "alpha.ru", &set(&[ClientStatus::ClientHold]))
        .unwrap();
    assert_eq!(
        s.domain("alpha.ru")
            .unwrap()
            .unwrap()
            .registration
            .client_statuses,
        [ClientStatus::ClientHold].into()
    );
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), d);
    // Another registrar's domain: refused, nothing written.
    assert!(reg
        .client_statuses(&r1, "gamma.ru", &set(&[ClientStatus::ClientHold]))
        .is_err());
    assert!(s
        .domain("gamma.ru")
        .unwrap()
        .unwrap()
        .registration
        .client_statuses
        .is_empty());
}

/// Schema 6 → 7 on PostgreSQL: domain records gain no client statuses,
/// everything else (the registry-move time too) kept, in place.
#[test]
fn postgres_migrates_schema_6_domains() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("postgres_migrates_v6") else {
        return;
    };
    let url = pg.create_db("v6");
    let before = {
        let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
        load(&*s, &data(NS_B));
        s.domain("alpha.ru").unwrap().unwrap()
    };
    assert!(before.registration.client_statuses.is_empty() && before.ds.is_empty());
    // Schema 6's layout: without the `client_statuses` byte before `ds`.
    pg.psql(
        "v6",
        "UPDATE domains SET rec = substring(rec from 1 for length(rec) - 2) || '\\x00'::bytea",
    );
    pg.psql(
        "v6",
        "UPDATE zk_meta SET value = '\\x06000000'::bytea WHERE key = 'schema_version'",
    );
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), before);
    assert_eq!(s.domain("gamma.ru").unwrap().unwrap().registrar, "R2");
    drop(s);
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    assert_eq!(s.domain("alpha.ru").unwrap().unwrap(), before);
}

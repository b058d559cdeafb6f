use crate::store::{RedbStore, Store};

/// A store at `path` holding one domain `old.ru` as `bytes` (an older
/// layout) and marked as schema `version`, for the next open to migrate.
fn store_with_old_domain(path: &std::path::Path, bytes: &[u8], version: u32) {
    use crate::store::redb_schema::tables::{DOMAINS, META};
    drop(RedbStore::open(path).unwrap());
    let db = ::redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(DOMAINS).unwrap();
        t.insert("old.ru", bytes).unwrap();
        let mut m = w.open_table(META).unwrap();
        m.insert("schema_version", version.to_le_bytes().as_slice())
            .unwrap();
    }
    w.commit().unwrap();
}

/// `fixtures/store-v1.redb` was written by the schema-1 release (30
/// domains of the sample registry imported, testing started).
#[test]
fn opens_a_schema_1_store_and_migrates_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/store-v1.redb"),
        &path,
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    {
        let s = RedbStore::open(&path).unwrap();
        let stats = s.stats().unwrap();
        assert_eq!(stats.domains, 30);
        assert_eq!(stats.registrars, 4);
        assert_eq!(stats.contacts, 30);
        let (names, _) = s.search_domains("", None, 100).unwrap();
        assert_eq!(names.len(), 30);
        let mut testing = 0;
        for n in &names {
            let b = s
                .bundle(n)
                .unwrap()
                .expect("bundle readable after migration");
            assert_eq!(b.domain.name.as_str(), n);
            assert!(b.domain.ds.is_empty(), "no DS before schema 2");
            // The look-alike index was built for the old names.
            let key = crate::names::skeleton_index_key(&b.domain.name);
            assert_eq!(s.look_alike(&key, "").unwrap().as_deref(), Some(n.as_str()));
            let d = s.delegation(n).unwrap().expect("delegation record");
            // Without DS the delegation fingerprint is the old NS one:
            // migrated records still belong to their domains.
            assert_eq!(d.ns_fingerprint, b.domain.ns_fingerprint());
            if d.state == crate::model::DelegationState::Testing {
                testing += 1;
                assert!(!s.history(n, 10).unwrap().is_empty());
            }
        }
        assert_eq!(testing, 28);
    }
    assert_ne!(std::fs::read(&path).unwrap(), before, "rewritten in place");
    // A second open is the fast path and reads the same data.
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.stats().unwrap().domains, 30);
}

/// Schema 2 → 3: contacts gain `created` (unknown for old ones); the
/// sponsor stays.
#[test]
fn a_schema_2_contact_gets_an_unknown_creation_time() {
    use crate::store::redb_schema::tables::{CONTACTS, META};
    use ::redb::ReadableTable;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.redb");
    {
        let s = RedbStore::open(&path).unwrap();
        let mut c =
            crate::public::tests::full_contact("EPP-1", crate::model::ContactKind::Person, vec![]);
        c.sponsor = Some("REG-A".into());
        let mut t = s.begin().unwrap();
        t.put_contact(&c).unwrap();
        t.commit(chrono::Utc::now()).unwrap();
    }
    {
        // Rewrite it as schema 2 wrote it.
        let db = ::redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(CONTACTS).unwrap();
            let cur = t.get("EPP-1").unwrap().unwrap().value().to_vec();
            t.insert("EPP-1", super::v2_contact_bytes(&cur).as_slice())
                .unwrap();
            let mut m = w.open_table(META).unwrap();
            m.insert("schema_version", 2u32.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    let c = s.contact("EPP-1").unwrap().unwrap();
    assert_eq!((c.sponsor.as_deref(), c.created), (Some("REG-A"), None));
}

/// Schema 4 → 6: rounds gain `queue_lag_ms`, downtime entries
/// `unmeasured_ms` (0 for old ones, also inside a pending record and
/// in the rounds log); everything else stays.
#[test]
fn a_schema_4_delegation_record_and_round_get_no_lag_and_nothing_unmeasured() {
    use super::v4;
    use crate::store::redb_schema::tables::{DELEGATION, META, ROUNDS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.redb");
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
    let server = crate::model::ServerReport {
        name: "ns2.example.net".into(),
        addresses: vec!["192.0.2.2".into()],
        reachable: false,
        soa_serial: None,
        rtt_ms: None,
        unreachable_addresses: vec![],
    };
    let round = || v4::RoundSummary {
        at: now,
        passed: false,
        duration_ms: 1234,
        findings: vec![],
        servers: vec![server.clone()],
        inconclusive: Some("outage".into()),
    };
    let dt = || v4::ServerDowntime {
        server: crate::names::parse_host("ns2.example.net").unwrap(),
        period_start: now,
        unreachable_secs: 60,
        unreachable_ms: 60_000,
        last_reachable: Some(false),
        last_probe: Some(now),
        address: Some("192.0.2.2".into()),
    };
    let rec = |pending: Option<Box<v4::DelegationRecord>>| v4::DelegationRecord {
        state: crate::model::DelegationState::Delegated,
        ns_fingerprint: "fp".into(),
        window_start: Some(now),
        window_end: None,
        rounds: 7,
        last_round: Some(round()),
        next_probe: Some(now),
        downtime: vec![dt()],
        violation: None,
        delegated_at: Some(now),
        changed_at: now,
        blocked: vec![],
        blocked_since: None,
        failing: None,
        last_violation: None,
        published: vec![],
        pending,
        window_used_ms: 99,
        last_look: Some(now),
        conclusive_rounds: 3,
        published_ds: vec![],
    };
    let old = rec(Some(Box::new(rec(None))));
    {
        let s = RedbStore::open(&path).unwrap();
        drop(s);
        let db = ::redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(DELEGATION).unwrap();
            t.insert("old.ru", postcard::to_allocvec(&old).unwrap().as_slice())
                .unwrap();
            let mut r = w.open_table(ROUNDS).unwrap();
            r.insert(
                ("old.ru", 0u64),
                postcard::to_allocvec(&round()).unwrap().as_slice(),
            )
            .unwrap();
            let mut m = w.open_table(META).unwrap();
            m.insert("schema_version", 4u32.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    let got = s.delegation("old.ru").unwrap().unwrap();
    assert_eq!(
        (got.rounds, got.window_used_ms, got.conclusive_rounds),
        (7, 99, 3)
    );
    let lr = got.last_round.as_ref().unwrap();
    assert_eq!((lr.duration_ms, lr.queue_lag_ms), (1234, 0));
    assert_eq!(lr.inconclusive.as_deref(), Some("outage"));
    assert_eq!(got.downtime[0].unreachable_ms, 60_000);
    assert_eq!(got.downtime[0].unmeasured_ms, 0);
    assert_eq!(got.downtime[0].address.as_deref(), Some("192.0.2.2"));
    let p = got.pending.as_ref().unwrap();
    assert_eq!((p.downtime[0].unmeasured_ms, p.rounds), (0, 7));
    let rounds = s.rounds("old.ru", 10).unwrap();
    assert_eq!(rounds.len(), 1);
    assert_eq!((rounds[0].duration_ms, rounds[0].queue_lag_ms), (1234, 0));
    assert_eq!(rounds[0].servers, vec![server]);
}

/// The domain the schema tests write in an old layout (each changes
/// what its migration is about).
fn old_domain(now: crate::model::Timestamp) -> crate::model::Domain {
    crate::model::Domain {
        name: crate::names::DomainName::from_trusted("old.ru".into()),
        registrar: "A".into(),
        registrant: "C".into(),
        admin: None,
        tech: None,
        created: now,
        paid_till: now,
        nameservers: vec![],
        auth_info: None,
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: now,
        registration: crate::model::Registration::default(),
        ds: vec![],
    }
}

/// Schema 3 → 4: registrations gain host-object links (none: a name
/// declared before links to nothing); everything else stays.
#[test]
fn a_schema_3_domain_gets_no_host_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.redb");
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
    let d = crate::model::Domain {
        auth_info: Some("code".into()),
        registration: crate::model::Registration {
            reseller: Some("RS".into()),
            ..Default::default()
        },
        ..old_domain(now)
    };
    store_with_old_domain(&path, super::v3_domain_bytes(&d).as_slice(), 3);
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
}

/// Schema 4 → 5: a domain keeps its host links and gains no registry
/// move time.
#[test]
fn a_schema_4_domain_keeps_its_links_and_was_not_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.redb");
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
    let d = crate::model::Domain {
        transferred: Some(now),
        registration: crate::model::Registration {
            reseller: Some("RS".into()),
            host_links: vec![crate::names::HostName::from_trusted("ns1.old.ru".into())],
            ..Default::default()
        },
        ..old_domain(now)
    };
    // The schema-4 layout: the current one without `registry_moved`
    // and `client_statuses` (None and empty: two zero bytes just
    // before the empty `ds`).
    let mut v4 = postcard::to_allocvec(&d).unwrap();
    assert_eq!(&v4[v4.len() - 3..], &[0, 0, 0]);
    v4.truncate(v4.len() - 2);
    store_with_old_domain(&path, v4.as_slice(), 4);
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
}

/// Schema 6 → 7: a domain keeps everything (its registry-move time
/// too) and gains no client statuses.
#[test]
fn a_schema_6_domain_gets_no_client_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.redb");
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
    let d = crate::model::Domain {
        registration: crate::model::Registration {
            registry_moved: Some(now),
            ..Default::default()
        },
        ..old_domain(now)
    };
    // The schema-6 layout: the current one without `client_statuses`
    // (empty: one zero byte just before the empty `ds`).
    let mut v6 = postcard::to_allocvec(&d).unwrap();
    assert_eq!(&v6[v6.len() - 2..], &[0, 0]);
    v6.truncate(v6.len() - 1);
    store_with_old_domain(&path, v6.as_slice(), 6);
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
    drop(s);
    // Migrated once: a second open reads the same.
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
}

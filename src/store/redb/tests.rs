use super::backup::BACKUP_TABLES;
use super::*;
use crate::model::Registration;
use crate::names::{skeleton_index_key, DomainName};

/// The backup copies every table the schema defines, and a copy taken
/// in chunks smaller than a table holds what the store holds.
#[test]
fn backup_copies_every_table_in_chunks() {
    let src = include_str!("../redb_schema.rs");
    let mut defined: Vec<&str> = src
        .split("TableDefinition::new(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    defined.sort_unstable();
    let mut listed = BACKUP_TABLES.to_vec();
    listed.sort_unstable();
    assert_eq!(defined, listed);

    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    let mut txn = store.begin().unwrap();
    for i in 0..7 {
        txn.put_domain(&domain(&format!("d{i}.ru"), "R1")).unwrap();
    }
    txn.commit(domain("x.ru", "R1").updated).unwrap();
    let copy = dir.path().join("copy.redb");
    let n = store
        .backup_chunked(std::fs::File::create_new(&copy).unwrap(), 3)
        .unwrap();
    assert!(n > 7, "{n}");
    let back = RedbStore::open(&copy).unwrap();
    // Bare domains (no contacts): the same findings as the original.
    assert_eq!(back.verify().unwrap(), store.verify().unwrap());
    assert_eq!(back.stats().unwrap().domains, 7);
    assert_eq!(
        back.domains_by_registrar("R1", None, 10).unwrap().0.len(),
        7
    );
}

fn domain(name: &str, registrar: &str) -> Domain {
    let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    Domain {
        name: DomainName::from_trusted(name.into()),
        registrar: registrar.into(),
        registrant: "C".into(),
        admin: Some("D".into()),
        tech: None,
        created: t,
        paid_till: t + chrono::Duration::days(365),
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
fn reopen_backoff_doubles_to_its_cap_and_resets_on_success() {
    let t0 = Instant::now();
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    assert!(b.due(t0));
    let mut at = t0;
    let mut waits = Vec::new();
    for _ in 0..9 {
        b.failed(at);
        let next = b.next.unwrap();
        waits.push((next - at).as_millis());
        assert!(!b.due(next - Duration::from_millis(1)));
        assert!(b.due(next));
        at = next;
    }
    assert_eq!(
        waits,
        vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
    );
    b.succeeded();
    assert!(b.due(at));
    b.failed(at);
    assert_eq!((b.next.unwrap() - at).as_millis(), 100);
}

/// A disk that fills under a write: the write is refused as
/// `storage-full` and leaves nothing behind, the store reopens by
/// itself, reads answer, and writes succeed once space is back.
#[test]
fn a_write_on_a_full_disk_is_refused_whole_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut store = RedbStore::open(&path).unwrap();
    store.set_reopen_backoff(Duration::ZERO, Duration::ZERO);
    let before = domain("a.ru", "R1");
    let now = before.updated;
    let mut txn = store.begin().unwrap();
    txn.put_domain(&before).unwrap();
    txn.commit(now).unwrap();
    assert_eq!(store.health(), Health::Ok);

    store.inject_write_error(libc::ENOSPC);
    let mut txn = store.begin().unwrap();
    let mut refused = None;
    for n in ["b.ru", "c.ru", "d.ru"] {
        if let Err(e) = txn.put_domain(&domain(n, "R2")) {
            refused = Some(e);
            break;
        }
    }
    let e = match refused {
        Some(e) => {
            drop(txn);
            e
        }
        None => txn.commit(now).unwrap_err(),
    };
    assert!(matches!(e, StoreError::Full(_)), "{e:?}");
    assert_eq!(e.storage(), Some(Health::Full));
    assert_eq!(store.health(), Health::Full);
    // Later writes are refused with the same reason, not PreviousIo.
    for _ in 0..3 {
        let r = store
            .begin()
            .and_then(|mut t| {
                t.put_domain(&domain("e.ru", "R2"))?;
                t.commit(now)
            })
            .unwrap_err();
        assert!(matches!(r, StoreError::Full(_)), "{r:?}");
    }
    assert_eq!(store.probe_write(), Health::Full);

    // Space is back: the next write succeeds without a restart.
    store.inject_write_error(0);
    assert_eq!(store.domain("a.ru").unwrap(), Some(before.clone()));
    let mut txn = store.begin().unwrap();
    txn.put_domain(&domain("f.ru", "R3")).unwrap();
    txn.commit(now).unwrap();
    assert_eq!(store.health(), Health::Ok);
    for n in ["b.ru", "c.ru", "d.ru", "e.ru"] {
        assert_eq!(store.domain(n).unwrap(), None, "{n} half-written");
    }
    assert!(store.domain("f.ru").unwrap().is_some());
    // The indexes agree with the records (the bare test domains name
    // no stored registrar, contacts or delegation: those are all).
    let bare = |p: &Vec<String>| {
        p.iter()
            .all(|p| p.ends_with(" missing") || p.ends_with("no delegation record"))
    };
    assert!(bare(&store.verify().unwrap()));
    drop(store);
    // And after a restart.
    let store = RedbStore::open(&path).unwrap();
    assert!(bare(&store.verify().unwrap()));
    assert_eq!(store.stats().unwrap().domains, 2);
}

/// A failed open is retried no sooner than the backoff allows; the
/// error meanwhile says the store is unavailable.
#[test]
fn reopen_waits_out_its_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    store.set_reopen_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
    store.inject_write_error(libc::EIO);
    assert!(matches!(
        store.put_cds_sighting("a.ru", None),
        Err(StoreError::Unavailable(_))
    ));
    store.inject_write_error(0);
    // The first reopen is due at once; say it fails (the file is
    // still held): simulate by holding the backoff in the future.
    store.backoff.lock().unwrap().failed(Instant::now());
    *store.slot.write().unwrap() = None;
    assert!(matches!(
        store.domain("a.ru"),
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(store.health(), Health::Unavailable);
    store.backoff.lock().unwrap().next = Some(Instant::now());
    assert_eq!(store.domain("a.ru").unwrap(), None);
    assert_eq!(store.probe_write(), Health::Ok);
}

/// Index entries held back by a write transaction are seen by its own
/// reads, removed in order, written at commit and dropped with an abort.
#[test]
fn held_back_index_entries_read_write_and_abort_like_direct_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    let a = domain("a.ru", "R1");
    let key = skeleton_index_key(&a.name);
    let now = a.updated;
    let mut txn = store.begin().unwrap();
    txn.put_domain(&domain("b.ru", "R1")).unwrap();
    txn.put_domain(&a).unwrap();
    // Its own look-alike index, before commit.
    assert_eq!(
        txn.look_alike(&key, "x.ru").unwrap().as_deref(),
        Some("a.ru")
    );
    // Moved to another registrar in the same transaction.
    txn.put_domain(&domain("a.ru", "R2")).unwrap();
    txn.commit(now).unwrap();
    assert_eq!(
        store.domains_by_registrar("R1", None, 10).unwrap().0,
        vec!["b.ru".to_string()]
    );
    assert_eq!(
        store.domains_by_registrar("R2", None, 10).unwrap().0,
        vec!["a.ru".to_string()]
    );
    assert_eq!(
        store.domains_by_contact("D", None, 10).unwrap().0,
        vec!["a.ru".to_string(), "b.ru".to_string()]
    );
    assert_eq!(
        store.look_alike(&key, "x.ru").unwrap().as_deref(),
        Some("a.ru")
    );
    // Dropped without commit: none of its entries stay.
    let mut txn = store.begin().unwrap();
    for n in ["c.ru", "d.ru", "e.ru"] {
        txn.put_domain(&domain(n, "R3")).unwrap();
    }
    drop(txn);
    assert!(store
        .domains_by_registrar("R3", None, 10)
        .unwrap()
        .0
        .is_empty());
    assert_eq!(store.domains_by_contact("D", None, 10).unwrap().0.len(), 2);
}

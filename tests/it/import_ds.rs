//! DS sets in the import format (docs/import.md `ds`): validated per record,
//! stored normalised, and a changed DS set restarts testing on re-import.

use chrono::{TimeZone, Utc};
use zonekeeper::config::Config;
use zonekeeper::import::{self, ImportError};
use zonekeeper::model::DelegationState;
use zonekeeper::store::{RedbStore, Store};

fn file(ds: &str) -> String {
    format!(
        r#"{{
 "registrars": [{{"handle": "R1", "name": "Registrar One"}}],
 "contacts": [{{"handle": "C1", "kind": "person", "name": "Ivan Petrov"}}],
 "domains": [
  {{"name": "example.ru", "registrar": "R1", "registrant": "C1",
   "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z",
   "nameservers": [{{"name": "ns1.example.net"}}, {{"name": "ns2.example.net"}}],
   "ds": {ds}}}
 ]
}}"#
    )
}

#[test]
fn ds_is_validated_stored_and_restarts_testing() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("z.redb")).unwrap();
    let cfg = Config::default();
    let f = dir.path().join("r.json");
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
    let good = format!(
        r#"[{{"key_tag": 2371, "algorithm": 13, "digest_type": 2, "digest": "{}"}}]"#,
        "AB".repeat(32)
    );
    std::fs::write(&f, file(&good)).unwrap();
    import::import_file(&store, &f, &cfg, now).unwrap();
    let d = store.domain("example.ru").unwrap().unwrap();
    assert_eq!(d.ds.len(), 1);
    assert_eq!(d.ds[0].digest, "ab".repeat(32));
    let rec = store.delegation("example.ru").unwrap().unwrap();
    assert_eq!(rec.state, DelegationState::Testing);
    assert_eq!(rec.ns_fingerprint, d.ns_fingerprint());

    // Same file again: unchanged. Another DS: a fresh window.
    let later = now + chrono::Duration::hours(1);
    import::import_file(&store, &f, &cfg, later).unwrap();
    assert_eq!(
        store
            .delegation("example.ru")
            .unwrap()
            .unwrap()
            .window_start,
        Some(now)
    );
    let other = good.replace("2371", "2372");
    std::fs::write(&f, file(&other)).unwrap();
    import::import_file(&store, &f, &cfg, later).unwrap();
    assert_eq!(
        store
            .delegation("example.ru")
            .unwrap()
            .unwrap()
            .window_start,
        Some(later)
    );

    // Malformed DS: the whole file is refused with the index and field.
    let bad = r#"[{"key_tag": 1, "algorithm": 13, "digest_type": 2, "digest": "abcd"},
                  {"key_tag": 1, "algorithm": 13, "digest_type": 7, "digest": "abcd"}]"#;
    std::fs::write(&f, file(bad)).unwrap();
    let err = import::import_file(&store, &f, &cfg, later).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImportError::Records(_)), "{text}");
    assert!(
        text.contains("ds[0].digest") && text.contains("needs 32"),
        "{text}"
    );
    assert!(text.contains("ds[1].digest_type"), "{text}");
    assert_eq!(
        store.domain("example.ru").unwrap().unwrap().ds[0].key_tag,
        2372
    );
}

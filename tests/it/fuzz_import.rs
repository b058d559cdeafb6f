//! Property-based fuzzing of import parsing (cargo-fuzz needs a nightly
//! toolchain, which this project's machines do not have): arbitrary bytes
//! and mutations of a valid file never panic, and a file that validates
//! either applies whole or is rejected whole.

use chrono::Utc;
use proptest::prelude::*;
use zonekeeper::config::Config;
use zonekeeper::import::{self, ImportError};
use zonekeeper::store::{RedbStore, Store};

const SEED: &str = include_str!("../../fixtures/registry.json");

fn small_seed() -> String {
    // The first registrar, contacts and domains of the sample, kept small
    // so each case runs in microseconds.
    zonekeeper::synth::generate(6, 11)
}

fn parse(bytes: &[u8]) -> Result<zonekeeper::store::ImportBatch, ImportError> {
    let cfg = Config::default();
    let zones = cfg.zones().expect("zones");
    import::parse(bytes, "fuzz.json", &cfg, &zones, Utc::now())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut b = small_seed().into_bytes();
        for (at, byte) in edits {
            let i = at.index(b.len());
            b[i] = byte;
        }
        if truncate {
            let n = cut.index(b.len());
            b.truncate(n);
        }
        match parse(&b) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn field_values_from_hostile_strings(s in "\\PC{0,40}", field in 0usize..6) {
        let keys = ["\"name\":\"", "\"handle\":\"", "\"registrar\":\"", "\"city\":\"", "\"email\":\"", "\"created\":\""];
        let seed = small_seed();
        let key = keys[field];
        let json_s = serde_json::to_string(&s).expect("json string");
        let mutated = match seed.find(key) {
            Some(i) => {
                let start = i + key.len() - 1;
                let end = start + 1 + seed[start + 1..].find('"').expect("closing quote") + 1;
                format!("{}{}{}", &seed[..start], json_s, &seed[end..])
            }
            None => seed.clone(),
        };
        let _ = parse(mutated.as_bytes());
    }
}

/// Whatever validates applies whole: after a rejected apply the store
/// still holds exactly what it held before.
#[test]
fn validated_batches_apply_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = RedbStore::open(&dir.path().join("z.redb")).expect("store");
    let cfg = Config::default();
    let now = Utc::now();
    let batch = parse(SEED.as_bytes()).expect("sample parses");
    import::apply(&store, &batch, &cfg, now).expect("sample applies");
    let before = store.stats().expect("stats");
    // A domain that references a registrar that is nowhere: rejected whole.
    let mut bad = batch.clone();
    bad.domains[5].registrar = "NOWHERE".into();
    bad.domains[0].nameservers.clear();
    match import::apply(&store, &bad, &cfg, now) {
        Err(ImportError::Records(v)) => {
            assert_eq!(v.len(), 1);
            assert_eq!((v[0].section, v[0].index), ("domains", 5));
        }
        other => panic!("expected a record error, got {other:?}"),
    }
    assert_eq!(store.stats().expect("stats"), before);
    assert!(
        !store
            .domain(batch.domains[0].name.as_str())
            .unwrap()
            .unwrap()
            .nameservers
            .is_empty()
            || batch.domains[0].nameservers.is_empty()
    );
}

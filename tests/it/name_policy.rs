//! Per-zone name policy through import and the store:
//! look-alikes of registered names are refused (.рф) or flagged (.ru), and
//! name tables come from config.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use serde_json::json;
use zonekeeper::config::Config;
use zonekeeper::import::{self, ImportError};
use zonekeeper::store::{RedbStore, Store};

fn file(names: &[&str]) -> String {
    let domains: Vec<_> = names
        .iter()
        .map(|n| {
            json!({"name": n, "registrar": "R-P", "registrant": "C-P",
                   "created": "2025-03-01T10:00:00Z"})
        })
        .collect();
    json!({
        "registrars": [{"handle": "R-P", "name": "Registrar"}],
        "contacts": [{"handle": "C-P", "kind": "org", "org": "ACME"}],
        "domains": domains,
    })
    .to_string()
}

fn import(
    store: &RedbStore,
    cfg: &Config,
    names: &[&str],
) -> Result<zonekeeper::store::ImportSummary, ImportError> {
    let now = Utc::now();
    let batch = import::parse(
        file(names).as_bytes(),
        "t.json",
        cfg,
        &cfg.zones().unwrap(),
        now,
    )?;
    import::apply(store, &batch, cfg, now)
}

#[test]
fn look_alikes_of_registered_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("z.redb")).unwrap();
    let cfg = Config::default();
    import(&store, &cfg, &["сбер.рф", "paypal.ru"]).unwrap();
    // б and 6 look alike: the .рф table refuses, naming the registered name.
    let e = import(&store, &cfg, &["с6ер.рф", "другое.рф"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("domains[0].name") && e.contains("сбер.рф") && e.contains("TR39"),
        "{e}"
    );
    assert!(store.domain("xn--90a1af.xn--p1ai").unwrap().is_none());
    assert_eq!(
        store.stats().unwrap().domains,
        2,
        "nothing of the refused file applied"
    );
    // Within one file too.
    let e = import(&store, &cfg, &["ключ.рф", "кл6юч.рф", "клбюч.рф"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("domains[2].name") && e.contains("кл6юч.рф"),
        "{e}"
    );
    // .ru flags (1 looks like l) and imports.
    let s = import(&store, &cfg, &["paypa1.ru"]).unwrap();
    assert_eq!(s.flagged.len(), 1, "{s:?}");
    assert!(s.flagged[0].contains("paypal.ru"), "{s:?}");
    // Re-importing a registered name is no look-alike of itself.
    let s = import(&store, &cfg, &["сбер.рф", "paypal.ru"]).unwrap();
    assert!(s.flagged.is_empty(), "{s:?}");
}

#[test]
fn the_issue_names_are_refused_at_import() {
    let cfg = Config::default();
    let now = Utc::now();
    for (name, rule) in [
        ("xn--ls8h.ru", "LDH names only"),
        ("☃☃.ru", "LDH names only"),
        ("xn--pple-43d.ru", "LDH names only"),
        ("я.рф", "counted on the U-label"),
        ("☃☃.рф", "IDNA 2008"),
        ("аpple.рф", "mixes scripts"),
        ("ab--cd.ru", "positions 3 and 4"),
    ] {
        let e = import::parse(
            file(&[name]).as_bytes(),
            "t",
            &cfg,
            &cfg.zones().unwrap(),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("domains[0].name") && e.contains(rule),
            "{name}: {e}"
        );
    }
}

#[test]
fn tables_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("ru.txt");
    std::fs::write(
        &table,
        "zone ru\nlength 4 20\nidn no\nconfusables refuse\nU+0061..U+007A\n",
    )
    .unwrap();
    let cfg_text = format!(
        "zones = [\"ru\", \"рф\"]\n[names]\ntables = [{:?}]\n",
        table.display().to_string()
    );
    let cfg = Config::from_toml(&cfg_text, Path::new("t")).unwrap();
    let z = cfg.zones().unwrap();
    assert!(z
        .parse_domain("abc.ru")
        .unwrap_err()
        .to_string()
        .contains("4–"));
    assert!(z
        .parse_domain("abc1.ru")
        .unwrap_err()
        .to_string()
        .contains("table"));
    z.parse_domain("abcd.ru").unwrap();
    z.parse_domain("пример.рф").unwrap();
    // The shipped tables are what is built in.
    let shipped = Config::from_toml(
        "[names]\ntables = [\"config/names/ru.txt\", \"config/names/rf.txt\"]\n",
        Path::new("t"),
    )
    .unwrap();
    assert_eq!(shipped.zones().unwrap(), Config::default().zones().unwrap());
    // A bad table is a config error: exit 2 naming the line.
    std::fs::write(&table, "zone ru\nlength 4\n").unwrap();
    let cfg_path = dir.path().join("zk.toml");
    std::fs::write(&cfg_path, &cfg_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(&cfg_path)
        .args(["zone", "export", "--db"])
        .arg(dir.path().join("z.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("names.tables") && err.contains("line 2"),
        "{err}"
    );
    // A table for a zone the registry does not have.
    std::fs::write(&table, "zone su\n").unwrap();
    let e = Config::from_toml(&cfg_text, Path::new("t"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'su'"), "{e}");
}

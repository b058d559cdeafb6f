//! `zonekeeper import`, `zone export`, `retest`, `hold`/`release` driven
//! through the real binary: exit codes, error reports, all-or-nothing,
//! idempotency, and refusal of stores it must not touch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zonekeeper::model::DelegationState;
use zonekeeper::store::{RedbStore, Store};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zonekeeper"));
    // Never pick up a developer's config from the working directory.
    c.arg("--config").arg("config/zonekeeper.toml");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run zonekeeper")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Tmp(tempfile::TempDir);
impl Tmp {
    fn new() -> Self {
        Tmp(tempfile::tempdir().expect("tempdir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn db(&self) -> String {
        self.path("z.redb").display().to_string()
    }
    fn write(&self, name: &str, content: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write");
        p.display().to_string()
    }
}

const GOOD: &str = r#"{
 "registrars": [{"handle": "REGRU-RU", "name": "Registrar of Domain Names REG.RU LLC",
                 "url": "https://www.reg.ru", "email": "abuse@reg.ru",
                 "api_token_sha256": "0000000000000000000000000000000000000000000000000000000000000000"}],
 "contacts": [{"handle": "C1-RU", "kind": "person", "name": "Ivan Petrov", "org": null,
               "email": "ivan@example.ru", "phone": "+7.4951234567",
               "address": {"street": ["Tverskaya 1"], "city": "Moscow", "postal_code": "125009", "country": "RU"},
               "tax_id": "7700000000", "birth_date": "1980-01-01", "passport": "4500 123456",
               "disclose": ["email"]}],
 "domains": [{"name": "example.ru", "registrar": "REGRU-RU", "registrant": "C1-RU",
              "admin": "C1-RU", "tech": "C1-RU",
              "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z",
              "nameservers": [{"name": "ns1.example.ru", "addresses": ["192.0.2.1"]},
                              {"name": "ns2.example.net"}],
              "auth_info": "secret", "hold": false,
              "verification_requested": null, "transferred": null},
             {"name": "ПРИМЕР.РФ", "registrar": "REGRU-RU", "registrant": "C1-RU",
              "created": "2025-03-01T10:00:00Z", "paid_till": "2099-03-01T10:00:00Z"}]
}"#;

fn open(db: &str) -> RedbStore {
    RedbStore::open(Path::new(db)).expect("open store")
}

/// Everything the store holds, as text, to compare before and after.
/// (Bytes are no good: redb rewrites its allocator state on every close.)
fn snapshot(db: &str) -> String {
    let s = open(db);
    let mut out = format!(
        "{:?}\n",
        s.stats()
            .map(|mut st| {
                st.file_bytes = 0;
                st
            })
            .unwrap()
    );
    out += &format!("{:?}\n", s.registrars().unwrap());
    let (names, _) = s.search_domains("", None, 100_000).unwrap();
    for n in names {
        out += &format!(
            "{:?}\n{:?}\n{:?}\n",
            s.bundle(&n).unwrap(),
            s.history(&n, 1000).unwrap(),
            s.rounds(&n, 1000).unwrap()
        );
    }
    out
}

#[test]
fn import_is_idempotent_and_starts_tests() {
    let t = Tmp::new();
    let f = t.write("good.json", GOOD);
    let o = run(&["import", &f, "--db", &t.db()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("2 domains"), "{}", text(&o.stdout));
    let s = open(&t.db());
    let rec = s.delegation("example.ru").unwrap().unwrap();
    assert_eq!(rec.state, DelegationState::Testing);
    let window_start = rec.window_start;
    assert!(s.domain("xn--e1afmkfd.xn--p1ai").unwrap().is_some());
    assert_eq!(
        s.delegation("xn--e1afmkfd.xn--p1ai")
            .unwrap()
            .unwrap()
            .state,
        DelegationState::Undelegated
    );
    drop(s);
    // Same file again: nothing changes, the test window is not restarted.
    let o = run(&["import", &f, "--db", &t.db()]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("2 unchanged"),
        "{}",
        text(&o.stdout)
    );
    let s = open(&t.db());
    assert_eq!(
        s.delegation("example.ru").unwrap().unwrap().window_start,
        window_start
    );
    assert_eq!(s.history("example.ru", 10).unwrap().len(), 1);
    drop(s);
    // A changed NS set restarts testing.
    let changed = GOOD.replace("ns2.example.net", "ns3.example.net");
    let f2 = t.write("changed.json", &changed);
    let o = run(&["import", &f2, "--db", &t.db()]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("1 tests started"),
        "{}",
        text(&o.stdout)
    );
    let s = open(&t.db());
    assert_eq!(s.history("example.ru", 10).unwrap().len(), 2);
    assert_eq!(
        s.domains_by_host("ns2.example.net", None, 10)
            .unwrap()
            .0
            .len(),
        0
    );
    assert_eq!(
        s.domains_by_host("ns3.example.net", None, 10).unwrap().0,
        vec!["example.ru"]
    );
}

/// Each bad file: exit code 2, the message names the record and reason,
/// and the store is exactly as before.
#[test]
fn bad_files_are_rejected_whole() {
    let t = Tmp::new();
    let good = t.write("good.json", GOOD);
    assert!(run(&["import", &good, "--db", &t.db()]).status.success());
    let before = snapshot(&t.db());

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed",
            "{\"domains\": [".into(),
            "not valid import JSON",
        ),
        (
            "truncated",
            GOOD[..GOOD.len() / 2].into(),
            "not valid import JSON",
        ),
        ("not json", "hello".into(), "not valid import JSON"),
        ("unknown top key", "{\"domainz\": []}".into(), "domainz"),
        (
            "one nameserver",
            GOOD.replace(
                r#",
                              {"name": "ns2.example.net"}"#,
                "",
            ),
            "domains[0].nameservers: 1 nameserver(s) declared",
        ),
        (
            "missing glue",
            GOOD.replace(r#""addresses": ["192.0.2.1"]"#, r#""addresses": []"#),
            "glue addresses are required",
        ),
        (
            "bad name",
            GOOD.replace("example.ru\", \"registrar", "ex--ample.ru\", \"registrar"),
            "positions 3 and 4",
        ),
        (
            "bad date",
            GOOD.replace("2025-03-01T10:00:00Z", "yesterday"),
            "domains[0].-",
        ),
        (
            "unknown registrar",
            GOOD.replace(
                r#""registrar": "REGRU-RU", "registrant": "C1-RU",
              "created""#,
                r#""registrar": "NOPE", "registrant": "C1-RU",
              "created""#,
            ),
            "unknown registrar 'NOPE'",
        ),
        (
            "unknown contact",
            GOOD.replace(r#""tech": "C1-RU""#, r#""tech": "C9-RU""#),
            "domains[0].tech: unknown contact 'C9-RU'",
        ),
        (
            "duplicate domain",
            GOOD.replace("ПРИМЕР.РФ", "EXAMPLE.RU."),
            "appears twice",
        ),
        (
            "bad token hash",
            GOOD.replace(&"0".repeat(64), "abc"),
            "registrars[0].api_token_sha256",
        ),
        (
            "bad address",
            GOOD.replace("192.0.2.1", "192.0.2.300"),
            "not an IPv4 or IPv6 address",
        ),
    ];
    for (what, content, needle) in cases {
        let f = t.write("bad.json", &content);
        let o = run(&["import", &f, "--db", &t.db()]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains(needle), "{what}: expected {needle:?} in {err}");
        assert!(snapshot(&t.db()) == before, "{what}: store changed");
    }
    // A missing file.
    let o = run(&[
        "import",
        &t.path("missing.json").display().to_string(),
        "--db",
        &t.db(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot read"));
}

#[test]
fn newer_schema_is_refused_untouched() {
    let t = Tmp::new();
    {
        let db = redb::Database::create(t.path("z.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            let mut m = w.open_table(def).unwrap();
            m.insert("schema_version", 99u32.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let good = t.write("good.json", GOOD);
    let o = run(&["import", &good, "--db", &t.db()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("schema version 99") && err.contains("upgrade"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one-line message: {err}");
    // Nothing was written: the newer store still holds only its own meta table.
    let db = redb::Database::open(t.path("z.redb")).unwrap();
    let r = redb::ReadableDatabase::begin_read(&db).unwrap();
    use redb::TableHandle;
    let names: Vec<String> = r
        .list_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    assert_eq!(names, vec!["meta".to_string()]);
}

#[test]
fn not_a_store_and_unwritable_locations() {
    let t = Tmp::new();
    let junk = t.write("junk.redb", "this is not a redb file at all, just text");
    let good = t.write("good.json", GOOD);
    let o = run(&["import", &good, "--db", &junk]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot be opened"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&junk).unwrap(),
        "this is not a redb file at all, just text"
    );
    // A directory that does not exist.
    let o = run(&["import", &good, "--db", "/nonexistent-dir/z.redb"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn hold_release_retest_and_export() {
    let t = Tmp::new();
    let good = t.write("good.json", GOOD);
    assert!(run(&["import", &good, "--db", &t.db()]).status.success());
    // Retest of a domain that is already testing restarts its window.
    let o = run(&["retest", "EXAMPLE.RU", "--db", &t.db()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A domain without nameservers cannot be retested.
    let o = run(&["retest", "пример.рф", "--db", &t.db()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no nameservers"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["retest", "nope.ru", "--db", &t.db()]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["retest", "bad_name.ru", "--db", &t.db()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("LDH"));

    let o = run(&[
        "hold",
        "example.ru",
        "--reason",
        "court order 12",
        "--db",
        &t.db(),
    ]);
    assert!(o.status.success());
    let o = run(&["domain", "show", "example.ru", "--db", &t.db()]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lifecycle"]["hold"], true);
    assert!(!text(&o.stdout).contains("secret"), "auth code shown");
    let o = run(&["release", "example.ru", "--db", &t.db()]);
    assert!(o.status.success());
    let o = run(&["domain", "show", "example.ru", "--db", &t.db()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lifecycle"]["hold"], false);

    let o = run(&["zone", "export", "--db", &t.db()]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("IN SOA"));
    let o = run(&["zone", "export", "--zone", "com", "--db", &t.db()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not a zone of this registry"));
}

#[test]
fn bad_config_is_exit_2_with_the_key() {
    let t = Tmp::new();
    let cfg = t.write("c.toml", "[delegation]\ntest_windw = \"4d\"\n");
    let o = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["--config", &cfg, "zone", "export", "--db", &t.db()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("test_windw"),
        "{}",
        text(&o.stderr)
    );
}

/// A tmpfs mounted for one test (needs root, as in CI); unmounted on drop.
struct Mount(PathBuf);
impl Mount {
    fn tmpfs(at: PathBuf, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(&at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Mount(at))
    }
    fn remount(&self, opt: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "remount {opt}");
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_or_skip(t: &Tmp, size: &str) -> Option<Mount> {
    let m = Mount::tmpfs(t.path("mnt"), size);
    if m.is_none() {
        // Under CI the mount must work (CI runs as root); elsewhere skip.
        assert!(
            std::env::var("CI").is_err(),
            "CI must be able to mount a tmpfs (run the tests as root)"
        );
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
    }
    m
}

#[test]
fn full_disk_fails_cleanly_and_keeps_the_store() {
    let t = Tmp::new();
    let Some(m) = mount_or_skip(&t, "1m") else {
        return;
    };
    let db = m.0.join("z.redb").display().to_string();
    let good = t.write("good.json", GOOD);
    let o = run(&["import", &good, "--db", &db]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before = snapshot(&db);
    let big = t.write("big.json", &zonekeeper::synth::generate(4000, 3));
    let o = run(&["import", &big, "--db", &db]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        snapshot(&db) == before,
        "store changed or lost after a full disk"
    );
}

#[test]
fn read_only_store_fails_cleanly() {
    let t = Tmp::new();
    let Some(m) = mount_or_skip(&t, "8m") else {
        return;
    };
    let db = m.0.join("z.redb").display().to_string();
    let good = t.write("good.json", GOOD);
    assert!(run(&["import", &good, "--db", &db]).status.success());
    let before = snapshot(&db);
    m.remount("ro");
    let changed = t.write(
        "changed.json",
        &GOOD.replace("ns2.example.net", "ns9.example.net"),
    );
    let o = run(&["import", &changed, "--db", &db]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    m.remount("rw");
    assert!(snapshot(&db) == before);
}

/// `zonekeeper import --db postgres://…` of many records is one
/// transaction: it must not take a lock per record read (PostgreSQL's
/// lock table is shared and small: shrunk to a few hundred locks plus the
/// server's slack of some thousands, 20 000 contacts would overflow it).
#[test]
fn postgres_import_does_not_lock_each_record() {
    let Some(pg) = crate::support::pg::PgCluster::start_or_skip("postgres_import_lock_table")
    else {
        return;
    };
    pg.psql(
        "postgres",
        "ALTER SYSTEM SET max_locks_per_transaction = 10",
    );
    pg.psql("postgres", "ALTER SYSTEM SET max_connections = 20");
    pg.restart();
    assert_eq!(pg.psql("postgres", "SHOW max_locks_per_transaction"), "10");
    let url = pg.create_db("many");
    let t = Tmp::new();
    let file = t.write("many.json", &zonekeeper::synth::generate(40_000, 5));
    let out = run(&["import", &file, "--db", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("20000 contacts, 40000 domains"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(pg.psql("many", "SELECT count(*) FROM domains"), "40000");
}

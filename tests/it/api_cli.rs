//! The operator commands (`domain show`, `retest`, `hold`, `release`) run
//! as the real binary against a store loaded from the sample registry.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        // A hermetic config: nothing from the work tree's config/.
        std::fs::write(dir.path().join("zk.toml"), "zones = [\"ru\", \"рф\"]\n").unwrap();
        let e = Env { dir };
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json");
        let out = e.run(&["import", fixture.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        e
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("zk.redb")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
            .arg("--config")
            .arg(self.dir.path().join("zk.toml"))
            .args(args)
            .arg("--db")
            .arg(self.db())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    fn show(&self, name: &str) -> serde_json::Value {
        let out = self.run(&["domain", "show", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn domain_show_prints_registration_and_delegation() {
    let e = Env::new();
    let v = e.show("DELDOM1.RU.");
    assert_eq!(v["domain"]["name"], "deldom1.ru");
    assert_eq!(v["delegation"]["state"], "testing");
    assert_eq!(v["lifecycle"]["hold"], false);
    assert!(!v["history"].as_array().unwrap().is_empty());
    // The registration part is the public projection: no auth code, no
    // undisclosed contact data.
    let text = v.to_string();
    assert!(!text.contains("auth-"), "{text}");
    assert!(!text.contains("tax_id") && !text.contains("passport"));
    // U-labels work.
    let v = e.show("соксад3.рф");
    assert_eq!(v["domain"]["unicode_name"], "соксад3.рф");

    let out = e.run(&["domain", "show", "nosuchname.ru"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no such domain: nosuchname.ru"));
    let out = e.run(&["domain", "show", "bad_name.ru"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("LDH"), "{}", stderr(&out));
}

#[test]
fn retest_restarts_testing_or_says_why_not() {
    let e = Env::new();
    let out = e.run(&["retest", "deldom1.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deldom1.ru: testing until "));
    let v = e.show("deldom1.ru");
    assert_eq!(v["delegation"]["state"], "testing");
    assert_eq!(
        v["history"].as_array().unwrap().last().unwrap()["reason"],
        "retest requested"
    );
    // No nameservers: nothing to test (exit 2, one line).
    let out = e.run(&["retest", "findomsky0.ru"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no nameservers"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = e.run(&["retest", "nosuchname.ru"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hold_and_release() {
    let e = Env::new();
    let out = e.run(&["hold", "deldom1.ru", "--reason", "court order 12/3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deldom1.ru: on hold\n"
    );
    let v = e.show("deldom1.ru");
    assert_eq!(v["lifecycle"]["hold"], true);
    assert_eq!(v["hold"]["reason"], "court order 12/3");
    assert!(v["lifecycle"]["blocks"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("hold")));
    assert_eq!(v["domain"]["hold"], true);

    let out = e.run(&["release", "deldom1.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deldom1.ru: released\n"
    );
    let v = e.show("deldom1.ru");
    assert_eq!(v["lifecycle"]["hold"], false);
    assert!(v["hold"].is_null());
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reason"], "hold released");

    // A reason is required.
    let out = e.run(&["hold", "deldom1.ru"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--reason"));
    let out = e.run(&["hold", "nosuchname.ru", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn commands_refuse_a_store_in_use() {
    let e = Env::new();
    let _held = zonekeeper::store::RedbStore::open(&e.db()).unwrap();
    let out = e.run(&["hold", "deldom1.ru", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("in use by another process"),
        "{}",
        stderr(&out)
    );
}

//! The operator's registry commands against a running `zonekeeper serve`
//! (the real binary, through its control socket), with the real `whois`
//! client and RDAP showing each change at once: dispute lock, renew,
//! verification, reseller move, court cancellation, refusals with exit
//! code 2. And offline: a renewal import leaves an operator hold in place.
//!
//! Nothing leaves loopback (the sample's glue is in documentation ranges,
//! refused by the probe guard; names resolve through `127.0.0.1:9`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::bin::{text, Bin, Serve};
use crate::support::rdap::{get_blocking, statuses};

const CONFIG: &str = r#"zones = ["ru", "рф"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
[delegation]
probe_interval = "1s"
test_window = "3s"
[probe]
resolvers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
[lifecycle]
reserved_names = "@D@/reserved.txt"
"#;

/// The binary in a temp dir with the sample registry, torgra8.ru and
/// baro4.ru (REGRU-RU) sold by reseller RES-A.
struct Env(Bin);

impl std::ops::Deref for Env {
    type Target = Bin;
    fn deref(&self) -> &Bin {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        let bin = Bin::new(CONFIG);
        std::fs::write(bin.path("reserved.txt"), "# reserved\nregistry.ru\n").unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(root.join("fixtures/registry.json")).unwrap())
                .unwrap();
        for d in v["domains"].as_array_mut().unwrap() {
            // A reseller belongs to one registrar (docs/import.md "Ownership").
            if ["torgra8.ru", "baro4.ru"].contains(&d["name"].as_str().unwrap()) {
                d["reseller"] = "RES-A".into();
            }
        }
        std::fs::write(bin.path("import.json"), v.to_string()).unwrap();
        Env(bin)
    }

    fn import_file(&self) -> PathBuf {
        self.path("import.json")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Exit code 2 with a message on stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn serve(&self) -> Serve {
        self.0.serve(&self.import_file(), "zk.redb.sock")
    }
}

/// The real `whois` client against the server.
fn whois(addr: SocketAddr, q: &str) -> String {
    let out = Command::new("whois")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(addr.port().to_string())
        .arg(q)
        .output()
        .expect("the whois client (Debian package whois) must be installed");
    text(&out.stdout)
}

fn line<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
}

fn rdap(http: SocketAddr, name: &str) -> (u16, Value) {
    let g = get_blocking(&format!("http://{http}/rdap/domain/{name}"));
    (
        g.status,
        serde_json::from_str(&g.text).unwrap_or(Value::Null),
    )
}

/// Any RDAP path's body.
fn get(http: SocketAddr, path: &str) -> String {
    get_blocking(&format!("http://{http}/rdap/{path}")).text
}

#[test]
fn operator_registry_commands_on_a_running_serve() {
    let e = Env::new();
    let s = e.serve();

    // The reseller: a WHOIS line and an RDAP entity with its role.
    let w = whois(s.whois, "torgra8.ru");
    assert_eq!(line(&w, "reseller"), Some("RES-A"), "{w}");
    let (_, v) = rdap(s.http, "torgra8.ru");
    let roles: Vec<Value> = v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["handle"] == "RES-A")
        .map(|e| e["roles"].clone())
        .collect();
    assert_eq!(roles, vec![serde_json::json!(["reseller"])], "{v}");

    // A private person's handle (C8-RU, torgra8.ru's registrant) appears
    // nowhere; an organisation's (C0-RU) stays public.
    let (_, dv) = rdap(s.http, "torgra8.ru");
    assert!(
        !w.contains("C8-RU") && !dv.to_string().contains("C8-RU"),
        "{w} {dv}"
    );
    assert!(whois(s.whois, "C8-RU").contains("No entries found"));
    for path in [
        "entity/C8-RU",
        "entities?handle=C8-RU",
        "entities?handle=C8*",
        "domains/reverse_search/entity?handle=C8-RU",
    ] {
        let body = get(s.http, path);
        // (An error may echo the query, as for any unknown handle.)
        assert!(
            !body.contains("\"handle\":\"C8-RU\"") && !body.contains("torgra8"),
            "{path}: {body}"
        );
    }
    assert!(get(s.http, "entity/C0-RU").contains("\"handle\":\"C0-RU\""));

    // Dispute lock: published at once; the status quo is frozen.
    assert_eq!(
        e.ok(&["domain", "lock", "TORGRA8.RU.", "--reason", "case A40-1"]),
        "torgra8.ru: dispute lock set\n"
    );
    let w = whois(s.whois, "torgra8.ru");
    let state = line(&w, "state").unwrap();
    assert!(state.contains("DISPUTE LOCK"), "{w}");
    assert!(!state.contains("HOLD"), "{w}");
    assert!(
        !w.contains("A40-1"),
        "the operator's note is not public: {w}"
    );
    let (_, v) = rdap(s.http, "torgra8.ru");
    let st = statuses(&v);
    assert!(
        st.contains(&"server transfer prohibited".to_string()),
        "{st:?}"
    );
    assert!(!st.contains(&"server hold".to_string()), "{st:?}");
    let err = e.refused(&["domain", "close", "torgra8.ru"]);
    assert!(err.contains("dispute-lock"), "{err}");
    e.ok(&[
        "domain",
        "unlock",
        "torgra8.ru",
        "--outcome",
        "claim dismissed",
    ]);
    assert!(!line(&whois(s.whois, "torgra8.ru"), "state")
        .unwrap()
        .contains("DISPUTE"));

    // Renew: WHOIS paid-till follows at once.
    assert_eq!(
        e.ok(&["domain", "renew", "torgra8.ru"]),
        "torgra8.ru: paid till 2028-09-09T10:00:00+00:00\n"
    );
    assert_eq!(
        line(&whois(s.whois, "torgra8.ru"), "paid-till"),
        Some("2028-09-09T10:00:00Z")
    );

    // Verification request and answer.
    e.ok(&["domain", "verify", "baro4.ru"]);
    assert!(line(&whois(s.whois, "baro4.ru"), "state")
        .unwrap()
        .contains("UNVERIFIED"));
    e.ok(&["domain", "verified", "baro4.ru"]);
    let err = e.refused(&["domain", "verified", "baro4.ru"]);
    assert!(err.contains("no-request"), "{err}");

    // The reseller's domains move to another registrar in one go.
    // An unknown reseller (docs/cli.md "reseller move"): exit 2, one line
    // naming the rule; nothing moved.
    let err = e.refused(&["reseller", "move", "RES-NOBODY", "--to", "R01-RU"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no-reseller"), "{err}");
    // Any case names it; one line per moved domain.
    let out = e.ok(&["reseller", "move", "res-a", "--to", "R01-RU"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("reseller RES-A: 2 domain(s) moved to R01-RU"),
        "{out}"
    );
    for l in lines {
        assert!(
            l.contains(": moved REGRU-RU -> R01-RU; transfer lock until "),
            "{l}"
        );
    }
    for d in ["torgra8.ru", "baro4.ru"] {
        assert_eq!(line(&whois(s.whois, d), "registrar"), Some("R01-RU"), "{d}");
    }
    let hist = e.ok(&["domain", "show", "baro4.ru"]);
    assert!(
        hist.contains("reseller RES-A moved by the registry: REGRU-RU -> R01-RU"),
        "{hist}"
    );
    let err = e.refused(&["reseller", "move", "RES-A", "--to", "NOBODY"]);
    assert!(err.contains("unknown registrar"), "{err}");

    // A court decision: the name is free at once (WHOIS not found).
    let out = e.ok(&["domain", "court-cancel", "baro4.ru", "--claimant", "C5-RU"]);
    assert!(
        out.starts_with("baro4.ru: cancelled; reserved for C5-RU until "),
        "{out}"
    );
    assert!(whois(s.whois, "baro4.ru").contains("No entries found"));
    assert_eq!(rdap(s.http, "baro4.ru").0, 404);

    // Refusals: exit 2, a one-line reason, nothing changed.
    let err = e.refused(&["domain", "renew", "nope-nope.ru"]);
    assert!(err.contains("no such domain"), "{err}");
    let err = e.refused(&["domain", "renew", "-bad-.ru"]);
    assert!(!err.is_empty());
    let err = e.refused(&["domain", "transfer-approve", "torgra8.ru"]);
    assert!(err.contains("no-request"), "{err}");
    assert_eq!(e.ok(&["transfers"]), "");
}

#[test]
fn a_renewal_import_keeps_an_operator_hold_and_reserved_names_are_refused() {
    let e = Env::new();
    let f = e.import_file();
    e.ok(&["import", f.to_str().unwrap()]);
    e.ok(&["hold", "torgra8.ru", "--reason", "court order 5"]);
    // The same file again (hold: false everywhere), e.g. a renewal batch.
    e.ok(&["import", f.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&e.ok(&["domain", "show", "torgra8.ru"])).unwrap();
    assert_eq!(v["lifecycle"]["hold"], true, "{v}");
    assert_eq!(v["hold"]["reason"], "court order 5");
    e.ok(&["release", "torgra8.ru"]);
    let v: Value = serde_json::from_str(&e.ok(&["domain", "show", "torgra8.ru"])).unwrap();
    assert_eq!(v["lifecycle"]["hold"], false);
    let reasons: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"hold: court order 5"), "{reasons:?}");
    assert!(reasons.contains(&"hold released"), "{reasons:?}");

    // A reserved name in an import: the file is refused whole.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    let mut extra = doc["domains"][0].clone();
    extra["name"] = "Registry.RU".into();
    doc["domains"].as_array_mut().unwrap().push(extra);
    let bad = e.dir.path().join("bad.json");
    std::fs::write(&bad, doc.to_string()).unwrap();
    let err = e.refused(&["import", bad.to_str().unwrap()]);
    assert!(err.contains("reserved"), "{err}");
}

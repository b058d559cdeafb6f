//! The operator commands while `zonekeeper serve` owns the store: the real
//! binary serves the sample registry, and the real CLI (`hold`, `domain
//! show`, `release`, `retest`) reaches it through the control socket
//! `<store>.sock`; WHOIS and RDAP show the change at once. Also: the socket
//! is 0600, gone after SIGTERM, replaced when a SIGKILLed serve left it
//! behind (a non-socket file never is), a locked store with no socket gets
//! an error naming both, and a hold through the socket takes a domain the
//! scheduler delegated (two loopback servers of the test) out of the zone
//! file at once.
//!
//! Nothing leaves loopback: the sample's glue is in documentation ranges
//! (refused by the probe guard, `allow_private_targets` off) and names
//! without glue resolve through `127.0.0.1:9`.

use crate::support;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::rdap::whois_state;

use serde_json::{json, Value};

use support::bin::{Bin, Serve};
use support::dns;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json")
}

/// The binary in a temp dir with a config whose store is `zk.redb` in it;
/// test window short so sample domains reach `test_failed` within seconds.
struct Env {
    bin: Bin,
    import: PathBuf,
    /// The control socket's file name in `dir`.
    sock: &'static str,
}

impl std::ops::Deref for Env {
    type Target = Bin;
    fn deref(&self) -> &Bin {
        &self.bin
    }
}

const SAMPLE_CONFIG: &str = r#"zones = ["ru", "рф"]
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
[log]
filter = "info"
"#;

impl Env {
    fn new() -> Env {
        Env::with_config(SAMPLE_CONFIG, fixture(), "zk.redb.sock")
    }

    /// `config` with `@D@` standing for the temp dir; `serve` imports
    /// `import` and listens on `dir/sock`.
    fn with_config(config: &str, import: PathBuf, sock: &'static str) -> Env {
        Env {
            bin: Bin::new(config),
            import,
            sock,
        }
    }

    fn db(&self) -> PathBuf {
        self.path("zk.redb")
    }

    fn sock(&self) -> PathBuf {
        self.path(self.sock)
    }

    /// Start `serve` (importing the sample) and wait until it answers.
    fn serve(&self) -> Serve {
        self.bin.serve(&self.import, self.sock)
    }

    fn show(&self, name: &str) -> Value {
        let out = self.cli(&["domain", "show", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Port-43 query, raw TCP.
fn whois(addr: SocketAddr, q: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{q}\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn rdap_status(http: SocketAddr, name: &str) -> Vec<String> {
    let g = support::rdap::get_blocking(&format!("http://{http}/rdap/domain/{name}"));
    assert_eq!(g.status, 200);
    support::rdap::statuses(&g.json())
}

fn reasons(v: &Value) -> Vec<String> {
    v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn operator_commands_reach_a_running_serve() {
    let e = Env::new();
    let mut serve = e.serve();

    // Only the owner may connect.
    let meta = std::fs::symlink_metadata(e.sock()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The store is really locked: without the socket this would fail.
    assert!(zonekeeper::store::RedbStore::open(&e.db()).is_err());

    // hold → show → WHOIS and RDAP see it at once.
    let out = e.cli(&["hold", "DELDOM1.RU.", "--reason", "court order 12/3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "deldom1.ru: on hold\n");
    let v = e.show("deldom1.ru");
    assert_eq!(v["domain"]["name"], "deldom1.ru");
    assert_eq!(v["lifecycle"]["hold"], true);
    assert_eq!(v["hold"]["reason"], "court order 12/3");
    // The woken scheduler may already have recorded its own pause after it.
    let r = reasons(&v);
    assert!(r.iter().any(|x| x == "hold: court order 12/3"), "{r:?}");
    let w = whois(serve.whois, "deldom1.ru");
    assert!(whois_state(&w).contains("HOLD"), "{w}");
    assert!(!w.contains("court order"), "hold reason published: {w}");
    let st = rdap_status(serve.http, "deldom1.ru");
    assert!(st.contains(&"server hold".to_string()), "{st:?}");

    // release → hold gone everywhere.
    let out = e.cli(&["release", "deldom1.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "deldom1.ru: released\n");
    let v = e.show("deldom1.ru");
    assert_eq!(v["lifecycle"]["hold"], false);
    assert!(v["hold"].is_null());
    assert!(!whois_state(&whois(serve.whois, "deldom1.ru")).contains("HOLD"));
    let st = rdap_status(serve.http, "deldom1.ru");
    assert!(!st.contains(&"server hold".to_string()), "{st:?}");

    // The sample's servers cannot pass (documentation addresses), so the
    // 3-second window ends in test_failed; retest restarts it.
    let end = Instant::now() + Duration::from_secs(30);
    while e.show("domnorfin2.ru")["delegation"]["state"] != "test_failed" {
        assert!(
            Instant::now() < end,
            "domnorfin2.ru never test_failed: {}",
            e.show("domnorfin2.ru")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = e.cli(&["retest", "domnorfin2.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("domnorfin2.ru: testing until "),
        "{}",
        stdout(&out)
    );
    let v = e.show("domnorfin2.ru");
    let reasons: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"retest requested"), "{v}");

    // Errors: exit 2, one line, the CLI's own messages.
    for (args, want) in [
        (
            &["domain", "show", "nosuchname.ru"][..],
            "no such domain: nosuchname.ru",
        ),
        (
            &["hold", "nosuchname.ru", "--reason", "x"][..],
            "no such domain",
        ),
        (&["release", "nosuchname.ru"][..], "no such domain"),
        (&["retest", "findomsky0.ru"][..], "no nameservers"),
        (&["domain", "show", "bad_name.ru"][..], "LDH"),
    ] {
        let out = e.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }

    // Commands that need the store to themselves say what to do instead.
    let out = e.cli(&["import", fixture().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("in use by another process"));
    assert!(stderr(&out).contains("serve --import"), "{}", stderr(&out));
    let out = e.cli(&["zone", "export"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("zone.output"), "{}", stderr(&out));

    // SIGTERM: a clean stop that takes the socket with it.
    serve.signal("-TERM");
    let st = serve.wait(Duration::from_secs(15));
    assert!(st.success(), "{st}: {}", e.log());
    assert!(!e.sock().exists(), "socket left after a clean stop");
    assert!(e.log().contains("via the control socket"), "{}", e.log());
    // And the changes are in the store.
    let v = e.show("domnorfin2.ru");
    assert!(v["history"].to_string().contains("retest requested"));
}

#[test]
fn a_stale_socket_from_a_killed_serve_is_replaced() {
    let e = Env::new();
    let mut serve = e.serve();
    serve.signal("-KILL");
    serve.wait(Duration::from_secs(10));
    assert!(e.sock().exists(), "SIGKILL should leave the socket file");

    // Locked by nobody now: the CLI works on the store directly.
    let out = e.cli(&["hold", "deldom1.ru", "--reason", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut serve = e.serve();
    let out = e.cli(&["release", "deldom1.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "deldom1.ru: released\n");
    assert!(e.log().contains("stale control socket"), "{}", e.log());
    serve.signal("-TERM");
    assert!(serve.wait(Duration::from_secs(15)).success());
    assert!(!e.sock().exists());
}

/// `serve` with the listeners on ephemeral ports, expected to refuse to
/// start: its exit code and stderr.
fn serve_refused(e: &Env) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(e.dir.path().join("zk.toml"))
        .args(["serve", "--whois-listen", "127.0.0.1:0", "--http-listen"])
        .arg("127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn serve_refuses_a_socket_path_it_cannot_use() {
    // A file that is not a socket is never replaced.
    let e = Env::new();
    std::fs::write(e.sock(), "not a socket").unwrap();
    let (code, err) = serve_refused(&e);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(
        std::fs::read_to_string(e.sock()).unwrap(),
        "not a socket",
        "the file was touched"
    );

    // A path longer than sun_path: advice, not EINVAL.
    let long = format!("{}.sock", "s".repeat(120));
    let cfg = SAMPLE_CONFIG.replace(
        "cache_mib = 16\n",
        &format!("cache_mib = 16\ncontrol_socket = \"@D@/{long}\"\n"),
    );
    let e = Env::with_config(&cfg, fixture(), "unused.sock");
    let (code, err) = serve_refused(&e);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("too long"), "{err}");
    assert!(err.contains("store.control_socket"), "{err}");
}

#[test]
fn a_locked_store_without_a_socket_names_both() {
    let e = Env::new();
    let out = e.cli(&["import", fixture().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another process-like holder of the lock, with no control socket.
    let _held = zonekeeper::store::RedbStore::open(&e.db()).unwrap();
    for args in [
        &["hold", "deldom1.ru", "--reason", "x"][..],
        &["domain", "show", "deldom1.ru"][..],
    ] {
        let out = e.cli(args);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("in use by another process"), "{err}");
        assert!(
            err.contains(&e.db().display().to_string()),
            "no store path: {err}"
        );
        assert!(
            err.contains(&e.sock().display().to_string()),
            "no socket path: {err}"
        );
    }
}

/// A domain delegated by the real scheduler (two loopback servers of this
/// test) leaves the zone file as soon as `hold` goes through the control
/// socket, and comes back after `release` once it passes again. The socket
/// is where `store.control_socket` says.
#[test]
fn hold_takes_a_delegated_domain_out_of_the_zone_file_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let block = dns::loopback_block();
    let ips = [dns::ip(block, 1), dns::ip(block, 2)];
    let port = rt.block_on(dns::common_port(&ips));
    let z = dns::zone("op.ru", block, &[1, 2]);
    let _servers: Vec<dns::FakeServer> = (0..2)
        .map(|i| {
            rt.block_on(z.try_serve_on(z.ns[i].1, port))
                .expect("bind test server")
        })
        .collect();

    let now = chrono::Utc::now();
    let import = json!({
        "registrars": [{"handle": "OP-RU", "name": "Op", "url": null, "email": null,
                        "api_token_sha256": null}],
        "contacts": [{"handle": "C1-RU", "kind": "person", "name": "Ivan Petrov", "org": null,
                      "email": null, "phone": null, "address": null, "tax_id": null,
                      "birth_date": null, "passport": null, "disclose": []}],
        "domains": [{"name": "op.ru", "registrar": "OP-RU", "registrant": "C1-RU",
                     "admin": null, "tech": null,
                     "created": (now - chrono::Duration::days(10)).to_rfc3339(),
                     "paid_till": (now + chrono::Duration::days(300)).to_rfc3339(),
                     "nameservers": z.ns.iter()
                         .map(|(n, ip)| json!({"name": n, "addresses": [ip.to_string()]}))
                         .collect::<Vec<_>>(),
                     "auth_info": null, "hold": false,
                     "verification_requested": null, "transferred": null}],
    });
    let tmp = tempfile::tempdir().unwrap();
    let import_path = tmp.path().join("op.json");
    std::fs::write(&import_path, import.to_string()).unwrap();
    // Only this test's loopback servers are declared, so private targets
    // may be probed.
    let config = format!(
        r#"zones = ["ru"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
control_socket = "@D@/control.sock"
[delegation]
probe_interval = "200ms"
monitor_interval = "1h"
test_window = "10s"
downtime_budget = "5s"
[probe]
allow_private_targets = true
port = {port}
resolvers = ["127.0.0.1:9"]
timeout = "300ms"
retries = 0
[zone]
output = "@D@/{{zone}}.zone"
[log]
filter = "info"
"#
    );
    let e = Env::with_config(&config, import_path, "control.sock");
    let mut serve = e.serve();
    assert!(!e.dir.path().join("zk.redb.sock").exists());
    let zone_file = e.dir.path().join("ru.zone");
    let in_zone = || {
        std::fs::read_to_string(&zone_file)
            .unwrap_or_default()
            .contains("op.ru. 345600 IN NS ns1.op.ru.")
    };
    let wait_zone = |want: bool, what: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        while in_zone() != want {
            assert!(
                Instant::now() < end,
                "{what}: {:?}\n{}",
                std::fs::read_to_string(&zone_file),
                e.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_zone(true, "op.ru never delegated");

    let out = e.cli(&["hold", "op.ru", "--reason", "dispute 7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let held = Instant::now();
    wait_zone(false, "op.ru still in the zone after hold");
    // Monitoring is hourly here: only the control socket's wake-up can take
    // it out this fast (the zone writer's debounce is 500 ms).
    assert!(
        held.elapsed() < Duration::from_secs(5),
        "{:?}",
        held.elapsed()
    );
    assert_eq!(e.show("op.ru")["lifecycle"]["hold"], true);

    let out = e.cli(&["release", "op.ru"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_zone(true, "op.ru not back after release");

    serve.signal("-TERM");
    assert!(serve.wait(Duration::from_secs(15)).success(), "{}", e.log());
    assert!(!e.sock().exists());
}

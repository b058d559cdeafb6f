//! A full disk under `serve` on the redb store: the real binary's store on
//! a 24 MiB tmpfs the test mounts and fills with a filler file while
//! registrars create domains through the API and over EPP (Net::EPP). The service stays up, each
//! refused create gets `storage-full` (507; EPP 2400 naming it), WHOIS and RDAP keep
//! answering for existing names, `/readyz` says why it is not ready; once
//! the filler is gone the next create succeeds without a restart, and
//! after a restart `store check` passes and every acknowledged create is
//! there. Mounting needs root: outside `CI=true` the test skips without it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support;
use support::bin::Bin;

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: mounting a tmpfs is required under CI=true: {why}");
        }
        eprintln!("{test}: skipped, cannot mount a tmpfs: {why}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

const REGRU: &str = "REGRU-RU";
const EXISTING: [&str; 3] = ["findomsky0.ru", "baro4.ru", "torgra8.ru"];

fn whois(addr: SocketAddr, q: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{q}\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Fill the volume of `dir` to the last byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // The last partial chunk, byte by byte is too slow: small steps.
    for n in [4096usize, 512, 1] {
        while f.write_all(&chunk[..n]).is_ok() {}
    }
    let _ = f.sync_all();
}

struct Api {
    http: reqwest::Client,
    base: String,
    tok: String,
}

impl Api {
    /// Create `name`; its status and body.
    async fn create(&self, name: &str) -> (u16, Value, Option<String>) {
        let body = json!({"name": name, "registrant": "C8-RU", "admin": "C8-RU",
                          "nameservers": []});
        let r = self
            .http
            .post(format!("{}/api/v1/domains", self.base))
            .bearer_auth(&self.tok)
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let v = r.json().await.unwrap_or(Value::Null);
        (st, v, retry)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

const EPP_PW: &str = "correct horse battery staple";

/// The fixture with `REGRU`'s EPP login (client certificate `sha256`,
/// password [`EPP_PW`]), written into the test's dir.
fn with_epp_login(bin: &Bin, sha256: &str) -> PathBuf {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let salt = SaltString::encode_b64(b"zonekeeper-test-salt").unwrap();
    let phc = argon2::Argon2::default()
        .hash_password(EPP_PW.as_bytes(), &salt)
        .unwrap()
        .to_string();
    for r in v["registrars"].as_array_mut().unwrap() {
        if r["handle"] == REGRU {
            r["epp_cert_sha256"] = json!([sha256]);
            r["epp_password_hash"] = json!(phc);
        }
    }
    let out = bin.path("registry.json");
    std::fs::write(&out, serde_json::to_vec(&v).unwrap()).unwrap();
    out
}

/// A logged-in EPP session of `REGRU` (Net::EPP), once the listener is up.
fn epp_session(port: u16, certs: &support::epp::Certs) -> support::epp::Client {
    let end = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match support::epp::Client::connect(port, certs, &certs.clients[0], None) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < end, "EPP not up: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let r = c.cmd(&support::epp::login(REGRU, EPP_PW));
    assert_eq!(support::epp::code(&r), 1000, "{r}");
    c
}

fn epp_create(name: &str) -> String {
    format!(
        r#"<create><domain:create xmlns:domain="{}"><domain:name>{name}</domain:name><domain:registrant>C8-RU</domain:registrant><domain:authInfo><domain:pw>Fault-Code-1</domain:pw></domain:authInfo></domain:create></create>"#,
        support::epp::DOMAIN
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_without_restart() {
    let Some(vol) = Tmpfs::mount("24m", "storage_faults") else {
        return;
    };
    let store = vol.path().join("zk.redb");
    let certs = support::epp::certs(&[REGRU]);
    let epp_port = support::bin::free_port().port();
    let bin = Bin::new(&format!(
        r#"zones = ["ru", "рф"]
[epp]
listen = "127.0.0.1:{epp_port}"
cert = "{}"
key = "{}"
client_ca = "{}"
[store]
path = "{}"
cache_mib = 8
min_free_mib = 4
[delegation]
probe_interval = "1h"
[probe]
resolvers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
[log]
filter = "info"
"#,
        certs.server.cert.display(),
        certs.server.key.display(),
        certs.ca.display(),
        store.display()
    ));
    let fixture = with_epp_login(&bin, &certs.clients[0].sha256);
    let sock = store.with_extension("redb.sock");
    let serve = bin.serve(&fixture, &sock.display().to_string());
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", serve.http),
        tok: zonekeeper::synth::sample_token(REGRU),
    };
    assert_eq!(api.get("/readyz").await, (200, "ready\n".to_string()));

    // Acknowledged creates before the disk fills; warm the answer caches.
    let mut acked = Vec::new();
    for i in 0..10 {
        let name = format!("before-{i}.ru");
        let (st, v, _) = api.create(&name).await;
        assert_eq!(st, 201, "{v}");
        acked.push(name);
    }
    let mut whois_before = Vec::new();
    for n in EXISTING {
        whois_before.push(whois(serve.whois, n));
        assert_eq!(api.get(&format!("/rdap/domain/{n}")).await.0, 200);
    }

    let mut epp = epp_session(epp_port, &certs);
    let name = "before-epp.ru";
    assert_eq!(support::epp::code(&epp.cmd(&epp_create(name))), 1000);
    acked.push(name.to_string());

    // The volume fills; API and EPP creates go on until the store has
    // refused 20 of each.
    let filler = vol.path().join("filler");
    fill(&filler);
    let (mut refused, mut refused_epp) = (0, 0);
    for i in 0..2000 {
        let name = format!("during-{i}.ru");
        let (st, v, retry) = api.create(&name).await;
        match st {
            201 => acked.push(name),
            // Full; or, when it lands on redb's refusal before the
            // store's reopen, unavailable: both name storage as the cause.
            507 | 503 => {
                let t = if st == 507 {
                    "storage-full"
                } else {
                    "storage-unavailable"
                };
                assert_eq!(v["type"], format!("urn:zonekeeper:problem:{t}"), "{v}");
                assert_eq!(retry.as_deref(), Some("5"));
                refused += 1;
            }
            _ => panic!("create {name}: {st} {v}\n{}", bin.log()),
        }
        let name = format!("during-epp-{i}.ru");
        let r = epp.cmd(&epp_create(&name));
        match support::epp::code(&r) {
            1000 => acked.push(name),
            2400 => {
                assert!(
                    r.contains("(rule: storage-full)") || r.contains("(rule: storage-unavailable)"),
                    "{r}"
                );
                refused_epp += 1;
            }
            c => panic!("EPP create {name}: {c} {r}"),
        }
        if refused >= 20 && refused_epp >= 20 {
            break;
        }
    }
    assert!(
        refused >= 20 && refused_epp >= 20,
        "the store never refused a create"
    );
    let (st, body) = api.get("/readyz").await;
    assert_eq!(
        (st, body.as_str()),
        (503, "store: read-only, disk full\n"),
        "{}",
        bin.log()
    );
    assert_eq!(api.get("/healthz").await.0, 200);
    // Reads answer for existing names, the same as before.
    for (n, before) in EXISTING.iter().zip(&whois_before) {
        // The same answer (the store's last update time moved on with the
        // creates that still fitted).
        let now = whois(serve.whois, n);
        let record = |a: &str| {
            a.lines()
                .filter(|l| !l.starts_with("Last updated"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(record(&now), record(before), "{}", bin.log());
        assert!(now.contains("state:"), "{now}");
        let (st, body) = api.get(&format!("/rdap/domain/{n}")).await;
        assert_eq!(st, 200, "{body}\n{}", bin.log());
    }
    let metrics = api.get("/metrics").await.1;
    assert!(metrics.contains("zonekeeper_store_healthy 0"), "{metrics}");
    assert!(metrics.contains("zonekeeper_store_errors_total{kind=\"full\"}"));

    // Space is back: ready within seconds, and the next create succeeds
    // without a restart.
    std::fs::remove_file(&filler).unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        // 200 `degraded: … MiB free` first, until the free space is
        // measured again (every second).
        let (st, body) = api.get("/readyz").await;
        if (st, body.as_str()) == (200, "ready\n") {
            break;
        }
        assert!(
            Instant::now() < end,
            "not ready again: {body}\n{}",
            bin.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..5 {
        let name = format!("after-{i}.ru");
        let (st, v, _) = api.create(&name).await;
        assert_eq!(st, 201, "{v}\n{}", bin.log());
        acked.push(name);
    }
    // The same EPP session goes on.
    let name = "after-epp.ru";
    assert_eq!(support::epp::code(&epp.cmd(&epp_create(name))), 1000);
    acked.push(name.to_string());
    drop(epp);

    // After a restart: the store is consistent and holds every
    // acknowledged create.
    serve.signal("-TERM");
    let mut serve = serve;
    assert!(serve.wait(Duration::from_secs(20)).success());
    let out = bin.cli(&["store", "check"]);
    assert!(
        out.status.success(),
        "{}{}",
        support::bin::text(&out.stdout),
        support::bin::text(&out.stderr)
    );
    let mut present = 0;
    for n in &acked {
        let out = bin.cli(&["domain", "show", n]);
        if out.status.success() {
            present += 1;
        } else {
            eprintln!("{n} missing: {}", support::bin::text(&out.stderr));
        }
    }
    eprintln!(
        "storage_faults: {} creates acknowledged, {refused} API and {refused_epp} EPP refused, {present} present after restart",
        acked.len()
    );
    assert_eq!(present, acked.len());
}

/// PostgreSQL stopped hard under `serve` and started again: the service
/// stays up; while the database is away `/readyz` is 503 `store:
/// unavailable`, a create is refused as `storage-unavailable` (503,
/// `Retry-After`), WHOIS and RDAP answer names looked up before the stop
/// as they did then (from the answer caches), and for a name not looked
/// up RDAP answers 503 with `Retry-After` (never a 500) and WHOIS one
/// error line; after the start it is ready again within seconds and
/// creates succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_away_and_back_is_told_and_recovered_from() {
    // Durable: a hard stop must not lose an acknowledged commit (the
    // fast test settings, synchronous_commit off, would).
    let pg = match support::pg::PgCluster::try_start_durable() {
        Ok(pg) => pg,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("storage_faults_pg: PostgreSQL is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("storage_faults_pg: skipped: {why}");
            return;
        }
    };
    let url = pg.create_db("zk");
    let bin = Bin::new(&format!(
        r#"zones = ["ru", "рф"]
[store]
url = "{url}"
control_socket = "@D@/zk.sock"
[delegation]
probe_interval = "1h"
[probe]
resolvers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
[log]
filter = "info"
"#
    ));
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json");
    let serve = bin.serve(&fixture, "zk.sock");
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base: format!("http://{}", serve.http),
        tok: zonekeeper::synth::sample_token(REGRU),
    };
    assert_eq!(api.get("/readyz").await, (200, "ready\n".to_string()));
    let mut acked = 0;
    let (st, v, _) = api.create("before-pg.ru").await;
    assert_eq!(st, 201, "{v}");
    acked += 1;
    // Looked up before the stop: answered while the database is away.
    let (known, unknown) = (EXISTING[0], EXISTING[1]);
    let whois_before = whois(serve.whois, known);
    assert!(whois_before.contains("state:"), "{whois_before}");
    let (st, rdap_before) = api.get(&format!("/rdap/domain/{known}")).await;
    assert_eq!(st, 200, "{rdap_before}");
    let ns_before = whois(serve.whois, "nameserver ns1.baro4.ru");
    assert!(ns_before.contains("192.0.2.5"), "{ns_before}");

    pg.stop();
    let (st, body) = api.get("/readyz").await;
    assert_eq!((st, body.as_str()), (503, "store: unavailable\n"));
    assert_eq!(api.get("/healthz").await.0, 200);
    let (st, v, retry) = api.create("during-pg.ru").await;
    assert_eq!(st, 503, "{v}\n{}", bin.log());
    assert_eq!(
        v["type"], "urn:zonekeeper:problem:storage-unavailable",
        "{v}"
    );
    assert_eq!(retry.as_deref(), Some("5"));
    // An operator command: exit 2, one line naming the cause.
    let out = bin.cli(&["hold", known, "--reason", "database away"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}\n{}", bin.log());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("PostgreSQL database"), "{err}");
    assert_eq!(whois(serve.whois, known), whois_before, "{}", bin.log());
    assert_eq!(whois(serve.whois, "nameserver ns1.baro4.ru"), ns_before);
    assert_eq!(
        api.get(&format!("/rdap/domain/{known}")).await,
        (200, rdap_before),
        "{}",
        bin.log()
    );
    let r = api
        .http
        .get(format!("{}/rdap/domain/{unknown}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let w = whois(serve.whois, unknown);
    assert!(
        w.lines().any(|l| l.starts_with("% Error:")) && !w.contains("state:"),
        "{w}"
    );
    let metrics = api.get("/metrics").await.1;
    for service in ["whois", "rdap"] {
        let series = format!("zonekeeper_stale_answers_total{{service=\"{service}\"}}");
        assert!(metrics.contains(&series), "{series} missing");
    }

    pg.start();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if api.get("/readyz").await == (200, "ready\n".to_string()) {
            break;
        }
        assert!(Instant::now() < end, "not ready again\n{}", bin.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, v, _) = api.create("after-pg.ru").await;
    assert_eq!(st, 201, "{v}\n{}", bin.log());
    acked += 1;
    let (st, _) = api.get(&format!("/rdap/domain/{}", EXISTING[0])).await;
    assert_eq!(st, 200);
    assert_eq!(
        pg.psql(
            "zk",
            "SELECT string_agg(name, ',' ORDER BY name) FROM domains WHERE name LIKE '%-pg.ru'"
        ),
        "after-pg.ru,before-pg.ru"
    );
    assert_eq!(acked, 2);
}

/// The scheduler while PostgreSQL is away: a delegated domain's second
/// server goes down, then the database is stopped hard for longer than
/// the downtime budget while the scheduler (real probes of real loopback
/// servers) keeps running. Rounds that could not be written are not
/// recorded, charged or sanctioned: no round is stored from the outage,
/// the server's downtime stays within the budget (the outage alone is
/// longer than it) and the domain is not suspended; rounds run again and
/// are recorded after the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_charges_nothing_it_could_not_record_while_postgresql_is_away() {
    use support::dns;
    use support::sched::{domain, fast_config, ns, wait_for};
    use zonekeeper::model::{DelegationRecord, DelegationState};

    let pg = match support::pg::PgCluster::try_start_durable() {
        Ok(pg) => pg,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("storage_faults_sched: PostgreSQL is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("storage_faults_sched: skipped: {why}");
            return;
        }
    };
    let url = pg.create_db("sched");
    let block = dns::loopback_block();
    let ips = [dns::ip(block, 1), dns::ip(block, 2)];
    let port = dns::common_port(&ips).await;
    let z = dns::zone("away.ru", block, &[1, 2]);
    let _ns1 = z.serve_on(ips[0], port).await;
    let mut ns2 = Some(z.serve_on(ips[1], port).await);

    let budget = Duration::from_secs(3);
    let mut cfg = fast_config();
    let d = &mut cfg.delegation;
    d.probe_interval = Duration::from_millis(200);
    d.monitor_interval = Duration::from_millis(200);
    d.downtime_period = Duration::from_secs(3600);
    d.downtime_budget = budget;
    d.on_violation = zonekeeper::config::OnViolation::Suspend;
    cfg.probe.port = port;
    cfg.probe.timeout = Duration::from_millis(300);
    cfg.probe.retries = 0;
    cfg.probe.resolvers = vec!["127.0.0.1:9".parse().unwrap()];
    cfg.zones = vec!["ru".into()];

    let store: Arc<dyn zonekeeper::store::Store> =
        Arc::new(zonekeeper::store::PgStore::connect(&url, 4).unwrap());
    let now = chrono::Utc::now();
    let glue = z.ns.iter().map(|(n, ip)| ns(n, &[*ip])).collect();
    zonekeeper::registry::Registry::offline(store.as_ref(), &cfg)
        .unwrap()
        .import(
            &zonekeeper::store::ImportBatch {
                registrars: vec![support::sched::registrar()],
                contacts: vec![support::sched::contact()],
                domains: vec![domain("away.ru", glue, now)],
                ..Default::default()
            },
            now,
        )
        .unwrap();
    let old = store.delegation("away.ru").unwrap().unwrap();
    let rec = DelegationRecord {
        state: DelegationState::Delegated,
        delegated_at: Some(now),
        ..old.clone()
    };
    assert!(store
        .put_delegation("away.ru", &old.ns_fingerprint, &rec, None, None)
        .unwrap());

    let app =
        zonekeeper::app::App::new(cfg, store.clone(), Arc::new(zonekeeper::clock::SystemClock))
            .unwrap();
    let task = tokio::spawn(zonekeeper::scheduler::run(app.clone()));
    let ns2_down = || {
        store
            .delegation("away.ru")
            .ok()
            .flatten()
            .and_then(|r| {
                r.downtime
                    .iter()
                    .find(|d| d.server.as_str() == "ns2.away.ru" && d.address.is_none())
                    .map(|d| d.last_reachable)
            })
            .flatten()
    };
    assert!(
        wait_for(Duration::from_secs(10), || store
            .rounds("away.ru", 10)
            .is_ok_and(|r| r.len() >= 2))
        .await,
        "no rounds recorded"
    );

    // ns2 goes down; once a round recorded it, the database goes away
    // for longer than the whole budget.
    ns2.take();
    assert!(
        wait_for(Duration::from_secs(10), || ns2_down() == Some(false)).await,
        "ns2 never recorded down"
    );
    let stopped = chrono::Utc::now();
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(budget + Duration::from_secs(2)).await;
    let started = chrono::Utc::now();
    tokio::task::block_in_place(|| pg.start());

    // Rounds run again and are recorded (ns2 still down), then ns2 is back.
    assert!(
        wait_for(Duration::from_secs(20), || store
            .rounds("away.ru", 1000)
            .is_ok_and(|r| r.iter().any(|r| r.at > started)))
        .await,
        "no round recorded after the database came back"
    );
    let _ns2 = z.serve_on(ips[1], port).await;
    assert!(
        wait_for(Duration::from_secs(10), || ns2_down() == Some(true)).await,
        "ns2 never recorded back"
    );
    app.shutdown().cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;

    let rounds = store.rounds("away.ru", 1000).unwrap();
    let during: Vec<_> = rounds
        .iter()
        .filter(|r| r.at > stopped && r.at < started)
        .map(|r| r.at)
        .collect();
    assert!(
        during.is_empty(),
        "rounds recorded from the outage: {during:?}"
    );
    let rec = store.delegation("away.ru").unwrap().unwrap();
    let d = rec
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.away.ru" && d.address.is_none())
        .unwrap();
    let history = store.history("away.ru", 100).unwrap();
    assert!(
        rec.state == DelegationState::Delegated
            && rec.violation.is_none()
            && history.iter().all(|e| e.to != DelegationState::Suspended),
        "{rec:?}\n{history:?}"
    );
    assert!(
        u128::from(d.unreachable_ms) < budget.as_millis(),
        "charged {} ms for an outage the registry could not record: {d:?}",
        d.unreachable_ms
    );
    eprintln!(
        "storage_faults_sched: {} rounds recorded, ns2 charged {} ms, database away {} ms",
        rounds.len(),
        d.unreachable_ms,
        (started - stopped).num_milliseconds()
    );
}

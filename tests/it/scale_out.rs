//! Several `zonekeeper serve` processes on one PostgreSQL database (a
//! cluster the test starts): two schedulers (`--roles scheduler`) and a
//! front end with the zone writer (`--roles frontend,zone`), probing
//! loopback DNS servers of the test. Registrars declare through the front
//! end; the schedulers share the domains (claims with leases), delegate
//! them, and the zone writer publishes them; a domain whose test failed
//! is retested through the second front end and delegated by the
//! schedulers. A scheduler killed with SIGKILL has its domains taken over
//! after the lease; no domain is probed by two schedulers at once (its
//! rounds stay an interval apart, and its servers saw no more probes than
//! it has stored rounds). A standby zone writer never writes while the
//! leader lives and takes over, every domain in the zone, when the leader
//! is killed with SIGKILL. A second front end shows a change made through
//! the first (API) or by an operator's CLI (hold, release) within a
//! second. And redb refuses anything but all three roles.

use crate::support;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::dns::{self, FakeServer};
use zonekeeper::store::{self, Location, OpenOptions};

const REG: &str = "ALPHA-RU";
const DOMAINS: usize = 7;
/// The domain whose servers are down at first: its test fails, and after
/// they come up a retest through the second front end delegates it.
const LATE: usize = DOMAINS - 1;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn serve(dir: &Path, name: &'static str, roles: &str, extra: &[String]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(dir.join("zk.toml"))
        .args(["serve", "--roles", roles])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    Proc(child)
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

async fn until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_a_front_end_and_a_standby_zone_writer() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("scale_out") else {
        return;
    };
    let url = pg.create_db("zk");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // One zone per domain, two servers each, all on one port.
    let block = dns::loopback_block();
    let hosts: Vec<u8> = (1..=(2 * DOMAINS) as u8).collect();
    let ips: Vec<IpAddr> = hosts.iter().map(|h| dns::ip(block, *h)).collect();
    let port = dns::common_port(&ips).await;
    let mut zones = Vec::new();
    // Per domain, its servers (queries counted).
    let mut servers: Vec<Vec<FakeServer>> = Vec::new();
    for i in 0..DOMAINS {
        let z = dns::zone(
            &format!("d{i}.ru"),
            block,
            &[2 * i as u8 + 1, 2 * i as u8 + 2],
        );
        let mut mine = Vec::new();
        if i != LATE {
            for (_, ip) in &z.ns {
                mine.push(z.serve_on(*ip, port).await);
            }
        }
        servers.push(mine);
        zones.push(z);
    }

    let (whois, http) = (free(), free());
    let cfg = format!(
        r#"zones = ["ru"]
[store]
url = "{url}"
pool_size = 4
[serve]
claim_lease = "2s"
poll_interval = "200ms"
[delegation]
probe_interval = "300ms"
test_window = "2s"
monitor_interval = "800ms"
downtime_budget = "1h"
downtime_period = "1d"
[probe]
allow_private_targets = true
port = {port}
timeout = "500ms"
retries = 0
resolvers = ["127.0.0.1:9"]
[zone]
output = "{d}/{{zone}}.zone"
[whois]
listen = "{whois}"
[http]
listen = "{http}"
[log]
filter = "info"
"#,
        d = d.display()
    );
    std::fs::write(d.join("zk.toml"), &cfg).unwrap();

    // Import through the CLI onto PostgreSQL.
    let now = Utc::now();
    let token = "alpha-token-0123456789abcdef";
    let import = json!({
        "registrars": [{"handle": REG, "name": "Alpha",
            "api_token_sha256": hex::encode(Sha256::digest(token.as_bytes()))}],
        "contacts": [{"handle": "C1-RU", "kind": "person", "name": "Ivan Petrov"}],
        "domains": (0..DOMAINS).map(|i| json!({
            "name": format!("d{i}.ru"), "registrar": REG, "registrant": "C1-RU",
            "created": (now - chrono::Duration::days(10)).to_rfc3339(),
            "paid_till": (now + chrono::Duration::days(300)).to_rfc3339(),
            "nameservers": []})).collect::<Vec<_>>(),
    });
    std::fs::write(d.join("registry.json"), import.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(d.join("zk.toml"))
        .arg("import")
        .arg(d.join("registry.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What one probe of a domain costs a server: `zonekeeper check` (the
    // engine the rounds use) once against d0, counted at its first server.
    // Every query a server gets later is a scheduler's, so queries over
    // this are the probes a domain got, to compare with its stored rounds.
    let per_probe = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zonekeeper"));
        cmd.arg("--config")
            .arg(d.join("zk.toml"))
            .args(["check", "d0.ru", "--allow-private"]);
        for (n, ip) in &zones[0].ns {
            cmd.args(["--ns", &format!("{n}/{ip}:{port}")]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let q = servers[0][0]
            .hits
            .swap(0, std::sync::atomic::Ordering::SeqCst);
        assert!(q > 0, "the check never reached the test server");
        q
    };

    let s1 = serve(d, "s1", "scheduler", &[]);
    let s2 = serve(d, "s2", "scheduler", &[]);
    let front = serve(d, "front", "frontend,zone", &[]);
    // A second front end (no zone writer) on ports of its own.
    let (whois2, http2) = (free(), free());
    let front2 = serve(
        d,
        "front2",
        "frontend",
        &[
            "--http-listen".into(),
            http2.to_string(),
            "--whois-listen".into(),
            whois2.to_string(),
        ],
    );
    let api = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{http}");
    let base2 = format!("http://{http2}");
    let start = Instant::now();
    for (b, name) in [(&base, "front"), (&base2, "front2")] {
        while api.get(format!("{b}/readyz")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} not up: {}",
                log(d, name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A standby zone writer, started once the first one leads: it must
    // not write the zone while the leader lives.
    until(
        Duration::from_secs(15),
        "front leads the zone writer",
        || {
            log(d, "front")
                .contains("zone writer: leading")
                .then_some(())
        },
    )
    .await;
    let (standby_http, standby_whois) = (free(), free());
    let standby = serve(
        d,
        "standby",
        "frontend,zone",
        &[
            "--http-listen".into(),
            standby_http.to_string(),
            "--whois-listen".into(),
            standby_whois.to_string(),
        ],
    );
    until(Duration::from_secs(15), "standby waits", || {
        log(d, "standby")
            .contains("another process leads")
            .then_some(())
    })
    .await;

    // Declare through the front end: the schedulers (other processes)
    // find the work, test it and delegate; the zone writer publishes.
    for (i, z) in zones.iter().enumerate() {
        let ns: Vec<Value> =
            z.ns.iter()
                .map(|(n, ip)| json!({"name": n, "addresses": [ip.to_string()]}))
                .collect();
        let r = api
            .put(format!("{base}/api/v1/domains/d{i}.ru/nameservers"))
            .bearer_auth(token)
            .json(&json!({ "nameservers": ns }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let st = store::open(&Location::parse(&url), &OpenOptions::default()).unwrap();
    use zonekeeper::model::DelegationState;
    let state =
        |st: &store::AnyStore, i: usize| st.delegation(&format!("d{i}.ru")).unwrap().unwrap().state;
    let zone_file = d.join("ru.zone");
    let in_zone_file = |i: usize| {
        std::fs::read_to_string(&zone_file)
            .unwrap_or_default()
            .contains(&format!("d{i}.ru. 345600 IN NS ns1.d{i}.ru."))
    };
    until(
        Duration::from_secs(40),
        "all but the late one delegated, the late one failed",
        || {
            ((0..LATE).all(|i| state(&st, i) == DelegationState::Delegated)
                && state(&st, LATE) == DelegationState::TestFailed)
                .then_some(())
        },
    )
    .await;
    until(
        Duration::from_secs(10),
        "all delegated ones in the zone file",
        || (0..LATE).all(in_zone_file).then_some(()),
    )
    .await;
    assert!(!in_zone_file(LATE));

    // Retest across processes: the late domain's servers come up, its
    // registrar asks for a retest through the second front end, the
    // schedulers (other processes) test it and the zone writer (another
    // one) publishes it.
    for (_, ip) in &zones[LATE].ns {
        servers[LATE].push(zones[LATE].serve_on(*ip, port).await);
    }
    let r = api
        .post(format!("{base2}/api/v1/domains/d{LATE}.ru/retest"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    until(Duration::from_secs(20), "retested domain delegated", || {
        (state(&st, LATE) == DelegationState::Delegated).then_some(())
    })
    .await;
    until(
        Duration::from_secs(10),
        "retested domain in the zone file",
        || in_zone_file(LATE).then_some(()),
    )
    .await;
    // The front end answers from the database the schedulers wrote.
    let v: Value = api
        .get(format!("{base}/api/v1/domains/d0.ru/delegation"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "delegated", "{v}");

    // A change through one front end's API is seen through the other's
    // RDAP and WHOIS within a second: a renewal moves the expiry.
    let expiry = |v: &Value| -> String {
        v["events"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["eventAction"] == "expiration"))
            .map(|e| e["eventDate"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let rdap2 = |name: &str| {
        let (api, url) = (api.clone(), format!("{base2}/rdap/domain/{name}"));
        async move {
            api.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = expiry(&rdap2("d0.ru").await);
    assert!(!before.is_empty());
    let r = api
        .post(format!("{base}/api/v1/domains/d0.ru/renew"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let changed = Instant::now();
    let after = loop {
        let e = expiry(&rdap2("d0.ru").await);
        if e != before {
            break e;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "front2 still shows expiry {before}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let whois_text = whois_query(whois2, "d0.ru").await;
    assert!(
        whois_text
            .lines()
            .any(|l| l.starts_with("paid-till:") && l.contains(&after[..10])),
        "{after}: {whois_text}"
    );
    assert!(changed.elapsed() < Duration::from_secs(1));

    // An operator's hold from a third process (the CLI on the same
    // database): at once in the second front end's RDAP, and the zone
    // writer takes the domain out of the zone; released, it is back.
    let operator = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
            .arg("--config")
            .arg(d.join("zk.toml"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let statuses = |v: &Value| -> Vec<String> {
        v["status"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    operator(&["hold", "d2.ru", "--reason", "court order"]);
    let held_at = Instant::now();
    loop {
        let st = statuses(&rdap2("d2.ru").await);
        if st.iter().any(|s| s == "server hold") {
            break;
        }
        assert!(held_at.elapsed() < Duration::from_secs(1), "{st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_zone = |name: &str| {
        std::fs::read_to_string(&zone_file)
            .unwrap_or_default()
            .contains(&format!("{name}. 345600 IN NS"))
    };
    until(
        Duration::from_secs(10),
        "held domain out of the zone",
        || (!in_zone("d2.ru") && in_zone("d1.ru")).then_some(()),
    )
    .await;
    operator(&["release", "d2.ru"]);
    until(
        Duration::from_secs(10),
        "released domain back in the zone",
        || in_zone("d2.ru").then_some(()),
    )
    .await;
    assert!(!statuses(&rdap2("d2.ru").await)
        .iter()
        .any(|s| s == "server hold"));
    drop(front2);

    // Monitoring renews the schedulers' claims: every domain is held by
    // one of them. The one holding more is killed.
    let held = |p: &Proc| -> Vec<String> {
        let q = pg.psql(
            "zk",
            &format!(
                "SELECT name FROM leases WHERE owner LIKE '{}-%' AND expires > now() ORDER BY name",
                p.0.id()
            ),
        );
        q.lines().map(str::to_string).collect()
    };
    let (a, b) = until(Duration::from_secs(10), "every domain claimed", || {
        let (a, b) = (held(&s1), held(&s2));
        (a.len() + b.len() == DOMAINS).then_some((a, b))
    })
    .await;
    let (mut victim, s1_names, survivor) = if a.len() >= b.len() {
        (s1, a, s2)
    } else {
        (s2, b, s1)
    };

    // kill -9 one scheduler: after the lease its domains are the other's
    // and their rounds go on.
    let killed_at = Utc::now();
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    for n in &s1_names {
        let start = Instant::now();
        loop {
            let rounds = st.rounds(n, 1000).unwrap();
            if rounds
                .iter()
                .any(|r| r.at > killed_at + chrono::Duration::seconds(2))
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{n} not taken over; leases {}",
                pg.psql("zk", "SELECT name, owner, expires, now() FROM leases"),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Never two rounds of a domain at once: consecutive rounds are at
    // least half the shortest interval apart.
    for i in 0..DOMAINS {
        let rounds = st.rounds(&format!("d{i}.ru"), 1000).unwrap();
        assert!(rounds.len() >= 2, "d{i}.ru: {} rounds", rounds.len());
        for w in rounds.windows(2) {
            let gap = w[1].at - w[0].at;
            assert!(
                gap >= chrono::Duration::milliseconds(150),
                "d{i}.ru probed twice at once: rounds at {} and {}",
                w[0].at,
                w[1].at
            );
        }
    }

    // Nothing probed twice: every probe a domain's server saw (one probe
    // costs `per_probe` queries) is a stored round of that domain, but for
    // a round in flight now, one lost with the killed scheduler and one
    // discarded by a change made during it.
    for (i, mine) in servers.iter().enumerate() {
        let hits = mine[0].hits.load(std::sync::atomic::Ordering::SeqCst);
        let rounds = st.rounds(&format!("d{i}.ru"), 1000).unwrap().len();
        let probes = hits as f64 / per_probe as f64;
        assert!(
            probes <= rounds as f64 + 3.0,
            "d{i}.ru: {probes:.1} probes ({hits} queries at {per_probe} a probe) for {rounds} stored rounds"
        );
    }

    // One zone writer at a time: the standby stood by all along (neither
    // led nor wrote while the leader lived); the leader wrote.
    assert!(log(d, "front").contains("zone files written"));
    let sb = log(d, "standby");
    assert!(
        !sb.contains("zone writer: leading") && !sb.contains("zone files written"),
        "{sb}"
    );
    // kill -9 of the leader: the standby takes over and writes the zone
    // with every domain (the file removed first proves the write is the
    // standby's: nothing changes in the registry now).
    std::fs::remove_file(&zone_file).unwrap();
    let mut front = front;
    front.0.kill().unwrap();
    front.0.wait().unwrap();
    until(Duration::from_secs(15), "standby leads", || {
        log(d, "standby")
            .contains("zone writer: leading")
            .then_some(())
    })
    .await;
    until(
        Duration::from_secs(10),
        "standby rewrote the zone, every domain in it",
        || (0..DOMAINS).all(in_zone_file).then_some(()),
    )
    .await;
    assert!(log(d, "standby").contains("zone files written"));
    drop(standby);
    drop(survivor);
    drop(servers);
}

/// One WHOIS query over TCP: the whole answer.
async fn whois_query(addr: std::net::SocketAddr, q: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("{q}\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

#[test]
fn redb_refuses_partial_roles() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["serve", "--roles", "scheduler", "--db"])
        .arg(dir.path().join("zk.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs the PostgreSQL backend") && err.contains("one process"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["serve", "--roles", "frontend,dns", "--db"])
        .arg(dir.path().join("zk.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_database_exits_2_with_a_message() {
    let port = free().port();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["store", "check", "--db"])
        .arg(format!("postgres://zk:hunter2@127.0.0.1:{port}/zk"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot use the PostgreSQL database")
            && err.contains(&format!("127.0.0.1:{port}"))
            && !err.contains("hunter2"),
        "{err}"
    );
}

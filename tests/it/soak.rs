//! Bounded soak test: the real `zonekeeper serve` binary under a mixed WHOIS,
//! RDAP and API load while its scheduler probes loopback DNS servers that the
//! test starts and stops. Reports per-protocol counts, errors and latency
//! percentiles, and the server's RSS over the run.
//!
//! Default run: 60 s of load (`ZK_SOAK_SECS=600` for a longer one). Every
//! packet stays on loopback: the sample registry's glue is rewritten into an
//! unused 127.254.0.0/16 block (the probe guard is off so loopback servers
//! can be probed), names without glue resolve through a closed loopback
//! port, and the synthetic domains carry no nameservers.

use crate::support;
use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::dns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper");
/// Synthetic domains added to the sample registry (WHOIS/RDAP/API data only).
const SYNTH_DOMAINS: usize = 3000;
/// Per-request limit; a slower answer is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const RSS_EVERY: Duration = Duration::from_secs(2);
const TOKEN: &str = "token-regru-ru";

/// The server process; killed if the test fails before stopping it.
struct Serve {
    child: Option<Child>,
    log: PathBuf,
}

impl Serve {
    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Per-protocol results.
#[derive(Default)]
struct Stats {
    lat_us: Vec<u64>,
    errors: u64,
    first_errors: Vec<String>,
    /// Rate-limit refusals (not expected: loopback is exempt).
    limited: u64,
}

impl Stats {
    fn ok(&mut self, started: Instant) {
        self.lat_us.push(started.elapsed().as_micros() as u64);
    }
    fn err(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < 10 {
            self.first_errors.push(what);
        }
    }
}

type Shared = Arc<Mutex<Stats>>;

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// A tiny deterministic generator, one per worker.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

/// What the load picks from.
struct Data {
    domains: Vec<String>,
    hosts: Vec<String>,
    registrars: Vec<String>,
    /// Domains of REGRU-RU (the token's registrar).
    own: Vec<String>,
    prefixes: Vec<String>,
    dead_ips: Vec<String>,
}

/// The sample registry plus synthetic domains, merged into one import file.
/// The sample's IPv4 glue moves into 127.254.0.0/16 (nothing listens
/// there); IPv6 glue is dropped; synthetic domains lose their nameservers.
fn registry(live: &[(String, Vec<(String, IpAddr)>)]) -> (Value, Data) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut fx: Value =
        serde_json::from_str(&fs::read_to_string(root.join("fixtures/registry.json")).unwrap())
            .unwrap();
    let synth: Value =
        serde_json::from_str(&zonekeeper::synth::generate(SYNTH_DOMAINS, 0x50a4)).unwrap();
    for d in fx["domains"].as_array_mut().unwrap() {
        for ns in d["nameservers"].as_array_mut().unwrap() {
            if let Some(a) = ns.get_mut("addresses") {
                let v4: Vec<Value> = a
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|ip| {
                        let ip: IpAddr = ip.as_str()?.parse().ok()?;
                        match ip {
                            IpAddr::V4(v4) => {
                                let o = v4.octets();
                                Some(json!(format!("127.254.{}.{}", o[2], o[3])))
                            }
                            IpAddr::V6(_) => None,
                        }
                    })
                    .collect();
                *a = Value::Array(v4);
            }
        }
    }
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for key in ["registrars", "contacts", "domains"] {
        let id = if key == "domains" { "name" } else { "handle" };
        for x in fx[key].as_array().unwrap() {
            seen.insert(format!("{key}/{}", x[id].as_str().unwrap()));
        }
        let extra: Vec<Value> = synth[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| seen.insert(format!("{key}/{}", x[id].as_str().unwrap())))
            .cloned()
            .map(|mut x| {
                if key == "domains" {
                    x["nameservers"] = json!([]);
                }
                x
            })
            .collect();
        fx[key].as_array_mut().unwrap().extend(extra);
    }
    let contact = fx["domains"][0]["registrant"].as_str().unwrap().to_string();
    for (apex, servers) in live {
        fx["domains"].as_array_mut().unwrap().push(json!({
            "name": apex, "registrar": "REGRU-RU", "registrant": contact,
            "admin": contact, "tech": contact,
            "created": "2020-01-01T00:00:00Z", "paid_till": "2030-01-01T00:00:00Z",
            "nameservers": servers.iter().map(|(n, ip)| json!({"name": n, "addresses": [ip.to_string()]})).collect::<Vec<_>>(),
        }));
    }
    let mut data = Data {
        domains: Vec::new(),
        hosts: Vec::new(),
        registrars: Vec::new(),
        own: Vec::new(),
        prefixes: Vec::new(),
        dead_ips: Vec::new(),
    };
    for d in fx["domains"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap().to_string();
        if d["registrar"] == "REGRU-RU" && data.own.len() < 200 {
            data.own.push(name.clone());
        }
        if name.is_ascii() && name.len() > 4 && data.prefixes.len() < 50 {
            data.prefixes.push(format!("{}*", &name[..3]));
        }
        for ns in d["nameservers"].as_array().unwrap() {
            if data.hosts.len() < 500 {
                data.hosts.push(ns["name"].as_str().unwrap().to_string());
            }
            for ip in ns
                .get("addresses")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                let ip = ip.as_str().unwrap();
                if ip.starts_with("127.254.") && data.dead_ips.len() < 100 {
                    data.dead_ips.push(ip.to_string());
                }
            }
        }
        data.domains.push(name);
    }
    for r in fx["registrars"].as_array().unwrap() {
        data.registrars
            .push(r["handle"].as_str().unwrap().to_string());
    }
    (fx, data)
}

fn config_text(
    store: &Path,
    whois: SocketAddr,
    http: SocketAddr,
    probe_port: u16,
    resolver_port: u16,
) -> String {
    format!(
        r#"zones = ["ru", "рф"]
[store]
path = "{store}"
cache_mib = 64
[delegation]
probe_interval = "1s"
monitor_interval = "1s"
test_window = "10s"
downtime_budget = "1s"
downtime_period = "10s"
downtime_utc_offset_secs = 0
on_violation = "suspend"
# Confirmation on the soak's shrunken scale (3 failing rounds over 2 s).
violation_min_span = "2s"
[probe]
# Loopback test servers must be probed; every address in the store is
# loopback, so nothing leaves the host.
allow_private_targets = true
resolvers = ["127.0.0.1:{resolver_port}"]
timeout = "300ms"
retries = 0
port = {probe_port}
[whois]
listen = "{whois}"
rate_limit_exempt = ["127.0.0.0/8"]
read_timeout = "2s"
[http]
listen = "{http}"
header_read_timeout = "2s"
[rdap]
rate_limit_exempt = ["127.0.0.0/8"]
[api]
rate_limit_per_minute = 1000000
[log]
filter = "warn"
"#,
        store = store.display()
    )
}

fn run_cli(cfg: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn whois_once(addr: SocketAddr, q: &str) -> Result<String, String> {
    let fut = async {
        let mut c = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        c.write_all(format!("{q}\r\n").as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        String::from_utf8(out).map_err(|_| "answer is not UTF-8".to_string())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// A well-formed WHOIS answer: a record or "not found", ending with the
/// `Last updated on` line.
fn whois_verdict(q: &str, a: &str) -> Result<bool, String> {
    if a.starts_with("% You have exceeded") {
        return Ok(false);
    }
    let last = a.trim_end().lines().last().unwrap_or("");
    if !a.ends_with('\n') || !last.starts_with("Last updated on ") {
        return Err(format!("{q}: malformed answer {a:?}"));
    }
    if a.contains("% Error") || a.contains("% dns::FakeServer is busy") {
        return Err(format!("{q}: {a:?}"));
    }
    Ok(true)
}

/// Workers send at `per_sec` each until `end`; a slow answer delays the
/// next send (closed loop) rather than piling up.
fn ticker(per_sec: u32) -> tokio::time::Interval {
    let mut t = tokio::time::interval(Duration::from_secs(1) / per_sec);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

async fn whois_worker(addr: SocketAddr, data: Arc<Data>, st: Shared, end: Instant, seed: u64) {
    let mut rng = Rng(seed);
    let mut t = ticker(50);
    while Instant::now() < end {
        t.tick().await;
        let q = match rng.next() % 10 {
            0..=5 => rng.pick(&data.domains).clone(),
            6 => rng.pick(&data.domains).to_uppercase(),
            7 => format!("nameserver {}", rng.pick(&data.hosts)),
            8 => format!("registrar {}", rng.pick(&data.registrars)),
            _ => format!("nosuch{}.ru", rng.next() % 100_000),
        };
        let started = Instant::now();
        let r = whois_once(addr, &q).await;
        let mut s = st.lock().unwrap();
        match r.and_then(|a| whois_verdict(&q, &a)) {
            Ok(true) => s.ok(started),
            Ok(false) => s.limited += 1,
            Err(e) => s.err(e),
        }
    }
}

/// Check an HTTP answer: 5xx and unexpected statuses are errors, 429 is
/// counted apart, JSON bodies must parse.
async fn http_result(
    st: &Shared,
    what: &str,
    started: Instant,
    r: reqwest::Result<reqwest::Response>,
    ok: &[u16],
) {
    let res = match r {
        Ok(r) => r,
        Err(e) => return st.lock().unwrap().err(format!("{what}: {e}")),
    };
    let status = res.status().as_u16();
    let json = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = res.bytes().await;
    let mut s = st.lock().unwrap();
    let body = match body {
        Ok(b) => b,
        Err(e) => return s.err(format!("{what}: body: {e}")),
    };
    if status == 429 {
        s.limited += 1;
    } else if !ok.contains(&status) {
        s.err(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    } else if json && serde_json::from_slice::<Value>(&body).is_err() {
        s.err(format!("{what}: {status} body is not JSON"));
    } else {
        s.ok(started);
    }
}

async fn rdap_worker(
    base: String,
    http: reqwest::Client,
    data: Arc<Data>,
    st: Shared,
    end: Instant,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let mut t = ticker(40);
    while Instant::now() < end {
        t.tick().await;
        let path = match rng.next() % 10 {
            0..=4 => format!("/rdap/domain/{}", rng.pick(&data.domains)),
            5 => format!("/rdap/nameserver/{}", rng.pick(&data.hosts)),
            6 => format!("/rdap/entity/{}", rng.pick(&data.registrars)),
            7 => format!("/rdap/domains?name={}", rng.pick(&data.prefixes)),
            8 => format!("/rdap/nameservers?ip={}", rng.pick(&data.dead_ips)),
            _ => format!("/rdap/domain/nosuch{}.ru", rng.next() % 100_000),
        };
        let started = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await;
        http_result(&st, &path, started, r, &[200, 404]).await;
    }
}

async fn api_worker(
    base: String,
    http: reqwest::Client,
    data: Arc<Data>,
    st: Shared,
    end: Instant,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let mut t = ticker(20);
    while Instant::now() < end {
        t.tick().await;
        let path = match rng.next() % 4 {
            0 => "/api/v1/domains?limit=20".to_string(),
            1 => "/healthz".to_string(),
            _ => format!("/api/v1/domains/{}/delegation", rng.pick(&data.own)),
        };
        let started = Instant::now();
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await;
        http_result(&st, &path, started, r, &[200]).await;
    }
}

/// Re-declares the flip domains' NS sets once a second, alternating between
/// their live servers and dead addresses, so testing restarts and the
/// scheduler is woken through the API.
async fn put_worker(
    base: String,
    http: reqwest::Client,
    flips: Vec<(String, Vec<(String, IpAddr)>)>,
    st: Shared,
    end: Instant,
) {
    let mut t = ticker(1);
    let mut i = 0usize;
    while Instant::now() < end {
        t.tick().await;
        let (apex, servers) = &flips[i % flips.len()];
        let dead = (i / flips.len()) % 2 == 1;
        let ns: Vec<Value> = servers
            .iter()
            .enumerate()
            .map(|(k, (n, ip))| {
                let addr = if dead {
                    format!("127.254.250.{}", k + 1)
                } else {
                    ip.to_string()
                };
                json!({"name": n, "addresses": [addr]})
            })
            .collect();
        i += 1;
        let path = format!("/api/v1/domains/{apex}/nameservers");
        let started = Instant::now();
        let r = http
            .put(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&json!({ "nameservers": ns }))
            .send()
            .await;
        http_result(&st, &format!("PUT {path}"), started, r, &[200]).await;
    }
}

async fn ops_worker(base: String, http: reqwest::Client, st: Shared, end: Instant) {
    let mut t = ticker(2);
    while Instant::now() < end {
        t.tick().await;
        let started = Instant::now();
        let r = http.get(format!("{base}/metrics")).send().await;
        http_result(&st, "/metrics", started, r, &[200]).await;
    }
}

/// A slowloris client: connects, drips `prefix` and then filler a byte
/// every 200 ms, and reconnects whenever the server cuts it off. Counts the
/// cut-offs; a connection still open at `end` is a failure.
async fn dripper(addr: SocketAddr, prefix: &'static [u8], cut: Arc<Mutex<u64>>, end: Instant) {
    while Instant::now() < end {
        let Ok(c) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (mut r, mut w) = c.into_split();
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink).await;
        });
        let mut bytes = prefix.iter().chain(std::iter::repeat(&b'a'));
        while !reader.is_finished() && Instant::now() < end {
            let b = *bytes.next().unwrap_or(&b'a');
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if tokio::time::timeout(Duration::from_secs(1), reader)
            .await
            .is_ok()
        {
            *cut.lock().unwrap() += 1;
        } else if Instant::now() < end {
            panic!("a dripping client was not cut off");
        }
    }
}

async fn start_server(ip: IpAddr, port: u16, zone: dns::LabZone) -> dns::FakeServer {
    for _ in 0..50 {
        if let Some(s) = zone.try_serve_on(ip, port).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind DNS test server on {ip}:{port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (60 s of load): .ci/run runs it with --ignored soak::"]
async fn soak_mixed_load_with_scheduler() {
    let secs: u64 = std::env::var("ZK_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .max(10);
    let run = Duration::from_secs(secs);
    let warmup = (run / 4).max(Duration::from_secs(10));

    // Live DNS servers: three monitored domains, two flipped through the API.
    let block = dns::loopback_block();
    let apexes = [
        "soaklive0.ru",
        "soaklive1.ru",
        "soaklive2.ru",
        "soakflip0.ru",
        "soakflip1.ru",
    ];
    let zones: Vec<dns::LabZone> = apexes
        .iter()
        .enumerate()
        .map(|(i, a)| dns::zone(a, block, &[2 * i as u8 + 1, 2 * i as u8 + 2]))
        .collect();
    let ips: Vec<IpAddr> = zones
        .iter()
        .flat_map(|z| z.ns.iter().map(|n| n.1))
        .collect();
    let port = dns::common_port(&ips).await;
    let mut servers: Vec<Option<dns::FakeServer>> = Vec::new();
    for z in &zones {
        for k in 0..2 {
            let ip = z.ns[k].1;
            servers.push(Some(start_server(ip, port, z.clone()).await));
        }
    }
    let live: Vec<(String, Vec<(String, IpAddr)>)> = zones
        .iter()
        .map(|z| (z.apex.clone(), z.ns.clone()))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("soak.redb");
    let whois_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Nothing listens there: lookups of names without glue fail on loopback.
    let resolver_port = free_port();
    let cfg = dir.path().join("soak.toml");
    fs::write(
        &cfg,
        config_text(&store, whois_addr, http_addr, port, resolver_port),
    )
    .unwrap();
    let (reg, data) = registry(&live);
    let data = Arc::new(data);
    let import = dir.path().join("registry.json");
    fs::write(&import, serde_json::to_vec(&reg).unwrap()).unwrap();
    let t0 = Instant::now();
    let (ok, out) = run_cli(&cfg, &["import", import.to_str().unwrap()]);
    assert!(ok, "import failed: {out}");
    println!(
        "imported {} domains in {:.1} s",
        data.domains.len(),
        t0.elapsed().as_secs_f64()
    );

    let log = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut serve = Serve {
        child: Some(child),
        log,
    };
    let pid = serve.pid();
    let base = format!("http://{http_addr}");
    // Pooled connections idle out before the server's keep-alive limit
    // (`http.header_read_timeout`, 2 s here), as a well-behaved client's
    // must: else a request can race the server closing that connection.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let up = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 && TcpStream::connect(whois_addr).await.is_ok() {
                break;
            }
        }
        if let Some(c) = serve.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("serve exited early ({st}): {}", serve.log());
            }
        }
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "serve not ready: {}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let fds_ready = open_fds(pid);
    // RSS sampler.
    let rss: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let start = Instant::now();
    let end = start + run;
    let sampler = {
        let rss = rss.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(RSS_EVERY);
            while Instant::now() < end + RSS_EVERY {
                t.tick().await;
                if let Some(k) = rss_kib(pid) {
                    rss.lock().unwrap().push((start.elapsed(), k));
                }
            }
        })
    };

    let protos = ["whois", "rdap", "api"];
    let stats: BTreeMap<&str, Shared> = protos.iter().map(|p| (*p, Shared::default())).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4u64 {
        tasks.spawn(whois_worker(
            whois_addr,
            data.clone(),
            stats["whois"].clone(),
            end,
            0x9e37_79b9 + w,
        ));
        tasks.spawn(rdap_worker(
            base.clone(),
            http.clone(),
            data.clone(),
            stats["rdap"].clone(),
            end,
            0x7f4a_7c15 + w,
        ));
    }
    for w in 0..2u64 {
        tasks.spawn(api_worker(
            base.clone(),
            http.clone(),
            data.clone(),
            stats["api"].clone(),
            end,
            0x2545_f491 + w,
        ));
    }
    tasks.spawn(put_worker(
        base.clone(),
        http.clone(),
        live[3..].to_vec(),
        stats["api"].clone(),
        end,
    ));
    tasks.spawn(ops_worker(
        base.clone(),
        http.clone(),
        stats["api"].clone(),
        end,
    ));

    // Slowloris clients on both listeners, for the whole run.
    let cut_whois: Arc<Mutex<u64>> = Arc::default();
    let cut_http: Arc<Mutex<u64>> = Arc::default();
    for _ in 0..2 {
        tasks.spawn(dripper(whois_addr, b"registrar ", cut_whois.clone(), end));
        tasks.spawn(dripper(
            http_addr,
            b"GET /healthz HTTP/1.1\r\nX-Slow: ",
            cut_http.clone(),
            end,
        ));
    }

    // Mid-run outage: soaklive2.ru's ns2 goes away for a quarter of the run.
    let outage_ix = 5; // servers[4], servers[5] serve soaklive2.ru
    let hits_before = servers
        .iter()
        .flatten()
        .map(|s| s.hits.load(Ordering::Relaxed))
        .sum::<usize>();
    tokio::time::sleep_until((start + run * 2 / 5).into()).await;
    servers[outage_ix].take();
    println!(
        "t={:.0}s: stopped ns2.soaklive2.ru",
        start.elapsed().as_secs_f64()
    );
    tokio::time::sleep_until((start + run * 13 / 20).into()).await;
    servers[outage_ix] = Some(start_server(zones[2].ns[1].1, port, zones[2].clone()).await);
    println!(
        "t={:.0}s: restarted ns2.soaklive2.ru",
        start.elapsed().as_secs_f64()
    );

    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Let the last connections close, then count the server's descriptors.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fds_end = open_fds(pid);
    let hits_after = servers
        .iter()
        .flatten()
        .map(|s| s.hits.load(Ordering::Relaxed))
        .sum::<usize>();
    // The outage domain's history, while the server still runs.
    let hist = http
        .get(format!("{base}/api/v1/domains/soaklive2.ru/delegation"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sampler.await.unwrap();

    // Stop with SIGTERM; it must exit 0 promptly.
    let stopped = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(st) = serve.child.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "serve did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    serve.child = None;
    let stop_secs = stopped.elapsed().as_secs_f64();
    let (check_ok, check_out) = run_cli(&cfg, &["store", "check"]);

    // Report.
    println!(
        "\nsoak: {secs} s of load, warm-up {} s, stop took {stop_secs:.2} s",
        warmup.as_secs()
    );
    println!(
        "{:<6} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "proto", "count", "errors", "429/ex", "rate/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let mut total_errors = 0;
    for p in protos {
        let mut s = stats[p].lock().unwrap();
        s.lat_us.sort_unstable();
        total_errors += s.errors;
        println!(
            "{:<6} {:>8} {:>7} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2}",
            p,
            s.lat_us.len(),
            s.errors,
            s.limited,
            s.lat_us.len() as f64 / secs as f64,
            pct(&s.lat_us, 0.50),
            pct(&s.lat_us, 0.95),
            pct(&s.lat_us, 0.99)
        );
        for e in &s.first_errors {
            println!("  {p} error: {e}");
        }
    }
    let samples = rss.lock().unwrap().clone();
    let first = samples.first().map(|s| s.1).unwrap_or(0);
    let last = samples.last().map(|s| s.1).unwrap_or(0);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let at_warm = samples
        .iter()
        .find(|s| s.0 >= warmup)
        .map(|s| s.1)
        .unwrap_or(first);
    println!(
        "RSS (MiB): start {:.1}, after warm-up {:.1}, end {:.1}, max {:.1} ({} samples)",
        first as f64 / 1024.0,
        at_warm as f64 / 1024.0,
        last as f64 / 1024.0,
        max as f64 / 1024.0,
        samples.len()
    );
    // The curve, about ten points: flat after warm-up is the goal.
    let step = (samples.len() / 10).max(1);
    let curve: Vec<String> = samples
        .iter()
        .step_by(step)
        .map(|(t, k)| format!("{}s:{:.1}", t.as_secs(), *k as f64 / 1024.0))
        .collect();
    println!("RSS curve (MiB): {}", curve.join(" "));
    println!(
        "DNS queries answered by the live loopback servers: {} during the run",
        hits_after - hits_before
    );
    println!(
        "slowloris clients cut off: WHOIS {}, HTTP {}; server fds: {fds_ready} when ready, {fds_end} after the load",
        cut_whois.lock().unwrap(),
        cut_http.lock().unwrap()
    );
    for series in [
        "zonekeeper_whois_queries_total",
        "zonekeeper_rate_limited_total",
        "zonekeeper_http_connections_refused_total",
        "zonekeeper_scheduler_rounds_total",
        "zonekeeper_delegation_transitions_total",
        "zonekeeper_probes_total",
        // Rounds and history accumulate in the store; its page cache grows
        // with it (bounded by store.cache_mib), which shows in the RSS.
        "zonekeeper_store_bytes",
    ] {
        for l in metrics.lines().filter(|l| l.starts_with(series)) {
            println!("  {l}");
        }
    }

    assert_eq!(total_errors, 0, "errors during the soak");
    for p in protos {
        assert!(
            !stats[p].lock().unwrap().lat_us.is_empty(),
            "no {p} request succeeded"
        );
    }
    assert!(samples.len() >= 3, "too few RSS samples");
    assert!(
        *cut_whois.lock().unwrap() >= 2 && *cut_http.lock().unwrap() >= 2,
        "slowloris clients were cut off"
    );
    // Listeners, store, runtime and a few probe sockets; every client
    // connection is closed by now.
    assert!(fds_end <= 128, "descriptors leak: {fds_end} open");
    let growth = last.saturating_sub(at_warm);
    assert!(
        growth * 2 < at_warm && growth < 64 * 1024,
        "RSS grew after warm-up: {at_warm} KiB -> {last} KiB"
    );
    assert!(
        hits_after > hits_before,
        "the scheduler probed the live servers"
    );
    assert!(
        hist.contains("suspended"),
        "the outage left a trace in soaklive2.ru's history: {hist}"
    );
    assert!(
        status.success(),
        "serve exit status {status}: {}",
        serve.log()
    );
    assert!(check_ok, "store check failed: {check_out}");
}

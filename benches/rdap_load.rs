//! RDAP domain-lookup load test (`cargo bench --bench rdap_load`, or
//! `benches/rdap_load.sh`): `wrk` on loopback against
//! 1. a baseline: a trivial axum handler returning a fixed RDAP body of the
//!    same size (the HTTP stack's ceiling on this machine),
//! 2. zonekeeper as it runs (`http::serve`: the whole router with its
//!    connection cap and timeouts) over a redb store of N synthetic domains,
//!    with its answer cache off (every request reads the store and builds
//!    the view) and on (as it runs),
//! 3. ICANN's `icann-rdap-srv` (in-memory) serving the same domains, when
//!    its binary is available (`RDAP_SRV_BIN` or the `.ci` cache path).
//!
//! Requests pick random names from a sample of the store. Every run is
//! bounded: `wrk -d` plus a hard timeout. Knobs (env): RDAP_BENCH_DOMAINS
//! (default 1000000), RDAP_BENCH_SECS (10), RDAP_BENCH_CONNECTIONS (a
//! comma-separated list, default "32,64"), RDAP_BENCH_WRK_THREADS (2),
//! RDAP_BENCH_SRV_DOMAINS (how many of the domains icann-rdap-srv loads;
//! default all). The store is cached in `target/rdap-bench/`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::store::{Maintenance, RedbStore, Store};

const SAMPLE: usize = 20_000;

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

#[derive(Debug, Clone, Default)]
struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: String,
}

fn ms(s: &str) -> f64 {
    let s = s.trim();
    let (num, mul) = if let Some(x) = s.strip_suffix("us") {
        (x, 0.001)
    } else if let Some(x) = s.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = s.strip_suffix('s') {
        (x, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mul
}

fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap_or(0);
        } else if t.starts_with("Socket errors:") {
            r.errors = t.to_string();
        }
    }
    r
}

/// Run wrk for `secs` against `base` (e.g. `http://127.0.0.1:1234/rdap/`),
/// killed if it overruns.
fn wrk(base: &str, script: &Path, secs: u64, conns: u64) -> Result<WrkResult, String> {
    let threads = env_num("RDAP_BENCH_WRK_THREADS", 2).clamp(1, conns.max(1));
    let mut child = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string(), "-d"])
        .arg(format!("{secs}s"))
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(script)
        .arg(base)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs + 30);
    loop {
        if let Some(_st) = child.try_wait().map_err(|e| e.to_string())? {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("wrk overran its time limit".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let r = parse_wrk(&text);
    if r.rps == 0.0 {
        return Err(format!(
            "wrk gave no result: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(r)
}

fn bench_dir() -> PathBuf {
    // Absolute: icann-rdap-srv runs with this directory as its cwd, and a
    // relative data path would then point nowhere (it would serve 404s).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::path::absolute(&target)
        .unwrap_or(target)
        .join("rdap-bench")
}

/// Build (or reuse) the store of `n` synthetic domains; returns the store
/// and a sample of its domain names.
fn store(n: usize, cfg: &Config) -> Result<(RedbStore, Vec<String>), String> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join(format!("store-{n}-compacted.redb"));
    let names_file = dir.join(format!("names-{n}.txt"));
    let all_file = dir.join(format!("all-{n}.txt"));
    if !db.exists() || !names_file.exists() || !all_file.exists() {
        let _ = std::fs::remove_file(&db);
        let t = Instant::now();
        let text = zonekeeper::synth::generate(n, 1);
        let now = chrono::Utc::now();
        let zones = cfg.zones().map_err(|e| e.to_string())?;
        let batch = zonekeeper::import::parse(text.as_bytes(), "synth", cfg, &zones, now)
            .map_err(|e| e.to_string())?;
        drop(text);
        let gen_s = t.elapsed().as_secs_f64();
        let names: Vec<String> = batch
            .domains
            .iter()
            .map(|d| d.name.as_str().to_string())
            .collect();
        let tmp = dir.join("store.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut s = RedbStore::open(&tmp).map_err(|e| e.to_string())?;
        let t = Instant::now();
        zonekeeper::import::apply(&s, &batch, cfg, now).map_err(|e| e.to_string())?;
        // As `zonekeeper import` and `serve --import` do after a large import.
        s.compact().map_err(|e| e.to_string())?;
        drop(s);
        eprintln!(
            "generated+parsed {n} domains in {gen_s:.1} s, imported and compacted in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        std::fs::rename(&tmp, &db).map_err(|e| e.to_string())?;
        let step = (names.len() / SAMPLE).max(1);
        let sample: Vec<&str> = names.iter().step_by(step).map(|s| s.as_str()).collect();
        std::fs::write(&names_file, sample.join("\n") + "\n").map_err(|e| e.to_string())?;
        std::fs::write(&all_file, names.join("\n") + "\n").map_err(|e| e.to_string())?;
    }
    let names = std::fs::read_to_string(&names_file)
        .map_err(|e| e.to_string())?
        .lines()
        .map(str::to_string)
        .collect();
    let s = RedbStore::open(&db).map_err(|e| e.to_string())?;
    Ok((s, names))
}

/// The load script (random names from the sample) and the warm-up script
/// (the sample in order, so a short warm-up asks for every name once, as a
/// server that has been running has seen its hot set).
fn lua_scripts(names: &[String]) -> Result<(PathBuf, PathBuf), String> {
    let random = lua_script(names, "domains.lua", "names[math.random(#names)]")?;
    // Each wrk thread starts half-way round from the other (`offset` is set
    // per thread by `setup`), so together they cover the sample.
    let ordered = lua_script(
        names,
        "domains-warm.lua",
        "names[((counter + (offset or 0)) % #names) + 1]\n           counter = counter + 1",
    )?;
    Ok((random, ordered))
}

fn lua_script(names: &[String], file: &str, pick: &str) -> Result<PathBuf, String> {
    let p = bench_dir().join(file);
    let half = names.len() / 2;
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    let script = format!(
        "local names = {{\n{list}\n}}\n\
         local counter = 0\n\
         local threads = 0\n\
         setup = function(thread)\n\
           thread:set(\"offset\", threads * {half})\n\
           threads = threads + 1\n\
         end\n\
         math.randomseed(42)\n\
         request = function()\n\
           local n = {pick}\n\
           return wrk.format(\"GET\", wrk.path .. \"domain/\" .. n, {{[\"Accept\"] = \"application/rdap+json\"}})\n\
         end\n"
    );
    std::fs::write(&p, script).map_err(|e| e.to_string())?;
    Ok(p)
}

/// A wrk script asking for `paths` (relative to the base URL) at random.
fn lua_paths(file: &str, paths: &[String]) -> Result<PathBuf, String> {
    let p = bench_dir().join(file);
    let list = paths
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    let script = format!(
        "local paths = {{\n{list}\n}}\n\
         math.randomseed(42)\n\
         request = function()\n\
           return wrk.format(\"GET\", wrk.path .. paths[math.random(#paths)], {{[\"Accept\"] = \"application/rdap+json\"}})\n\
         end\n"
    );
    std::fs::write(&p, script).map_err(|e| e.to_string())?;
    Ok(p)
}

/// The synthetic generator's index of a `.ru` name (`{label}{i}.ru`).
fn index_of(name: &str) -> Option<usize> {
    let label = name.strip_suffix(".ru")?;
    let digits = label.len() - label.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    label[label.len() - digits..].parse().ok()
}

/// The other public lookups, each as (kind, paths at zonekeeper, paths at
/// icann-rdap-srv): in-bailiwick nameservers of the sampled names, public
/// (organisation) contacts and registrars, and a domain search by a name
/// prefix (`label*`; icann-rdap-srv spells it `label*.ru`).
type Kind = (&'static str, Vec<String>, Vec<String>);

fn other_kinds(names: &[String], n: usize) -> Vec<Kind> {
    // From all names: the sample's stride skips the in-bailiwick ones.
    let all = std::fs::read_to_string(bench_dir().join(format!("all-{n}.txt"))).unwrap_or_default();
    let hosts: Vec<String> = all
        .lines()
        .step_by(97)
        .filter(|d| index_of(d).is_some_and(|i| (1..=6).contains(&(i % 20))))
        .map(|d| format!("ns1.{d}"))
        .take(5_000)
        .collect();
    let ns: Vec<String> = hosts.iter().map(|h| format!("nameserver/{h}")).collect();
    let contacts = (n / 2).max(4);
    let mut ent: Vec<String> = (0..5_000usize)
        .map(|k| format!("entity/C{}-RU", (k * 7919 * 3) % contacts / 3 * 3))
        .collect();
    ent.extend(["REGRU-RU", "RUCENTER-RU", "R01-RU", "NAUNET-RU"].map(|h| format!("entity/{h}")));
    let labels: Vec<&str> = names
        .iter()
        .filter_map(|d| d.strip_suffix(".ru"))
        .take(5_000)
        .collect();
    let ours = labels
        .iter()
        .map(|l| format!("domains?name={l}*"))
        .collect();
    let theirs = labels
        .iter()
        .map(|l| format!("domains?name={l}*.ru"))
        .collect();
    vec![
        ("nameserver lookup", ns.clone(), ns),
        ("entity lookup", ent.clone(), ent),
        ("domain search by name", ours, theirs),
    ]
}

/// The bare baseline: `axum::serve` of one handler.
async fn serve(router: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            l,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

/// zonekeeper as it runs: `http::serve` (connection cap, header and send
/// timeouts, the whole router with its layers).
async fn serve_app(app: App) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    tokio::spawn(zonekeeper::http::serve(app, l));
    addr
}

/// The `rdap-srv` binary, if built.
fn srv_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RDAP_SRV_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/zonekeeper/icann-rdap-srv-0.0.22/bin/rdap-srv");
    p.is_file().then_some(p)
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start icann-rdap-srv with the same domain names, each as our RDAP domain
/// object (a template: one object, many names). Returns its base URL.
fn start_srv(
    bin: &Path,
    sample_body: &str,
    n: usize,
    others: &Others,
) -> Result<(Child, String, f64), String> {
    let dir = bench_dir().join("srv-data");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let all = std::fs::read_to_string(bench_dir().join(format!("all-{n}.txt")))
        .map_err(|e| e.to_string())?;
    let limit = env_num("RDAP_BENCH_SRV_DOMAINS", u64::MAX) as usize;
    let ids: Vec<String> = all
        .lines()
        .take(limit)
        .map(|l| format!("{{\"ldhName\":\"{l}\"}}"))
        .collect();
    let loaded = ids.len();
    let mut obj: serde_json::Value =
        serde_json::from_str(sample_body).map_err(|e| e.to_string())?;
    if let Some(m) = obj.as_object_mut() {
        m.remove("unicodeName");
    }
    let mut f = std::fs::File::create(dir.join("domains.template")).map_err(|e| e.to_string())?;
    write!(
        f,
        "{{\"domain\":{{\"object\":{obj}}},\"ids\":[{}]}}",
        ids.join(",")
    )
    .map_err(|e| e.to_string())?;
    drop(f);
    // The same nameservers and entities as zonekeeper serves, each as our
    // own answer for one of them (a template: one object, many ids).
    let template = |body: &str, file: &str, kind: &str, ids: &[String]| -> Result<(), String> {
        let mut obj: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        if let Some(m) = obj.as_object_mut() {
            m.remove("unicodeName");
        }
        let ids = ids.join(",");
        std::fs::write(
            dir.join(file),
            format!("{{\"{kind}\":{{\"object\":{obj}}},\"ids\":[{ids}]}}"),
        )
        .map_err(|e| e.to_string())
    };
    if !others.hosts.is_empty() {
        let ids: Vec<String> = others
            .hosts
            .iter()
            .map(|h| format!("{{\"ldhName\":\"{h}\"}}"))
            .collect();
        template(&others.ns_body, "nameservers.template", "nameserver", &ids)?;
    }
    if !others.handles.is_empty() {
        let ids: Vec<String> = others
            .handles
            .iter()
            .map(|h| format!("{{\"handle\":\"{h}\"}}"))
            .collect();
        template(&others.entity_body, "entities.template", "entity", &ids)?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let t = Instant::now();
    let child = Command::new(bin)
        .current_dir(&dir)
        .env("RDAP_SRV_LISTEN_ADDR", "127.0.0.1")
        .env("RDAP_SRV_LISTEN_PORT", port.to_string())
        .env("RDAP_SRV_STORAGE", "memory")
        .env("RDAP_SRV_DATA_DIR", &dir)
        .env("RDAP_SRV_AUTO_RELOAD", "false")
        .env("RDAP_SRV_BOOTSTRAP", "false")
        .env("RDAP_SRV_UPDATE_ON_BOOTSTRAP", "false")
        .env("RDAP_SRV_LOG", "warn")
        .env("RDAP_SRV_DOMAIN_SEARCH_BY_NAME", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let child = Child(child);
    let base = format!("http://127.0.0.1:{port}/rdap/");
    let probe = all.lines().next().unwrap_or("x").to_string();
    // Loading is bounded: give up after 10 minutes.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ok = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
            ])
            .arg(format!("{base}domain/{probe}"))
            .output()
            .map(|o| o.stdout == b"200")
            .unwrap_or(false);
        if ok {
            break;
        }
        if Instant::now() > deadline {
            return Err("icann-rdap-srv did not come up in 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "icann-rdap-srv loaded {loaded} domains in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok((child, base, t.elapsed().as_secs_f64()))
}

/// What icann-rdap-srv loads besides the domains: every nameserver and
/// public entity zonekeeper serves, with a body of ours for each kind.
struct Others {
    hosts: Vec<String>,
    handles: Vec<String>,
    ns_body: String,
    entity_body: String,
}

impl Others {
    fn new(all: &str, n: usize, ns_body: String, entity_body: String) -> Self {
        let mut hosts = Vec::new();
        for d in all.lines() {
            if index_of(d).is_some_and(|i| (1..=6).contains(&(i % 20))) {
                hosts.push(format!("ns1.{d}"));
                hosts.push(format!("ns2.{d}"));
            }
        }
        hosts.extend((0..7).flat_map(|h| {
            [
                format!("ns1.hosting{h}.example"),
                format!("ns2.hosting{h}.example"),
            ]
        }));
        let contacts = (n / 2).max(4);
        let mut handles: Vec<String> = (0..contacts)
            .step_by(3)
            .map(|i| format!("C{i}-RU"))
            .collect();
        handles.extend(["REGRU-RU", "RUCENTER-RU", "R01-RU", "NAUNET-RU"].map(String::from));
        Self {
            hosts,
            handles,
            ns_body,
            entity_body,
        }
    }
}

/// Single-thread cost of the parts of a domain lookup, for orientation.
fn breakdown(store: &RedbStore, names: &[String], cfg: &Config) {
    let k = names.len().min(20_000);
    let now = chrono::Utc::now();
    let t = Instant::now();
    let mut bundles = Vec::with_capacity(k);
    for n in &names[..k] {
        if let Ok(Some(b)) = store.bundle(n) {
            bundles.push(b);
        }
    }
    let bundle_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    let t = Instant::now();
    for _ in 0..k {
        let _ = store.last_update();
    }
    let lu_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    let ctx = zonekeeper::rdap::view::Ctx {
        base: "http://127.0.0.1:8080/rdap/".into(),
        now,
        db_updated: now,
    };
    let t = Instant::now();
    let mut bytes = 0;
    for b in &bundles {
        if let Some(p) = zonekeeper::public::domain(b, now, &cfg.lifecycle) {
            let (d, _) = zonekeeper::rdap::view::domain(&ctx, &p, "$");
            bytes += serde_json::to_vec(&d).map(|v| v.len()).unwrap_or(0);
        }
    }
    let view_us = t.elapsed().as_secs_f64() * 1e6 / bundles.len().max(1) as f64;
    // A cache hit: parse the name, probe the answer cache, re-check the
    // lifecycle status (what the handler does before answering).
    let zones = cfg.zones().expect("zones");
    let cache = zonekeeper::answer_cache::AnswerCache::new(zonekeeper::answer_cache::MAX_BYTES);
    let Some(stamps) = store.stamps() else {
        return;
    };
    let updated = stamps.updated().unwrap_or(now);
    let stamp = updated.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for b in &bundles {
        let st = zonekeeper::lifecycle::evaluate(&b.domain, now, &cfg.lifecycle);
        let mut body = vec![b'x'; 2880];
        body.extend_from_slice(stamp.as_bytes());
        let e = zonekeeper::answer_cache::Entry::new(
            stamps.generation(),
            b.domain.clone(),
            st,
            body.into(),
            updated,
            b"x",
        );
        if let Some(e) = e {
            cache.insert(b.domain.name.as_str(), Arc::new(e));
        }
    }
    let t = Instant::now();
    for n in &names[..k] {
        let _ = zones.parse_domain(n);
    }
    let parse_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    let t = Instant::now();
    let mut hits = 0;
    for n in &names[..k] {
        hits += usize::from(cache.get(n, stamps, now, &cfg.lifecycle).is_some());
    }
    let hit_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    println!(
        "per lookup, one thread: store.bundle {bundle_us:.1} us, store.last_update {lu_us:.1} us, \
         public+view+serialise {view_us:.1} us (avg body {} B); \
         cached path: name parse {parse_us:.2} us, cache probe + status check {hit_us:.2} us \
         ({hits}/{k} hits)",
        bytes / bundles.len().max(1)
    );
}

/// In-process cost of one cached domain lookup through the whole HTTP
/// router (no network), next to the bare handler's: what the stack around
/// the handler costs, apart from the connection.
async fn router_cost(app: &App, bare: axum::Router, names: &[String]) {
    use tower::ServiceExt;
    let full = zonekeeper::http::router(app.clone());
    let rdap = zonekeeper::rdap::router(app.clone());
    let peer: SocketAddr = "127.0.0.1:9".parse().expect("static");
    let k = names.len().min(2_000);
    let time = |r: axum::Router, prefix: &'static str| {
        let names = &names[..k];
        async move {
            let mut best = f64::MAX;
            // Best of three passes (the machine is shared).
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..10 {
                    for n in names {
                        let mut req = axum::http::Request::get(format!("{prefix}domain/{n}"))
                            .body(axum::body::Body::empty())
                            .expect("request");
                        req.extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        let resp = r.clone().oneshot(req).await.expect("infallible");
                        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                    }
                }
                best = best.min(t.elapsed().as_secs_f64() * 1e6 / (10 * k) as f64);
            }
            best
        }
    };
    let b = time(bare, "/rdap/").await;
    let inner = time(rdap, "/").await;
    let f = time(full, "/rdap/").await;
    println!(
        "in-process, per request (cached answers): bare handler {b:.2} us, RDAP router {inner:.2} us, \
         whole HTTP router {f:.2} us"
    );
}

fn report(label: &str, r: &WrkResult) {
    println!(
        "{label:<28} {:>10.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   non-2xx {}  {}",
        r.rps, r.p50_ms, r.p99_ms, r.non_2xx, r.errors
    );
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; nothing else to parse.
    if !std::env::args().any(|a| a == "--bench") {
        // Run as a test (`cargo test --all-targets`): nothing to measure.
        return ExitCode::SUCCESS;
    }
    let n = env_num("RDAP_BENCH_DOMAINS", 1_000_000) as usize;
    let secs = env_num("RDAP_BENCH_SECS", 10);
    let conn_list: Vec<u64> = std::env::var("RDAP_BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "32,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let mut cfg = Config::default();
    cfg.rdap.rate_limit_exempt = vec!["127.0.0.0/8".parse().expect("static")];
    let t = Instant::now();
    let (store, names) = match store(n, &cfg) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot build the store: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("store ready in {:.1} s", t.elapsed().as_secs_f64());
    let (script, warm) = match lua_scripts(&names) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    breakdown(&store, &names, &cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::new(cfg, Arc::new(store), Arc::new(SystemClock)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let uncached = app
        .clone()
        .with_answers(Arc::new(zonekeeper::answer_cache::Answers::off()));
    let ours = rt.block_on(serve_app(app.clone()));
    let ours_base = format!("http://{ours}/rdap/");
    let off = rt.block_on(serve_app(uncached));
    let off_base = format!("http://{off}/rdap/");
    // A typical body: the first sampled domain's response.
    let sample_body = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("{ours_base}domain/{}", names[0]))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let fixed: &'static str = Box::leak(sample_body.clone().into_boxed_str());
    let baseline = rt.block_on(serve(axum::Router::new().route(
        "/rdap/domain/{name}",
        axum::routing::get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/rdap+json")],
                fixed,
            )
        }),
    )));
    let baseline_base = format!("http://{baseline}/rdap/");
    let bare = axum::Router::new().route(
        "/rdap/domain/{name}",
        axum::routing::get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/rdap+json")],
                fixed,
            )
        }),
    );
    rt.block_on(router_cost(&app, bare, &names));
    println!(
        "RDAP domain lookups: {n} domains in the store, random names from a sample of {}, \
         wrk {} threads, {secs} s each, body {} bytes",
        names.len(),
        env_num("RDAP_BENCH_WRK_THREADS", 2),
        sample_body.len()
    );
    // icann-rdap-srv first (its load takes a while), so that every
    // comparison below is of runs back to back, not minutes apart.
    let kinds = other_kinds(&names, n);
    let first_body = |path: &str| {
        Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .arg(format!("{ours_base}{path}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let srv = match srv_bin() {
        None => {
            println!("icann-rdap-srv: not built (RDAP_SRV_BIN); no comparison");
            None
        }
        Some(bin) => {
            let all = std::fs::read_to_string(bench_dir().join(format!("all-{n}.txt")))
                .unwrap_or_default();
            let others = Others::new(
                &all,
                n,
                first_body(&kinds[0].1[0]),
                first_body(&kinds[1].1[0]),
            );
            drop(all);
            match start_srv(&bin, &sample_body, n, &others) {
                Ok((child, base, _)) => Some((child, base)),
                Err(e) => {
                    println!("icann-rdap-srv: {e}");
                    None
                }
            }
        }
    };
    let srv_base = srv.as_ref().map(|(_, b)| b.clone());
    // Per connection count: baseline, ours (cache off), ours (cache on),
    // icann-rdap-srv.
    let mut met = srv_base.is_some();
    for &conns in &conn_list {
        println!("-- {conns} connections");
        let mut results = Vec::new();
        let mut runs = vec![
            ("baseline (fixed body)", baseline_base.clone()),
            ("zonekeeper, cache off", off_base.clone()),
            ("zonekeeper", ours_base.clone()),
        ];
        if let Some(b) = &srv_base {
            runs.push(("icann-rdap-srv", b.clone()));
        }
        for (label, base) in &runs {
            // A short warm-up fills caches and settles connection setup.
            let _ = wrk(base, &warm, 3, conns);
            let before = app.answers().rdap_domain.counts();
            match wrk(base, &script, secs, conns) {
                Ok(r) => {
                    report(label, &r);
                    if *label == "zonekeeper" {
                        let (h, m) = app.answers().rdap_domain.counts();
                        let (h, m) = (h - before.0, m - before.1);
                        println!(
                            "  answer cache: {:.1}% hits ({h} hits, {m} misses)",
                            100.0 * h as f64 / (h + m).max(1) as f64
                        );
                    }
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("{label}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        println!(
            "ratio zonekeeper / baseline: {:.2} (cache off: {:.2})",
            results[2].rps / results[0].rps,
            results[1].rps / results[0].rps
        );
        if let Some(r) = results.get(3) {
            println!(
                "ratio zonekeeper / icann-rdap-srv at {conns} connections: {:.2} (cache off: {:.2}); p99 {:.2} ms against {:.2} ms; load average {}",
                results[2].rps / r.rps,
                results[1].rps / r.rps,
                results[2].p99_ms,
                r.p99_ms,
                std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
            );
            met &= results[2].rps >= 1.5 * r.rps && results[2].p99_ms < 5.0;
        }
    }
    // Nameserver and entity lookups and a domain search, at the first
    // connection count, cache on; each next to icann-rdap-srv's.
    let conns0 = conn_list.first().copied().unwrap_or(32);
    let mut others_met = srv_base.is_some();
    for (i, (kind, ours_paths, srv_paths)) in kinds.iter().enumerate() {
        let mut rates = Vec::new();
        let mut targets = vec![("zonekeeper", ours_base.clone(), ours_paths, "ours")];
        if let Some(b) = &srv_base {
            targets.push(("icann-rdap-srv", b.clone(), srv_paths, "srv"));
        }
        for (who, base, paths, tag) in targets {
            let script = match lua_paths(&format!("kind{i}-{tag}.lua"), paths) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let _ = wrk(&base, &script, 2, conns0);
            let before = app.answers().searches.counts();
            match wrk(&base, &script, secs, conns0) {
                Ok(r) => {
                    report(&format!("{who}, {kind}"), &r);
                    let (h, m) = app.answers().searches.counts();
                    let (h, m) = (h - before.0, m - before.1);
                    if tag == "ours" && h + m > 0 {
                        println!(
                            "  search cache: {:.1}% hits ({h} hits, {m} misses)",
                            100.0 * h as f64 / (h + m) as f64
                        );
                    }
                    rates.push(r.rps);
                }
                Err(e) => {
                    println!("{who}, {kind}: {e}");
                    rates.push(0.0);
                }
            }
        }
        if let [ours, theirs] = rates[..] {
            println!(
                "ratio zonekeeper / icann-rdap-srv, {kind} at {conns0} connections: {:.2}",
                ours / theirs
            );
            others_met &= ours >= theirs;
        }
    }
    drop(rt);
    drop(srv);
    if srv_base.is_some() {
        println!(
            "goal: nameserver and entity lookups and searches >= 1.0x icann-rdap-srv: {}",
            if others_met { "met" } else { "NOT met" }
        );
    }
    println!(
        "goal: >= 1.5x icann-rdap-srv and p99 < 5 ms: {}",
        match (srv_base.is_some(), met) {
            (true, true) => "met",
            (true, false) => "NOT met",
            _ => "not measured (no icann-rdap-srv)",
        }
    );
    ExitCode::SUCCESS
}

//! WHOIS load tool: one TCP connection per query on loopback against the real
//! server over a large synthetic store, compared with a trivial TCP echo
//! server (one line in, one line out, close) measured the same way in the
//! same run. Bounded in time and count; stops by itself.
//!
//! `cargo bench --bench whois_load` (about 4 minutes, most of it the 1M
//! import; without `--bench` it is a seconds-long smoke run). Environment knobs:
//! `WHOIS_BENCH_DOMAINS` (default 1000000), `WHOIS_BENCH_SECS` per phase
//! (default 8), `WHOIS_BENCH_MAX` queries per phase (default 1000000),
//! `WHOIS_BENCH_CONC` concurrent clients, a comma-separated list (default
//! "32,128"),
//! `WHOIS_BENCH_THREADS` runtime workers shared by client and server (2),
//! `WHOIS_BENCH_ROUNDS` rounds of the phases below (2), `WHOIS_BENCH_HOT`
//! distinct registered names queried (default 20000, the hot set of a
//! registry's traffic; 0 = all, uniform, so the answer cache rarely hits),
//! `WHOIS_BENCH_PHASES` which phases to run, a comma-separated list of
//! `echo`, `off`, `whois`, `limited`, `echo-more` (default all; for
//! profiling one), `WHOIS_BENCH_DEBUG` (print cache hits and misses after
//! each zonekeeper phase).
//!
//! Phases, each round: the baseline (a bare tokio echo server: read a line,
//! write it back, close; no extra hop), zonekeeper with its answer cache
//! off (every query reads the store on the blocking pool), zonekeeper as
//! it runs (cache on), zonekeeper with every client over its rate
//! limit (all answers are the refusal line), and, for reference, the echo
//! sending its line with `MSG_MORE` so line and FIN leave in one segment,
//! the way zonekeeper sends its answers (the goal is against the plain
//! echo; this shows how much of the result that one trick is). Odd rounds
//! run the phases in reverse order. Before the rounds, a warm-up asks
//! every distinct query once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::ratelimit::ClientLimiter;
use zonekeeper::store::RedbStore;
use zonekeeper::whois;

/// The reference phase: the echo sending its line as zonekeeper sends answers.
const ECHO_MORE: &str = "echo, MSG_MORE";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Phase {
    name: &'static str,
    conc: usize,
    queries: u64,
    failures: u64,
    found: u64,
    secs: f64,
    lat_us: Vec<u32>,
}

impl Phase {
    fn qps(&self) -> f64 {
        self.queries as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }
}

/// `conc` clients, each: connect, send one line, read to EOF, repeat.
/// Queries are drawn at random, or with `in_order` each is sent once
/// (client `c` takes `c`, `c + conc`, …), which is how the warm-up asks
/// every distinct query of the mix.
async fn load(
    name: &'static str,
    addr: SocketAddr,
    queries: Arc<Vec<String>>,
    in_order: bool,
    conc: usize,
    secs: u64,
    max: u64,
) -> Phase {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let per_client = max / conc as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conc {
        let queries = queries.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64);
            let mut lat = Vec::with_capacity(1 << 16);
            let (mut fails, mut found) = (0u64, 0u64);
            let mut buf = Vec::with_capacity(2048);
            for i in 0..per_client as usize {
                if Instant::now() >= deadline {
                    break;
                }
                let q = match in_order {
                    true => match queries.get(c + i * conc) {
                        Some(q) => q,
                        None => break,
                    },
                    false => &queries[rng.random_range(0..queries.len())],
                };
                let t0 = Instant::now();
                let r = async {
                    let mut s = TcpStream::connect(addr).await?;
                    s.write_all(q.as_bytes()).await?;
                    buf.clear();
                    s.read_to_end(&mut buf).await?;
                    std::io::Result::Ok(())
                }
                .await;
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                match r {
                    Ok(()) if !buf.is_empty() => {
                        lat.push(us);
                        if buf.starts_with(b"domain:") || buf.windows(8).any(|w| w == b"\ndomain:")
                        {
                            found += 1;
                        }
                    }
                    _ => fails += 1,
                }
            }
            (lat, fails, found)
        });
    }
    let mut lat_us = Vec::new();
    let (mut failures, mut found) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (l, f, d) = r.expect("client task");
        lat_us.extend(l);
        failures += f;
        found += d;
    }
    let secs = start.elapsed().as_secs_f64();
    lat_us.sort_unstable();
    Phase {
        name,
        conc,
        queries: lat_us.len() as u64,
        failures,
        found,
        secs,
        lat_us,
    }
}

/// The baseline: one line in, the same line out, close. With `more`, the
/// line goes with `MSG_MORE` so it leaves with the FIN in one segment, as
/// zonekeeper sends its answers (for reference: the goal is against the
/// plain echo).
async fn echo_server(listener: TcpListener, stop: tokio_util::sync::CancellationToken, more: bool) {
    loop {
        let (mut s, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = stop.cancelled() => return,
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 257];
            let mut n = 0;
            while n < buf.len() {
                match s.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(r) => {
                        n += r;
                        if buf[..n].contains(&b'\n') {
                            break;
                        }
                    }
                }
            }
            if more {
                let _ = s.writable().await;
                let _ = s.try_io(tokio::io::Interest::WRITABLE, || {
                    socket2::SockRef::from(&s).send_with_flags(&buf[..n], libc::MSG_MORE)
                });
            } else {
                let _ = s.write_all(&buf[..n]).await;
            }
            let _ = s.shutdown().await;
        });
    }
}

/// Domain names from the generator's output (one domain record a line).
fn names_of(json: &str) -> Vec<String> {
    json.lines()
        .filter_map(|l| l.strip_prefix("{\"name\":\""))
        .filter_map(|l| l.split_once('"').map(|(n, _)| n.to_string()))
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; run as a test (`cargo test
    // --all-targets`) it only does a short smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let n = env("WHOIS_BENCH_DOMAINS", if full { 1_000_000 } else { 2_000 }) as usize;
    let secs = env("WHOIS_BENCH_SECS", if full { 8 } else { 1 });
    let max = env("WHOIS_BENCH_MAX", 1_000_000);
    let concs: Vec<usize> = std::env::var("WHOIS_BENCH_CONC")
        .unwrap_or_else(|_| "32,128".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .filter(|&c| c > 0)
        .collect();
    let threads = env("WHOIS_BENCH_THREADS", 2) as usize;
    let rounds = env("WHOIS_BENCH_ROUNDS", if full { 2 } else { 1 }).max(1) as usize;
    let hot = env("WHOIS_BENCH_HOT", 20_000) as usize;
    let only = std::env::var("WHOIS_BENCH_PHASES").ok();
    let runs = |phase: &str| {
        only.as_ref()
            .is_none_or(|l| l.split(',').any(|p| p.trim() == phase))
    };

    let dir = tempfile::tempdir().expect("temp dir");
    // The store `benches/rdap_load.sh` built (same generator), when there:
    // no import of our own, and both benches query the same data.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rdap-bench");
    let shared_db = shared.join(format!("store-{n}-compacted.redb"));
    let shared_names = std::fs::read_to_string(shared.join(format!("all-{n}.txt"))).ok();
    let use_shared = full && shared_db.exists() && std::env::var_os("WHOIS_BENCH_DB").is_none();
    let (names, file, json_mb, gen_secs) = match shared_names.filter(|_| use_shared) {
        Some(t) => (
            t.lines().map(str::to_string).collect::<Vec<_>>(),
            None,
            0.0,
            0.0,
        ),
        None => {
            let t0 = Instant::now();
            let json = zonekeeper::synth::generate(n, 42);
            let gen_secs = t0.elapsed().as_secs_f64();
            let names = names_of(&json);
            assert_eq!(names.len(), n, "every generated domain found");
            let file = dir.path().join("synth.json");
            std::fs::write(&file, &json).expect("write synthetic registry");
            let json_mb = json.len() as f64 / 1e6;
            (names, Some(file), json_mb, gen_secs)
        }
    };

    let mut cfg = Config::default();
    // The limiter checks every connection; the load generator's network is
    // exempt, as a registry exempts its own monitoring.
    cfg.whois.rate_limit_exempt = vec!["127.0.0.0/8".parse().expect("static")];
    cfg.whois.max_connections = 4096;
    // WHOIS_BENCH_DB: keep the store there and reuse it on later runs
    // (same N), to skip the import while iterating.
    let keep = std::env::var_os("WHOIS_BENCH_DB").map(std::path::PathBuf::from);
    let keep = keep.or_else(|| file.is_none().then(|| shared_db.clone()));
    let db = keep
        .clone()
        .unwrap_or_else(|| dir.path().join("bench.redb"));
    let reuse = keep.is_some() && db.exists();
    let store = RedbStore::open(&db).expect("open store");
    if reuse {
        println!("store: reusing {} ({n} domains)", db.display());
    } else {
        let t0 = Instant::now();
        let file = file.as_ref().expect("generated when no store is reused");
        let summary = zonekeeper::import::import_file(&store, file, &cfg, chrono::Utc::now())
            .expect("import synthetic registry");
        let import_secs = t0.elapsed().as_secs_f64();
        let db_mb = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        println!(
            "store: {} domains ({json_mb:.0} MB JSON generated in {gen_secs:.1} s), imported in {import_secs:.1} s ({:.0} domains/s), redb file {db_mb:.0} MB",
            summary.domains,
            summary.domains as f64 / import_secs
        );
    }

    // Query mix: 80% registered domains (as generated: A-label .ru and
    // U-label .рф, some upper-cased), 10% unregistered, 5% nameserver,
    // 5% registrar.
    let mut rng = StdRng::seed_from_u64(7);
    let hot_names: Vec<&String> = if hot == 0 || hot >= names.len() {
        names.iter().collect()
    } else {
        names.iter().step_by(names.len() / hot).collect()
    };
    let queries: Vec<String> = (0..200_000)
        .map(|i| match i % 20 {
            0 | 1 => format!("nx{}-free.ru\r\n", rng.random::<u32>()),
            2 => format!(
                "nameserver ns1.hosting{}.example\r\n",
                rng.random_range(0..7)
            ),
            3 => "registrar REGRU-RU\r\n".to_string(),
            4 => format!(
                "{}\r\n",
                hot_names[rng.random_range(0..hot_names.len())].to_uppercase()
            ),
            _ => format!("{}\r\n", hot_names[rng.random_range(0..hot_names.len())]),
        })
        .collect();
    let queries = Arc::new(queries);

    // Cost of one answer's parts, single thread, no network.
    {
        use zonekeeper::store::Store;
        let zones = cfg.zones().expect("zones");
        let sample: Vec<String> = (0..20_000)
            .map(|_| {
                let q = &names[rng.random_range(0..names.len())];
                zones.parse_domain(q).expect("valid").as_str().to_string()
            })
            .collect();
        let now = chrono::Utc::now();
        let t = Instant::now();
        let bundles: Vec<_> = sample
            .iter()
            .map(|n| store.bundle(n).expect("read").expect("present"))
            .collect();
        let bundle_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        let t = Instant::now();
        for _ in 0..sample.len() {
            std::hint::black_box(store.last_update().expect("read"));
        }
        let last_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        let t = Instant::now();
        for b in &bundles {
            if let Some(d) = zonekeeper::public::domain(b, now, &cfg.lifecycle) {
                std::hint::black_box(whois::format::domain_answer(&d, "TCI", now));
            }
        }
        let fmt_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        let t = Instant::now();
        for n in &sample {
            std::hint::black_box(zones.parse_domain(n).expect("valid"));
        }
        let parse_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        println!(
            "per answer, one thread: store.bundle {bundle_us:.2} µs, store.last_update {last_us:.2} µs, public projection + format {fmt_us:.2} µs, name parse {parse_us:.2} µs"
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let app = App::new(cfg, Arc::new(store), Arc::new(SystemClock)).expect("app");
    let phases = rt.block_on(async {
        let mut phases = Vec::new();
        // `limited`: the limiter allows one connection a minute and nobody
        // is exempt, so (after the first) every answer is the refusal line.
        let run_whois = |label: &'static str,
                         queries: Arc<Vec<String>>,
                         cache: bool,
                         limited: bool,
                         conc: usize,
                         s: u64,
                         max: u64| {
            let mut app = app
                .clone()
                .with_shutdown(tokio_util::sync::CancellationToken::new());
            if !cache {
                app = app.with_answers(Arc::new(zonekeeper::answer_cache::Answers::off()));
            }
            let in_order = label == "warm-up";
            async move {
                let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = l.local_addr().expect("addr");
                let w = &app.config().whois;
                let limiter = Arc::new(if limited {
                    ClientLimiter::new(1, Vec::new())
                } else {
                    ClientLimiter::new(w.rate_limit_per_minute, w.rate_limit_exempt.clone())
                });
                let opts = whois::Options::default();
                let server = tokio::spawn(whois::serve_with(app.clone(), l, limiter, opts));
                let p = load(label, addr, queries, in_order, conc, s, max).await;
                if std::env::var_os("WHOIS_BENCH_DEBUG").is_some() {
                    eprintln!(
                        "{label}: {:?} {:?}",
                        app.answers().whois_domain,
                        app.answers().facts
                    );
                }
                app.shutdown().cancel();
                let _ = server.await;
                p
            }
        };
        // Warm-up, not reported: every distinct query of the mix once
        // (bounded by 60 s), so the measured phases see the steady state of
        // a running server (page cache, answer and fact caches filled)
        // rather than the fill.
        let mut distinct = queries.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let warm = run_whois("warm-up", Arc::new(distinct), true, false, 32, 60, u64::MAX);
        let warm = warm.await;
        println!(
            "warm-up: {} distinct queries in {:.1} s",
            warm.queries, warm.secs
        );

        // Several rounds, so drift on a shared machine shows up as a spread.
        // Odd rounds run the phases in reverse (ABBA), so drift within a run
        // (the kernel's TIME_WAIT table fills up to its cap over the first
        // seconds and slows every packet lookup) is shared fairly between
        // the baseline and zonekeeper.
        let order = ["echo", "off", "whois", "limited", "echo-more"];
        for round in 0..rounds {
            for &conc in &concs {
                let mut this = order.to_vec();
                if round % 2 == 1 {
                    this.reverse();
                }
                for phase in this.into_iter().filter(|p| runs(p)) {
                    let q = queries.clone();
                    let p = match phase {
                        "echo" | "echo-more" => {
                            let more = phase == "echo-more";
                            let label = if more { ECHO_MORE } else { "echo baseline" };
                            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                            let addr = l.local_addr().expect("addr");
                            let stop = tokio_util::sync::CancellationToken::new();
                            let echo = tokio::spawn(echo_server(l, stop.clone(), more));
                            let p = load(label, addr, q, false, conc, secs, max).await;
                            stop.cancel();
                            let _ = echo.await;
                            p
                        }
                        "off" => {
                            run_whois("whois, cache off", q, false, false, conc, secs, max).await
                        }
                        "whois" => run_whois("whois", q, true, false, conc, secs, max).await,
                        _ => {
                            let label = "whois, all rate-limited";
                            run_whois(label, q, true, true, conc, secs, max).await
                        }
                    };
                    phases.push(p);
                }
            }
        }
        phases
    });

    let mean = |name: &str, conc: usize, f: &dyn Fn(&Phase) -> f64| -> f64 {
        phases
            .iter()
            .filter(|p| p.name == name && p.conc == conc)
            .map(f)
            .sum::<f64>()
            / rounds as f64
    };
    println!(
        "\n{} worker threads shared by client and server, one connection per query, {} distinct registered names queried; load average at the end: {}",
        threads,
        hot_names.len(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!(
        "{:<24} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "phase", "conc", "queries", "q/s", "p50 ms", "p99 ms", "max ms", "failed", "found%"
    );
    for p in &phases {
        println!(
            "{:<24} {:>5} {:>9} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>6.1}%",
            p.name,
            p.conc,
            p.queries,
            p.qps(),
            p.pct(0.5),
            p.pct(0.99),
            p.pct(1.0),
            p.failures,
            100.0 * p.found as f64 / p.queries.max(1) as f64
        );
    }
    let mut met = true;
    for &conc in &concs {
        for (base, variant) in [
            ("echo baseline", "whois, cache off"),
            ("echo baseline", "whois"),
            ("echo baseline", "whois, all rate-limited"),
            (ECHO_MORE, "whois"),
        ] {
            let (bq, bp) = (
                mean(base, conc, &Phase::qps),
                mean(base, conc, &|p| p.pct(0.99)),
            );
            let (wq, wp) = (
                mean(variant, conc, &Phase::qps),
                mean(variant, conc, &|p| p.pct(0.99)),
            );
            println!(
                "{conc} concurrent, {variant}: {wq:.0} q/s, p99 {wp:.3} ms = {:.2}x the rate and {:.2}x the p99 of {base} ({bq:.0} q/s, p99 {bp:.3} ms), means of {rounds} rounds",
                wq / bq,
                wp / bp
            );
            if variant == "whois" && base == "echo baseline" {
                met &= wq >= 0.9 * bq && wp <= 1.5 * bp;
            }
        }
    }
    println!(
        "goal: whois >= 0.9x the echo's rate and p99 <= 1.5x its p99 at each concurrency: {}",
        if met { "met" } else { "NOT met" }
    );
}

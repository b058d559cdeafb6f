//! A front end over a large store: time from opening the store
//! to the first WHOIS and RDAP answers, then the process's RSS while a
//! bounded mixed load runs (wrk on RDAP domain lookups, WHOIS queries and
//! RDAP nameserver lookups from this process).
//!
//! `cargo bench --bench frontend` after `benches/rdap_load.sh` made its
//! store (`target/rdap-bench/store-N-compacted.redb`). The servers are the
//! real `whois::serve` and `http::serve` on loopback, as `serve` runs them
//! (without the scheduler, which would probe the synthetic nameservers).
//! Knobs (env): FRONTEND_BENCH_DOMAINS (1000000), FRONTEND_BENCH_SECS
//! (120), FRONTEND_BENCH_CACHE_MIB (the redb page cache; default the
//! config default). Without `--bench`: nothing (no store to measure).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::store::RedbStore;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// (VmRSS, VmHWM) in MiB.
fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

async fn whois(addr: std::net::SocketAddr, q: &str) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("{q}\r\n").as_bytes()).await?;
    let mut out = Vec::with_capacity(2048);
    s.read_to_end(&mut out).await?;
    Ok(out)
}

/// Names, one a line, indexed by line.
struct Names {
    text: String,
    starts: Vec<u32>,
}

impl Names {
    fn new(text: String) -> Self {
        let mut starts = vec![0u32];
        starts.extend(
            memchr::memchr_iter(b'\n', text.as_bytes())
                .map(|i| i as u32 + 1)
                .filter(|&i| (i as usize) < text.len()),
        );
        Self { text, starts }
    }
    fn len(&self) -> usize {
        self.starts.len()
    }
    fn get(&self, i: usize) -> &str {
        let a = self.starts[i] as usize;
        let b = self
            .starts
            .get(i + 1)
            .map_or(self.text.len(), |&b| b as usize);
        self.text[a..b].trim_end()
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // As the server's `main` does.
    zonekeeper::limit_malloc_arenas();
    let n = env("FRONTEND_BENCH_DOMAINS", 1_000_000);
    let secs = env("FRONTEND_BENCH_SECS", 120);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/rdap-bench");
    let db = dir.join(format!("store-{n}-compacted.redb"));
    let names: Vec<String> = match std::fs::read_to_string(dir.join(format!("names-{n}.txt"))) {
        Ok(t) => t.lines().map(str::to_string).collect(),
        Err(_) => {
            eprintln!(
                "no store: run `RDAP_BENCH_DOMAINS={n} benches/rdap_load.sh` first to make {}",
                db.display()
            );
            std::process::exit(1);
        }
    };
    // WHOIS asks for any of the N names (uniform: the worst case for the
    // page cache); wrk for the hot sample.
    // One string and line offsets (a million small Strings would add ~50
    // MiB of the bench's own to the RSS measured).
    let all = Names::new(
        std::fs::read_to_string(dir.join(format!("all-{n}.txt")))
            .unwrap_or_else(|_| names.join("\n")),
    );
    let mut cfg = Config::default();
    cfg.whois.rate_limit_exempt = vec!["127.0.0.0/8".parse().expect("static")];
    cfg.rdap.rate_limit_exempt = cfg.whois.rate_limit_exempt.clone();
    cfg.store.cache_mib = env("FRONTEND_BENCH_CACHE_MIB", cfg.store.cache_mib as u64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (before, _) = rss();
    let t0 = Instant::now();
    let store = RedbStore::open_with_cache(&db, cfg.store.cache_mib << 20).expect("open store");
    let cache_mib = cfg.store.cache_mib;
    let app = App::new(cfg, Arc::new(store), Arc::new(SystemClock)).expect("app");
    let (waddr, haddr) = rt.block_on(async {
        let wl = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hl = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addrs = (
            wl.local_addr().expect("addr"),
            hl.local_addr().expect("addr"),
        );
        tokio::spawn(zonekeeper::whois::serve(app.clone(), wl));
        tokio::spawn(zonekeeper::http::serve(app.clone(), hl));
        addrs
    });
    let first = rt.block_on(async {
        loop {
            if let Ok(a) = whois(waddr, &names[0]).await {
                if a.windows(8).any(|w| w == b"\ndomain:") {
                    return t0.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let rdap_first = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{haddr}/rdap/domain/{}", names[0]))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let rdap_at = t0.elapsed();
    let (r, h) = rss();
    println!(
        "{n} domains, redb page cache {cache_mib} MiB: open to first WHOIS answer {:.3} s, \
         first RDAP answer ({rdap_first}) at {:.3} s; RSS {r} MiB (peak {h} MiB; {before} MiB before opening)",
        first.as_secs_f64(),
        rdap_at.as_secs_f64()
    );

    // Mixed load: wrk on RDAP domains; WHOIS and RDAP nameserver lookups here.
    let lua = dir.join("frontend.lua");
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    std::fs::write(
        &lua,
        format!(
            "local names = {{\n{list}\n}}\nrequest = function()\n  return wrk.format(\"GET\", wrk.path .. \"domain/\" .. names[math.random(#names)])\nend\n"
        ),
    )
    .expect("write script");
    let wrk = Command::new("wrk")
        .args(["-t", "1", "-c", "16", "-d", &format!("{secs}s"), "-s"])
        .arg(&lua)
        .arg(format!("http://{haddr}/rdap/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wrk (apt-get install wrk)");
    let stop = Instant::now() + Duration::from_secs(secs);
    let all = Arc::new(all);
    let (whois_n, other_n) = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..4usize {
            let names = all.clone();
            tasks.spawn(async move {
                let (mut w, mut o) = (0u64, 0u64);
                let client = reqwest::Client::new();
                let mut i = c * 7919;
                while Instant::now() < stop {
                    i = (i + 104_729) % names.len();
                    if whois(waddr, names.get(i)).await.is_ok() {
                        w += 1;
                    }
                    if i % 4 == 0 {
                        let url = format!(
                            "http://{haddr}/rdap/nameserver/ns1.hosting{}.example",
                            i % 7
                        );
                        if client.get(&url).send().await.is_ok() {
                            o += 1;
                        }
                    }
                }
                (w, o)
            });
        }
        let mut report =
            tokio::time::interval(Duration::from_secs(env("FRONTEND_BENCH_EVERY", 30)));
        report.tick().await;
        let mut t = (0, 0);
        loop {
            tokio::select! {
                r = tasks.join_next() => match r {
                    Some(Ok((w, o))) => { t.0 += w; t.1 += o; }
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = report.tick() => {
                    let (r, h) = rss();
                    let threads = std::fs::read_to_string("/proc/self/status")
                        .unwrap_or_default()
                        .lines()
                        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
                        .unwrap_or_default();
                    println!(
                        "  t+{:>4.0} s: RSS {r} MiB ({} MiB over the bench's own {before} MiB; peak {h} MiB), {threads} threads, load average {}",
                        t0.elapsed().as_secs_f64() - first.as_secs_f64(),
                        r.saturating_sub(before),
                        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
                    );
                }
            }
        }
        t
    });
    let out = wrk.wait_with_output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .unwrap_or("?")
        .trim()
        .to_string();
    let (r, h) = rss();
    println!(
        "after {secs} s of mixed load (RDAP domains {rps} req/s, {whois_n} WHOIS queries, {other_n} RDAP nameserver lookups): \
         RSS {r} MiB ({} MiB over the bench's own {before} MiB; peak {h} MiB); answer caches: RDAP {:?}, WHOIS {:?}, facts {:?} (hits, misses); load average {}",
        r.saturating_sub(before),
        app.answers().rdap_domain.counts(),
        app.answers().whois_domain.counts(),
        app.answers().facts.counts(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    app.shutdown().cancel();
    drop(rt);
}

//! Probing at ccTLD size, end to end through the release `zonekeeper serve`
//! (redb store on disk) against a shared hoster on loopback: two NSD
//! servers `ns1/ns2.bulkhost.test` (out of bailiwick) serving N zones
//! (tests/support/hoster.rs).
//!
//! `serve` writes the zone file (`zone.output`) as it would in production.
//!
//! Figures, each next to its baseline from the same run:
//! - testing: the N domains imported as `testing` (`probe_interval = "1s"`):
//!   domain checks per second from `serve` being up until all N are in the
//!   zone (`zonekeeper_domains{state="delegated"}`), failed rounds;
//! - monitoring: `serve` restarted once every domain is overdue for its
//!   monitoring round: monitoring rounds per second until N rounds ran;
//! - queries per check of each phase and the busiest second either server
//!   saw, from NSD's own statistics (`nsd-control stats_noreset`);
//! - baseline: `dnsperf` (SOA queries for the same zones) against one of
//!   the same NSD servers: what the hoster answers on this box.
//!
//! PostgreSQL (`ZK_PROBE_STORE=postgres`, or `both`): the same phases on
//! a throwaway PostgreSQL cluster (tests/support/pg.rs, durable: fsync and
//! synchronous commit on, as redb commits), one fresh database per count
//! in `ZK_PROBE_SCHEDULERS` (default "1,2,4"): the domains imported with
//! `zonekeeper import`, then one `serve --roles frontend,zone` process
//! (zone file, the `zonekeeper_domains` gauge) and that many
//! `serve --roles scheduler,frontend` processes (each its own metrics),
//! as docs/operations.md runs several processes on one database. Checks
//! are summed over the schedulers; `pg cpu s` is the cluster's CPU.
//! `ZK_PROBE_PGSTAT=1` loads `pg_stat_statements` and prints the
//! statements that took the most time in each run.
//!
//! Run: `cargo bench --bench probe_scale`. Knobs (env): ZK_PROBE_DOMAINS
//! (20000), ZK_PROBE_MONITOR (monitor interval, "40s": longer than the
//! testing phase, so no monitoring round competes with it),
//! ZK_PROBE_QPS (`probe.per_address_qps`, default 0: off — at the default
//! 500 one hoster's two addresses allow ~166 testing rounds/s by design),
//! ZK_PROBE_ROUNDS (`delegation.max_concurrent_rounds`, default the
//! config's), ZK_DNSPERF_SECS (5). Needs NSD and dnsperf (Debian packages
//! `nsd`, `dnsperf`); runs as root like the tests (loopback aliases).

// The bench uses part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::bin::{free_port, Bin};
use support::hoster::{self, Hoster, RateWatch};

fn env_usize(k: &str, d: usize) -> Option<usize> {
    match std::env::var(k) {
        Ok(v) => Some(
            v.parse()
                .unwrap_or_else(|_| panic!("{k}={v}: not a number")),
        ),
        Err(_) => (d > 0).then_some(d),
    }
}

/// GET `path` over HTTP/1.0; the body.
fn get(http: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(http).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

/// Sum of every series of `name` whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{') && rest.contains(labels))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum::<f64>()
        // (An empty sum is -0.)
        + 0.0
}

/// User + system CPU seconds of process `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

struct Serve {
    child: Child,
    http: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// The release `serve` (with `--import` when given, and `--roles`
    /// when given), up when HTTP answers.
    fn start(bin: &Bin, import: Option<&std::path::Path>, roles: Option<&str>) -> Serve {
        let http = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(bin.path("serve.log"))
            .expect("log");
        let mut c = Command::new(env!("CARGO_BIN_EXE_zonekeeper"));
        c.arg("--config").arg(bin.path("zk.toml")).arg("serve");
        if let Some(i) = import {
            c.arg("--import").arg(i);
        }
        if let Some(r) = roles {
            c.arg("--roles").arg(r);
        }
        let child = c
            .arg("--whois-listen")
            .arg(free_port().to_string())
            .arg("--http-listen")
            .arg(http.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let mut s = Serve { child, http };
        let end = Instant::now() + Duration::from_secs(300);
        while get(http, "/healthz").is_none() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("serve exited ({st}): {}", bin.log());
            }
            assert!(Instant::now() < end, "serve not up: {}", bin.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn metrics(&self) -> String {
        get(self.http, "/metrics").unwrap_or_default()
    }

    /// SIGTERM and wait: the scheduler's last batch commits.
    fn stop(self) {
        Serve::stop_all(vec![self]);
    }

    /// SIGTERM all, then wait for each.
    fn stop_all(mut all: Vec<Serve>) {
        for s in &all {
            let _ = Command::new("kill")
                .args(["-TERM", &s.child.id().to_string()])
                .status();
        }
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            all.retain_mut(|s| !matches!(s.child.try_wait(), Ok(Some(_))));
            if all.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// User + system CPU seconds of the cluster whose data directory is
/// `data`: its postmaster (with its exited backends) and live backends.
fn postgres_cpu(data: Option<&std::path::Path>) -> f64 {
    let Some(data) = data else {
        return 0.0;
    };
    let pid = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
    let Some(master) = pid
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return 0.0;
    };
    let stat = |pid: u32| -> Vec<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = s.rsplit(')').next().unwrap_or("").to_string();
        rest.split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect()
    };
    let ticks = |f: &[u64], from: usize, to: usize| -> u64 {
        f.get(from..to).map_or(0, |v| v.iter().sum())
    };
    // utime, stime, cutime, cstime of the postmaster: its waited-for
    // backends count there once they exit.
    let mut total = ticks(&stat(master), 11, 15);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let f = stat(pid);
            if f.get(1) == Some(&(master as u64)) {
                total += ticks(&f, 11, 13);
            }
        }
    }
    total as f64 / 100.0
}

struct Phase {
    checks: f64,
    secs: f64,
    failed: f64,
    queries: f64,
    peak: f64,
    cpu: f64,
    pg_cpu: f64,
    max_in_flight: f64,
    /// Group-commit batches and the time spent committing them (summed
    /// over the schedulers).
    batches: f64,
    commit_secs: f64,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.checks / self.secs
    }
    fn per_check(&self) -> f64 {
        self.queries / self.checks
    }
}

/// Poll the processes until `done` (given the `gauge` process's metrics,
/// or the first scheduler's, and the rounds summed over `scheds`) says
/// so; the phase's figures.
fn phase(
    h: &Hoster,
    pg: Option<&std::path::Path>,
    gauge: Option<&Serve>,
    scheds: &[Serve],
    limit: Duration,
    done: impl Fn(&str, f64) -> bool,
) -> Phase {
    let q0: u64 = h.queries().iter().sum();
    let procs: Vec<u32> = gauge
        .iter()
        .copied()
        .chain(scheds)
        .map(|s| s.child.id())
        .collect();
    let cpu = || procs.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let (cpu0, pg0) = (cpu(), postgres_cpu(pg));
    let commits = || -> (f64, f64) {
        scheds
            .iter()
            .map(Serve::metrics)
            .fold((0.0, 0.0), |(b, s), m| {
                (
                    b + metric(&m, "zonekeeper_scheduler_commit_seconds_count", ""),
                    s + metric(&m, "zonekeeper_scheduler_commit_seconds_sum", ""),
                )
            })
    };
    let (batches0, commit0) = commits();
    let watch = RateWatch::start(h);
    let start = Instant::now();
    let mut max_in_flight = 0.0f64;
    let sum = |texts: &[String], labels: &str| -> f64 {
        texts
            .iter()
            .map(|m| metric(m, "zonekeeper_scheduler_rounds_total", labels))
            .sum()
    };
    let (texts, rounds) = loop {
        let texts: Vec<String> = scheds.iter().map(Serve::metrics).collect();
        let g = match gauge {
            Some(g) => g.metrics(),
            None => texts.first().cloned().unwrap_or_default(),
        };
        let in_flight: f64 = texts
            .iter()
            .map(|m| metric(m, "zonekeeper_scheduler_rounds_in_flight", ""))
            .sum();
        max_in_flight = max_in_flight.max(in_flight);
        let rounds = sum(&texts, "");
        if done(&g, rounds) {
            break (texts, rounds);
        }
        assert!(
            start.elapsed() < limit,
            "not done in {limit:?}: delegated {}, rounds {rounds}",
            metric(&g, "zonekeeper_domains", "\"delegated\""),
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let secs = start.elapsed().as_secs_f64();
    let q1: u64 = h.queries().iter().sum();
    let (batches1, commit1) = commits();
    Phase {
        checks: rounds,
        secs,
        failed: sum(&texts, "\"fail\""),
        queries: (q1 - q0) as f64,
        peak: watch.finish(),
        cpu: cpu() - cpu0,
        pg_cpu: postgres_cpu(pg) - pg0,
        max_in_flight,
        batches: batches1 - batches0,
        commit_secs: commit1 - commit0,
    }
}

/// dnsperf against one server of the hoster: queries per second.
fn dnsperf(h: &Hoster, n: usize, secs: usize, dir: &std::path::Path) -> f64 {
    // (dnsperf has no --version for `support::tool`: it is there if it runs.)
    if Command::new("dnsperf").arg("-h").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dnsperf is missing (Debian package dnsperf)"
        );
        eprintln!("skipped: dnsperf is missing");
        return 0.0;
    }
    let file = dir.join("queries.txt");
    let text: String = (0..n.min(100_000))
        .map(|i| format!("{} SOA\n", hoster::zone(i)))
        .collect();
    std::fs::write(&file, text).expect("write queries");
    let out = Command::new("dnsperf")
        .args(["-s", &h.ips.0.to_string(), "-p", &h.port.to_string()])
        .arg("-d")
        .arg(&file)
        .args(["-l", &secs.to_string(), "-c", "4", "-q", "500"])
        .output()
        .expect("run dnsperf");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Queries per second:")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no rate in dnsperf's output: {text}"))
}

struct Knobs {
    n: usize,
    monitor: String,
    monitor_secs: Duration,
    qps: usize,
    rounds: Option<usize>,
}

/// The config with `store` as the `[store]` section's body.
fn config(h: &Hoster, k: &Knobs, store: &str) -> String {
    let extra = format!("per_address_qps = {}\n", k.qps);
    let mut dextra = String::new();
    if let Some(r) = k.rounds {
        dextra.push_str(&format!("max_concurrent_rounds = {r}\n"));
    }
    format!(
        r#"zones = ["ru"]
[store]
{store}
[delegation]
probe_interval = "1s"
monitor_interval = "{monitor}"
recheck_interval = "5s"
{dextra}[probe]
allow_private_targets = true
port = {port}
resolvers = ["{ip}:{port}"]
{extra}[zone]
output = "@D@/{{zone}}.zone"
[log]
filter = "warn"
"#,
        monitor = k.monitor,
        port = h.port,
        ip = h.ips.0,
    )
}

/// The import file of the N domains on the hoster, in `bin`'s dir.
fn write_import(bin: &Bin, n: usize) -> std::path::PathBuf {
    let now = chrono::Utc::now() - chrono::Duration::days(1);
    let domains: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": hoster::zone(i), "registrar": "BULK-RU", "registrant": "C1-RU",
                "created": now.to_rfc3339(),
                "nameservers": [{"name": hoster::NS[0]}, {"name": hoster::NS[1]}],
            })
        })
        .collect();
    let import = serde_json::json!({
        "registrars": [{"handle": "BULK-RU", "name": "Bulk Registrar"}],
        "contacts": [{"handle": "C1-RU", "kind": "person", "name": "Ivan Petrov"}],
        "domains": domains,
    });
    let import_path = bin.path("import.json");
    std::fs::write(&import_path, import.to_string()).expect("write import");
    import_path
}

/// Sleep until every domain is overdue for its monitoring round.
fn until_overdue(k: &Knobs, testing_done: Instant) {
    let wait = (k.monitor_secs + Duration::from_secs(2)).saturating_sub(testing_done.elapsed());
    std::thread::sleep(wait);
}

/// The redb run: one `serve` does everything.
fn run_redb(h: &Hoster, k: &Knobs, bin: &Bin) -> (Phase, Phase) {
    let import_path = write_import(bin, k.n);
    let n = k.n;
    // Testing: all N due at import, every round must pass.
    let limit = Duration::from_secs(600);
    let s = vec![Serve::start(bin, Some(&import_path), None)];
    let testing = phase(h, None, None, &s, limit, |m, _| {
        metric(m, "zonekeeper_domains", "\"delegated\"") as usize >= n
    });
    Serve::stop_all(s);
    until_overdue(k, Instant::now());
    // Monitoring: restart once every domain is overdue; N rounds.
    let s = vec![Serve::start(bin, None, None)];
    let monitoring = phase(h, None, None, &s, limit, |_, r| r as usize >= n);
    Serve::stop_all(s);
    (testing, monitoring)
}

/// A PostgreSQL run with `scheds` scheduler processes on a fresh database.
fn run_pg(
    h: &Hoster,
    k: &Knobs,
    pg: &support::pg::PgCluster,
    scheds: usize,
    pgstat: bool,
) -> (Phase, Phase) {
    let db = format!("zk{scheds}");
    let url = pg.create_db(&db);
    let bin = Bin::new(&config(h, k, &format!("url = \"{url}\"")));
    let import_path = write_import(&bin, k.n);
    let out = bin.cli(&["import", &import_path.display().to_string()]);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if pgstat {
        pg.psql(&db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        pg.psql(&db, "SELECT pg_stat_statements_reset()");
    }
    let n = k.n;
    let limit = Duration::from_secs(600);
    let data = pg.dir().join("data");
    let zone = Serve::start(&bin, None, Some("frontend,zone"));
    let start = |bin: &Bin| -> Vec<Serve> {
        (0..scheds)
            .map(|_| Serve::start(bin, None, Some("scheduler,frontend")))
            .collect()
    };
    let s = start(&bin);
    let testing = phase(h, Some(&data), Some(&zone), &s, limit, |m, _| {
        metric(m, "zonekeeper_domains", "\"delegated\"") as usize >= n
    });
    Serve::stop_all(s);
    until_overdue(k, Instant::now());
    let s = start(&bin);
    let monitoring = phase(h, Some(&data), Some(&zone), &s, limit, |_, r| {
        r as usize >= n
    });
    Serve::stop_all(s);
    zone.stop();
    if pgstat {
        println!(
            "\npg_stat_statements, {scheds} scheduler(s): calls, total ms, mean ms, rows, query"
        );
        println!(
            "{}",
            pg.psql(
                &db,
                "SELECT calls || ' | ' || round(total_exec_time) || ' | ' \
                 || round(mean_exec_time::numeric, 3) || ' | ' || rows || ' | ' \
                 || left(regexp_replace(query, '\\s+', ' ', 'g'), 120) \
                 FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15"
            )
        );
    }
    (testing, monitoring)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("ZK_PROBE_DOMAINS", 20_000).unwrap_or(20_000);
    let monitor = std::env::var("ZK_PROBE_MONITOR").unwrap_or_else(|_| "40s".into());
    let monitor_secs = humantime::parse_duration(&monitor).expect("ZK_PROBE_MONITOR");
    // One hoster's two addresses carry all N domains: at the default cap
    // (500 q/s per address) that is ~166 testing rounds/s by design, so
    // the speed is measured with the cap off unless asked.
    let qps = env_usize("ZK_PROBE_QPS", 0).unwrap_or(0);
    let rounds = env_usize("ZK_PROBE_ROUNDS", 0);
    let perf_secs = env_usize("ZK_DNSPERF_SECS", 5).unwrap_or(5);
    let store = std::env::var("ZK_PROBE_STORE").unwrap_or_else(|_| "redb".into());
    let (with_redb, with_pg) = match store.as_str() {
        "redb" => (true, false),
        "postgres" => (false, true),
        "both" => (true, true),
        other => panic!("ZK_PROBE_STORE={other}: redb, postgres or both"),
    };
    let counts: Vec<usize> = std::env::var("ZK_PROBE_SCHEDULERS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .unwrap_or_else(|_| panic!("ZK_PROBE_SCHEDULERS: {c}: not a number"))
        })
        .collect();
    let pgstat = std::env::var("ZK_PROBE_PGSTAT").as_deref() == Ok("1");
    let k = Knobs {
        n,
        monitor,
        monitor_secs,
        qps,
        rounds,
    };

    let t = Instant::now();
    let h = Hoster::start(n);
    eprintln!("NSD up with {n} zones on two servers in {:?}", t.elapsed());

    let bin = Bin::new(&config(&h, &k, "path = \"@D@/zk.redb\""));
    let perf = dnsperf(&h, n, perf_secs, bin.dir.path());

    let mut runs: Vec<(String, Phase, Phase)> = Vec::new();
    if with_redb {
        let (t, m) = run_redb(&h, &k, &bin);
        runs.push(("redb".into(), t, m));
    }
    if with_pg {
        let pg = support::pg::PgCluster::try_start_durable()
            .unwrap_or_else(|e| panic!("ZK_PROBE_STORE={store} needs PostgreSQL: {e}"));
        if pgstat {
            pg.psql(
                "postgres",
                "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
            );
            pg.restart();
        }
        for &c in &counts {
            let (t, m) = run_pg(&h, &k, &pg, c, pgstat);
            runs.push((format!("pg x{c}"), t, m));
        }
    }

    let cap = if qps == 0 {
        "0 (off)".to_string()
    } else {
        qps.to_string()
    };
    println!("\nprobe_scale: {n} domains on one shared hoster (2 NSD), per_address_qps {cap}");
    println!(
        "{:<20} {:>9} {:>8} {:>10} {:>7} {:>9} {:>12} {:>8} {:>9} {:>9} {:>8} {:>9}",
        "phase",
        "checks",
        "secs",
        "checks/s",
        "failed",
        "q/check",
        "busiest q/s",
        "cpu s",
        "pg cpu s",
        "inflight",
        "batches",
        "commit s"
    );
    for (store, t, m) in &runs {
        for (name, p) in [("testing", t), ("monitoring", m)] {
            println!(
                "{:<20} {:>9.0} {:>8.2} {:>10.0} {:>7.0} {:>9.2} {:>12.0} {:>8.2} {:>9.2} {:>9.0} {:>8.0} {:>9.2}",
                format!("{store} {name}"),
                p.checks,
                p.secs,
                p.rate(),
                p.failed,
                p.per_check(),
                p.peak,
                p.cpu,
                p.pg_cpu,
                p.max_in_flight,
                p.batches,
                p.commit_secs
            );
        }
    }
    println!("baseline: dnsperf against one of the same NSD servers: {perf:.0} q/s");
    if let Some((_, t1, m1)) = runs.iter().find(|r| r.0 == "pg x1") {
        for (store, t, m) in runs.iter().filter(|r| r.0.starts_with("pg x")) {
            println!(
                "{store}: testing x{:.2}, monitoring x{:.2} of pg x1",
                t.rate() / t1.rate(),
                m.rate() / m1.rate()
            );
        }
        if let Some((_, rt, rm)) = runs.iter().find(|r| r.0 == "redb") {
            println!(
                "pg x1 vs redb: testing x{:.2}, monitoring x{:.2}",
                t1.rate() / rt.rate(),
                m1.rate() / rm.rate()
            );
        }
    }
    let busiest = runs
        .iter()
        .flat_map(|(_, t, m)| [t.peak, m.peak])
        .fold(0.0, f64::max);
    println!(
        "probing used {:.1}% of one server's dnsperf rate at its busiest second",
        100.0 * busiest / perf.max(1.0)
    );
}

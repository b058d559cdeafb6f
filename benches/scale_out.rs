//! Issue 17's scale-out figures, each next to a baseline from the same run.
//!
//! - `growth`: store growth per simulated day. A sample of domains runs
//!   through the real scheduler loop (`scheduler::run_with`, the real
//!   write path with the retention policy) on an injected clock: hourly
//!   monitoring rounds, 1% of the domains a day losing a server for three
//!   hours (findings and reachability change twice). Sizes after each
//!   simulated day: the redb file after compaction, PostgreSQL's
//!   `pg_database_size` (VACUUM every simulated hour, as autovacuum would
//!   at that update rate). Baseline: the size after the import. The
//!   steady-state growth (window full) is scaled to 1M domains.
//! - `rounds`: scheduler rounds per second with 1, 2 and 4 schedulers
//!   (separate `run_with` instances, each with its own connection pool,
//!   claiming through `FOR UPDATE SKIP LOCKED` leases) on one PostgreSQL
//!   database; a prober of fixed simulated latency (bounded by probing)
//!   and one of zero latency (bounded by the database). Baseline: one
//!   scheduler on redb, same prober, same run.
//! - `frontend`: a front end (`http::serve` over the store, in a child
//!   process of this bench) over PostgreSQL vs redb: time from start to
//!   the first RDAP answer, RSS, and RDAP lookups per second under wrk.
//!
//! `cargo bench --bench scale_out -- [growth] [rounds] [frontend]` (all
//! three by default). Knobs (env): ZK_GROWTH_DOMAINS (10000), ZK_GROWTH_DAYS
//! (3), ZK_GROWTH_KEEP (24: `store.rounds_keep_last` for the run),
//! ZK_ROUNDS_DOMAINS (20000), ZK_ROUNDS_SECS (15), ZK_ROUNDS_LATENCY_MS
//! (100), ZK_ROUNDS_CONCURRENCY (16), ZK_FRONTEND_DOMAINS (200000),
//! ZK_FRONTEND_SECS (15). PostgreSQL parts start a throwaway cluster
//! (tests/support/pg.rs; needs root and PostgreSQL).

// The bench uses part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::future::BoxFuture;
use zonekeeper::app::App;
use zonekeeper::clock::{ManualClock, SharedClock};
use zonekeeper::config::Config;
use zonekeeper::model::{
    CheckReport, Finding, Nameserver, ServerReport, Severity, Timestamp, Verdict,
};
use zonekeeper::names::DomainName;
use zonekeeper::scheduler::{self, Checker};
use zonekeeper::store::{
    self, ImportBatch, Location, Maintenance, OpenOptions, PgStore, RedbStore, Retention, Store,
};

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn name(i: usize) -> String {
    format!("scale{i}.ru")
}

fn index(name: &str) -> usize {
    name.trim_start_matches("scale")
        .trim_end_matches(".ru")
        .parse()
        .unwrap_or(0)
}

/// Import `n` domains with two nameservers each (testing from `now`).
fn import(store: &dyn Store, n: usize, cfg: &Config, now: Timestamp) {
    let mut i = 0;
    while i < n {
        let end = (i + 20_000).min(n);
        let domains = (i..end)
            .map(|k| {
                let nm = name(k);
                let ip = |h: usize| -> IpAddr {
                    format!("192.0.2.{}", (k + h) % 250 + 1).parse().unwrap()
                };
                support::sched::domain(
                    &nm,
                    vec![
                        support::sched::ns(&format!("ns1.{nm}"), &[ip(0)]),
                        support::sched::ns(&format!("ns2.{nm}"), &[ip(1)]),
                    ],
                    now,
                )
            })
            .collect();
        let batch = ImportBatch {
            webhooks: vec![],
            resellers: vec![],
            registrars: if i == 0 {
                vec![support::sched::registrar()]
            } else {
                vec![]
            },
            contacts: if i == 0 {
                vec![support::sched::contact()]
            } else {
                vec![]
            },
            domains,
        };
        zonekeeper::import::apply(store, &batch, cfg, now).expect("import");
        i = end;
    }
}

/// A stand-in prober (no packet leaves the process): answers after
/// `latency`; with an outage plan, a domain's second server is down for
/// three hours of the simulated day it is chosen for.
struct Sim {
    latency: Duration,
    /// (clock, start) for the outage plan (growth); `None`: all pass.
    plan: Option<(ManualClock, Timestamp)>,
    calls: AtomicUsize,
    /// Per domain: the last simulated hour it was probed in (+1).
    probed: Vec<AtomicU32>,
    first: Mutex<Option<Instant>>,
}

impl Sim {
    fn new(n: usize, latency: Duration, plan: Option<(ManualClock, Timestamp)>) -> Self {
        Self {
            latency,
            plan,
            calls: AtomicUsize::new(0),
            probed: (0..n).map(|_| AtomicU32::new(0)).collect(),
            first: Mutex::new(None),
        }
    }

    /// Whether domain `i` has its outage in simulated hour `hour`: 1% of
    /// the domains a day (a hash of domain and day), three hours from an
    /// hour of that day.
    fn down(i: usize, hour: i64) -> bool {
        let day = hour.div_euclid(24);
        (day - 1..=day).any(|d| {
            let h = splitmix((i as u64) << 20 ^ d as u64);
            if !h.is_multiple_of(100) {
                return false;
            }
            let start = d * 24 + ((h >> 8) % 24) as i64;
            (start..start + 3).contains(&hour)
        })
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Checker for Sim {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut f = self.first.lock().unwrap();
            f.get_or_insert_with(Instant::now);
        }
        let i = index(domain.as_str());
        let (now, hour) = match &self.plan {
            Some((clock, t0)) => {
                use zonekeeper::clock::Clock;
                let now = clock.now();
                (now, (now - *t0).num_hours())
            }
            None => (Utc::now(), 0),
        };
        if let Some(p) = self.probed.get(i) {
            p.store(hour as u32 + 1, Ordering::SeqCst);
        }
        let down = self.plan.is_some() && Sim::down(i, hour);
        let mut findings = Vec::new();
        let servers = ns
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let addrs: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
                let up = !(down && k == 1);
                if !up {
                    findings.push(Finding {
                        id: "RESPONSIVE".into(),
                        severity: Severity::Error,
                        server: Some(s.name.as_str().into()),
                        address: addrs.first().cloned(),
                        message: "no answer (timeout)".into(),
                    });
                }
                ServerReport {
                    name: s.name.as_str().into(),
                    addresses: addrs,
                    reachable: up,
                    soa_serial: up.then_some(2026010101),
                    rtt_ms: up.then_some(3 + (i % 40) as u64),
                    unreachable_addresses: vec![],
                }
            })
            .collect();
        let report = CheckReport {
            domain: domain.as_str().into(),
            verdict: if down { Verdict::Fail } else { Verdict::Pass },
            checked_at: now,
            duration_ms: 5 + (i % 90) as u64,
            findings,
            servers,
        };
        let latency = self.latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            report
        })
    }
}

/// A throwaway PostgreSQL cluster, or why not. `durable`: commits cost
/// what redb's durable commits do (fsync on); else as in the tests.
fn cluster(durable: bool) -> Option<support::pg::PgCluster> {
    let c = if durable {
        support::pg::PgCluster::try_start_durable()
    } else {
        support::pg::PgCluster::try_start()
    };
    match c {
        Ok(c) => Some(c),
        Err(e) => {
            println!("  postgresql: no cluster ({e})");
            None
        }
    }
}

fn sched_config() -> Config {
    let mut cfg = Config::default();
    cfg.delegation.jitter = 0.0;
    cfg
}

// ---- growth -----------------------------------------------------------

enum Db<'a> {
    Redb(PathBuf),
    Pg(&'a support::pg::PgCluster, &'static str),
}

impl Db<'_> {
    fn label(&self) -> &'static str {
        match self {
            Db::Redb(_) => "redb",
            Db::Pg(..) => "postgresql",
        }
    }

    fn open(&self, ret: Retention) -> Arc<dyn Store> {
        match self {
            Db::Redb(p) => {
                let mut s = RedbStore::open(p).expect("redb");
                s.set_retention(ret);
                Arc::new(s)
            }
            Db::Pg(pg, db) => {
                let mut s = PgStore::connect(&pg.url(db), 8).expect("postgres");
                s.set_retention(ret);
                Arc::new(s)
            }
        }
    }

    /// The store's size on disk, after compaction (redb) or VACUUM (PG).
    fn size(&self) -> u64 {
        match self {
            Db::Redb(p) => {
                let mut s = RedbStore::open(p).expect("redb");
                s.compact().expect("compact");
                drop(s);
                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
            }
            Db::Pg(pg, db) => {
                pg.psql(db, "VACUUM");
                pg.psql(db, &format!("SELECT pg_database_size('{db}')"))
                    .parse()
                    .unwrap_or(0)
            }
        }
    }

    /// PostgreSQL: each table's size with its indexes (for the report).
    fn tables(&self) -> Vec<(String, i64)> {
        match self {
            Db::Redb(_) => Vec::new(),
            Db::Pg(pg, db) => pg
                .psql(
                    db,
                    "SELECT relname || ' ' || pg_total_relation_size(oid) FROM pg_class \
                     WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
                )
                .lines()
                .filter_map(|l| {
                    let (t, n) = l.split_once(' ')?;
                    Some((t.to_string(), n.parse().ok()?))
                })
                .collect(),
        }
    }
}

/// Wait until the last holder of `store` let go (the scheduler's tasks end
/// after shutdown), so the redb file can be reopened.
async fn release(store: Arc<dyn Store>) {
    let end = Instant::now() + Duration::from_secs(30);
    while Arc::strong_count(&store) > 1 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn growth() {
    let n = env("ZK_GROWTH_DOMAINS", 10_000);
    let days = env("ZK_GROWTH_DAYS", 3).max(2);
    let keep = env("ZK_GROWTH_KEEP", 24);
    println!(
        "growth: {n} domains, hourly rounds, 1%/day change, {days} simulated days, \
         rounds_keep_last = {keep} (load {})",
        loadavg()
    );
    // Sizes do not depend on the disk: the redb file on tmpfs when there
    // is one (its durable commits are then cheap).
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tmp");
    let redb = Db::Redb(dir.path().join("growth.redb"));
    let mut results = vec![growth_on(&redb, n, days, keep)];
    if let Some(pg) = cluster(false) {
        pg.create_db("growth");
        let db = Db::Pg(&pg, "growth");
        results.push(growth_on(&db, n, days, keep));
    }
    println!("  load average after: {}", loadavg());
    for (label, sizes) in results {
        // Day 1 fills the window; day 2 settles (PostgreSQL's free space
        // map, first history and feed pages): steady from day 3 when run.
        let skip = if sizes.len() > 4 { 2 } else { 1 };
        let steady: Vec<i64> = sizes.windows(2).skip(skip).map(|w| w[1] - w[0]).collect();
        let mean = steady.iter().sum::<i64>() as f64 / steady.len().max(1) as f64;
        let per_m = mean * 1_000_000.0 / n as f64 / (1 << 20) as f64;
        println!(
            "  {label:>10}: daily growth {} KiB; steady (days {}..) {:.0} KiB/day at {n} -> \
             {per_m:.1} MiB/day at 1M (goal < 50); window fill (day 1) {:.1} MiB at {n} = {:.0} B \
             per kept round",
            sizes
                .windows(2)
                .map(|w| format!("{:+.0}", (w[1] - w[0]) as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", "),
            skip + 1,
            mean / 1024.0,
            (sizes[1] - sizes[0]) as f64 / (1 << 20) as f64,
            (sizes[1] - sizes[0]) as f64 / (n * keep.min(24)) as f64,
        );
    }
}

/// Returns the size after the import and after each day.
fn growth_on(db: &Db, n: usize, days: usize, keep: usize) -> (&'static str, Vec<i64>) {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let cfg = sched_config();
    let ret = Retention {
        keep_last: keep,
        ..Retention::default()
    };
    let t = Instant::now();
    {
        let s = db.open(ret);
        import(s.as_ref(), n, &cfg, t0);
    }
    let import_s = t.elapsed().as_secs_f64();
    let mut sizes = vec![db.size() as i64];
    let mut tables = Vec::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = Arc::new(Sim::new(n, Duration::ZERO, Some((clock.clone(), t0))));
    let t = Instant::now();
    for day in 0..days {
        let store = db.open(ret);
        let app = App::new(
            cfg.clone(),
            store.clone(),
            Arc::new(clock.clone()) as SharedClock,
        )
        .expect("app");
        rt.block_on(async {
            let task = tokio::spawn(scheduler::run_with(app.clone(), sim.clone()));
            for h in 0..24 {
                let hour = (day * 24 + h) as u32;
                clock.set(t0 + chrono::Duration::hours(hour as i64));
                app.scheduler_wake().notify_one();
                let end = Instant::now() + Duration::from_secs(300);
                loop {
                    let behind = sim
                        .probed
                        .iter()
                        .filter(|p| p.load(Ordering::SeqCst) < hour + 1)
                        .count();
                    if behind == 0 {
                        break;
                    }
                    if Instant::now() > end {
                        println!("  {}: hour {hour}: {behind} domains not probed", db.label());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if let Db::Pg(pg, name) = db {
                    pg.psql(name, "VACUUM");
                }
            }
            app.shutdown().cancel();
            let _ = task.await;
            drop(app);
            release(store).await;
        });
        sizes.push(db.size() as i64);
        tables.push(db.tables());
    }
    let mib = |b: i64| b as f64 / (1 << 20) as f64;
    println!(
        "  {:>10}: import {:.1} s; {} rounds in {:.1} s; size after import {:.1} MiB, after each day {}",
        db.label(),
        import_s,
        sim.calls.load(Ordering::SeqCst),
        t.elapsed().as_secs_f64(),
        mib(sizes[0]),
        sizes[1..]
            .iter()
            .map(|s| format!("{:.2}", mib(*s)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Where the steady days' growth went (PostgreSQL: per table).
    let skip = if days > 3 { 1 } else { 0 };
    if let (Some(first), Some(last)) = (tables.get(skip).filter(|t| !t.is_empty()), tables.last()) {
        let mut d: Vec<(String, i64)> = last
            .iter()
            .map(|(t, n)| {
                let was = first.iter().find(|(u, _)| u == t).map_or(0, |x| x.1);
                (
                    t.clone(),
                    (n - was) / (tables.len() - 1 - skip).max(1) as i64,
                )
            })
            .filter(|(_, n)| *n != 0)
            .collect();
        d.sort_by_key(|x| -x.1);
        println!(
            "              per steady day by table: {}",
            d.iter()
                .map(|(t, n)| format!("{t} {:+.0} KiB", *n as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    (db.label(), sizes)
}

// ---- rounds -----------------------------------------------------------

/// One pass: `k` schedulers (each its own store handle) over the domains
/// due at `at`; stops after `secs` or when every domain was probed.
/// Returns rounds per second (rounds started, all written at the end)
/// and claims refused per round (domains another scheduler held).
/// `delegation.commit_batch` for the next passes (0: the default): 1 is
/// one transaction per round, the unbatched baseline.
static COMMIT_BATCH: AtomicUsize = AtomicUsize::new(0);

fn pass(
    rt: &tokio::runtime::Runtime,
    stores: &[Arc<dyn Store>],
    n: usize,
    at: Timestamp,
    latency: Duration,
    concurrency: usize,
    secs: u64,
) -> (f64, f64) {
    let refused = || support::metric("zonekeeper_scheduler_claims_refused_total");
    let refused0 = refused();
    let clock = ManualClock::new(at);
    let sim = Arc::new(Sim::new(0, latency, None));
    let mut cfg = sched_config();
    cfg.delegation.max_concurrent_rounds = concurrency;
    match COMMIT_BATCH.load(Ordering::SeqCst) {
        0 => {}
        b => cfg.delegation.commit_batch = b,
    }
    rt.block_on(async {
        let apps: Vec<App> = stores
            .iter()
            .map(|s| {
                App::new(
                    cfg.clone(),
                    s.clone(),
                    Arc::new(clock.clone()) as SharedClock,
                )
                .expect("app")
            })
            .collect();
        let tasks: Vec<_> = apps
            .iter()
            .map(|a| tokio::spawn(scheduler::run_with(a.clone(), sim.clone())))
            .collect();
        let end = Instant::now() + Duration::from_secs(secs + 60);
        loop {
            let started = *sim.first.lock().unwrap();
            let done = sim.calls.load(Ordering::SeqCst) >= n;
            let timed_out = started.is_some_and(|s| s.elapsed() >= Duration::from_secs(secs));
            if done || timed_out || Instant::now() > end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for a in &apps {
            a.shutdown().cancel();
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let first = sim.first.lock().unwrap().unwrap_or_else(Instant::now);
    let calls = sim.calls.load(Ordering::SeqCst) as f64;
    (
        calls / first.elapsed().as_secs_f64(),
        (refused() - refused0) / calls.max(1.0),
    )
}

fn rounds() {
    let n = env("ZK_ROUNDS_DOMAINS", 20_000);
    let secs = env("ZK_ROUNDS_SECS", 15) as u64;
    let lat = Duration::from_millis(env("ZK_ROUNDS_LATENCY_MS", 100) as u64);
    let conc = env("ZK_ROUNDS_CONCURRENCY", 16);
    println!(
        "rounds: {n} domains; passes of at most {secs} s; probing latency {lat:?} with \
         {conc} rounds in flight per scheduler (bound {:.0}/s each), or zero latency with 64 \
         (load {})",
        conc as f64 / lat.as_secs_f64(),
        loadavg()
    );
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let cfg = sched_config();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Pass k runs at t0 + k hours: every domain is due (monitoring is
    // hourly), the first pass delegates them (testing -> delegated).
    let dir = tempfile::tempdir().expect("tmp");
    let redb: Arc<dyn Store> =
        Arc::new(RedbStore::open(&dir.path().join("rounds.redb")).expect("redb"));
    import(redb.as_ref(), n, &cfg, t0);
    let hour = |k: i64| t0 + chrono::Duration::hours(k);
    let (r_first, _) = pass(
        &rt,
        std::slice::from_ref(&redb),
        n,
        hour(0),
        Duration::ZERO,
        64,
        secs,
    );
    let (r_zero, _) = pass(
        &rt,
        std::slice::from_ref(&redb),
        n,
        hour(1),
        Duration::ZERO,
        64,
        secs,
    );
    let (r_lat, _) = pass(
        &rt,
        std::slice::from_ref(&redb),
        n,
        hour(2),
        lat,
        conc,
        secs,
    );
    drop(redb);
    println!(
        "  redb, 1 scheduler (baseline): delegating pass {r_first:.0}/s; monitoring: zero \
         latency {r_zero:.0}/s, {lat:?} latency {r_lat:.0}/s"
    );
    let Some(pg) = cluster(true) else { return };
    println!(
        "  postgresql: fsync {}, synchronous_commit {}",
        pg.psql("postgres", "SHOW fsync"),
        pg.psql("postgres", "SHOW synchronous_commit")
    );
    let url = pg.create_db("rounds");
    let t = Instant::now();
    {
        let s = PgStore::connect(&url, 8).expect("postgres");
        import(&s, n, &cfg, t0);
    }
    println!(
        "  postgresql: imported {n} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stores = |k: usize| -> Vec<Arc<dyn Store>> {
        (0..k)
            .map(|_| Arc::new(PgStore::connect(&url, 8).expect("postgres")) as Arc<dyn Store>)
            .collect()
    };
    let (p_first, _) = pass(&rt, &stores(4), n, hour(0), Duration::ZERO, 64, secs);
    println!("  postgresql, 4 schedulers: delegating pass {p_first:.0}/s");
    // Baseline of the batched writes: the same 1-scheduler pass with one
    // transaction per round (commit_batch = 1).
    COMMIT_BATCH.store(1, Ordering::SeqCst);
    let (p_unbatched, _) = pass(&rt, &stores(1), n, hour(1), Duration::ZERO, 64, secs);
    COMMIT_BATCH.store(0, Ordering::SeqCst);
    println!(
        "  postgresql, zero latency, 1 scheduler, commit_batch = 1 (one transaction per round, \
         baseline): {p_unbatched:.0} rounds/s"
    );
    let mut k_hour = 2;
    let mut rows = Vec::new();
    for (label, latency, c) in [("zero latency", Duration::ZERO, 64), ("latency", lat, conc)] {
        let mut rates = Vec::new();
        for k in [1usize, 2, 4] {
            let r = pass(&rt, &stores(k), n, hour(k_hour), latency, c, secs);
            println!(
                "  postgresql, {label}, {k} scheduler(s): {:.0} rounds/s, {:.2} claims refused per round",
                r.0, r.1
            );
            let r = r.0;
            k_hour += 1;
            rates.push(r);
        }
        rows.push((label, rates));
    }
    for (label, r) in rows {
        if label == "zero latency" {
            println!(
                "  postgresql batched writes: 1 scheduler {:.0}/s vs one transaction per round \
                 {p_unbatched:.0}/s (x{:.2})",
                r[0],
                r[0] / p_unbatched
            );
        }
        let base = if label == "latency" { r_lat } else { r_zero };
        println!(
            "  postgresql monitoring, {label}: 1 scheduler {:.0}/s, 2: {:.0}/s (x{:.2}), \
             4: {:.0}/s (x{:.2}); redb 1 scheduler {base:.0}/s (PG 1 = x{:.2} of redb)",
            r[0],
            r[1],
            r[1] / r[0],
            r[2],
            r[2] / r[0],
            r[0] / base
        );
    }
    println!("  load average after: {}", loadavg());
}

// ---- frontend ---------------------------------------------------------

/// In the child: serve RDAP over the store at `loc` until killed.
fn child(loc: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = store::open(&Location::parse(loc), &OpenOptions::default()).expect("open");
        let store: Arc<dyn store::Backend> = Arc::from(store);
        let mut cfg = Config::default();
        // The load comes from one loopback client.
        cfg.rdap.rate_limit_exempt = vec!["127.0.0.0/8".parse().expect("static")];
        let app = App::new(cfg, store, Arc::new(zonekeeper::clock::SystemClock)).expect("app");
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", l.local_addr().expect("addr").port());
        let _ = std::io::stdout().flush();
        let _ = zonekeeper::http::serve(app, l).await;
    });
}

/// One blocking HTTP/1.1 GET: the status code.
fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/rdap+json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

struct Kid(std::process::Child);
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wrk(port: u16, script: &Path, secs: usize) -> (f64, String) {
    let out = Command::new("timeout")
        .arg(format!("{}", secs + 30))
        .args(["wrk", "-t", "2", "-c", "32", "-d"])
        .arg(format!("{secs}s"))
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/rdap/"))
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(|l| format!(" ({})", l.trim()))
        .unwrap_or_default();
    (rps, format!("p99 {p99}{non2xx}"))
}

fn lua(dir: &Path, tag: &str, names: &[String]) -> PathBuf {
    let p = dir.join(format!("{tag}.lua"));
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    std::fs::write(
        &p,
        format!(
            "local names = {{\n{list}\n}}\nmath.randomseed(42)\nrequest = function()\n  \
             local n = names[math.random(#names)]\n  return wrk.format(\"GET\", wrk.path .. \
             \"domain/\" .. n, {{[\"Accept\"] = \"application/rdap+json\"}})\nend\n"
        ),
    )
    .expect("lua");
    p
}

/// Start a front end over `loc`; measure start-up, RSS and RDAP rates.
fn front_end(label: &str, loc: &str, names: &[String], scripts: &[(&str, PathBuf)], secs: usize) {
    let t = Instant::now();
    let mut c = Command::new(std::env::current_exe().expect("exe"))
        .env("ZK_SCALE_CHILD", loc)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = c.stdout.take().expect("stdout");
    let kid = Kid(c);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("port number");
    let path = format!("/rdap/domain/{}", names[names.len() / 2]);
    while get(port, &path) != Some(200) {
        assert!(t.elapsed() < Duration::from_secs(120), "{label}: no answer");
        std::thread::sleep(Duration::from_millis(2));
    }
    let startup = t.elapsed();
    let pid = kid.0.id();
    let rss0 = status_kib(pid, "VmRSS:") / 1024;
    let mut rates = Vec::new();
    for (tag, script) in scripts {
        let (rps, lat) = wrk(port, script, secs);
        rates.push(format!("{tag} {rps:.0} req/s {lat}"));
    }
    println!(
        "  {label:>10}: start to first RDAP answer {:.3} s; RSS {rss0} MiB at start, {} MiB \
         after load (peak {} MiB); {}",
        startup.as_secs_f64(),
        status_kib(pid, "VmRSS:") / 1024,
        status_kib(pid, "VmHWM:") / 1024,
        rates.join("; ")
    );
}

fn frontend() {
    let n = env("ZK_FRONTEND_DOMAINS", 200_000);
    let secs = env("ZK_FRONTEND_SECS", 15);
    println!("frontend: {n} synthetic domains (load {})", loadavg());
    let cfg = Config::default();
    let now = Utc::now();
    let zones = cfg.zones().expect("zones");
    let text = zonekeeper::synth::generate(n, 17);
    let batch =
        zonekeeper::import::parse(text.as_bytes(), "synth", &cfg, &zones, now).expect("parse");
    drop(text);
    let names: Vec<String> = batch
        .domains
        .iter()
        .map(|d| d.name.as_str().to_string())
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let hot: Vec<String> = names.iter().step_by((n / 20_000).max(1)).cloned().collect();
    let scripts = [
        ("hot set of 20k", lua(dir.path(), "hot", &hot)),
        ("uniform over all", lua(dir.path(), "all", &names)),
    ];
    let path = dir.path().join("fe.redb");
    let t = Instant::now();
    {
        let mut s = RedbStore::open(&path).expect("redb");
        zonekeeper::import::apply(&s, &batch, &cfg, now).expect("import");
        s.compact().expect("compact");
    }
    let redb_import = t.elapsed().as_secs_f64();
    println!("  import: redb {redb_import:.1} s");
    let pg = cluster(false);
    let pg_loc = pg.as_ref().map(|pg| {
        let url = pg.create_db("fe");
        let t = Instant::now();
        let s = PgStore::connect(&url, 8).expect("postgres");
        // In chunks: one transaction of 50k domains runs PostgreSQL out of
        // lock space (max_locks_per_transaction).
        let parts = std::iter::once(ImportBatch {
            registrars: batch.registrars.clone(),
            webhooks: batch.webhooks.clone(),
            ..ImportBatch::default()
        })
        .chain(batch.contacts.chunks(5_000).map(|c| ImportBatch {
            contacts: c.to_vec(),
            ..ImportBatch::default()
        }))
        .chain(batch.domains.chunks(5_000).map(|d| ImportBatch {
            domains: d.to_vec(),
            ..ImportBatch::default()
        }));
        for part in parts {
            zonekeeper::import::apply(&s, &part, &cfg, now).expect("import");
        }
        let mut s = s;
        s.compact().expect("vacuum");
        (url, t.elapsed().as_secs_f64())
    });
    drop(batch);
    if let Some((_, s)) = &pg_loc {
        println!("  import: postgresql {s:.1} s (chunks of 5k contacts or domains)");
    }
    front_end("redb", &path.display().to_string(), &names, &scripts, secs);
    if let Some((url, _)) = &pg_loc {
        front_end("postgresql", url, &names, &scripts, secs);
        // The same again, so the order does not favour one backend.
        front_end(
            "redb again",
            &path.display().to_string(),
            &names,
            &scripts[..1],
            secs,
        );
    }
    println!("  load average after: {}", loadavg());
}

fn main() {
    if let Ok(loc) = std::env::var("ZK_SCALE_CHILD") {
        child(&loc);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a test run) does
    // nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |p: &str| {
        let named: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        named.is_empty() || named.iter().any(|a| *a == p)
    };
    if want("growth") {
        growth();
    }
    if want("rounds") {
        rounds();
    }
    if want("frontend") {
        frontend();
    }
}

//! Scheduler overhead with many domains in the store (default 1M; set
//! `ZK_BENCH_DOMAINS` to change, `ZK_BENCH_ROUNDS` for the rounds run).
//!
//! Figures, each with its baseline from the same run:
//! - start-up: `load_queue` (scan + due-queue) vs the bare
//!   `for_each_delegation` scan;
//! - memory: RSS growth from building the queue, and the process RSS;
//! - CPU per due domain: process CPU time per round of the full loop with a
//!   trivial prober (plan, write with history and round, reschedule) vs a
//!   bare `put_delegation` of the same kind of record (the store's share),
//!   and the queue's own pop+reschedule cost;
//! - rounds/s through the loop with group commit vs the same loop with one
//!   store transaction per round (`commit_batch = 1`), each probe taking
//!   `ZK_BENCH_PROBE_MS` (2 ms).
//!
//! The store is built once and cached under `target/bench-data/`; the loop
//! runs on a copy, so every run starts from the same data.
//!
//! Run: `cargo bench --bench scheduler`

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::delegation::Policy;
use zonekeeper::model::{
    CheckReport, Contact, ContactKind, DelegationState, Domain, Nameserver, Registrar,
    ServerReport, Verdict,
};
use zonekeeper::names::{parse_host, DomainName};
use zonekeeper::scheduler::{self, Checker};
use zonekeeper::store::{ImportBatch, RedbStore, Store};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process.
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn domain(i: usize, now: chrono::DateTime<Utc>) -> Domain {
    let name = format!("bench{i}.ru");
    let ns = |k: u8| Nameserver {
        name: parse_host(&format!("ns{k}.{name}")).unwrap(),
        addresses: vec![format!("192.0.2.{}", (i % 250) + k as usize)
            .parse()
            .unwrap()],
    };
    Domain {
        name: DomainName::from_trusted(name.clone()),
        registrar: "REGRU-RU".into(),
        registrant: "C1-RU".into(),
        admin: None,
        tech: None,
        created: now - chrono::Duration::days(10),
        paid_till: now + chrono::Duration::days(300),
        nameservers: vec![ns(1), ns(2)],
        auth_info: None,
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: now,
        registration: Default::default(),
        ds: Vec::new(),
    }
}

fn build(path: &Path, n: usize) {
    let t = Instant::now();
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let store = RedbStore::open(&tmp).unwrap();
    let now = Utc::now();
    let mut first = true;
    let mut i = 0;
    while i < n {
        let end = (i + 20_000).min(n);
        let batch = ImportBatch {
            webhooks: vec![],
            resellers: vec![],
            registrars: if first {
                vec![Registrar {
                    handle: "REGRU-RU".into(),
                    name: "R".into(),
                    url: None,
                    email: None,
                    api_token_sha256: None,
                    epp_cert_sha256: Vec::new(),
                    epp_password_hash: None,
                    epp_poll_acked: 0,
                }]
            } else {
                vec![]
            },
            contacts: if first {
                vec![Contact {
                    handle: "C1-RU".into(),
                    kind: ContactKind::Person,
                    name: None,
                    org: None,
                    email: None,
                    phone: None,
                    address: None,
                    tax_id: None,
                    birth_date: None,
                    passport: None,
                    disclose: vec![],
                    sponsor: None,
                    created: None,
                }]
            } else {
                vec![]
            },
            domains: (i..end).map(|k| domain(k, now)).collect(),
        };
        first = false;
        zonekeeper::import::apply(&store, &batch, &Config::default(), now).unwrap();
        i = end;
    }
    drop(store);
    std::fs::rename(&tmp, path).unwrap();
    eprintln!("built {n}-domain store in {:.1?}", t.elapsed());
}

struct Trivial {
    done: AtomicUsize,
    stop_at: usize,
    shutdown: tokio_util::sync::CancellationToken,
    /// A probe's time on the wire (`ZK_BENCH_PROBE_MS`).
    delay: Duration,
}

impl Checker for Trivial {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport> {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.stop_at {
            self.shutdown.cancel();
        }
        let r = CheckReport {
            domain: domain.as_str().into(),
            verdict: Verdict::Pass,
            checked_at: Utc::now(),
            duration_ms: 0,
            findings: vec![],
            servers: ns
                .iter()
                .map(|s| ServerReport {
                    name: s.name.as_str().into(),
                    addresses: vec![],
                    reachable: true,
                    soa_serial: Some(1),
                    rtt_ms: Some(1),
                    unreachable_addresses: vec![],
                })
                .collect(),
        };
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            r
        })
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n = env_usize("ZK_BENCH_DOMAINS", 1_000_000);
    let rounds = env_usize("ZK_BENCH_ROUNDS", 20_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    // Delete target/bench-data after a change of the stored format.
    let cached = dir.join(format!(
        "scheduler-{n}-v{}.redb",
        zonekeeper::store::SCHEMA_VERSION
    ));
    if !cached.exists() {
        build(&cached, n);
        // Measure in a fresh process: building leaves memory behind.
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .status()
            .unwrap();
        std::process::exit(st.code().unwrap_or(1));
    }
    let work = tempfile::tempdir_in(&dir).unwrap();
    let path = work.path().join("s.redb");
    std::fs::copy(&cached, &path).unwrap();
    let mut cfg = Config::default();
    cfg.delegation.jitter = 0.0;
    let pol = Policy::from_config(&cfg.delegation);
    let rss_start = rss_kib();
    let store = Arc::new(RedbStore::open(&path).unwrap());

    // Baseline: the bare scan.
    let t = Instant::now();
    let mut count = 0usize;
    store
        .for_each_delegation(&mut |_, _| {
            count += 1;
            true
        })
        .unwrap();
    let scan = t.elapsed();
    let rss_scan = rss_kib();

    // Start-up: scan + queue.
    let rss0 = rss_kib();
    let t = Instant::now();
    let q = scheduler::load_queue(store.as_ref(), &pol, Utc::now()).unwrap();
    let load = t.elapsed();
    let rss1 = rss_kib();
    let scheduled = q.scheduled();

    // The queue alone: pop every domain and reschedule it.
    let mut q = q;
    let now = Utc::now().timestamp_millis() + 1;
    let t = Instant::now();
    let mut popped = 0usize;
    while let Some((id, _)) = q.pop_due(now) {
        q.finish(id, now + 3_600_000, Some(DelegationState::Delegated));
        popped += 1;
    }
    let queue_ops = t.elapsed();
    drop(q);

    println!("scheduler bench: {count} delegation records ({scheduled} scheduled)");
    println!(
        "  start-up: load_queue {:.2?} vs bare for_each_delegation scan {:.2?} (x{:.2})",
        load,
        scan,
        load.as_secs_f64() / scan.as_secs_f64()
    );
    println!(
        "  memory: process RSS {} MiB at start, {} MiB after the bare scan (store cache), {} MiB with the queue: queue +{} MiB ({} B/domain)",
        rss_start / 1024,
        rss_scan / 1024,
        rss1 / 1024,
        (rss1.saturating_sub(rss0)) / 1024,
        (rss1.saturating_sub(rss0)) * 1024 / count.max(1) as u64,
    );
    println!(
        "  queue pop+reschedule: {:.0} ns/domain over {popped}",
        queue_ops.as_nanos() as f64 / popped.max(1) as f64
    );

    // A bare wake's rescan: every testing domain's name from the index.
    let t = Instant::now();
    let mut testing = 0usize;
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .domains_by_state(DelegationState::Testing, after.as_deref(), 10_000)
            .unwrap();
        testing += page.len();
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    println!(
        "  bare-wake rescan of the testing index: {testing} names in {:.2?}",
        t.elapsed()
    );

    // Baseline for rounds: bare put_delegation of a round-sized write.
    let k = rounds.min(count) / 4;
    let names: Vec<String> = (0..k).map(|i| format!("bench{}.ru", n - 1 - i)).collect();
    let c0 = cpu();
    let t = Instant::now();
    for name in &names {
        let rec = store.delegation(name).unwrap().unwrap();
        let mut new = rec.clone();
        new.rounds += 1;
        new.last_round = Some(zonekeeper::model::RoundSummary {
            at: Utc::now(),
            passed: true,
            duration_ms: 0,
            findings: vec![],
            servers: vec![],
            inconclusive: None,
            queue_lag_ms: 0,
        });
        let ev = zonekeeper::model::HistoryEvent {
            at: Utc::now(),
            from: Some(rec.state),
            to: rec.state,
            reason: "bench".into(),
        };
        store
            .put_delegation(
                name,
                &rec.ns_fingerprint,
                &new,
                Some(&ev),
                new.last_round.as_ref(),
            )
            .unwrap();
    }
    let put_cpu = cpu() - c0;
    let put_wall = t.elapsed();

    // Baseline for group commit, on a fresh copy: the same loop with one
    // store transaction (one fsync) per round, as before group commit.
    let probe_ms = env_usize("ZK_BENCH_PROBE_MS", 2) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    {
        let path1 = work.path().join("one-per-round.redb");
        std::fs::copy(&cached, &path1).unwrap();
        let store1 = Arc::new(RedbStore::open(&path1).unwrap());
        let mut cfg1 = cfg.clone();
        cfg1.delegation.commit_batch = 1;
        cfg1.delegation.commit_wait = Duration::ZERO;
        let app = App::new(cfg1, store1, Arc::new(SystemClock)).unwrap();
        let prober = Arc::new(Trivial {
            done: AtomicUsize::new(0),
            stop_at: rounds,
            shutdown: app.shutdown().clone(),
            delay: Duration::from_millis(probe_ms),
        });
        let t = Instant::now();
        rt.block_on(scheduler::run_with(app, prober.clone()));
        let wall = t.elapsed();
        let done = prober.done.load(Ordering::SeqCst);
        println!(
            "  rounds, one transaction per round (commit_batch = 1; probe {probe_ms} ms): {done} in {wall:.2?} ({:.0}/s)",
            done as f64 / wall.as_secs_f64()
        );
    }

    // The loop: all domains due now, a trivial prober, stop after `rounds`.
    let app = App::new(cfg, store.clone(), Arc::new(SystemClock)).unwrap();
    let prober = Arc::new(Trivial {
        done: AtomicUsize::new(0),
        stop_at: rounds,
        shutdown: app.shutdown().clone(),
        delay: Duration::from_millis(probe_ms),
    });
    let c0 = cpu();
    let t = Instant::now();
    rt.block_on(scheduler::run_with(app.clone(), prober.clone()));
    let loop_wall = t.elapsed();
    let loop_cpu = cpu() - c0;
    let done = prober.done.load(Ordering::SeqCst);
    let rss2 = rss_kib();
    // The loop's figure includes its own start-up load; take it out.
    let per_round_cpu = loop_cpu.saturating_sub(load) / done.max(1) as u32;
    let per_put_cpu = put_cpu / k.max(1) as u32;
    println!(
        "  rounds, group commit (commit_batch = {}): {done} in {:.2?} wall ({:.0}/s); CPU {:.0} us/round vs bare put_delegation {:.0} us/write (x{:.2}); put wall {:.0} us/write",
        app.config().delegation.commit_batch,
        loop_wall,
        done as f64 / loop_wall.as_secs_f64(),
        per_round_cpu.as_secs_f64() * 1e6,
        per_put_cpu.as_secs_f64() * 1e6,
        per_round_cpu.as_secs_f64() / per_put_cpu.as_secs_f64().max(1e-9),
        put_wall.as_secs_f64() * 1e6 / k.max(1) as f64
    );
    println!("  process RSS after the loop: {} MiB", rss2 / 1024);
    let delegated = store
        .domains_by_state(DelegationState::Delegated, None, usize::MAX)
        .map(|p| p.0.len())
        .unwrap_or(0);
    println!("  delegated after the run: {delegated}");
}

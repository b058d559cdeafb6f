//! redb next to PostgreSQL in the same run: import
//! time, point lookups per second (the RDAP/WHOIS read: `bundle`) from 1
//! and 4 threads, scheduler claims per second, and the bytes a stored
//! probe round costs (for the growth estimate under the retention policy).
//!
//! `cargo bench --bench store_backends [-- DOMAINS]` (default 5000). The
//! PostgreSQL half starts a throwaway cluster (tests/support/pg.rs; root).

// The bench uses part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use zonekeeper::config::Config;
use zonekeeper::store::{self, Backend, Location, OpenOptions};

fn lookups(s: Arc<dyn Backend>, names: Arc<Vec<String>>, threads: usize, dur: Duration) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let s = s.clone();
            let names = names.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut i = t * 7919;
                while start.elapsed() < dur {
                    let name = &names[i % names.len()];
                    assert!(s.bundle(name).expect("bundle").is_some());
                    i += 13;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn run(label: &str, s: Box<dyn Backend>, text: &str, rounds_bytes: impl Fn() -> Option<u64>) {
    let cfg = Config::default();
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("r.json");
    std::fs::write(&f, text).expect("write");
    let t = Instant::now();
    let batch = zonekeeper::import::read_file(&f, &cfg, now).expect("parse");
    zonekeeper::import::apply(&*s, &batch, &cfg, now).expect("import");
    let import_s = t.elapsed().as_secs_f64();
    let names: Arc<Vec<String>> = Arc::new(
        batch
            .domains
            .iter()
            .map(|d| d.name.as_str().to_string())
            .collect(),
    );
    let s: Arc<dyn Backend> = Arc::from(s);
    let one = lookups(s.clone(), names.clone(), 1, Duration::from_secs(3));
    let four = lookups(s.clone(), names.clone(), 4, Duration::from_secs(3));
    // Claims: batches of 64 due domains, as a scheduler takes them.
    let t = Instant::now();
    let mut claimed = 0usize;
    for (i, chunk) in names.chunks(64).enumerate() {
        claimed += s
            .claim(&format!("bench-{}", i % 2), chunk, Duration::from_secs(60))
            .expect("claim")
            .len();
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let claims = claimed as f64 / t.elapsed().as_secs_f64();
    // Rounds: 20 per domain for the first 500 domains, then bytes each.
    let rec = s.delegation(&names[0]).expect("read").expect("record");
    let sample = names.len().min(500);
    let before = rounds_bytes();
    let t = Instant::now();
    for n in names.iter().take(sample) {
        let rec = s.delegation(n).expect("read").expect("record");
        for i in 0..20u64 {
            let mut r = rec
                .last_round
                .clone()
                .unwrap_or(zonekeeper::model::RoundSummary {
                    at: now,
                    passed: true,
                    duration_ms: i,
                    findings: Vec::new(),
                    servers: Vec::new(),
                    inconclusive: None,
                    queue_lag_ms: 0,
                });
            r.duration_ms = i;
            s.put_delegation(n, &rec.ns_fingerprint, &rec, None, Some(&r))
                .expect("round");
        }
    }
    let round_writes = (sample * 20) as f64 / t.elapsed().as_secs_f64();
    let per_round = match (before, rounds_bytes()) {
        (Some(a), Some(b)) => format!("{} B", (b.saturating_sub(a)) / (sample as u64 * 20)),
        _ => "n/a".into(),
    };
    let _ = rec;
    println!(
        "{label:>10}: import {} domains {import_s:.1} s | bundle lookups/s 1 thread {one:.0}, 4 threads {four:.0} | claims/s {claims:.0} | round writes/s {round_writes:.0} | stored round {per_round}",
        names.len()
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let text = zonekeeper::synth::generate(n, 17);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bench.redb");
    let s = store::open(&Location::Path(path.clone()), &OpenOptions::default()).expect("redb");
    run("redb", s, &text, || None);
    let Ok(pg) = support::pg::PgCluster::try_start() else {
        println!("postgresql: no cluster (needs root and PostgreSQL)");
        return;
    };
    let url = pg.create_db("bench");
    let s = store::open(&Location::parse(&url), &OpenOptions::default()).expect("postgres");
    run("postgresql", s, &text, || {
        pg.psql("bench", "SELECT pg_total_relation_size('rounds')")
            .parse()
            .ok()
    });
}

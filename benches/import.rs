//! Import throughput and store size for a large synthetic registry.
//!
//! `cargo bench --bench import` (ZK_BENCH_DOMAINS, default 1,000,000).
//! Baselines measured in the same run: parsing the same JSON into
//! `serde_json::Value` (the floor for reading the file), and raw redb
//! inserts of the same number of 200-byte values in one transaction (the
//! floor for writing it). Bounded: one pass of each, then it stops.
// The PostgreSQL half uses the tests' throwaway cluster.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use chrono::Utc;
use zonekeeper::config::Config;
use zonekeeper::store::{Maintenance, RedbStore, Store};

fn rss_peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
            })
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD) {
        return import(std::path::Path::new(&dir));
    }
    // criterion-style flags (`--bench`) are ignored; `cargo test --benches` passes none.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("ZK_BENCH_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 1_000_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let json = zonekeeper::synth::generate(n, 7);
    let gen = t.elapsed();
    let file = dir.path().join("registry.json");
    std::fs::write(&file, &json).expect("write");
    println!(
        "domains: {n}; JSON {} MiB generated in {gen:.2?}",
        json.len() >> 20
    );

    let t = Instant::now();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let base_parse = t.elapsed();
    drop(v);
    drop(json);

    let t = Instant::now();
    {
        let db = redb::Database::create(dir.path().join("raw.redb")).expect("redb");
        let w = db.begin_write().expect("txn");
        {
            let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
            let mut table = w.open_table(def).expect("table");
            let val = [7u8; 200];
            for i in 0..n as u64 {
                table
                    .insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), val.as_slice())
                    .expect("insert");
            }
        }
        w.commit().expect("commit");
    }
    let base_write = t.elapsed();
    std::fs::remove_file(dir.path().join("raw.redb")).expect("rm");
    println!(
        "baseline: serde_json::Value parse {base_parse:.2?}; raw redb {n} inserts {base_write:.2?}"
    );
    // The import runs in a child process, so its peak RSS is its own (the
    // baselines' `Value` tree is several times the file, and freed heap is
    // not given back).
    let pg_only = std::env::var("ZK_BENCH_PG").is_ok_and(|v| v == "only");
    if pg_only {
        return postgres(dir.path(), n);
    }
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, dir.path())
        .env(
            "ZK_BENCH_BASELINES",
            format!("{} {}", base_parse.as_secs_f64(), base_write.as_secs_f64()),
        )
        .status()
        .expect("child");
    assert!(status.success(), "import child failed");
    if std::env::var_os("ZK_BENCH_PG").is_some() {
        postgres(dir.path(), n);
    }
}

/// The same file into PostgreSQL (ZK_BENCH_PG set, `only` for just this;
/// root), next to a
/// server-side insert of as many 200-byte rows as there are domains.
fn postgres(dir: &std::path::Path, n: usize) {
    let pg = support::pg::PgCluster::try_start().expect("PostgreSQL cluster (root)");
    let url = pg.create_db("bench");
    let t = Instant::now();
    pg.psql(
        "bench",
        &format!(
            "CREATE TABLE raw (k bigint PRIMARY KEY, v text); \
             INSERT INTO raw SELECT g, repeat('x', 200) FROM generate_series(1, {n}) g"
        ),
    );
    let base = t.elapsed();
    pg.psql("bench", "DROP TABLE raw");
    let cfg = Config::default();
    let now = Utc::now();
    let store = zonekeeper::store::open(
        &zonekeeper::store::Location::parse(&url),
        &zonekeeper::store::OpenOptions::default(),
    )
    .expect("postgres store");
    let t = Instant::now();
    let spooled =
        zonekeeper::import::spool_file(&dir.join("registry.json"), &cfg, now).expect("parse");
    let parse = t.elapsed();
    let t = Instant::now();
    let s = zonekeeper::import::apply_spooled(&*store, &spooled, &cfg, now).expect("apply");
    let apply = t.elapsed();
    assert_eq!(s.domains, n);
    println!(
        "postgresql: baseline {n} rows of 200 bytes inserted server-side {base:.2?}; import parse+validate {parse:.2?}, apply {apply:.2?} ({:.1}x baseline), total {:.2?}",
        apply.as_secs_f64() / base.as_secs_f64(),
        parse + apply
    );
}

/// Set (to the bench directory) in the child that imports.
const CHILD: &str = "ZK_BENCH_IMPORT_DIR";

fn import(dir: &std::path::Path) {
    let base: Vec<f64> = std::env::var("ZK_BENCH_BASELINES")
        .expect("baselines")
        .split(' ')
        .map(|v| v.parse().expect("secs"))
        .collect();
    let (base_parse, base_write) = (base[0], base[1]);
    let file = dir.join("registry.json");
    let cfg = Config::default();
    let now = Utc::now();
    let db = dir.join("z.redb");
    // The page cache `zonekeeper import` opens the store with.
    // (ZK_BENCH_CACHE_MIB to try another.)
    let cache = std::env::var("ZK_BENCH_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(
            cfg.store
                .cache_mib
                .min(zonekeeper::import::IMPORT_CACHE_MIB),
        )
        << 20;
    let mut store = RedbStore::open_with_cache(&db, cache).expect("store");
    let t = Instant::now();
    let spooled = zonekeeper::import::spool_file(&file, &cfg, now).expect("parse");
    let parse = t.elapsed();
    let t = Instant::now();
    let s = zonekeeper::import::apply_spooled(&store, &spooled, &cfg, now).expect("apply");
    let apply = t.elapsed();
    let total = parse + apply;
    let import_rss = rss_peak_mib();
    let n = s.domains;
    let size_before = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    store.compact().expect("compact");
    println!(
        "compaction {:.2?}: {} MiB -> {} MiB",
        t.elapsed(),
        size_before >> 20,
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) >> 20
    );
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let stats = store.stats().expect("stats");
    println!(
        "import: parse+validate {parse:.2?} ({:.2}x baseline parse), apply {apply:.2?} ({:.2}x raw inserts), total {total:.2?} = {:.0} domains/s",
        parse.as_secs_f64() / base_parse,
        apply.as_secs_f64() / base_write,
        n as f64 / total.as_secs_f64()
    );
    println!(
        "store: {} MiB on disk ({} bytes/domain), {} hosts; import peak RSS {import_rss} MiB (page cache {} MiB)",
        size >> 20,
        size / n.max(1) as u64,
        stats.hosts,
        cache >> 20
    );
    // Idempotent re-import: everything unchanged.
    let t = Instant::now();
    let s2 = zonekeeper::import::apply_spooled(&store, &spooled, &cfg, now).expect("reapply");
    assert_eq!(s2.unchanged, n);
    println!("re-import (all {n} unchanged): {:.2?}", t.elapsed());
}

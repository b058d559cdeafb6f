//! Import throughput and store size for a large synthetic registry.
//!
//! `cargo bench --bench import` (ZK_BENCH_DOMAINS, default 1,000,000).
//! Baselines measured in the same run: parsing the same JSON into
//! `serde_json::Value` (the floor for reading the file), and raw redb
//! inserts of the same number of 200-byte values in one transaction (the
//! floor for writing it). Bounded: one pass of each, then it stops.
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
    drop(json);

    let cfg = Config::default();
    let now = Utc::now();
    let db = dir.path().join("z.redb");
    let mut store = RedbStore::open(&db).expect("store");
    let t = Instant::now();
    let spooled = zonekeeper::import::spool_file(&file, &cfg, now).expect("parse");
    let parse = t.elapsed();
    let t = Instant::now();
    let s = zonekeeper::import::apply_spooled(&store, &spooled, &cfg, now).expect("apply");
    let apply = t.elapsed();
    let total = parse + apply;
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
    assert_eq!(s.domains, n);
    let stats = store.stats().expect("stats");
    println!(
        "baseline: serde_json::Value parse {base_parse:.2?}; raw redb {n} inserts {base_write:.2?}"
    );
    println!(
        "import: parse+validate {parse:.2?} ({:.2}x baseline parse), apply {apply:.2?} ({:.2}x raw inserts), total {total:.2?} = {:.0} domains/s",
        parse.as_secs_f64() / base_parse.as_secs_f64(),
        apply.as_secs_f64() / base_write.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    println!(
        "store: {} MiB on disk ({} bytes/domain), {} hosts; peak RSS {} MiB",
        size >> 20,
        size / n as u64,
        stats.hosts,
        rss_peak_mib()
    );
    // Idempotent re-import: everything unchanged.
    let t = Instant::now();
    let s2 = zonekeeper::import::apply_spooled(&store, &spooled, &cfg, now).expect("reapply");
    println!(
        "re-import (all unchanged: {}): {:.2?}",
        s2.unchanged,
        t.elapsed()
    );
}

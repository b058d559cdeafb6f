//! Verifier speed against real NSD on loopback.
//!
//! * `check/one_domain_two_servers`: one full check (2 servers, 9 queries
//!   each over UDP+TCP). Goal: median < 50 ms.
//! * `check/concurrent_batch`: BATCH domains checked at once against one NSD
//!   process listening on two addresses. Goal: ≥ 1,000 domain checks/s.
//!
//! After criterion, a fixed-time run prints checks/s next to two baselines
//! measured in the same run against the same NSD: `dnsperf` (if installed)
//! and a tight hickory UDP SOA query loop.
// The benches use part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use support::check::{domain, probe_cfg, target};
use support::nsd::{two_loopbacks, Nsd, ZoneSpec};
use zonekeeper::checks::{NsTarget, Profile, Verifier};
use zonekeeper::names::DomainName;

const DOMAINS: usize = 1000;
const BATCH: usize = 500;

struct Env {
    _nsd: Nsd,
    addrs: Vec<SocketAddr>,
    work: Vec<(DomainName, Vec<NsTarget>)>,
    rt: tokio::runtime::Runtime,
    verifier: Verifier,
}

fn name(i: usize) -> String {
    format!("d{i:04}.ru")
}

fn setup() -> Env {
    let (ip1, ip2) = two_loopbacks();
    let zones: Vec<(String, String)> = (0..DOMAINS)
        .map(|i| {
            let d = name(i);
            let text = ZoneSpec {
                domain: &d,
                serial: 2026112301,
                rname: &format!("hostmaster.{d}."),
                ns: vec![format!("ns1.{d}"), format!("ns2.{d}")],
                hosts: vec![(format!("ns1.{d}"), ip1), (format!("ns2.{d}"), ip2)],
            }
            .render();
            (d, text)
        })
        .collect();
    let zrefs: Vec<(&str, String)> = zones.iter().map(|(d, t)| (d.as_str(), t.clone())).collect();
    let nsd = Nsd::start_opts(&[ip1, ip2], &zrefs, 1);
    let addrs = nsd.addrs.clone();
    let work = (0..DOMAINS)
        .map(|i| {
            let d = name(i);
            (
                domain(&d),
                vec![
                    target(&format!("ns1.{d}"), &[addrs[0]]),
                    target(&format!("ns2.{d}"), &[addrs[1]]),
                ],
            )
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = probe_cfg(Duration::from_secs(2), vec![]);
    cfg.max_in_flight = 1024;
    let verifier = Verifier::new(&cfg, Profile::registry_default()).unwrap();
    Env {
        _nsd: nsd,
        addrs,
        work,
        rt,
        verifier,
    }
}

async fn batch(env_v: &Verifier, work: &[(DomainName, Vec<NsTarget>)], offset: usize) -> usize {
    let futs = (0..BATCH).map(|k| {
        let (d, t) = &work[(offset + k) % work.len()];
        env_v.check_targets(d, t)
    });
    let reports = futures::future::join_all(futs).await;
    let passed = reports.iter().filter(|r| r.passed()).count();
    assert_eq!(passed, BATCH, "{:?}", reports.iter().find(|r| !r.passed()));
    passed
}

/// Tight loop of SOA queries over UDP with `conc` sockets for `dur`.
async fn raw_qps(addr: SocketAddr, conc: usize, dur: Duration) -> f64 {
    let stop = Instant::now() + dur;
    let tasks: Vec<_> = (0..conc)
        .map(|i| {
            tokio::spawn(async move {
                let sock = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .unwrap();
                sock.connect(addr).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut n = 0u64;
                let mut id: u16 = i as u16;
                while Instant::now() < stop {
                    id = id.wrapping_add(97);
                    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
                    let q = Name::from_ascii(format!("{}.", name(n as usize % DOMAINS))).unwrap();
                    m.add_query(Query::query(q, RecordType::SOA));
                    sock.send(&m.to_vec().unwrap()).await.unwrap();
                    if let Ok(Ok(len)) =
                        tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await
                    {
                        if Message::from_vec(&buf[..len]).is_ok() {
                            n += 1;
                        }
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / dur.as_secs_f64()
}

fn dnsperf_qps(addr: SocketAddr, secs: u64) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let qf = dir.path().join("queries");
    let lines: String = (0..DOMAINS).map(|i| format!("{} SOA\n", name(i))).collect();
    std::fs::write(&qf, lines).ok()?;
    let out = Command::new("dnsperf")
        .args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("-d")
        .arg(&qf)
        .args(["-l", &secs.to_string(), "-c", "4", "-T", "1", "-q", "200"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("Queries per second:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    let env = setup();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("check");
        g.sample_size(50);
        let (d, t) = &env.work[0];
        g.bench_function("one_domain_two_servers", |b| {
            b.to_async(&env.rt).iter(|| async {
                let r = env.verifier.check_targets(d, t).await;
                assert!(r.passed(), "{r:?}");
            })
        });
        g.sample_size(10);
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut offset = 0;
        g.bench_function("concurrent_batch", |b| {
            b.to_async(&env.rt).iter(|| {
                offset += BATCH;
                batch(&env.verifier, &env.work, offset)
            })
        });
        g.finish();
    }
    c.final_summary();

    // Fixed-time figures with same-run baselines.
    let secs = 4;
    let start = Instant::now();
    let mut checks = 0usize;
    let mut offset = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        checks += env.rt.block_on(batch(&env.verifier, &env.work, offset));
        offset += BATCH;
    }
    let cps = checks as f64 / start.elapsed().as_secs_f64();
    // Every check sends 9 queries per address (3 SOA, NS, recursion probe,
    // A+AAAA for 2 in-bailiwick names), 2 addresses; 2 of the 18 are TCP.
    let qps_engine = cps * 18.0;
    let raw = env
        .rt
        .block_on(raw_qps(env.addrs[0], 64, Duration::from_secs(secs)));
    let perf = dnsperf_qps(env.addrs[0], secs);
    let single = {
        let (d, t) = &env.work[1];
        let mut v: Vec<Duration> = (0..50)
            .map(|_| {
                let s = Instant::now();
                let r = env.rt.block_on(env.verifier.check_targets(d, t));
                assert!(r.passed());
                s.elapsed()
            })
            .collect();
        v.sort();
        v[v.len() / 2]
    };
    println!("\n=== zonekeeper check throughput (same run, same NSD, {secs} s each) ===");
    println!(
        "single 2-server check, median of 50:  {:.2} ms (goal < 50 ms)",
        single.as_secs_f64() * 1e3
    );
    println!("concurrent checks ({BATCH} at once):   {cps:.0} checks/s (goal ≥ 1000) = {qps_engine:.0} queries/s");
    println!(
        "baseline hickory UDP SOA loop (64):    {raw:.0} queries/s  → engine/raw = {:.2}",
        qps_engine / raw
    );
    match perf {
        Some(p) => println!(
            "baseline dnsperf (-c 4 -q 200):        {p:.0} queries/s  → checks/s ÷ dnsperf qps = {:.4}, engine qps / dnsperf = {:.2}",
            cps / p,
            qps_engine / p
        ),
        None => println!("baseline dnsperf: not available"),
    }
}

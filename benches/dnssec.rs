//! DNSSEC check cost: one check of a signed 2-server domain with its DS
//! (the DNSSEC checks run: 4 more queries per address, DS digests and
//! signature verification) next to one check of an unsigned 2-server domain,
//! in the same run against the same NSD on loopback. Prints median and p99
//! of each and their ratio (goal: signed < 2× unsigned).
//!
//! `cargo bench --bench dnssec` (needs nsd and ldnsutils).
// The benches use part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::check::{domain, probe_cfg, target};
use support::nsd::{two_loopbacks, Nsd, ZoneSpec};
use support::signer::{self, Lab, SignOpts};
use zonekeeper::cds::{decide_cds, CdsAction};
use zonekeeper::checks::{Profile, Verifier};
use zonekeeper::model::DsRecord;

const ROUNDS: usize = 400;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    if !signer::tools_present() {
        eprintln!("dnssec bench: ldnsutils missing; nothing measured");
        return;
    }
    let (ip1, ip2) = two_loopbacks();
    let zone = |d: &str| ZoneSpec::two_servers(d, 2026112601, ip1, ip2).render();
    let lab = Lab::new("signed.ru");
    let ksk = lab.keygen("ECDSAP256SHA256", true);
    let zsk = lab.keygen("ECDSAP256SHA256", false);
    // The child also publishes CDS and CDNSKEY for its current KSK (what
    // the CDS scanner reads every scan; nothing to change).
    let signed = lab.sign(
        "z",
        &zone("signed.ru"),
        &[&ksk, &zsk],
        &SignOpts {
            extra: vec![
                format!("signed.ru. 3600 IN CDS {}", ksk.ds(2)),
                format!("signed.ru. 3600 IN CDNSKEY {}", ksk.dnskey_rdata()),
            ],
            ..Default::default()
        },
    );
    let ds: Vec<DsRecord> =
        vec![zonekeeper::registry::input::ds::parse_presentation(&ksk.ds(2)).unwrap()];
    let nsd = Nsd::start_multi(
        &[ip1, ip2],
        &[("signed.ru", signed), ("plain.ru", zone("plain.ru"))],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let v = Verifier::new(
        &probe_cfg(Duration::from_secs(2), vec![]),
        Profile::registry_default(),
    )
    .unwrap();
    let t = |d: &str| {
        vec![
            target(&format!("ns1.{d}"), &[nsd.addrs[0]]),
            target(&format!("ns2.{d}"), &[nsd.addrs[1]]),
        ]
    };
    let (sd, st) = (domain("signed.ru"), t("signed.ru"));
    let (pd, pt) = (domain("plain.ru"), t("plain.ru"));
    let mut signed_t = Vec::with_capacity(ROUNDS);
    let mut plain_t = Vec::with_capacity(ROUNDS);
    let mut scan_t = Vec::with_capacity(ROUNDS);
    rt.block_on(async {
        // Warm-up.
        for _ in 0..20 {
            v.check_targets_ds(&sd, &st, &ds).await;
            v.check_targets(&pd, &pt).await;
        }
        for _ in 0..ROUNDS {
            let s = Instant::now();
            let r = v.check_targets_ds(&sd, &st, &ds).await;
            signed_t.push(s.elapsed());
            assert!(r.passed() && r.findings.is_empty(), "{r:?}");
            let s = Instant::now();
            let r = v.check_targets(&pd, &pt).await;
            plain_t.push(s.elapsed());
            assert!(r.passed(), "{r:?}");
            // One domain of a CDS scan: probe (6 DO queries per address)
            // and decide (chain, CDS/CDNSKEY signatures, consistency).
            let s = Instant::now();
            let facts = v.scan_cds(&sd, &st).await;
            let a = decide_cds(&ds, &facts, v.profile().dnssec(), 2, chrono::Utc::now());
            scan_t.push(s.elapsed());
            assert!(matches!(a, CdsAction::Keep(_)), "{a:?}");
        }
    });
    let (sm, s99) = (pct(&mut signed_t, 0.5), pct(&mut signed_t, 0.99));
    let (pm, p99) = (pct(&mut plain_t, 0.5), pct(&mut plain_t, 0.99));
    let (cm, c99) = (pct(&mut scan_t, 0.5), pct(&mut scan_t, 0.99));
    println!("dnssec/unsigned_check_two_servers   median {pm:>10.3?}  p99 {p99:>10.3?}  ({ROUNDS} checks)");
    println!("dnssec/signed_check_two_servers_ds  median {sm:>10.3?}  p99 {s99:>10.3?}  ({ROUNDS} checks)");
    println!("dnssec/cds_scan_one_domain          median {cm:>10.3?}  p99 {c99:>10.3?}  ({ROUNDS} scans, CDS+CDNSKEY)");
    println!(
        "dnssec/ratio signed/unsigned        median {:.2}x  p99 {:.2}x  (goal < 2x)",
        sm.as_secs_f64() / pm.as_secs_f64(),
        s99.as_secs_f64() / p99.as_secs_f64()
    );
}

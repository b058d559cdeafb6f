//! DNSSEC checks against real signed zones: lab zones signed at test time
//! with `ldns-signzone`, served by NSD on loopback, judged by the verifier
//! with a DS set, and cross-checked with a real validator
//! (`ldns-verify-zone -k DS`).

use crate::support;
use std::net::Ipv4Addr;
use std::time::Duration;

use support::check::*;
use support::nsd::{two_loopbacks, Nsd, ZoneSpec};
use support::sched::ds;
use support::signer::{Key, Lab, SignOpts};
use zonekeeper::checks::{NsTarget, Profile, Verifier};
use zonekeeper::model::{CheckReport, DsRecord, Severity, Verdict};

const TIMEOUT: Duration = Duration::from_secs(2);
const ZONE: &str = "example.ru";
const NS: [&str; 2] = ["ns1.example.ru", "ns2.example.ru"];

fn unsigned(ip1: Ipv4Addr, ip2: Ipv4Addr) -> String {
    ZoneSpec {
        domain: ZONE,
        serial: 2026112601,
        rname: "hostmaster.example.ru.",
        ns: NS.iter().map(|s| s.to_string()).collect(),
        hosts: vec![(NS[0].into(), ip1), (NS[1].into(), ip2)],
    }
    .render()
}

struct Lab2 {
    lab: Lab,
    ip1: Ipv4Addr,
    ip2: Ipv4Addr,
    plain: String,
}

fn lab() -> Option<Lab2> {
    if !signer::tools_present() {
        eprintln!("ldnsutils missing: skipped (fails under CI=true)");
        return None;
    }
    let (ip1, ip2) = two_loopbacks();
    Some(Lab2 {
        lab: Lab::new(ZONE),
        ip1,
        ip2,
        plain: unsigned(ip1, ip2),
    })
}

use support::signer;

/// Serve `z1` on ip1 and `z2` on ip2 and check with `ds` under `profile`.
async fn check_with(
    l: &Lab2,
    z1: &str,
    z2: &str,
    ds_set: &[&str],
    profile: Profile,
) -> CheckReport {
    let a = Nsd::start(l.ip1, &[(ZONE, z1.to_string())]);
    let b = Nsd::start(l.ip2, &[(ZONE, z2.to_string())]);
    let v = Verifier::new(&probe_cfg(TIMEOUT, vec![]), profile).unwrap();
    let targets: Vec<NsTarget> = vec![target(NS[0], &[a.addr]), target(NS[1], &[b.addr])];
    let set: Vec<DsRecord> = ds_set.iter().map(|d| ds(d)).collect();
    v.check_targets_ds(&domain(ZONE), &targets, &set).await
}

async fn check(l: &Lab2, z1: &str, z2: &str, ds_set: &[&str]) -> CheckReport {
    check_with(l, z1, z2, ds_set, Profile::registry_default()).await
}

fn all_ids(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r.findings.iter().map(|f| f.id.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// The DNSSEC ids that are about the chain of trust itself (what a
/// validator judges), as opposed to registry policy.
const CRYPTO: [&str; 7] = [
    "DNSKEY_PRESENT",
    "DS_MATCHES_DNSKEY",
    "DNSKEY_SIGNED_BY_DS",
    "RRSIG_SOA",
    "RRSIG_NS",
    "RRSIG_VALID",
    "DENIAL_OF_EXISTENCE",
];

fn chain_ok(r: &CheckReport) -> bool {
    !r.findings
        .iter()
        .any(|f| f.severity == Severity::Error && CRYPTO.contains(&f.id.as_str()))
}

fn ksk(l: &Lab2) -> Key {
    l.lab.keygen("ECDSAP256SHA256", true)
}

#[tokio::test]
async fn good_signed_zone_with_matching_ds_passes_and_validates() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    let d = k.ds(2);
    let r = check(&l, &signed, &signed, &[&d]).await;
    assert_report(&r, Verdict::Pass, &[]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(l.lab.validator_accepts("z.signed", &[&d]));
    assert!(chain_ok(&r));

    // The same signed zone checked without DS: a notice only.
    let r = check(&l, &signed, &signed, &[]).await;
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(all_ids(&r), vec!["DNSSEC_NO_DS".to_string()]);
}

#[tokio::test]
async fn ds_for_a_key_not_in_the_zone_fails_like_the_validator() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let other = ksk(&l);
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    let d = other.ds(2);
    let r = check(&l, &signed, &signed, &[&d]).await;
    assert_report(
        &r,
        Verdict::Fail,
        &["DS_MATCHES_DNSKEY", "DNSKEY_SIGNED_BY_DS"],
    );
    // Reported once for the zone (both servers agree), not per server.
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "DS_MATCHES_DNSKEY")
        .unwrap();
    assert_eq!(f.server, None, "{f:?}");
    assert!(!l.lab.validator_accepts("z.signed", &[&d]));
    assert!(!chain_ok(&r));

    // A DS whose tag and algorithm match but whose digest does not.
    let good = k.ds(2);
    let mut parts: Vec<String> = good.split(' ').map(String::from).collect();
    let last = parts.last_mut().unwrap();
    let flipped = if last.starts_with('0') { "1" } else { "0" };
    last.replace_range(0..1, flipped);
    let bad = parts.join(" ");
    let r = check(&l, &signed, &signed, &[&bad]).await;
    assert_report(
        &r,
        Verdict::Fail,
        &["DS_MATCHES_DNSKEY", "DNSKEY_SIGNED_BY_DS"],
    );
    assert!(!l.lab.validator_accepts("z.signed", &[&bad]));
}

#[tokio::test]
async fn expired_and_expiring_signatures() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let expired = l.lab.sign("old", &l.plain, &[&k], &SignOpts::expired());
    let d = k.ds(2);
    let r = check(&l, &expired, &expired, &[&d]).await;
    assert_report(
        &r,
        Verdict::Fail,
        &[
            "RRSIG_VALID",
            "DNSKEY_SIGNED_BY_DS",
            "RRSIG_SOA",
            "RRSIG_NS",
            "DENIAL_OF_EXISTENCE",
        ],
    );
    assert!(r
        .findings
        .iter()
        .any(|f| f.id == "RRSIG_VALID" && f.message.contains("expired 2020-02-01")));
    assert!(!l.lab.validator_accepts("old.signed", &[&d]));

    // Valid for one more day: a warning under the 3-day margin.
    let soon = (chrono::Utc::now() + chrono::Duration::days(1)).timestamp();
    let soon = soon.to_string();
    let expiring = l.lab.sign(
        "soon",
        &l.plain,
        &[&k],
        &SignOpts {
            expiration: Some(&soon),
            ..Default::default()
        },
    );
    let r = check(&l, &expiring, &expiring, &[&d]).await;
    assert_report(&r, Verdict::Pass, &["RRSIG_EXPIRY"]);
    assert!(l.lab.validator_accepts("soon.signed", &[&d]));

    // Not valid yet (inception in the future): absurd validity is a
    // finding, not a panic.
    let future = l.lab.sign(
        "future",
        &l.plain,
        &[&k],
        &SignOpts {
            inception: Some("20300101000000"),
            expiration: Some("20300201000000"),
            ..Default::default()
        },
    );
    let r = check(&l, &future, &future, &[&d]).await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r
        .findings
        .iter()
        .any(|f| f.id == "RRSIG_VALID" && f.message.contains("not valid yet")));
    assert!(!l.lab.validator_accepts("future.signed", &[&d]));
}

/// Absurd validity periods: expiration before inception, and a period
/// longer than RFC 4034 §3.1.5's serial arithmetic can express (68 years):
/// a clear finding each, no panic, and the real validator refuses them too.
#[tokio::test]
async fn absurd_signature_validity_is_a_finding() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let d = k.ds(2);
    for (file, inception, expiration) in [
        ("backwards", "20300101000000", "20200101000000"),
        ("forever", "19800101000000", "20500101000000"),
    ] {
        let z = l.lab.sign(
            file,
            &l.plain,
            &[&k],
            &SignOpts {
                inception: Some(inception),
                expiration: Some(expiration),
                ..Default::default()
            },
        );
        let r = check(&l, &z, &z, &[&d]).await;
        assert_eq!(r.verdict, Verdict::Fail, "{file}: {r:?}");
        assert!(
            r.findings.iter().any(|f| f.id == "RRSIG_VALID"
                && (f.message.contains("not after inception")
                    || f.message.contains("expired")
                    || f.message.contains("not valid yet"))),
            "{file}: {r:?}"
        );
        assert!(
            !l.lab.validator_accepts(&format!("{file}.signed"), &[&d]),
            "{file}"
        );
    }
}

#[tokio::test]
async fn zone_signed_on_one_server_only_fails_for_the_other() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    l.lab.write("plain", &l.plain);
    let d = k.ds(2);
    let r = check(&l, &signed, &l.plain, &[&d]).await;
    assert_report(
        &r,
        Verdict::Fail,
        &[
            "DNSKEY_PRESENT",
            "RRSIG_SOA",
            "RRSIG_NS",
            "DENIAL_OF_EXISTENCE",
        ],
    );
    // Every DNSSEC error names the unsigned server.
    for f in r.findings.iter().filter(|f| f.severity == Severity::Error) {
        assert_eq!(f.server.as_deref(), Some(NS[1]), "{f:?}");
    }
    assert!(l.lab.validator_accepts("z.signed", &[&d]));
    assert!(!l.lab.validator_accepts("plain", &[&d]));
}

#[tokio::test]
async fn ds_for_an_unsigned_zone_fails() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    l.lab.write("plain", &l.plain);
    let d = k.ds(2);
    let r = check(&l, &l.plain, &l.plain, &[&d]).await;
    assert_report(&r, Verdict::Fail, &["DNSKEY_PRESENT"]);
    assert!(!l.lab.validator_accepts("plain", &[&d]));
}

#[tokio::test]
async fn registry_policy_refuses_sha1_ds_and_unaccepted_algorithms() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    // SHA-1 DS: the chain is fine (the validator accepts it), the registry
    // refuses the digest type (RFC 8624 §3.3).
    let d1 = k.ds(1);
    let r = check(&l, &signed, &signed, &[&d1]).await;
    assert_report(&r, Verdict::Fail, &["DS_DIGEST_TYPE"]);
    assert!(chain_ok(&r));
    assert!(l.lab.validator_accepts("z.signed", &[&d1]));

    // RSASHA512 (10) signs fine but is not in the default accepted list.
    let rsa = l.lab.keygen("RSASHA512", true);
    let rsa_signed = l.lab.sign("rsa", &l.plain, &[&rsa], &SignOpts::default());
    let d = rsa.ds(2);
    let r = check(&l, &rsa_signed, &rsa_signed, &[&d]).await;
    assert_report(&r, Verdict::Fail, &["DS_ALGORITHM"]);
    assert!(chain_ok(&r));
    assert!(l.lab.validator_accepts("rsa.signed", &[&d]));

    // A profile that accepts it passes the same zone.
    let p = Profile::from_toml("[dnssec]\nalgorithms = [8, 10, 13]\n").unwrap();
    let r = check_with(&l, &rsa_signed, &rsa_signed, &[&d], p).await;
    assert_report(&r, Verdict::Pass, &[]);
}

#[tokio::test]
async fn nsec3_parameters_per_rfc_9276() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let d = k.ds(2);
    let zero = l.lab.sign(
        "n0",
        &l.plain,
        &[&k],
        &SignOpts {
            nsec3: Some((0, "")),
            ..Default::default()
        },
    );
    let r = check(&l, &zero, &zero, &[&d]).await;
    assert_report(&r, Verdict::Pass, &[]);
    assert!(l.lab.validator_accepts("n0.signed", &[&d]));

    let salted = l.lab.sign(
        "n5",
        &l.plain,
        &[&k],
        &SignOpts {
            nsec3: Some((5, "abcd")),
            ..Default::default()
        },
    );
    let r = check(&l, &salted, &salted, &[&d]).await;
    assert_report(&r, Verdict::Pass, &["NSEC3_PARAMS"]);

    let heavy = l.lab.sign(
        "n200",
        &l.plain,
        &[&k],
        &SignOpts {
            nsec3: Some((200, "")),
            ..Default::default()
        },
    );
    let r = check(&l, &heavy, &heavy, &[&d]).await;
    assert_report(&r, Verdict::Fail, &["NSEC3_ITERATIONS"]);
}

#[tokio::test]
async fn hostile_key_sets_and_budgets_give_findings_not_panics() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let d = k.ds(2);
    // 400 extra DNSKEYs (random 64-byte ECDSA-shaped keys) in the RRset.
    let extra: Vec<String> = (0..400u32)
        .map(|i| {
            let mut b = [0u8; 64];
            for (j, x) in b.iter_mut().enumerate() {
                *x = (i as u8)
                    .wrapping_mul(31)
                    .wrapping_add(j as u8)
                    .wrapping_mul(7)
                    ^ (i >> 8) as u8;
            }
            use base64_lite::encode;
            format!("{ZONE}. 3600 IN DNSKEY 256 3 13 {}", encode(&b))
        })
        .collect();
    let many = l.lab.sign(
        "many",
        &l.plain,
        &[&k],
        &SignOpts {
            extra,
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let r = check(&l, &many, &many, &[&d]).await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(all_ids(&r).contains(&"DNSSEC_LIMITS".to_string()), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A tiny crypto budget on a good zone: a limits finding, no panic.
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    let p = Profile::from_toml("[dnssec]\nmax_crypto_ops = 2\n").unwrap();
    let r = check_with(&l, &signed, &signed, &[&d], p).await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(all_ids(&r).contains(&"DNSSEC_LIMITS".to_string()), "{r:?}");
}

/// Minimal base64 (standard alphabet) for the lab's fake keys.
mod base64_lite {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(b: &[u8]) -> String {
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

/// `zonekeeper check --ds` (docs/cli.md): exit 0 with the matching DS, 1 with a
/// DS of another key, 2 for a malformed DS.
#[test]
fn cli_check_with_ds() {
    let Some(l) = lab() else { return };
    let k = ksk(&l);
    let signed = l.lab.sign("z", &l.plain, &[&k], &SignOpts::default());
    let a = Nsd::start(l.ip1, &[(ZONE, signed.clone())]);
    let b = Nsd::start(l.ip2, &[(ZONE, signed)]);
    let cfg = l.lab.dir.path().join("zk.toml");
    std::fs::write(
        &cfg,
        format!(
            "zones = [\"ru\"]\n[probe]\ntimeout = \"2s\"\nresolvers = [\"{}\"]\n",
            support::dns::closed_port()
        ),
    )
    .unwrap();
    let run = |ds: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
            .arg("--config")
            .arg(&cfg)
            .args(["check", ZONE, "--allow-private", "--json"])
            .args(["--ns", &format!("{}/{}", NS[0], a.addr)])
            .args(["--ns", &format!("{}/{}", NS[1], b.addr)])
            .args(["--ds", ds])
            .output()
            .unwrap()
    };
    let good = k.ds(2);
    let out = run(&good);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let other = ksk(&l).ds(2);
    let out = run(&other);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "DS_MATCHES_DNSKEY"));
    let out = run("12345 13 2 abcd");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ds") && err.contains("needs 32"), "{err}");
}

/// Two servers serving the zone signed with different keys: the DNSKEY
/// RRsets differ, and the DS matches only one server's key.
#[tokio::test]
async fn servers_with_different_keys_are_inconsistent() {
    let Some(l) = lab() else { return };
    let k1 = ksk(&l);
    let k2 = ksk(&l);
    let z1 = l.lab.sign("z1", &l.plain, &[&k1], &SignOpts::default());
    let z2 = l.lab.sign("z2", &l.plain, &[&k2], &SignOpts::default());
    let d = k1.ds(2);
    let r = check(&l, &z1, &z2, &[&d]).await;
    assert_report(
        &r,
        Verdict::Fail,
        &[
            "DNSKEY_CONSISTENT",
            "DS_MATCHES_DNSKEY",
            "DNSKEY_SIGNED_BY_DS",
        ],
    );
    for id in ["DS_MATCHES_DNSKEY", "DNSKEY_SIGNED_BY_DS"] {
        let f = r.findings.iter().find(|f| f.id == id).unwrap();
        assert_eq!(f.server.as_deref(), Some(NS[1]), "{f:?}");
    }
    assert!(l.lab.validator_accepts("z1.signed", &[&d]));
    assert!(!l.lab.validator_accepts("z2.signed", &[&d]));
}

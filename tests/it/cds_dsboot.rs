//! RFC 9615 authenticated bootstrapping against a private DNSSEC tree on
//! loopback NSD: a signed private root `.`, `test.` and the nameserver
//! operator's zone `op.test.` (all signed by `ldns-signzone`, DS records in
//! each parent), which publishes `_dsboot.<child>._signal.<ns>` CDS
//! records. The signaling records are validated by hickory from the
//! private root's key (`dnssec.trust_anchors`); an unsigned delegation is
//! bootstrapped at once only when every nameserver's signal validates and
//! equals the child's apex CDS.

use crate::support;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use support::nsd::{two_loopbacks, Nsd};
use support::sched::*;
use support::signer::{self, Key, Lab, SignOpts};
use zonekeeper::app::App;
use zonekeeper::checks::Verifier;
use zonekeeper::clock::{Clock, SystemClock};

fn soa(origin: &str) -> String {
    format!("$TTL 3600\n{origin} IN SOA ns1.op.test. hostmaster.op.test. 1 3600 900 1209600 3600\n")
}

/// A child zone served by ns1/ns2.op.test, signed by `k`, with `cds` at
/// its apex.
fn child(lab: &Lab, k: &Key, cds: &str, cdnskey: bool) -> String {
    let z = &lab.zone;
    let op = if z == "ins.ru" {
        "plain.test"
    } else {
        "op.test"
    };
    let text = format!(
        "{}{z}. IN NS ns1.{op}.\n{z}. IN NS ns2.{op}.\n{z}. IN A 192.0.2.1\n",
        soa(&format!("{z}."))
    );
    lab.sign(
        "z",
        &text,
        &[k],
        &SignOpts {
            extra: std::iter::once(format!("{z}. 3600 IN CDS {cds}"))
                .chain(cdnskey.then(|| format!("{z}. 3600 IN CDNSKEY {}", k.dnskey_rdata())))
                .collect(),
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_bootstrap_from_signals_in_a_validated_zone() {
    if !signer::tools_present() {
        eprintln!("ldnsutils missing: skipped (fails under CI=true)");
        return;
    }
    let (ip1, ip2) = two_loopbacks();
    // The children.
    let mut labs = Vec::new();
    for n in ["boot.ru", "half.ru", "forged.ru", "ins.ru"] {
        let lab = Lab::new(n);
        let k = lab.keygen("ECDSAP256SHA256", true);
        labs.push((n, lab, k));
    }
    let key = |n: &str| &labs.iter().find(|l| l.0 == n).unwrap().2;
    let other = labs[0].1.keygen("ECDSAP256SHA256", true);
    let mut zones: Vec<(&str, String)> = Vec::new();
    for (n, lab, k) in &labs {
        zones.push((n, child(lab, k, &k.ds(2), *n == "boot.ru")));
    }
    // The operator's zone with the signaling records: boot.ru under both
    // nameservers; half.ru under ns1 only; forged.ru names another key.
    let op = Lab::new("op.test");
    let kop = op.keygen("ECDSAP256SHA256", true);
    let mut op_text = format!(
        "{}op.test. IN NS ns1.op.test.\nop.test. IN NS ns2.op.test.\nns1.op.test. IN A {ip1}\nns2.op.test. IN A {ip2}\n",
        soa("op.test.")
    );
    for (n, cds, servers) in [
        ("boot.ru", key("boot.ru").ds(2), &["ns1", "ns2"][..]),
        ("half.ru", key("half.ru").ds(2), &["ns1"][..]),
        ("forged.ru", other.ds(2), &["ns1", "ns2"][..]),
    ] {
        for s in servers {
            op_text.push_str(&format!(
                "_dsboot.{n}._signal.{s}.op.test. 3600 IN CDS {cds}\n"
            ));
        }
    }
    // boot.ru signals its CDNSKEY too (RFC 9615 §3: both RRsets, if any).
    for s in ["ns1", "ns2"] {
        op_text.push_str(&format!(
            "_dsboot.boot.ru._signal.{s}.op.test. 3600 IN CDNSKEY {}\n",
            key("boot.ru").dnskey_rdata()
        ));
    }
    let op_z = op.sign("z", &op_text, &[&kop], &SignOpts::default());
    // An operator zone that is not signed (delegated without DS): its
    // signals for ins.ru are insecure, so not authenticated.
    let mut plain_z = format!(
        "{}plain.test. IN NS ns1.plain.test.\nns1.plain.test. IN A {ip1}\nns2.plain.test. IN A {ip2}\n",
        soa("plain.test.")
    );
    for s in ["ns1", "ns2"] {
        plain_z.push_str(&format!(
            "_dsboot.ins.ru._signal.{s}.plain.test. 3600 IN CDS {}\n",
            key("ins.ru").ds(2)
        ));
    }
    // test. delegates op.test. with its DS; the private root delegates test.
    let tld = Lab::new("test");
    let ktld = tld.keygen("ECDSAP256SHA256", true);
    let tld_text = format!(
        "{}test. IN NS ns1.op.test.\nop.test. IN NS ns1.op.test.\nop.test. IN NS ns2.op.test.\nop.test. IN DS {}\nns1.op.test. IN A {ip1}\nns2.op.test. IN A {ip2}\nplain.test. IN NS ns1.plain.test.\nns1.plain.test. IN A {ip1}\n",
        soa("test."),
        kop.ds(2)
    );
    let tld_z = tld.sign("z", &tld_text, &[&ktld], &SignOpts::default());
    let root = Lab::new(".");
    let kroot = root.keygen("ECDSAP256SHA256", true);
    let root_text = format!(
        "{}. IN NS ns1.op.test.\ntest. IN NS ns1.op.test.\ntest. IN DS {}\nns1.op.test. IN A {ip1}\n",
        soa("."),
        ktld.ds(2)
    );
    let root_z = root.sign("z", &root_text, &[&kroot], &SignOpts::default());
    zones.push(("op.test", op_z));
    zones.push(("plain.test", plain_z));
    zones.push(("test", tld_z));
    zones.push((".", root_z));
    let nsd = Nsd::start_multi(&[ip1, ip2], &zones);

    // Trust anchors: the private root's key, and (for the negative case) a
    // key that signs nothing.
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("root.key");
    std::fs::write(
        &anchor,
        format!(". 3600 IN DNSKEY {}\n", kroot.dnskey_rdata()),
    )
    .unwrap();
    let wrong = dir.path().join("wrong.key");
    std::fs::write(
        &wrong,
        format!(". 3600 IN DNSKEY {}\n", other.dnskey_rdata()),
    )
    .unwrap();

    let mut cfg = fast_config();
    cfg.probe.port = nsd.addr.port();
    cfg.probe.timeout = Duration::from_millis(800);
    cfg.probe.resolvers = vec![SocketAddr::new(IpAddr::V4(ip1), nsd.addr.port())];
    cfg.zones = vec!["ru".into()];
    cfg.dnssec.authenticated_bootstrap = true;
    cfg.dnssec.trust_anchors = Some(wrong);
    let glue = vec![
        ns("ns1.op.test", &[IpAddr::V4(ip1)]),
        ns("ns2.op.test", &[IpAddr::V4(ip2)]),
    ];
    let now = SystemClock.now();
    let plain_glue = vec![
        ns("ns1.plain.test", &[IpAddr::V4(ip1)]),
        ns("ns2.plain.test", &[IpAddr::V4(ip2)]),
    ];
    let doms = ["boot.ru", "half.ru", "forged.ru", "ins.ru"]
        .iter()
        .map(|n| {
            let g = if *n == "ins.ru" { &plain_glue } else { &glue };
            domain(n, g.clone(), now)
        })
        .collect();
    let db = dir.path().join("z.redb");
    let store = delegated_store(&db, doms, cfg.delegation.test_window, now);

    // A trust anchor that does not sign the tree: nothing validates.
    let app = App::new(cfg.clone(), store.clone(), Arc::new(SystemClock)).unwrap();
    let v = Verifier::from_config(app.config()).unwrap();
    let sum = zonekeeper::cds::scan_once(&app, &v).await.unwrap();
    assert!(sum.bootstrapped.is_empty(), "{sum:?}");
    assert_eq!(sum.refused.len(), 4, "{sum:?}");
    let boot_why = &sum.refused.iter().find(|r| r.0 == "boot.ru").unwrap().1;
    assert!(boot_why.contains("does not validate"), "{boot_why}");
    drop(app);

    // The private root's key: boot.ru at once, the others refused with why.
    cfg.dnssec.trust_anchors = Some(anchor);
    let app = App::new(cfg, store, Arc::new(SystemClock)).unwrap();
    let sum = zonekeeper::cds::scan_once(&app, &v).await.unwrap();
    assert_eq!(sum.bootstrapped, vec!["boot.ru".to_string()], "{sum:?}");
    assert_eq!(sum.authenticated, vec!["boot.ru".to_string()], "{sum:?}");
    let refused: std::collections::BTreeMap<_, _> = sum.refused.iter().cloned().collect();
    assert!(
        refused["half.ru"].contains("no CDS or CDNSKEY at _dsboot.half.ru._signal.ns2.op.test"),
        "{refused:?}"
    );
    assert!(refused["forged.ru"].contains("differ"), "{refused:?}");
    assert!(
        refused["ins.ru"].contains("does not validate (Insecure)"),
        "{refused:?}"
    );
    assert_eq!(
        app.store().domain("boot.ru").unwrap().unwrap().ds,
        vec![ds(&key("boot.ru").ds(2))]
    );
    let last = app.store().history("boot.ru", 10).unwrap().pop().unwrap();
    assert!(last.reason.contains("RFC 9615"), "{last:?}");
    assert!(app
        .store()
        .feed("REGRU-RU", 0, 1000)
        .unwrap()
        .iter()
        .any(|e| e.domain == "boot.ru"));
    for n in ["half.ru", "forged.ru", "ins.ru"] {
        assert!(app.store().domain(n).unwrap().unwrap().ds.is_empty(), "{n}");
    }

    // With a delay configured too, the unauthenticated ones wait it out
    // (RFC 8078 §3.3) instead of being refused.
    let mut cfg = (**app.config()).clone();
    cfg.dnssec.cds_bootstrap_delay = Some(Duration::from_secs(86400));
    let store = app.store().clone();
    drop(app);
    let app = App::new(cfg, store, Arc::new(SystemClock)).unwrap();
    let sum = zonekeeper::cds::scan_once(&app, &v).await.unwrap();
    assert!(
        sum.refused.is_empty() && sum.bootstrapped.is_empty(),
        "{sum:?}"
    );
    assert_eq!(sum.pending, 3, "{sum:?}");
    assert!(app.store().cds_sighting("half.ru").unwrap().is_some());
}

//! The CDS scanner (RFC 7344/8078) against real signed zones on NSD: a CDS
//! set signed by the current keys replaces the DS set (key rollover), a
//! delete CDS removes it, and CDS that cannot be trusted changes nothing.
//! Every change is in the history.

use crate::support;
use std::net::IpAddr;
use std::sync::Arc;

use support::nsd::{two_loopbacks, Nsd, ZoneSpec};
use support::sched::*;
use support::signer::{self, Lab, SignOpts};
use zonekeeper::app::App;
use zonekeeper::checks::Verifier;
use zonekeeper::clock::{Clock, SystemClock};
use zonekeeper::model::DelegationState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cds_rollover_delete_and_untrusted_cds() {
    if !signer::tools_present() {
        eprintln!("ldnsutils missing: skipped (fails under CI=true)");
        return;
    }
    let (ip1, ip2) = two_loopbacks();
    let zone = |d: &str| ZoneSpec::two_servers(d, 1, ip1, ip2).render();
    // roll.ru: current KSK k1 (its DS is registered), new KSK k2; both
    // sign, and the CDS announces k2 only.
    let roll = Lab::new("roll.ru");
    let k1 = roll.keygen("ECDSAP256SHA256", true);
    let k2 = roll.keygen("ECDSAP256SHA256", true);
    let cds_k2 = format!("roll.ru. 3600 IN CDS {}", k2.ds(2));
    let roll_z = roll.sign(
        "z",
        &zone("roll.ru"),
        &[&k1, &k2],
        &SignOpts::with_extra(cds_k2),
    );
    // gone.ru: a delete CDS (RFC 8078 §4).
    let gone = Lab::new("gone.ru");
    let g = gone.keygen("ECDSAP256SHA256", true);
    let gone_z = gone.sign(
        "z",
        &zone("gone.ru"),
        &[&g],
        &SignOpts::with_extra("gone.ru. 3600 IN CDS 0 0 0 00".to_string()),
    );
    // forged.ru: CDS for a new key, but the registered DS matches no key
    // of the zone: the CDS cannot be trusted.
    let forged = Lab::new("forged.ru");
    let f = forged.keygen("ECDSAP256SHA256", true);
    let stranger = forged.keygen("ECDSAP256SHA256", true);
    let forged_z = forged.sign(
        "z",
        &zone("forged.ru"),
        &[&f],
        &SignOpts::with_extra(format!("forged.ru. 3600 IN CDS {}", f.ds(2))),
    );
    // plain.ru: unsigned, publishes a CDS, has no DS: no bootstrapping.
    let plain_z = format!("{}plain.ru. 3600 IN CDS {}\n", zone("plain.ru"), f.ds(2));
    let nsd = Nsd::start_multi(
        &[ip1, ip2],
        &[
            ("roll.ru", roll_z),
            ("gone.ru", gone_z),
            ("forged.ru", forged_z),
            ("plain.ru", plain_z),
        ],
    );

    let cfg = cds_config(nsd.addr.port());
    let glue = |d: &str| {
        vec![
            ns(&format!("ns1.{d}"), &[IpAddr::V4(ip1)]),
            ns(&format!("ns2.{d}"), &[IpAddr::V4(ip2)]),
        ]
    };
    let now = SystemClock.now();
    let mut doms = Vec::new();
    for (name, set) in [
        ("roll.ru", vec![ds(&k1.ds(2))]),
        ("gone.ru", vec![ds(&g.ds(2))]),
        ("forged.ru", vec![ds(&stranger.ds(2))]),
        ("plain.ru", vec![]),
    ] {
        let mut d = domain(name, glue(name), now);
        d.ds = set;
        doms.push(d);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = delegated_store(
        &dir.path().join("z.redb"),
        doms,
        cfg.delegation.test_window,
        now,
    );
    let app = App::new(cfg, store, Arc::new(SystemClock)).unwrap();
    let verifier = Verifier::from_config(app.config()).unwrap();

    let sum = zonekeeper::cds::scan_once(&app, &verifier).await.unwrap();
    assert_eq!(sum.scanned, 3, "{sum:?}");
    assert_eq!(sum.replaced, vec!["roll.ru".to_string()], "{sum:?}");
    assert_eq!(sum.deleted, vec!["gone.ru".to_string()], "{sum:?}");

    let d = app.store().domain("roll.ru").unwrap().unwrap();
    assert_eq!(d.ds, vec![ds(&k2.ds(2))]);
    let h = app.store().history("roll.ru", 10).unwrap();
    let last = h.last().unwrap();
    assert!(
        last.reason.starts_with("DS set changed via CDS"),
        "{last:?}"
    );
    // Tested while the zone keeps the current DS (the domain stays
    // delegated).
    assert_eq!(last.to, DelegationState::Delegated);
    let rec = app.store().delegation("roll.ru").unwrap().unwrap();
    assert_eq!(
        rec.pending.as_ref().map(|p| p.state),
        Some(DelegationState::Testing)
    );

    let d = app.store().domain("gone.ru").unwrap().unwrap();
    assert!(d.ds.is_empty());
    assert!(app
        .store()
        .history("gone.ru", 10)
        .unwrap()
        .last()
        .unwrap()
        .reason
        .starts_with("DS set changed via CDS"));

    assert_eq!(
        app.store().domain("forged.ru").unwrap().unwrap().ds,
        vec![ds(&stranger.ds(2))]
    );
    assert!(app
        .store()
        .domain("plain.ru")
        .unwrap()
        .unwrap()
        .ds
        .is_empty());

    // A second scan: roll.ru's DS is the CDS set now, gone.ru has no DS: nothing.
    let sum = zonekeeper::cds::scan_once(&app, &verifier).await.unwrap();
    assert!(sum.replaced.is_empty() && sum.deleted.is_empty(), "{sum:?}");
}

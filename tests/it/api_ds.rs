//! DS sets through the registrar API (`PUT`/`DELETE /api/v1/domains/{name}/ds`),
//! published in RDAP `secureDNS` and WHOIS, and treated like a nameserver
//! change by the delegation state machine.

use crate::support;
use serde_json::json;
use support::api::{send, token, Server};
use zonekeeper::model::{DelegationRecord, DelegationState};

const REGRU: &str = "REGRU-RU";

fn digest(b: u8, n: usize) -> String {
    hex::encode(vec![b; n])
}

fn ds_body() -> serde_json::Value {
    json!({"ds": [
        {"key_tag": 2371, "algorithm": 13, "digest_type": 2, "digest": digest(0xab, 32)},
        {"key_tag": 2371, "algorithm": 13, "digest_type": 4, "digest": digest(0xcd, 48).to_uppercase()}
    ]})
}

/// A domain of REGRU-RU with nameservers, made delegated.
fn delegated(s: &Server) -> String {
    let own = s
        .domains_of(REGRU, 10)
        .into_iter()
        .find(|d| !s.store().domain(d).unwrap().unwrap().nameservers.is_empty())
        .unwrap();
    let old = s.store().delegation(&own).unwrap().unwrap();
    let rec = DelegationRecord {
        state: DelegationState::Delegated,
        delegated_at: Some(s.app.now()),
        ..old.clone()
    };
    assert!(s
        .store()
        .put_delegation(&own, &old.ns_fingerprint, &rec, None, None)
        .unwrap());
    own
}

#[tokio::test]
async fn ds_declaration_restarts_testing_and_is_published() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    let own = delegated(&s);
    let fp_before = s.store().delegation(&own).unwrap().unwrap().ns_fingerprint;
    let d = s.store().domain(&own).unwrap().unwrap();
    assert_eq!(
        fp_before,
        zonekeeper::model::ns_fingerprint(&d.nameservers),
        "without DS the fingerprint is the NS fingerprint of old"
    );

    // RDAP before: unsigned.
    let (st, r) = send(s.get(&format!("/rdap/domain/{own}"), None)).await;
    assert_eq!(st, 200);
    assert_eq!(r["secureDNS"], json!({"delegationSigned": false}));

    let path = format!("/api/v1/domains/{own}/ds");
    let (st, v) = send(s.put_json(&path, &tok, ds_body())).await;
    assert_eq!(st, 200, "{v}");
    // A delegated domain stays delegated (on its published, unsigned set)
    // while the new DS set is tested.
    assert_eq!(v["state"], "delegated", "{v}");
    assert_eq!(v["in_zone"], true, "{v}");
    assert_eq!(
        v["pending"]["state"], "testing",
        "a DS change is tested: {v}"
    );
    assert_eq!(v["ds"].as_array().unwrap().len(), 2);
    assert_eq!(v["ds"][1]["digest"], digest(0xcd, 48), "stored lower-case");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"].as_str().unwrap().contains("with 2 DS"),
        "{last}"
    );
    let rec = s.store().delegation(&own).unwrap().unwrap();
    assert_eq!(rec.ns_fingerprint, fp_before, "the zone keeps the old set");
    let d = s.store().domain(&own).unwrap().unwrap();
    assert_ne!(rec.declared_fingerprint(), fp_before);
    assert_eq!(rec.declared_fingerprint(), d.ns_fingerprint());
    // Nothing signed is published before the new set passes.
    let (_, r) = send(s.get(&format!("/rdap/domain/{own}"), None)).await;
    assert_eq!(r["secureDNS"], json!({"delegationSigned": false}));

    // The same set again, reordered: the window stays.
    s.clock.advance(std::time::Duration::from_secs(60));
    let mut again = ds_body();
    again["ds"].as_array_mut().unwrap().reverse();
    let (st, v2) = send(s.put_json(&path, &tok, again)).await;
    assert_eq!(st, 200);
    assert_eq!(v2["pending"]["window_start"], v["pending"]["window_start"]);

    // Published once delegated again: RDAP dsData, WHOIS ds lines.
    let old = s.store().delegation(&own).unwrap().unwrap();
    let rec = DelegationRecord {
        state: DelegationState::Delegated,
        ns_fingerprint: old.declared_fingerprint().to_string(),
        pending: None,
        published: Vec::new(),
        published_ds: Vec::new(),
        ..old.clone()
    };
    assert!(s
        .store()
        .put_delegation(&own, &old.ns_fingerprint, &rec, None, None)
        .unwrap());
    let (_, r) = send(s.get(&format!("/rdap/domain/{own}"), None)).await;
    assert_eq!(r["secureDNS"]["delegationSigned"], true);
    assert_eq!(
        r["secureDNS"]["dsData"][0],
        json!({"keyTag": 2371, "algorithm": 13, "digest": digest(0xab, 32).to_uppercase(), "digestType": 2})
    );
    let b = s.store().bundle(&own).unwrap().unwrap();
    let p = zonekeeper::public::domain(&b, s.app.now(), &s.app.config().lifecycle).unwrap();
    let w = zonekeeper::whois::format::domain_answer(&p, "TCI", s.app.now());
    let line = format!(
        "ds:            2371 13 2 {}\n",
        digest(0xab, 32).to_uppercase()
    );
    assert!(w.contains(&line), "{w}");
    let zone = zonekeeper::zone::render(s.store(), s.app.config(), "ru", s.app.now(), 1).unwrap();
    assert!(
        zone.contains(&format!("{own}. 345600 IN DS 2371 13 4 ")),
        "{zone}"
    );

    // DELETE: unsigned again.
    let (st, v) = send(s.http.delete(s.url(&path)).bearer_auth(&tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ds"], json!([]));
    // Going unsigned is safe: at once, still delegated.
    assert_eq!(v["state"], "delegated", "{v}");
    assert!(v["pending"].is_null(), "{v}");
    let rec = s.store().delegation(&own).unwrap().unwrap();
    assert_eq!(
        rec.ns_fingerprint, fp_before,
        "back to the NS-only fingerprint"
    );
    let b = s.store().bundle(&own).unwrap().unwrap();
    let p = zonekeeper::public::domain(&b, s.app.now(), &s.app.config().lifecycle).unwrap();
    let w = zonekeeper::whois::format::domain_answer(&p, "TCI", s.app.now());
    assert!(!w.contains("ds:"), "{w}");
}

#[tokio::test]
async fn bad_ds_sets_are_422_and_change_nothing() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    let own = delegated(&s);
    let before = s.store().domain(&own).unwrap().unwrap();
    let before_rec = s.store().delegation(&own).unwrap();
    let path = format!("/api/v1/domains/{own}/ds");
    let cases = [
        (
            json!({"ds": [{"key_tag": 1, "algorithm": 13, "digest_type": 2, "digest": digest(1, 20)}]}),
            "ds[0].digest",
            "needs 32",
        ),
        (
            json!({"ds": [{"key_tag": 1, "algorithm": 13, "digest_type": 2, "digest": "xyz"}]}),
            "ds[0].digest",
            "hexadecimal",
        ),
        (
            json!({"ds": [{"key_tag": 70000, "algorithm": 13, "digest_type": 2, "digest": digest(1, 32)}]}),
            "ds[0].key_tag",
            "key tag",
        ),
        (
            json!({"ds": [{"key_tag": 1, "algorithm": 0, "digest_type": 2, "digest": digest(1, 32)}]}),
            "ds[0].algorithm",
            "reserved",
        ),
        (
            json!({"ds": [{"key_tag": 1, "algorithm": 13, "digest_type": 99, "digest": digest(1, 32)}]}),
            "ds[0].digest_type",
            "not a known",
        ),
    ];
    for (body, field, reason) in cases {
        let (st, p) = send(s.put_json(&path, &tok, body.clone())).await;
        assert_eq!(st, 422, "{body}: {p}");
        let errs = p["errors"].as_array().unwrap();
        assert!(
            errs.iter()
                .any(|e| e["field"] == field && e["reason"].as_str().unwrap().contains(reason)),
            "{body}: {p}"
        );
    }
    let (st, _) = send(s.put_json(&path, &tok, json!({"ds": [{"key_tag": 1}]}))).await;
    assert_eq!(st, 422);
    assert_eq!(s.store().domain(&own).unwrap().unwrap(), before);
    assert_eq!(s.store().delegation(&own).unwrap(), before_rec);

    // A domain without nameservers cannot take a DS set.
    let (st, p) = send(s.put_json("/api/v1/domains/findomsky0.ru/ds", &tok, ds_body())).await;
    assert_eq!(st, 422, "{p}");
    // Another registrar's domain: 403.
    let theirs = s.domains_of("RUCENTER-RU", 1).remove(0);
    let (st, _) = send(s.put_json(&format!("/api/v1/domains/{theirs}/ds"), &tok, ds_body())).await;
    assert_eq!(st, 403);
}

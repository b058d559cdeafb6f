use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record};

use crate::checks::profile::DnssecPolicy;
use crate::model::DsRecord;
use crate::probe::dnssec::{SecAddress, SecFacts};
use crate::probe::Outcome;

use super::*;

#[test]
fn every_dnssec_id_is_in_the_catalogue() {
    for id in IDS {
        assert!(id.check().is_some(), "{id}");
    }
    assert!(is_dnssec_check("RRSIG_VALID"));
    assert!(!is_dnssec_check("LAME"));
}

#[test]
fn no_facts_no_findings_and_no_ds_no_notice() {
    let facts = SecFacts {
        apex: None,
        full: true,
        addresses: Vec::new(),
    };
    let pol = DnssecPolicy::default();
    let now = chrono::Utc::now();
    assert!(evaluate(&[], &facts, &pol, now).is_empty());
    let facts = SecFacts {
        apex: Name::from_ascii("example.ru.").ok(),
        full: false,
        addresses: Vec::new(),
    };
    assert!(evaluate(&[], &facts, &pol, now).is_empty());
}

fn reply(answers: Vec<Record>) -> Outcome {
    Outcome::Reply(crate::probe::Reply {
        rcode: ResponseCode::NoError,
        aa: true,
        tc: false,
        ra: false,
        edns: true,
        answers,
        authorities: Vec::new(),
        additionals: Vec::new(),
        rtt: std::time::Duration::from_millis(1),
        size: 0,
        transport: crate::probe::Transport::Tcp,
    })
}

fn addr(dnskey: Outcome) -> SecAddress {
    SecAddress {
        server: crate::names::parse_host("ns1.example.ru").unwrap(),
        addr: "127.0.0.1:53".parse().unwrap(),
        dnskey,
        soa: Some(reply(Vec::new())),
        ns: Some(reply(Vec::new())),
        nx: None,
        cds: Some(reply(Vec::new())),
        cdnskey: Some(reply(Vec::new())),
    }
}

/// `n` distinct ECDSA-shaped zone keys (not real points: never verified
/// successfully, which is the hostile case).
fn keys(apex: &Name, n: u32) -> Vec<Record> {
    use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
    (0..n)
        .map(|i| {
            let mut b = vec![0u8; 64];
            b[..4].copy_from_slice(&i.to_be_bytes());
            let k = DNSKEY::with_flags(257, PublicKeyBuf::new(b, Algorithm::ECDSAP256SHA256));
            Record::from_rdata(apex.clone(), 3600, RData::DNSSEC(DNSSECRData::DNSKEY(k)))
        })
        .collect()
}

/// Thousands of keys: a clear limits finding within a bounded time,
/// with the default limits and with the key limit lifted (then the
/// crypto budget bounds the work).
#[test]
fn thousands_of_keys_are_bounded() {
    let apex = Name::from_ascii("example.ru.").unwrap();
    let recs = keys(&apex, 5000);
    // A DS for every tag the first 200 keys have: many candidates.
    let ds: Vec<DsRecord> = recs
        .iter()
        .take(crate::registry::input::ds::MAX_DS)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(DsRecord {
                key_tag: k.calculate_key_tag().unwrap(),
                algorithm: 13,
                digest_type: 2,
                digest: "ab".repeat(32),
            }),
            _ => None,
        })
        .collect();
    let facts = SecFacts {
        apex: Some(apex.clone()),
        full: true,
        addresses: vec![addr(reply(recs))],
    };
    let now = chrono::Utc::now();
    let started = std::time::Instant::now();
    let f = evaluate(&ds, &facts, &DnssecPolicy::default(), now);
    assert!(f.iter().any(|f| f.id == "DNSSEC_LIMITS"), "{f:?}");
    let lifted = DnssecPolicy {
        max_keys: 100_000,
        ..DnssecPolicy::default()
    };
    let f = evaluate(&ds, &facts, &lifted, now);
    assert!(f.iter().any(|f| f.id == "DS_MATCHES_DNSKEY"), "{f:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

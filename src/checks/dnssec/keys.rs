//! What a judgement works on: one address's DNSKEY RRset (`KeySet`),
//! picking an RRset and its RRSIGs out of an answer, and the crypto
//! budget shared by every address.

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Counts digests and verifications; remembers their results.
pub(super) struct Budget {
    pub(super) left: u32,
    pub(super) exhausted: bool,
    pub(super) verified: HashMap<Vec<u8>, Result<(), String>>,
}

impl Budget {
    pub(super) fn take(&mut self) -> bool {
        if self.left == 0 {
            self.exhausted = true;
            return false;
        }
        self.left -= 1;
        true
    }
}

/// The DNSKEY RRset and its signatures as one address served them.
pub(crate) struct KeySet {
    pub(super) keys: Vec<(DNSKEY, u16)>,
    pub(super) records: Vec<Record>,
    pub(super) sigs: Vec<RRSIG>,
    /// Sorted presentation forms, to compare servers.
    pub(super) canonical: Vec<String>,
}

impl KeySet {
    pub(crate) fn from_records(apex: &Name, answers: &[Record]) -> Self {
        let records = rrset(apex, answers, RecordType::DNSKEY);
        let mut keys = Vec::new();
        let mut canonical = Vec::new();
        for r in &records {
            if let RData::DNSSEC(DNSSECRData::DNSKEY(k)) = &r.data {
                let tag = k.calculate_key_tag().unwrap_or(0);
                canonical.push(k.to_string());
                keys.push((k.clone(), tag));
            }
        }
        canonical.sort();
        canonical.dedup();
        Self {
            keys,
            sigs: sigs(apex, answers, RecordType::DNSKEY),
            records,
            canonical,
        }
    }
}

pub(crate) fn rrset(owner: &Name, records: &[Record], t: RecordType) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.record_type() == t && r.name.eq_ignore_root(owner))
        .cloned()
        .collect()
}

pub(crate) fn sigs(owner: &Name, records: &[Record], covered: RecordType) -> Vec<RRSIG> {
    records
        .iter()
        .filter(|r| r.name.eq_ignore_root(owner))
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == covered => {
                Some(s.clone())
            }
            _ => None,
        })
        .collect()
}

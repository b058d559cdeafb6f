//! DNSSEC checks at delegation (catalogue ids `DS_*`, `DNSKEY_*`, `RRSIG_*`,
//! `DENIAL_OF_EXISTENCE`, `NSEC3_*`, `DNSSEC_*`): pure functions of the
//! declared DS set, the DNSSEC probe facts ([`crate::probe::dnssec`]), the
//! profile's [`DnssecPolicy`] and the time of the check.
//!
//! Cryptography is hickory-proto's (ring): DS digests with
//! `DNSKEY::to_digest`, signatures with `Verifier::verify_rrsig`. Every
//! digest and verification is counted against `max_crypto_ops`, and results
//! are cached, so a hostile zone (thousands of keys sharing a key tag,
//! thousands of signatures) costs a bounded amount of CPU.

use std::collections::{BTreeMap, HashMap};

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_proto::dnssec::{DigestType, Verifier};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::catalogue::CheckId;
use super::profile::DnssecPolicy;
use super::profile::Profile;
use crate::model::{CheckReport, DsRecord, Finding, Severity, Timestamp, Verdict};
use crate::probe::dnssec::{SecAddress, SecFacts};
use crate::probe::Outcome;

/// Ids of the DNSSEC checks (all of this module's findings).
pub const IDS: [CheckId; 16] = [
    CheckId::DsSyntax,
    CheckId::DsDigestType,
    CheckId::DsAlgorithm,
    CheckId::DnskeyPresent,
    CheckId::DnskeyConsistent,
    CheckId::DsMatchesDnskey,
    CheckId::DnskeySignedByDs,
    CheckId::RrsigSoa,
    CheckId::RrsigNs,
    CheckId::RrsigValid,
    CheckId::RrsigExpiry,
    CheckId::DenialOfExistence,
    CheckId::Nsec3Params,
    CheckId::Nsec3Iterations,
    CheckId::DnssecLimits,
    CheckId::DnssecNoDs,
];

/// Is `id` one of the DNSSEC checks?
pub fn is_dnssec_check(id: &str) -> bool {
    CheckId::parse(id).is_some_and(|c| IDS.contains(&c))
}

/// Judge the DNSSEC facts and add the graded findings to `report`
/// (the verdict follows: fail iff any error).
pub fn add_findings(
    report: &mut CheckReport,
    profile: &Profile,
    ds: &[DsRecord],
    facts: &SecFacts,
    now: Timestamp,
) {
    let found = profile.apply(evaluate(ds, facts, profile.dnssec(), now));
    if found.is_empty() {
        return;
    }
    report.findings.extend(found);
    if report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error)
    {
        report.verdict = Verdict::Fail;
    }
}

fn finding(id: CheckId, server: Option<&SecAddress>, message: String) -> Finding {
    Finding {
        id: id.as_str().to_string(),
        severity: id.check().map_or(Severity::Error, |c| c.severity),
        server: server.map(|a| a.server.as_str().to_string()),
        address: server.map(|a| a.addr.to_string()),
        // Text from DNS replies: escaped once for every place it is shown.
        message: crate::text::escape(&message).into_owned(),
    }
}

/// Counts digests and verifications; remembers their results.
struct Budget {
    left: u32,
    exhausted: bool,
    verified: HashMap<Vec<u8>, Result<(), String>>,
}

impl Budget {
    fn take(&mut self) -> bool {
        if self.left == 0 {
            self.exhausted = true;
            return false;
        }
        self.left -= 1;
        true
    }
}

/// Pure: the DNSSEC findings (catalogue severities, before the profile).
pub fn evaluate(
    ds: &[DsRecord],
    facts: &SecFacts,
    pol: &DnssecPolicy,
    now: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(apex) = &facts.apex else {
        return out;
    };
    let mut judge = Judge::new(apex, pol, now);

    // The DNSKEY RRset of each address that answered the query.
    let mut keysets: Vec<(&SecAddress, KeySet)> = Vec::new();
    for a in &facts.addresses {
        match &a.dnskey {
            Outcome::Reply(r) if r.rcode == ResponseCode::NoError => {
                let ks = KeySet::from_records(apex, &r.answers);
                if ks.keys.len() > pol.max_keys {
                    out.push(finding(
                        CheckId::DnssecLimits,
                        Some(a),
                        format!(
                            "the DNSKEY RRset has {} keys; more than {} are not judged",
                            ks.keys.len(),
                            pol.max_keys
                        ),
                    ));
                    continue;
                }
                keysets.push((a, ks));
            }
            other if facts.full => out.push(finding(
                CheckId::DnskeyPresent,
                Some(a),
                format!("the DNSKEY query was not answered: {}", describe(other)),
            )),
            _ => {}
        }
    }

    if !facts.full {
        if ds.is_empty() && keysets.iter().any(|(_, k)| !k.keys.is_empty()) {
            out.push(finding(
                CheckId::DnssecNoDs,
                None,
                "the zone is signed (it serves DNSKEY) but no DS is declared: validators treat it as unsigned".into(),
            ));
        }
        return out;
    }

    // The DS set itself: syntax and the registry's policy.
    let mut usable: Vec<(&DsRecord, Vec<u8>, DigestType)> = Vec::new();
    for d in ds {
        let digest = match hex::decode(&d.digest) {
            Ok(b) => b,
            Err(_) => {
                out.push(finding(
                    CheckId::DsSyntax,
                    None,
                    format!("DS {d}: digest is not hexadecimal"),
                ));
                continue;
            }
        };
        match crate::registry::input::ds::digest_len(d.digest_type) {
            Some(n) if n == digest.len() => {}
            Some(n) => {
                out.push(finding(
                    CheckId::DsSyntax,
                    None,
                    format!(
                        "DS {d}: digest is {} bytes; digest type {} needs {n}",
                        digest.len(),
                        d.digest_type
                    ),
                ));
                continue;
            }
            None => {
                out.push(finding(
                    CheckId::DsSyntax,
                    None,
                    format!("DS {d}: unknown digest type {}", d.digest_type),
                ));
                continue;
            }
        }
        if !pol.digest_types.contains(&d.digest_type) {
            let why = if d.digest_type == 1 {
                " (SHA-1 must not be used for new DS records, RFC 8624 §3.3)"
            } else {
                ""
            };
            out.push(finding(
                CheckId::DsDigestType,
                None,
                format!(
                    "DS {}/{}: digest type {} is not accepted{why}; accepted: {}",
                    d.key_tag,
                    d.algorithm,
                    d.digest_type,
                    list(&pol.digest_types)
                ),
            ));
        }
        if !pol.algorithms.contains(&d.algorithm) {
            out.push(finding(
                CheckId::DsAlgorithm,
                None,
                format!(
                    "DS {}/{}: algorithm {} ({}) is not accepted; accepted: {}",
                    d.key_tag,
                    d.algorithm,
                    d.algorithm,
                    algorithm_name(d.algorithm),
                    list(&pol.algorithms)
                ),
            ));
        }
        let dt = DigestType::from(d.digest_type);
        if dt.is_supported() {
            usable.push((d, digest, dt));
        }
    }

    if keysets.iter().all(|(_, k)| k.keys.is_empty()) {
        if !keysets.is_empty() {
            out.push(finding(
                CheckId::DnskeyPresent,
                None,
                "a DS set is declared but the zone is not signed: no server serves a DNSKEY RRset, so validators would fail the whole domain".into(),
            ));
        }
        return out;
    }

    // Consistency: group addresses by their DNSKEY RRset.
    let mut groups: BTreeMap<Vec<String>, Vec<&SecAddress>> = BTreeMap::new();
    for (a, k) in &keysets {
        // An address without keys is reported as DNSKEY_PRESENT instead.
        if !k.keys.is_empty() {
            groups.entry(k.canonical.clone()).or_default().push(a);
        }
    }
    if groups.len() > 1 {
        let most = groups.values().map(Vec::len).max().unwrap_or(0);
        let mut majority_seen = false;
        for (set, members) in &groups {
            if members.len() == most && !majority_seen {
                majority_seen = true;
                continue;
            }
            for a in members {
                out.push(finding(
                    CheckId::DnskeyConsistent,
                    Some(a),
                    format!(
                        "serves a different DNSKEY RRset ({} keys) than the other servers",
                        set.len()
                    ),
                ));
            }
        }
    }

    let mut per_addr: Vec<(&SecAddress, Vec<Finding>)> = Vec::new();
    for (a, ks) in &keysets {
        let mut f = Vec::new();
        judge.address(a, ks, &usable, facts.full, &mut f);
        per_addr.push((a, f));
    }
    out.extend(collapse(per_addr));
    if judge.budget.exhausted {
        out.push(finding(
            CheckId::DnssecLimits,
            None,
            format!(
                "the check's budget of {} digests/signature verifications was used up; the rest was not verified",
                pol.max_crypto_ops
            ),
        ));
    }
    out
}

/// A finding that every judged address has in the same words is reported
/// once for the zone; the others per address.
fn collapse(per_addr: Vec<(&SecAddress, Vec<Finding>)>) -> Vec<Finding> {
    let n = per_addr.len();
    let mut count: HashMap<(String, String), usize> = HashMap::new();
    for (_, fs) in &per_addr {
        let mut seen = std::collections::HashSet::new();
        for f in fs {
            if seen.insert((f.id.clone(), f.message.clone())) {
                *count.entry((f.id.clone(), f.message.clone())).or_default() += 1;
            }
        }
    }
    let mut out: Vec<Finding> = Vec::new();
    let mut global_done = std::collections::HashSet::new();
    for (_, fs) in per_addr {
        for f in fs {
            let k = (f.id.clone(), f.message.clone());
            if n > 1 && count.get(&k) == Some(&n) {
                if global_done.insert(k) {
                    out.push(Finding {
                        server: None,
                        address: None,
                        ..f
                    });
                }
            } else if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The DNSKEY RRset and its signatures as one address served them.
pub(crate) struct KeySet {
    keys: Vec<(DNSKEY, u16)>,
    records: Vec<Record>,
    sigs: Vec<RRSIG>,
    /// Sorted presentation forms, to compare servers.
    canonical: Vec<String>,
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

/// What every address is judged with: the zone, the policy, the time of
/// the check, and one crypto budget shared by all addresses.
pub(crate) struct Judge<'a> {
    apex: &'a Name,
    pol: &'a DnssecPolicy,
    now: Timestamp,
    budget: Budget,
}

/// One RRset and the RRSIGs over it; `what` names it in findings.
pub(crate) struct Signed<'a> {
    pub what: &'a str,
    pub set: &'a [Record],
    pub sigs: &'a [RRSIG],
}

impl<'a> Judge<'a> {
    pub(crate) fn new(apex: &'a Name, pol: &'a DnssecPolicy, now: Timestamp) -> Self {
        Self {
            apex,
            pol,
            now,
            budget: Budget {
                left: pol.max_crypto_ops,
                exhausted: false,
                verified: HashMap::new(),
            },
        }
    }

    /// One address's DNSSEC: DS → DNSKEY, the DNSKEY RRset's signatures,
    /// and with `full` the SOA, NS and denial-of-existence signatures.
    fn address(
        &mut self,
        a: &SecAddress,
        ks: &KeySet,
        ds: &[(&DsRecord, Vec<u8>, DigestType)],
        full: bool,
        out: &mut Vec<Finding>,
    ) {
        let apex = self.apex;
        if ks.keys.is_empty() {
            out.push(finding(
                CheckId::DnskeyPresent,
                Some(a),
                "serves no DNSKEY RRset while a DS set is declared".into(),
            ));
        }
        // DS -> DNSKEY: the keys a DS points at (secure entry points).
        let mut entry_keys: Vec<usize> = Vec::new();
        for (d, digest, dt) in ds {
            let candidates: Vec<usize> = ks
                .keys
                .iter()
                .enumerate()
                .filter(|(_, (k, tag))| *tag == d.key_tag && u8::from(k.algorithm()) == d.algorithm)
                .map(|(i, _)| i)
                .collect();
            if candidates.is_empty() {
                if !ks.keys.is_empty() {
                    out.push(finding(
                    CheckId::DsMatchesDnskey,
                    Some(a),
                    format!(
                        "DS {}/{} points at no DNSKEY of the zone (no key with tag {} and algorithm {})",
                        d.key_tag, d.algorithm, d.key_tag, d.algorithm
                    ),
                ));
                }
                continue;
            }
            let mut matched = false;
            for i in candidates {
                let key = &ks.keys[i].0;
                let mut cache_key = b"ds".to_vec();
                cache_key.extend_from_slice(key.to_string().as_bytes());
                cache_key.push(u8::from(*dt));
                let ok = match self.budget.verified.get(&cache_key) {
                    Some(r) => r.as_ref().ok().map(|_| ()),
                    None => {
                        if !self.budget.take() {
                            break;
                        }
                        let r = match key.to_digest(apex, *dt) {
                            Ok(h) => Ok(h.as_ref().to_vec()),
                            Err(e) => Err(e.to_string()),
                        };
                        let res = match r {
                            Ok(h) if &h == digest => Ok(()),
                            Ok(_) => Err("digest differs".to_string()),
                            Err(e) => Err(e),
                        };
                        let ok = res.as_ref().ok().map(|_| ());
                        self.budget.verified.insert(cache_key, res);
                        ok
                    }
                };
                if ok.is_some() {
                    if key.zone_key() && !key.revoke() {
                        matched = true;
                        entry_keys.push(i);
                    } else {
                        out.push(finding(
                            CheckId::DsMatchesDnskey,
                            Some(a),
                            format!(
                            "DS {}/{} matches a DNSKEY that is not a usable zone key (flags {})",
                            d.key_tag,
                            d.algorithm,
                            key.flags()
                        ),
                        ));
                    }
                }
            }
            if !matched && !self.budget.exhausted {
                out.push(finding(
                    CheckId::DsMatchesDnskey,
                    Some(a),
                    format!(
                        "DS {}/{}/{}: the digest matches no DNSKEY with that tag and algorithm",
                        d.key_tag, d.algorithm, d.digest_type
                    ),
                ));
            }
        }

        // The DNSKEY RRset: every signature valid, one of them by an entry key.
        let dnskey_valid = self.verify_rrset(
            a,
            ks,
            apex,
            Signed {
                what: "DNSKEY",
                set: &ks.records,
                sigs: &ks.sigs,
            },
            out,
        );
        if !ds.is_empty() && !ks.keys.is_empty() {
            let by_entry = dnskey_valid.iter().any(|i| entry_keys.contains(i));
            if !by_entry && !self.budget.exhausted {
                out.push(finding(
                CheckId::DnskeySignedByDs,
                Some(a),
                if ks.sigs.is_empty() {
                    "the DNSKEY RRset has no RRSIG".to_string()
                } else if entry_keys.is_empty() {
                    "no DS points at a key of this DNSKEY RRset, so its signatures cannot be trusted".to_string()
                } else {
                    "no valid RRSIG over the DNSKEY RRset was made by a key a DS points at"
                        .to_string()
                },
            ));
            }
        }
        if !full {
            return;
        }
        for (qtype, id, outcome) in [
            (RecordType::SOA, CheckId::RrsigSoa, &a.soa),
            (RecordType::NS, CheckId::RrsigNs, &a.ns),
        ] {
            let Some(Outcome::Reply(r)) = outcome else {
                continue; // unanswered: judged by the ordinary checks
            };
            let set = rrset(apex, &r.answers, qtype);
            if set.is_empty() {
                continue;
            }
            let s = sigs(apex, &r.answers, qtype);
            if s.is_empty() {
                out.push(finding(
                    id,
                    Some(a),
                    format!("the {qtype} RRset has no RRSIG"),
                ));
                continue;
            }
            let ok = self.verify_rrset(
                a,
                ks,
                apex,
                Signed {
                    what: &qtype.to_string(),
                    set: &set,
                    sigs: &s,
                },
                out,
            );
            if ok.is_empty() && !self.budget.exhausted {
                out.push(finding(
                    id,
                    Some(a),
                    format!("no valid RRSIG over the {qtype} RRset"),
                ));
            }
        }
        if let Some(outcome) = &a.nx {
            self.denial(a, ks, outcome, out);
        }
    }

    /// The NSEC/NSEC3 proof of a name that does not exist.
    fn denial(&mut self, a: &SecAddress, ks: &KeySet, outcome: &Outcome, out: &mut Vec<Finding>) {
        let Outcome::Reply(r) = outcome else {
            return;
        };
        if r.rcode != ResponseCode::NXDomain && r.rcode != ResponseCode::NoError {
            return;
        }
        if r.rcode == ResponseCode::NoError && !r.answers.is_empty() {
            // A wildcard answered; its proof is a wildcard case, not judged.
            return;
        }
        let proofs: Vec<&Record> = r
            .authorities
            .iter()
            .filter(|x| matches!(x.record_type(), RecordType::NSEC | RecordType::NSEC3))
            .collect();
        if proofs.is_empty() {
            out.push(finding(
                CheckId::DenialOfExistence,
                Some(a),
                format!(
                    "the {} answer for a name that does not exist carries no NSEC or NSEC3",
                    if r.rcode == ResponseCode::NXDomain {
                        "NXDOMAIN"
                    } else {
                        "NODATA"
                    }
                ),
            ));
            return;
        }
        let mut reported_params = false;
        for p in &proofs {
            if let RData::DNSSEC(DNSSECRData::NSEC3(n)) = &p.data {
                if reported_params {
                    continue;
                }
                let it = n.iterations();
                if it > self.pol.nsec3_max_iterations {
                    out.push(finding(
                    CheckId::Nsec3Iterations,
                    Some(a),
                    format!(
                        "NSEC3 uses {it} iterations; validators treat more than {} as insecure or fail",
                        self.pol.nsec3_max_iterations
                    ),
                ));
                    reported_params = true;
                } else if it > 0 || !n.salt().is_empty() {
                    out.push(finding(
                    CheckId::Nsec3Params,
                    Some(a),
                    format!(
                        "NSEC3 uses {it} extra iterations and a {}-byte salt; RFC 9276 asks for 0 and none",
                        n.salt().len()
                    ),
                ));
                    reported_params = true;
                }
            }
        }
        // Each proof RRset must be signed (validly: check_rrset reports).
        let mut owners: Vec<(Name, RecordType)> = proofs
            .iter()
            .map(|p| (p.name.clone(), p.record_type()))
            .collect();
        owners.sort();
        owners.dedup();
        for (owner, t) in owners {
            let set = rrset(&owner, &r.authorities, t);
            let s = sigs(&owner, &r.authorities, t);
            if s.is_empty() {
                out.push(finding(
                    CheckId::DenialOfExistence,
                    Some(a),
                    format!("the {t} record at {owner} has no RRSIG"),
                ));
                continue;
            }
            let ok = self.verify_rrset(
                a,
                ks,
                &owner,
                Signed {
                    what: &t.to_string(),
                    set: &set,
                    sigs: &s,
                },
                out,
            );
            if ok.is_empty() && !self.budget.exhausted {
                out.push(finding(
                    CheckId::DenialOfExistence,
                    Some(a),
                    format!("no valid RRSIG over the {t} record at {owner}"),
                ));
            }
        }
    }

    /// Verify every RRSIG over one RRset; report invalid and soon-expiring
    /// ones. Returns the indices (in `ks.keys`) of keys that made a valid one.
    pub(crate) fn verify_rrset(
        &mut self,
        a: &SecAddress,
        ks: &KeySet,
        owner: &Name,
        rr: Signed<'_>,
        out: &mut Vec<Finding>,
    ) -> Vec<usize> {
        let Signed { what, set, sigs } = rr;
        let (apex, now) = (self.apex, self.now);
        let mut valid_by = Vec::new();
        if set.is_empty() {
            return valid_by;
        }
        let now32 = u32::try_from(now.timestamp().rem_euclid(1 << 32)).unwrap_or(0);
        let mut set_key = Vec::new();
        for r in set {
            set_key.extend_from_slice(r.to_string().as_bytes());
            set_key.push(0);
        }
        for sig in sigs {
            let input = sig.input();
            let tag = input.key_tag;
            let alg = u8::from(input.algorithm);
            let label = format!("RRSIG {what} by key {tag}/{alg}");
            // The zone signs its own data (RFC 4035 §5.3.1).
            if !input.signer_name.eq_ignore_root(apex) {
                out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!("{label}: signer {} is not the zone", input.signer_name),
                ));
                continue;
            }
            // RFC 4034 §3.1.5: serial number arithmetic on 32-bit times.
            let inc = input.sig_inception.get();
            let exp = input.sig_expiration.get();
            let since_inception = now32.wrapping_sub(inc) as i32;
            let to_expiry = exp.wrapping_sub(now32) as i32;
            let span = exp.wrapping_sub(inc) as i32;
            if span <= 0 {
                out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!("{label}: expiration is not after inception"),
                ));
                continue;
            }
            if since_inception < 0 {
                out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!(
                        "{label}: not valid yet (inception {})",
                        when(now, i64::from(since_inception).saturating_neg())
                    ),
                ));
                continue;
            }
            if to_expiry < 0 {
                out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!("{label}: expired {}", when(now, i64::from(to_expiry))),
                ));
                continue;
            }
            let keys: Vec<usize> = ks
                .keys
                .iter()
                .enumerate()
                .filter(|(_, (k, t))| *t == tag && u8::from(k.algorithm()) == alg && k.zone_key())
                .map(|(i, _)| i)
                .collect();
            if keys.is_empty() {
                out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!("{label}: no zone key with that tag and algorithm in the DNSKEY RRset"),
                ));
                continue;
            }
            let mut verified = None;
            let mut last_err = String::new();
            for i in keys {
                let key = &ks.keys[i].0;
                let mut ck = b"sig".to_vec();
                ck.extend_from_slice(key.to_string().as_bytes());
                ck.push(0);
                ck.extend_from_slice(sig.to_string().as_bytes());
                ck.push(0);
                ck.extend_from_slice(&set_key);
                let res = match self.budget.verified.get(&ck) {
                    Some(r) => r.clone(),
                    None => {
                        if !self.budget.take() {
                            break;
                        }
                        let r = key
                            .verify_rrsig(owner, DNSClass::IN, sig, set.iter())
                            .map_err(|e| e.to_string());
                        self.budget.verified.insert(ck, r.clone());
                        r
                    }
                };
                match res {
                    Ok(()) => {
                        verified = Some(i);
                        break;
                    }
                    Err(e) => last_err = e,
                }
            }
            match verified {
                Some(i) => {
                    valid_by.push(i);
                    let left = chrono::Duration::seconds(i64::from(to_expiry));
                    if left < self.pol.expiry_margin {
                        out.push(finding(
                            CheckId::RrsigExpiry,
                            Some(a),
                            format!(
                                "{label} expires {} (less than {} from now)",
                                when(now, i64::from(to_expiry)),
                                human(self.pol.expiry_margin)
                            ),
                        ));
                    }
                }
                None if self.budget.exhausted => {}
                None => out.push(finding(
                    CheckId::RrsigValid,
                    Some(a),
                    format!("{label}: the signature does not verify ({last_err})"),
                )),
            }
        }
        valid_by
    }
}

fn when(now: Timestamp, delta_secs: i64) -> String {
    let t = now + chrono::Duration::seconds(delta_secs);
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn human(d: chrono::Duration) -> String {
    d.to_std()
        .map(|s| humantime::format_duration(s).to_string())
        .unwrap_or_else(|_| format!("{}s", d.num_seconds()))
}

fn list(v: &[u8]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// IANA mnemonic of a DNSSEC algorithm number.
pub fn algorithm_name(a: u8) -> &'static str {
    match a {
        1 => "RSAMD5",
        3 => "DSA",
        5 => "RSASHA1",
        6 => "DSA-NSEC3-SHA1",
        7 => "RSASHA1-NSEC3-SHA1",
        8 => "RSASHA256",
        10 => "RSASHA512",
        12 => "ECC-GOST",
        13 => "ECDSAP256SHA256",
        14 => "ECDSAP384SHA384",
        15 => "ED25519",
        16 => "ED448",
        _ => "unassigned",
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Reply(r) => format!("rcode {}", r.rcode),
        Outcome::Timeout => "timed out".into(),
        Outcome::Io(e) => e.clone(),
        Outcome::Malformed(e) => format!("malformed reply: {e}"),
    }
}

#[cfg(test)]
mod tests {
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
}

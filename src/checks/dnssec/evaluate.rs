//! The DNSSEC check run: the check ids, [`evaluate`] over every answering
//! address (DS syntax and policy, DNSKEY presence and consistency, then
//! each address's `Judge`), findings shared by all addresses collapsed,
//! and [`add_findings`] into a report.

use std::collections::{BTreeMap, HashMap};

use hickory_proto::dnssec::DigestType;
use hickory_proto::op::ResponseCode;

use crate::checks::catalogue::CheckId;
use crate::checks::profile::DnssecPolicy;
use crate::checks::profile::Profile;
use crate::model::{CheckReport, DsRecord, Finding, Severity, Timestamp, Verdict};
use crate::probe::dnssec::{SecAddress, SecFacts};
use crate::probe::Outcome;

use super::judge::Judge;
use super::keys::KeySet;
use super::text::*;

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

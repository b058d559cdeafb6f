//! Judging one address (`Judge`): DS → DNSKEY, RRSIG validity and
//! expiry over each RRset, and the NSEC/NSEC3 denial of existence, each
//! digest and verification counted against the budget.

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::{DigestType, Verifier};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::checks::catalogue::CheckId;
use crate::checks::profile::DnssecPolicy;
use crate::model::{DsRecord, Finding, Timestamp};
use crate::probe::dnssec::SecAddress;
use crate::probe::Outcome;

use super::keys::*;
use super::text::*;

/// What every address is judged with: the zone, the policy, the time of
/// the check, and one crypto budget shared by all addresses.
pub(crate) struct Judge<'a> {
    apex: &'a Name,
    pol: &'a DnssecPolicy,
    now: Timestamp,
    pub(super) budget: Budget,
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
    pub(super) fn address(
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

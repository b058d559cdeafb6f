//! Pure CDS/CDNSKEY decisions (RFC 7344, RFC 8078): which DS set a
//! child's signal asks for, and what the scanner ([`super::Scanner`]) does
//! with one domain. Signatures are verified with the DNSSEC checks' judge
//! ([`crate::checks::dnssec`]), so the same crypto budget bounds a hostile
//! zone here too.

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_proto::dnssec::{DigestType, Verifier};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::checks::dnssec::{evaluate, rrset, sigs, Judge, KeySet, Signed};
use crate::checks::profile::DnssecPolicy;
use crate::model::{DsRecord, Severity, Timestamp};
use crate::probe::dnssec::{SecAddress, SecFacts};
use crate::probe::Outcome;

/// What the CDS scanner does with one domain (RFC 7344, RFC 8078).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdsAction {
    /// Nothing to do (nothing published, or it equals the DS set); why.
    Keep(String),
    /// The child publishes CDS/CDNSKEY, but it is not acted on: why (the
    /// scanner reports it, so the registrar can tell what to fix).
    Refuse(String),
    /// A signed delete CDS/CDNSKEY (algorithm 0, RFC 8078 §4): remove the
    /// DS set.
    Delete,
    /// A signed CDS/CDNSKEY set, the same on every server, that differs
    /// from the DS set and would validate: it becomes the DS set (RFC 7344
    /// §4.1).
    Replace(Vec<DsRecord>),
    /// An unsigned delegation whose zone publishes, on every server, a
    /// CDS/CDNSKEY set signed by its own keys under which the zone
    /// validates: a candidate for RFC 8078 §3.3 accept-after-delay
    /// bootstrapping. `fingerprint` identifies what was published (the
    /// delay restarts when it changes).
    Bootstrap {
        ds: Vec<DsRecord>,
        fingerprint: String,
    },
}

/// The CDS and CDNSKEY RRsets one server published, with their RRSIGs.
struct ChildSignal<'a> {
    addr: &'a SecAddress,
    cds: Vec<Record>,
    cds_sigs: Vec<RRSIG>,
    cdnskey: Vec<Record>,
    cdnskey_sigs: Vec<RRSIG>,
    /// Sorted presentation forms of both RRsets, to compare servers.
    canonical: Vec<String>,
}

/// SHA-256 (hex) of a sorted list of presentation forms.
pub fn fingerprint(canonical: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in canonical {
        h.update(c.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The DS set a CDS/CDNSKEY signal asks for, from one consistent copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Delete,
    Ds(Vec<DsRecord>),
}

/// Pure: turn a CDS RRset and a CDNSKEY RRset (either may be empty, not
/// both) into the DS set they ask for (RFC 7344 §4, RFC 8078 §4). A
/// CDNSKEY is digested with `digest_type` (hickory's `to_digest`); when
/// both are published they must name the same keys (every CDS a digest of
/// a CDNSKEY, every CDNSKEY digested by a CDS), and the CDS set is used.
/// `Err`: why the signal is not usable.
pub fn signal_to_ds(
    apex: &Name,
    cds: &[Record],
    cdnskey: &[Record],
    digest_type: u8,
    max_ops: u32,
) -> Result<Signal, String> {
    use hickory_proto::dnssec::rdata::{CDNSKEY, CDS};
    let cds: Vec<&CDS> = cds
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::CDS(c)) => Some(c),
            _ => None,
        })
        .collect();
    let keys: Vec<&CDNSKEY> = cdnskey
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::CDNSKEY(c)) => Some(c),
            _ => None,
        })
        .collect();
    let mixed = |n: usize, d: usize, what: &str| {
        if d > 0 && d < n {
            Err(format!(
                "a delete {what} (algorithm 0) is mixed with other {what} records (RFC 8078 §4)"
            ))
        } else {
            Ok(d > 0)
        }
    };
    let cds_delete = mixed(
        cds.len(),
        cds.iter().filter(|c| c.is_delete()).count(),
        "CDS",
    )?;
    let key_delete = mixed(
        keys.len(),
        keys.iter().filter(|c| c.is_delete()).count(),
        "CDNSKEY",
    )?;
    if !cds.is_empty() && !keys.is_empty() && cds_delete != key_delete {
        return Err(format!(
            "CDS and CDNSKEY are inconsistent: the {} asks to delete the DS set, the {} does not",
            if cds_delete { "CDS" } else { "CDNSKEY" },
            if cds_delete { "CDNSKEY" } else { "CDS" },
        ));
    }
    if cds_delete || key_delete {
        return Ok(Signal::Delete);
    }
    let mut ops = max_ops;
    let mut take = || {
        if ops == 0 {
            return Err(
                "too many CDS/CDNSKEY records to digest within the check's budget".to_string(),
            );
        }
        ops -= 1;
        Ok(())
    };
    // Each CDNSKEY as a DNSKEY (hickory digests and tags it).
    let mut dnskeys: Vec<(DNSKEY, u16)> = Vec::new();
    for k in &keys {
        let Some(pk) = k.public_key() else {
            continue;
        };
        let key = DNSKEY::with_flags(k.flags(), pk);
        let tag = key
            .calculate_key_tag()
            .map_err(|e| format!("CDNSKEY {k}: {e}"))?;
        dnskeys.push((key, tag));
    }
    let digest_of = |key: &DNSKEY, t: u8| -> Result<Vec<u8>, String> {
        let dt = DigestType::from(t);
        if !dt.is_supported() {
            return Err(format!("digest type {t} is not supported"));
        }
        key.to_digest(apex, dt)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| e.to_string())
    };
    let ds_in = |tag: u16, alg: u8, t: u8, digest: &[u8]| {
        crate::registry::input::ds::validate_one(&crate::registry::input::ds::DsIn {
            key_tag: tag.into(),
            algorithm: alg.into(),
            digest_type: t.into(),
            digest: hex::encode(digest),
        })
        .map_err(|e| {
            e.into_iter()
                .map(|(f, r)| format!("{f} {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    let mut out: Vec<DsRecord> = Vec::new();
    if cds.is_empty() {
        for (key, tag) in &dnskeys {
            take()?;
            let alg = u8::from(key.algorithm());
            let d = digest_of(key, digest_type).map_err(|e| format!("CDNSKEY {tag}/{alg}: {e}"))?;
            let r = ds_in(*tag, alg, digest_type, &d)
                .map_err(|e| format!("CDNSKEY {tag}/{alg}: {e}"))?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
    } else {
        let mut matched = vec![false; dnskeys.len()];
        for c in &cds {
            let alg = c.algorithm().map_or(0, u8::from);
            let t = u8::from(c.digest_type());
            let r = ds_in(c.key_tag(), alg, t, c.digest())
                .map_err(|e| format!("a CDS record is malformed: {e}"))?;
            if !keys.is_empty() {
                let mut found = false;
                for (i, (key, tag)) in dnskeys.iter().enumerate() {
                    if *tag != c.key_tag() || u8::from(key.algorithm()) != alg {
                        continue;
                    }
                    take()?;
                    if digest_of(key, t).is_ok_and(|d| d == c.digest()) {
                        matched[i] = true;
                        found = true;
                    }
                }
                if !found {
                    return Err(format!(
                        "CDS and CDNSKEY are inconsistent: CDS {r} is the digest of no CDNSKEY (RFC 7344 §4: both must name the same keys)"
                    ));
                }
            }
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if let Some(i) = matched.iter().position(|m| !m) {
            let (key, tag) = &dnskeys[i];
            return Err(format!(
                "CDS and CDNSKEY are inconsistent: CDNSKEY {tag}/{} has no CDS (RFC 7344 §4: both must name the same keys)",
                u8::from(key.algorithm())
            ));
        }
    }
    out.sort();
    Ok(Signal::Ds(out))
}

/// Pure: the scanner's decision for a domain whose DS set is `current`,
/// from facts of [`crate::probe::Prober::probe_cds`]. The CDS and CDNSKEY
/// RRsets must be the same on every server that answered and be signed by
/// a key of the zone's DNSKEY RRset, which for a secured delegation the
/// current DS set must validate. A CDNSKEY becomes a DS of `digest_type`.
/// An unsigned delegation gets at most a [`CdsAction::Bootstrap`]
/// candidate (RFC 8078 §3.3; RFC 9615 authentication is the scanner's,
/// see [`crate::cds`]).
pub fn decide_cds(
    current: &[DsRecord],
    facts: &SecFacts,
    pol: &DnssecPolicy,
    digest_type: u8,
    now: Timestamp,
) -> CdsAction {
    let keep = |s: &str| CdsAction::Keep(s.to_string());
    let refuse = |s: &str| CdsAction::Refuse(s.to_string());
    let Some(apex) = &facts.apex else {
        return keep("no zone name");
    };
    if facts.addresses.is_empty() {
        return keep("no server answered");
    }
    // The CDS and CDNSKEY RRsets of every address; all must agree (RFC
    // 7344 §6.1).
    let mut seen: Vec<ChildSignal<'_>> = Vec::new();
    for a in &facts.addresses {
        let (Some(Outcome::Reply(c)), Some(Outcome::Reply(k))) = (&a.cds, &a.cdnskey) else {
            return keep("a server did not answer the CDS or CDNSKEY query");
        };
        if c.rcode != ResponseCode::NoError || k.rcode != ResponseCode::NoError {
            return keep("a server answered the CDS or CDNSKEY query with an error");
        }
        let cds = rrset(apex, &c.answers, RecordType::CDS);
        let cdnskey = rrset(apex, &k.answers, RecordType::CDNSKEY);
        let mut canonical: Vec<String> = cds
            .iter()
            .map(|x| format!("CDS {}", x.data))
            .chain(cdnskey.iter().map(|x| format!("CDNSKEY {}", x.data)))
            .collect();
        canonical.sort();
        canonical.dedup();
        seen.push(ChildSignal {
            addr: a,
            cds_sigs: sigs(apex, &c.answers, RecordType::CDS),
            cdnskey_sigs: sigs(apex, &k.answers, RecordType::CDNSKEY),
            cds,
            cdnskey,
            canonical,
        });
    }
    if seen.iter().all(|s| s.canonical.is_empty()) {
        return keep("no CDS or CDNSKEY published");
    }
    if seen.windows(2).any(|w| w[0].canonical != w[1].canonical) {
        return refuse("the CDS/CDNSKEY RRsets differ between servers (RFC 7344 §6.1)");
    }
    // The current chain must validate before the child can change it (an
    // unsigned delegation has none: only bootstrapping).
    let errs: Vec<String> = if current.is_empty() {
        Vec::new()
    } else {
        evaluate(current, facts, pol, now)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.id)
            .collect()
    };
    if !errs.is_empty() {
        return CdsAction::Refuse(format!(
            "the current DS chain does not validate ({}): CDS/CDNSKEY not trusted",
            errs.join(", ")
        ));
    }
    // Signed by the zone's (now validated) keys, on every server.
    let mut judge = Judge::new(apex, pol, now);
    for s in &seen {
        let Outcome::Reply(r) = &s.addr.dnskey else {
            return keep("a server did not answer the DNSKEY query");
        };
        let ks = KeySet::from_records(apex, &r.answers);
        for (what, set, sg) in [
            ("CDS", &s.cds, &s.cds_sigs),
            ("CDNSKEY", &s.cdnskey, &s.cdnskey_sigs),
        ] {
            if set.is_empty() {
                continue;
            }
            let mut scratch = Vec::new();
            let ok = judge.verify_rrset(
                s.addr,
                &ks,
                apex,
                Signed {
                    what,
                    set,
                    sigs: sg,
                },
                &mut scratch,
            );
            if ok.is_empty() || scratch.iter().any(|f| f.severity == Severity::Error) {
                return CdsAction::Refuse(format!(
                    "the {what} RRset is not validly signed by the zone's keys"
                ));
            }
        }
    }
    let new = match signal_to_ds(
        apex,
        &seen[0].cds,
        &seen[0].cdnskey,
        digest_type,
        pol.max_crypto_ops,
    ) {
        Err(e) => return CdsAction::Refuse(e),
        Ok(Signal::Delete) if current.is_empty() => {
            return keep("a delete CDS/CDNSKEY on an unsigned delegation: nothing to delete")
        }
        Ok(Signal::Delete) => return CdsAction::Delete,
        Ok(Signal::Ds(d)) => d,
    };
    let mut cur = current.to_vec();
    cur.sort();
    if new == cur {
        return keep("the CDS/CDNSKEY set equals the DS set");
    }
    let errs: Vec<String> = evaluate(&new, facts, pol, now)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.id)
        .collect();
    if !errs.is_empty() {
        return CdsAction::Refuse(format!(
            "the DS set the CDS/CDNSKEY asks for would not validate or is not accepted ({})",
            errs.join(", ")
        ));
    }
    if current.is_empty() {
        CdsAction::Bootstrap {
            ds: new,
            fingerprint: fingerprint(&seen[0].canonical),
        }
    } else {
        CdsAction::Replace(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_server_no_action() {
        let facts = SecFacts {
            apex: Name::from_ascii("example.ru.").ok(),
            full: false,
            addresses: Vec::new(),
        };
        let pol = DnssecPolicy::default();
        assert_eq!(
            decide_cds(&[], &facts, &pol, 2, chrono::Utc::now()),
            CdsAction::Keep("no server answered".into())
        );
    }

    fn cdnskey(apex: &Name, flags: u16, alg: u8, key: &[u8]) -> Record {
        use hickory_proto::dnssec::rdata::CDNSKEY;
        use hickory_proto::dnssec::Algorithm;
        let a = (alg != 0).then(|| Algorithm::from_u8(alg));
        Record::from_rdata(
            apex.clone(),
            3600,
            RData::DNSSEC(DNSSECRData::CDNSKEY(CDNSKEY::with_flags(
                flags,
                a,
                key.to_vec(),
            ))),
        )
    }

    #[test]
    fn cdnskey_becomes_ds_of_the_configured_digest_type() {
        let apex = Name::from_ascii("example.ru.").unwrap();
        let key = [7u8; 64];
        let c = cdnskey(&apex, 257, 13, &key);
        for t in [2u8, 4] {
            let Ok(Signal::Ds(d)) = signal_to_ds(&apex, &[], std::slice::from_ref(&c), t, 10)
            else {
                panic!("no DS for digest type {t}");
            };
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].digest_type, t);
            assert_eq!(d[0].digest.len(), if t == 2 { 64 } else { 96 });
            assert_eq!(d[0].algorithm, 13);
        }
        // The delete form, alone and mixed.
        let del = cdnskey(&apex, 0, 0, &[0]);
        assert_eq!(
            signal_to_ds(&apex, &[], std::slice::from_ref(&del), 2, 10),
            Ok(Signal::Delete)
        );
        let e = signal_to_ds(&apex, &[], &[del, c.clone()], 2, 10).unwrap_err();
        assert!(e.contains("mixed"), "{e}");
        // The budget bounds the digests.
        let many: Vec<Record> = (0..50u8)
            .map(|i| cdnskey(&apex, 257, 13, &[i; 64]))
            .collect();
        let e = signal_to_ds(&apex, &[], &many, 2, 10).unwrap_err();
        assert!(e.contains("budget"), "{e}");
    }
}

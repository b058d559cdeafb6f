//! DNSSEC probes (judged by `crate::checks::dnssec`): DNSKEY, SOA and NS of
//! the apex and a name that should not exist, each with the DO bit, over UDP
//! with a TCP retry on truncation (signed answers often exceed 1232 bytes).
//!
//! Only addresses that answered the round's ordinary probes are asked: a
//! dead address already cost its timeout and is judged there. Without a DS,
//! a scheduler round asks only addresses whose SOA answer came signed.

use std::net::SocketAddr;

use futures::future::join_all;
use hickory_proto::rr::{Name, RecordType};

use super::{fqdn, wire, Outcome, ProbeFacts, Prober, Transport};
use crate::names::HostName;

/// First label of the name asked to prove non-existence (RFC 4035 §3.1.3).
pub const NX_LABEL: &str = "zonekeeper-nx-probe";

/// What one address returned to the DNSSEC queries.
#[derive(Debug, Clone)]
pub struct SecAddress {
    pub server: HostName,
    pub addr: SocketAddr,
    pub dnskey: Outcome,
    /// `None` when only the DNSKEY was asked (no DS declared).
    pub soa: Option<Outcome>,
    pub ns: Option<Outcome>,
    /// Query for `NX_LABEL.<apex>` (type A).
    pub nx: Option<Outcome>,
    /// The apex CDS RRset (RFC 7344), asked by the CDS scanner only.
    pub cds: Option<Outcome>,
    /// The apex CDNSKEY RRset (RFC 7344 §3.2), asked with `cds`.
    pub cdnskey: Option<Outcome>,
}

/// The DNSSEC facts of one round.
#[derive(Debug, Clone)]
pub struct SecFacts {
    pub apex: Option<Name>,
    /// All four queries were asked (a DS set is declared).
    pub full: bool,
    pub addresses: Vec<SecAddress>,
}

impl Prober {
    /// Ask every address that answered in `facts` for the zone's DNSSEC
    /// data; with `full == false` only for the DNSKEY RRset (to notice a
    /// signed zone without DS).
    pub async fn probe_dnssec(&self, facts: &ProbeFacts, full: bool) -> SecFacts {
        self.probe_sec(facts, full, false).await
    }

    /// Everything [`Self::probe_dnssec`] asks with a DS set, plus the apex
    /// CDS and CDNSKEY RRsets (RFC 7344 §4), for the CDS scanner.
    pub async fn probe_cds(&self, facts: &ProbeFacts) -> SecFacts {
        self.probe_sec(facts, true, true).await
    }

    async fn probe_sec(&self, facts: &ProbeFacts, full: bool, with_cds: bool) -> SecFacts {
        let apex = fqdn(facts.domain.as_str());
        let Some(apex_name) = apex.clone() else {
            return SecFacts {
                apex,
                full,
                addresses: Vec::new(),
            };
        };
        let nx = Name::from_ascii(NX_LABEL)
            .ok()
            .and_then(|l| l.append_domain(&apex_name).ok());
        let mut jobs = Vec::new();
        for s in &facts.servers {
            for a in &s.addresses {
                let answered = a
                    .probes
                    .as_ref()
                    .is_some_and(|p| p.all().any(|q| q.answered()));
                // Without a DS only a signed zone is asked for its DNSKEY:
                // scheduler rounds ask the SOA with the DO bit, and an
                // unsigned answer settles it without another query.
                let unsigned =
                    !full && a.shared.is_some() && a.probes.as_ref().is_some_and(|p| !p.signed());
                if a.refused.is_none() && answered && !unsigned {
                    jobs.push((s.name.clone(), a.addr));
                }
            }
        }
        let addresses = join_all(jobs.into_iter().map(|(server, addr)| {
            let apex = apex_name.clone();
            let nx = nx.clone();
            async move {
                if !full {
                    let dnskey = self.sec_query(addr, &apex, RecordType::DNSKEY).await;
                    return SecAddress {
                        server,
                        addr,
                        dnskey,
                        soa: None,
                        ns: None,
                        nx: None,
                        cds: None,
                        cdnskey: None,
                    };
                }
                let nx_q = async {
                    match &nx {
                        Some(n) => Some(self.sec_query(addr, n, RecordType::A).await),
                        None => None,
                    }
                };
                let child_q = |t: RecordType| {
                    let apex = &apex;
                    async move {
                        if with_cds {
                            Some(self.sec_query(addr, apex, t).await)
                        } else {
                            None
                        }
                    }
                };
                let (dnskey, soa, ns, nx, cds, cdnskey) = tokio::join!(
                    self.sec_query(addr, &apex, RecordType::DNSKEY),
                    self.sec_query(addr, &apex, RecordType::SOA),
                    self.sec_query(addr, &apex, RecordType::NS),
                    nx_q,
                    child_q(RecordType::CDS),
                    child_q(RecordType::CDNSKEY),
                );
                SecAddress {
                    server,
                    addr,
                    dnskey,
                    soa: Some(soa),
                    ns: Some(ns),
                    nx,
                    cds,
                    cdnskey,
                }
            }
        }))
        .await;
        SecFacts {
            apex,
            full,
            addresses,
        }
    }

    /// One DO query over UDP, retried over TCP when truncated.
    async fn sec_query(&self, addr: SocketAddr, qname: &Name, qtype: RecordType) -> Outcome {
        let first = self.sec_exchange(addr, qname, qtype, Transport::Udp).await;
        if first.reply().is_some_and(|r| r.tc) {
            return self.sec_exchange(addr, qname, qtype, Transport::Tcp).await;
        }
        first
    }

    async fn sec_exchange(
        &self,
        addr: SocketAddr,
        qname: &Name,
        qtype: RecordType,
        transport: Transport,
    ) -> Outcome {
        let q = wire::Question {
            name: qname,
            qtype,
            edns: true,
            rd: false,
            dnssec_ok: true,
        };
        self.send(addr, &q, transport).await
    }
}

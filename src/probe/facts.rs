//! What a round is ([`Round`], [`RoundKind`]) and what it found: the
//! facts of every address, server and domain it probed, before any rule
//! judges them ([`crate::checks`] does).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};

use super::answer::QueryResult;
use super::shared::ServerProbe;
use crate::model::Timestamp;
use crate::names::{DomainName, HostName};

/// What a probe round is for, which decides what it asks
/// (docs/delegation.md, "What a round asks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundKind {
    /// A one-off check (CLI, API): every query of every address, nothing
    /// shared.
    Full,
    /// A scheduler round of a domain being tested (or a pending change, or
    /// a suspended domain): the zone's SOA over UDP and TCP, its NS set,
    /// in-bailiwick addresses over UDP and TCP; the address's own
    /// properties shared.
    Testing,
    /// A scheduler round of a delegated domain: the zone's SOA and NS set
    /// over UDP; TCP, plain DNS and recursion shared (per domain again
    /// where the domain's own answers disagree with them).
    Monitoring,
}

/// A round as the scheduler asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub kind: RoundKind,
    /// The scheduler's clock at the start of the round.
    pub now: Timestamp,
    /// How old a shared fact may be (the domain's probe interval, capped
    /// by `probe.server_facts_ttl`).
    pub max_age: Duration,
}

impl Round {
    /// A one-off check.
    pub fn full() -> Self {
        Self {
            kind: RoundKind::Full,
            now: chrono::Utc::now(),
            max_age: Duration::ZERO,
        }
    }
}

/// The queries sent to one address for one zone. Fields that are `None`
/// were not asked of this domain in this round: the address's shared facts
/// ([`AddressFacts::shared`]) stand for them.
#[derive(Debug, Clone)]
pub struct Probes {
    /// SOA over UDP with EDNS(0) (the DO bit set in scheduler rounds: the
    /// RRSIG in the answer tells a signed zone without another query).
    pub soa_udp_edns: QueryResult,
    /// SOA over UDP without EDNS.
    pub soa_udp: Option<QueryResult>,
    /// SOA over TCP (with EDNS).
    pub soa_tcp: Option<QueryResult>,
    /// NS of the apex over UDP with EDNS.
    pub ns: QueryResult,
    /// NS of the apex over TCP (one-off checks).
    pub ns_tcp: Option<QueryResult>,
    /// A/AAAA of each in-bailiwick declared name.
    pub hosts: Vec<(HostName, QueryResult)>,
    /// The same over TCP (one-off checks and testing rounds).
    pub hosts_tcp: Vec<(HostName, QueryResult)>,
    /// RD=1 query for a name outside the zone (one-off checks).
    pub recursion: Option<QueryResult>,
}

impl Probes {
    /// Every query asked of this address for this zone.
    pub fn all(&self) -> impl Iterator<Item = &QueryResult> {
        [
            Some(&self.soa_udp_edns),
            self.soa_udp.as_ref(),
            self.soa_tcp.as_ref(),
            Some(&self.ns),
            self.ns_tcp.as_ref(),
            self.recursion.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.hosts.iter().map(|(_, q)| q))
        .chain(self.hosts_tcp.iter().map(|(_, q)| q))
    }

    /// The zone's SOA signed (an RRSIG in the DO answer).
    pub fn signed(&self) -> bool {
        self.soa_udp_edns.reply().is_some_and(|r| {
            r.answers
                .iter()
                .any(|rec| rec.record_type() == RecordType::RRSIG)
        })
    }
}

/// Facts about one address of one server.
#[derive(Debug, Clone)]
pub struct AddressFacts {
    pub addr: SocketAddr,
    /// The guard refused the address: nothing was sent. Holds the reason.
    pub refused: Option<&'static str>,
    pub probes: Option<Probes>,
    /// The address's own properties, shared across domains (scheduler
    /// rounds only).
    pub shared: Option<Arc<ServerProbe>>,
}

impl AddressFacts {
    /// Whether the address answered SOA over TCP: this domain's own query
    /// if it was asked, else the shared fact.
    pub fn tcp_answered(&self) -> bool {
        let own = self.probes.as_ref().and_then(|p| p.soa_tcp.as_ref());
        match (own, &self.shared) {
            (Some(q), _) => q.first.answered(),
            (None, Some(s)) => s.tcp.first.answered(),
            (None, None) => false,
        }
    }

    /// The SOA over TCP to show: this domain's, else the shared one.
    pub fn tcp_query(&self) -> Option<&QueryResult> {
        self.probes
            .as_ref()
            .and_then(|p| p.soa_tcp.as_ref())
            .or(self.shared.as_ref().map(|s| &s.tcp))
    }

    /// The open-recursion probe: this round's, else the shared one.
    pub fn recursion(&self) -> Option<&QueryResult> {
        self.probes
            .as_ref()
            .and_then(|p| p.recursion.as_ref())
            .or(self.shared.as_ref().map(|s| &s.recursion))
    }
}

/// How a name declared without addresses was resolved.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub addresses: Vec<IpAddr>,
    /// The name is an alias (CNAME target), if the resolver saw one.
    pub cname: Option<Name>,
    /// Lookup failures (per record type), if any.
    pub errors: Vec<String>,
}

/// Facts about one declared server.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub name: HostName,
    /// Addresses as declared (glue or `--ns NAME/ADDR`).
    pub declared: Vec<SocketAddr>,
    /// Set when the name came without addresses and was looked up.
    pub resolution: Option<Resolution>,
    pub addresses: Vec<AddressFacts>,
}

/// Everything one probe round saw.
#[derive(Debug, Clone)]
pub struct ProbeFacts {
    pub domain: DomainName,
    pub servers: Vec<ServerFacts>,
    pub duration: Duration,
}

/// A declared server as the engine sees it: addresses carry a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsTarget {
    pub name: HostName,
    pub addrs: Vec<SocketAddr>,
}

//! DNS I/O against declared nameservers. The prober records raw facts of
//! every exchange (rcode, flags, sections, EDNS, RTT, transport errors); it
//! never judges them — that is `crate::checks`.
//!
//! Every server is probed on every address at once, every query of an address
//! at once, so a dead server costs one timeout, in parallel with the rest. A
//! global semaphore bounds the queries in flight across all concurrent checks;
//! [`polite`] caps the rate and TCP connections per address.
//!
//! What a round asks depends on its [`RoundKind`] (docs/delegation.md, "What
//! a round asks"): a one-off check asks everything of every address; a
//! scheduler round asks the zone's questions per domain and takes the
//! address's own properties (plain UDP, TCP, open recursion) from
//! [`shared`] facts measured once per address and shared by every domain on
//! it, asking again per domain only where its own answers disagree.

mod answer;
pub mod dnssec;
pub mod dsboot;
mod exchange;
mod facts;
pub mod guard;
pub mod polite;
pub mod shared;
pub mod stats;
mod tcp;
mod udp;

mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::ProbeConfig;
use crate::names::{DomainName, HostName};

pub use shared::ServerProbe;
use shared::{within, TtlCache};

pub use answer::{show_addr, Outcome, QueryResult, Reply, Transport};
pub use facts::{
    AddressFacts, NsTarget, ProbeFacts, Probes, Resolution, Round, RoundKind, ServerFacts,
};
pub use wire::{judge_reply, Judged, EDNS_PAYLOAD, MAX_MESSAGE, MAX_POINTER_HOPS};

/// Most addresses probed per resolved name: bounds the work one declared
/// name can cause (import caps declared glue the same way).
pub const MAX_RESOLVED_ADDRS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe.recursion_probe_name '{0}' is not a valid DNS name")]
    ProbeName(String),
    #[error("probe.max_in_flight must be greater than zero")]
    InFlight,
    #[error("probe.timeout must be greater than zero")]
    Timeout,
}

/// The probe engine. Cheap to share (`Arc` inside); Send + Sync.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

struct Inner {
    timeout: Duration,
    retries: u32,
    allow_private: bool,
    allow_loopback: bool,
    /// Port for addresses found by resolution (declared ones carry theirs).
    port: u16,
    recursion_name: Name,
    in_flight: Semaphore,
    resolver_cfg: Option<ResolverConfig>,
    resolver: OnceCell<Result<TokioResolver, String>>,
    polite: Arc<polite::Polite>,
    /// Longest a shared fact is used (`probe.server_facts_ttl`).
    facts_ttl: Duration,
    servers: TtlCache<SocketAddr, Arc<ServerProbe>>,
    /// Lookups of out-of-bailiwick names, kept for their TTL.
    names: TtlCache<HostName, (Resolution, Duration)>,
    /// UDP sockets shared by the queries in flight to each address.
    udp: udp::Sockets,
    /// TCP connections shared by scheduler rounds' queries per address.
    tcp: tcp::Pool,
}

tokio::task_local! {
    /// Set around a scheduler round's queries: their TCP queries share
    /// the address's connections ([`tcp`]).
    static SHARE_TCP: ();
}

/// Addresses (and names) whose shared facts are kept at most.
const SHARED_CAPACITY: usize = 100_000;
/// Longest a name's resolution is kept, whatever its TTL.
const MAX_NAME_TTL: Duration = Duration::from_secs(3600);
/// How long a lookup that found no address is kept.
const NEGATIVE_NAME_TTL: Duration = Duration::from_secs(30);

impl Prober {
    pub fn new(cfg: &ProbeConfig) -> Result<Self, ProbeError> {
        if cfg.max_in_flight == 0 {
            return Err(ProbeError::InFlight);
        }
        if cfg.timeout.is_zero() {
            return Err(ProbeError::Timeout);
        }
        let recursion_name = fqdn(&cfg.recursion_probe_name)
            .ok_or_else(|| ProbeError::ProbeName(cfg.recursion_probe_name.clone()))?;
        let resolver_cfg = resolver_config(cfg);
        Ok(Self {
            inner: Arc::new(Inner {
                timeout: cfg.timeout,
                retries: cfg.retries,
                allow_private: cfg.allow_private_targets,
                allow_loopback: cfg.allow_loopback_targets,
                port: cfg.port,
                recursion_name,
                in_flight: Semaphore::new(cfg.max_in_flight.min(Semaphore::MAX_PERMITS)),
                resolver_cfg,
                resolver: OnceCell::new(),
                polite: polite::shared(cfg.per_address_qps, cfg.per_address_tcp),
                facts_ttl: cfg.server_facts_ttl,
                servers: TtlCache::new(SHARED_CAPACITY, cfg.server_facts_ttl),
                names: TtlCache::new(SHARED_CAPACITY, MAX_NAME_TTL),
                udp: udp::Sockets::default(),
                tcp: tcp::Pool::default(),
            }),
        })
    }

    /// Total time queries have waited for a per-address cap, since start.
    pub fn throttle_waited(&self) -> Duration {
        self.inner.polite.waited()
    }

    /// How old a shared fact may be for a round on `interval`.
    pub fn facts_max_age(&self, interval: Duration) -> Duration {
        interval.min(self.inner.facts_ttl)
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The port stored addresses and resolved names are probed on
    /// (`probe.port`).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Whether `addr` answers (any reply, any rcode) an SOA query for
    /// `qname` over UDP, or else TCP. For canaries, which the operator
    /// configures: the special-use guard does not apply.
    pub async fn ping(&self, addr: SocketAddr, qname: &str) -> bool {
        let Some(name) = fqdn(qname).or_else(|| fqdn(".")) else {
            return false;
        };
        for t in [Transport::Udp, Transport::Tcp] {
            if self
                .exchange(addr, &name, RecordType::SOA, t, (true, false, false))
                .await
                .answered()
            {
                return true;
            }
        }
        false
    }

    /// Probe every declared server on every address, all in parallel: a
    /// one-off check (everything asked).
    pub async fn probe(&self, domain: &DomainName, targets: &[NsTarget]) -> ProbeFacts {
        self.probe_round(domain, targets, &Round::full()).await
    }

    /// Probe for a round of `round.kind`.
    pub async fn probe_round(
        &self,
        domain: &DomainName,
        targets: &[NsTarget],
        round: &Round,
    ) -> ProbeFacts {
        let start = tokio::time::Instant::now();
        let Some(apex) = fqdn(domain.as_str()) else {
            // DomainName is validated; an unparsable one means no queries.
            return ProbeFacts {
                domain: domain.clone(),
                servers: Vec::new(),
                duration: start.elapsed(),
            };
        };
        let mut in_bailiwick: Vec<HostName> = targets
            .iter()
            .filter(|t| t.name.is_at_or_below(domain.as_str()))
            .map(|t| t.name.clone())
            .collect();
        in_bailiwick.sort();
        in_bailiwick.dedup();
        let servers = join_all(
            targets
                .iter()
                .map(|t| self.probe_server(&apex, t, &in_bailiwick, round)),
        );
        // A scheduler round's TCP queries share the address's connections
        // ([`tcp`]); a one-off check opens its own, as a resolver would.
        let servers = if round.kind == RoundKind::Full {
            servers.await
        } else {
            SHARE_TCP.scope((), servers).await
        };
        ProbeFacts {
            domain: domain.clone(),
            servers,
            duration: start.elapsed(),
        }
    }

    async fn probe_server(
        &self,
        apex: &Name,
        target: &NsTarget,
        in_bailiwick: &[HostName],
        round: &Round,
    ) -> ServerFacts {
        let (resolution, addrs) = if target.addrs.is_empty() {
            let res = self.resolve_cached(&target.name, round).await;
            let addrs = res
                .addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.inner.port))
                .collect();
            (Some(res), addrs)
        } else {
            (None, target.addrs.clone())
        };
        let addresses = join_all(
            addrs
                .iter()
                .map(|a| self.probe_address(apex, *a, in_bailiwick, round)),
        )
        .await;
        ServerFacts {
            name: target.name.clone(),
            declared: target.addrs.clone(),
            resolution,
            addresses,
        }
    }

    async fn probe_address(
        &self,
        apex: &Name,
        addr: SocketAddr,
        in_bailiwick: &[HostName],
        round: &Round,
    ) -> AddressFacts {
        let loopback_ok = self.inner.allow_loopback && addr.ip().is_loopback();
        if !self.inner.allow_private && !loopback_ok {
            if let Some(why) = guard::special_use(addr.ip()) {
                return AddressFacts {
                    addr,
                    refused: Some(why),
                    probes: None,
                    shared: None,
                };
            }
        }
        use RecordType::{A, AAAA, NS, SOA};
        use Transport::{Tcp, Udp};
        let host_queries = |tr: Transport| {
            in_bailiwick.iter().flat_map(move |h| {
                let name = fqdn(h.as_str());
                [A, AAAA].into_iter().filter_map(move |t| {
                    let name = name.clone()?;
                    Some(async move {
                        (
                            h.clone(),
                            self.query(addr, name, t, tr, (true, false, false)).await,
                        )
                    })
                })
            })
        };
        if round.kind == RoundKind::Full {
            let (soa_udp_edns, soa_udp, soa_tcp, ns, ns_tcp, recursion, hosts, hosts_tcp) = tokio::join!(
                self.query(addr, apex.clone(), SOA, Udp, (true, false, false)),
                self.query(addr, apex.clone(), SOA, Udp, (false, false, false)),
                self.query(addr, apex.clone(), SOA, Tcp, (true, false, false)),
                self.query(addr, apex.clone(), NS, Udp, (true, false, false)),
                self.query(addr, apex.clone(), NS, Tcp, (true, false, false)),
                self.query(
                    addr,
                    self.inner.recursion_name.clone(),
                    A,
                    Udp,
                    (true, true, false)
                ),
                join_all(host_queries(Udp)),
                join_all(host_queries(Tcp)),
            );
            return AddressFacts {
                addr,
                refused: None,
                probes: Some(Probes {
                    soa_udp_edns,
                    soa_udp: Some(soa_udp),
                    soa_tcp: Some(soa_tcp),
                    ns,
                    ns_tcp: Some(ns_tcp),
                    hosts,
                    hosts_tcp,
                    recursion: Some(recursion),
                }),
                shared: None,
            };
        }
        let testing = round.kind == RoundKind::Testing;
        let own_tcp = async {
            if testing {
                Some(
                    self.query(addr, apex.clone(), SOA, Tcp, (true, false, false))
                        .await,
                )
            } else {
                None
            }
        };
        let hosts_tcp = async {
            if testing {
                join_all(host_queries(Tcp)).await
            } else {
                Vec::new()
            }
        };
        let (shared, soa_udp_edns, ns, soa_tcp, hosts, hosts_tcp) = tokio::join!(
            self.server_probe(addr, apex, round),
            self.query(addr, apex.clone(), SOA, Udp, (true, false, true)),
            self.query(addr, apex.clone(), NS, Udp, (true, false, false)),
            own_tcp,
            join_all(host_queries(Udp)),
            hosts_tcp,
        );
        // Ask this zone again where its own answers disagree with the
        // address's shared facts, or need another transport.
        let udp_answered = soa_udp_edns.first.answered() || ns.first.answered();
        let need_plain = soa_udp_edns.truncated()
            || (!soa_udp_edns.first.answered() && shared.plain_udp.first.answered());
        let need_tcp = soa_tcp.is_none() && shared.tcp.first.answered() != udp_answered;
        let plain = async {
            if need_plain {
                Some(
                    self.query(addr, apex.clone(), SOA, Udp, (false, false, false))
                        .await,
                )
            } else {
                None
            }
        };
        let tcp_again = async {
            if need_tcp {
                Some(
                    self.query(addr, apex.clone(), SOA, Tcp, (true, false, false))
                        .await,
                )
            } else {
                None
            }
        };
        let (soa_udp, tcp_again) = tokio::join!(plain, tcp_again);
        AddressFacts {
            addr,
            refused: None,
            probes: Some(Probes {
                soa_udp_edns,
                soa_udp,
                soa_tcp: soa_tcp.or(tcp_again),
                ns,
                ns_tcp: None,
                hosts,
                hosts_tcp,
                recursion: None,
            }),
            shared: Some(shared),
        }
    }

    /// The address's own properties: measured once per address while fresh
    /// for `round` and shared by every domain on it (single-flight). The SOA
    /// queries ask the zone of the round that measures.
    async fn server_probe(&self, addr: SocketAddr, apex: &Name, round: &Round) -> Arc<ServerProbe> {
        use RecordType::{A, SOA};
        let now = round.now;
        let max_age = round.max_age.min(self.inner.facts_ttl);
        self.inner
            .servers
            .get_or_fill(
                &addr,
                now,
                |_, at| within(at, now, max_age),
                || async {
                    let (plain_udp, tcp, recursion) = tokio::join!(
                        self.query(
                            addr,
                            apex.clone(),
                            SOA,
                            Transport::Udp,
                            (false, false, false)
                        ),
                        self.query(
                            addr,
                            apex.clone(),
                            SOA,
                            Transport::Tcp,
                            (true, false, false)
                        ),
                        self.query(
                            addr,
                            self.inner.recursion_name.clone(),
                            A,
                            Transport::Udp,
                            (true, true, false)
                        ),
                    );
                    metrics::counter!("zonekeeper_probe_server_facts_measured_total").increment(1);
                    Arc::new(ServerProbe {
                        measured_at: now,
                        plain_udp,
                        tcp,
                        recursion,
                    })
                },
            )
            .await
    }

    /// One query. An EDNS query answered FORMERR/NOTIMP is retried without
    /// EDNS (RFC 6891 §7); a truncated UDP reply is retried over TCP.
    /// `(edns, rd, dnssec_ok)`: the query's flags.
    async fn query(
        &self,
        addr: SocketAddr,
        qname: Name,
        qtype: RecordType,
        transport: Transport,
        (edns, rd, dnssec_ok): (bool, bool, bool),
    ) -> QueryResult {
        let first = self
            .exchange(addr, &qname, qtype, transport, (edns, rd, dnssec_ok))
            .await;
        let mut fallback = None;
        let mut edns_now = edns;
        if edns && first.reply().is_some_and(|r| edns_rejected(r.rcode)) {
            edns_now = false;
            fallback = Some(
                self.exchange(addr, &qname, qtype, transport, (false, rd, false))
                    .await,
            );
        }
        let cur = fallback.as_ref().unwrap_or(&first);
        if cur
            .reply()
            .is_some_and(|r| r.tc && r.transport == Transport::Udp)
        {
            fallback = Some(
                self.exchange(
                    addr,
                    &qname,
                    qtype,
                    Transport::Tcp,
                    (edns_now, rd, dnssec_ok && edns_now),
                )
                .await,
            );
        }
        QueryResult {
            qname,
            qtype,
            transport,
            edns,
            first,
            fallback,
        }
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        qname: &Name,
        qtype: RecordType,
        transport: Transport,
        (edns, rd, dnssec_ok): (bool, bool, bool),
    ) -> Outcome {
        let q = wire::Question {
            name: qname,
            qtype,
            edns,
            rd,
            dnssec_ok,
        };
        self.send(addr, &q, transport).await
    }

    /// Send one question, after the per-address caps and the global
    /// in-flight bound let it go: waiting for a cap happens before the
    /// query's timeout starts, so a capped burst is slower, never failed.
    async fn send(
        &self,
        addr: SocketAddr,
        q: &wire::Question<'_>,
        transport: Transport,
    ) -> Outcome {
        if transport == Transport::Tcp && SHARE_TCP.try_with(|_| ()).is_ok() {
            return self.tcp_shared(addr, q).await;
        }
        let _tcp_slot = match transport {
            Transport::Tcp => Some(self.inner.polite.tcp_slot(addr).await.0),
            Transport::Udp => None,
        };
        self.inner.polite.query_slot(addr).await;
        let Ok(_permit) = self.inner.in_flight.acquire().await else {
            return Outcome::Io("prober is shutting down".into());
        };
        let started = std::time::Instant::now();
        let out = self.send_now(addr, q, transport).await;
        Self::count(addr, transport, &out, started.elapsed());
        out
    }

    fn count(addr: SocketAddr, transport: Transport, out: &Outcome, took: Duration) {
        let result = match out {
            Outcome::Reply(_) => "answer",
            Outcome::Timeout => "timeout",
            Outcome::Io(_) => "io",
            Outcome::Malformed(_) => "malformed",
        };
        let t = if transport == Transport::Tcp {
            "tcp"
        } else {
            "udp"
        };
        stats::probe_sent(addr, t, result, took);
    }

    /// A place on `addr`'s current TCP connection, or the slot to open
    /// one with (waiting for `probe.per_address_tcp` if all are taken, or
    /// for a connection to open that it can join); `share == false`: a
    /// connection of the query's own.
    async fn tcp_start(
        &self,
        addr: SocketAddr,
        qtype: RecordType,
        share: bool,
    ) -> exchange::TcpStart {
        let pool = &self.inner.tcp;
        if !share {
            let (slot, _) = self.inner.polite.tcp_slot(addr).await;
            return exchange::TcpStart::Open { slot, share };
        }
        loop {
            // Listening before looking: an opening in between is not missed.
            let opened = pool.opened(addr).notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if let Some(t) = pool.join(addr, qtype) {
                return exchange::TcpStart::Join(t);
            }
            tokio::select! {
                (slot, _) = self.inner.polite.tcp_slot(addr) => {
                    // Another query may have opened one meanwhile.
                    return match pool.join(addr, qtype) {
                        Some(t) => exchange::TcpStart::Join(t),
                        None => exchange::TcpStart::Open { slot, share },
                    };
                }
                _ = &mut opened => {}
            }
        }
    }

    /// A scheduler round's TCP query, on the address's shared connection:
    /// the caps as in [`Self::send`] (its place on a connection, or the
    /// slot to open one, first: the in-flight permit is held only while
    /// the query is out, never while waiting for a slot), retried like
    /// [`Self::send_now`]'s, and asked again on a connection of its own
    /// without spending a retry when a shared one broke before answering
    /// it (a server that closes after some queries or takes no pipelined
    /// ones): never fewer chances than on a connection of its own.
    async fn tcp_shared(&self, addr: SocketAddr, q: &wire::Question<'_>) -> Outcome {
        let mut left = self.inner.retries;
        let mut share = true;
        let mut spent = Duration::ZERO;
        loop {
            // A reconnect is another packet: its waits for the caps do not
            // count against the timeout either.
            let st = self.tcp_start(addr, q.qtype, share).await;
            self.inner.polite.query_slot(addr).await;
            let Ok(permit) = self.inner.in_flight.acquire().await else {
                return Outcome::Io("prober is shutting down".into());
            };
            let rest = self.inner.timeout.saturating_sub(spent);
            let attempt = tokio::time::Instant::now();
            let (out, used) = exchange::tcp_pooled(&self.inner.tcp, addr, st, q, rest).await;
            drop(permit);
            spent += attempt.elapsed();
            let transient =
                matches!(&out, Outcome::Io(e) if e.contains("reset") || e.contains("closed"));
            let again = transient && !rest.is_zero() && {
                if used && share {
                    share = false;
                    true
                } else if left > 0 {
                    left -= 1;
                    true
                } else {
                    false
                }
            };
            if !again {
                Self::count(addr, Transport::Tcp, &out, spent);
                return out;
            }
        }
    }

    /// [`Self::send`] once the caps let the question go.
    async fn send_now(
        &self,
        addr: SocketAddr,
        q: &wire::Question<'_>,
        transport: Transport,
    ) -> Outcome {
        match transport {
            Transport::Udp => {
                let polite = &self.inner.polite;
                exchange::udp(
                    &self.inner.udp,
                    addr,
                    q,
                    self.inner.timeout,
                    self.inner.retries,
                    || polite.query_slot(addr),
                )
                .await
            }
            Transport::Tcp => {
                // A connection reset or closed early by a busy server is
                // retried (`probe.retries`) within the same timeout, as a
                // lost UDP datagram is: a burst must not look like a
                // server without TCP.
                let mut deadline = tokio::time::Instant::now() + self.inner.timeout;
                let mut left = self.inner.retries;
                loop {
                    let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let out = exchange::tcp(addr, q, rest).await;
                    let transient = matches!(&out, Outcome::Io(e) if e.contains("reset") || e.contains("closed"));
                    if !transient || left == 0 || rest.is_zero() {
                        return out;
                    }
                    left -= 1;
                    // A reconnect is another query to the address; its wait
                    // for a permit does not count against the timeout.
                    let waiting = tokio::time::Instant::now();
                    self.inner.polite.query_slot(addr).await;
                    deadline += waiting.elapsed();
                }
            }
        }
    }

    async fn resolver(&self) -> Result<&TokioResolver, String> {
        self.inner
            .resolver
            .get_or_init(|| async {
                let mut builder = match &self.inner.resolver_cfg {
                    Some(rc) => TokioResolver::builder_with_config(
                        rc.clone(),
                        TokioRuntimeProvider::default(),
                    ),
                    None => TokioResolver::builder_tokio().map_err(|e| {
                        format!("cannot read the system resolver configuration: {e}")
                    })?,
                };
                let opts: &mut ResolverOpts = builder.options_mut();
                opts.timeout = self.inner.timeout;
                opts.attempts = 1;
                opts.use_hosts_file = ResolveHosts::Never;
                opts.preserve_intermediates = true;
                opts.cache_size = 256;
                opts.ndots = 0;
                builder
                    .build()
                    .map_err(|e| format!("cannot build the resolver: {e}"))
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A declared name's addresses: looked up once and kept for the
    /// records' TTL in scheduler rounds (bounded; a lookup that failed is
    /// asked again next round, one that found nothing after a short while).
    async fn resolve_cached(&self, host: &HostName, round: &Round) -> Resolution {
        if round.kind == RoundKind::Full {
            return self.resolve(host).await.0;
        }
        let now = round.now;
        self.inner
            .names
            .get_or_fill(
                host,
                now,
                |(res, ttl), at| res.errors.is_empty() && within(at, now, *ttl),
                || self.resolve(host),
            )
            .await
            .0
    }

    /// Look up a declared name's A and AAAA records (and notice a CNAME),
    /// with the time the answer may be kept.
    async fn resolve(&self, host: &HostName) -> (Resolution, Duration) {
        let (res, ttl) = self.lookup(host).await;
        let keep = match ttl {
            Some(t) if !res.addresses.is_empty() => t.min(MAX_NAME_TTL),
            _ => NEGATIVE_NAME_TTL,
        };
        (res, keep)
    }

    async fn lookup(&self, host: &HostName) -> (Resolution, Option<Duration>) {
        let mut ttl: Option<u32> = None;
        let mut res = Resolution::default();
        let resolver = match self.resolver().await {
            Ok(r) => r,
            Err(e) => {
                res.errors.push(e);
                return (res, None);
            }
        };
        let Some(name) = fqdn(host.as_str()) else {
            res.errors.push(format!("'{host}' is not a valid DNS name"));
            return (res, None);
        };
        // One timeout bounds the whole lookup, as it bounds every probe.
        let limit = self.inner.timeout;
        let (a, aaaa) = tokio::join!(
            tokio::time::timeout(limit, resolver.lookup(name.clone(), RecordType::A)),
            tokio::time::timeout(limit, resolver.lookup(name.clone(), RecordType::AAAA))
        );
        for (t, r) in [("A", a), ("AAAA", aaaa)] {
            let Ok(r) = r else {
                res.errors.push(format!("{t} lookup timed out"));
                continue;
            };
            match r {
                Ok(lookup) => {
                    for rec in lookup.answers() {
                        ttl = Some(ttl.map_or(rec.ttl, |t| t.min(rec.ttl)));
                        match &rec.data {
                            RData::A(a) => res.addresses.push(IpAddr::V4(a.0)),
                            RData::AAAA(a) => res.addresses.push(IpAddr::V6(a.0)),
                            RData::CNAME(c) if rec.name.eq_ignore_root(&name) => {
                                res.cname = Some(c.0.clone())
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) if e.is_no_records_found() => {}
                Err(e) => res.errors.push(format!("{t} lookup failed: {e}")),
            }
        }
        res.addresses.sort();
        res.addresses.dedup();
        if res.addresses.len() > MAX_RESOLVED_ADDRS {
            res.errors.push(format!(
                "{} addresses; only the first {MAX_RESOLVED_ADDRS} are probed",
                res.addresses.len()
            ));
            res.addresses.truncate(MAX_RESOLVED_ADDRS);
        }
        (res, ttl.map(|t| Duration::from_secs(u64::from(t))))
    }
}

/// Rcodes with which servers that do not implement EDNS answer an OPT record.
pub fn edns_rejected(rc: ResponseCode) -> bool {
    rc == ResponseCode::FormErr || rc == ResponseCode::NotImp
}

/// An absolute DNS name from presentation text.
/// The configured recursive resolvers (`probe.resolvers`); `None`: the
/// system's.
pub(crate) fn resolver_config(cfg: &ProbeConfig) -> Option<ResolverConfig> {
    if cfg.resolvers.is_empty() {
        return None;
    }
    let mut rc = ResolverConfig::default();
    for r in &cfg.resolvers {
        let mut udp = ConnectionConfig::udp();
        udp.port = r.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = r.port();
        rc.name_servers
            .push(NameServerConfig::new(r.ip(), true, vec![udp, tcp]));
    }
    Some(rc)
}

pub fn fqdn(s: &str) -> Option<Name> {
    let mut n = Name::from_ascii(s).ok()?;
    n.set_fqdn(true);
    Some(n)
}

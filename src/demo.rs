//! The loopback demo (config `demo.enabled`; on in the development config,
//! off by default and in every production config): `serve` imports a dozen
//! demo domains and answers for them with small authoritative DNS servers
//! on 127.0.53.0/24, most correct, some broken in the ways the checks
//! catch, so the first `cargo run -- serve` shows domains delegated,
//! failing with findings, and monitored. Every packet stays on loopback:
//! the servers listen on `probe.port`, a resolver for the demo's host names
//! answers on the loopback `probe.resolvers`, and [`Config`] refuses the
//! demo unless the prober may reach loopback and nothing else private.
//!
//! Each scenario's fault is on its second server (`ns2`), so `domain show`
//! and the API name the server to blame. See `docs/demo.md`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::model::Timestamp;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: cannot listen on {addr} ({proto}): {source}{hint}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("demo: '{0}' is not a valid DNS name")]
    Name(String),
    #[error("demo: cannot import the demo domains: {0}")]
    Import(#[from] crate::import::ImportError),
}

/// The demo registrar; its API token is `token-demo-ru`.
pub const REGISTRAR: &str = "DEMO-RU";
const CONTACT: &str = "DEMO-ORG-RU";
/// Base SOA serial of every demo zone.
const SERIAL: u32 = 2026010101;
/// Demo servers live at 127.0.53.N (N from 1).
const NET: [u8; 3] = [127, 0, 53];
/// The address `demo-glue.ru` publishes for its ns2 instead of the declared one.
const WRONG_GLUE: Ipv4Addr = Ipv4Addr::new(127, 0, 53, 250);

/// What is wrong with a scenario's `ns2` (or its zone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// Answers FORMERR to EDNS queries: a warning only.
    NoEdns,
    /// REFUSED for the zone (lame delegation).
    Lame,
    /// Another SOA serial than ns1.
    Serial,
    /// Nothing listens on TCP.
    NoTcp,
    /// Both servers publish an NS set with a third, undeclared name.
    NsSet,
    /// The zone publishes another address for ns2 than the declared glue.
    Glue,
    /// Never answers (UDP dropped, TCP accepted and left hanging).
    Silent,
    /// Correct at first; this long after start its SOA serial moves on
    /// without ns1's (a monitoring violation after delegation).
    DriftAfter(Duration),
}

/// One demo domain.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The domain (U-label form allowed).
    pub domain: &'static str,
    /// `None`: its own `ns1`/`ns2` inside the domain, with glue. `Some(d)`:
    /// the servers of demo domain `d`, declared without addresses and
    /// resolved through `probe.resolvers`.
    pub hosted_by: Option<&'static str>,
    pub fault: Fault,
    /// What it shows, for the log and `docs/demo.md`.
    pub shows: &'static str,
}

/// The demo domains. Add a row to add one; own servers get the next two
/// addresses in 127.0.53.0/24 in table order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        domain: "demo-good.ru",
        hosted_by: None,
        fault: Fault::None,
        shows: "delegated",
    },
    Scenario {
        domain: "demo-hosting.ru",
        hosted_by: None,
        fault: Fault::None,
        shows: "delegated; its servers also serve demo-hosted.ru and демо.рф",
    },
    Scenario {
        domain: "demo-hosted.ru",
        hosted_by: Some("demo-hosting.ru"),
        fault: Fault::None,
        shows: "delegated; servers outside the domain, resolved through probe.resolvers",
    },
    Scenario {
        domain: "демо.рф",
        hosted_by: Some("demo-hosting.ru"),
        fault: Fault::None,
        shows: "delegated; an IDN domain in the second zone",
    },
    Scenario {
        domain: "demo-warn.ru",
        hosted_by: None,
        fault: Fault::NoEdns,
        shows: "delegated with an EDNS warning (ns2 answers FORMERR to EDNS)",
    },
    Scenario {
        domain: "demo-lame.ru",
        hosted_by: None,
        fault: Fault::Lame,
        shows: "testing, LAME: ns2 refuses the zone",
    },
    Scenario {
        domain: "demo-serial.ru",
        hosted_by: None,
        fault: Fault::Serial,
        shows: "testing, SOA_CONSISTENT: ns2 serves another SOA serial",
    },
    Scenario {
        domain: "demo-notcp.ru",
        hosted_by: None,
        fault: Fault::NoTcp,
        shows: "testing, TCP: ns2 does not answer over TCP",
    },
    Scenario {
        domain: "demo-nsset.ru",
        hosted_by: None,
        fault: Fault::NsSet,
        shows: "testing, NS_SET_MATCHES: the zone lists an undeclared ns3",
    },
    Scenario {
        domain: "demo-glue.ru",
        hosted_by: None,
        fault: Fault::Glue,
        shows: "testing, GLUE_MATCHES: the zone publishes another address for ns2",
    },
    Scenario {
        domain: "demo-down.ru",
        hosted_by: None,
        fault: Fault::Silent,
        shows: "testing, RESPONSIVE: ns2 never answers; its downtime accrues",
    },
    Scenario {
        domain: "demo-drift.ru",
        hosted_by: None,
        fault: Fault::DriftAfter(Duration::from_secs(30)),
        shows: "delegated, then a monitoring violation (SOA_CONSISTENT) once ns2's serial moves on 30 s after start",
    },
];

fn ascii(name: &str) -> Result<String, DemoError> {
    idna::domain_to_ascii(name).map_err(|_| DemoError::Name(name.to_string()))
}

fn dns_name(name: &str) -> Result<Name, DemoError> {
    let mut n = Name::from_ascii(ascii(name)?).map_err(|_| DemoError::Name(name.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// A demo host: name (A-label form) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub addr: Ipv4Addr,
}

/// The servers a scenario declares, in order (ns1, ns2).
pub fn declared(s: &Scenario) -> Result<Vec<Host>, DemoError> {
    let mut next = 1u8;
    for sc in SCENARIOS {
        let owner = s.hosted_by.unwrap_or(s.domain);
        if sc.hosted_by.is_none() {
            if sc.domain == owner {
                let d = ascii(sc.domain)?;
                return Ok(vec![
                    Host {
                        name: format!("ns1.{d}"),
                        addr: Ipv4Addr::new(NET[0], NET[1], NET[2], next),
                    },
                    Host {
                        name: format!("ns2.{d}"),
                        addr: Ipv4Addr::new(NET[0], NET[1], NET[2], next + 1),
                    },
                ]);
            }
            next = next.saturating_add(2);
        }
    }
    Err(DemoError::Name(s.domain.to_string()))
}

/// The demo registry in the import format (docs/import.md), for the
/// ordinary import: the scenarios whose domain `keep` accepts.
pub fn import_json(keep: impl Fn(&Scenario) -> bool) -> Result<String, DemoError> {
    use serde_json::json;
    let mut domains = Vec::new();
    for s in SCENARIOS.iter().filter(|s| keep(s)) {
        let own = s.hosted_by.is_none();
        let ns: Vec<_> = declared(s)?
            .into_iter()
            .map(|h| {
                if own {
                    json!({"name": h.name, "addresses": [h.addr.to_string()]})
                } else {
                    json!({"name": h.name})
                }
            })
            .collect();
        domains.push(json!({
            "name": s.domain, "registrar": REGISTRAR, "registrant": CONTACT,
            "admin": CONTACT, "tech": CONTACT,
            "created": "2026-01-15T10:00:00Z", "paid_till": "2036-01-15T10:00:00Z",
            "nameservers": ns, "auth_info": null, "hold": false,
            "verification_requested": null, "transferred": null,
        }));
    }
    let token = crate::synth::sample_token(REGISTRAR);
    let v = json!({
        "registrars": [{
            "handle": REGISTRAR, "name": "Demo Registrar LLC", "url": "https://demo-registrar.invalid",
            "email": "abuse@demo-registrar.invalid",
            "api_token_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())),
        }],
        "contacts": [{
            "handle": CONTACT, "kind": "org", "name": "Demo Operator", "org": "OOO Demo Hosting",
            "email": "hostmaster@demo-hosting.invalid", "phone": "+7.4950000000",
            "address": {"street": ["Tverskaya 1"], "city": "Moscow", "postal_code": "125009", "country": "RU"},
            "tax_id": null, "birth_date": null, "passport": null, "disclose": ["org", "email"],
        }],
        "domains": domains,
    });
    Ok(v.to_string())
}

/// Import the demo domains of the configured zones (idempotent: an
/// unchanged set keeps its delegation state). Returns their names as stored.
pub fn import(store: &dyn Store, cfg: &Config, now: Timestamp) -> Result<Vec<String>, DemoError> {
    let zones = cfg.zones().map_err(|e| crate::import::ImportError::Json {
        path: "demo".into(),
        message: e.to_string(),
    })?;
    let text = import_json(|s| zones.parse_domain(s.domain).is_ok())?;
    let batch = crate::import::parse(text.as_bytes(), "demo", cfg, &zones, now)?;
    crate::import::apply(store, &batch, cfg, now)?;
    Ok(batch
        .domains
        .iter()
        .map(|d| d.name.as_str().to_string())
        .collect())
}

/// One zone as one demo server serves it.
#[derive(Debug, Clone)]
struct Zone {
    apex: Name,
    serial: u32,
    /// (after, serial): the serial served from `start + after` on.
    drift: Option<(Duration, u32)>,
    ns: Vec<Name>,
    hosts: Vec<(Name, Ipv4Addr)>,
    refuse: bool,
}

#[derive(Debug, Clone, Default)]
struct Server {
    zones: Vec<Zone>,
    no_tcp: bool,
    silent: bool,
    no_edns: bool,
}

/// Host names with their addresses (what the demo resolver answers).
type HostTable = Vec<(Name, Ipv4Addr)>;

/// Every demo server by address, and the resolver's host table.
fn build() -> Result<(HashMap<Ipv4Addr, Server>, HostTable), DemoError> {
    let mut servers: HashMap<Ipv4Addr, Server> = HashMap::new();
    let mut hosts = Vec::new();
    for s in SCENARIOS {
        let apex = dns_name(s.domain)?;
        let decl = declared(s)?;
        let mut ns = Vec::new();
        for h in &decl {
            ns.push(dns_name(&h.name)?);
        }
        if s.fault == Fault::NsSet {
            ns.push(dns_name(&format!("ns3.{}", ascii(s.domain)?))?);
        }
        let mut zone_hosts = Vec::new();
        for (h, n) in decl.iter().zip(&ns) {
            if s.hosted_by.is_none() {
                hosts.push((n.clone(), h.addr));
            }
            if apex.zone_of(n) {
                let addr = if s.fault == Fault::Glue && h.name.starts_with("ns2.") {
                    WRONG_GLUE
                } else {
                    h.addr
                };
                zone_hosts.push((n.clone(), addr));
            }
        }
        for (i, h) in decl.iter().enumerate() {
            let ns2 = i == 1;
            let zone = Zone {
                apex: apex.clone(),
                serial: if ns2 && s.fault == Fault::Serial {
                    SERIAL + 1
                } else {
                    SERIAL
                },
                drift: match s.fault {
                    Fault::DriftAfter(d) if ns2 => Some((d, SERIAL + 1)),
                    _ => None,
                },
                ns: ns.clone(),
                hosts: zone_hosts.clone(),
                refuse: ns2 && s.fault == Fault::Lame,
            };
            let srv = servers.entry(h.addr).or_default();
            srv.zones.push(zone);
            // Server-wide faults only on a scenario's own servers.
            if ns2 && s.hosted_by.is_none() {
                srv.no_tcp |= s.fault == Fault::NoTcp;
                srv.silent |= s.fault == Fault::Silent;
                srv.no_edns |= s.fault == Fault::NoEdns;
            }
        }
    }
    Ok((servers, hosts))
}

/// What answers on a socket.
#[derive(Debug)]
enum Role {
    Auth(Server),
    /// A stub-facing resolver that knows only the demo's host names.
    Resolver(HostTable),
}

fn soa_record(z: &Zone, serial: u32) -> Record {
    let mname = z.ns.first().cloned().unwrap_or_else(|| z.apex.clone());
    let rname = Name::from_ascii("hostmaster")
        .ok()
        .and_then(|h| h.append_domain(&z.apex).ok())
        .unwrap_or_else(|| z.apex.clone());
    Record::from_rdata(
        z.apex.clone(),
        3600,
        RData::SOA(SOA::new(mname, rname, serial, 3600, 900, 1_209_600, 3600)),
    )
}

fn answer(role: &Role, req: &Message, since_start: Duration) -> Option<Message> {
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.queries = req.queries.clone();
    let q = req.queries.first()?;
    let qn = q.name();
    match role {
        Role::Resolver(hosts) => {
            resp.metadata.recursion_available = true;
            if req.edns.is_some() {
                let mut e = Edns::new();
                e.set_max_payload(1232);
                resp.set_edns(e);
            }
            let mut known = false;
            for (n, ip) in hosts {
                if n.eq_ignore_root(qn) {
                    known = true;
                    if q.query_type() == RecordType::A {
                        resp.add_answer(Record::from_rdata(qn.clone(), 300, RData::A(A(*ip))));
                    }
                }
            }
            if !known {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            Some(resp)
        }
        Role::Auth(srv) => {
            if srv.silent {
                return None;
            }
            if req.edns.is_some() {
                if srv.no_edns {
                    resp.metadata.response_code = ResponseCode::FormErr;
                    return Some(resp);
                }
                let mut e = Edns::new();
                e.set_max_payload(1232);
                resp.set_edns(e);
            }
            let zone = srv
                .zones
                .iter()
                .filter(|z| z.apex.zone_of(qn))
                .max_by_key(|z| z.apex.num_labels());
            let Some(z) = zone.filter(|z| !z.refuse) else {
                // Not ours (or lame for it), and no recursion.
                resp.metadata.response_code = ResponseCode::Refused;
                return Some(resp);
            };
            resp.metadata.authoritative = true;
            let serial = match z.drift {
                Some((after, s)) if since_start >= after => s,
                _ => z.serial,
            };
            if qn.eq_ignore_root(&z.apex) {
                match q.query_type() {
                    RecordType::SOA => {
                        resp.add_answer(soa_record(z, serial));
                    }
                    RecordType::NS => {
                        for n in &z.ns {
                            resp.add_answer(Record::from_rdata(
                                z.apex.clone(),
                                3600,
                                RData::NS(NS(n.clone())),
                            ));
                        }
                    }
                    _ => {
                        resp.add_authority(soa_record(z, serial));
                    }
                }
                return Some(resp);
            }
            let mut exists = false;
            for (n, ip) in &z.hosts {
                if n.eq_ignore_root(qn) {
                    exists = true;
                    if q.query_type() == RecordType::A {
                        resp.add_answer(Record::from_rdata(qn.clone(), 3600, RData::A(A(*ip))));
                    }
                }
            }
            if !exists {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            if resp.answers.is_empty() {
                resp.add_authority(soa_record(z, serial));
            }
            Some(resp)
        }
    }
}

fn reply(role: &Role, bytes: &[u8], start: Instant) -> Option<Vec<u8>> {
    let req = Message::from_vec(bytes).ok()?;
    if req.metadata.message_type != MessageType::Query {
        return None;
    }
    answer(role, &req, start.elapsed())?.to_vec().ok()
}

/// The demo's sockets, bound; [`Demo::run`] serves them.
pub struct Demo {
    udp: Vec<(UdpSocket, Arc<Role>)>,
    tcp: Vec<(TcpListener, Arc<Role>)>,
    /// Addresses of the authoritative servers, and where the resolver is.
    pub servers: Vec<SocketAddr>,
    pub resolvers: Vec<SocketAddr>,
}

fn bind_error(addr: SocketAddr, proto: &'static str, e: std::io::Error) -> DemoError {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root: set probe.port to e.g. 5300 for the demo)"
        }
        std::io::ErrorKind::AddrInUse => " (is another zonekeeper demo running?)",
        _ => "",
    };
    DemoError::Bind {
        addr,
        proto,
        source: e,
        hint,
    }
}

impl Demo {
    /// Bind every demo server on `probe.port` and the resolver on each
    /// loopback `probe.resolvers` address (UDP and TCP).
    pub async fn bind(cfg: &Config) -> Result<Demo, DemoError> {
        let (servers, hosts) = build()?;
        let mut d = Demo {
            udp: Vec::new(),
            tcp: Vec::new(),
            servers: Vec::new(),
            resolvers: Vec::new(),
        };
        let mut addrs: Vec<_> = servers.into_iter().collect();
        addrs.sort_by_key(|(ip, _)| *ip);
        for (ip, srv) in addrs {
            let addr = SocketAddr::new(IpAddr::V4(ip), cfg.probe.port);
            let no_tcp = srv.no_tcp;
            let role = Arc::new(Role::Auth(srv));
            d.bind_one(addr, role, !no_tcp).await?;
            d.servers.push(addr);
        }
        let role = Arc::new(Role::Resolver(hosts));
        for r in &cfg.probe.resolvers {
            if r.ip().is_loopback() {
                d.bind_one(*r, role.clone(), true).await?;
                d.resolvers.push(*r);
            }
        }
        Ok(d)
    }

    async fn bind_one(
        &mut self,
        addr: SocketAddr,
        role: Arc<Role>,
        tcp: bool,
    ) -> Result<(), DemoError> {
        let u = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_error(addr, "UDP", e))?;
        self.udp.push((u, role.clone()));
        if tcp {
            let t = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, "TCP", e))?;
            self.tcp.push((t, role));
        }
        Ok(())
    }

    /// Serve until `stop` is cancelled (spawned on the current runtime).
    pub fn run(self, stop: CancellationToken) {
        let start = Instant::now();
        for (sock, role) in self.udp {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = serve_udp(sock, role, start) => {}
                }
            });
        }
        for (l, role) in self.tcp {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = serve_tcp(l, role, start, stop.clone()) => {}
                }
            });
        }
    }
}

async fn serve_udp(sock: UdpSocket, role: Arc<Role>, start: Instant) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, src)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(out) = reply(&role, &buf[..len], start) {
            let _ = sock.send_to(&out, src).await;
        }
    }
}

async fn serve_tcp(l: TcpListener, role: Arc<Role>, start: Instant, stop: CancellationToken) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let role = role.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                // Idle connections are dropped after a while.
                _ = tokio::time::timeout(Duration::from_secs(30), tcp_conn(s, role, start)) => {}
            }
        });
    }
}

async fn tcp_conn(mut s: TcpStream, role: Arc<Role>, start: Instant) {
    loop {
        let mut lb = [0u8; 2];
        if s.read_exact(&mut lb).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        if s.read_exact(&mut buf).await.is_err() {
            return;
        }
        match reply(&role, &buf, start) {
            Some(out) => {
                let Ok(len) = u16::try_from(out.len()) else {
                    return;
                };
                let mut framed = len.to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                if s.write_all(&framed).await.is_err() {
                    return;
                }
            }
            // Silent: hold the connection until the client gives up.
            None => {
                let mut sink = [0u8; 64];
                while let Ok(k) = s.read(&mut sink).await {
                    if k == 0 {
                        return;
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_build_and_import() {
        let (servers, hosts) = build().unwrap();
        // demo-hosting.ru's two servers carry three zones each.
        let h = declared(&SCENARIOS[1]).unwrap();
        assert_eq!(servers[&h[0].addr].zones.len(), 3);
        assert!(hosts
            .iter()
            .any(|(n, _)| n.to_ascii() == "ns1.demo-hosting.ru."));
        // The demo runs with loopback targets allowed (its glue is 127.0.53.x).
        let mut cfg = Config::default();
        cfg.probe.allow_loopback_targets = true;
        let zones = cfg.zones().unwrap();
        let batch = crate::import::parse(
            import_json(|_| true).unwrap().as_bytes(),
            "demo",
            &cfg,
            &zones,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(batch.domains.len(), SCENARIOS.len());
        for a in servers.keys() {
            assert_eq!(a.octets()[..3], NET);
        }
    }

    #[test]
    fn the_demo_needs_loopback_only_probing() {
        let ok = "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nresolvers = [\"127.0.0.1:5399\"]\n";
        Config::from_toml(ok, std::path::Path::new("t")).unwrap();
        for bad in [
            "[demo]\nenabled = true\n[probe]\nresolvers = [\"127.0.0.1:5399\"]\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nallow_private_targets = true\nresolvers = [\"127.0.0.1:5399\"]\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nresolvers = [\"192.0.2.53:53\"]\n",
        ] {
            let e = Config::from_toml(bad, std::path::Path::new("t")).unwrap_err();
            assert!(e.to_string().contains("demo.enabled"), "{e}");
        }
    }
}

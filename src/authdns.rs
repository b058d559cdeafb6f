//! The one authoritative DNS responder on loopback: the demo's servers and
//! resolver ([`crate::demo`]) and the test suite's well-behaved or
//! misbehaving servers (`tests/support/dns.rs`) answer through it. It
//! serves a few small zones from memory over UDP and TCP on one port;
//! [`Behaviour`] turns on the misbehaviours the checks must recognise.
//!
//! Not a production name server: it answers SOA, NS, A/AAAA and CNAME, with
//! negative answers carrying the zone's SOA (RFC 2308), and nothing else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long an idle TCP connection is kept.
const TCP_IDLE: Duration = Duration::from_secs(30);

/// Misbehaviours (all off by default: a well-behaved server).
#[derive(Clone, Default, Debug)]
pub struct Behaviour {
    /// Answers without the AA flag.
    pub no_aa: bool,
    /// Nothing listens on TCP (connection refused).
    pub no_tcp: bool,
    /// Never answers (UDP dropped; TCP accepted and left hanging).
    pub silent: bool,
    /// Answers random bytes.
    pub garbage: bool,
    /// NXDOMAIN for the zone apex.
    pub nxdomain_apex: bool,
    /// NOERROR with an empty answer for the apex SOA.
    pub no_soa: bool,
    /// Replies carry a different message ID.
    pub wrong_id: bool,
    /// Answers RD=1 queries for other names with RA=1 and an address.
    pub open_recursion: bool,
    /// FORMERR for any query carrying EDNS.
    pub formerr_edns: bool,
    /// Every UDP reply is empty with TC=1.
    pub always_tc: bool,
    /// REFUSED for everything.
    pub refuse: bool,
    /// UDP replies come from another socket (wrong source port).
    pub other_source: bool,
    /// REFUSED for NS queries over TCP (the SOA is served fine).
    pub refuse_ns_tcp: bool,
    /// SERVFAIL for A/AAAA queries (the SOA and NS are served fine).
    pub servfail_hosts: bool,
}

/// One zone as one server serves it.
#[derive(Clone, Debug)]
pub struct Zone {
    pub apex: Name,
    pub serial: u32,
    pub rname: Name,
    pub ns: Vec<Name>,
    /// Names with their addresses; names outside every zone of the server
    /// are answered too (without AA), as a resolver would.
    pub hosts: Vec<(Name, IpAddr)>,
    /// Aliases (name, target), answered with the target's addresses.
    pub cnames: Vec<(Name, Name)>,
    /// REFUSED for this zone (a lame delegation).
    pub lame: bool,
    /// (after, serial): the serial served from `after` past the start on.
    pub drift: Option<(Duration, u32)>,
}

impl Zone {
    /// A zone with `ns` and nothing else; `hostmaster.APEX` as its RNAME.
    pub fn new(apex: Name, ns: Vec<Name>) -> Self {
        let rname = Name::from_ascii("hostmaster")
            .ok()
            .and_then(|h| h.append_domain(&apex).ok())
            .unwrap_or_else(|| apex.clone());
        Self {
            apex,
            serial: 2026112301,
            rname,
            ns,
            hosts: Vec::new(),
            cnames: Vec::new(),
            lame: false,
            drift: None,
        }
    }

    fn soa(&self, serial: u32) -> Record {
        let mname = self
            .ns
            .first()
            .cloned()
            .unwrap_or_else(|| self.apex.clone());
        Record::from_rdata(
            self.apex.clone(),
            3600,
            RData::SOA(SOA::new(
                mname,
                self.rname.clone(),
                serial,
                3600,
                900,
                1_209_600,
                3600,
            )),
        )
    }
}

/// What answers on one address.
#[derive(Debug)]
pub struct Responder {
    zones: Vec<Zone>,
    behaviour: Behaviour,
    /// A stub-facing resolver: RA=1, the hosts of `zones` for any name,
    /// NXDOMAIN for the others.
    resolver: bool,
    start: Instant,
}

fn address_record(name: &Name, ip: IpAddr, qtype: RecordType, ttl: u32) -> Option<Record> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::A(A(v4))))
        }
        (IpAddr::V6(v6), RecordType::AAAA) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))))
        }
        _ => None,
    }
}

impl Responder {
    /// An authoritative server for `zones`.
    pub fn new(zones: Vec<Zone>, behaviour: Behaviour) -> Self {
        Self {
            zones,
            behaviour,
            resolver: false,
            start: Instant::now(),
        }
    }

    /// A resolver that knows only `hosts`.
    pub fn resolver(hosts: Vec<(Name, IpAddr)>) -> Self {
        let mut z = Zone::new(Name::root(), Vec::new());
        z.hosts = hosts;
        Self {
            zones: vec![z],
            behaviour: Behaviour::default(),
            resolver: true,
            start: Instant::now(),
        }
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    fn hosts_of<'a>(&'a self, qn: &'a Name) -> impl Iterator<Item = IpAddr> + 'a {
        self.zones
            .iter()
            .flat_map(|z| &z.hosts)
            .filter(move |(n, _)| n.eq_ignore_root(qn))
            .map(|(_, ip)| *ip)
    }

    /// The answer to `req` (`None`: stay silent).
    pub fn answer(&self, req: &Message, udp: bool) -> Option<Message> {
        let b = &self.behaviour;
        if b.silent {
            return None;
        }
        let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.queries = req.queries.clone();
        if b.wrong_id {
            resp.metadata.id = req.metadata.id.wrapping_add(1);
        }
        if req.edns.is_some() {
            if b.formerr_edns {
                resp.metadata.response_code = ResponseCode::FormErr;
                return Some(resp);
            }
            let mut e = Edns::new();
            e.set_max_payload(1232);
            resp.set_edns(e);
        }
        if b.refuse {
            resp.metadata.response_code = ResponseCode::Refused;
            return Some(resp);
        }
        let Some(q) = req.queries.first() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return Some(resp);
        };
        let qt = q.query_type();
        let refused = b.refuse_ns_tcp && !udp && qt == RecordType::NS;
        let failed = b.servfail_hosts && matches!(qt, RecordType::A | RecordType::AAAA);
        if refused || failed {
            resp.metadata.response_code = if refused {
                ResponseCode::Refused
            } else {
                ResponseCode::ServFail
            };
            return Some(resp);
        }
        if udp && b.always_tc {
            resp.metadata.truncation = true;
            resp.metadata.authoritative = !b.no_aa;
            return Some(resp);
        }
        let qn = q.name();
        if self.resolver {
            resp.metadata.recursion_available = true;
            let mut known = false;
            for ip in self.hosts_of(qn) {
                known = true;
                resp.answers.extend(address_record(qn, ip, qt, 300));
            }
            if !known {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            return Some(resp);
        }
        let zone = self
            .zones
            .iter()
            .filter(|z| z.apex.zone_of(qn))
            .max_by_key(|z| z.apex.num_labels());
        if zone.is_some_and(|z| z.lame) {
            resp.metadata.response_code = ResponseCode::Refused;
            return Some(resp);
        }
        resp.metadata.authoritative = zone.is_some() && !b.no_aa;
        let serial = |z: &Zone| match z.drift {
            Some((after, s)) if self.start.elapsed() >= after => s,
            _ => z.serial,
        };
        if let Some(z) = zone.filter(|z| qn.eq_ignore_root(&z.apex)) {
            if b.nxdomain_apex {
                resp.metadata.response_code = ResponseCode::NXDomain;
                return Some(resp);
            }
            match qt {
                RecordType::SOA if b.no_soa => {}
                RecordType::SOA => {
                    resp.add_answer(z.soa(serial(z)));
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
                _ if b.no_soa => {}
                _ => {
                    resp.add_authority(z.soa(serial(z)));
                }
            }
            return Some(resp);
        }
        let alias = self
            .zones
            .iter()
            .flat_map(|z| &z.cnames)
            .find(|(n, _)| n.eq_ignore_root(qn));
        if let Some((_, target)) = alias {
            // As a recursive resolver would: the alias, then the target's data.
            resp.add_answer(Record::from_rdata(
                qn.clone(),
                3600,
                RData::CNAME(CNAME(target.clone())),
            ));
            for ip in self.hosts_of(target) {
                resp.answers.extend(address_record(target, ip, qt, 3600));
            }
            return Some(resp);
        }
        let mut exists = false;
        for ip in self.hosts_of(qn) {
            exists = true;
            resp.answers.extend(address_record(qn, ip, qt, 3600));
        }
        match zone {
            Some(z) if !exists => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.add_authority(z.soa(serial(z)));
            }
            Some(z) if resp.answers.is_empty() => {
                resp.add_authority(z.soa(serial(z)));
            }
            Some(_) => {}
            None if exists => {}
            None if b.open_recursion && req.metadata.recursion_desired => {
                resp.metadata.recursion_available = true;
                resp.add_answer(Record::from_rdata(
                    qn.clone(),
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 77))),
                ));
            }
            // Not ours, and no recursion.
            None => resp.metadata.response_code = ResponseCode::Refused,
        }
        Some(resp)
    }

    /// The reply bytes to the query `bytes` (`None`: stay silent).
    pub fn reply(&self, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
        if self.behaviour.silent {
            return None;
        }
        if self.behaviour.garbage {
            let len = 12 + usize::from(rand::random::<u8>());
            return Some((0..len).map(|_| rand::random::<u8>()).collect());
        }
        let req = Message::from_vec(bytes).ok()?;
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        self.answer(&req, udp)?.to_vec().ok()
    }
}

/// A UDP socket and, unless `tcp` is false, a TCP listener on the same
/// port of `addr` (port 0: an ephemeral port free for both).
pub async fn bind(
    addr: SocketAddr,
    tcp: bool,
) -> std::io::Result<(UdpSocket, Option<TcpListener>)> {
    loop {
        let udp = UdpSocket::bind(addr).await?;
        if !tcp {
            return Ok((udp, None));
        }
        let at = udp.local_addr()?;
        match TcpListener::bind(at).await {
            Ok(t) => return Ok((udp, Some(t))),
            // The ephemeral UDP port is taken on TCP: try another.
            Err(_) if addr.port() == 0 => {}
            Err(e) => return Err(e),
        }
    }
}

/// Answers on `udp` and `tcp` with `r` until the returned tasks are
/// aborted; `hits` counts the queries received (UDP datagrams and TCP
/// messages). TCP connections end after 30 s idle.
pub fn spawn(
    udp: UdpSocket,
    tcp: Option<TcpListener>,
    r: Arc<Responder>,
    hits: Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    {
        let r = r.clone();
        let hits = hits.clone();
        tasks.push(tokio::spawn(async move {
            // Replies from another socket, for the wrong-source misbehaviour.
            let other = match (r.behaviour.other_source, udp.local_addr()) {
                (true, Ok(a)) => UdpSocket::bind((a.ip(), 0)).await.ok(),
                _ => None,
            };
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, src)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                hits.fetch_add(1, Ordering::Relaxed);
                if let Some(out) = r.reply(&buf[..len], true) {
                    let _ = other.as_ref().unwrap_or(&udp).send_to(&out, src).await;
                }
            }
        }));
    }
    if let Some(l) = tcp {
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let (r, hits) = (r.clone(), hits.clone());
                tokio::spawn(tokio::time::timeout(TCP_IDLE, tcp_conn(s, r, hits)));
            }
        }));
    }
    tasks
}

async fn tcp_conn(mut s: TcpStream, r: Arc<Responder>, hits: Arc<AtomicUsize>) {
    loop {
        let mut lb = [0u8; 2];
        if s.read_exact(&mut lb).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        if s.read_exact(&mut buf).await.is_err() {
            return;
        }
        hits.fetch_add(1, Ordering::Relaxed);
        let Some(out) = r.reply(&buf, false) else {
            // Silent: hold the connection until the client gives up.
            let mut sink = [0u8; 64];
            while let Ok(k) = s.read(&mut sink).await {
                if k == 0 {
                    return;
                }
            }
            return;
        };
        let Ok(len) = u16::try_from(out.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        if s.write_all(&framed).await.is_err() {
            return;
        }
    }
}

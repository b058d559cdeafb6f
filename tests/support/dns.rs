//! In-test DNS servers on loopback, started and dropped by tests to
//! simulate outages: well-behaved or misbehaving ones answer through the
//! crate's one responder (`zonekeeper::authdns`, [`Behaviour`]); hostile
//! ones ([`Hostile`]) send raw bytes. [`LabZone`] places a zone's servers on a random
//! loopback block with one common port, as the scheduler tests need.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub use zonekeeper::authdns::Behaviour;
use zonekeeper::authdns::{self, Responder, Zone};

#[derive(Clone, Debug)]
pub struct FakeZone {
    pub apex: String,
    pub serial: u32,
    pub rname: String,
    pub ns: Vec<String>,
    /// name → addresses (served for any name, zone or not, like a resolver would).
    pub hosts: HashMap<String, Vec<IpAddr>>,
    /// name → CNAME target.
    pub cnames: HashMap<String, String>,
}

impl FakeZone {
    pub fn new(apex: &str, ns: &[&str]) -> Self {
        Self {
            apex: apex.into(),
            serial: 2026112301,
            rname: format!("hostmaster.{apex}"),
            ns: ns.iter().map(|s| s.to_string()).collect(),
            hosts: HashMap::new(),
            cnames: HashMap::new(),
        }
    }
    pub fn host(mut self, name: &str, ip: IpAddr) -> Self {
        self.hosts.entry(name.into()).or_default().push(ip);
        self
    }
}

pub struct FakeServer {
    pub addr: SocketAddr,
    /// Queries received (UDP datagrams + TCP messages).
    pub hits: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn n(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

impl FakeZone {
    /// The zone as the responder serves it.
    fn served(&self) -> Zone {
        let mut z = Zone::new(n(&self.apex), self.ns.iter().map(|s| n(s)).collect());
        z.serial = self.serial;
        z.rname = n(&self.rname);
        z.hosts = self
            .hosts
            .iter()
            .flat_map(|(name, ips)| ips.iter().map(move |ip| (n(name), *ip)))
            .collect();
        z.cnames = self.cnames.iter().map(|(a, t)| (n(a), n(t))).collect();
        z
    }
}

/// A well-behaved server's answer to `req`, for the hostile ones to bend.
fn answer(req: &Message, zone: &FakeZone, udp: bool) -> Message {
    Responder::new(vec![zone.served()], Behaviour::default())
        .answer(req, udp)
        .unwrap_or_else(|| {
            Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code)
        })
}

fn reply_bytes(req: &[u8], zone: &FakeZone, b: &Behaviour, udp: bool) -> Option<Vec<u8>> {
    Responder::new(vec![zone.served()], b.clone()).reply(req, udp)
}

impl FakeServer {
    pub async fn start(zone: FakeZone, b: Behaviour) -> FakeServer {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), zone, b).await
    }

    pub async fn start_on(ip: IpAddr, zone: FakeZone, b: Behaviour) -> FakeServer {
        Self::start_on_port(ip, 0, zone, b).await.expect("bind")
    }

    /// `port` 0 = ephemeral; a fixed port fails with `None` if taken.
    pub async fn start_on_port(
        ip: IpAddr,
        port: u16,
        zone: FakeZone,
        b: Behaviour,
    ) -> Option<FakeServer> {
        let hits = Arc::new(AtomicUsize::new(0));
        let (udp, tcp) = match authdns::bind(SocketAddr::new(ip, port), !b.no_tcp).await {
            Ok(s) => s,
            Err(_) if port != 0 => return None,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = udp.local_addr().unwrap();
        let r = Arc::new(Responder::new(vec![zone.served()], b));
        let tasks = authdns::spawn(udp, tcp, r, hits.clone());
        Some(FakeServer { addr, hits, tasks })
    }
}

/// A loopback address with a port nothing listens on (UDP and TCP).
pub fn closed_port() -> SocketAddr {
    let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let a = u.local_addr().unwrap();
    drop(u);
    a
}

// ---------------------------------------------------------------------------
// Hostile servers: raw bytes instead of well-formed messages.

/// Given the query bytes, the datagrams sent back (any number, any content).
pub type UdpReplies = Arc<dyn Fn(&[u8]) -> Vec<Vec<u8>> + Send + Sync>;
/// Given the query bytes (framing removed), the bytes written back verbatim
/// (framing included, so the length prefix can lie).
pub type TcpReply = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
pub enum TcpHostile {
    /// Reads one framed query, writes the reply (one byte every `drip` if
    /// set), then holds the connection open without writing more.
    Raw {
        reply: TcpReply,
        drip: Option<std::time::Duration>,
    },
    /// Accepts connections and never reads from them.
    NeverRead,
    /// Answers like a well-behaved server for `zone`.
    Good(FakeZone),
}

impl TcpHostile {
    pub fn raw(f: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> Self {
        TcpHostile::Raw {
            reply: Arc::new(f),
            drip: None,
        }
    }
}

/// A well-formed reply to `query` from a well-behaved server for `zone`
/// (empty if the query does not decode).
pub fn good_reply(query: &[u8], zone: &FakeZone) -> Vec<u8> {
    reply_bytes(query, zone, &Behaviour::default(), true).unwrap_or_default()
}

/// A DNS message with its TCP length prefix (the prefix wraps above 64 KiB,
/// which is the point for hostile use).
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

impl FakeServer {
    /// UDP and TCP on one ephemeral port of `ip`, answering with raw bytes.
    pub async fn start_hostile(ip: IpAddr, udp: UdpReplies, tcp: TcpHostile) -> FakeServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let (udp_sock, listener) = loop {
            let u = UdpSocket::bind((ip, 0)).await.expect("bind udp");
            let port = u.local_addr().unwrap().port();
            if let Ok(t) = TcpListener::bind((ip, port)).await {
                break (u, t);
            }
        };
        let addr = udp_sock.local_addr().unwrap();
        let mut tasks = Vec::new();
        {
            let hits = hits.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                loop {
                    let Ok((len, src)) = udp_sock.recv_from(&mut buf).await else {
                        continue;
                    };
                    hits.fetch_add(1, Ordering::Relaxed);
                    for d in udp(&buf[..len]) {
                        let _ = udp_sock.send_to(&d, src).await;
                    }
                }
            }));
        }
        let server_hits = hits.clone();
        tasks.push(tokio::spawn(async move {
            let hits = server_hits;
            // Never-read connections live here so they close with the server;
            // the others end when the client leaves.
            let mut held = Vec::new();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let hits = hits.clone();
                match tcp.clone() {
                    TcpHostile::NeverRead => held.push(s),
                    TcpHostile::Good(zone) => drop(tokio::spawn(async move {
                        loop {
                            let mut lb = [0u8; 2];
                            if s.read_exact(&mut lb).await.is_err() {
                                return;
                            }
                            let mut q = vec![0u8; u16::from_be_bytes(lb) as usize];
                            if s.read_exact(&mut q).await.is_err() {
                                return;
                            }
                            hits.fetch_add(1, Ordering::Relaxed);
                            if s.write_all(&frame(&good_reply(&q, &zone))).await.is_err() {
                                return;
                            }
                        }
                    })),
                    TcpHostile::Raw { reply, drip } => drop(tokio::spawn(async move {
                        let mut lb = [0u8; 2];
                        if s.read_exact(&mut lb).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(lb) as usize];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        hits.fetch_add(1, Ordering::Relaxed);
                        let out = reply(&q);
                        match drip {
                            None => {
                                let _ = s.write_all(&out).await;
                            }
                            Some(every) => {
                                for b in out {
                                    if s.write_all(&[b]).await.is_err() {
                                        return;
                                    }
                                    tokio::time::sleep(every).await;
                                }
                            }
                        }
                        // Hold the connection open until the client leaves.
                        let mut sink = [0u8; 64];
                        while let Ok(k) = s.read(&mut sink).await {
                            if k == 0 {
                                return;
                            }
                        }
                    })),
                }
            }
        }));
        FakeServer { addr, hits, tasks }
    }
}

// ---------------------------------------------------------------------------
// Hostile replies, built byte by byte from the query they answer.

/// End of the question section of a query (names in queries are not
/// compressed).
fn question_end(q: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let l = *q.get(i)? as usize;
        i += 1;
        if l == 0 {
            break;
        }
        if l & 0xC0 != 0 {
            return None;
        }
        i += l;
    }
    Some(i + 4).filter(|&e| e <= q.len())
}

fn ptr(at: usize) -> [u8; 2] {
    assert!(at < 0x4000, "pointer offset {at}");
    [0xC0 | (at >> 8) as u8, at as u8]
}

/// Type, class IN, TTL 0, RDLENGTH of a record.
fn rr_tail(rtype: u16, rdlen: u16) -> Vec<u8> {
    let mut v = rtype.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    v.extend_from_slice(&rdlen.to_be_bytes());
    v
}

/// Reply header (the query's ID, QR and AA set) and the query's question.
pub fn reply_head(query: &[u8], an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let end = question_end(query).unwrap_or(query.len().min(12));
    let mut v = vec![0u8; 2];
    let idn = query.len().min(2);
    v[..idn].copy_from_slice(&query[..idn]);
    v.extend_from_slice(&[0x84, 0x00]);
    let qd: u16 = if end > 12 { 1 } else { 0 };
    for c in [qd, an, ns, ar] {
        v.extend_from_slice(&c.to_be_bytes());
    }
    v.extend_from_slice(query.get(12..end).unwrap_or_default());
    v
}

/// Hostile reply shapes (all echo the query's ID and question).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// An answer whose owner name is a pointer to itself.
    PointerToSelf,
    /// Two pointers to each other (owner → RDATA → owner).
    PointerPair,
    /// A pointer chain that runs forward through the message.
    ForwardChain,
    /// Thousands of records whose owners each follow a chain of ~8000
    /// backward pointers: decodable, and as costly to decode as a 64 KiB
    /// message can be made.
    LongBackwardChain,
    /// A good reply cut three bytes short.
    Truncated,
    /// A good reply whose answer count claims five more records.
    CountsTooLarge,
    /// A bare header claiming 65535 questions and records.
    HeaderOnlyMaxCounts,
    /// A good reply for another name.
    OtherName,
    /// A good reply for another type.
    OtherType,
    /// A good reply for another class (CH).
    OtherClass,
    /// A good reply padded past `n` bytes with TXT records in the additional section.
    Oversize(usize),
}

impl Hostile {
    pub fn reply(self, query: &[u8], zone: &FakeZone) -> Vec<u8> {
        match self {
            Hostile::PointerToSelf => {
                let mut v = reply_head(query, 1, 0, 0);
                let x = v.len();
                v.extend_from_slice(&ptr(x));
                v.extend(rr_tail(6, 0));
                v
            }
            Hostile::PointerPair => {
                let mut v = reply_head(query, 1, 0, 0);
                let x = v.len();
                v.extend_from_slice(&ptr(x + 12));
                v.extend(rr_tail(5, 2));
                v.extend_from_slice(&ptr(x));
                v
            }
            Hostile::ForwardChain => {
                let mut v = reply_head(query, 1, 0, 0);
                let x = v.len();
                v.extend_from_slice(&ptr(x + 12));
                v.extend(rr_tail(5, 7));
                v.extend_from_slice(&ptr(x + 14));
                v.extend_from_slice(b"\x03foo\x00");
                v
            }
            Hostile::LongBackwardChain => {
                let head = reply_head(query, 0, 0, 0);
                let links = (0x3FFF - head.len() - 16) / 2;
                let records = (65535 - head.len() - 12 - 2 * links) / 16;
                let mut v = reply_head(query, 1 + records as u16, 0, 0);
                // A NULL record whose RDATA is the chain: each link points
                // to the one before, the first to the question name.
                v.extend_from_slice(&ptr(12));
                v.extend(rr_tail(10, (2 * links) as u16));
                let mut prev = 12;
                for _ in 0..links {
                    let here = v.len();
                    v.extend_from_slice(&ptr(prev));
                    prev = here;
                }
                for i in 0..records {
                    v.extend_from_slice(&ptr(prev));
                    v.extend(rr_tail(1, 4));
                    v.extend_from_slice(&[192, 0, 2, i as u8]);
                }
                v
            }
            Hostile::Truncated => {
                let mut v = good_reply(query, zone);
                v.truncate(v.len().saturating_sub(3));
                v
            }
            Hostile::CountsTooLarge => {
                let mut v = good_reply(query, zone);
                if v.len() >= 12 {
                    let an = u16::from_be_bytes([v[6], v[7]]).saturating_add(5);
                    v[6..8].copy_from_slice(&an.to_be_bytes());
                }
                v
            }
            Hostile::HeaderOnlyMaxCounts => {
                let mut v = vec![0u8; 12];
                v[..2].copy_from_slice(&query[..2]);
                v[2] = 0x84;
                for i in (4..12).step_by(2) {
                    v[i..i + 2].copy_from_slice(&u16::MAX.to_be_bytes());
                }
                v
            }
            Hostile::OtherName | Hostile::OtherType | Hostile::OtherClass => {
                let Ok(mut req) = Message::from_vec(query) else {
                    return Vec::new();
                };
                let q = &mut req.queries[0];
                match self {
                    Hostile::OtherName => {
                        let other = n(&format!("other.{}", zone.apex));
                        q.set_name(other);
                    }
                    Hostile::OtherType => {
                        let t = if q.query_type() == RecordType::TXT {
                            RecordType::MX
                        } else {
                            RecordType::TXT
                        };
                        q.set_query_type(t);
                    }
                    _ => {
                        q.set_query_class(hickory_proto::rr::DNSClass::CH);
                    }
                }
                let mut resp = answer(&req, zone, true);
                resp.metadata.authoritative = true;
                resp.to_vec().unwrap_or_default()
            }
            Hostile::Oversize(min) => {
                let Ok(req) = Message::from_vec(query) else {
                    return Vec::new();
                };
                let mut resp = answer(&req, zone, false);
                let apex = n(&zone.apex);
                let chunk = "x".repeat(255);
                let mut size = resp.to_vec().map(|b| b.len()).unwrap_or(0);
                while size <= min {
                    // Each TXT: owner pointer 2 + fixed 10 + 3 strings of 256.
                    let room = 65535usize.saturating_sub(size + 12 + 1);
                    if room == 0 {
                        break;
                    }
                    let strings: Vec<String> = if room >= 3 * 256 {
                        vec![chunk.clone(); 3]
                    } else {
                        vec!["x".repeat(room.min(255))]
                    };
                    resp.add_additional(Record::from_rdata(
                        apex.clone(),
                        60,
                        RData::TXT(hickory_proto::rr::rdata::TXT::new(strings)),
                    ));
                    size = resp.to_vec().map(|b| b.len()).unwrap_or(usize::MAX);
                }
                resp.to_vec().unwrap_or_default()
            }
        }
    }

    /// Every shape, for corpora and loops.
    pub const ALL: [Hostile; 11] = [
        Hostile::PointerToSelf,
        Hostile::PointerPair,
        Hostile::ForwardChain,
        Hostile::LongBackwardChain,
        Hostile::Truncated,
        Hostile::CountsTooLarge,
        Hostile::HeaderOnlyMaxCounts,
        Hostile::OtherName,
        Hostile::OtherType,
        Hostile::OtherClass,
        Hostile::Oversize(4096),
    ];
}

/// A zone whose servers `ns1..=nsK.apex` sit at given addresses of one
/// loopback block, all on one port (the scheduler probes `probe.port`).
#[derive(Clone, Debug)]
pub struct LabZone {
    pub apex: String,
    pub serial: u32,
    /// (NS name, address).
    pub ns: Vec<(String, IpAddr)>,
}

impl LabZone {
    /// Serve the zone on `ip:port`; panics if the port is taken.
    pub async fn serve_on(&self, ip: IpAddr, port: u16) -> FakeServer {
        self.try_serve_on(ip, port).await.expect("bind test server")
    }

    /// Serve the zone on `ip:port`; `None` if the port is taken.
    pub async fn try_serve_on(&self, ip: IpAddr, port: u16) -> Option<FakeServer> {
        let names: Vec<&str> = self.ns.iter().map(|(n, _)| n.as_str()).collect();
        let mut z = FakeZone::new(&self.apex, &names);
        z.serial = self.serial;
        for (n, a) in &self.ns {
            z = z.host(n, *a);
        }
        FakeServer::start_on_port(ip, port, z, Behaviour::default()).await
    }
}

/// A random 127.x.y.0/24 block, so parallel tests do not share addresses.
pub fn loopback_block() -> [u8; 3] {
    let r: u32 = rand::random();
    [127, 1 + (r % 250) as u8, 1 + ((r >> 8) % 250) as u8]
}

pub fn ip(block: [u8; 3], host: u8) -> IpAddr {
    IpAddr::from([block[0], block[1], block[2], host])
}

/// A zone `apex` with servers `ns1..=nsK.apex` at `block.1..=K`, for the
/// given hosts.
pub fn zone(apex: &str, block: [u8; 3], hosts: &[u8]) -> LabZone {
    LabZone {
        apex: apex.into(),
        serial: 2026112301,
        ns: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("ns{}.{apex}", i + 1), ip(block, *h)))
            .collect(),
    }
}

/// A port free on every given address (UDP and TCP), found by binding the
/// first one ephemerally.
pub async fn common_port(ips: &[IpAddr]) -> u16 {
    'outer: for _ in 0..50 {
        let u = std::net::UdpSocket::bind((ips[0], 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        drop(u);
        for ip in ips {
            let ok = std::net::UdpSocket::bind((*ip, port)).is_ok()
                && std::net::TcpListener::bind((*ip, port)).is_ok();
            if !ok {
                continue 'outer;
            }
        }
        return port;
    }
    panic!("no common free port");
}

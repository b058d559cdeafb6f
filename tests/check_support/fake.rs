//! Misbehaving (or well-behaved) authoritative servers built on hickory-proto
//! and tokio sockets, on loopback with an ephemeral port.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

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
}

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

fn answer(req: &Message, zone: &FakeZone, b: &Behaviour, udp: bool) -> Message {
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.queries = req.queries.clone();
    if b.wrong_id {
        resp.metadata.id = req.metadata.id.wrapping_add(1);
    }
    if b.formerr_edns && req.edns.is_some() {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    }
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        resp.set_edns(e);
    }
    if b.refuse {
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    }
    if udp && b.always_tc {
        resp.metadata.truncation = true;
        resp.metadata.authoritative = !b.no_aa;
        return resp;
    }
    let Some(q) = req.queries.first() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    let apex = n(&zone.apex);
    let qn = q.name().clone();
    let in_zone = apex.zone_of(&qn);
    resp.metadata.authoritative = in_zone && !b.no_aa;
    let key = qn
        .to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string();
    if qn.eq_ignore_root(&apex) {
        if b.nxdomain_apex {
            resp.metadata.response_code = ResponseCode::NXDomain;
            return resp;
        }
        match q.query_type() {
            RecordType::SOA if !b.no_soa => {
                let soa = SOA::new(
                    n(zone.ns.first().map(String::as_str).unwrap_or("ns.invalid")),
                    n(&zone.rname),
                    zone.serial,
                    3600,
                    900,
                    1209600,
                    3600,
                );
                resp.add_answer(Record::from_rdata(apex.clone(), 3600, RData::SOA(soa)));
            }
            RecordType::NS => {
                for ns in &zone.ns {
                    resp.add_answer(Record::from_rdata(apex.clone(), 3600, RData::NS(NS(n(ns)))));
                }
            }
            _ => {}
        }
        return resp;
    }
    if let Some(target) = zone.cnames.get(&key) {
        // As a recursive resolver would: the alias, then the target's data.
        resp.add_answer(Record::from_rdata(
            qn.clone(),
            3600,
            RData::CNAME(CNAME(n(target))),
        ));
        for ip in zone.hosts.get(target.as_str()).into_iter().flatten() {
            if let (IpAddr::V4(v4), RecordType::A) = (ip, q.query_type()) {
                resp.add_answer(Record::from_rdata(n(target), 3600, RData::A(A(*v4))));
            }
        }
        return resp;
    }
    if let Some(ips) = zone.hosts.get(&key) {
        for ip in ips {
            match (ip, q.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => {
                    resp.add_answer(Record::from_rdata(qn.clone(), 3600, RData::A(A(*v4))));
                }
                (IpAddr::V6(v6), RecordType::AAAA) => {
                    resp.add_answer(Record::from_rdata(
                        qn.clone(),
                        3600,
                        RData::AAAA(hickory_proto::rr::rdata::AAAA(*v6)),
                    ));
                }
                _ => {}
            }
        }
        return resp;
    }
    if in_zone {
        resp.metadata.response_code = ResponseCode::NXDomain;
        return resp;
    }
    if b.open_recursion && req.metadata.recursion_desired {
        resp.metadata.recursion_available = true;
        resp.add_answer(Record::from_rdata(
            qn,
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 77))),
        ));
        return resp;
    }
    resp.metadata.response_code = ResponseCode::Refused;
    resp
}

fn reply_bytes(req: &[u8], zone: &FakeZone, b: &Behaviour, udp: bool) -> Option<Vec<u8>> {
    if b.silent {
        return None;
    }
    if b.garbage {
        let len = 12 + (rand::random::<u8>() as usize);
        return Some((0..len).map(|_| rand::random::<u8>()).collect());
    }
    let msg = Message::from_vec(req).ok()?;
    answer(&msg, zone, b, udp).to_vec().ok()
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
        let zone = Arc::new(zone);
        let hits = Arc::new(AtomicUsize::new(0));
        // Same port for UDP and TCP: bind UDP on port 0, then TCP on that port.
        let (udp, tcp) = loop {
            let udp = match UdpSocket::bind((ip, port)).await {
                Ok(u) => u,
                Err(_) if port != 0 => return None,
                Err(e) => panic!("bind udp: {e}"),
            };
            let port_now = udp.local_addr().unwrap().port();
            if b.no_tcp {
                // Hold the TCP port closed: nothing listens there.
                break (udp, None);
            }
            match TcpListener::bind((ip, port_now)).await {
                Ok(t) => break (udp, Some(t)),
                Err(_) if port != 0 => return None,
                Err(_) => {}
            }
        };
        let addr = udp.local_addr().unwrap();
        let mut tasks = Vec::new();
        {
            let zone = zone.clone();
            let b = b.clone();
            let hits = hits.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let other = UdpSocket::bind((ip, 0)).await.expect("bind other");
                loop {
                    let Ok((len, src)) = udp.recv_from(&mut buf).await else {
                        continue;
                    };
                    hits.fetch_add(1, Ordering::Relaxed);
                    if let Some(out) = reply_bytes(&buf[..len], &zone, &b, true) {
                        let from = if b.other_source { &other } else { &udp };
                        let _ = from.send_to(&out, src).await;
                    }
                }
            }));
        }
        if let Some(tcp) = tcp {
            let hits = hits.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = tcp.accept().await else {
                        continue;
                    };
                    let zone = zone.clone();
                    let b = b.clone();
                    let hits = hits.clone();
                    tokio::spawn(async move {
                        loop {
                            let mut lb = [0u8; 2];
                            if s.read_exact(&mut lb).await.is_err() {
                                return;
                            }
                            let mut buf = vec![0u8; u16::from_be_bytes(lb) as usize];
                            if s.read_exact(&mut buf).await.is_err() {
                                return;
                            }
                            hits.fetch_add(1, Ordering::Relaxed);
                            match reply_bytes(&buf, &zone, &b, false) {
                                Some(out) => {
                                    let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                                    framed.extend_from_slice(&out);
                                    if s.write_all(&framed).await.is_err() {
                                        return;
                                    }
                                }
                                None => {
                                    // Silent: hold the connection open until the client gives up.
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
                    });
                }
            }));
        }
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

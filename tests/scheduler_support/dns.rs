//! A small authoritative server for one zone, built on hickory-proto and
//! tokio sockets (UDP and TCP on the same loopback address and port), that
//! tests start and stop to simulate outages. Adapted from the verifier's
//! test helper (`tests/check_support/fake.rs` on branch `verifier`).
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// The zone a server answers for: apex, NS names with their addresses.
#[derive(Clone, Debug)]
pub struct Zone {
    pub apex: String,
    pub serial: u32,
    /// (NS name, IPv4 address) — served as NS and A records.
    pub ns: Vec<(String, IpAddr)>,
}

fn n(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

fn answer(req: &Message, zone: &Zone) -> Message {
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.queries = req.queries.clone();
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        resp.set_edns(e);
    }
    let Some(q) = req.queries.first() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    let apex = n(&zone.apex);
    let qn = q.name().clone();
    if !apex.zone_of(&qn) {
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    }
    resp.metadata.authoritative = true;
    if qn.eq_ignore_root(&apex) {
        match q.query_type() {
            RecordType::SOA => {
                let soa = SOA::new(
                    n(&zone.ns[0].0),
                    n(&format!("hostmaster.{}", zone.apex)),
                    zone.serial,
                    3600,
                    900,
                    1_209_600,
                    3600,
                );
                resp.add_answer(Record::from_rdata(apex.clone(), 3600, RData::SOA(soa)));
            }
            RecordType::NS => {
                for (ns, _) in &zone.ns {
                    resp.add_answer(Record::from_rdata(apex.clone(), 3600, RData::NS(NS(n(ns)))));
                }
            }
            _ => {}
        }
        return resp;
    }
    let key = qn.to_lowercase().to_ascii();
    let key = key.trim_end_matches('.');
    let mut found = false;
    for (ns, ip) in &zone.ns {
        if ns == key {
            found = true;
            if let (IpAddr::V4(v4), RecordType::A) = (ip, q.query_type()) {
                resp.add_answer(Record::from_rdata(qn.clone(), 3600, RData::A(A(*v4))));
            }
        }
    }
    if !found {
        resp.metadata.response_code = ResponseCode::NXDomain;
    }
    resp
}

fn reply(req: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    let msg = Message::from_vec(req).ok()?;
    answer(&msg, zone).to_vec().ok()
}

/// A running server; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Server {
    /// Serve `zone` on `ip:port` (port 0: ephemeral). `None` if taken.
    pub async fn start(ip: IpAddr, port: u16, zone: Zone) -> Option<Server> {
        let zone = Arc::new(zone);
        let hits = Arc::new(AtomicUsize::new(0));
        let (udp, tcp) = loop {
            let udp = match UdpSocket::bind((ip, port)).await {
                Ok(u) => u,
                Err(_) => return None,
            };
            let p = udp.local_addr().ok()?.port();
            match TcpListener::bind((ip, p)).await {
                Ok(t) => break (udp, t),
                Err(_) if port != 0 => return None,
                Err(_) => {}
            }
        };
        let addr = udp.local_addr().ok()?;
        let mut tasks = Vec::new();
        {
            let zone = zone.clone();
            let hits = hits.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((len, src)) = udp.recv_from(&mut buf).await else {
                        continue;
                    };
                    hits.fetch_add(1, Ordering::Relaxed);
                    if let Some(out) = reply(&buf[..len], &zone) {
                        let _ = udp.send_to(&out, src).await;
                    }
                }
            }));
        }
        {
            let hits = hits.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = tcp.accept().await else {
                        continue;
                    };
                    let zone = zone.clone();
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
                            let Some(out) = reply(&buf, &zone) else {
                                return;
                            };
                            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&out);
                            if s.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }));
        }
        Some(Server { addr, hits, tasks })
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
pub fn zone(apex: &str, block: [u8; 3], hosts: &[u8]) -> Zone {
    Zone {
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

//! One DNS exchange over UDP or TCP, with matching of the reply to the query
//! (ID, question, source) and strict bounds on time and size.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::{Outcome, Reply};

/// EDNS(0) UDP payload size we advertise (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest DNS message accepted (the TCP length prefix bounds it anyway).
pub const MAX_MESSAGE: usize = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

pub(super) struct Question<'a> {
    pub name: &'a Name,
    pub qtype: RecordType,
    pub edns: bool,
    pub rd: bool,
}

fn build(q: &Question<'_>, id: u16) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = q.rd;
    let mut query = Query::query(q.name.clone(), q.qtype);
    query.set_query_class(DNSClass::IN);
    m.add_query(query);
    if q.edns {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        e.set_version(0);
        m.set_edns(e);
    }
    m.to_vec().map_err(|e| format!("cannot encode query: {e}"))
}

enum Verdict {
    Accept(Box<Reply>),
    /// Not the reply to this query (wrong ID, not a response, other
    /// question): ignore it and keep waiting.
    Mismatch,
    /// Undecodable. `ours` when the first two bytes carry our ID.
    Malformed {
        why: String,
        ours: bool,
    },
}

fn judge(bytes: &[u8], id: u16, q: &Question<'_>, rtt: Duration, transport: Transport) -> Verdict {
    let ours = bytes.len() >= 2 && u16::from_be_bytes([bytes[0], bytes[1]]) == id;
    // The decoder is not expected to panic, but bytes from the network must
    // never take the process down.
    let decoded = std::panic::catch_unwind(|| Message::from_vec(bytes));
    let msg = match decoded {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return Verdict::Malformed {
                why: format!("undecodable {} bytes: {e}", bytes.len()),
                ours,
            }
        }
        Err(_) => {
            return Verdict::Malformed {
                why: format!("undecodable {} bytes", bytes.len()),
                ours,
            }
        }
    };
    let md = &msg.metadata;
    if md.id != id || md.message_type != MessageType::Response {
        return Verdict::Mismatch;
    }
    let question_ok = match msg.queries.as_slice() {
        [one] => {
            one.name().eq_ignore_root(q.name)
                && one.query_type() == q.qtype
                && one.query_class() == DNSClass::IN
        }
        // RFC 1035 lets error replies (FORMERR…) omit the question.
        [] => md.response_code != ResponseCode::NoError,
        _ => false,
    };
    if !question_ok {
        return Verdict::Mismatch;
    }
    Verdict::Accept(Box::new(Reply {
        rcode: md.response_code,
        aa: md.authoritative,
        tc: md.truncation,
        ra: md.recursion_available,
        edns: msg.edns.is_some(),
        answers: msg.answers,
        authorities: msg.authorities,
        additionals: msg.additionals,
        rtt,
        size: bytes.len(),
        transport,
    }))
}

fn io(e: std::io::Error) -> Outcome {
    Outcome::Io(match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::UnexpectedEof => "connection closed before a full reply".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    })
}

/// UDP: send, wait; resend up to `retries` times within the same overall
/// `timeout`, so a dead server costs exactly one timeout.
pub(super) async fn udp(
    addr: SocketAddr,
    q: &Question<'_>,
    timeout: Duration,
    retries: u32,
) -> Outcome {
    let id: u16 = rand::random();
    let bytes = match build(q, id) {
        Ok(b) => b,
        Err(e) => return Outcome::Io(e),
    };
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return io(e),
    };
    // Connected: the kernel drops datagrams from other sources and reports
    // ICMP port-unreachable as ECONNREFUSED.
    if let Err(e) = sock.connect(addr).await {
        return io(e);
    }
    let start = Instant::now();
    let attempts = retries.saturating_add(1).min(16);
    let slice = timeout / attempts;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut malformed: Option<String> = None;
    for attempt in 1..=attempts {
        let sent = Instant::now();
        if let Err(e) = sock.send(&bytes).await {
            return io(e);
        }
        let until = if attempt == attempts {
            start + timeout
        } else {
            start + slice * attempt
        };
        loop {
            match timeout_at(until, sock.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return io(e),
                Ok(Ok((n, src))) => {
                    if src != addr {
                        continue;
                    }
                    match judge(&buf[..n], id, q, sent.elapsed(), Transport::Udp) {
                        Verdict::Accept(r) => return Outcome::Reply(*r),
                        Verdict::Mismatch => continue,
                        Verdict::Malformed { why, ours: true } => return Outcome::Malformed(why),
                        Verdict::Malformed { why, ours: false } => malformed = Some(why),
                    }
                }
            }
        }
    }
    match malformed {
        Some(why) => Outcome::Malformed(why),
        None => Outcome::Timeout,
    }
}

/// TCP: one connection, one query; replies with another ID are skipped.
pub(super) async fn tcp(addr: SocketAddr, q: &Question<'_>, timeout: Duration) -> Outcome {
    let id: u16 = rand::random();
    let bytes = match build(q, id) {
        Ok(b) => b,
        Err(e) => return Outcome::Io(e),
    };
    let Ok(len) = u16::try_from(bytes.len()) else {
        return Outcome::Io("query too large".into());
    };
    let deadline = Instant::now() + timeout;
    let run = async {
        let sent = Instant::now();
        let mut s = TcpStream::connect(addr).await.map_err(io)?;
        let _ = s.set_nodelay(true);
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).await.map_err(io)?;
        loop {
            let mut lb = [0u8; 2];
            s.read_exact(&mut lb).await.map_err(io)?;
            let n = usize::from(u16::from_be_bytes(lb));
            let mut buf = vec![0u8; n.min(MAX_MESSAGE)];
            s.read_exact(&mut buf).await.map_err(io)?;
            match judge(&buf, id, q, sent.elapsed(), Transport::Tcp) {
                Verdict::Accept(r) => return Ok(Outcome::Reply(*r)),
                Verdict::Mismatch => continue,
                // The stream cannot be trusted after garbage.
                Verdict::Malformed { why, .. } => return Ok(Outcome::Malformed(why)),
            }
        }
    };
    match timeout_at(deadline, run).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok(o)) | Ok(Err(o)) => o,
    }
}

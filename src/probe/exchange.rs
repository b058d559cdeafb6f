//! One DNS exchange over UDP or TCP, with matching of the reply to the query
//! (ID, question, source) and strict bounds on time and size. The messages
//! are [`super::wire`]'s; the shared sockets and connections are
//! [`super::udp`]'s and [`super::tcp`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::answer::Outcome;
use super::answer::Transport;
use super::wire::{build, judge, read_message, Judged, Question, MAX_MESSAGE};

fn io(e: std::io::Error) -> Outcome {
    Outcome::Io(match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::UnexpectedEof => "connection closed before a full reply".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    })
}

/// UDP: send, wait; resend up to `retries` times within the same overall
/// `timeout`, so a dead server costs exactly one timeout. Each re-send
/// first awaits `pace` (the per-address cap: every packet takes a permit);
/// as for a first send, that wait does not count against the timeout.
/// The socket is the one shared by the queries to `addr` in flight
/// ([`super::udp`]); the ID is unique among them.
pub(super) async fn udp<F: std::future::Future>(
    sockets: &super::udp::Sockets,
    addr: SocketAddr,
    q: &Question<'_>,
    timeout: Duration,
    retries: u32,
    pace: impl Fn() -> F,
) -> Outcome {
    use super::udp::Delivery;
    let mut ticket = match sockets.ticket(addr) {
        Ok(t) => t,
        Err(e) => return io(e),
    };
    let id = ticket.id;
    let bytes = match build(q, id) {
        Ok(b) => b,
        Err(e) => return Outcome::Io(e),
    };
    // Shifted by the time re-sends waited for a permit.
    let mut start = Instant::now();
    let attempts = retries.saturating_add(1).min(16);
    let slice = timeout / attempts;
    let mut malformed: Option<String> = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            // Replies to an earlier send keep arriving meanwhile (same ID)
            // and are read below.
            let waiting = Instant::now();
            pace().await;
            start += waiting.elapsed();
        }
        let sent = Instant::now();
        if let Err(e) = ticket.send(&bytes).await {
            return io(e);
        }
        let until = if attempt == attempts {
            start + timeout
        } else {
            start + slice * attempt
        };
        loop {
            match timeout_at(until, ticket.inbox.recv()).await {
                Err(_) => break,
                // The reader ended: only when the runtime shuts down.
                Ok(None) => return Outcome::Io("prober is shutting down".into()),
                Ok(Some(Delivery::Error(kind, msg))) => return io(std::io::Error::new(kind, msg)),
                Ok(Some(Delivery::Stray(why))) => malformed = Some(why),
                Ok(Some(Delivery::Datagram(buf, at))) => {
                    let rtt = at.saturating_duration_since(sent);
                    match judge(&buf, id, q, rtt, Transport::Udp) {
                        Judged::Accept(r) => return Outcome::Reply(*r),
                        Judged::Mismatch => continue,
                        Judged::Malformed { why, ours: true } => return Outcome::Malformed(why),
                        Judged::Malformed { why, ours: false } => malformed = Some(why),
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
            let n = usize::from(u16::from_be_bytes(lb)).min(MAX_MESSAGE);
            let buf = read_message(&mut s, n).await.map_err(io)?;
            match judge(&buf, id, q, sent.elapsed(), Transport::Tcp) {
                Judged::Accept(r) => return Ok(Outcome::Reply(*r)),
                Judged::Mismatch => continue,
                // The stream cannot be trusted after garbage.
                Judged::Malformed { why, .. } => return Ok(Outcome::Malformed(why)),
            }
        }
    };
    match timeout_at(deadline, run).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok(o)) | Ok(Err(o)) => o,
    }
}

/// How a pooled TCP query gets onto a connection.
pub(super) enum TcpStart {
    /// A place on the address's current connection.
    Join(super::tcp::Ticket),
    /// The address's connection slot, to open a new one with (inside the
    /// query's timeout, like the connect of an unpooled query); shared
    /// with later queries or the query's own.
    Open {
        slot: super::polite::TcpSlot,
        share: bool,
    },
}

/// TCP on a connection shared with the round's other queries to `addr`
/// ([`super::tcp`]). Also says whether a broken connection had carried
/// other queries too (the query is then asked again on one of its own
/// without spending a retry).
pub(super) async fn tcp_pooled(
    pool: &super::tcp::Pool,
    addr: SocketAddr,
    start: TcpStart,
    q: &Question<'_>,
    timeout: Duration,
) -> (Outcome, bool) {
    use super::tcp::{Delivery, Ended};
    let deadline = Instant::now() + timeout;
    let run = async {
        let sent = Instant::now();
        let mut ticket = match start {
            TcpStart::Join(t) => t,
            TcpStart::Open { slot, share } => pool
                .open(addr, q.qtype, slot, share)
                .await
                .map_err(|e| (io(e), false))?,
        };
        let id = ticket.id;
        let bytes = build(q, id).map_err(|e| (Outcome::Io(e), false))?;
        let Ok(len) = u16::try_from(bytes.len()) else {
            return Err((Outcome::Io("query too large".into()), false));
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if !ticket.send(framed).await {
            let shared = ticket.shared();
            return Err((io(std::io::ErrorKind::UnexpectedEof.into()), shared));
        }
        loop {
            match ticket.inbox.recv().await {
                // The connection's tasks ended: only at shutdown.
                None => return Err((Outcome::Io("prober is shutting down".into()), false)),
                Some(Delivery::Message(buf, at)) => {
                    let rtt = at.saturating_duration_since(sent);
                    match judge(&buf, id, q, rtt, Transport::Tcp) {
                        Judged::Accept(r) => return Ok(Outcome::Reply(*r)),
                        Judged::Mismatch => continue,
                        Judged::Malformed { why, .. } => {
                            // The stream cannot be trusted after garbage.
                            ticket.conn.poison();
                            return Ok(Outcome::Malformed(why));
                        }
                    }
                }
                Some(Delivery::Ended { why, shared }) => {
                    return Err(match why {
                        // A write into a connection the server closed
                        // meanwhile: closed, as a read would have found.
                        Ended::Io(std::io::ErrorKind::BrokenPipe, _) => {
                            (io(std::io::ErrorKind::UnexpectedEof.into()), shared)
                        }
                        Ended::Io(kind, msg) => (io(std::io::Error::new(kind, msg)), shared),
                        Ended::Malformed(why) => (Outcome::Malformed(why), false),
                    });
                }
            }
        }
    };
    match timeout_at(deadline, run).await {
        Err(_) => (Outcome::Timeout, false),
        Ok(Ok(o)) => (o, false),
        Ok(Err(e)) => e,
    }
}

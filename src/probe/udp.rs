//! UDP sockets shared by the queries to one server address.
//!
//! A socket per query cost a bind, a connect and a close in the kernel and a
//! zeroed 64 KiB buffer per query — most of the prober's CPU at a shared
//! hoster's scale. Instead every query to an address in flight at the same
//! time uses one socket connected to that address (so the kernel still
//! drops datagrams from other sources and still reports ICMP
//! port-unreachable as "connection refused"), with a distinct ID per query
//! in flight; one reader per socket hands each datagram to the query whose
//! ID it carries. A socket closes about [`LINGER`] after its last query
//! ended (so queries paced by a per-address cap still share it).
//!
//! What a query sees is what it saw on a socket of its own: every
//! datagram with its ID (judged by the query: a wrong question is skipped),
//! a datagram that carries no ID in flight but does not decode (a query
//! remembers it as malformed, not its own), and the socket's errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::answer::Transport;
use super::wire::{judge_reply, Judged, MAX_MESSAGE};

/// Receive buffer asked of the kernel per socket: a burst of replies to
/// every query in flight to one address must not overflow it (capped by
/// `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// Datagrams queued for one query before more are dropped (a flood of
/// replies with its ID but the wrong question).
const PER_QUERY_QUEUE: usize = 8;
/// How long an unused socket is kept (between one and two of these).
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the reader hands a query.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A datagram with the query's ID, and when it arrived.
    Datagram(Vec<u8>, Instant),
    /// A datagram with no ID in flight that does not decode.
    Stray(String),
    /// The socket reported an error (ICMP unreachable…).
    Error(std::io::ErrorKind, String),
}

type Waiters = Mutex<HashMap<u16, mpsc::Sender<Delivery>>>;

/// One connected socket and its reader.
pub(super) struct Shared {
    sock: Arc<UdpSocket>,
    waiters: Arc<Waiters>,
    /// The socket reported an error (its queries were told): later
    /// queries take a fresh socket, whose own errors they then see (the
    /// kernel keeps one pending error per socket).
    broken: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A query's registration on a [`Shared`] socket: its ID and its inbox.
pub(super) struct Ticket {
    shared: Arc<Shared>,
    pub id: u16,
    pub inbox: mpsc::Receiver<Delivery>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.shared.waiters).remove(&self.id);
    }
}

impl Ticket {
    /// Send on the shared socket. An error reported here (a pending ICMP
    /// error of an earlier datagram) is every query's on the socket, as
    /// the reader's are.
    pub async fn send(&self, bytes: &[u8]) -> std::io::Result<usize> {
        let sent = self.shared.sock.send(bytes).await;
        if let Err(e) = &sent {
            let (kind, msg) = (e.kind(), e.to_string());
            self.shared.broken.store(true, Ordering::Relaxed);
            broadcast(&self.shared.waiters, || Delivery::Error(kind, msg.clone()));
        }
        sent
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared sockets of one prober, by server address (with when each
/// was last handed out), and when unused ones were last closed.
type ByAddr = (HashMap<SocketAddr, (Arc<Shared>, Instant)>, Option<Instant>);

#[derive(Default)]
pub(super) struct Sockets {
    by_addr: Mutex<ByAddr>,
}

impl Sockets {
    /// A fresh ID on `addr`'s socket (opened if none is in use) and the
    /// inbox its datagrams arrive in.
    pub fn ticket(&self, addr: SocketAddr) -> std::io::Result<Ticket> {
        let shared = {
            let now = Instant::now();
            let mut g = lock(&self.by_addr);
            let (m, pruned) = &mut *g;
            // Close the sockets unused for a while, at most once per LINGER.
            if pruned.is_none_or(|t| now.duration_since(t) >= LINGER) {
                m.retain(|_, (s, used)| {
                    Arc::strong_count(s) > 1 || now.duration_since(*used) < LINGER
                });
                *pruned = Some(now);
            }
            match m.get_mut(&addr) {
                Some((s, used)) if !s.broken.load(Ordering::Relaxed) => {
                    *used = now;
                    s.clone()
                }
                _ => {
                    let s = Arc::new(open(addr)?);
                    m.insert(addr, (s.clone(), now));
                    s
                }
            }
        };
        let (tx, inbox) = mpsc::channel(PER_QUERY_QUEUE);
        let id = {
            let mut w = lock(&shared.waiters);
            // At most 65,536 IDs; the in-flight bound keeps far fewer.
            let mut id: u16 = rand::random();
            while w.contains_key(&id) {
                id = rand::random();
            }
            w.insert(id, tx);
            id
        };
        let t = Ticket { shared, id, inbox };
        // Registered after the socket's error was told to its queries:
        // take a fresh socket (the broken one is replaced in the map).
        if t.shared.broken.load(Ordering::Relaxed) {
            drop(t);
            return self.ticket(addr);
        }
        Ok(t)
    }
}

fn open(addr: SocketAddr) -> std::io::Result<Shared> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps it at rmem_max.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    s.set_nonblocking(true)?;
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    s.bind(&bind.into())?;
    s.connect(&addr.into())?;
    let sock = Arc::new(UdpSocket::from_std(s.into())?);
    let waiters: Arc<Waiters> = Arc::default();
    let broken = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read(sock.clone(), waiters.clone(), broken.clone()));
    Ok(Shared {
        sock,
        waiters,
        broken,
        reader,
    })
}

/// Hand every datagram to the query whose ID it carries.
async fn read(sock: Arc<UdpSocket>, waiters: Arc<Waiters>, broken: Arc<AtomicBool>) {
    // One buffer for the socket's life, not one per query.
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match sock.recv(&mut buf).await {
            Ok(n) => {
                let at = Instant::now();
                let bytes = &buf[..n];
                let owner = (n >= 2)
                    .then(|| u16::from_be_bytes([bytes[0], bytes[1]]))
                    .and_then(|id| lock(&waiters).get(&id).cloned());
                match owner {
                    Some(tx) => {
                        let _ = tx.try_send(Delivery::Datagram(bytes.to_vec(), at));
                    }
                    None => {
                        // Nobody's reply: each query on its own socket
                        // would have judged it as another query's (ignored)
                        // unless it does not decode at all.
                        if let Some(why) = malformed(bytes) {
                            broadcast(&waiters, || Delivery::Stray(why.clone()));
                        }
                    }
                }
            }
            Err(e) => {
                let (kind, msg) = (e.kind(), e.to_string());
                // Before telling: a query registering after this sees it.
                broken.store(true, Ordering::Relaxed);
                broadcast(&waiters, || Delivery::Error(kind, msg.clone()));
            }
        }
    }
}

fn broadcast(waiters: &Waiters, what: impl Fn() -> Delivery) {
    let all: Vec<_> = lock(waiters).values().cloned().collect();
    for tx in all {
        let _ = tx.try_send(what());
    }
}

/// Why `bytes` is not a decodable DNS message, if it is not.
pub(super) fn malformed(bytes: &[u8]) -> Option<String> {
    let root = hickory_proto::rr::Name::root();
    match judge_reply(
        bytes,
        0,
        &root,
        hickory_proto::rr::RecordType::SOA,
        std::time::Duration::ZERO,
        Transport::Udp,
    ) {
        Judged::Malformed { why, .. } => Some(why),
        Judged::Accept(_) | Judged::Mismatch => None,
    }
}

//! TCP connections shared by a scheduler round's queries to one server
//! address (RFC 7766 §6.2.1: pipelined queries, answers matched by ID).
//! Scheduler rounds use it (their queries run under `SHARE_TCP`); a one-off
//! check opens a connection per query.
//!
//! A connection per query cost a three-way handshake and a close on both
//! sides for every TCP query of a testing round. Scheduler rounds instead
//! send a TCP query on the address's current connection when one is open
//! and young (at most [`MAX_AGE`] old and [`MAX_PIPELINE`] queries in
//! flight), else open one — after the address's `probe.per_address_tcp`
//! slot, which a connection holds for its whole life, so that cap still
//! bounds the connections open to the address. A connection closes when
//! its last query ends, so a server that stops accepting connections is
//! seen within [`MAX_AGE`].
//!
//! A query whose shared connection broke (a server closing after some
//! queries, or one that does not take pipelined queries) is asked again on
//! a connection of its own without spending a retry, and from there on is
//! retried as a one-off check's query is: sharing never leaves a query
//! fewer chances than a connection of its own would have had.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::polite::TcpSlot;

/// A connection older than this takes no new query.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Queries in flight on one connection at most; more open another.
pub const MAX_PIPELINE: usize = 64;
/// Framed queries waiting to be written on one connection.
const WRITE_QUEUE: usize = MAX_PIPELINE;
/// Messages queued for one query before more are dropped.
const PER_QUERY_QUEUE: usize = 4;

/// What the reader hands a query.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A message with the query's ID, and when it arrived.
    Message(Vec<u8>, Instant),
    /// The stream broke or carried garbage: the query ends with this.
    /// `shared` says whether the connection carried other queries too.
    Ended { why: Ended, shared: bool },
}

#[derive(Debug, Clone)]
pub(super) enum Ended {
    Io(std::io::ErrorKind, String),
    Malformed(String),
}

type Waiters = Mutex<HashMap<u16, mpsc::Sender<Delivery>>>;

pub(super) struct Conn {
    frames: mpsc::Sender<Vec<u8>>,
    waiters: Arc<Waiters>,
    opened: Instant,
    in_flight: AtomicUsize,
    /// Queries ever placed on it.
    placed: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
    tasks: [tokio::task::JoinHandle<()>; 2],
    _slot: TcpSlot,
}

impl Drop for Conn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Conn {
    fn usable(&self) -> bool {
        !self.dead.load(Ordering::Relaxed)
            && self.opened.elapsed() < MAX_AGE
            && self.in_flight.load(Ordering::Relaxed) < MAX_PIPELINE
    }

    /// The stream cannot be trusted any more (garbage on it, a query
    /// given up half written): nothing new joins it.
    pub fn poison(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }
}

/// A query's place on a connection.
pub(super) struct Ticket {
    pub conn: Arc<Conn>,
    pub id: u16,
    pub inbox: mpsc::Receiver<Delivery>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.conn.waiters).remove(&self.id);
        self.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Ticket {
    /// The connection carried other queries too.
    pub fn shared(&self) -> bool {
        self.conn.placed.load(Ordering::Relaxed) > 1
    }

    /// Queue the framed query for writing (cancel-safe: the writer task
    /// writes whole frames only).
    pub async fn send(&self, framed: Vec<u8>) -> bool {
        self.conn.frames.send(framed).await.is_ok()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current connection per address and query type: a server that
/// leaves one type unanswered on a connection (and so blocks the queries
/// behind it) holds up only queries of that type, which it would not have
/// answered either.
#[derive(Default)]
pub(super) struct Pool {
    by_addr: Mutex<HashMap<(SocketAddr, RecordType), Weak<Conn>>>,
    /// Told when a shared connection opens, by address shard: queries
    /// waiting for a connection slot join it instead of waiting for a
    /// connection to close.
    opened: [tokio::sync::Notify; SHARDS],
}

// (`Default` is derived for arrays of up to 32.)
const SHARDS: usize = 32;

fn shard(addr: SocketAddr) -> usize {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (KEYS.get_or_init(Default::default).hash_one(addr) % SHARDS as u64) as usize
}

const PRUNE_AT: usize = 4096;

impl Pool {
    /// Told when a shared connection to `addr` opens.
    pub fn opened(&self, addr: SocketAddr) -> &tokio::sync::Notify {
        &self.opened[shard(addr)]
    }

    /// A place on `addr`'s current connection for `qtype`, if one is
    /// usable.
    pub fn join(&self, addr: SocketAddr, qtype: RecordType) -> Option<Ticket> {
        let conn = {
            let m = lock(&self.by_addr);
            m.get(&(addr, qtype)).and_then(Weak::upgrade)
        }?;
        if !conn.usable() {
            return None;
        }
        let t = ticket(conn);
        // Registered after the connection ended (its queries were all told
        // before this one joined): not usable after all.
        (!t.conn.dead.load(Ordering::Relaxed)).then_some(t)
    }

    /// Open a connection to `addr` holding `slot` and, if `share`, make
    /// it the address's current one for `qtype`.
    pub async fn open(
        &self,
        addr: SocketAddr,
        qtype: RecordType,
        slot: TcpSlot,
        share: bool,
    ) -> std::io::Result<Ticket> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let waiters: Arc<Waiters> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let placed = Arc::new(AtomicUsize::new(0));
        let (frames, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let writer = {
            let (waiters, dead, placed) = (waiters.clone(), dead.clone(), placed.clone());
            tokio::spawn(async move {
                while let Some(f) = queue.recv().await {
                    if let Err(e) = wr.write_all(&f).await {
                        dead.store(true, Ordering::Relaxed);
                        let shared = placed.load(Ordering::Relaxed) > 1;
                        end_all(&waiters, Ended::Io(e.kind(), e.to_string()), shared);
                        return;
                    }
                }
            })
        };
        let reader = {
            let (waiters, dead, placed) = (waiters.clone(), dead.clone(), placed.clone());
            tokio::spawn(async move {
                let why = loop {
                    let mut lb = [0u8; 2];
                    if let Err(e) = rd.read_exact(&mut lb).await {
                        break Ended::Io(e.kind(), e.to_string());
                    }
                    let n = usize::from(u16::from_be_bytes(lb));
                    let msg = match super::wire::read_message(&mut rd, n).await {
                        Ok(m) => m,
                        Err(e) => break Ended::Io(e.kind(), e.to_string()),
                    };
                    let at = Instant::now();
                    let owner = (msg.len() >= 2)
                        .then(|| u16::from_be_bytes([msg[0], msg[1]]))
                        .and_then(|id| lock(&waiters).get(&id).cloned());
                    match owner {
                        Some(tx) => {
                            let _ = tx.try_send(Delivery::Message(msg, at));
                        }
                        None => {
                            // On a connection of its own a query skips
                            // another ID's message and stops at garbage.
                            if let Some(why) = super::udp::malformed(&msg) {
                                break Ended::Malformed(why);
                            }
                        }
                    }
                };
                dead.store(true, Ordering::Relaxed);
                end_all(&waiters, why, placed.load(Ordering::Relaxed) > 1);
            })
        };
        let conn = Arc::new(Conn {
            frames,
            waiters,
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            placed,
            dead,
            tasks: [writer, reader],
            _slot: slot,
        });
        if share {
            let mut m = lock(&self.by_addr);
            if m.len() > PRUNE_AT {
                m.retain(|_, w| w.strong_count() > 0);
            }
            m.insert((addr, qtype), Arc::downgrade(&conn));
            drop(m);
            self.opened(addr).notify_waiters();
        }
        Ok(ticket(conn))
    }
}

fn ticket(conn: Arc<Conn>) -> Ticket {
    let (tx, inbox) = mpsc::channel(PER_QUERY_QUEUE);
    conn.in_flight.fetch_add(1, Ordering::Relaxed);
    conn.placed.fetch_add(1, Ordering::Relaxed);
    let id = {
        let mut w = lock(&conn.waiters);
        let mut id: u16 = rand::random();
        while w.contains_key(&id) {
            id = rand::random();
        }
        w.insert(id, tx);
        id
    };
    Ticket { conn, id, inbox }
}

fn end_all(waiters: &Waiters, why: Ended, shared: bool) {
    let all: Vec<_> = lock(waiters).values().cloned().collect();
    for tx in all {
        let _ = tx.try_send(Delivery::Ended {
            why: why.clone(),
            shared,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use futures::future::join_all;
    use tokio::net::{TcpListener, UdpSocket};

    use super::*;
    use crate::authdns::{Behaviour, Responder, Zone};
    use crate::config::ProbeConfig;
    use crate::probe::{fqdn, Outcome, Prober, Transport, SHARE_TCP};

    fn responder() -> Arc<Responder> {
        let apex = fqdn("example.ru").unwrap();
        let ns = vec![fqdn("ns1.example.ru").unwrap()];
        Arc::new(Responder::new(
            vec![Zone::new(apex, ns)],
            Behaviour::default(),
        ))
    }

    fn prober() -> Prober {
        let cfg = ProbeConfig {
            allow_loopback_targets: true,
            allow_private_targets: true,
            ..ProbeConfig::default()
        };
        Prober::new(&cfg).unwrap()
    }

    /// A TCP server answering pipelined queries, each after `delay` (so
    /// out of order, as RFC 7766 allows); closes a connection after
    /// `close_after` answers if set. Counts connections: (opened, most
    /// open at once).
    async fn tcp_server(
        close_after: Option<usize>,
        delay: Duration,
    ) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (opened, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let open = Arc::new(AtomicUsize::new(0));
        let (r, o, m) = (responder(), opened.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                o.fetch_add(1, Ordering::Relaxed);
                let now = open.fetch_add(1, Ordering::Relaxed) + 1;
                m.fetch_max(now, Ordering::Relaxed);
                let (r, open) = (r.clone(), open.clone());
                tokio::spawn(async move {
                    let (mut rd, wr) = s.into_split();
                    let wr = Arc::new(tokio::sync::Mutex::new(wr));
                    let mut read = 0;
                    while close_after.is_none_or(|c| read < c) {
                        let mut lb = [0u8; 2];
                        if rd.read_exact(&mut lb).await.is_err() {
                            break;
                        }
                        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
                        if rd.read_exact(&mut buf).await.is_err() {
                            break;
                        }
                        read += 1;
                        let (r, wr) = (r.clone(), wr.clone());
                        let answer = async move {
                            tokio::time::sleep(delay).await;
                            let out = r.reply(&buf, false).unwrap();
                            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&out);
                            let _ = wr.lock().await.write_all(&framed).await;
                        };
                        if close_after.is_some() {
                            answer.await;
                        } else {
                            tokio::spawn(answer);
                        }
                    }
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        (addr, opened, most)
    }

    async fn soa(p: &Prober, addr: SocketAddr, t: Transport, n: usize) -> Vec<Outcome> {
        let apex = fqdn("example.ru").unwrap();
        let qs = (0..n).map(|_| p.exchange(addr, &apex, RecordType::SOA, t, (true, false, false)));
        join_all(qs).await
    }

    fn all_answered(out: &[Outcome]) {
        for o in out {
            let r = o.reply().unwrap_or_else(|| panic!("not answered: {o:?}"));
            assert!(r.aa, "{r:?}");
        }
    }

    #[tokio::test]
    async fn a_rounds_tcp_queries_share_connections_within_the_cap() {
        let (addr, opened, most) = tcp_server(None, Duration::from_millis(30)).await;
        let p = prober();
        let out = SHARE_TCP
            .scope((), soa(&p, addr, Transport::Tcp, 200))
            .await;
        all_answered(&out);
        let (n, at_once) = (opened.load(Ordering::Relaxed), most.load(Ordering::Relaxed));
        // Never more than `probe.per_address_tcp` (8) open at once, each
        // carrying many queries. (The server sees a close a moment after
        // the client released its slot: one or two more may overlap.)
        assert!(at_once <= 10, "{at_once} connections open at once");
        assert!(n <= 200 / 10, "{n} connections for 200 queries");
        // A one-off check opens one per query.
        let out = soa(&p, addr, Transport::Tcp, 5).await;
        all_answered(&out);
        assert_eq!(opened.load(Ordering::Relaxed), n + 5);
    }

    #[tokio::test]
    async fn a_server_that_closes_after_each_answer_still_answers_every_query() {
        let (addr, ..) = tcp_server(Some(1), Duration::ZERO).await;
        let p = prober();
        let out = SHARE_TCP.scope((), soa(&p, addr, Transport::Tcp, 30)).await;
        all_answered(&out);
    }

    #[tokio::test]
    async fn queries_in_flight_to_an_address_share_one_udp_socket() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let ports = Arc::new(Mutex::new(HashSet::new()));
        let (r, seen) = (responder(), ports.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, src)) = sock.recv_from(&mut buf).await {
                lock(&seen).insert(src.port());
                if let Some(out) = r.reply(&buf[..n], true) {
                    let _ = sock.send_to(&out, src).await;
                }
            }
        });
        let p = prober();
        let out = soa(&p, addr, Transport::Udp, 300).await;
        all_answered(&out);
        assert_eq!(lock(&ports).len(), 1);
    }

    #[tokio::test]
    async fn a_closed_udp_port_still_reads_as_refused() {
        let free = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let p = prober();
        for o in soa(&p, addr, Transport::Udp, 3).await {
            assert!(
                matches!(&o, Outcome::Io(e) if e.contains("refused")),
                "{o:?}"
            );
        }
    }
}

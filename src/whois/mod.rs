//! Port-43 WHOIS server (RFC 3912; docs/whois.md).
//!
//! One query line (≤ 255 bytes, LF or CRLF) in, one answer out, connection
//! closed. Queries: a domain name (U- or A-label, any case, trailing dot
//! ignored), `nameserver NAME`, `registrar HANDLE` (keywords in any case).
//! Parsing ([`query::parse_query`]) and formatting ([`format`](mod@format)) are pure;
//! this file is the edge: sockets, limits, store reads, metrics.
//!
//! Answers use the .RU layout: `key:` padded so values start in column 16,
//! a `%` terms-of-use header, `source:` and a `Last updated on` line with the
//! store's last write time. Only `crate::public` views are printed.
//!
//! `state:` tokens of a domain (the WHOIS words of the one status model,
//! `crate::status`), in this order:
//! - `REGISTERED` — always (a cancelled registration is "not found");
//! - `DELEGATED` / `NOT DELEGATED` — in the parent zone right now
//!   (`lifecycle::in_zone`: the delegation test passed and nothing in the
//!   lifecycle blocks it);
//! - `VERIFIED` / `UNVERIFIED` — `UNVERIFIED` while a verification request
//!   to the registrant is pending;
//! - `HOLD` — dispute hold: not delegated, no changes, no transfer;
//! - `EXPIRED` — past `paid-till`, renewable until `free-date`;
//! - `VIOLATION` — a confirmed monitoring violation is in force (with
//!   `on_violation = "report"` the domain stays delegated; the API shows
//!   its start and, once over, its end);
//! - when not delegated, where the delegation process stands: `TESTING`
//!   (declared nameservers are being probed), `TEST FAILED` (the test window
//!   ended without a pass; waits for a retest) or `SUSPENDED` (was
//!   delegated, taken out of the zone);
//! - `VERIFICATION OVERDUE`, `PENDING REGISTRANT CHANGE` (docs/statuses.md).
//!
//! Refusals: a bad query gets `% Error: <reason>`; more connections than
//! `whois.max_connections` get a busy line; a client over
//! `whois.rate_limit_per_minute` (per IPv4 address or IPv6 /64, except
//! `whois.rate_limit_exempt`) gets `% You have exceeded allowed connection
//! rate.`; no query line within `whois.read_timeout` gets a timeout line.

pub mod format;
pub mod query;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

pub use self::query::{parse_query, Query, QueryError, MAX_QUERY_LEN};
use crate::answer_cache::Answers;
use crate::answer_cache::{Entry, Fact, FactCache};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::Timestamp;
use crate::names::NameError;
use crate::names::Zones;
use crate::ratelimit::ClientLimiter;
use crate::store::stamps::Key;
use crate::store::Store;

/// How often the rate limiter forgets clients whose allowance is full again.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Refusal lines (rate limit, busy) being written at once; beyond this a
/// refused connection is just closed, so a flood cannot pile up tasks.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refused or oversize connection is drained before closing, so
/// the kernel sends FIN rather than a reset that could eat our error line.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read and dropped while lingering.
const LINGER_BYTES: usize = 64 * 1024;
/// Pause after an accept error such as running out of file descriptors.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How a connection was answered; the `result` label of
/// `zonekeeper_whois_queries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Ok,
    NotFound,
    BadQuery,
    RateLimited,
    Overload,
    /// The store failed (logged); the client got a temporary-failure line.
    Error,
}

impl Answered {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotFound => "not_found",
            Self::BadQuery => "bad_query",
            Self::RateLimited => "rate_limited",
            Self::Overload => "overload",
            Self::Error => "error",
        }
    }
}

fn count(o: Answered) {
    metrics::counter!("zonekeeper_whois_queries_total", "result" => o.as_str()).increment(1);
}

/// Server tuning that is not in the config file.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Run store reads on the blocking pool instead of the connection task.
    /// On by default: in `benches/whois_load.rs` it gave a higher rate and
    /// a much lower p99 than reading inside the task (a read is ~10 µs when
    /// cached, but one that misses the page cache would stall a worker and
    /// every connection queued on it).
    pub blocking_reads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            blocking_reads: true,
        }
    }
}

/// What the WHOIS server uses of the process, and nothing else (built by
/// [`crate::app::App::whois`]).
#[derive(Clone)]
pub struct Deps {
    /// `whois.*` (listen limits, `source`) and `lifecycle.*` (statuses).
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    /// Cached answers and facts, shared with RDAP.
    pub answers: Arc<Answers>,
    /// Cancelled when `serve` stops.
    pub shutdown: CancellationToken,
}

impl Deps {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn last_update_shown(&self, now: Timestamp) -> crate::store::Result<Timestamp> {
        self.answers.last_update_shown(self.store.as_ref(), now)
    }
}

/// Answer one parsed query from the store at `deps.now()`; while the store
/// cannot be read, with the last answer built for the name, if any (see
/// [`crate::answer_cache::Answers`]).
pub fn answer(deps: impl Into<Deps>, q: &Query) -> (Answered, String) {
    let (o, b) = respond(&deps.into(), q);
    (o, String::from_utf8_lossy(&b).into_owned())
}

/// [`answer`] as the bytes sent.
fn respond(deps: &Deps, q: &Query) -> (Answered, Bytes) {
    match lookup(deps, q) {
        Ok((o, t)) => (o, Bytes::from(t)),
        Err(e) => {
            if e.storage().is_some() {
                if let Some(a) = last_built(deps, q) {
                    metrics::counter!("zonekeeper_stale_answers_total", "service" => "whois")
                        .increment(1);
                    return a;
                }
                warn!("WHOIS store read failed: {e}");
            } else {
                error!("WHOIS store read failed: {e}");
            }
            (
                Answered::Error,
                Bytes::from(format::error_line("temporary failure; try again later")),
            )
        }
    }
}

/// The last answer built for `q`, current or not (the store cannot be
/// read). `None` when nothing was kept for it.
fn last_built(deps: &Deps, q: &Query) -> Option<(Answered, Bytes)> {
    let source = deps.config.whois.source.as_str();
    let facts = &deps.answers.facts;
    let updated = || deps.answers.last_update_seen();
    let fact = match q {
        Query::Domain(text) => {
            let name = match deps.zones.parse_domain(text) {
                Ok(n) => n,
                Err(NameError::NotInZone { .. } | NameError::WrongLevel { .. }) => {
                    let t = format::not_found_answer(source, updated()?);
                    return Some((Answered::NotFound, Bytes::from(t)));
                }
                // Answered without the store: not a read that failed.
                Err(_) => return None,
            };
            if let Some(e) = deps.answers.whois_domain.last_built(name.as_str()) {
                return Some((Answered::Ok, e.body.clone()));
            }
            facts.last_built(&FactCache::key(ABSENT_DOMAIN, name.as_str()))?
        }
        Query::Nameserver(text) => {
            let h = crate::names::parse_host(text).ok()?;
            facts.last_built(&FactCache::key(HOST, h.as_str()))?
        }
        Query::Registrar(handle) => facts.last_built(&FactCache::key(REGISTRAR, handle))?,
    };
    let (o, t) = fact_answer(&fact.fact, source, updated()?)?;
    Some((o, Bytes::from(t)))
}

/// Fact-cache kinds of the WHOIS lookups (see [`FactCache::key`]).
const ABSENT_DOMAIN: u8 = b'w';
const HOST: u8 = b'n';
const REGISTRAR: u8 = b'r';

fn lookup(deps: &Deps, q: &Query) -> crate::store::Result<(Answered, String)> {
    let source = deps.config.whois.source.as_str();
    let now = deps.now();
    let stamps = deps.store.stamps();
    // Read before the store: a later commit makes what is cached stale.
    // Without stamps (generation 0) what is kept is never current, only
    // the last answer built, for when the store cannot be read.
    let generation = stamps.map_or(0, |s| s.generation());
    let facts = &deps.answers.facts;
    let keep = |key: String, deps: [Key<'_>; 2], fact: Fact| {
        facts.insert(key, generation, deps, fact);
    };
    let last = || deps.last_update_shown(now);
    let not_found = |t| (Answered::NotFound, format::not_found_answer(source, t));
    let bad = |e: &dyn std::fmt::Display| (Answered::BadQuery, format::error_line(&e.to_string()));
    Ok(match q {
        Query::Domain(text) => match deps.zones.parse_domain(text) {
            Ok(name) => {
                let cfg = &deps.config.lifecycle;
                let bundle = deps.store.bundle(name.as_str())?;
                if bundle.is_none() {
                    deps.answers.whois_domain.forget(name.as_str());
                    let d = Key::Domain(name.as_str());
                    keep(
                        FactCache::key(ABSENT_DOMAIN, name.as_str()),
                        [d, d],
                        Fact::Absent,
                    );
                }
                let found = bundle.and_then(|b| {
                    let status = crate::lifecycle::evaluate(&b.domain, now, cfg);
                    let view = crate::public::domain_with(&b, &status)?;
                    Some((view, b, status))
                });
                match found {
                    Some((d, b, status)) => {
                        let updated = last()?;
                        let text = format::domain_answer(&d, source, updated);
                        let body = Bytes::from(text.clone());
                        let before = format::UPDATED_PREFIX.as_bytes();
                        let g = generation;
                        if let Some(e) = Entry::new(g, b.domain, status, body, updated, before) {
                            deps.answers.whois_domain.insert(name.as_str(), Arc::new(e));
                        }
                        (Answered::Ok, text)
                    }
                    None => not_found(last()?),
                }
            }
            // Well-formed but not something this registry registers.
            Err(NameError::NotInZone { .. } | NameError::WrongLevel { .. }) => not_found(last()?),
            Err(e) => bad(&e),
        },
        Query::Nameserver(text) => match crate::names::parse_host(text) {
            Ok(h) => {
                let fact = deps
                    .store
                    .host(h.as_str())?
                    .map_or(Fact::Absent, Fact::Host);
                let t = last()?;
                let a = fact_answer(&fact, source, t).unwrap_or_else(|| not_found(t));
                let k = Key::Host(h.as_str());
                keep(FactCache::key(HOST, h.as_str()), [k, k], fact);
                a
            }
            Err(e) => bad(&e),
        },
        Query::Registrar(handle) => {
            let mut r = deps.store.registrar(handle)?;
            let upper = handle.to_ascii_uppercase();
            if r.is_none() && upper != *handle {
                r = deps.store.registrar(&upper)?;
            }
            let fact = r.map_or(Fact::Absent, |r| {
                Fact::Registrar(crate::public::registrar(&r))
            });
            let t = last()?;
            let a = fact_answer(&fact, source, t).unwrap_or_else(|| not_found(t));
            let deps = [Key::Registrar(handle), Key::Registrar(&upper)];
            keep(FactCache::key(REGISTRAR, handle), deps, fact);
            a
        }
    })
}

/// The answer when it needs no store read: a domain answer or a fact
/// still current in the cache, or a name this registry cannot hold. Cheap
/// enough to run on the connection task.
fn quick(deps: &Deps, q: &Query) -> Option<(Answered, Bytes)> {
    let stamps = deps.store.stamps()?;
    let source = deps.config.whois.source.as_str();
    let facts = &deps.answers.facts;
    let updated = || stamps.updated().unwrap_or_else(|| deps.now());
    let fact = match q {
        Query::Domain(text) => {
            let name = match deps.zones.parse_domain(text) {
                Ok(n) => n,
                Err(NameError::NotInZone { .. } | NameError::WrongLevel { .. }) => {
                    let t = format::not_found_answer(source, updated());
                    return Some((Answered::NotFound, Bytes::from(t)));
                }
                Err(e) => {
                    let t = format::error_line(&e.to_string());
                    return Some((Answered::BadQuery, Bytes::from(t)));
                }
            };
            let hit = deps.answers.whois_domain.get(
                name.as_str(),
                stamps,
                deps.now(),
                &deps.config.lifecycle,
            );
            if let Some(e) = hit {
                return Some((Answered::Ok, e.body.clone()));
            }
            facts.get(&FactCache::key(ABSENT_DOMAIN, name.as_str()), stamps)?
        }
        Query::Nameserver(text) => {
            let h = crate::names::parse_host(text).ok()?;
            facts.get(&FactCache::key(HOST, h.as_str()), stamps)?
        }
        Query::Registrar(handle) => facts.get(&FactCache::key(REGISTRAR, handle), stamps)?,
    };
    let (o, t) = fact_answer(&fact.fact, source, updated())?;
    Some((o, Bytes::from(t)))
}

/// The WHOIS answer a fact gives, fresh from the store or cached (WHOIS
/// keeps no contact facts: `None`).
fn fact_answer(
    fact: &Fact,
    source: &str,
    updated: crate::model::Timestamp,
) -> Option<(Answered, String)> {
    Some(match fact {
        Fact::Absent => (
            Answered::NotFound,
            format::not_found_answer(source, updated),
        ),
        Fact::Host(h) => (Answered::Ok, format::host_answer(h, source, updated)),
        Fact::Registrar(r) => (Answered::Ok, format::registrar_answer(r, source, updated)),
        Fact::Contact(_) => return None,
    })
}

/// Serve WHOIS on `listener` until `deps.shutdown`; then stop accepting and
/// let answers in progress finish.
pub async fn serve(deps: impl Into<Deps>, listener: TcpListener) -> io::Result<()> {
    let deps = deps.into();
    let w = &deps.config.whois;
    let limiter = ClientLimiter::new(w.rate_limit_per_minute, w.rate_limit_exempt.clone());
    serve_with(deps, listener, Arc::new(limiter), Options::default()).await
}

/// [`serve`] with an injected rate limiter (tests use a fake clock) and options.
pub async fn serve_with<C>(
    deps: impl Into<Deps>,
    listener: TcpListener,
    limiter: Arc<ClientLimiter<C>>,
    opts: Options,
) -> io::Result<()>
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
{
    let deps = deps.into();
    let gate = Gate {
        // One reference count per connection rather than a handle clone
        // (its zone list is copied on clone).
        deps: Arc::new(deps.clone()),
        limiter,
        conns: Arc::new(Semaphore::new(deps.config.whois.max_connections.max(1))),
        refusals: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
        tasks: TaskTracker::new(),
        opts,
    };
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = deps.shutdown.cancelled() => break,
            _ = sweep.tick() => gate.limiter.retain_recent(),
            r = listener.accept() => match r {
                Ok((stream, peer)) => gate.accept(stream, peer),
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    warn!("WHOIS accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    gate.tasks.close();
    gate.tasks.wait().await;
    Ok(())
}

/// Errors about one incoming connection, not the listener (shared by the
/// WHOIS and HTTP accept loops).
pub(crate) fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// What admits a connection: the per-client limit, the connection slots,
/// the bounded refusals, and the tasks `serve` waits for at shutdown.
struct Gate<C: governor::clock::Clock> {
    deps: Arc<Deps>,
    limiter: Arc<ClientLimiter<C>>,
    conns: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    tasks: TaskTracker,
    opts: Options,
}

impl<C> Gate<C>
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
{
    fn accept(&self, stream: TcpStream, peer: SocketAddr) {
        if self.limiter.check(peer.ip()).is_err() {
            metrics::counter!("zonekeeper_rate_limited_total", "service" => "whois").increment(1);
            count(Answered::RateLimited);
            refuse(stream, format::RATE_LIMITED, &self.refusals, &self.tasks);
            return;
        }
        let Ok(permit) = self.conns.clone().try_acquire_owned() else {
            count(Answered::Overload);
            refuse(stream, format::OVERLOAD, &self.refusals, &self.tasks);
            return;
        };
        let opts = self.opts;
        self.tasks
            .spawn(connection(self.deps.clone(), stream, permit, opts));
    }
}

/// Send a one-line refusal and close, without holding a connection slot.
fn refuse(stream: TcpStream, line: &'static str, refusals: &Arc<Semaphore>, tasks: &TaskTracker) {
    match refusals.clone().try_acquire_owned() {
        Ok(p) => {
            tasks.spawn(async move {
                let _p = p;
                let mut stream = stream;
                let _ = tokio::time::timeout(LINGER, async {
                    send_last(&mut stream, line.as_bytes()).await?;
                    linger(&mut stream).await
                })
                .await;
            });
        }
        // Too many refusals in flight: best effort, never wait.
        Err(_) => {
            let _ = stream.try_write(line.as_bytes());
        }
    }
}

/// `MSG_NOSIGNAL` as std and mio send: a client gone is an error, never SIGPIPE.
#[cfg(target_os = "linux")]
const SEND_MORE: libc::c_int = libc::MSG_MORE | libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_MORE: libc::c_int = 0;

/// Write the whole answer and close our side (FIN). The answer goes with
/// `MSG_MORE`, so the kernel holds it until the shutdown and sends data
/// and FIN in one segment: one packet (and one ACK) fewer per query than
/// a plain write, which on loopback is most of what a query costs.
async fn send_last(stream: &mut TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
            socket2::SockRef::from(&*stream).send_with_flags(data, SEND_MORE)
        });
        match sent {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    stream.shutdown().await
}

/// After [`send_last`]: read and drop what the client still sends, so the
/// close is a FIN after our answer, not a reset (closing with unread data
/// resets). Done at the client's EOF, or as soon as what it sent ends a
/// line (a query line and nothing after it: the usual client), so a
/// refusal costs one read like an answer, not a wait for the client's FIN.
async fn linger(stream: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    let mut total = 0;
    while total < LINGER_BYTES {
        match stream.read(&mut sink).await? {
            0 => break,
            n if sink[n - 1] == b'\n' => break,
            n => total += n,
        }
    }
    Ok(())
}

enum Line {
    /// The bytes up to and including the LF (or up to EOF).
    Complete(usize),
    TooLong,
}

/// Read one query line into `buf` (MAX_QUERY_LEN + CRLF long).
async fn read_line(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Line> {
    let mut n = 0;
    loop {
        if n == buf.len() {
            return Ok(Line::TooLong);
        }
        let r = stream.read(&mut buf[n..]).await?;
        if r == 0 {
            return Ok(Line::Complete(n));
        }
        if let Some(i) = buf[n..n + r].iter().position(|&b| b == b'\n') {
            return Ok(Line::Complete(n + i + 1));
        }
        n += r;
    }
}

async fn connection(
    deps: Arc<Deps>,
    mut stream: TcpStream,
    permit: OwnedSemaphorePermit,
    opts: Options,
) {
    let _permit = permit;
    let limit = deps.config.whois.read_timeout;
    let mut buf = [0u8; MAX_QUERY_LEN + 2];
    let read = tokio::select! {
        r = tokio::time::timeout(limit, read_line(&mut stream, &mut buf)) => r,
        // Nothing asked yet, so nothing in flight to finish.
        _ = deps.shutdown.cancelled() => return,
    };
    let mut drain = false;
    let started = std::time::Instant::now();
    let line = |o: Answered, t: String| (o, Bytes::from(t));
    let (outcome, text) = match read {
        Err(_) => (
            Answered::BadQuery,
            Bytes::from_static(format::TIMEOUT.as_bytes()),
        ),
        // The client went away; nobody to answer.
        Ok(Err(_)) => return,
        Ok(Ok(Line::TooLong)) => {
            drain = true;
            line(
                Answered::BadQuery,
                format::error_line(&QueryError::TooLong.to_string()),
            )
        }
        Ok(Ok(Line::Complete(n))) => match parse_query(&buf[..n]) {
            Err(e) => line(Answered::BadQuery, format::error_line(&e.to_string())),
            // A cached answer needs no store read, so no trip through the
            // blocking pool.
            Ok(q) => match quick(&deps, &q) {
                Some(a) => a,
                None if opts.blocking_reads => {
                    let a = deps.clone();
                    tokio::task::spawn_blocking(move || respond(&a, &q))
                        .await
                        .unwrap_or_else(|e| {
                            error!("WHOIS lookup task failed: {e}");
                            line(
                                Answered::Error,
                                format::error_line("temporary failure; try again later"),
                            )
                        })
                }
                None => respond(&deps, &q),
            },
        },
    };
    count(outcome);
    metrics::histogram!(crate::metrics::WHOIS_DURATION).record(started.elapsed().as_secs_f64());
    let _ = tokio::time::timeout(limit, async {
        send_last(&mut stream, &text).await?;
        if drain {
            linger(&mut stream).await
        } else {
            Ok(())
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// With every refusal slot taken, a refused client still gets its line:
    /// the best-effort write reaches a socket just accepted (a fresh send
    /// buffer has room for it).
    #[tokio::test]
    async fn best_effort_refusal_sends_the_line() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            got
        });
        let (stream, _) = l.accept().await.unwrap();
        let none = Arc::new(Semaphore::new(0));
        refuse(stream, format::RATE_LIMITED, &none, &TaskTracker::new());
        let got = client.await.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), format::RATE_LIMITED);
    }

    /// A refused client that sent its line and keeps the connection open
    /// gets the line and EOF at once, and the server is done with it
    /// without waiting for the client's FIN.
    #[tokio::test]
    async fn refusal_does_not_wait_for_the_clients_close() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"example.ru\r\n").await.unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            // Hold our side open until the server has finished.
            let _ = done_rx.await;
            got
        });
        let (mut stream, _) = l.accept().await.unwrap();
        // Generous for a loaded machine; without the change it never ends.
        let served = tokio::time::timeout(Duration::from_secs(5), async {
            send_last(&mut stream, format::RATE_LIMITED.as_bytes()).await?;
            linger(&mut stream).await
        })
        .await;
        assert!(matches!(served, Ok(Ok(()))), "{served:?}");
        done_tx.send(()).unwrap();
        let got = client.await.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), format::RATE_LIMITED);
    }
}

//! The HTTP listener: RDAP under `/rdap/`, the registrar API under
//! `/api/v1/`, `/metrics`, `/healthz`, `/readyz` and the dashboard at `/`.
//!
//! Connections are served with hyper directly rather than `axum::serve`,
//! which has neither a header read timeout nor a connection cap: a client
//! must send each request's headers within `http.header_read_timeout` (the
//! same limit applies to an idle keep-alive connection), and beyond
//! `http.max_connections` open connections a new one gets a 503 and is
//! closed; an answer whose write makes no progress for `http.send_timeout`
//! (the client stopped reading) closes the connection, so slow readers
//! cannot hold the slots either. Bodies are capped by `http.max_body_bytes`
//! and whole requests by `http.request_timeout`.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::{routing::get, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;
use tracing::{debug, warn};

use crate::app::App;

/// `/readyz` waits at most this long for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Busy answers being written at once; beyond this a connection over the
/// cap is just closed, so a flood cannot pile up tasks.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;
/// The whole life of a refused connection: read its request head, answer
/// 503, drain until the client closes.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Request head bytes read from a refused connection before answering.
const MAX_REFUSED_HEAD: usize = 16 * 1024;
/// Bytes read and dropped after the answer.
const LINGER_BYTES: usize = 64 * 1024;
const BUSY_BODY: &str = "too many connections; try again later\n";

pub fn router(app: App) -> Router {
    let max_body = app.config.http.max_body_bytes;
    let timeout = app.config.http.request_timeout;
    let rdap = crate::rdap::router(app.rdap());
    Router::new()
        .route("/healthz", get(healthz).with_state(app.clone()))
        .route("/readyz", get(readyz).with_state(app.clone()))
        .nest("/rdap", rdap.clone())
        // `nest` leaves the base URL with its slash unrouted (a bare 404);
        // RDAP answers it like `/rdap`.
        .route_service("/rdap/", rdap.into_service())
        .merge(crate::api::router(app.writer()))
        .merge(crate::dashboard::router(app.dashboard()))
        .merge(crate::metrics::router(app.store.clone()))
        // Body extractors stop reading at the limit (the API then answers
        // 413 with a problem document); nothing else reads bodies.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
}

/// The degraded lines: the registry's own network is down (delegation
/// decisions on hold), the store's volume is nearly full, or the scheduler
/// runs behind its due rounds. Serving goes on (200).
fn degraded(app: &App) -> Option<String> {
    let mut out = String::new();
    if let Some(o) = app.outage() {
        out.push_str(&format!(
            "degraded: registry-side outage since {}: {} (failing rounds are inconclusive)\n",
            o.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            o.reason
        ));
    }
    let free = app.store_free();
    let min = app.config.store.min_free_mib;
    if free < min.saturating_mul(1 << 20) {
        out.push_str(&format!(
            "degraded: store volume has {} MiB free, below store.min_free_mib ({min})\n",
            free >> 20
        ));
    }
    if let Some(lag) = app.scheduler_behind() {
        out.push_str(&format!(
            "degraded: scheduler behind: due rounds wait {}s\n",
            lag.as_secs()
        ));
    }
    (!out.is_empty()).then_some(out)
}

async fn healthz(State(app): State<App>) -> (StatusCode, String) {
    (
        StatusCode::OK,
        degraded(&app).unwrap_or_else(|| "ok\n".into()),
    )
}

/// Ready when the store answers a read and can commit (a store whose
/// writes failed is probed with a tiny write first); degraded, still
/// ready, during a registry-side network outage or with little space
/// left: WHOIS, RDAP and the API still serve.
async fn readyz(State(app): State<App>) -> (StatusCode, String) {
    let app2 = app.clone();
    let check = tokio::task::spawn_blocking(move || {
        let health = app2.store.probe_write();
        (health, app2.store.last_update())
    });
    let unavailable = crate::store::Health::Unavailable.reason();
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok((crate::store::Health::Ok, Ok(_)))) => (
            StatusCode::OK,
            degraded(&app).unwrap_or_else(|| "ready\n".into()),
        ),
        Ok(Ok((h @ crate::store::Health::Full, _))) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", h.reason()))
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, format!("{unavailable}\n")),
    }
}

fn refused(reason: &'static str) {
    metrics::counter!("zonekeeper_http_connections_refused_total", "reason" => reason).increment(1);
}

/// Serve [`router`] on `listener` until `app.shutdown`; then stop
/// accepting, let requests in progress finish and close idle connections.
pub async fn serve(app: App, listener: TcpListener) -> io::Result<()> {
    let router = router(app.clone());
    let conns = Arc::new(Semaphore::new(app.config.http.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let tasks = TaskTracker::new();
    // One reference count per connection rather than an `App` clone (its
    // zone list and policies are copied on clone).
    let shared = Arc::new(app.clone());
    loop {
        tokio::select! {
            biased;
            _ = app.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => match conns.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(connection(shared.clone(), router.clone(), stream, peer, permit));
                    }
                    Err(_) => {
                        refused("busy");
                        busy(stream, &refusals, &tasks);
                    }
                },
                Err(e) if crate::whois::is_per_connection(&e) => {}
                Err(e) => {
                    warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(crate::whois::ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
    Ok(())
}

async fn connection(
    app: Arc<App>,
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let _ = stream.set_nodelay(true);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` would insert.
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.http.header_read_timeout);
    let io = SendTimeout::new(stream, app.config.http.send_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = app.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            refused("header_timeout");
        } else if std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            refused("send_timeout");
        }
        debug!(%peer, "HTTP connection ended: {e}");
    }
}

/// A stream whose writes fail with `TimedOut` once one has been pending
/// (no progress) for `limit`; reads pass through.
struct SendTimeout<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A flush or shutdown returned `Pending` (its completion is progress).
    waited: bool,
}

impl<T> SendTimeout<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
            waited: false,
        }
    }

    /// After the inner write returned `Pending`: start or poll the timer.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        self.stalled = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading the answer",
        )))
    }

    /// Only progress ends a stall: bytes written, or a flush that had to
    /// wait and then completed. A flush of a TCP stream is always ready at
    /// once, and counting that would let a client that keeps sending
    /// requests but never reads the answers restart the timer for ever.
    fn progress<R>(
        &mut self,
        r: Poll<io::Result<R>>,
        moved: impl FnOnce(&io::Result<R>) -> bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                if moved(&r) {
                    self.stalled = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    /// [`Self::progress`] for a flush or shutdown.
    fn settled(&mut self, r: Poll<io::Result<()>>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let waited = std::mem::replace(&mut self.waited, r.is_pending());
        self.progress(r, |_| waited, cx)
    }
}

/// A write that moved bytes (or failed: the connection ends anyway).
fn wrote_bytes(r: &io::Result<usize>) -> bool {
    r.as_ref().map_or(true, |n| *n > 0)
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(r, wrote_bytes, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(r, wrote_bytes, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.settled(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.settled(r, cx)
    }
}

/// Answer 503 and close, without holding a connection slot. The request
/// head is read first: HTTP clients treat an answer that comes before their
/// request as a protocol error rather than as the 503.
fn busy(stream: TcpStream, refusals: &Arc<Semaphore>, tasks: &TaskTracker) {
    let Ok(p) = refusals.clone().try_acquire_owned() else {
        // Too many refusals in flight: just close.
        return;
    };
    tasks.spawn(async move {
        let _p = p;
        let mut stream = stream;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
            BUSY_BODY.len()
        );
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while head.len() < MAX_REFUSED_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await? {
                    0 => break,
                    n => head.extend_from_slice(&buf[..n]),
                }
            }
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            // Drop what the client still sends until it closes, so our
            // close is a FIN after the answer, not a reset that eats it.
            let mut total = 0;
            while total < LINGER_BYTES {
                match stream.read(&mut buf).await? {
                    0 => break,
                    n => total += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that never reads, with a flush between write attempts (as a
    /// server answering pipelined requests does): cut off after `limit`.
    #[tokio::test]
    async fn flushes_do_not_restart_a_stalled_write() {
        let (a, _peer) = tokio::io::duplex(64);
        let mut w = SendTimeout::new(a, Duration::from_millis(300));
        let started = tokio::time::Instant::now();
        let err = loop {
            match tokio::time::timeout(Duration::from_millis(100), w.write(&[0u8; 64])).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => break e,
            }
            w.flush().await.unwrap();
            assert!(started.elapsed() < Duration::from_secs(5), "never cut off");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}

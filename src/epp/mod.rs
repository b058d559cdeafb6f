//! EPP server for registrars (RFC 5730 core, 5731 domain, 5732 host, 5733 contact,
//! 5734 TCP transport, 3915 RGP restore, 5910 secDNS dsData): one more thin
//! edge over [`crate::registry`]. This module is the transport: TLS with a
//! required client certificate (signed by `epp.client_ca`, mapped to a
//! registrar by the SHA-256 of its DER), 4-byte length-prefixed frames, the
//! greeting, login/idle/frame timeouts, a per-registrar session cap and
//! command rate. [`session`] turns one frame into one answer (login, dispatch, limits);
//! a flow per command in `domain`, `transfer`, `contact`, `host` and `poll`
//! (parse, call the registry, render with [`response`]).
//!
//! Off unless `epp.listen` is set; started by `serve`.

pub mod client_status;
mod contact;
pub mod deps;
mod domain;
mod flow;
pub mod frame;
pub mod guard;
mod host;
mod poll;
pub mod response;
pub mod session;
#[cfg(test)]
mod testkit;
mod transfer;
pub mod xml;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

pub use deps::Deps;
use frame::{read_frame, write_frame, FrameError};
pub use guard::Shared;
use session::Session;

#[derive(Debug, thiserror::Error)]
pub enum EppError {
    #[error("epp: {0}")]
    Config(String),
    #[error("epp: cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, EppError> {
    std::fs::read(path)
        .map_err(|e| EppError::Config(format!("cannot read {}: {e}", path.display())))
}

/// The not-after time (Unix seconds) of the first certificate in `pem`.
pub fn cert_not_after(pem: &[u8]) -> Option<i64> {
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The TLS server configuration from `epp.cert`, `epp.key`, `epp.client_ca`.
pub fn tls_config(cfg: &crate::config::EppConfig) -> Result<rustls::ServerConfig, EppError> {
    let need = |p: &Option<std::path::PathBuf>, k: &str| {
        p.clone()
            .ok_or_else(|| EppError::Config(format!("epp.{k} is required with epp.listen")))
    };
    let (cert, key, ca) = (
        need(&cfg.cert, "cert")?,
        need(&cfg.key, "key")?,
        need(&cfg.client_ca, "client_ca")?,
    );
    let bad = |what: &str, p: &std::path::Path, e: &dyn std::fmt::Display| {
        EppError::Config(format!("{what} {}: {e}", p.display()))
    };
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&read_pem(&cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("bad certificate in", &cert, &e))?;
    if chain.is_empty() {
        return Err(EppError::Config(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key_der = match PrivateKeyDer::from_pem_slice(&read_pem(&key)?) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(EppError::Config(format!(
                "no private key in {}",
                key.display()
            )))
        }
        Err(e) => return Err(bad("bad key in", &key, &e)),
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&read_pem(&ca)?) {
        let c = c.map_err(|e| bad("bad certificate in", &ca, &e))?;
        roots
            .add(c)
            .map_err(|e| bad("unusable CA certificate in", &ca, &e))?;
    }
    if roots.is_empty() {
        return Err(EppError::Config(format!(
            "no CA certificate in {}",
            ca.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| EppError::Config(format!("client CA: {e}")))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| EppError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| EppError::Config(format!("server certificate/key: {e}")))
}

/// Bind `epp.listen` and serve until shutdown.
pub async fn run(deps: impl Into<Deps>) -> Result<(), EppError> {
    let deps: Deps = deps.into();
    let Some(addr) = deps.config().epp.listen else {
        return Ok(());
    };
    let tls = tls_config(&deps.config().epp)?;
    // For the certificate-expiry alert (contrib/prometheus).
    if let Some(p) = &deps.config().epp.cert {
        match read_pem(p).ok().and_then(|pem| cert_not_after(&pem)) {
            Some(t) => {
                metrics::gauge!("zonekeeper_epp_certificate_expiry_timestamp_seconds").set(t as f64)
            }
            None => tracing::warn!("EPP certificate {}: no expiry date read", p.display()),
        }
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| EppError::Listen(addr, e))?;
    tracing::info!(%addr, "EPP server listening");
    serve(deps, listener, tls).await;
    Ok(())
}

/// Connections open at once (before and after login); beyond, new ones are
/// closed at once. Logged-in sessions are further capped per registrar.
pub const MAX_CONNECTIONS: usize = 1024;

/// Accept EPP connections on `listener` until `deps.shutdown`.
pub async fn serve(deps: impl Into<Deps>, listener: TcpListener, tls: rustls::ServerConfig) {
    let deps: Deps = deps.into();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let shared = Arc::new(Shared::new(
        deps.sessions.clone(),
        deps.config().epp.rate_limit_per_minute,
    ));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_ip = guard::ConnLimit::new(deps.config().epp.max_connections_per_ip);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = deps.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("EPP accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // One address cannot hold more than its share of the slots (idle
        // sockets that never start TLS included): checked before anything
        // else, and the extra connection is closed at once.
        let Some(ip_slot) = per_ip.take(peer.ip()) else {
            metrics::counter!("zonekeeper_epp_refused_connections_total", "reason" => "per-ip")
                .increment(1);
            drop(tcp);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let (deps, acceptor, shared) = (deps.clone(), acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            let _slot = (slot, ip_slot);
            let hs =
                tokio::time::timeout(deps.config().epp.handshake_timeout, acceptor.accept(tcp))
                    .await;
            let tls = match hs {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, "EPP TLS handshake failed: {e}");
                    metrics::counter!("zonekeeper_epp_tls_failures_total").increment(1);
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "EPP TLS handshake timed out");
                    metrics::counter!("zonekeeper_epp_tls_failures_total").increment(1);
                    return;
                }
            };
            let fp = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| {
                    use sha2::{Digest, Sha256};
                    hex::encode(Sha256::digest(c.as_ref()))
                });
            let Some(fp) = fp else { return };
            connection(deps, shared, tls, fp, peer).await;
        });
    }
}

async fn connection<S>(
    deps: Deps,
    shared: Arc<Shared>,
    mut s: S,
    fp: String,
    peer: std::net::SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let cfg = deps.config().epp.clone();
    let mut sess = Session::new(deps.clone(), fp, shared.clone()).from_peer(peer.ip());
    if send(&mut s, sess.greeting().as_bytes(), cfg.frame_timeout)
        .await
        .is_err()
    {
        return;
    }
    let login_deadline = tokio::time::Instant::now() + cfg.login_timeout;
    loop {
        // Before login the whole login must fit in login_timeout; after it,
        // a frame must start within idle_timeout and finish within
        // frame_timeout (a slow client is cut off).
        let wait = if sess.registrar().is_none() {
            login_deadline.saturating_duration_since(tokio::time::Instant::now())
        } else {
            cfg.idle_timeout
        };
        let first = tokio::select! {
            _ = deps.shutdown.cancelled() => break,
            r = tokio::time::timeout(wait, peek_byte(&mut s)) => r,
        };
        let first = match first {
            Ok(Ok(Some(b))) => b,
            Ok(_) => break,
            Err(_) => {
                tracing::info!(%peer, "EPP session timed out");
                let _ = send(
                    &mut s,
                    sess.closing(2500, "session timed out").as_bytes(),
                    cfg.frame_timeout,
                )
                .await;
                break;
            }
        };
        let mut prefixed = Prefixed {
            first: Some(first),
            inner: &mut s,
        };
        let frame = tokio::time::timeout(
            cfg.frame_timeout,
            read_frame(&mut prefixed, cfg.max_frame_bytes),
        )
        .await;
        let body = match frame {
            Ok(Ok(b)) => b,
            Ok(Err(FrameError::Length(n, max))) => {
                let msg = format!("frame length {n} is out of range (at most {max} bytes)");
                let _ = send(
                    &mut s,
                    sess.closing(2500, &msg).as_bytes(),
                    cfg.frame_timeout,
                )
                .await;
                break;
            }
            Ok(Err(_)) => break,
            Err(_) => {
                let _ = send(
                    &mut s,
                    sess.closing(2500, "frame not completed in time").as_bytes(),
                    cfg.frame_timeout,
                )
                .await;
                break;
            }
        };
        let parsed = xml::parse(&body);
        let (answer, close) = if Session::reads_only(&parsed) {
            // Reads are short store lookups: answered here, without the
            // hop to a blocking thread.
            sess.handle_parsed(parsed)
        } else {
            let mut moved = std::mem::replace(
                &mut sess,
                Session::placeholder(deps.clone(), shared.clone()),
            );
            let r = tokio::task::spawn_blocking(move || {
                let out = moved.handle_parsed(parsed);
                (moved, out)
            })
            .await;
            match r {
                Ok((back, out)) => {
                    sess = back;
                    out
                }
                Err(_) => break,
            }
        };
        if send(&mut s, answer.as_bytes(), cfg.frame_timeout)
            .await
            .is_err()
            || close
        {
            break;
        }
    }
    drop(sess);
}

/// Write one frame; a client that stops reading is cut off after `t`.
async fn send<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    body: &[u8],
    t: std::time::Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(t, write_frame(s, body))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client not reading"))?
}

async fn peek_byte<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<u8>> {
    use tokio::io::AsyncReadExt;
    let mut b = [0u8; 1];
    match s.read(&mut b).await? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// A reader that yields one already-read byte before its inner reader.
struct Prefixed<'a, S> {
    first: Option<u8>,
    inner: &'a mut S,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Prefixed<'_, S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(b) = self.first.take() {
            buf.put_slice(&[b]);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

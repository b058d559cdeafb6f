//! The delivery workers: one task per registrar with a webhook, so a slow
//! or dead endpoint holds up only its own registrar. Each reads its
//! registrar's feed after the delivered cursor, POSTs one event at a time
//! in feed order, and moves the cursor (stored) only after a 2xx answer:
//! at least once, resumed from the stored cursor after a restart. With
//! several processes on one PostgreSQL store, only the holder of the
//! `webhooks` leadership delivers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::model::{Webhook, WebhookState};
use crate::store::FeedEvent;

/// Deliveries by result (`ok`, `failed`, `given_up`).
pub const DELIVERIES: &str = "zonekeeper_webhook_deliveries_total";
/// Events waiting for delivery, all registrars together.
pub const PENDING: &str = "zonekeeper_webhook_pending";
/// Events read from the feed at a time.
const BATCH: usize = 100;
pub use crate::registry::input::PENDING_COUNT_MAX;

/// Run the delivery workers until shutdown (the frontend role of `serve`).
pub async fn run(app: App) {
    metrics::describe_counter!(DELIVERIES, "Webhook delivery attempts by result");
    metrics::describe_gauge!(PENDING, "Change-feed events not yet delivered to webhooks");
    let poll = app
        .config
        .webhook
        .poll_interval
        .max(Duration::from_millis(20));
    let mut waiting_logged = false;
    loop {
        let store = app.store.clone();
        let lead = tokio::task::spawn_blocking(move || store.try_lead("webhooks")).await;
        let lease = match lead {
            Ok(Ok(Some(l))) => l,
            other => {
                match other {
                    Ok(Err(e)) => warn!("webhooks: cannot take the leadership: {e}"),
                    Err(e) => warn!("webhooks: leadership task failed: {e}"),
                    _ if !waiting_logged => {
                        info!("webhooks: another process delivers; standing by");
                        waiting_logged = true;
                    }
                    _ => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll.max(Duration::from_secs(1))) => continue,
                    _ = app.shutdown.cancelled() => return,
                }
            }
        };
        waiting_logged = false;
        supervise(&app, poll, lease).await;
        if app.shutdown.is_cancelled() {
            return;
        }
    }
}

struct Worker {
    hook: Webhook,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Keep one worker per webhook (restarted when its URL or secret changes)
/// while the leadership holds.
async fn supervise(app: &App, poll: Duration, lease: Box<dyn crate::store::Leadership>) {
    let tls = Arc::new(tls_config());
    let pending: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut workers: HashMap<String, Worker> = HashMap::new();
    loop {
        let store = app.store.clone();
        match tokio::task::spawn_blocking(move || store.webhooks()).await {
            Ok(Ok(hooks)) => {
                let hooks: HashMap<String, Webhook> = hooks.into_iter().collect();
                workers.retain(|h, w| {
                    let keep = hooks.get(h) == Some(&w.hook) && !w.task.is_finished();
                    if !keep {
                        w.stop.cancel();
                    }
                    keep
                });
                for (handle, hook) in hooks {
                    if workers.contains_key(&handle) {
                        continue;
                    }
                    let stop = app.shutdown.child_token();
                    let d = Delivery {
                        app: app.clone(),
                        handle: handle.clone(),
                        hook: hook.clone(),
                        tls: tls.clone(),
                        stop: stop.clone(),
                        pending: pending.clone(),
                    };
                    let task = tokio::spawn(d.run());
                    workers.insert(handle, Worker { hook, stop, task });
                }
                let gone: Vec<String> = {
                    let p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    p.keys()
                        .filter(|h| !workers.contains_key(*h))
                        .cloned()
                        .collect()
                };
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                for h in gone {
                    p.remove(&h);
                }
                metrics::gauge!(PENDING).set(p.values().sum::<u64>() as f64);
            }
            Ok(Err(e)) => warn!("webhooks: cannot read the webhooks: {e}"),
            Err(e) => warn!("webhooks: task failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = app.shutdown.cancelled() => break,
        }
        if !lease.held() {
            warn!("webhooks: leadership lost (database session ended); standing by");
            break;
        }
    }
    for w in workers.values() {
        w.stop.cancel();
    }
    for (_, w) in workers {
        let _ = w.task.await;
    }
}

/// The HTTPS client's TLS: the Web PKI roots (webpki-roots), TLS 1.2+.
fn tls_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // The ring provider supports the default versions.
        Err(_) => unreachable!("ring supports TLS 1.2 and 1.3"),
    }
}

/// One registrar's delivery worker.
struct Delivery {
    app: App,
    handle: String,
    hook: Webhook,
    tls: Arc<rustls::ClientConfig>,
    stop: CancellationToken,
    pending: Arc<Mutex<HashMap<String, u64>>>,
}

impl Delivery {
    async fn run(self) {
        let cfg = &self.app.config.webhook;
        let poll = cfg.poll_interval.max(Duration::from_millis(20));
        let uri: Uri = match self.hook.url.parse() {
            Ok(u) => u,
            Err(e) => {
                warn!(registrar = %self.handle, "webhook URL unusable: {e}");
                return;
            }
        };
        loop {
            let (mut state, events) = match self.read().await {
                Ok(x) => x,
                Err(e) => {
                    warn!(registrar = %self.handle, "webhook: cannot read the feed: {e}");
                    if self.pause(poll).await {
                        return;
                    }
                    continue;
                }
            };
            if events.is_empty() {
                if self.pause(poll).await {
                    return;
                }
                continue;
            }
            for ev in events {
                let seq = ev.seq;
                let body = match serde_json::to_vec(&crate::registry::FeedEntry::of(ev)) {
                    Ok(b) => Bytes::from(b),
                    Err(e) => {
                        warn!(registrar = %self.handle, "webhook: cannot encode event {seq}: {e}");
                        return;
                    }
                };
                let sig = super::signature(&self.hook.secret, &body);
                loop {
                    let sent = post(&uri, &self.tls, body.clone(), &sig, seq, cfg).await;
                    let now = self.app.now();
                    match sent {
                        Ok(()) => {
                            metrics::counter!(DELIVERIES, "result" => "ok").increment(1);
                            state.delivered = seq;
                            state.delivered_at = Some(now);
                            state.failures = 0;
                            state.failing_since = None;
                        }
                        Err(e) => {
                            metrics::counter!(DELIVERIES, "result" => "failed").increment(1);
                            state.failures = state.failures.saturating_add(1);
                            state.last_error = Some(e);
                            state.last_error_at = Some(now);
                            let since = *state.failing_since.get_or_insert(now);
                            let give_up = chrono::Duration::from_std(cfg.give_up_after)
                                .unwrap_or(chrono::TimeDelta::MAX);
                            if now - since >= give_up {
                                metrics::counter!(DELIVERIES, "result" => "given_up").increment(1);
                                warn!(registrar = %self.handle, event = seq,
                                      "webhook: event given up after retrying for {:?}",
                                      cfg.give_up_after);
                                state.delivered = seq;
                                state.given_up += 1;
                                state.failures = 0;
                                state.failing_since = None;
                            }
                        }
                    }
                    let done = state.delivered == seq;
                    if let Err(e) = self.save(&state).await {
                        warn!(registrar = %self.handle, "webhook: cannot store the cursor: {e}");
                    }
                    if done {
                        break;
                    }
                    if self.pause(backoff(cfg, state.failures)).await {
                        return;
                    }
                }
                if self.stop.is_cancelled() {
                    return;
                }
            }
        }
    }

    /// Sleep `d`; `true` when told to stop meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.stop.cancelled() => true,
        }
    }

    /// The stored state and the next events after its cursor; records the
    /// pending count for the gauge.
    async fn read(&self) -> Result<(WebhookState, Vec<FeedEvent>), crate::store::StoreError> {
        let store = self.app.store.clone();
        let h = self.handle.clone();
        let (state, events, pending) = tokio::task::spawn_blocking(move || {
            let state = store.webhook_state(&h)?.unwrap_or_default();
            let events = store.feed(&h, state.delivered, BATCH)?;
            let pending = if events.len() < BATCH {
                events.len()
            } else {
                store.feed(&h, state.delivered, PENDING_COUNT_MAX)?.len()
            };
            Ok::<_, crate::store::StoreError>((state, events, pending))
        })
        .await
        .map_err(|e| crate::store::StoreError::Backend(e.to_string()))??;
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(self.handle.clone(), pending as u64);
        metrics::gauge!(PENDING).set(p.values().sum::<u64>() as f64);
        Ok((state, events))
    }

    async fn save(&self, state: &WebhookState) -> Result<(), crate::store::StoreError> {
        let store = self.app.store.clone();
        let h = self.handle.clone();
        let s = state.clone();
        tokio::task::spawn_blocking(move || store.put_webhook_state(&h, &s))
            .await
            .map_err(|e| crate::store::StoreError::Backend(e.to_string()))?
    }
}

/// The delay before retry number `failures` (1, 2, …): `retry_initial`
/// doubled each time, at most `retry_max`.
fn backoff(cfg: &crate::config::WebhookConfig, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    cfg.retry_initial
        .saturating_mul(factor)
        .min(cfg.retry_max.max(cfg.retry_initial))
}

/// POST one event: a fresh connection, `webhook.connect_timeout` for TCP
/// and TLS, `webhook.timeout` for all of it. Only a 2xx answer counts;
/// a redirect is a failure (never followed).
async fn post(
    uri: &Uri,
    tls: &Arc<rustls::ClientConfig>,
    body: Bytes,
    signature: &str,
    seq: u64,
    cfg: &crate::config::WebhookConfig,
) -> Result<(), String> {
    let attempt = async {
        let host = uri.host().ok_or("the URL names no host")?;
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let connect = async {
            let tcp = TcpStream::connect((bare.as_str(), port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            Ok::<_, String>(tcp)
        };
        let tcp = tokio::time::timeout(cfg.connect_timeout, connect)
            .await
            .map_err(|_| "connect: timed out".to_string())??;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "zonekeeper-webhook")
            .header(super::SIGNATURE_HEADER, signature)
            .header(super::EVENT_ID_HEADER, seq.to_string())
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let status = if https {
            let name = rustls::pki_types::ServerName::try_from(bare)
                .map_err(|e| format!("TLS name: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(tls.clone());
            let stream = tokio::time::timeout(cfg.connect_timeout, tls.connect(name, tcp))
                .await
                .map_err(|_| "TLS handshake: timed out".to_string())?
                .map_err(|e| format!("TLS handshake: {e}"))?;
            send(TokioIo::new(stream), req).await?
        } else {
            send(TokioIo::new(tcp), req).await?
        };
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(format!("HTTP {status} (redirects are not followed)"))
        } else {
            Err(format!("HTTP {status}"))
        }
    };
    tokio::time::timeout(cfg.timeout, attempt)
        .await
        .map_err(|_| format!("no answer within {:?}", cfg.timeout))?
}

async fn send<I>(io: I, req: hyper::Request<Full<Bytes>>) -> Result<hyper::StatusCode, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(conn);
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"));
    let out = match res {
        Ok(r) => {
            let status = r.status();
            // Read (and drop) the answer so the connection ends cleanly.
            let _ = r.into_body().collect().await;
            Ok(status)
        }
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

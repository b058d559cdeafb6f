//! The running service behind `zonekeeper serve` ([`crate::cli::serve`]
//! reads the flags and builds the [`App`]): binds the listeners and runs
//! this process's roles (`serve.roles`): the scheduler; the front end
//! (WHOIS, HTTP with RDAP, API, metrics and dashboard, EPP, the control
//! socket); the zone duties (zone writer, registry sweeper, CDS scanner,
//! one process at a time on a shared database). Stops them all cleanly on
//! SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::config::Role;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for {what} on {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error("{0}")]
    TrustAnchors(String),
}

/// How long running tasks get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Changes within this period are written as one zone file rewrite.
const ZONE_DEBOUNCE: Duration = Duration::from_millis(500);
/// A rewrite renders the whole zone: the next one waits at least this
/// many times as long as the last took, so rewrites take at most about a
/// tenth of the time however large the zone grows...
const ZONE_WRITE_SHARE: u32 = 9;
/// ...but never longer than this.
const ZONE_MAX_GAP: Duration = Duration::from_secs(10);

/// How long after a rewrite that took `took` the next may start.
fn zone_gap(took: Duration) -> Duration {
    ZONE_DEBOUNCE
        .max(took.saturating_mul(ZONE_WRITE_SHARE))
        .min(ZONE_MAX_GAP)
}

/// Run every part until `app.shutdown` is cancelled (or a signal arrives).
pub async fn serve(app: App) -> Result<(), ServeError> {
    // A bad trust anchor file stops start-up, not only the CDS scanner.
    if let Some(p) = &app.config.dnssec.trust_anchors {
        crate::probe::dsboot::load_anchors(p)
            .map_err(|e| ServeError::TrustAnchors(e.to_string()))?;
    }
    if !app.config.serve.has(Role::Frontend) {
        info!(
            roles = ?app.config.serve.roles,
            store = %crate::store::Location::of(&app.config.store, None),
            "zonekeeper serving (no front end)"
        );
        return run_parts(app, None).await;
    }
    serve_frontend(app).await
}

async fn serve_frontend(mut app: App) -> Result<(), ServeError> {
    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { what, addr, source })
    };
    let whois_listener = bind("WHOIS", app.config.whois.listen).await?;
    let http_listener = bind("HTTP", app.config.http.listen).await?;
    // Without rdap.base_url, RDAP links name the address really bound (the
    // listen port may be 0).
    if let Ok(bound) = http_listener.local_addr() {
        if app.config.rdap.base_url.is_none() && bound != app.config.http.listen {
            let mut c = (*app.config).clone();
            c.set_bound_http(bound);
            app.config = Arc::new(c);
        }
    }
    // Bound only now that this process holds the store lock: a socket file
    // already there is then a stale one from a killed serve.
    // On PostgreSQL operator commands use the database directly (no
    // process owns it), so the socket is bound only when configured.
    let location = crate::store::Location::of(&app.config.store, None);
    let sock_path = match (&location, &app.config.store.control_socket) {
        (crate::store::Location::Postgres(_), None) => None,
        _ => Some(app.config.store.control_socket_for(&app.config.store.path)),
    };
    let control = match sock_path {
        Some(p) => Some(crate::control::bind(&p)?),
        None => None,
    };
    info!(
        whois = %app.config.whois.listen,
        http = %app.config.http.listen,
        store = %location,
        control = %control.as_ref().map(|c| c.path().display().to_string()).unwrap_or_default(),
        "zonekeeper serving"
    );
    serve_with_control(app, whois_listener, http_listener, control).await
}

/// [`serve`] on listeners the caller bound (tests bind port 0 and need the
/// addresses), without a control socket.
pub async fn serve_on(
    app: App,
    whois_listener: TcpListener,
    http_listener: TcpListener,
) -> Result<(), ServeError> {
    serve_with_control(app, whois_listener, http_listener, None).await
}

/// [`serve_on`] plus the operator control socket (see [`crate::control`]).
pub async fn serve_with_control(
    app: App,
    whois_listener: TcpListener,
    http_listener: TcpListener,
    control: Option<crate::control::ControlSocket>,
) -> Result<(), ServeError> {
    run_parts(app, Some((whois_listener, http_listener, control))).await
}

/// The front end's listeners and control socket.
type Frontend = (
    TcpListener,
    TcpListener,
    Option<crate::control::ControlSocket>,
);

/// Run this process's roles (`serve.roles`) until shutdown.
async fn run_parts(app: App, frontend: Option<Frontend>) -> Result<(), ServeError> {
    // Before any task records a metric.
    crate::metrics::install();
    // The store is open and every listener bound (before run_parts); sent
    // before any task can feed the watchdog.
    let roles: Vec<&str> = app.config.serve.roles.iter().map(|r| r.as_str()).collect();
    crate::systemd::ready(&format!("serving ({})", roles.join(",")));
    let mut tasks = tokio::task::JoinSet::new();
    if app.config.serve.has(Role::Scheduler) {
        tasks.spawn(crate::scheduler::run(app.clone()));
    }
    if app.config.serve.has(Role::Zone) {
        tasks.spawn(zone_duties(app.clone()));
    }
    tasks.spawn(store_watch(app.clone()));
    if let Some((whois_listener, http_listener, control)) = frontend {
        {
            let app = app.clone();
            tasks.spawn(async move {
                if let Err(e) = crate::whois::serve(app.whois(), whois_listener).await {
                    error!("WHOIS server stopped: {e}");
                    app.shutdown.cancel();
                }
            });
        }
        {
            let app = app.clone();
            tasks.spawn(async move {
                if let Err(e) = crate::http::serve(app.clone(), http_listener).await {
                    error!("HTTP server stopped: {e}");
                    app.shutdown.cancel();
                }
            });
        }
        if let Some(sock) = control {
            tasks.spawn(crate::control::run(app.control(), sock));
        }
        // Registrar webhooks (docs/api.md): with the front end, which
        // serves the state they report.
        tasks.spawn(crate::webhook::deliver::run(app.clone()));
        if app.config.epp.listen.is_some() {
            let app = app.clone();
            tasks.spawn(async move {
                if let Err(e) = crate::epp::run(app.epp()).await {
                    error!("EPP server stopped: {e}");
                    app.shutdown.cancel();
                }
            });
        }
    }
    {
        let token = app.shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = shutdown_signal() => info!("signal received; shutting down"),
                _ = token.cancelled() => {}
            }
            token.cancel();
        });
    }
    // A process without the scheduler feeds the watchdog from a timer
    // (with it, the scheduler's loop does: see crate::systemd).
    if !app.config.serve.has(Role::Scheduler) {
        if let Some(period) = crate::systemd::watchdog_period() {
            let token = app.shutdown.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(period / 4);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => crate::systemd::feed_watchdog(),
                    }
                }
            });
        }
    }
    app.shutdown.cancelled().await;
    crate::systemd::stopping();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        warn!("some tasks did not stop within {SHUTDOWN_GRACE:?}; their work is not committed");
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The zone role: the zone writer, the registry's timed work and the CDS
/// scanner, run by one process at a time. On a shared database processes
/// with this role contend for the leadership (a PostgreSQL advisory lock);
/// a standby takes over within `serve.poll_interval` of the leader's
/// session ending. On redb this process is always the leader.
async fn zone_duties(app: App) {
    let poll = app
        .config
        .serve
        .poll_interval
        .max(Duration::from_millis(100));
    let mut waiting_logged = false;
    loop {
        let store = app.store.clone();
        let lead = tokio::task::spawn_blocking(move || store.try_lead("zone")).await;
        let lease = match lead {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => {
                if !waiting_logged {
                    info!("zone writer: another process leads; standing by");
                    waiting_logged = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => continue,
                    _ = app.shutdown.cancelled() => return,
                }
            }
            Ok(Err(e)) => {
                error!("zone writer: cannot take the leadership: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(poll) => continue,
                    _ = app.shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                error!("zone writer: leadership task failed: {e}");
                return;
            }
        };
        if app.store.shared() {
            info!("zone writer: leading");
        }
        waiting_logged = false;
        // The duties stop with the leadership (or the process).
        let mut led = app.clone();
        led.shutdown = app.shutdown.child_token();
        let mut duties = tokio::task::JoinSet::new();
        duties.spawn(zone_writer(led.clone()));
        duties.spawn(registry_sweeper(led.clone()));
        duties.spawn(crate::cds::run(led.clone()));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = app.shutdown.cancelled() => break,
            }
            if !lease.held() {
                warn!("zone writer: leadership lost (database session ended); standing by");
                break;
            }
        }
        led.shutdown.cancel();
        while duties.join_next().await.is_some() {}
        drop(lease);
        if app.shutdown.is_cancelled() {
            return;
        }
    }
}

/// How far back `serve`'s first sweep looks for unannounced transitions.
const SWEEP_CATCH_UP: chrono::Duration = chrono::Duration::days(7);

/// Writes the registry work that time makes due (automatic approval of
/// registrar changes, lapsed requests, one feed event per lifecycle
/// transition) every `lifecycle.sweep_interval`. The first sweep checks
/// the transitions of the last [`SWEEP_CATCH_UP`] against the history (a
/// shorter stop loses none, and an upgraded or imported store does not flood
/// the feeds with years-old transitions); later ones only those since the
/// previous sweep.
async fn registry_sweeper(app: App) {
    let every = app
        .config
        .lifecycle
        .sweep_interval
        .max(Duration::from_millis(100));
    let mut since = Some(app.now() - SWEEP_CATCH_UP);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = app.shutdown.cancelled() => return,
        }
        let a = app.clone();
        let now = app.now();
        match tokio::task::spawn_blocking(move || a.registry().at(now).sweep_since(since)).await {
            Ok(Ok(n)) => {
                since = Some(now);
                if n > 0 {
                    info!(domains = n, "registry sweep: time-driven changes written");
                }
            }
            Ok(Err(e)) => error!("registry sweep failed: {e}"),
            Err(e) => error!("registry sweep task failed: {e}"),
        }
    }
}

async fn last_update(app: &App) -> Option<crate::model::Timestamp> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.last_update().ok().flatten())
        .await
        .ok()
        .flatten()
}

/// Keeps `zone.output` files current: once at start, then after changes.
async fn zone_writer(app: App) {
    if app.config.zone.output.is_none() {
        return;
    }
    let shared = app.store.shared();
    // For the zone alerts (contrib/prometheus): pending changes, the last
    // good write, failed writes (a failed write is retried at the next
    // change, so pending stays 1 meanwhile).
    let pending = metrics::gauge!("zonekeeper_zone_changes_pending");
    let errors = metrics::counter!("zonekeeper_zone_write_errors_total");
    errors.increment(0);
    pending.set(1.0);
    loop {
        // Read before writing: a change made while writing shows as newer.
        let seen = if shared {
            last_update(&app).await
        } else {
            None
        };
        let a = app.clone();
        let started = std::time::Instant::now();
        let res = tokio::task::spawn_blocking(move || {
            crate::zone::write_all(a.store.as_ref(), &a.config, a.now())
        })
        .await;
        let took = started.elapsed();
        match res {
            Ok(Ok(n)) => {
                info!(files = n, "zone files written");
                pending.set(0.0);
                metrics::gauge!("zonekeeper_zone_last_write_timestamp_seconds")
                    .set(chrono::Utc::now().timestamp() as f64);
            }
            Ok(Err(e)) => {
                errors.increment(1);
                error!("zone write failed: {e}");
            }
            Err(e) => {
                errors.increment(1);
                error!("zone writer task failed: {e}");
            }
        }
        if shared {
            // Other processes change the zone too: a change shows in the
            // store's last update time.
            loop {
                tokio::select! {
                    _ = app.zone_dirty.notified() => break,
                    _ = app.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(app.config.serve.poll_interval) => {}
                }
                if last_update(&app).await != seen {
                    break;
                }
            }
        } else {
            tokio::select! {
                _ = app.zone_dirty.notified() => {}
                _ = app.shutdown.cancelled() => return,
            }
        }
        pending.set(1.0);
        tokio::time::sleep(zone_gap(took)).await;
    }
}

/// How often [`store_watch`] measures the store's volume and, while the
/// store cannot commit, probes it with a tiny write.
const STORE_WATCH_EVERY: Duration = Duration::from_secs(1);

/// Watch the store: its volume's free space (gauge
/// `zonekeeper_store_free_bytes`, a warning below `store.min_free_mib`)
/// and, while writes fail, a write probe, so readiness comes back when
/// the store can commit again without waiting for a real write.
async fn store_watch(app: App) {
    let min_free = app.config.store.min_free_mib.saturating_mul(1 << 20);
    let mut low = false;
    let mut tick = tokio::time::interval(STORE_WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = app.store.clone();
        let measured = tokio::task::spawn_blocking(move || {
            // Writable (as far as known) and answering a read: a
            // PostgreSQL database that is away fails the read.
            let healthy =
                store.probe_write() == crate::store::Health::Ok && store.last_update().is_ok();
            let free = store.file().map(crate::store::free_bytes);
            (healthy, free)
        })
        .await;
        let Ok((healthy, free)) = measured else {
            continue;
        };
        metrics::gauge!("zonekeeper_store_healthy").set(if healthy { 1.0 } else { 0.0 });
        match free {
            Some(Ok(free)) => {
                app.set_store_free(free);
                metrics::gauge!("zonekeeper_store_free_bytes").set(free as f64);
                if free < min_free && !low {
                    warn!(
                        "store volume has {} MiB free, below store.min_free_mib ({}): writes fail when it is full",
                        free >> 20,
                        min_free >> 20
                    );
                } else if free >= min_free && low {
                    info!("store volume has {} MiB free again", free >> 20);
                }
                low = free < min_free;
            }
            Some(Err(e)) => debug!("store volume: {e}"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_rewrites_take_at_most_a_tenth_of_the_time() {
        let ms = Duration::from_millis;
        assert_eq!(zone_gap(ms(3)), ZONE_DEBOUNCE);
        assert_eq!(zone_gap(ms(100)), ms(900));
        assert_eq!(zone_gap(Duration::from_secs(5)), ZONE_MAX_GAP);
    }
}

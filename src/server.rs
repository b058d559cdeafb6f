//! The running service behind `zonekeeper serve` ([`crate::cli::serve`]
//! reads the flags and builds the [`App`]): binds the listeners and runs
//! the scheduler, WHOIS, HTTP (RDAP, API, metrics, dashboard), the control
//! socket, the registry sweeper, the CDS scanner and the zone writer, and
//! stops them all cleanly on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::app::App;

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

/// Run every part until `app.shutdown` is cancelled (or a signal arrives).
pub async fn serve(mut app: App) -> Result<(), ServeError> {
    // A bad trust anchor file stops start-up, not only the CDS scanner.
    if let Some(p) = &app.config.dnssec.trust_anchors {
        crate::probe::dsboot::load_anchors(p)
            .map_err(|e| ServeError::TrustAnchors(e.to_string()))?;
    }
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
    let sock_path = app.config.store.control_socket_for(&app.config.store.path);
    let control = crate::control::bind(&sock_path)?;
    info!(
        whois = %app.config.whois.listen,
        http = %app.config.http.listen,
        store = %app.config.store.path.display(),
        control = %control.path().display(),
        "zonekeeper serving"
    );
    serve_with_control(app, whois_listener, http_listener, Some(control)).await
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
    // Before any task records a metric.
    crate::metrics::install();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::scheduler::run(app.clone()));
    tasks.spawn(zone_writer(app.clone()));
    tasks.spawn(registry_sweeper(app.clone()));
    tasks.spawn(crate::cds::run(app.clone()));
    {
        let app = app.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::whois::serve(app.clone(), whois_listener).await {
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
        tasks.spawn(crate::control::run(app.clone(), sock));
    }
    if app.config.epp.listen.is_some() {
        let app = app.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::epp::run(app.clone()).await {
                error!("EPP server stopped: {e}");
                app.shutdown.cancel();
            }
        });
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
    app.shutdown.cancelled().await;
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

/// Completes registry work that time makes due (automatic approval of
/// registrar changes) every `lifecycle.sweep_interval`.
async fn registry_sweeper(app: App) {
    let every = app
        .config
        .lifecycle
        .sweep_interval
        .max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = app.shutdown.cancelled() => return,
        }
        let a = app.clone();
        match tokio::task::spawn_blocking(move || a.registry().sweep()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(transfers = n, "registrar changes approved automatically"),
            Ok(Err(e)) => error!("registry sweep failed: {e}"),
            Err(e) => error!("registry sweep task failed: {e}"),
        }
    }
}

/// Keeps `zone.output` files current: once at start, then after changes.
async fn zone_writer(app: App) {
    if app.config.zone.output.is_none() {
        return;
    }
    loop {
        let a = app.clone();
        let res = tokio::task::spawn_blocking(move || {
            crate::zone::write_all(a.store.as_ref(), &a.config, a.now())
        })
        .await;
        match res {
            Ok(Ok(n)) => info!(files = n, "zone files written"),
            Ok(Err(e)) => error!("zone write failed: {e}"),
            Err(e) => error!("zone writer task failed: {e}"),
        }
        tokio::select! {
            _ = app.zone_dirty.notified() => {}
            _ = app.shutdown.cancelled() => return,
        }
        tokio::time::sleep(ZONE_DEBOUNCE).await;
    }
}

//! `zonekeeper serve`: wires the store, scheduler, WHOIS, HTTP (RDAP, API,
//! metrics, dashboard) and the zone writer together, and stops them all
//! cleanly on SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::app::App;
use crate::cli::{open_store, Fail, ServeArgs};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Role};

/// How long running tasks get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Changes within this period are written as one zone file rewrite.
const ZONE_DEBOUNCE: Duration = Duration::from_millis(500);

pub fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.filter));
    // Colour codes only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Every record is escaped on its way out (crate::text): one record,
        // one line, whatever a logged value holds.
        .with_writer(move || crate::text::LogWriter::new(std::io::stderr(), ansi))
        .with_ansi(ansi);
    let _ = if cfg.log.json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

pub fn run(mut cfg: Config, args: ServeArgs) -> Result<ExitCode, Fail> {
    if let Some(a) = args.whois_listen {
        cfg.whois.listen = a;
    }
    if let Some(a) = args.http_listen {
        cfg.http.listen = a;
    }
    if let Some(db) = &args.db.db {
        match crate::store::Location::parse(&db.to_string_lossy()) {
            crate::store::Location::Path(p) => {
                cfg.store.path = p;
                cfg.store.url = None;
            }
            crate::store::Location::Postgres(u) => cfg.store.url = Some(u),
        }
    }
    if let Some(r) = &args.roles {
        cfg.serve.roles = r.clone();
    }
    check_roles(&cfg)?;
    if cfg.rdap.base_url.is_none() && !cfg.http.listen.ip().is_loopback() {
        return Err(Fail(format!(
            "rdap.base_url is required when HTTP listens on {}, which is not a loopback address",
            cfg.http.listen
        )));
    }
    init_tracing(&cfg);
    let mut store = open_store(&cfg, &args.db)?;
    if let Some(file) = &args.import {
        let s = crate::import::import_file(&*store, file, &cfg, SystemClock.now())?;
        if s.domains - s.unchanged >= crate::import::COMPACT_AFTER_DOMAINS {
            store.compact()?;
        }
        info!(
            domains = s.domains,
            tests_started = s.tests_started,
            "imported {}",
            file.display()
        );
    }
    // The demo's data and loopback servers belong to one process: the
    // front end's (schedulers elsewhere on the machine probe them there).
    let demo = cfg.demo.enabled && cfg.serve.has(Role::Frontend);
    let demo_domains = if demo {
        crate::demo::import(&*store, &cfg, SystemClock.now())?
    } else {
        Vec::new()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store: Arc<dyn crate::store::Backend> = Arc::from(store);
    let app = App::new(cfg, store, Arc::new(SystemClock))?;
    rt.block_on(async {
        if demo {
            let demo = crate::demo::Demo::bind(&app.config).await?;
            info!(
                servers = demo.servers.len(),
                first = %demo.servers.first().map(ToString::to_string).unwrap_or_default(),
                resolvers = ?demo.resolvers,
                domains = ?demo_domains,
                "demo: loopback DNS servers started (demo.enabled; see docs/demo.md)"
            );
            demo.run(app.shutdown.clone());
            // Probed at once rather than within the start-up spread.
            for d in &demo_domains {
                app.domain_changed(d);
            }
        }
        serve(app).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The roles make sense for the store: at least one, and on redb (one
/// process) all three.
fn check_roles(cfg: &Config) -> Result<(), Fail> {
    let roles = &cfg.serve.roles;
    if roles.is_empty() {
        return Err(Fail(
            "serve.roles is empty: name at least one of scheduler, frontend, zone".into(),
        ));
    }
    let all = Role::ALL.iter().all(|r| roles.contains(r));
    if !all && !cfg.store.location(None).is_postgres() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(Fail(format!(
            "--roles {} needs the PostgreSQL backend (--db postgres://… or store.url): the redb store {} is used by one process, which runs all three roles",
            names.join(","),
            cfg.store.path.display()
        )));
    }
    Ok(())
}

/// Run every part until `app.shutdown` is cancelled (or a signal arrives).
pub async fn serve(app: App) -> Result<(), Fail> {
    if !app.config.serve.has(Role::Frontend) {
        info!(
            roles = ?app.config.serve.roles,
            store = %app.config.store.location(None),
            "zonekeeper serving (no front end)"
        );
        return run_parts(app, None).await;
    }
    serve_frontend(app).await
}

async fn serve_frontend(mut app: App) -> Result<(), Fail> {
    let whois_listener = TcpListener::bind(app.config.whois.listen)
        .await
        .map_err(|e| {
            Fail(format!(
                "cannot listen for WHOIS on {}: {e}",
                app.config.whois.listen
            ))
        })?;
    let http_listener = TcpListener::bind(app.config.http.listen)
        .await
        .map_err(|e| {
            Fail(format!(
                "cannot listen for HTTP on {}: {e}",
                app.config.http.listen
            ))
        })?;
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
    let location = app.config.store.location(None);
    let sock_path = match (&location, &app.config.store.control_socket) {
        (crate::store::Location::Postgres(_), None) => None,
        _ => Some(app.config.store.control_socket_for(&app.config.store.path)),
    };
    let control = match sock_path {
        Some(p) => Some(crate::control::bind(&p).map_err(|e| Fail(e.to_string()))?),
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
) -> Result<(), Fail> {
    serve_with_control(app, whois_listener, http_listener, None).await
}

/// [`serve_on`] plus the operator control socket (see [`crate::control`]).
pub async fn serve_with_control(
    app: App,
    whois_listener: TcpListener,
    http_listener: TcpListener,
    control: Option<crate::control::ControlSocket>,
) -> Result<(), Fail> {
    run_parts(app, Some((whois_listener, http_listener, control))).await
}

/// The front end's listeners and control socket.
type Frontend = (
    TcpListener,
    TcpListener,
    Option<crate::control::ControlSocket>,
);

/// Run this process's roles (`serve.roles`) until shutdown.
async fn run_parts(app: App, frontend: Option<Frontend>) -> Result<(), Fail> {
    // Before any task records a metric.
    crate::metrics::install();
    let mut tasks = tokio::task::JoinSet::new();
    if app.config.serve.has(Role::Scheduler) {
        tasks.spawn(crate::scheduler::run(app.clone()));
    }
    if app.config.serve.has(Role::Zone) {
        tasks.spawn(zone_duties(app.clone()));
    }
    if let Some((whois_listener, http_listener, control)) = frontend {
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
    loop {
        // Read before writing: a change made while writing shows as newer.
        let seen = if shared {
            last_update(&app).await
        } else {
            None
        };
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
        tokio::time::sleep(ZONE_DEBOUNCE).await;
    }
}

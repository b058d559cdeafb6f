//! `zonekeeper serve`: applies the flags to the config, checks the roles
//! against the store, opens the store, runs `--import` and the demo's
//! data, then hands an [`App`] to [`crate::server::serve`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tracing::info;

use super::common::{open_store, DbArg, Fail};
use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Role};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// WHOIS listen address (overrides whois.listen).
    #[arg(long)]
    pub whois_listen: Option<std::net::SocketAddr>,
    /// HTTP listen address for RDAP, API, metrics and dashboard.
    #[arg(long)]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Import this file before serving (idempotent).
    #[arg(long)]
    pub import: Option<PathBuf>,
    /// What this process runs: any of scheduler, frontend, zone,
    /// comma-separated (overrides serve.roles; default all three).
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<crate::config::Role>>,
}

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
        crate::server::serve(app).await.map_err(Fail::from)
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
    if !all && !crate::store::Location::of(&cfg.store, None).is_postgres() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(Fail(format!(
            "--roles {} needs the PostgreSQL backend (--db postgres://… or store.url): the redb store {} is used by one process, which runs all three roles",
            names.join(","),
            cfg.store.path.display()
        )));
    }
    Ok(())
}

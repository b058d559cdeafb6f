//! Storage behind one small trait with two backends: the embedded redb
//! file (the default: one process) and PostgreSQL (several schedulers
//! claiming due domains, several WHOIS/RDAP front ends on one database).
//! [`open`] picks the backend from `--db` / `store.url` / `store.path`: a
//! `postgres://` (or `postgresql://`) URL is PostgreSQL, anything else a
//! redb path.
//!
//! The trait is synchronous: redb calls take microseconds, and callers on
//! the async side use them directly for point reads and through
//! `spawn_blocking` for bulk work. The PostgreSQL backend keeps that
//! contract by running its async driver on a runtime of its own and
//! blocking only the calling thread (see [`postgres`]). Every write is one
//! transaction: it either happens whole or not at all. The registry rules
//! live above the store, in [`crate::registry`]; a backend stores what it
//! is given and keeps its indexes. Maintenance (verify, compact) is the
//! separate [`Maintenance`] trait.

use std::path::PathBuf;

mod codec;
mod contract;
pub mod indexes;
mod migrate;
pub mod postgres;
pub mod redb;
mod redb_schema;
pub mod retention;
pub mod stamps;
mod verify;
pub use self::contract::*;
pub use self::postgres::PgStore;
pub use self::redb::RedbStore;
pub use self::retention::Retention;

/// Where a store is: a redb file or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Path(PathBuf),
    /// A `postgres://` / `postgresql://` URL (libpq form; a Unix socket
    /// directory goes in `?host=/dir`).
    Postgres(String),
}

impl Location {
    /// The store to open: `--db` if given (a path or a `postgres://` URL),
    /// else `store.url`, else `store.path`.
    pub fn of(cfg: &crate::config::StoreConfig, db: Option<&std::path::Path>) -> Self {
        match (db, &cfg.url) {
            (Some(d), _) => Location::parse(&d.to_string_lossy()),
            (None, Some(u)) => Location::parse(u),
            (None, None) => Location::Path(cfg.path.clone()),
        }
    }

    /// `postgres://…` and `postgresql://…` are PostgreSQL; anything else is
    /// a redb path.
    pub fn parse(s: &str) -> Self {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(s.to_string())
        } else {
            Location::Path(PathBuf::from(s))
        }
    }

    /// The redb file, if this is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Location::Path(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Path(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => f.write_str(&postgres::redact(u)),
        }
    }
}

/// How to open a store (backend-specific knobs; each ignores the other's).
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// redb page cache.
    pub cache_bytes: usize,
    /// PostgreSQL connections in the pool.
    pub pool_size: usize,
    /// Which probe rounds are kept.
    pub retention: Retention,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            cache_bytes: redb::DEFAULT_CACHE_BYTES,
            pool_size: 8,
            retention: Retention::default(),
        }
    }
}

impl OpenOptions {
    pub fn from_config(cfg: &crate::config::StoreConfig) -> Self {
        Self {
            cache_bytes: cfg.cache_mib.saturating_mul(1 << 20),
            pool_size: cfg.pool_size.max(1),
            retention: Retention::from_config(cfg),
        }
    }
}

/// Open (or create) the store at `at`, checking its schema version.
pub fn open(at: &Location, opts: &OpenOptions) -> Result<AnyStore> {
    Ok(match at {
        Location::Path(p) => {
            let mut s = RedbStore::open_with_cache(p, opts.cache_bytes)?;
            s.set_retention(opts.retention);
            Box::new(s)
        }
        Location::Postgres(url) => {
            let mut s = PgStore::connect(url, opts.pool_size)?;
            s.set_retention(opts.retention);
            Box::new(s)
        }
    })
}

//! How a process runs: `[store]`, `[serve]` (its roles), `[log]` and
//! `[demo]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::forms::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// A `postgres://…` URL: the PostgreSQL backend instead of the redb
    /// file at `path` (`--db` overrides both).
    pub url: Option<String>,
    /// PostgreSQL connections per process.
    pub pool_size: usize,
    /// Probe rounds always kept per domain (the most recent ones).
    pub rounds_keep_last: usize,
    /// Older rounds are kept only where something changed, and only this
    /// long (none: for ever).
    #[serde(deserialize_with = "human_opt")]
    pub rounds_max_age: Option<Duration>,
    /// Page cache in MiB. Hot pages of a large store are served from
    /// memory; the cache counts towards the process's RSS.
    pub cache_mib: usize,
    /// Unix socket on which `serve` takes the operator commands (`domain
    /// show`, `retest`, `hold`, `release`) while it owns the store. Default:
    /// the store path with `.sock` appended.
    pub control_socket: Option<PathBuf>,
    /// Below this much free space (MiB) on the store's volume `serve`
    /// warns and `/readyz` says `degraded` (redb store only).
    pub min_free_mib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("zonekeeper.redb"),
            url: None,
            pool_size: 8,
            // A day of hourly rounds: the window is a one-off ~4.6 GiB at
            // 1M domains (500 was ~92 GiB, filled over three weeks).
            rounds_keep_last: 24,
            rounds_max_age: Some(Duration::from_secs(90 * 86_400)),
            cache_mib: 160,
            control_socket: None,
            min_free_mib: 256,
        }
    }
}

impl StoreConfig {
    /// The control socket for the store at `db` (the configured path unless
    /// `--db` overrode it).
    pub fn control_socket_for(&self, db: &Path) -> PathBuf {
        match &self.control_socket {
            Some(p) => p.clone(),
            None => {
                let mut s = db.as_os_str().to_os_string();
                s.push(".sock");
                PathBuf::from(s)
            }
        }
    }
}

/// What one `serve` process runs (docs/cli.md `serve --roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Probe rounds: claims due domains (several schedulers share the work).
    Scheduler,
    /// WHOIS, RDAP, registrar API, metrics, dashboard, control socket.
    Frontend,
    /// The zone writer and the registry's timed work (one process leads).
    Zone,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Scheduler, Role::Frontend, Role::Zone];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Scheduler => "scheduler",
            Role::Frontend => "frontend",
            Role::Zone => "zone",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role '{s}': expected scheduler, frontend or zone"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// What this process runs (default: all three). Anything less needs
    /// the PostgreSQL backend (`store.url`): redb is one process.
    pub roles: Vec<Role>,
    /// How long a scheduler's claim on a due domain lasts: a killed
    /// scheduler's domains are taken over after it. Longer than a round.
    #[serde(deserialize_with = "human")]
    pub claim_lease: Duration,
    /// How often a process on a shared database looks for changes other
    /// processes made (new work for the scheduler, zone changes).
    #[serde(deserialize_with = "human")]
    pub poll_interval: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            roles: Role::ALL.to_vec(),
            claim_lease: Duration::from_secs(180),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl ServeConfig {
    pub fn has(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info,zonekeeper=debug`.
    pub filter: String,
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

/// The loopback demo ([`crate::demo`]): off unless the config turns it on
/// (the development config does; a production config never should).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// `serve` starts small authoritative servers for the demo domains on
    /// 127.0.53.0/24 (port `probe.port`) and a resolver on the loopback
    /// `probe.resolvers`, and imports the demo domains.
    pub enabled: bool,
}

//! The configuration file as a whole: [`Config`] (one field per
//! `[section]`), its defaults and how a file becomes one.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::names::Zones;

use super::checking::*;
use super::edges::*;
use super::error::ConfigError;
use super::forms::zone_name;
use super::process::*;
use super::rules::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Zones (TLDs) of the registry, U- or A-labels.
    pub zones: Vec<String>,
    pub store: StoreConfig,
    pub serve: ServeConfig,
    pub delegation: DelegationConfig,
    pub probe: ProbeConfig,
    pub lifecycle: LifecycleConfig,
    pub whois: WhoisConfig,
    pub http: HttpConfig,
    pub rdap: RdapConfig,
    pub api: ApiConfig,
    pub zone: ZoneConfig,
    pub log: LogConfig,
    pub demo: DemoConfig,
    pub names: NamesConfig,
    pub dnssec: DnssecConfig,
    pub epp: EppConfig,
    pub webhook: WebhookConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            zones: vec!["ru".into(), "рф".into()],
            store: StoreConfig::default(),
            serve: ServeConfig::default(),
            delegation: DelegationConfig::default(),
            probe: ProbeConfig::default(),
            lifecycle: LifecycleConfig::default(),
            whois: WhoisConfig::default(),
            http: HttpConfig::default(),
            rdap: RdapConfig::default(),
            api: ApiConfig::default(),
            zone: ZoneConfig::default(),
            log: LogConfig::default(),
            demo: DemoConfig::default(),
            names: NamesConfig::default(),
            dnssec: DnssecConfig::default(),
            epp: EppConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// The RDAP base URL, ending in `/`: `rdap.base_url`, else
/// `http://{http.listen}/rdap/`.
pub fn rdap_base_url(cfg: &Config) -> String {
    match &cfg.rdap.base_url {
        Some(b) if b.ends_with('/') => b.clone(),
        Some(b) => format!("{b}/"),
        None => format!("http://{}/rdap/", cfg.http.listen),
    }
}

impl Config {
    /// Default location of the config file.
    pub const DEFAULT_PATH: &'static str = "config/zonekeeper.toml";

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        // Zone names may be written as U-labels or upper case; the zone
        // file gets their A-label form.
        cfg.zone.primary = zone_name("zone.primary", &cfg.zone.primary)?.to_string();
        cfg.zone.hostmaster = zone_name("zone.hostmaster", &cfg.zone.hostmaster)?.to_string();
        for n in &mut cfg.zone.nameservers {
            *n = zone_name("zone.nameservers", n)?.to_string();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Load `path` if given; else the default file if it exists; else defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => {
                let p = Path::new(Self::DEFAULT_PATH);
                if p.exists() {
                    Self::load(p)
                } else {
                    Ok(Self::default())
                }
            }
        }
    }

    /// The zones with their name policies (tables read from disk).
    pub fn zones(&self) -> Result<Zones, ConfigError> {
        let tables = self.names.load()?;
        Ok(Zones::with_tables(&self.zones, &tables)?)
    }

    /// Pick up the address `serve` actually bound (a `:0` listen port) for
    /// the derived RDAP base URL.
    pub fn set_bound_http(&mut self, addr: SocketAddr) {
        self.http.listen = addr;
    }

    /// Convert a std duration into chrono's, saturating.
    pub fn chrono(d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }
}

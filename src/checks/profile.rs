//! Policy profiles: the registry's default severities, optionally changed by
//! a TOML file:
//!
//! ```toml
//! name = "strict"
//! [severity]
//! OPEN_RECURSION = "error"
//! EDNS = "off"
//!
//! [dnssec]                    # see `DnssecPolicy`; defaults per RFC 8624
//! algorithms = [8, 13, 14, 15]
//! digest_types = [2, 4]
//! expiry_margin = "3d"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::catalogue::{self, CheckId, CATALOGUE};
use crate::model::{Finding, Severity};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Error,
    Warning,
    Notice,
    Off,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    #[serde(default)]
    severity: BTreeMap<String, Level>,
    #[serde(default)]
    dnssec: DnssecFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DnssecFile {
    algorithms: Option<Vec<u8>>,
    digest_types: Option<Vec<u8>>,
    #[serde(default, with = "humantime_serde_opt")]
    expiry_margin: Option<std::time::Duration>,
    nsec3_max_iterations: Option<u16>,
    max_keys: Option<usize>,
    max_crypto_ops: Option<u32>,
}

/// `Option<Duration>` in human form (`3d`).
mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<std::time::Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("'{s}': {e}"))),
        }
    }
}

/// What the DNSSEC checks accept ([`super::dnssec`]); the profile's
/// `[dnssec]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnssecPolicy {
    /// DNSKEY/DS algorithms accepted (RFC 8624 §3.1: 8, 13, 14, 15 are
    /// MUST/RECOMMENDED to sign with; 5, 7 (SHA-1) and older are not).
    pub algorithms: Vec<u8>,
    /// DS digest types accepted (RFC 8624 §3.3: 2 MUST, 4 MAY; 1 (SHA-1)
    /// MUST NOT be used to create DS).
    pub digest_types: Vec<u8>,
    /// An RRSIG expiring within this margin is a warning.
    pub expiry_margin: chrono::Duration,
    /// Above this NSEC3 iteration count validators may treat the zone as
    /// insecure or fail it (RFC 9276 §3.2).
    pub nsec3_max_iterations: u16,
    /// Most DNSKEYs judged per server.
    pub max_keys: usize,
    /// Most signature verifications and digests per check (CPU budget).
    pub max_crypto_ops: u32,
}

impl Default for DnssecPolicy {
    fn default() -> Self {
        Self {
            algorithms: vec![8, 13, 14, 15],
            digest_types: vec![2, 4],
            expiry_margin: chrono::Duration::days(3),
            nsec3_max_iterations: 100,
            max_keys: 32,
            max_crypto_ops: 512,
        }
    }
}

/// Severity per check id; `None` turns a check off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: String,
    overrides: HashMap<CheckId, Option<Severity>>,
    dnssec: DnssecPolicy,
}

impl Profile {
    /// The registry's regulation (docs/delegation.md): the catalogue's severities.
    pub fn registry_default() -> Self {
        Self {
            name: "registry".into(),
            overrides: HashMap::new(),
            dnssec: DnssecPolicy::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ProfileError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let f: ProfileFile =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
        let mut overrides = HashMap::new();
        for (id, level) in f.severity {
            let check = catalogue::lookup(&id).ok_or_else(|| {
                let known: Vec<&str> = CATALOGUE.iter().map(|c| c.id.as_str()).collect();
                format!("unknown check id '{id}' (known: {})", known.join(", "))
            })?;
            let sev = match level {
                Level::Error => Some(Severity::Error),
                Level::Warning => Some(Severity::Warning),
                Level::Notice => Some(Severity::Notice),
                Level::Off => None,
            };
            overrides.insert(check.id, sev);
        }
        let def = DnssecPolicy::default();
        let d = f.dnssec;
        let dnssec = DnssecPolicy {
            algorithms: d.algorithms.unwrap_or(def.algorithms),
            digest_types: d.digest_types.unwrap_or(def.digest_types),
            expiry_margin: match d.expiry_margin {
                Some(m) => chrono::Duration::from_std(m)
                    .map_err(|_| "dnssec.expiry_margin is too long".to_string())?,
                None => def.expiry_margin,
            },
            nsec3_max_iterations: d.nsec3_max_iterations.unwrap_or(def.nsec3_max_iterations),
            max_keys: d.max_keys.unwrap_or(def.max_keys),
            max_crypto_ops: d.max_crypto_ops.unwrap_or(def.max_crypto_ops),
        };
        if dnssec.algorithms.contains(&0) {
            return Err("dnssec.algorithms: 0 is not an algorithm".into());
        }
        Ok(Self {
            name: f.name.unwrap_or_else(|| "custom".into()),
            overrides,
            dnssec,
        })
    }

    /// What the DNSSEC checks accept.
    pub fn dnssec(&self) -> &DnssecPolicy {
        &self.dnssec
    }

    /// Severity of check `id` under this profile; `None` = off.
    pub fn severity(&self, id: &str) -> Option<Severity> {
        let id = CheckId::parse(id)?;
        match self.overrides.get(&id) {
            Some(s) => *s,
            None => id.check().map(|c| c.severity),
        }
    }

    /// Re-grade findings; drop those of checks turned off.
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        findings
            .into_iter()
            .filter_map(|mut f| {
                f.severity = self.severity(&f.id)?;
                Some(f)
            })
            .collect()
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::registry_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_rejects_unknown() {
        let p = Profile::from_toml(
            "name = \"strict\"\n[severity]\nOPEN_RECURSION = \"error\"\nEDNS = \"off\"\n",
        )
        .unwrap();
        assert_eq!(p.name(), "strict");
        assert_eq!(p.severity("OPEN_RECURSION"), Some(Severity::Error));
        assert_eq!(p.severity("EDNS"), None);
        assert_eq!(p.severity("LAME"), Some(Severity::Error));
        assert!(Profile::from_toml("[severity]\nNOPE = \"error\"\n")
            .unwrap_err()
            .contains("NOPE"));
        assert!(Profile::from_toml("[severity]\nLAME = \"fatal\"\n").is_err());
        assert!(Profile::from_toml("colour = 1\n").is_err());
        let p =
            Profile::from_toml("[dnssec]\nalgorithms = [13]\nexpiry_margin = \"12h\"\n").unwrap();
        assert_eq!(p.dnssec().algorithms, vec![13]);
        assert_eq!(p.dnssec().digest_types, vec![2, 4]);
        assert_eq!(p.dnssec().expiry_margin, chrono::Duration::hours(12));
        assert!(Profile::from_toml("[dnssec]\nmargin = 1\n").is_err());
        let d = Profile::registry_default();
        for c in CATALOGUE {
            assert_eq!(d.severity(c.id.as_str()), Some(c.severity));
        }
    }
}

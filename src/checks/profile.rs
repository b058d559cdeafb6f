//! Policy profiles: the registry's default severities, optionally changed by
//! a TOML file:
//!
//! ```toml
//! name = "strict"
//! [severity]
//! OPEN_RECURSION = "error"
//! EDNS = "off"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::catalogue::{self, CATALOGUE};
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
}

/// Severity per check id; `None` turns a check off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: String,
    overrides: HashMap<&'static str, Option<Severity>>,
}

impl Profile {
    /// The registry's regulation (SPEC §1): the catalogue's severities.
    pub fn registry_default() -> Self {
        Self {
            name: "registry".into(),
            overrides: HashMap::new(),
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
                let known: Vec<&str> = CATALOGUE.iter().map(|c| c.id).collect();
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
        Ok(Self {
            name: f.name.unwrap_or_else(|| "custom".into()),
            overrides,
        })
    }

    /// Severity of check `id` under this profile; `None` = off.
    pub fn severity(&self, id: &str) -> Option<Severity> {
        match self.overrides.get(id) {
            Some(s) => *s,
            None => catalogue::lookup(id).map(|c| c.severity),
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
        let d = Profile::registry_default();
        for c in CATALOGUE {
            assert_eq!(d.severity(c.id), Some(c.severity));
        }
    }
}

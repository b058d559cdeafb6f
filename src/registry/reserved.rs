//! Reserved names (`lifecycle.reserved_names`): a file of names, one a
//! line, `#` starts a comment. They cannot be created or imported.

use std::collections::HashSet;
use std::path::Path;

use crate::names::Zones;

#[derive(Debug, Clone, Default)]
pub struct ReservedNames(HashSet<String>);

#[derive(Debug, thiserror::Error)]
pub enum ReservedError {
    #[error("cannot read reserved names {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("reserved names {path} line {line}: {message}")]
    Bad {
        path: String,
        line: usize,
        message: String,
    },
}

impl ReservedNames {
    /// Parse the file's text; names are normalised like every input name
    /// (U-labels to A-labels, case, trailing dot).
    pub fn parse(text: &str, path: &str, zones: &Zones) -> Result<Self, ReservedError> {
        let mut set = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            let n = zones.parse_domain(l).map_err(|e| ReservedError::Bad {
                path: path.to_string(),
                line: i + 1,
                message: e.to_string(),
            })?;
            set.insert(n.as_str().to_string());
        }
        Ok(Self(set))
    }

    /// The list `lifecycle.reserved_names` names (none: empty), as a
    /// config error.
    pub fn from_config(
        cfg: &crate::config::Config,
        zones: &Zones,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::load(cfg.lifecycle.reserved_names.as_deref(), zones)
            .map_err(|e| crate::config::ConfigError::Invalid(e.to_string()))
    }

    pub fn load(path: Option<&Path>, zones: &Zones) -> Result<Self, ReservedError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReservedError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p, zones)
    }

    /// `name` (A-label form) is reserved.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let z = Zones::new(&["ru".to_string(), "рф".to_string()]).unwrap();
        let r =
            ReservedNames::parse("# list\nRegistry.RU.\n\nпример.рф  # idn\n", "f", &z).unwrap();
        assert!(r.contains("registry.ru"));
        assert!(r.contains("xn--e1afmkfd.xn--p1ai"));
        assert_eq!(r.len(), 2);
        let e = ReservedNames::parse("ok.ru\n-bad-.ru\n", "f", &z).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}

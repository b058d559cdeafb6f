//! The registry's zones ([`Zones`]), each with its name policy, and how
//! a registered domain name is parsed against them.

use super::error::*;
use super::policy::NamePolicy;
use super::syntax::*;

/// The registry's zones (TLDs), normalised to A-labels, each with its name
/// policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zones {
    zones: Vec<String>,
    /// `policies[i]` governs `zones[i]`.
    policies: Vec<NamePolicy>,
}

impl Zones {
    /// Build from configured zone names (U- or A-labels), with the built-in
    /// name tables. Longest first, so a name matches its most specific zone.
    pub fn new<S: AsRef<str>>(zones: &[S]) -> Result<Self, NameError> {
        Self::with_tables(zones, &[])
    }

    /// Like [`Zones::new`]; `tables` replace the built-in policy of their
    /// zone (a table for a zone that is not configured is ignored).
    pub fn with_tables<S: AsRef<str>>(
        zones: &[S],
        tables: &[NamePolicy],
    ) -> Result<Self, NameError> {
        let mut v: Vec<String> = Vec::with_capacity(zones.len());
        for z in zones {
            let ascii = zone_ascii(z.as_ref())?;
            if !v.contains(&ascii) {
                v.push(ascii);
            }
        }
        v.sort_by_key(|z: &String| std::cmp::Reverse(z.len()));
        let policies = v
            .iter()
            .map(|z| {
                tables
                    .iter()
                    .find(|t| &t.zone == z)
                    .cloned()
                    .unwrap_or_else(|| NamePolicy::builtin(z))
            })
            .collect();
        Ok(Self { zones: v, policies })
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.zones.iter().map(String::as_str)
    }

    pub fn contains(&self, zone: &str) -> bool {
        self.zones.iter().any(|z| z == zone)
    }

    /// The zone a (normalised) name is at or below.
    pub fn zone_of(&self, name: &str) -> Option<&str> {
        self.iter().find(|z| is_at_or_below(name, z))
    }

    /// The name policy of a (normalised) zone.
    pub fn policy(&self, zone: &str) -> Option<&NamePolicy> {
        self.zones
            .iter()
            .position(|z| z == zone)
            .map(|i| &self.policies[i])
    }

    /// Normalise and validate a registered domain name: the syntax rules,
    /// then its zone's name policy (character table, IDNA 2008, scripts,
    /// length on the U-label). The confusable rule needs the names already
    /// registered: see [`ConfusableSet`](crate::names::ConfusableSet).
    pub fn parse_domain(&self, input: &str) -> Result<DomainName, NameError> {
        let ascii = to_ascii_form(input)?;
        if ascii.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: ascii.len() });
        }
        for label in ascii.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
        }
        let zone = self.zone_of(&ascii).ok_or_else(|| NameError::NotInZone {
            name: ascii.clone(),
            zones: self.zones.join(", "),
        })?;
        let head = ascii
            .strip_suffix(zone)
            .and_then(|h| h.strip_suffix('.'))
            .unwrap_or("");
        if head.is_empty() || head.contains('.') {
            return Err(NameError::WrongLevel {
                name: ascii.clone(),
                zone: zone.to_string(),
            });
        }
        // The length rule is the policy's, counted on the U-label; for an
        // LDH label that is the same count, so the syntax check applies it.
        let policy = self.policy(zone);
        let min = policy.map_or(MIN_REGISTERED_LABEL_LEN, |p| p.min_len);
        check_label(head, min, true)?;
        if let Some(p) = policy {
            p.check_label(head)?;
        }
        Ok(DomainName(ascii))
    }
}

impl Default for Zones {
    fn default() -> Self {
        // "ru" and "рф" (xn--p1ai): the defaults of docs/config.md.
        Self::new(&["ru", "рф"]).expect("built-in zones are valid")
    }
}

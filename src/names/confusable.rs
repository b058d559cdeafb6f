//! Look-alike names (Unicode TR39 skeletons): the store's index key, the
//! batch check of an import, the refusal.

use super::error::*;
use super::policy::ConfusableMode;
use super::syntax::*;
use super::zones::Zones;

/// The Unicode TR39 skeleton of a registered name's label (its U-label):
/// two names with the same skeleton look alike.
pub fn skeleton(name: &DomainName) -> String {
    let label = name.as_str().split('.').next().unwrap_or("");
    let u = if label.starts_with("xn--") {
        to_unicode(label)
    } else {
        label.to_string()
    };
    unicode_security::skeleton(&u).collect()
}

/// Which skeleton algorithm (and confusables data) built a stored
/// look-alike index: a store whose index was built by another rebuilds it
/// on open, so an update of the TR39 data cannot leave stale keys behind.
pub const SKELETON_INDEX_VERSION: &str = "tr39/unicode-security-0.1/1";

/// The key under which a store indexes `name` for look-alike lookups: its
/// zone and the TR39 skeleton of its label. Two names of one zone look
/// alike when their keys are equal. Every registered name is indexed
/// (whatever its zone's policy), so a policy switched on later needs no
/// rebuild.
pub fn skeleton_index_key(name: &DomainName) -> String {
    format!("{}\u{1f}{}", name.zone(), skeleton(name))
}

/// The confusable rule's mode for `name`'s zone: `None` when the zone's
/// policy has it off.
pub fn confusable_mode(zones: &Zones, name: &DomainName) -> Option<ConfusableMode> {
    zones
        .policy(name.zone())
        .map(|p| p.confusables)
        .filter(|m| *m != ConfusableMode::Off)
}

/// The new names of one batch (an import), to test each against the ones
/// before it; registered names are found through the store's look-alike
/// index ([`skeleton_index_key`]).
#[derive(Debug, Default)]
pub struct ConfusableSet {
    /// look-alike key → the new name that brought it.
    seen: std::collections::HashMap<String, DomainName>,
}

/// A new name that looks like an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookAlike {
    pub mode: ConfusableMode,
    /// The earlier name of this batch it looks like.
    pub earlier: DomainName,
}

impl ConfusableSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Check a new name against the new names before it, then record it:
    /// `Some` if it looks like one of them (and its zone's rule is on).
    pub fn check_and_add(&mut self, zones: &Zones, name: &DomainName) -> Option<LookAlike> {
        let mode = confusable_mode(zones, name)?;
        match self.seen.entry(skeleton_index_key(name)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(LookAlike {
                mode,
                earlier: e.get().clone(),
            }),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(name.clone());
                None
            }
        }
    }
}

/// The refusal for `name`, which looks like `existing`.
pub fn confusable_error(name: &DomainName, existing: &str) -> NameError {
    NameError::Confusable {
        name: name.to_unicode(),
        existing: to_unicode(existing),
        zone: to_unicode(name.zone()),
    }
}

//! Domain and host name rules (docs/import.md, Domains): validation and normalisation to
//! lower-case A-labels without the trailing dot.
//!
//! Every rejection is a [`NameError`] whose message names the rule broken, so
//! the same text can go to a registrar (API 422), an importer (record index +
//! reason) and a WHOIS user.

use std::fmt;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Serialize};

/// Longest name in presentation form without the trailing dot (RFC 1035 §2.3.4:
/// 255 octets on the wire = 253 characters).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Shortest label of a registered name (registry rule).
pub const MIN_REGISTERED_LABEL_LEN: usize = 2;

/// Why a name was refused. The `Display` text names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {len} characters long; the limit is {MAX_NAME_LEN} (RFC 1035)")]
    TooLong { len: usize },
    #[error("name has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("label '{label}' is {len} characters long; a label must have {min}–{max} characters")]
    LabelLength {
        label: String,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error(
        "label '{label}' contains {ch:?}; only Latin letters, digits and hyphen are allowed (LDH rule)"
    )]
    InvalidChar { label: String, ch: char },
    #[error("label '{label}' starts or ends with a hyphen; it must start and end with a letter or digit")]
    EdgeHyphen { label: String },
    #[error("label '{label}' has hyphens in positions 3 and 4, which is reserved for IDN A-labels ('xn--')")]
    ReservedHyphens { label: String },
    #[error("label '{label}' is not a valid IDN A-label: {reason}")]
    BadALabel { label: String, reason: String },
    #[error("'{input}' is not a valid internationalised name (IDNA 2008 / UTS 46)")]
    Idna { input: String },
    #[error("'{name}' is not in a zone of this registry (zones: {zones})")]
    NotInZone { name: String, zones: String },
    #[error("'{name}' is not a name directly under a zone of this registry ({zone}); only second-level names are registered")]
    WrongLevel { name: String, zone: String },
    #[error("host name '{name}' must have at least two labels")]
    SingleLabelHost { name: String },
    #[error("label '{label}' is an IDN label; zone {zone} takes LDH names only (Latin letters, digits, hyphen; no 'xn--' labels) (zone name table)")]
    IdnNotAllowed { zone: String, label: String },
    #[error("label '{label}' is {len} characters long (counted on the U-label); zone {zone} takes {min}–{max} characters (zone name table)")]
    ULabelLength {
        zone: String,
        label: String,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("label '{label}' contains {} {ch:?}, which IDNA 2008 does not allow in names (RFC 5892: letters, digits and hyphen only; no symbols or emoji)", cp(*.ch))]
    NotIdna2008 { label: String, ch: char },
    #[error("label '{label}' mixes scripts ({scripts}); a label must be in one script (mixed-script rule)")]
    MixedScript { label: String, scripts: String },
    #[error("label '{label}' contains {} {ch:?}, which is not in the character table of zone {zone} ({allowed})", cp(*.ch))]
    NotInTable {
        zone: String,
        label: String,
        ch: char,
        allowed: String,
    },
    #[error("label '{label}' has hyphens in positions 3 and 4 of its U-label, which zone {zone} does not allow (hyphen rule)")]
    ReservedHyphensULabel { zone: String, label: String },
    #[error("'{name}' looks like the registered name '{existing}' (same Unicode TR39 skeleton; confusable rule of zone {zone})")]
    Confusable {
        name: String,
        existing: String,
        zone: String,
    },
}

fn cp(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// A registered domain name: lower-case A-label form, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// A host name (e.g. a nameserver), in any TLD: lower-case A-label form, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostName(String);

macro_rules! name_common {
    ($t:ty) => {
        impl $t {
            /// The A-label form, lower case, no trailing dot.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Fully qualified form with the trailing dot, for zone files and DNS.
            pub fn fqdn(&self) -> String {
                format!("{}.", self.0)
            }
            /// The name with U-labels where the A-labels decode cleanly.
            pub fn to_unicode(&self) -> String {
                to_unicode(&self.0)
            }
            /// True if this name equals `other` or is below it.
            pub fn is_at_or_below(&self, other: &str) -> bool {
                is_at_or_below(&self.0, other)
            }
            /// Construct without validation. Only for values read back from the
            /// store, which were validated on the way in.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
name_common!(DomainName);
name_common!(HostName);

impl DomainName {
    /// The zone (TLD) part, e.g. `ru` for `example.ru`.
    pub fn zone(&self) -> &str {
        self.0.split_once('.').map(|(_, z)| z).unwrap_or("")
    }
}

/// `name` equals `zone` or is a subdomain of it (both normalised).
pub fn is_at_or_below(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// Decode A-labels for display; labels that do not decode cleanly stay as they are.
pub fn to_unicode(ascii: &str) -> String {
    let (s, res) = Uts46::new().to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow);
    match res {
        Ok(()) => s.into_owned(),
        Err(_) => ascii.to_string(),
    }
}

/// Trim, drop one trailing dot, fold case and convert U-labels to A-labels.
/// Returns the labels' joined A-label form; label rules are checked separately.
fn to_ascii_form(input: &str) -> Result<String, NameError> {
    let s = input.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.is_ascii() {
        return Ok(s.to_ascii_lowercase());
    }
    // U-labels: UTS 46 mapping (case folding, NFC) then Punycode. Our own LDH
    // and length rules run afterwards on the result, so they are not asked here.
    Uts46::new()
        .to_ascii(
            s.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map(|c| c.into_owned())
        .map_err(|_| NameError::Idna {
            input: input.to_string(),
        })
}

/// Checks one A-label form label. `min` is the shortest allowed length;
/// `strict_hyphens` applies the registry's "no `--` at 3–4 unless `xn--`" rule.
fn check_label(label: &str, min: usize, strict_hyphens: bool) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    let len = label.len();
    if len < min || len > MAX_LABEL_LEN {
        return Err(NameError::LabelLength {
            label: label.to_string(),
            len,
            min,
            max: MAX_LABEL_LEN,
        });
    }
    if let Some(ch) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(NameError::InvalidChar {
            label: label.to_string(),
            ch,
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::EdgeHyphen {
            label: label.to_string(),
        });
    }
    let b = label.as_bytes();
    if b.len() >= 4 && b[2] == b'-' && b[3] == b'-' {
        if label.starts_with("xn--") {
            check_a_label(label)?;
        } else if strict_hyphens {
            return Err(NameError::ReservedHyphens {
                label: label.to_string(),
            });
        }
    }
    Ok(())
}

/// An `xn--` label must be valid Punycode that decodes to a name IDNA 2008 /
/// UTS 46 allows, and must be the canonical encoding of that name.
fn check_a_label(label: &str) -> Result<(), NameError> {
    let bad = |reason: &str| NameError::BadALabel {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    let payload = &label[4..];
    let decoded =
        idna::punycode::decode_to_string(payload).ok_or_else(|| bad("invalid Punycode"))?;
    if decoded.is_ascii() {
        return Err(bad("decodes to plain ASCII"));
    }
    let reencoded = Uts46::new()
        .to_ascii(
            decoded.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map_err(|_| bad("decodes to characters IDNA 2008 does not allow"))?;
    if reencoded != label {
        return Err(bad("not the canonical (normalised, lower-case) encoding"));
    }
    Ok(())
}

/// Normalise and validate a host name (nameserver names, any TLD).
pub fn parse_host(input: &str) -> Result<HostName, NameError> {
    let ascii = to_ascii_form(input)?;
    if ascii.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: ascii.len() });
    }
    let mut count = 0;
    for label in ascii.split('.') {
        // Host names outside the registry's zones may legitimately carry
        // `--` at 3–4 (e.g. CDN names); only `xn--` labels are checked.
        check_label(label, 1, false)?;
        count += 1;
    }
    if count < 2 {
        return Err(NameError::SingleLabelHost { name: ascii });
    }
    Ok(HostName(ascii))
}

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
    /// registered: see [`ConfusableSet`].
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

fn zone_ascii(z: &str) -> Result<String, NameError> {
    let ascii = to_ascii_form(z)?;
    for label in ascii.split('.') {
        check_label(label, 1, true)?;
    }
    Ok(ascii)
}

impl Default for Zones {
    fn default() -> Self {
        // "ru" and "рф" (xn--p1ai): the defaults of docs/config.md.
        Self::new(&["ru", "рф"]).expect("built-in zones are valid")
    }
}

// ---- per-zone name policy --------------------------------------------------

/// The `.ru` table shipped in `config/names/ru.txt`, built in.
pub const RU_TABLE: &str = include_str!("../config/names/ru.txt");
/// The `.рф` table shipped in `config/names/rf.txt`, built in.
pub const RF_TABLE: &str = include_str!("../config/names/rf.txt");

/// What a new name whose TR39 skeleton equals a registered name's gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfusableMode {
    /// Refused, naming the registered look-alike.
    Refuse,
    /// Accepted and reported (the import lists it).
    Flag,
    Off,
}

/// A zone's rules for the label of a registered name (docs/config.md `[names]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePolicy {
    /// The zone, A-label form.
    pub zone: String,
    /// Label length in U-label characters.
    pub min_len: usize,
    pub max_len: usize,
    /// IDN labels (U-labels / `xn--`) accepted.
    pub idn: bool,
    /// Refuse `--` at positions 3–4 of a U-label.
    pub refuse_hyphen_3_4: bool,
    pub refuse_mixed_script: bool,
    pub confusables: ConfusableMode,
    /// Allowed code points (inclusive ranges); `None`: any that IDNA 2008
    /// allows.
    pub table: Option<Vec<(char, char)>>,
}

/// A name table file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name table {source_name}, line {line}: {message}")]
pub struct TableError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

impl NamePolicy {
    /// The built-in policy of a zone: the shipped tables for `ru` and `рф`;
    /// for any other zone the registry's name rules alone (LDH or IDNA 2008 labels
    /// of 2–63 characters, one script, look-alikes off).
    pub fn builtin(zone_ascii: &str) -> Self {
        for (text, src) in [(RU_TABLE, "built-in ru"), (RF_TABLE, "built-in рф")] {
            if let Ok(p) = Self::parse_table(text, src) {
                if p.zone == zone_ascii {
                    return p;
                }
            }
        }
        Self {
            zone: zone_ascii.to_string(),
            min_len: MIN_REGISTERED_LABEL_LEN,
            max_len: MAX_LABEL_LEN,
            idn: true,
            refuse_hyphen_3_4: true,
            refuse_mixed_script: true,
            confusables: ConfusableMode::Off,
            table: None,
        }
    }

    /// Parse a code-point table (format in `config/names/ru.txt`).
    pub fn parse_table(text: &str, source_name: &str) -> Result<Self, TableError> {
        let mut zone = None;
        let mut p = Self::builtin_generic();
        let mut table: Vec<(char, char)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |m: String| TableError {
                source_name: source_name.to_string(),
                line: i + 1,
                message: m,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let yes_no = |w: Option<&&str>, yes: &str, no: &str| match w {
                Some(v) if *v == yes => Ok(true),
                Some(v) if *v == no => Ok(false),
                _ => Err(err(format!("'{}' takes '{yes}' or '{no}'", words[0]))),
            };
            match words[0] {
                "zone" => {
                    let z = words
                        .get(1)
                        .ok_or_else(|| err("zone needs a name".into()))?;
                    zone = Some(zone_ascii(z).map_err(|e| err(e.to_string()))?);
                }
                "length" => {
                    let n = |k: usize| -> Result<usize, TableError> {
                        words
                            .get(k)
                            .and_then(|w| w.parse().ok())
                            .ok_or_else(|| err("length takes MIN MAX".into()))
                    };
                    let (min, max) = (n(1)?, n(2)?);
                    if min == 0 || min > max || max > MAX_LABEL_LEN {
                        return Err(err(format!(
                            "length must be 1 ≤ MIN ≤ MAX ≤ {MAX_LABEL_LEN}"
                        )));
                    }
                    (p.min_len, p.max_len) = (min, max);
                }
                "idn" => p.idn = yes_no(words.get(1), "yes", "no")?,
                "hyphen-3-4" => p.refuse_hyphen_3_4 = yes_no(words.get(1), "refuse", "allow")?,
                "mixed-script" => p.refuse_mixed_script = yes_no(words.get(1), "refuse", "allow")?,
                "confusables" => {
                    p.confusables = match words.get(1) {
                        Some(&"refuse") => ConfusableMode::Refuse,
                        Some(&"flag") => ConfusableMode::Flag,
                        Some(&"off") => ConfusableMode::Off,
                        _ => return Err(err("confusables takes refuse, flag or off".into())),
                    }
                }
                w if w.starts_with("U+") => {
                    let one = |s: &str| -> Result<char, TableError> {
                        s.strip_prefix("U+")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| err(format!("'{s}' is not a code point (U+XXXX)")))
                    };
                    let (a, b) = match w.split_once("..") {
                        Some((a, b)) => (one(a)?, one(b)?),
                        None => (one(w)?, one(w)?),
                    };
                    if a > b {
                        return Err(err(format!("range {w} is reversed")));
                    }
                    table.push((a, b));
                }
                other => return Err(err(format!("unknown directive '{other}'"))),
            }
        }
        p.zone = zone.ok_or_else(|| TableError {
            source_name: source_name.to_string(),
            line: 0,
            message: "no 'zone' line".into(),
        })?;
        if !table.is_empty() {
            table.sort();
            p.table = Some(table);
        }
        Ok(p)
    }

    fn builtin_generic() -> Self {
        Self {
            zone: String::new(),
            min_len: MIN_REGISTERED_LABEL_LEN,
            max_len: MAX_LABEL_LEN,
            idn: true,
            refuse_hyphen_3_4: true,
            refuse_mixed_script: true,
            confusables: ConfusableMode::Off,
            table: None,
        }
    }

    fn in_table(&self, c: char) -> bool {
        match &self.table {
            None => true,
            Some(t) => t.iter().any(|(a, b)| (*a..=*b).contains(&c)),
        }
    }

    fn table_summary(&self) -> String {
        match &self.table {
            None => "any IDNA 2008 character".into(),
            Some(t) => t
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        format!("{a}")
                    } else {
                        format!("{a}–{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Check the label of a registered name (A-label form, syntax already
    /// checked) against this zone's rules.
    pub fn check_label(&self, ascii: &str) -> Result<(), NameError> {
        let idn = ascii.starts_with("xn--");
        if idn && !self.idn {
            return Err(NameError::IdnNotAllowed {
                zone: to_unicode(&self.zone),
                label: ascii.to_string(),
            });
        }
        let u = if idn {
            idna::punycode::decode_to_string(&ascii[4..]).ok_or_else(|| NameError::BadALabel {
                label: ascii.to_string(),
                reason: "invalid Punycode".into(),
            })?
        } else {
            ascii.to_string()
        };
        let zone = || to_unicode(&self.zone);
        let len = u.chars().count();
        if len < self.min_len || len > self.max_len {
            return Err(NameError::ULabelLength {
                zone: zone(),
                label: u,
                len,
                min: self.min_len,
                max: self.max_len,
            });
        }
        if let Some(ch) = u.chars().find(|c| !idna2008_allowed(*c)) {
            return Err(NameError::NotIdna2008 { label: u, ch });
        }
        if self.refuse_mixed_script {
            use unicode_security::MixedScript;
            if !u.as_str().is_single_script() {
                return Err(NameError::MixedScript {
                    scripts: scripts_of(&u),
                    label: u,
                });
            }
        }
        if let Some(ch) = u.chars().find(|c| !self.in_table(*c)) {
            return Err(NameError::NotInTable {
                zone: zone(),
                allowed: self.table_summary(),
                label: u,
                ch,
            });
        }
        if idn && self.refuse_hyphen_3_4 {
            let c: Vec<char> = u.chars().take(4).collect();
            if c.len() == 4 && c[2] == '-' && c[3] == '-' {
                return Err(NameError::ReservedHyphensULabel {
                    zone: zone(),
                    label: u,
                });
            }
        }
        Ok(())
    }
}

/// A code point IDNA 2008 (RFC 5892) lets into a label, approximated by the
/// Unicode TR39 identifier profile: letters, marks and digits that are
/// `Identifier_Status=Allowed`, plus the hyphen. Symbols, emoji and
/// punctuation are out.
fn idna2008_allowed(c: char) -> bool {
    use icu_properties::props::GeneralCategory as G;
    use unicode_security::GeneralSecurityProfile;
    if c == '-' || c.is_ascii_lowercase() || c.is_ascii_digit() {
        return true;
    }
    let gc = icu_properties::CodePointMapData::<G>::new().get(c);
    matches!(
        gc,
        G::LowercaseLetter
            | G::OtherLetter
            | G::ModifierLetter
            | G::NonspacingMark
            | G::SpacingMark
            | G::DecimalNumber
    ) && c.identifier_allowed()
}

fn scripts_of(s: &str) -> String {
    use unicode_script::{Script, UnicodeScript};
    let mut v: Vec<&str> = Vec::new();
    for c in s.chars() {
        let sc = c.script();
        if matches!(sc, Script::Common | Script::Inherited) {
            continue;
        }
        let n = sc.full_name();
        if !v.contains(&n) {
            v.push(n);
        }
    }
    v.join(", ")
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zones() -> Zones {
        Zones::new(&["ru", "рф"]).unwrap()
    }

    #[test]
    fn good_names() {
        let z = zones();
        for (input, want) in [
            ("example.ru", "example.ru"),
            ("EXAMPLE.RU.", "example.ru"),
            ("  Example.Ru  ", "example.ru"),
            ("ya.ru", "ya.ru"),
            ("a1.ru", "a1.ru"),
            ("1c.ru", "1c.ru"),
            ("my-site.ru", "my-site.ru"),
            ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
            ("ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai"),
            ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
            ("XN--E1AFMKFD.XN--P1AI.", "xn--e1afmkfd.xn--p1ai"),
            ("президент.рф", "xn--d1abbgf6aiiy.xn--p1ai"),
            ("кто.рф", "xn--j1ail.xn--p1ai"),
            (
                &format!("{}.ru", "a".repeat(63)),
                &format!("{}.ru", "a".repeat(63)),
            ),
        ] {
            assert_eq!(
                z.parse_domain(input).map(|d| d.0),
                Ok(want.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_names_name_the_rule() {
        let z = zones();
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "empty"),
            ("a.ru", "2–63"),
            (&format!("{}.ru", "a".repeat(64)), "2–63"),
            ("-ab.ru", "hyphen"),
            ("ab-.ru", "hyphen"),
            ("ab--cd.ru", "positions 3 and 4"),
            ("xn--abc.ru", "A-label"),
            ("xn--zz-zz.ru", "A-label"),
            ("xn--example-.ru", "hyphen"),
            ("under_score.ru", "LDH"),
            ("sp ace.ru", "LDH"),
            ("example.com", "not in a zone"),
            ("www.example.ru", "second-level"),
            ("ru", "second-level"),
            ("a..ru", "empty label"),
            ("exa\u{0}mple.ru", "LDH"),
            ("☃\u{200d}.ru", "IDNA"),
            ("xn--80ak6aa92e.ru", "LDH names only"),
            ("ex@mple.ru", "LDH"),
        ];
        for (input, rule) in cases {
            let err = z.parse_domain(input).expect_err(input).to_string();
            assert!(err.contains(rule), "{input:?}: {err}");
        }
    }

    #[test]
    fn uppercase_a_label_is_folded_but_noncanonical_rejected() {
        let z = zones();
        // Punycode of "Пример" with an upper-case code point is not canonical.
        let upper = format!("xn--{}.ru", idna::punycode::encode_str("Пример").unwrap());
        assert!(z.parse_domain(&upper).is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("NS1.Example.NET.").unwrap().as_str(),
            "ns1.example.net"
        );
        assert_eq!(parse_host("a.b").unwrap().as_str(), "a.b");
        assert!(parse_host("localhost").is_err());
        assert!(parse_host("ns_1.example.net").is_err());
        assert!(parse_host("r3---sn-abc.googlevideo.com").is_ok());
        assert_eq!(
            parse_host("нс1.пример.рф").unwrap().as_str(),
            "xn--1-ytbm.xn--e1afmkfd.xn--p1ai"
        );
        assert!(parse_host(&format!("{}.com", "a.".repeat(130))).is_err());
    }

    #[test]
    fn unicode_display() {
        let d = zones().parse_domain("пример.рф").unwrap();
        assert_eq!(d.to_unicode(), "пример.рф");
        assert_eq!(d.zone(), "xn--p1ai");
        assert_eq!(d.fqdn(), "xn--e1afmkfd.xn--p1ai.");
    }

    #[test]
    fn bailiwick() {
        assert!(is_at_or_below("ns1.example.ru", "example.ru"));
        assert!(is_at_or_below("example.ru", "example.ru"));
        assert!(!is_at_or_below("badexample.ru", "example.ru"));
        assert!(!is_at_or_below("ru", "example.ru"));
    }

    /// Names seen in the wild, and what the zone policies say.
    #[test]
    fn real_world_names() {
        let z = Zones::new(&["ru", "рф", "su"]).unwrap();
        for ok in [
            "example.ru",
            "ya.ru",
            "1c.ru",
            "my-site.ru",
            "пример.рф",
            "кто.рф",
            "президент.рф",
            "xn--e1afmkfd.xn--p1ai",
            "лесмёд93.рф",
            "ёлка.рф",
            "2гис.рф",
            "мой-сайт.рф",
            "пример.su",
            "example.su",
        ] {
            z.parse_domain(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let cases: &[(&str, &str)] = &[
            ("xn--ls8h.ru", "LDH names only"), // 💩
            ("☃☃.ru", "LDH names only"),
            ("xn--n3ha.ru", "LDH names only"),     // ☃☃
            ("xn--pple-43d.ru", "LDH names only"), // Cyrillic а + Latin pple
            ("пример.ru", "LDH names only"),
            ("ab--cd.ru", "positions 3 and 4"),
            ("a.ru", "2–63"),
            (
                "я.рф",
                "1 characters long (counted on the U-label); zone рф takes 2–63",
            ),
            ("xn--41a.xn--p1ai", "counted on the U-label"),
            ("☃☃.рф", "IDNA 2008"),
            ("💩💩.рф", "IDNA 2008"),
            ("аpple.рф", "mixes scripts (Cyrillic, Latin)"),
            ("apple.рф", "character table of zone рф"),
            ("straße.рф", "character table"),
            ("ѓоо.рф", "character table"),  // Macedonian ѓ
            ("їжак.рф", "character table"), // Ukrainian ї
            ("аб--вг.рф", "positions 3 and 4 of its U-label"),
            ("xn--pple-43d.su", "mixes scripts"),
            ("☃☃.su", "IDNA 2008"),
            ("x\u{200d}y.su", "IDNA"),
        ];
        for (input, rule) in cases {
            let err = z.parse_domain(input).expect_err(input).to_string();
            assert!(err.contains(rule), "{input:?}: {err}");
        }
    }

    #[test]
    fn tables_parse_and_refuse_nonsense() {
        let ru = NamePolicy::parse_table(RU_TABLE, "ru").unwrap();
        assert_eq!(ru.zone, "ru");
        assert!(!ru.idn && ru.confusables == ConfusableMode::Flag);
        let rf = NamePolicy::parse_table(RF_TABLE, "rf").unwrap();
        assert_eq!(rf.zone, "xn--p1ai");
        assert_eq!((rf.min_len, rf.max_len), (2, 63));
        assert_eq!(rf.confusables, ConfusableMode::Refuse);
        for (bad, why) in [
            ("length 2 63\n", "no 'zone'"),
            ("zone ru\nlength 0 63\n", "length"),
            ("zone ru\nidn maybe\n", "'idn' takes"),
            ("zone ru\nU+0061..U+0041\n", "reversed"),
            ("zone ru\nU+D800\n", "not a code point"),
            ("zone ru\ncolour blue\n", "unknown directive"),
        ] {
            let e = NamePolicy::parse_table(bad, "t").unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        // A table replaces the built-in policy of its zone.
        let t =
            NamePolicy::parse_table("zone ru\nlength 3 10\nidn no\nU+0061..U+007A\n", "t").unwrap();
        let z = Zones::with_tables(&["ru"], &[t]).unwrap();
        assert!(z
            .parse_domain("ab.ru")
            .unwrap_err()
            .to_string()
            .contains("3–"));
        assert!(z
            .parse_domain("a1b.ru")
            .unwrap_err()
            .to_string()
            .contains("table"));
        z.parse_domain("abc.ru").unwrap();
    }

    #[test]
    fn look_alikes() {
        let z = zones();
        let d = |s: &str| z.parse_domain(s).unwrap();
        // б and 6 share a TR39 skeleton.
        assert_eq!(skeleton(&d("сбер.рф")), skeleton(&d("с6ер.рф")));
        let mut set = ConfusableSet::new();
        assert_eq!(set.check_and_add(&z, &d("сбер.рф")), None);
        let hit = set.check_and_add(&z, &d("с6ер.рф")).unwrap();
        assert_eq!(
            (hit.mode, hit.earlier),
            (ConfusableMode::Refuse, d("сбер.рф"))
        );
        assert_eq!(set.check_and_add(&z, &d("пример.рф")), None);
        let hit = set.check_and_add(&z, &d("пример.рф"));
        assert!(hit.is_some(), "the same name twice in a batch");
        // .ru flags (1 looks like l) instead of refusing.
        assert_eq!(set.check_and_add(&z, &d("paypal.ru")), None);
        let hit = set.check_and_add(&z, &d("paypa1.ru")).unwrap();
        assert_eq!(hit.mode, ConfusableMode::Flag);
        assert_eq!(
            confusable_mode(&z, &d("paypal.ru")),
            Some(ConfusableMode::Flag)
        );
        assert_eq!(
            skeleton_index_key(&d("paypal.ru")),
            skeleton_index_key(&d("paypa1.ru"))
        );
        assert_ne!(
            skeleton_index_key(&d("paypal.ru")),
            skeleton_index_key(&d("paypol.ru"))
        );
        let e = confusable_error(&d("с6ер.рф"), d("сбер.рф").as_str()).to_string();
        assert!(e.contains("сбер.рф") && e.contains("TR39"), "{e}");
    }

    proptest! {
        /// Whatever a zone accepts obeys its table: .ru names are plain LDH
        /// (no xn--), .рф names are Russian letters, digits and hyphen, with
        /// 2–63 characters in the U-label.
        #[test]
        fn accepted_names_obey_their_table(label in prop_oneof![
            "[a-z0-9-]{1,12}",
            "[а-яё0-9-]{1,12}",
            "\\PC{1,8}",
            "xn--[a-z0-9-]{1,12}",
        ], rf in any::<bool>()) {
            let z = zones();
            let input = format!("{label}.{}", if rf { "рф" } else { "ru" });
            if let Ok(d) = z.parse_domain(&input) {
                let head = d.as_str().split('.').next().unwrap();
                if rf {
                    let u = to_unicode(head);
                    prop_assert!((2..=63).contains(&u.chars().count()), "{}", u);
                    prop_assert!(u.chars().all(|c| c == '-' || c.is_ascii_digit() || ('а'..='я').contains(&c) || c == 'ё'), "{}", u);
                } else {
                    prop_assert!(!head.starts_with("xn--"));
                    prop_assert!(head.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                }
            }
        }

        #[test]
        fn russian_labels_accepted_in_rf(label in "[а-яё][а-яё0-9]{1,20}") {
            let z = zones();
            z.parse_domain(&format!("{label}.рф")).unwrap();
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = zones().parse_domain(&s);
            let _ = parse_host(&s);
        }

        #[test]
        fn valid_ldh_labels_accepted_and_idempotent(label in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])") {
            let z = zones();
            let name = format!("{label}.ru");
            let b = label.as_bytes();
            let reserved = b.len() >= 4 && b[2] == b'-' && b[3] == b'-';
            match z.parse_domain(&name) {
                Ok(d) => {
                    prop_assert!(!reserved || label.starts_with("xn--"));
                    prop_assert_eq!(d.as_str(), name.as_str());
                    // Normalisation is idempotent, and upper case folds to the same.
                    prop_assert_eq!(z.parse_domain(&d.as_str().to_uppercase()).unwrap(), d);
                }
                Err(e) => prop_assert!(reserved, "{} rejected: {}", name, e),
            }
        }

        #[test]
        fn u_labels_round_trip(label in "[а-яё]{2,20}") {
            let z = zones();
            let d = z.parse_domain(&format!("{label}.рф")).unwrap();
            prop_assert!(d.as_str().starts_with("xn--"));
            prop_assert_eq!(z.parse_domain(d.as_str()).unwrap(), d.clone());
            prop_assert_eq!(d.to_unicode(), format!("{label}.рф"));
        }
    }
}

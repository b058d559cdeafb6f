//! A zone's name policy ([`NamePolicy`], docs/config.md `[names]`): the
//! built-in and file tables and the label rules they add.

use super::error::*;
use super::syntax::*;

/// The `.ru` table shipped in `config/names/ru.txt`, built in.
pub const RU_TABLE: &str = include_str!("../../config/names/ru.txt");
/// The `.рф` table shipped in `config/names/rf.txt`, built in.
pub const RF_TABLE: &str = include_str!("../../config/names/rf.txt");

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

//! Domain and host name rules (SPEC §1): validation and normalisation to
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

/// The registry's zones (TLDs), normalised to A-labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zones(Vec<String>);

impl Zones {
    /// Build from configured zone names (U- or A-labels). Longest first, so a
    /// name matches its most specific zone.
    pub fn new<S: AsRef<str>>(zones: &[S]) -> Result<Self, NameError> {
        let mut v = Vec::with_capacity(zones.len());
        for z in zones {
            let ascii = to_ascii_form(z.as_ref())?;
            for label in ascii.split('.') {
                check_label(label, 1, true)?;
            }
            if !v.contains(&ascii) {
                v.push(ascii);
            }
        }
        v.sort_by_key(|z: &String| std::cmp::Reverse(z.len()));
        Ok(Self(v))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, zone: &str) -> bool {
        self.0.iter().any(|z| z == zone)
    }

    /// The zone a (normalised) name is at or below.
    pub fn zone_of(&self, name: &str) -> Option<&str> {
        self.iter().find(|z| is_at_or_below(name, z))
    }

    /// Normalise and validate a registered domain name.
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
            zones: self.0.join(", "),
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
        check_label(head, MIN_REGISTERED_LABEL_LEN, true)?;
        Ok(DomainName(ascii))
    }
}

impl Default for Zones {
    fn default() -> Self {
        // "ru" and "рф" (xn--p1ai): the defaults of SPEC §3.
        Self(vec!["xn--p1ai".to_string(), "ru".to_string()])
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
            ("xn--80ak6aa92e.ru", "xn--80ak6aa92e.ru"),
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

    proptest! {
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

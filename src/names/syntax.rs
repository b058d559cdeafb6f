//! Name syntax: [`DomainName`] and [`HostName`], normalisation to
//! lower-case A-labels, the label rules every name obeys, and host names.

use std::fmt;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Serialize};

use super::error::*;

/// A registered domain name: lower-case A-label form, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DomainName(pub(super) String);

/// A host name (e.g. a nameserver), in any TLD: lower-case A-label form, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostName(pub(super) String);

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
pub(super) fn to_ascii_form(input: &str) -> Result<String, NameError> {
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
pub(super) fn check_label(label: &str, min: usize, strict_hyphens: bool) -> Result<(), NameError> {
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
pub(super) fn check_a_label(label: &str) -> Result<(), NameError> {
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

pub(super) fn zone_ascii(z: &str) -> Result<String, NameError> {
    let ascii = to_ascii_form(z)?;
    for label in ascii.split('.') {
        check_label(label, 1, true)?;
    }
    Ok(ascii)
}

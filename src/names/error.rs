//! Why a name was refused ([`NameError`], each message naming the rule)
//! and the length limits the rules cite.

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

pub(super) fn cp(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

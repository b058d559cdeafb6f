//! Why the registry refused a change ([`RegistryError`]), and the one
//! mapping of field refusals to it.

use crate::lifecycle;
use crate::store::{RecordError, StoreError};

use super::input::glue::is_glue_reason;
use super::rule::Rule;

/// Why the registry refused a change. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no such domain: {0}")]
    NotFound(String),
    #[error("{0} is sponsored by another registrar")]
    Forbidden(String),
    /// Only the operator (or another party) may do this.
    #[error("{0}")]
    NotAllowed(String),
    /// A rule refused the change; `rule` is its stable id.
    #[error("{detail}")]
    Refused { rule: Rule, detail: String },
    /// Bad input, field by field.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RecordError>),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchDomain(n) => RegistryError::NotFound(n),
            StoreError::Rejected(v) => RegistryError::Invalid(v),
            other => RegistryError::Store(other),
        }
    }
}

impl RegistryError {
    pub(super) fn refused(rule: Rule, detail: impl Into<String>) -> Self {
        RegistryError::Refused {
            rule,
            detail: detail.into(),
        }
    }
    /// The stable id of the rule that refused (for problem documents).
    pub fn rule(&self) -> &'static str {
        match self {
            RegistryError::NotFound(_) => "not-found",
            RegistryError::Forbidden(_) => "forbidden",
            RegistryError::NotAllowed(_) => "not-allowed",
            RegistryError::Refused { rule, .. } => rule.id(),
            RegistryError::Invalid(_) => "invalid",
            RegistryError::Store(s) => match s.storage() {
                Some(h) => h.slug(),
                None => "internal",
            },
        }
    }
}

impl RegistryError {
    /// The refusing rule, when a rule refused.
    pub fn refusing_rule(&self) -> Option<Rule> {
        match self {
            RegistryError::Refused { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    /// EPP result code (RFC 5730 §3): the one mapping of every error
    /// (rules through [`Rule::epp_code`]).
    pub fn epp_code(&self) -> u16 {
        match self {
            RegistryError::NotFound(_) => 2303,
            RegistryError::Forbidden(_) | RegistryError::NotAllowed(_) => 2201,
            RegistryError::Invalid(v) if v.iter().any(|e| is_glue_reason(&e.reason)) => 2005,
            RegistryError::Invalid(_) => 2306,
            RegistryError::Store(_) => 2400,
            RegistryError::Refused { rule, .. } => rule.epp_code(),
        }
    }
}

impl From<lifecycle::Refusal> for RegistryError {
    fn from(r: lifecycle::Refusal) -> Self {
        // The lifecycle's lock rules are rules of this enum (unit-tested in
        // `rule`); `state` stands for an id added there without one here.
        let rule = Rule::parse(r.rule);
        debug_assert!(rule.is_some(), "lifecycle rule {} has no Rule", r.rule);
        RegistryError::Refused {
            rule: rule.unwrap_or(Rule::State),
            detail: r.detail,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// One field refusal of a domain request.
pub(super) fn invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(vec![RecordError {
        section: "domain",
        index: 0,
        field: field.into(),
        reason: reason.into(),
    }])
}

/// Field refusals `(field, reason)` of one `section` (`domain`,
/// `contact`, `host`) as the registry's [`RegistryError::Invalid`].
pub(super) fn fields(section: &'static str, errs: Vec<(String, String)>) -> RegistryError {
    RegistryError::Invalid(
        errs.into_iter()
            .map(|(field, reason)| RecordError {
                section,
                index: 0,
                field,
                reason,
            })
            .collect(),
    )
}

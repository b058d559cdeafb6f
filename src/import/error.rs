//! What an import refuses: the error type and its report of record errors.

use crate::store::{RecordError, StoreError};
use crate::text;

/// Most record errors listed in one report.
pub const MAX_REPORTED_ERRORS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid import JSON: {message}")]
    Json { path: String, message: String },
    #[error("{} bad record(s); nothing was imported:\n{}", .0.total, format_errors(.0))]
    Records(RecordErrors),
    #[error(transparent)]
    Store(StoreError),
}

/// The bad records of an import: the first few, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    /// At most [`MAX_REPORTED_ERRORS`], in file order.
    pub list: Vec<RecordError>,
    /// All bad records found (errors past the list are counted only).
    pub total: usize,
}

impl std::ops::Deref for RecordErrors {
    type Target = [RecordError];
    fn deref(&self) -> &[RecordError] {
        &self.list
    }
}

pub(super) fn format_errors(errs: &RecordErrors) -> String {
    let mut s: Vec<String> = errs
        .list
        .iter()
        .take(MAX_REPORTED_ERRORS)
        .map(|e| format!("  {}", text::escape(&e.to_string())))
        .collect();
    let shown = s.len();
    if errs.total > shown {
        s.push(format!("  … and {} more", errs.total - shown));
    }
    s.join("\n")
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(v) => ImportError::Records(RecordErrors {
                total: v.len(),
                list: v.into_iter().take(MAX_REPORTED_ERRORS).collect(),
            }),
            other => ImportError::Store(other),
        }
    }
}

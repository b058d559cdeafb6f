//! The configuration's one error type.

use std::path::PathBuf;

use crate::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
    #[error("config: bad zone name: {0}")]
    Zone(#[from] NameError),
}

//! Reading an import file from disk into a batch or a spool.

use std::path::Path;

use crate::config::Config;
use crate::model::Timestamp;
use crate::store::ImportBatch;

use super::error::ImportError;
use super::parse::{run_parser, Sink};
use super::spool::Spooled;

/// Read and validate an import file (no store needed) into memory. For
/// large files, [`spool_file`] holds less.
pub fn read_file(path: &Path, cfg: &Config, now: Timestamp) -> Result<ImportBatch, ImportError> {
    stream_file(path, ImportBatch::default(), cfg, now)
}

/// Read and validate an import file (no store needed) as a stream: the
/// file is never held whole, and the valid records go to a spool file.
pub fn spool_file(path: &Path, cfg: &Config, now: Timestamp) -> Result<Spooled, ImportError> {
    let spool_err = |source| ImportError::Read {
        path: "the import's temporary spool file".into(),
        source,
    };
    let mut spool = stream_file(path, Spooled::new().map_err(spool_err)?, cfg, now)?;
    spool
        .contacts
        .finish()
        .and_then(|()| spool.domains.finish())
        .map_err(spool_err)?;
    Ok(spool)
}

pub(super) fn stream_file<S: Sink>(
    path: &Path,
    sink: S,
    cfg: &Config,
    now: Timestamp,
) -> Result<S, ImportError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: p.clone(),
        source,
    })?;
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    run_parser(&mut de, sink, &p, cfg, &zones, now)
}

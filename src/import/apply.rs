//! Applying a validated import through the registry, all or nothing.

use std::path::Path;

use crate::config::Config;
use crate::model::Timestamp;
use crate::names::DomainName;
use crate::store::{BatchSource, ImportBatch, ImportSource, ImportSummary, Store, StoreError};

use super::confusables::check_confusables;
use super::error::{ImportError, RecordErrors, MAX_REPORTED_ERRORS};
use super::read::spool_file;
use super::spool::Spooled;

/// Imports that write at least this many domains compact the store
/// afterwards: a bulk load leaves many half-empty pages behind.
pub const COMPACT_AFTER_DOMAINS: usize = 10_000;

/// Page cache (MiB) of the embedded store while `zonekeeper import` runs,
/// whatever `store.cache_mib` (the serving cache) says: the cache is most
/// of an import's RSS (1M domains: peak ~700 MiB with 512), and a large
/// import's index writes land all over their tables, so a smaller one
/// costs time (1M: apply ~1.7x slower at 256).
pub const IMPORT_CACHE_MIB: usize = 512;

/// Apply a validated batch through the registry service: all or nothing.
/// New names are first checked against the registered ones of their zone
/// for look-alikes (the zone policy's confusable rule): refused, or listed
/// in the summary's `flagged`.
pub fn apply(
    store: &dyn Store,
    batch: &ImportBatch,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let names: Vec<&DomainName> = batch.domains.iter().map(|d| &d.name).collect();
    apply_from(store, &names, &mut BatchSource::new(batch), cfg, now)
}

/// [`apply`] for a spooled file ([`spool_file`]).
pub fn apply_spooled(
    store: &dyn Store,
    spooled: &Spooled,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let names: Vec<&DomainName> = spooled.names.iter().collect();
    apply_from(store, &names, &mut spooled.source(), cfg, now)
}

/// `names`: the domains' names in file order (for the confusable rule).
pub(super) fn apply_from(
    store: &dyn Store,
    names: &[&DomainName],
    src: &mut dyn ImportSource,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: "config".into(),
        message: e.to_string(),
    })?;
    let flagged = check_confusables(store, names, &zones)?;
    let reg = crate::registry::Registry::offline(store, cfg).map_err(|e| ImportError::Json {
        path: "config".into(),
        message: e.to_string(),
    })?;
    let mut errors = RecordErrors {
        list: Vec::new(),
        total: 0,
    };
    let result = reg.import_from(src, now, &mut |e| {
        errors.total += 1;
        if errors.list.len() < MAX_REPORTED_ERRORS {
            errors.list.push(e);
        }
    });
    let mut summary = match result {
        Ok(Some(s)) => s,
        Ok(None) => return Err(ImportError::Records(errors)),
        Err(crate::registry::RegistryError::Invalid(v)) => {
            return Err(ImportError::Records(RecordErrors {
                total: v.len(),
                list: v.into_iter().take(MAX_REPORTED_ERRORS).collect(),
            }))
        }
        Err(crate::registry::RegistryError::Store(s)) => return Err(ImportError::Store(s)),
        Err(other) => return Err(ImportError::Store(StoreError::Backend(other.to_string()))),
    };
    summary.flagged = flagged;
    Ok(summary)
}

/// Read, validate and apply an import file.
pub fn import_file(
    store: &dyn Store,
    path: &Path,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let spooled = spool_file(path, cfg, now)?;
    apply_spooled(store, &spooled, cfg, now)
}

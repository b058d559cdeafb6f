//! The zone policies' confusable rule over an import's new names.

use crate::names::{self, ConfusableMode, ConfusableSet, DomainName, Zones};
use crate::store::{RecordError, Store, StoreError};

use super::error::{ImportError, RecordErrors, MAX_REPORTED_ERRORS};

/// The confusable rule for the batch's new names: errors for the refused,
/// messages for the flagged.
pub(super) fn check_confusables(
    store: &dyn Store,
    names: &[&DomainName],
    zones: &Zones,
) -> Result<Vec<String>, ImportError> {
    let (refused, flagged) = look_alikes(store, zones, names)?;
    if refused.is_empty() {
        return Ok(flagged);
    }
    let total = refused.len();
    Err(ImportError::Records(RecordErrors {
        list: refused
            .into_iter()
            .take(MAX_REPORTED_ERRORS)
            .map(|(i, e)| RecordError {
                section: "domains",
                index: i,
                field: "name".into(),
                reason: e.to_string(),
            })
            .collect(),
        total,
    }))
}

/// Names screened per store call by [`look_alikes`].
pub(super) const SCREEN_CHUNK: usize = 1000;

/// Refusals (`(index in names, why)`) and flag messages of the zone
/// policies' confusable rule for names about to be registered: each new
/// one (not yet in the store) is compared with the registered names of its
/// zone (the store's look-alike index) and with the new names before it.
#[allow(clippy::type_complexity)]
pub fn look_alikes(
    store: &dyn Store,
    zones: &Zones,
    names: &[&DomainName],
) -> Result<(Vec<(usize, names::NameError)>, Vec<String>), StoreError> {
    let mut refused = Vec::new();
    let mut flagged = Vec::new();
    let mut batch = ConfusableSet::new();
    // Only names of zones whose rule is on, screened a chunk at a time.
    let watched: Vec<(usize, ConfusableMode, String)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            names::confusable_mode(zones, n).map(|m| (i, m, names::skeleton_index_key(n)))
        })
        .collect();
    for chunk in watched.chunks(SCREEN_CHUNK) {
        let q: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(i, _, k)| (names[*i].as_str(), k.as_str()))
            .collect();
        let answers = store.screen_names(&q)?;
        for ((i, mode, _), (registered, found)) in chunk.iter().zip(answers) {
            if registered {
                continue;
            }
            let name = names[*i];
            let existing = match found {
                Some(e) => Some(e),
                None => batch
                    .check_and_add(zones, name)
                    .map(|hit| hit.earlier.as_str().to_string()),
            };
            let Some(existing) = existing else { continue };
            let err = names::confusable_error(name, &existing);
            match mode {
                ConfusableMode::Refuse => refused.push((*i, err)),
                _ => flagged.push(err.to_string()),
            }
        }
    }
    Ok((refused, flagged))
}

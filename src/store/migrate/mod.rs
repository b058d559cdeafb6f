//! Store schema migrations, run by the store itself on open.
//!
//! Records are postcard-encoded, which is compact but not self-describing:
//! a struct with a field added no longer decodes from old bytes. So every
//! layout the store has ever written is kept here as a frozen copy, with a
//! conversion to the current model, and [`migrate`] rewrites an older store
//! in one write transaction (all of it or nothing) before anything reads it.
//!
//! Changing a stored type (a field added, removed or reordered in
//! [`crate::model::Domain`], `Registrar`, `Contact`, `DelegationRecord`,
//! `HistoryEvent`, `RoundSummary`, [`crate::store::HostRecord`] or a type
//! nested in them) means: bump [`super::contract::SCHEMA_VERSION`], freeze the old
//! layout in a `vN` module here (nested types it still shares with the
//! model may stay shared), and convert in [`migrate`].

use ::redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

use super::contract::{Result, StoreError};

mod layouts;
pub use self::layouts::*;

/// Rewrite every record of a `&str`-keyed table from `Old` to `New`.
pub(super) fn rewrite<Old, New>(
    txn: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<u64>
where
    Old: DeserializeOwned,
    New: Serialize,
{
    let mut t = txn.open_table(def).map_err(super::redb_schema::err)?;
    let keys: Vec<String> = t
        .iter()
        .map_err(super::redb_schema::err)?
        .map(|kv| kv.map(|(k, _)| k.value().to_string()))
        .collect::<std::result::Result<_, _>>()
        .map_err(super::redb_schema::err)?;
    let mut n = 0;
    for k in keys {
        let old: Old = match t.get(k.as_str()).map_err(super::redb_schema::err)? {
            Some(v) => decode(v.value(), &format!("{def}"), &k)?,
            None => continue,
        };
        let bytes = super::codec::enc(&convert(old))?;
        t.insert(k.as_str(), bytes.as_slice())
            .map_err(super::redb_schema::err)?;
        n += 1;
    }
    Ok(n)
}

/// Rewrite every entry of a `(name, seq)`-keyed log table.
pub(super) fn rewrite_log<Old, New>(
    txn: &WriteTransaction,
    def: TableDefinition<(&str, u64), &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<u64>
where
    Old: DeserializeOwned,
    New: Serialize,
{
    let mut t = txn.open_table(def).map_err(super::redb_schema::err)?;
    let keys: Vec<(String, u64)> = t
        .iter()
        .map_err(super::redb_schema::err)?
        .map(|kv| {
            kv.map(|(k, _)| {
                let (a, b) = k.value();
                (a.to_string(), b)
            })
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(super::redb_schema::err)?;
    let mut n = 0;
    for (k, seq) in keys {
        let old: Old = match t.get((k.as_str(), seq)).map_err(super::redb_schema::err)? {
            Some(v) => decode(v.value(), &format!("{def}"), &k)?,
            None => continue,
        };
        let bytes = super::codec::enc(&convert(old))?;
        t.insert((k.as_str(), seq), bytes.as_slice())
            .map_err(super::redb_schema::err)?;
        n += 1;
    }
    Ok(n)
}

fn decode<T: DeserializeOwned>(b: &[u8], table: &str, key: &str) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| {
        StoreError::Corrupt(format!(
            "migration: {table}[{key}] does not decode as the older layout: {e}"
        ))
    })
}

/// Bring a store written with schema `from` up to [`super::contract::SCHEMA_VERSION`]
/// inside `txn` (the caller commits it together with the new version).
pub(super) fn migrate(txn: &WriteTransaction, from: u32) -> Result<()> {
    use super::redb_schema::tables::*;
    if from < 2 {
        rewrite(
            txn,
            REGISTRARS,
            <crate::model::Registrar as From<v1::Registrar>>::from,
        )?;
        rewrite(
            txn,
            CONTACTS,
            <crate::model::Contact as From<v1::Contact>>::from,
        )?;
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v1::Domain>>::from,
        )?;
        rewrite(
            txn,
            DELEGATION,
            <crate::model::DelegationRecord as From<v1::DelegationRecord>>::from,
        )?;
        rewrite(
            txn,
            HOSTS,
            <super::contract::HostRecord as From<v1::HostRecord>>::from,
        )?;
        rewrite_log(
            txn,
            HISTORY,
            <crate::model::HistoryEvent as From<v1::HistoryEvent>>::from,
        )?;
        rewrite_log(
            txn,
            ROUNDS,
            <crate::model::RoundSummary as From<v1::RoundSummary>>::from,
        )?;
        return Ok(());
    }
    if from < 3 {
        // Schema 3 gave contacts a creation time (unknown for these).
        rewrite(
            txn,
            CONTACTS,
            <crate::model::Contact as From<v2::Contact>>::from,
        )?;
    }
    if from < 4 {
        // Schema 4 gave registrations their host-object links (none for
        // these: a name declared before links to nothing).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v3::Domain>>::from,
        )?;
    } else if from < 5 {
        // Schema 5 gave registrations the registry-move time (none).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v4::Domain>>::from,
        )?;
    } else if from < 7 {
        // Schema 7 gave registrations the registrar-set client statuses
        // (none).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v6::Domain>>::from,
        )?;
    }
    if from < 6 {
        // Schema 6 gave rounds their queue lag and downtime entries their
        // unmeasured time (none measured for these).
        rewrite(
            txn,
            DELEGATION,
            <crate::model::DelegationRecord as From<v4::DelegationRecord>>::from,
        )?;
        rewrite_log(
            txn,
            ROUNDS,
            <crate::model::RoundSummary as From<v4::RoundSummary>>::from,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

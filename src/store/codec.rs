//! What both store backends share below the trait: how records are
//! encoded (postcard; JSON for the few self-describing values) and how
//! much of each log is kept.

use serde::{de::DeserializeOwned, Serialize};

use super::contract::{Result, StoreError};

/// Probe rounds kept per domain (older ones are dropped).
pub const ROUNDS_KEPT: usize = 500;
/// History events kept per domain.
pub const HISTORY_KEPT: usize = 1000;
/// Change-feed events kept registry-wide (registrars read the feed within
/// days; older events stay in each domain's history).
pub const FEED_KEPT: u64 = 10_000_000;

pub(super) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

/// JSON for the few self-describing values (webhooks): fields may be
/// added without a migration.
pub(super) fn json_enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

pub(super) fn json_dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

pub(super) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

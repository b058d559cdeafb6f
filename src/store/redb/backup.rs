//! `zonekeeper store backup`: a consistent copy of every table, written
//! in chunks.

use super::*;

/// Entries written per transaction of a backup copy: a large store is not
/// copied in one write transaction's worth of dirty pages.
pub(super) const BACKUP_CHUNK: u64 = 50_000;

/// Page cache of the copy being written (it is written once, never read).
pub(super) const BACKUP_CACHE_BYTES: usize = 64 << 20;

/// Copy every entry of `def` from the snapshot `src` into `dst`, committing
/// every `chunk` entries; a table the snapshot lacks (created on
/// first write) is skipped. Returns the entries copied.
pub(super) fn copy_table<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<K, V>,
    chunk: u64,
) -> Result<u64> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(err(e)),
    };
    let mut n = 0u64;
    let mut iter = from.iter().map_err(err)?;
    loop {
        let mut txn = dst.begin_write().map_err(err)?;
        // Durable once, at the end (the copy is not DEST until then).
        txn.set_durability(::redb::Durability::None)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut done = true;
        {
            let mut to = txn.open_table(def).map_err(err)?;
            for item in iter.by_ref() {
                let (k, v) = item.map_err(err)?;
                to.insert(k.value(), v.value()).map_err(err)?;
                n += 1;
                if n.is_multiple_of(chunk) {
                    done = false;
                    break;
                }
            }
        }
        txn.commit().map_err(err)?;
        if done {
            return Ok(n);
        }
    }
}

impl RedbStore {
    /// Write a consistent copy of the store, read in one read transaction
    /// (writers go on meanwhile), into `file`, a new empty file; returns
    /// the entries copied. Every table of the snapshot is copied; one this
    /// code does not know (a newer zonekeeper's) is an error rather than a
    /// silently incomplete copy.
    pub fn backup_into(&self, file: std::fs::File) -> Result<u64> {
        self.backup_chunked(file, BACKUP_CHUNK)
    }

    pub(super) fn backup_chunked(&self, file: std::fs::File, chunk: u64) -> Result<u64> {
        let src = self.read()?;
        let known: BTreeSet<&str> = BACKUP_TABLES.iter().copied().collect();
        for t in src.list_tables().map_err(err)? {
            if !known.contains(t.name()) {
                return Err(StoreError::Backend(format!(
                    "backup: table {} is unknown to this zonekeeper",
                    t.name()
                )));
            }
        }
        let dst = ::redb::Builder::new()
            .set_cache_size(BACKUP_CACHE_BYTES)
            .create_with_backend(
                ::redb::backends::FileBackend::new(file)
                    .map_err(|e| StoreError::Backend(format!("backup: {e}")))?,
            )
            .map_err(|e| StoreError::Backend(format!("backup: {e}")))?;
        let mut n = 0;
        n += copy_table(&src, &dst, META, chunk)?;
        n += copy_table(&src, &dst, REGISTRARS, chunk)?;
        n += copy_table(&src, &dst, CONTACTS, chunk)?;
        n += copy_table(&src, &dst, DOMAINS, chunk)?;
        n += copy_table(&src, &dst, DELEGATION, chunk)?;
        n += copy_table(&src, &dst, HOSTS, chunk)?;
        n += copy_table(&src, &dst, HISTORY, chunk)?;
        n += copy_table(&src, &dst, ROUNDS, chunk)?;
        n += copy_table(&src, &dst, STATE_COUNTS, chunk)?;
        n += copy_table(&src, &dst, IDX_HOST_DOMAIN, chunk)?;
        n += copy_table(&src, &dst, IDX_IP_HOST, chunk)?;
        n += copy_table(&src, &dst, IDX_REGISTRAR, chunk)?;
        n += copy_table(&src, &dst, IDX_CONTACT, chunk)?;
        n += copy_table(&src, &dst, IDX_STATE, chunk)?;
        n += copy_table(&src, &dst, IDX_FN, chunk)?;
        n += copy_table(&src, &dst, IDX_RESELLER, chunk)?;
        n += copy_table(&src, &dst, IDX_PENDING_TRANSFER, chunk)?;
        n += copy_table(&src, &dst, FEED, chunk)?;
        n += copy_table(&src, &dst, IDX_FEED, chunk)?;
        n += copy_table(&src, &dst, HOST_OBJECTS, chunk)?;
        n += copy_table(&src, &dst, CDS_SIGHTINGS, chunk)?;
        n += copy_table(&src, &dst, IDX_SKELETON, chunk)?;
        n += copy_table(&src, &dst, AUTH_FAILURES, chunk)?;
        n += copy_table(&src, &dst, RESELLERS, chunk)?;
        n += copy_table(&src, &dst, WEBHOOKS, chunk)?;
        n += copy_table(&src, &dst, WEBHOOK_STATE, chunk)?;
        // One durable commit makes everything before it durable.
        dst.begin_write().map_err(err)?.commit().map_err(err)?;
        Ok(n)
    }
}

/// The tables [`RedbStore::backup_into`] copies: all of [`tables`].
pub(super) const BACKUP_TABLES: [&str; 26] = [
    "meta",
    "registrars",
    "contacts",
    "domains",
    "delegation",
    "hosts",
    "history",
    "rounds",
    "state_counts",
    "idx_host_domain",
    "idx_ip_host",
    "idx_registrar",
    "idx_contact",
    "idx_state",
    "idx_entity_fn",
    "idx_reseller",
    "idx_pending_transfer",
    "feed",
    "idx_feed",
    "host_objects",
    "cds_sightings",
    "idx_skeleton",
    "auth_failures",
    "resellers",
    "webhooks",
    "webhook_state",
];

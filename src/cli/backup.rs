//! `store backup DEST`: a consistent copy of the redb store, from the store
//! itself when no process holds it, else from `serve` over its control
//! socket. Written next to DEST under a temporary name, synced, opened and
//! checked like `store check`, then renamed to DEST: DEST never holds a
//! partial or unchecked copy.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::common::{open_store_raw, DbArg, Fail};
use crate::config::Config;
use crate::store::{Maintenance, RedbStore, Store, StoreError};

pub(super) fn run(cfg: &Config, db: &DbArg, dest: &Path, force: bool) -> Result<ExitCode, Fail> {
    if !force && dest.symlink_metadata().is_ok() {
        return Err(Fail(format!(
            "{} exists; give another DEST or --force to replace it",
            dest.display()
        )));
    }
    // Opening a missing store would create an empty one.
    let at = crate::store::Location::of(&cfg.store, db.db.as_deref());
    if let Some(p) = at.path() {
        if !p.exists() {
            return Err(Fail(format!("no store at {}", p.display())));
        }
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".zonekeeper-backup-")
        .tempfile_in(dir)
        .map_err(|e| Fail(format!("cannot create a file in {}: {e}", dir.display())))?;
    let via = match open_store_raw(cfg, db) {
        Ok(store) => {
            let mut file = store.backup_file()?;
            std::io::copy(&mut file, tmp.as_file_mut())
                .map_err(|e| Fail(format!("writing the copy: {e}")))?;
            "the store"
        }
        Err(StoreError::Locked { path }) => {
            let sock = cfg.store.control_socket_for(&path);
            crate::control::backup(&sock, tmp.as_file_mut()).map_err(|e| {
                Fail(format!(
                    "store {} is in use by another process, and a backup through its control socket {} failed: {e} (is `zonekeeper serve` running with this store and store.control_socket?)",
                    path.display(),
                    sock.display()
                ))
            })?;
            "the running serve"
        }
        Err(e) => return Err(e.into()),
    };
    tmp.as_file_mut()
        .flush()
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Fail(format!("writing the copy: {e}")))?;
    // Checked before it becomes DEST.
    let (problems, stats) = {
        let copy = RedbStore::open_with_cache(tmp.path(), 64 << 20)?;
        (copy.verify()?, copy.stats()?)
    };
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("zonekeeper: {}", crate::text::escape(p));
        }
        return Err(Fail(format!(
            "the copy has {} problem(s); {} not written",
            problems.len(),
            dest.display()
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Fail(format!("writing the copy: {e}")))?;
    let persisted = if force {
        tmp.persist(dest).map(|_| ())
    } else {
        tmp.persist_noclobber(dest).map(|_| ())
    };
    persisted.map_err(|e| Fail(format!("cannot create {}: {}", dest.display(), e.error)))?;
    // The rename itself survives a crash once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Fail(format!("syncing {}: {e}", dir.display())))?;
    println!(
        "backup of {via} written to {}: consistent, {} domains, {} contacts, {} registrars, {} hosts",
        dest.display(),
        stats.domains,
        stats.contacts,
        stats.registrars,
        stats.hosts
    );
    Ok(ExitCode::SUCCESS)
}

//! What every subcommand shares: [`Fail`], the `--db` flag and opening
//! the store it names. A leaf: it imports nothing from `cli`'s `mod.rs`.

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::store::{AnyStore, OpenOptions, StoreError};

#[derive(Args, Clone)]
pub struct DbArg {
    /// Store: a redb file or a `postgres://…` URL (overrides store.path
    /// and store.url).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// A failure that ends the command with exit code 2 and a one-line message.
#[derive(Debug)]
pub struct Fail(pub String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

pub fn open_store(cfg: &Config, db: &DbArg) -> Result<AnyStore, Fail> {
    Ok(open_store_raw(cfg, db)?)
}

pub(crate) fn open_store_raw(cfg: &Config, db: &DbArg) -> Result<AnyStore, StoreError> {
    crate::store::open(
        &crate::store::Location::of(&cfg.store, db.db.as_deref()),
        &OpenOptions::from_config(&cfg.store),
    )
}

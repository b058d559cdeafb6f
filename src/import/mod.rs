//! Import of registry data (docs/import.md): parse, validate every record, then
//! write the whole file in one transaction or nothing at all.
//!
//! Each record is parsed on its own (from a raw JSON slice) so a type error
//! in record 5,123 is reported with its index and field instead of failing
//! the whole file with a byte offset.

mod apply;
mod confusables;
mod error;
mod parse;
mod read;
mod records;
mod sections;
mod spool;

pub use apply::{apply, apply_spooled, import_file, COMPACT_AFTER_DOMAINS, IMPORT_CACHE_MIB};
pub use confusables::look_alikes;
pub use error::{ImportError, RecordErrors, MAX_REPORTED_ERRORS};
pub use parse::parse;
pub use read::{read_file, spool_file};
pub use spool::Spooled;

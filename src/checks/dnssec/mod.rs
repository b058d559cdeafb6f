//! DNSSEC checks at delegation (catalogue ids `DS_*`, `DNSKEY_*`, `RRSIG_*`,
//! `DENIAL_OF_EXISTENCE`, `NSEC3_*`, `DNSSEC_*`): pure functions of the
//! declared DS set, the DNSSEC probe facts ([`crate::probe::dnssec`]), the
//! profile's [`DnssecPolicy`](crate::checks::profile::DnssecPolicy) and the time of the check.
//!
//! Cryptography is hickory-proto's (ring): DS digests with
//! `DNSKEY::to_digest`, signatures with `Verifier::verify_rrsig`. Every
//! digest and verification is counted against `max_crypto_ops`, and results
//! are cached, so a hostile zone (thousands of keys sharing a key tag,
//! thousands of signatures) costs a bounded amount of CPU.
//!
//! - `evaluate`: the check ids and the run over every address;
//! - `judge`: one address's signatures and denial of existence;
//! - `keys`: the DNSKEY RRset, RRset/RRSIG selection, the crypto budget;
//! - `text`: how findings are worded.

pub mod evaluate;
pub mod judge;
pub mod keys;
pub mod text;

#[cfg(test)]
mod tests;

pub use self::evaluate::{add_findings, evaluate, is_dnssec_check, IDS};
pub(crate) use self::judge::{Judge, Signed};
pub(crate) use self::keys::{rrset, sigs, KeySet};
pub use self::text::algorithm_name;

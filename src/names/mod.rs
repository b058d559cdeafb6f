//! Domain and host name rules (docs/import.md, Domains): validation and normalisation to
//! lower-case A-labels without the trailing dot.
//!
//! Every rejection is a [`NameError`] whose message names the rule broken, so
//! the same text can go to a registrar (API 422), an importer (record index +
//! reason) and a WHOIS user.
//!
//! - `syntax`: [`DomainName`], [`HostName`], normalisation and label rules;
//! - `zones`: the registry's [`Zones`] and parsing a registered name;
//! - `policy`: a zone's [`NamePolicy`] and its tables;
//! - `confusable`: look-alike names;
//! - `error`: [`NameError`] and the length limits.

pub mod confusable;
pub mod error;
pub mod policy;
pub mod syntax;
pub mod zones;

#[cfg(test)]
mod tests;

pub use self::confusable::*;
pub use self::error::*;
pub use self::policy::*;
pub use self::syntax::*;
pub use self::zones::*;

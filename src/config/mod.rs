//! Configuration (docs/config.md): TOML, unknown keys rejected, durations in human
//! form (`10m`, `4d`). Defaults are the registry's regulation.
//!
//! - `file`: [`Config`] as a whole, its defaults and loading;
//! - `validate`: the cross-key checks a loaded config must pass;
//! - the sections: `checking`, `edges`, `rules` and `process`;
//! - `forms`: value forms (durations, periods, DNS server addresses);
//! - `error`: [`ConfigError`].

pub mod checking;
pub mod edges;
pub mod error;
pub mod file;
pub mod forms;
pub mod process;
pub mod rules;
pub mod validate;

#[cfg(test)]
mod tests;

pub use self::checking::*;
pub use self::edges::*;
pub use self::error::ConfigError;
pub use self::file::{rdap_base_url, Config};
pub use self::forms::{parse_socket_addr_53, Months};
pub use self::process::*;
pub use self::rules::*;

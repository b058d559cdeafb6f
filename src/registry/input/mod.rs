//! Typed inputs for declared data, shared by every edge (import, the
//! registrar API, the control socket, EPP): handles, contacts, nameserver
//! and DS sets, a domain update, webhooks. An edge builds the typed input
//! from its own format; the registry validates it (the registry does not
//! trust an edge).

pub mod contact;
pub mod create;
pub mod ds;
pub mod glue;
pub mod handle;
pub mod nameserver;
pub mod update;
pub mod webhook;

pub use contact::{AddressIn, ContactIn};
pub use create::CreateIn;
pub use ds::{digest_len, parse_presentation, validate_one, validate_set, DsIn, MAX_DS};
pub use glue::{check_glue, glue_refusal, is_glue_reason, loopback_glue_allowed};
pub use handle::{handle_must, not_a_handle, valid_handle, HANDLE_RULE};
pub use nameserver::{
    parse_addresses, validate_nameservers, NameserverIn, MAX_ADDRESSES_PER_NS, MAX_NAMESERVERS,
};
pub use update::{ds_records, DomainUpdate};
pub use webhook::{webhook, MIN_SECRET_LEN, PENDING_COUNT_MAX};

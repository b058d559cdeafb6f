//! The registry service: every change to registry data goes through here.
//!
//! Each operation checks the rules (names, lifecycle locks from
//! [`crate::lifecycle::permits`], who may do what), writes one store
//! transaction ([`crate::store::Txn`]) with a history event naming the [`Actor`], and
//! then tells the scheduler and the zone writer (when it runs inside
//! `serve`). The edges — the registrar REST API, the operator control
//! socket and CLI, import, and later EPP — only parse their input, call one
//! method and render the answer or the [`RegistryError`].
//!
//! Delegation transitions are the pure functions of [`crate::delegation`]
//! ([`crate::delegation::on_declared`], [`crate::delegation::on_retest`]); this module
//! only stores their results.

mod actor;
mod authcode;
mod bulk;
pub mod client_status;
mod create;
mod error;
pub mod feed;
mod holder;
pub mod host;
pub mod input;
mod nameservers;
mod objects;
mod operator;
#[cfg(test)]
mod ownership;
pub mod reserved;
mod rule;
mod service;
mod sweep;
mod transfer;
mod update;
mod webhook;
pub use actor::Actor;
pub use client_status::ClientStatusChange;
pub use error::{RegistryError, Result};
pub use feed::FeedEntry;
pub use input::{CreateIn, DomainUpdate, NameserverIn};
pub use objects::TransferState;
pub use operator::{MovedDomain, ResellerMove};
pub use reserved::ReservedNames;
pub use rule::Rule;
pub use service::{ChangeListener, Registry};
pub use transfer::TransferView;

#[cfg(test)]
mod tests;

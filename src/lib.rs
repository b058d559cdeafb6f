//! # zonekeeper
//!
//! A registry-side service for a country-code TLD: it decides when a domain
//! may be delegated by probing the nameservers its registrar declared, keeps
//! the parent zone in step, and publishes the registry's public data over
//! port-43 WHOIS and RDAP. The contracts (command line, config, import,
//! WHOIS, RDAP, API, delegation rules, operations) are documented in the
//! repository's `docs/` directory.
//!
//! ## Map
//!
//! | layer | modules | what |
//! |---|---|---|
//! | rules (pure) | [`names`], [`lifecycle`], [`delegation`], [`checks`], [`ds`] | name syntax, registration lifecycle, delegation state transitions, verdicts from probe facts (DNSSEC in [`checks::dnssec`]), DS syntax |
//! | data | [`model`], [`public`], [`store`], [`answer_cache`] | records as stored; the one public projection; the [`store::Store`] trait and its redb backend; serialised public answers cached per store generation |
//! | edges | [`probe`], [`import`], [`zone`], [`whois`], [`rdap`], [`api`], [`dashboard`], [`metrics`], [`http`] | DNS I/O, files, sockets |
//! | service | [`registry`] | the one writer of registry data: rules, one transaction with an event naming the actor, notifications |
//! | running | [`scheduler`], [`cds`], [`server`], [`app`], [`clock`], [`config`], [`ratelimit`], [`control`], [`demo`] | the long-running process and its wiring; the operator control socket; the loopback demo (dev config) |
//! | command line | [`cli`] (`check`, `serve`, `operator`, `import`, `zone`, `store`) | flags → config → one library call → exit code; the only place that knows the CLI's `Fail` |
//!
//! ## How data flows
//!
//! ```text
//!  import FILE ─┐                     ┌─> zone::write_all ─> zones/ru.zone ─> NSD reload
//!  API PUT ns ──┼─> Store (redb) <────┤
//!  CLI retest ──┘     │  ▲            └─> public::domain ─┬─> whois (port 43)
//!                     │  │ put_delegation                 ├─> rdap (/rdap/)
//!                     ▼  │ (record + event + round,       └─> dashboard, api
//!               scheduler  one transaction)
//!                     │  ▲
//!                     ▼  │ CheckReport
//!               probe (DNS over UDP/TCP) ─> checks (pure) ─> verdict
//! ```
//!
//! * **Writes** of registry data go through [`registry::Registry`] (API,
//!   control socket, import, later EPP), which checks the rules and writes
//!   one [`store::Txn`]; the scheduler writes delegation records with
//!   [`store::Store::put_delegation`]. A crash at any moment leaves the
//!   last committed state.
//! * **Decisions** ([`lifecycle::evaluate`], [`delegation`] transitions,
//!   [`checks`]) are pure functions of records and a time taken from an
//!   injected [`clock::Clock`], so the 4-day window and the 2-hour budget
//!   are tested in seconds.
//! * **Publication**: every public view (WHOIS, RDAP, dashboard) is built from
//!   [`public`]'s types, which have no field for secrets at all.
//! * **In the zone** means [`lifecycle::in_zone`]: the state machine says
//!   delegated and the lifecycle (expiry, hold, verification) allows it.

pub mod answer_cache;
pub mod api;
pub mod app;
pub mod cds;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod dashboard;
pub mod delegation;
pub mod demo;
pub mod ds;
pub mod http;
pub mod import;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod names;
pub mod probe;
pub mod public;
pub mod ratelimit;
pub mod rdap;
pub mod registry;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod synth;
pub mod text;
pub mod whois;
pub mod zone;

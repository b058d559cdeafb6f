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
//! | rules (pure) | [`names`], [`lifecycle`], [`status`], [`delegation`], [`checks`] | name syntax (label rules in [`names::syntax`], zones and their name policies in [`names::zones`] and [`names::policy`], look-alikes in [`names::confusable`]), registration lifecycle (dispute lock, state as of now, transitions), the one domain status model every edge renders (EPP, RGP, RDAP, WHOIS, API), delegation state transitions, verdicts from probe facts (DNSSEC in [`checks::dnssec`]: the run over every address in [`checks::dnssec::evaluate`](mod@checks::dnssec::evaluate), one address in [`checks::dnssec::judge`]; CDS/CDNSKEY decisions in [`cds::decide_cds`]) |
//! | data | [`model`], [`public`], [`store`], [`answer_cache`] | records as stored; the one public projection; the [`store::Store`] trait, its redb and PostgreSQL backends ([`store::open`]; old record layouts and their migration in `store::migrate`); serialised public answers cached per domain, invalidated by the change stamps each commit publishes (the last one built is served while the store cannot be read) |
//! | edges | [`probe`], [`import`], [`zone`], [`whois`], [`rdap`], [`api`], [`epp`], [`control`], [`dashboard`], [`metrics`], [`http`], [`text`], [`webhook`] | DNS I/O ([`probe`]: what a round found in `probe::facts`, one exchange's answer in `probe::answer`, per-address facts shared across domains, UDP sockets and pipelined TCP connections shared per address, polite caps), files, sockets; signed deliveries of each registrar's change feed ([`webhook`]); the text policy every outside value passes |
//! | service | [`registry`] | the one writer of registry data: ownership (domains, contacts, hosts, resellers), rules (typed inputs — handles, contacts, NS and DS sets (DS syntax too), a domain update — in [`registry::input`]; a refusal is a [`registry::Rule`] with its HTTP status and EPP code), one transaction with an event naming the actor, then a [`registry::ChangeListener`] (the [`app::App`]) is told |
//! | running | [`scheduler`], [`cds`], [`server`], [`app`], [`sessions`], [`clock`], [`config`], [`ratelimit`], [`demo`], [`authdns`], [`systemd`], [`synth`] | the long-running process and its wiring (the scheduler's loop in [`scheduler::driver`], one round in [`scheduler::round`], rounds acknowledged after their batch commits ([`scheduler::commit`]); queue lag measured for downtime reach; readiness and watchdog for systemd); each edge gets a narrow handle built by [`app::App`] ([`whois::Deps`], [`rdap::Deps`], [`dashboard::Deps`], [`control::Deps`], [`epp::Deps`], [`app::Writer`] for the API; docs/architecture.md); EPP sessions counted in [`sessions`]; the config's sections by group in [`config`] (loading in [`config::file`], cross-key checks in [`config::validate`]); the loopback demo (dev config) on the one authoritative DNS responder the tests use too; synthetic registries for benchmarks |
//! | command line | [`cli`] (`check`, `serve`, `operator`, `import`, `zone`, `store`) | flags → config → one library call → exit code; the only place that knows the CLI's `Fail` |
//!
//! ## How data flows
//!
//! ```text
//!  import FILE ──┐                                        ┌─> zone::write_all ─> zones/ru.zone
//!  API, EPP ─────┤                                        │     (zone writer, on zone_dirty)
//!  control/CLI ──┼─> registry (rules) ─> Store (redb/PG) <┤
//!  CDS scanner ──┘      │ ChangeListener     ▲            └─> public::domain ─┬─> whois (port 43)
//!                       ▼ (inbox, wake)      │ put_delegations                ├─> rdap (/rdap/)
//!                   scheduler ───────────────┘ (record + event + round;       └─> dashboard, api
//!                       │  ▲                    many rounds, one transaction)
//!                       ▼  │ CheckReport
//!                 probe (DNS over UDP/TCP) ─> checks (pure) ─> verdict
//! ```
//!
//! * **Writes** of registry data go through [`registry::Registry`] (API,
//!   control socket, EPP, import, CDS scanner), which checks the rules and writes
//!   one [`store::Txn`]; the scheduler writes delegation records in batches
//!   with [`store::Store::put_delegations`]. A crash at any moment leaves the
//!   last committed state.
//! * **Decisions** ([`lifecycle::evaluate`], [`delegation`] transitions,
//!   [`checks`]) are pure functions of records and a time taken from an
//!   injected [`clock::Clock`], so the 4-day window and the 2-hour budget
//!   are tested in seconds.
//! * **Publication**: every public view (WHOIS, RDAP, dashboard) is built from
//!   [`public`]'s types, which have no field for secrets at all.
//! * **In the zone** means [`lifecycle::in_zone`]: the state machine says
//!   delegated and the lifecycle (expiry, hold, verification) allows it.
//! * **Layering**: modules depend downwards only (no cycles): rules and data
//!   know nothing of the service, the service knows the store and a
//!   listener, not the running [`app::App`]; the edges and [`cli`] sit on
//!   top.

/// Cap glibc's malloc at two arenas; call first thing in `main`, before
/// any thread starts. By default glibc gives each new thread (tokio's
/// workers and blocking pool) an arena of its own, up to eight per core,
/// and the answer caches' churn left freed memory spread over them: a front
/// end over 1M domains passed its 512 MiB budget within two minutes of
/// mixed load (`benches/frontend.rs`; one or two arenas held it flat).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator; it is
    // called before other threads exist, as glibc's manual asks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub mod answer_cache;
pub mod api;
pub mod app;
pub mod authdns;
pub mod cds;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod dashboard;
pub mod delegation;
pub mod demo;
pub mod epp;
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
pub mod sessions;
pub mod status;
pub mod store;
pub mod synth;
pub mod systemd;
pub mod text;
pub mod webhook;
pub mod whois;
pub mod zone;

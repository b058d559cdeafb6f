//! The integration tests, one binary: each module is one area (named as
//! the test files were), all sharing [`support`] (in-test DNS servers, NSD,
//! the signer, HTTP servers over an `App`, scheduler stores).
//!
//! Tests that need root or an external tool fail under `CI=true` instead
//! of skipping. The soak test is `#[ignore]`d (`.ci/run` runs it with
//! `--ignored soak::`); long fuzz runs take `ZK_FUZZ_CASES`.

#[path = "../support/mod.rs"]
mod support;

mod alloc;
mod answer_cache;
mod api;
mod api_check;
mod api_cli;
mod api_ds;
mod api_examples;
mod auth_codes;
mod cds_cdnskey;
mod cds_dsboot;
mod cds_scan;
mod check_cli;
mod check_dnssec;
mod check_misbehaving;
mod check_nsd;
mod client_day;
mod config_files;
mod crash_import;
mod dashboard;
mod demo;
mod docs;
mod e2e_flows;
mod epp;
mod epp_client_status;
mod epp_edge;
mod fuzz_dns;
mod fuzz_import;
mod fuzz_names;
mod fuzz_rdap;
mod fuzz_whois;
mod glue_rule;
mod hostile_dns;
mod http_limits;
mod import_cli;
mod import_ds;
mod input_hygiene;
mod lifecycle_rules;
mod metrics;
mod name_policy;
mod operator_control;
mod ownership_edges;
mod probe_shared;
mod prometheus;
mod public_history;
mod rdap;
mod rdap_conformance;
mod rdap_golden;
mod rdap_leak;
mod registry_api;
mod registry_cli;
mod scale_out;
mod scheduler_clock;
mod scheduler_dnssec;
mod scheduler_e2e;
mod scheduler_loop;
mod scheduler_restart;
mod soak;
mod ssrf_guard;
mod statuses;
mod storage_faults;
mod store_backends;
mod store_backup;
mod systemd;
mod text_policy;
mod webhooks;
mod whois;
mod zone_nsd;

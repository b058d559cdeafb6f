//! Shared helpers of the scheduler tests: a temp store with registry
//! records, and shrunk configs.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use zonekeeper::config::Config;
use zonekeeper::model::{
    Contact, ContactKind, DelegationRecord, DelegationState, Domain, DsRecord, Nameserver,
    Registrar, Timestamp,
};
use zonekeeper::names::{parse_host, DomainName};
use zonekeeper::store::{ImportBatch, RedbStore, Store};

pub fn registrar() -> Registrar {
    Registrar {
        handle: "REGRU-RU".into(),
        name: "Registrar".into(),
        url: None,
        email: None,
        api_token_sha256: None,
        epp_cert_sha256: Vec::new(),
        epp_password_hash: None,
        epp_poll_acked: 0,
    }
}

pub fn contact() -> Contact {
    Contact {
        handle: "C1-RU".into(),
        kind: ContactKind::Person,
        name: Some("Ivan Petrov".into()),
        org: None,
        email: None,
        phone: None,
        address: None,
        tax_id: None,
        birth_date: None,
        passport: None,
        disclose: vec![],
        sponsor: None,
        created: None,
    }
}

pub fn ns(name: &str, addrs: &[IpAddr]) -> Nameserver {
    Nameserver {
        name: parse_host(name).unwrap(),
        addresses: addrs.to_vec(),
    }
}

pub fn domain(name: &str, nameservers: Vec<Nameserver>, now: Timestamp) -> Domain {
    Domain {
        name: DomainName::from_trusted(name.into()),
        registrar: "REGRU-RU".into(),
        registrant: "C1-RU".into(),
        admin: None,
        tech: None,
        created: now - chrono::Duration::days(10),
        paid_till: now + chrono::Duration::days(300),
        nameservers,
        auth_info: None,
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: now,
        registration: Default::default(),
        ds: Vec::new(),
    }
}

/// Open a store at `path` and import `domains` (testing starts now).
pub fn store_with(path: &Path, domains: Vec<Domain>, window: Duration) -> Arc<RedbStore> {
    store_at(path, domains, window, Utc::now())
}

/// [`store_with`] with testing starting at `now`.
pub fn store_at(
    path: &Path,
    domains: Vec<Domain>,
    window: Duration,
    now: Timestamp,
) -> Arc<RedbStore> {
    let store = RedbStore::open(path).unwrap();
    let mut cfg = Config::default();
    cfg.delegation.test_window = window;
    zonekeeper::registry::Registry::offline(&store, &cfg)
        .unwrap()
        .import(
            &ImportBatch {
                registrars: vec![registrar()],
                webhooks: vec![],
                resellers: vec![],
                contacts: vec![contact()],
                domains,
            },
            now,
        )
        .unwrap();
    Arc::new(store)
}

/// A config whose days are seconds.
pub fn fast_config() -> Config {
    let mut c = Config::default();
    let d = &mut c.delegation;
    d.probe_interval = Duration::from_millis(100);
    d.monitor_interval = Duration::from_millis(200);
    d.test_window = Duration::from_secs(3);
    d.downtime_period = Duration::from_secs(60);
    d.downtime_budget = Duration::from_secs(1);
    d.downtime_utc_offset_secs = 0;
    d.jitter = 0.1;
    // Failing monitoring rounds are re-probed and confirmed on the same
    // shrunken scale.
    d.recheck_interval = Duration::from_millis(100);
    d.violation_confirmations = 3;
    d.violation_min_span = Duration::from_millis(200);
    c.probe.allow_private_targets = true;
    c
}

/// Poll `f` every 2 ms until it is true or `limit` passes.
pub async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    f()
}

/// [`store_with`], then every domain marked delegated at `now` (the CDS
/// scanner looks at delegated domains only).
pub fn delegated_store(
    path: &Path,
    domains: Vec<Domain>,
    window: Duration,
    now: Timestamp,
) -> Arc<RedbStore> {
    let names: Vec<String> = domains.iter().map(|d| d.name.to_string()).collect();
    let store = store_with(path, domains, window);
    for name in &names {
        let old = store.delegation(name).unwrap().unwrap();
        let rec = DelegationRecord {
            state: DelegationState::Delegated,
            delegated_at: Some(now),
            ..old.clone()
        };
        assert!(store
            .put_delegation(name, &old.ns_fingerprint, &rec, None, None)
            .unwrap());
    }
    store
}

/// The config of the CDS tests: servers on `port`, no resolver, zone `ru`.
pub fn cds_config(port: u16) -> Config {
    let mut cfg = fast_config();
    cfg.probe.port = port;
    cfg.probe.timeout = Duration::from_millis(800);
    cfg.probe.resolvers = vec!["127.0.0.1:9".parse().unwrap()];
    cfg.zones = vec!["ru".into()];
    cfg
}

/// A DS record from its presentation form.
pub fn ds(s: &str) -> DsRecord {
    zonekeeper::registry::input::ds::parse_presentation(s).unwrap()
}

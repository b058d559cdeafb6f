//! The CDS scanner (RFC 7344, RFC 8078): reads the CDS RRset from every
//! server of signed, delegated domains and, when the child signalled a
//! change with its current keys ([`crate::checks::dnssec::decide_cds`]),
//! replaces or removes the DS set through [`crate::store::Store::declare_ds`]
//! — so the change is in the history and is tested like any DS change.
//!
//! Unsigned delegations are bootstrapped (RFC 8078 §3.3, accept after
//! delay) when `dnssec.cds_bootstrap_delay` is set: a CDS set that every
//! server publishes, signed by the zone's keys and under which the zone
//! validates, becomes the DS set once the scanner has seen it unchanged for
//! that long. What was seen is kept in memory: a restart starts the delay
//! again (the safe direction).
//!
//! Runs in `serve` every `dnssec.cds_scan_interval` (off when unset).

use std::collections::HashMap;

use tracing::{info, warn};

use crate::app::App;
use crate::checks::dnssec::{decide_cds, CdsAction};
use crate::checks::Verifier;
use crate::config::Config;
use crate::model::{DelegationState, DsRecord, Timestamp};

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub scanned: usize,
    pub replaced: Vec<String>,
    pub deleted: Vec<String>,
    /// Unsigned delegations that got their first DS set.
    pub bootstrapped: Vec<String>,
    /// Bootstrap candidates still waiting out the delay.
    pub pending: usize,
}

/// The scanner and what it has seen of bootstrap candidates.
pub struct Scanner {
    verifier: Verifier,
    /// Domain -> (CDS-derived DS set, first seen unchanged).
    pending: HashMap<String, (Vec<DsRecord>, Timestamp)>,
}

impl Scanner {
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            pending: HashMap::new(),
        }
    }

    /// Scan every delegated domain once.
    pub async fn scan_once(&mut self, app: &App) -> Result<ScanSummary, String> {
        let sum = scan_once_with(app, &self.verifier, &mut self.pending).await?;
        Ok(sum)
    }
}

/// Scan every delegated domain with a DS set once (no bootstrapping state).
pub async fn scan_once(app: &App, verifier: &Verifier) -> Result<ScanSummary, String> {
    scan_once_with(app, verifier, &mut HashMap::new()).await
}

async fn scan_once_with(
    app: &App,
    verifier: &Verifier,
    pending: &mut HashMap<String, (Vec<DsRecord>, Timestamp)>,
) -> Result<ScanSummary, String> {
    let mut sum = ScanSummary::default();
    let mut seen = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = app
            .store
            .domains_by_state(DelegationState::Delegated, after.as_deref(), 500)
            .map_err(|e| e.to_string())?;
        for name in &page {
            if app.shutdown.is_cancelled() {
                return Ok(sum);
            }
            seen.insert(name.clone());
            scan_domain(app, verifier, name, &mut sum, pending).await?;
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // Candidates no longer delegated start over if they come back.
    pending.retain(|k, _| seen.contains(k));
    sum.pending = pending.len();
    Ok(sum)
}

async fn scan_domain(
    app: &App,
    verifier: &Verifier,
    name: &str,
    sum: &mut ScanSummary,
    pending: &mut HashMap<String, (Vec<DsRecord>, Timestamp)>,
) -> Result<(), String> {
    let Some(d) = app.store.domain(name).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let bootstrap = app.config.dnssec.cds_bootstrap_delay;
    if d.nameservers.is_empty() || (d.ds.is_empty() && bootstrap.is_none()) {
        return Ok(());
    }
    sum.scanned += 1;
    let targets = verifier.targets(&d.nameservers);
    let facts = verifier.scan_cds(&d.name, &targets).await;
    let now = app.now();
    let new = match decide_cds(&d.ds, &facts, verifier.profile().dnssec(), now) {
        CdsAction::Keep(_) => {
            pending.remove(name);
            return Ok(());
        }
        CdsAction::Bootstrap(ds) => {
            let delay = bootstrap
                .map(Config::chrono)
                .unwrap_or(chrono::Duration::MAX);
            match pending.get(name) {
                Some((set, since)) if *set == ds && now - *since >= delay => {
                    pending.remove(name);
                    sum.bootstrapped.push(name.to_string());
                    ds
                }
                Some((set, _)) if *set == ds => return Ok(()),
                _ => {
                    pending.insert(name.to_string(), (ds, now));
                    return Ok(());
                }
            }
        }
        CdsAction::Delete => {
            sum.deleted.push(name.to_string());
            Vec::new()
        }
        CdsAction::Replace(ds) => {
            sum.replaced.push(name.to_string());
            ds
        }
    };
    let n = new.len();
    let app2 = app.clone();
    let owned = name.to_string();
    let (_, rec) = tokio::task::spawn_blocking(move || {
        app2.registry().declare_ds(
            &crate::registry::Actor::Operator,
            &owned,
            new,
            "CDS (RFC 7344/8078)",
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    info!(
        domain = name,
        ds = n,
        state = rec.state.as_str(),
        "DS set changed from CDS"
    );
    app.zone_dirty.notify_one();
    app.domain_changed(name);
    Ok(())
}

/// Scan every `dnssec.cds_scan_interval` until shutdown (nothing when unset).
pub async fn run(app: App) {
    let Some(every) = app.config.dnssec.cds_scan_interval else {
        return;
    };
    let mut scanner = match Verifier::from_config(&app.config) {
        Ok(v) => Scanner::new(v),
        Err(e) => {
            warn!("CDS scanner cannot start: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match scanner.scan_once(&app).await {
            Ok(s) => info!(
                scanned = s.scanned,
                replaced = s.replaced.len(),
                deleted = s.deleted.len(),
                bootstrapped = s.bootstrapped.len(),
                pending = s.pending,
                "CDS scan done"
            ),
            Err(e) => warn!("CDS scan failed: {e}"),
        }
    }
}

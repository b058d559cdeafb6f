//! The CDS scanner (RFC 7344, RFC 8078): reads the CDS RRset from every
//! server of signed, delegated domains and, when the child signalled a
//! change with its current keys ([`crate::checks::dnssec::decide_cds`]),
//! replaces or removes the DS set through [`crate::store::Store::declare_ds`]
//! — so the change is in the history and is tested like any DS change.
//!
//! Runs in `serve` every `dnssec.cds_scan_interval` (off when unset).

use std::net::SocketAddr;

use tracing::{info, warn};

use crate::app::App;
use crate::checks::dnssec::{decide_cds, CdsAction};
use crate::checks::{NsTarget, Verifier};
use crate::config::Config;
use crate::model::DelegationState;

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub scanned: usize,
    pub replaced: Vec<String>,
    pub deleted: Vec<String>,
}

/// Scan every delegated domain with a DS set once.
pub async fn scan_once(app: &App, verifier: &Verifier) -> Result<ScanSummary, String> {
    let mut sum = ScanSummary::default();
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
            scan_domain(app, verifier, name, &mut sum).await?;
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(sum)
}

async fn scan_domain(
    app: &App,
    verifier: &Verifier,
    name: &str,
    sum: &mut ScanSummary,
) -> Result<(), String> {
    let Some(d) = app.store.domain(name).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if d.ds.is_empty() || d.nameservers.is_empty() {
        return Ok(());
    }
    sum.scanned += 1;
    let port = app.config.probe.port;
    let targets: Vec<NsTarget> = d
        .nameservers
        .iter()
        .map(|n| NsTarget {
            name: n.name.clone(),
            addrs: n
                .addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
        })
        .collect();
    let facts = verifier.scan_cds(&d.name, &targets).await;
    let now = app.now();
    let new = match decide_cds(&d.ds, &facts, verifier.profile().dnssec(), now) {
        CdsAction::Keep(_) => return Ok(()),
        CdsAction::Delete => {
            sum.deleted.push(name.to_string());
            Vec::new()
        }
        CdsAction::Replace(ds) => {
            sum.replaced.push(name.to_string());
            ds
        }
    };
    let window = Config::chrono(app.config.delegation.test_window);
    let n = new.len();
    let store = app.store.clone();
    let owned = name.to_string();
    let rec = tokio::task::spawn_blocking(move || {
        store.declare_ds(&owned, new, "CDS (RFC 7344/8078)", now, window)
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
    let verifier = match Verifier::from_config(&app.config) {
        Ok(v) => v,
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
        match scan_once(&app, &verifier).await {
            Ok(s) => info!(
                scanned = s.scanned,
                replaced = s.replaced.len(),
                deleted = s.deleted.len(),
                "CDS scan done"
            ),
            Err(e) => warn!("CDS scan failed: {e}"),
        }
    }
}

//! The CDS scanner (RFC 7344, RFC 8078): reads the CDS and CDNSKEY RRsets
//! from every server of signed, delegated domains and, when the child
//! signalled a change with its current keys
//! ([`crate::checks::dnssec::decide_cds`]), replaces or removes the DS set
//! through the registry service (`declare_ds`) — so the change is in the
//! history and the change feed, and is tested like any DS change.
//!
//! Unsigned delegations are bootstrapped (RFC 8078 §3.3, accept after
//! delay) when `dnssec.cds_bootstrap_delay` is set: a CDS/CDNSKEY set that
//! every server publishes, signed by the zone's keys and under which the
//! zone validates, becomes the DS set once every scan for that long saw it
//! unchanged. The first sighting is kept in the store
//! ([`crate::store::Store::put_cds_sighting`]), so a restart does not
//! restart the delay; any scan that sees something else starts it over.
//!
//! Runs in `serve` every `dnssec.cds_scan_interval` (off when unset).

use std::net::SocketAddr;

use tracing::{info, warn};

use crate::app::App;
use crate::checks::dnssec::{decide_cds, CdsAction};
use crate::checks::{NsTarget, Verifier};
use crate::config::Config;
use crate::model::{CdsSighting, DelegationState};

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
    /// Domains whose CDS/CDNSKEY was published but not acted on, and why.
    pub refused: Vec<(String, String)>,
}

/// The scanner (its bootstrap observations are in the store).
pub struct Scanner {
    verifier: Verifier,
}

impl Scanner {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// Scan every delegated domain once.
    pub async fn scan_once(&mut self, app: &App) -> Result<ScanSummary, String> {
        scan_once(app, &self.verifier).await
    }
}

/// Scan every delegated domain once.
pub async fn scan_once(app: &App, verifier: &Verifier) -> Result<ScanSummary, String> {
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
            scan_domain(app, verifier, name, &mut sum).await?;
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // Candidates no longer delegated start over if they come back.
    let sightings = app.store.cds_sightings().map_err(|e| e.to_string())?;
    for (name, _) in &sightings {
        if !seen.contains(name) {
            app.store
                .put_cds_sighting(name, None)
                .map_err(|e| e.to_string())?;
        }
    }
    sum.pending = sightings.iter().filter(|(n, _)| seen.contains(n)).count();
    Ok(sum)
}

/// Forget a bootstrap sighting (the signal changed or went away).
fn forget(app: &App, name: &str) -> Result<(), String> {
    if app
        .store
        .cds_sighting(name)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        app.store
            .put_cds_sighting(name, None)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
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
    let bootstrap = app.config.dnssec.cds_bootstrap_delay;
    if d.nameservers.is_empty() || (d.ds.is_empty() && bootstrap.is_none()) {
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
    let action = decide_cds(
        &d.ds,
        &facts,
        verifier.profile().dnssec(),
        app.config.dnssec.cdnskey_digest_type,
        now,
    );
    let new = match action {
        CdsAction::Keep(_) => {
            forget(app, name)?;
            return Ok(());
        }
        CdsAction::Refuse(why) => {
            info!(
                domain = name,
                why = why.as_str(),
                "CDS/CDNSKEY not acted on"
            );
            sum.refused.push((name.to_string(), why));
            forget(app, name)?;
            return Ok(());
        }
        CdsAction::Bootstrap { ds, fingerprint } => {
            let delay = bootstrap
                .map(Config::chrono)
                .unwrap_or(chrono::Duration::MAX);
            let prev = app.store.cds_sighting(name).map_err(|e| e.to_string())?;
            let sighting = match prev {
                Some(s) if s.fingerprint == fingerprint && s.ds == ds => {
                    if now - s.first_seen >= delay {
                        app.store
                            .put_cds_sighting(name, None)
                            .map_err(|e| e.to_string())?;
                        sum.bootstrapped.push(name.to_string());
                        None
                    } else {
                        Some(CdsSighting {
                            last_seen: now,
                            ..s
                        })
                    }
                }
                // New, or changed: the delay starts (again) now.
                _ => Some(CdsSighting {
                    fingerprint,
                    first_seen: now,
                    last_seen: now,
                    ds: ds.clone(),
                }),
            };
            match sighting {
                Some(s) => {
                    app.store
                        .put_cds_sighting(name, Some(&s))
                        .map_err(|e| e.to_string())?;
                    return Ok(());
                }
                None => ds,
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
                refused = s.refused.len(),
                "CDS scan done"
            ),
            Err(e) => warn!("CDS scan failed: {e}"),
        }
    }
}

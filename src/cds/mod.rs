//! The CDS scanner (RFC 7344, RFC 8078): reads the CDS and CDNSKEY RRsets
//! from every server of signed, delegated domains and, when the child
//! signalled a change with its current keys
//! ([`decide_cds`]), replaces or removes the DS set
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
//! With `dnssec.authenticated_bootstrap`, such a set is accepted at once
//! when every nameserver's operator publishes it at its RFC 9615 signaling
//! name, validated from `dnssec.trust_anchors`
//! ([`crate::probe::dsboot::SignalResolver`]).
//!
//! Runs in `serve` every `dnssec.cds_scan_interval` (off when unset).

use tracing::{info, warn};

use crate::app::App;
mod decide;
pub use decide::{decide_cds, fingerprint, signal_to_ds, CdsAction, Signal};

use crate::checks::Verifier;
use crate::config::Config;
use crate::model::{CdsSighting, DelegationState};
use crate::probe::dsboot::SignalResolver;

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
    /// Of `bootstrapped`, those authenticated per RFC 9615 (no delay).
    pub authenticated: Vec<String>,
    /// Domains whose CDS/CDNSKEY was published but not acted on, and why.
    pub refused: Vec<(String, String)>,
}

/// The scanner (its bootstrap observations are in the store).
pub struct Scanner {
    verifier: Verifier,
    /// RFC 9615 signal lookups (with `dnssec.authenticated_bootstrap`).
    signals: Option<SignalResolver>,
}

impl Scanner {
    /// A scanner for `config` (fails on an unreadable trust anchor file).
    pub fn new(verifier: Verifier, config: &Config) -> Result<Self, String> {
        Ok(Self {
            verifier,
            signals: signal_resolver(config)?,
        })
    }

    /// Scan every delegated domain once.
    pub async fn scan_once(&mut self, app: &App) -> Result<ScanSummary, String> {
        scan_with(app, &self.verifier, self.signals.as_ref()).await
    }
}

fn signal_resolver(config: &Config) -> Result<Option<SignalResolver>, String> {
    if !config.dnssec.authenticated_bootstrap {
        return Ok(None);
    }
    SignalResolver::new(&config.probe, config.dnssec.trust_anchors.as_deref())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Scan every delegated domain once.
pub async fn scan_once(app: &App, verifier: &Verifier) -> Result<ScanSummary, String> {
    let signals = signal_resolver(&app.config)?;
    scan_with(app, verifier, signals.as_ref()).await
}

async fn scan_with(
    app: &App,
    verifier: &Verifier,
    signals: Option<&SignalResolver>,
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
            scan_domain(app, verifier, signals, name, &mut sum).await?;
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

/// RFC 9615 §4: every nameserver's operator publishes, in its signed zone,
/// the same CDS/CDNSKEY as the child apex (`fingerprint`), validated from
/// the trust anchors. `Err`: why not.
async fn authenticate(
    signals: &SignalResolver,
    d: &crate::model::Domain,
    fingerprint: &str,
) -> Result<(), String> {
    let child = d.name.as_str();
    for ns in &d.nameservers {
        let host = ns.name.as_str();
        // A signal zone under the child cannot be validated before the
        // child is (RFC 9615 §4.1).
        if host == child || host.ends_with(&format!(".{child}")) {
            return Err(format!(
                "nameserver {host} is inside the domain: no authenticated bootstrap (RFC 9615 §4.1)"
            ));
        }
        let seen = signals.signal(child, host).await?;
        if decide::fingerprint(&seen) != fingerprint {
            return Err(format!(
                "the signaling records under {host} differ from the CDS/CDNSKEY at the zone apex"
            ));
        }
    }
    Ok(())
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
    signals: Option<&SignalResolver>,
    name: &str,
    sum: &mut ScanSummary,
) -> Result<(), String> {
    let Some(d) = app.store.domain(name).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let bootstrap = app.config.dnssec.cds_bootstrap_delay;
    if d.nameservers.is_empty() || (d.ds.is_empty() && bootstrap.is_none() && signals.is_none()) {
        return Ok(());
    }
    sum.scanned += 1;
    let targets = verifier.targets(&d.nameservers);
    let facts = verifier.scan_cds(&d.name, &targets).await;
    let now = app.now();
    let action = decide_cds(
        &d.ds,
        &facts,
        verifier.profile().dnssec(),
        app.config.dnssec.cdnskey_digest_type,
        now,
    );
    // Only an unbroken run of the same bootstrap candidate keeps a sighting.
    if !matches!(action, CdsAction::Bootstrap { .. }) {
        forget(app, name)?;
    }
    let new = match action {
        CdsAction::Keep(_) => return Ok(()),
        CdsAction::Refuse(why) => {
            info!(
                domain = name,
                why = why.as_str(),
                "CDS/CDNSKEY not acted on"
            );
            sum.refused.push((name.to_string(), why));
            return Ok(());
        }
        CdsAction::Bootstrap { ds, fingerprint } => {
            if let Some(sig) = signals {
                match authenticate(sig, &d, &fingerprint).await {
                    Ok(()) => {
                        forget(app, name)?;
                        sum.bootstrapped.push(name.to_string());
                        sum.authenticated.push(name.to_string());
                        return declare(app, name, ds, "CDS (RFC 9615 authenticated bootstrap)")
                            .await;
                    }
                    Err(why) => {
                        info!(
                            domain = name,
                            why = why.as_str(),
                            "no authenticated bootstrap"
                        );
                        if bootstrap.is_none() {
                            sum.refused.push((name.to_string(), why));
                            return Ok(());
                        }
                    }
                }
            }
            let Some(delay) = bootstrap.map(Config::chrono) else {
                return Ok(());
            };
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
    declare(app, name, new, "CDS (RFC 7344/8078)").await
}

/// Declare `new` as the DS set through the registry service (history, change
/// feed, tested like any DS change).
async fn declare(
    app: &App,
    name: &str,
    new: Vec<crate::model::DsRecord>,
    source: &'static str,
) -> Result<(), String> {
    let n = new.len();
    let app2 = app.clone();
    let owned = name.to_string();
    let new: Vec<crate::registry::input::DsIn> = new.iter().map(Into::into).collect();
    let (_, rec) = tokio::task::spawn_blocking(move || {
        app2.registry()
            .declare_ds(&crate::registry::Actor::Operator, &owned, new, source)
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
    let mut scanner = match Verifier::from_config(&app.config)
        .map_err(|e| e.to_string())
        .and_then(|v| Scanner::new(v, &app.config))
    {
        Ok(s) => s,
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

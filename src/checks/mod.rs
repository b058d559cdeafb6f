//! The delegation verifier (docs/delegation.md): probe the declared servers
//! ([`crate::probe`]), judge the facts with pure rules ([`rules`]), grade the
//! findings with a policy [`Profile`], and produce a [`CheckReport`].

pub mod catalogue;
pub mod dnssec;
pub mod profile;
pub mod rules;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use crate::config::ProbeConfig;
use crate::model::{CheckReport, DsRecord, Finding, Nameserver, Severity, Timestamp, Verdict};
use crate::names::DomainName;
use crate::probe::{ProbeError, ProbeFacts, Prober, Round};

pub use crate::probe::{NsTarget, RoundKind};
pub use profile::{Profile, ProfileError};

#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// Probes and judges declared nameserver sets. Cheap to clone; Send + Sync.
#[derive(Clone)]
pub struct Verifier {
    prober: Prober,
    profile: Arc<Profile>,
}

impl Verifier {
    pub fn new(cfg: &ProbeConfig, profile: Profile) -> Result<Self, VerifierError> {
        Ok(Self {
            prober: Prober::new(cfg)?,
            profile: Arc::new(profile),
        })
    }

    /// The verifier `serve` runs: `probe.*` and the profile named by
    /// `delegation.profile` (default: the registry's).
    pub fn from_config(cfg: &crate::config::Config) -> Result<Self, VerifierError> {
        let profile = match &cfg.delegation.profile {
            Some(p) => Profile::load(p)?,
            None => Profile::registry_default(),
        };
        Self::new(&cfg.probe, profile)
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Check a declared set as stored (addresses on `probe.port`, 53 but in
    /// tests and the demo).
    pub async fn check(&self, domain: &DomainName, ns: &[Nameserver]) -> CheckReport {
        self.check_with_ds(domain, ns, &[]).await
    }

    /// Check a declared delegation (NS and DS sets) as stored.
    pub async fn check_with_ds(
        &self,
        domain: &DomainName,
        ns: &[Nameserver],
        ds: &[DsRecord],
    ) -> CheckReport {
        self.check_targets_ds(domain, &self.targets(ns), ds).await
    }

    /// A stored set as probe targets: addresses on `probe.port`.
    pub fn targets(&self, ns: &[Nameserver]) -> Vec<NsTarget> {
        ns.iter()
            .map(|n| NsTarget {
                name: n.name.clone(),
                addrs: n
                    .addresses
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, self.prober.port()))
                    .collect(),
            })
            .collect()
    }

    /// Check a declared set whose addresses may carry a port (CLI, tests).
    pub async fn check_targets(&self, domain: &DomainName, targets: &[NsTarget]) -> CheckReport {
        self.check_targets_ds(domain, targets, &[]).await
    }

    /// [`Self::check_targets`] with a DS set: the DNSSEC checks
    /// ([`dnssec`]) run on the addresses that answered.
    pub async fn check_targets_ds(
        &self,
        domain: &DomainName,
        targets: &[NsTarget],
        ds: &[DsRecord],
    ) -> CheckReport {
        self.check_round(domain, targets, ds, &Round::full()).await
    }

    /// A scheduler round of a stored delegation: what it asks depends on
    /// `round.kind` (docs/delegation.md, "What a round asks").
    pub async fn check_stored_round(
        &self,
        domain: &DomainName,
        ns: &[Nameserver],
        ds: &[DsRecord],
        round: &Round,
    ) -> CheckReport {
        self.check_round(domain, &self.targets(ns), ds, round).await
    }

    /// The prober (shared facts and per-address caps live there).
    pub fn prober(&self) -> &Prober {
        &self.prober
    }

    async fn check_round(
        &self,
        domain: &DomainName,
        targets: &[NsTarget],
        ds: &[DsRecord],
        round: &Round,
    ) -> CheckReport {
        let checked_at = Utc::now();
        let start = Instant::now();
        let facts = self.prober.probe_round(domain, targets, round).await;
        let sec = self.prober.probe_dnssec(&facts, !ds.is_empty()).await;
        let mut report = judge(&self.profile, &facts, targets, checked_at);
        dnssec::add_findings(&mut report, &self.profile, ds, &sec, checked_at);
        report.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        metrics::counter!("zonekeeper_checks_total", "verdict" => if report.passed() { "pass" } else { "fail" })
            .increment(1);
        metrics::histogram!("zonekeeper_check_duration_seconds")
            .record(start.elapsed().as_secs_f64());
        report
    }

    /// Whether `addr` answers a query for `qname` at all (a canary).
    pub async fn ping(&self, addr: SocketAddr, qname: &str) -> bool {
        self.prober.ping(addr, qname).await
    }

    /// What the CDS scanner needs of a delegated domain: the DNSSEC facts
    /// with the CDS RRset of every address that answered.
    pub async fn scan_cds(
        &self,
        domain: &DomainName,
        targets: &[NsTarget],
    ) -> crate::probe::dnssec::SecFacts {
        let facts = self.prober.probe(domain, targets).await;
        self.prober.probe_cds(&facts).await
    }

    /// Probe only: the raw facts of one round.
    pub async fn probe(&self, domain: &DomainName, targets: &[NsTarget]) -> ProbeFacts {
        self.prober.probe(domain, targets).await
    }
}

/// Pure: facts → graded report. Verdict = fail iff any finding is an error.
pub fn judge(
    profile: &Profile,
    facts: &ProbeFacts,
    targets: &[NsTarget],
    checked_at: Timestamp,
) -> CheckReport {
    let findings: Vec<Finding> = profile.apply(rules::evaluate(facts, targets));
    let verdict = if findings.iter().any(|f| f.severity == Severity::Error) {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    CheckReport {
        domain: facts.domain.to_string(),
        verdict,
        checked_at,
        duration_ms: u64::try_from(facts.duration.as_millis()).unwrap_or(u64::MAX),
        findings,
        servers: rules::server_reports(facts),
    }
}

//! What the scheduler probes with: the [`Checker`] trait (the probe
//! engine as the scheduler sees it) and the registry's verifier behind it.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::app::App;
use crate::model::{CheckReport, Nameserver};
use crate::names::DomainName;

/// Runs one check of a domain's declared servers (the probe engine).
pub trait Checker: Send + Sync + 'static {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport>;

    /// Whether a canary address answers (any DNS reply) a query for
    /// `qname`. Engines without canary support say yes.
    fn ping<'a>(&'a self, _addr: std::net::SocketAddr, _qname: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }

    /// Check a declared delegation with its DS set (the DNSSEC checks run
    /// when there is one). Engines without DNSSEC check the NS set only.
    fn check_ds<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
        _ds: &'a [crate::model::DsRecord],
    ) -> BoxFuture<'a, CheckReport> {
        self.check(domain, ns)
    }

    /// A scheduler round: `kind` decides what is asked (testing or
    /// monitoring), `now` is the scheduler's clock and `interval` the
    /// domain's probe interval (shared facts no older than it are used).
    /// Engines without shared facts run [`Checker::check_ds`].
    fn check_round<'a>(
        &'a self,
        domain: &'a DomainName,
        (ns, ds): (&'a [Nameserver], &'a [crate::model::DsRecord]),
        _round: crate::probe::Round,
    ) -> BoxFuture<'a, CheckReport> {
        self.check_ds(domain, ns, ds)
    }
}

/// The registry's verifier is the scheduler's [`Checker`].
impl Checker for crate::checks::Verifier {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.check_with_ds(domain, ns, &[]))
    }

    fn check_ds<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
        ds: &'a [crate::model::DsRecord],
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.check_with_ds(domain, ns, ds))
    }

    fn ping<'a>(&'a self, addr: std::net::SocketAddr, qname: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(crate::checks::Verifier::ping(self, addr, qname))
    }

    fn check_round<'a>(
        &'a self,
        domain: &'a DomainName,
        (ns, ds): (&'a [Nameserver], &'a [crate::model::DsRecord]),
        round: crate::probe::Round,
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(async move { self.check_stored_round(domain, ns, ds, &round).await })
    }
}

/// Build the verifier from `probe` and `delegation.profile`.
pub(super) fn build_prober(app: &App) -> Result<Arc<dyn Checker>, String> {
    let v = crate::checks::Verifier::from_config(&app.config).map_err(|e| e.to_string())?;
    Ok(Arc::new(v))
}

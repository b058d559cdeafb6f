//! RFC 9615 authenticated DNSSEC bootstrapping: a DNS operator publishes
//! the child's CDS/CDNSKEY at `_dsboot.<child>._signal.<ns-hostname>` in
//! its own signed zone, for each nameserver hostname. Those records are
//! looked up through the recursive resolvers of `probe.resolvers` and
//! validated here by hickory's DNSSEC validator from `dnssec.trust_anchors`
//! (the IANA root keys built into hickory when unset) — the resolver's AD
//! bit is not trusted.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::config::ResolverOpts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::TokioResolver;

use crate::config::ProbeConfig;

#[derive(Debug, thiserror::Error)]
pub enum DsbootError {
    #[error("dnssec.trust_anchors {path}: {message}")]
    Anchors { path: String, message: String },
    #[error("cannot build the validating resolver: {0}")]
    Resolver(String),
}

/// Read a trust anchor file (DNSKEY records in zone-file form; any owner
/// name, the root's or a lab's).
pub fn load_anchors(path: &Path) -> Result<TrustAnchors, DsbootError> {
    let e = |message: String| DsbootError::Anchors {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|x| e(x.to_string()))?;
    let anchors: TrustAnchors = text.parse().map_err(|x| e(format!("{x}")))?;
    if text.lines().all(|l| !l.contains("DNSKEY")) {
        return Err(e("holds no DNSKEY record".into()));
    }
    Ok(anchors)
}

/// The signaling name of `child` at nameserver `ns` (RFC 9615 §3), or
/// `None` when it is no valid DNS name (e.g. longer than 255 octets).
pub fn signal_name(child: &str, ns: &str) -> Option<Name> {
    let child = child.trim_end_matches('.');
    let ns = ns.trim_end_matches('.');
    let mut n = Name::from_ascii(format!("_dsboot.{child}._signal.{ns}.")).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// A validating stub resolver for signaling records.
pub struct SignalResolver {
    resolver: TokioResolver,
}

impl SignalResolver {
    pub fn new(probe: &ProbeConfig, anchors: Option<&Path>) -> Result<Self, DsbootError> {
        let anchors = match anchors {
            Some(p) => load_anchors(p)?,
            None => TrustAnchors::default(),
        };
        let mut builder = match super::resolver_config(probe) {
            Some(rc) => TokioResolver::builder_with_config(rc, TokioRuntimeProvider::default()),
            None => TokioResolver::builder_tokio().map_err(|e| {
                DsbootError::Resolver(format!(
                    "cannot read the system resolver configuration: {e}"
                ))
            })?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = probe.timeout;
        opts.attempts = 2;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.ndots = 0;
        opts.cache_size = 256;
        opts.validate = true;
        let resolver = builder
            .with_trust_anchor(Arc::new(anchors))
            .build()
            .map_err(|e| DsbootError::Resolver(e.to_string()))?;
        Ok(Self { resolver })
    }

    /// The CDS and CDNSKEY RRsets at `child`'s signaling name under `ns`,
    /// validated, as sorted presentation forms (`CDS …`, `CDNSKEY …`, the
    /// form [`crate::cds::decide_cds`] compares), or why not.
    pub async fn signal(&self, child: &str, ns: &str) -> Result<Vec<String>, String> {
        let name = signal_name(child, ns)
            .ok_or_else(|| format!("_dsboot.{child}._signal.{ns} is not a valid DNS name"))?;
        let mut out = Vec::new();
        for t in [RecordType::CDS, RecordType::CDNSKEY] {
            match self.resolver.lookup(name.clone(), t).await {
                Ok(l) => {
                    for r in l.answers() {
                        if r.record_type() != t || !r.name.eq_ignore_root(&name) {
                            continue;
                        }
                        if r.proof != Proof::Secure {
                            return Err(format!(
                                "the {t} RRset at {name} does not validate ({:?})",
                                r.proof
                            ));
                        }
                        out.push(format!("{t} {}", r.data));
                    }
                }
                // No such RRset (proven or not): only what is published
                // and validates becomes the DS set, so an absent (even a
                // forged absent) RRset cannot add anything.
                Err(e) if e.is_no_records_found() => {}
                Err(NetError::Dns(DnsError::Nsec { .. })) => {}
                Err(NetError::Dns(DnsError::DnssecBogus)) => {
                    return Err(format!(
                        "the {t} RRset at {name} does not validate from the trust anchors (bogus)"
                    ))
                }
                Err(e) => return Err(format!("{t} at {name}: {e}")),
            }
        }
        if out.is_empty() {
            return Err(format!("no CDS or CDNSKEY at {name}"));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

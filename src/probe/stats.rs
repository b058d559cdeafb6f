//! What the prober records about itself (the exporter in [`crate::metrics`]
//! publishes it): queries by result and transport, their latency, and the
//! load per server address.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

pub const PROBE_DURATION: &str = "zonekeeper_probe_duration_seconds";
/// Probe queries per server address: `address` is the address for the
/// first this many addresses probed since start, `other` for the rest, so
/// the series stay bounded however many hosters the registry probes.
pub const MAX_PROBED_ADDRESSES: usize = 256;

/// The `address` label of each address seen, `other` past the first
/// [`MAX_PROBED_ADDRESSES`]. Read on every query, written once per address:
/// a read lock, not a mutex every query takes in turn.
fn address_label(addr: std::net::SocketAddr) -> metrics::SharedString {
    type Labels = RwLock<HashMap<std::net::SocketAddr, Arc<str>>>;
    static SEEN: OnceLock<Labels> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(l) = seen.read().unwrap_or_else(|e| e.into_inner()).get(&addr) {
        return l.clone().into();
    }
    let mut w = seen.write().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = w.get(&addr) {
        return l.clone().into();
    }
    if w.len() < MAX_PROBED_ADDRESSES {
        let l: Arc<str> = super::answer::show_addr(addr).into();
        w.insert(addr, l.clone());
        l.into()
    } else {
        metrics::SharedString::const_str("other")
    }
}

/// Count one probe query to `addr` and its latency: the totals by result
/// and transport, and the per-address load (see [`MAX_PROBED_ADDRESSES`]).
/// `result` is `answer`, `timeout`, `io` or `malformed`.
pub fn probe_sent(
    addr: std::net::SocketAddr,
    transport: &'static str,
    result: &'static str,
    took: Duration,
) {
    let label = address_label(addr);
    metrics::counter!("zonekeeper_probes_total", "result" => result, "transport" => transport)
        .increment(1);
    metrics::counter!("zonekeeper_probe_address_queries_total", "address" => label, "result" => result)
        .increment(1);
    metrics::histogram!(PROBE_DURATION).record(took.as_secs_f64());
}

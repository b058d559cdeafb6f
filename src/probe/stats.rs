//! What the prober records about itself (the exporter in [`crate::metrics`]
//! publishes it): queries by result and transport, their latency, and the
//! load per server address.

use std::sync::OnceLock;
use std::time::Duration;

pub const PROBE_DURATION: &str = "zonekeeper_probe_duration_seconds";
/// Probe queries per server address: `address` is the address for the
/// first this many addresses probed since start, `other` for the rest, so
/// the series stay bounded however many hosters the registry probes.
pub const MAX_PROBED_ADDRESSES: usize = 256;

/// Count one probe query to `addr` and its latency: the totals by result
/// and transport, and the per-address load (see [`MAX_PROBED_ADDRESSES`]).
/// `result` is `answer`, `timeout`, `io` or `malformed`.
pub fn probe_sent(
    addr: std::net::SocketAddr,
    transport: &'static str,
    result: &'static str,
    took: Duration,
) {
    static SEEN: OnceLock<std::sync::Mutex<std::collections::HashSet<std::net::SocketAddr>>> =
        OnceLock::new();
    let label = {
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if seen.contains(&addr) || seen.len() < MAX_PROBED_ADDRESSES {
            seen.insert(addr);
            super::show_addr(addr)
        } else {
            "other".to_string()
        }
    };
    metrics::counter!("zonekeeper_probes_total", "result" => result, "transport" => transport)
        .increment(1);
    metrics::counter!("zonekeeper_probe_address_queries_total", "address" => label, "result" => result)
        .increment(1);
    metrics::histogram!(PROBE_DURATION).record(took.as_secs_f64());
}

//! `/metrics` in Prometheus text format.
//!
//! Every module records through the `metrics` facade; this module installs
//! the Prometheus recorder once per process and renders it on scrape. Store
//! figures (domains by state, store size) are gauges refreshed at scrape
//! time, so they are exact and cost nothing between scrapes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::store::Store;

pub use crate::probe::stats::{MAX_PROBED_ADDRESSES, PROBE_DURATION};
pub const CHECK_DURATION: &str = "zonekeeper_check_duration_seconds";
pub const WHOIS_DURATION: &str = "zonekeeper_whois_duration_seconds";
pub const RDAP_DURATION: &str = "zonekeeper_rdap_duration_seconds";
pub const EPP_DURATION: &str = "zonekeeper_epp_command_duration_seconds";
/// Public answers: a cached one takes tens of microseconds, a store read
/// under a millisecond, a cold read of a large store or a busy blocking
/// pool tens of milliseconds; past a second something is wrong.
const ANSWER_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];
/// EPP commands: queries like public answers, transforms wait for a
/// durable commit (an fsync, or a PostgreSQL round trip).
const EPP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for probe latency: loopback answers in well under a millisecond,
/// far servers in hundreds, timeouts at seconds.
const PROBE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];
/// Whole checks: several probes per server, retries up to the timeout.
const CHECK_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
/// Scrapes wait at most this long for the store figures.
const STORE_READ_TIMEOUT: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Our recorder when another one holds the global slot.
static LOCAL: OnceLock<PrometheusRecorder> = OnceLock::new();

/// Install the process-wide recorder (once) and return its handle. If some
/// other recorder was installed first, metrics still render, just without
/// what other modules record.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = || {
                let b = PrometheusBuilder::new();
                b.set_buckets_for_metric(Matcher::Full(PROBE_DURATION.into()), PROBE_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full(CHECK_DURATION.into()),
                            CHECK_BUCKETS,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full(WHOIS_DURATION.into()),
                            ANSWER_BUCKETS,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full(RDAP_DURATION.into()),
                            ANSWER_BUCKETS,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(Matcher::Full(EPP_DURATION.into()), EPP_BUCKETS)
                    })
                    .unwrap_or_else(|_| PrometheusBuilder::new())
            };
            let handle = match builder().install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(
                        "metrics recorder not installed ({e}); /metrics shows only store figures"
                    );
                    LOCAL.get_or_init(|| builder().build_recorder()).handle()
                }
            };
            describe();
            handle
        })
        .clone()
}

/// HELP lines for every metric the modules emit.
fn describe() {
    describe_gauge!(
        "zonekeeper_domains",
        "Registered domains by delegation state"
    );
    describe_gauge!(
        "zonekeeper_store_bytes",
        Unit::Bytes,
        "Size of the store file"
    );
    describe_gauge!("zonekeeper_registrars", "Registrars in the store");
    describe_gauge!(
        "zonekeeper_store_healthy",
        "1 while the store can commit, 0 while its writes fail (disk full, I/O error, database away)"
    );
    describe_counter!(
        "zonekeeper_store_errors_total",
        "Storage errors of the redb store by kind: full (no space), io (other I/O), reopen (a failed reopen)"
    );
    describe_gauge!(
        "zonekeeper_store_free_bytes",
        Unit::Bytes,
        "Free bytes on the store file's volume (redb)"
    );
    describe_counter!(
        "zonekeeper_epp_commands_total",
        "EPP commands by command (domain:create, poll, ...) and result code"
    );
    describe_gauge!("zonekeeper_epp_sessions", "EPP sessions logged in now");
    describe_counter!(
        "zonekeeper_epp_tls_failures_total",
        "EPP connections whose TLS handshake (client certificate) failed"
    );
    describe_gauge!("zonekeeper_contacts", "Contacts in the store");
    describe_gauge!("zonekeeper_hosts", "Nameserver hosts in the store");
    describe_counter!(
        "zonekeeper_whois_queries_total",
        "Port-43 WHOIS queries by result"
    );
    describe_counter!(
        "zonekeeper_rdap_requests_total",
        "RDAP requests by object kind and HTTP status"
    );
    describe_counter!(
        "zonekeeper_api_requests_total",
        "Registrar API requests by HTTP status"
    );
    describe_counter!(
        "zonekeeper_rate_limited_total",
        "Requests refused by a rate limit, by service"
    );
    describe_counter!(
        "zonekeeper_probes_total",
        "DNS probes sent to declared nameservers, by result and transport"
    );
    describe_counter!(
        "zonekeeper_probe_address_queries_total",
        "DNS probe queries by server address (the first 256 addresses probed; the rest as other) and result"
    );
    describe_histogram!(
        WHOIS_DURATION,
        Unit::Seconds,
        "Time to answer a WHOIS query, from the query line read to the answer ready"
    );
    describe_histogram!(
        RDAP_DURATION,
        Unit::Seconds,
        "Time to answer an RDAP request, by object kind"
    );
    describe_histogram!(
        EPP_DURATION,
        Unit::Seconds,
        "Time to process an EPP command (a transform includes its durable commit), by command"
    );
    describe_histogram!(
        PROBE_DURATION,
        Unit::Seconds,
        "Latency of DNS probes to declared nameservers"
    );
    describe_counter!(
        "zonekeeper_checks_total",
        "Readiness checks (CLI, API, scheduler rounds) by verdict"
    );
    describe_histogram!(
        CHECK_DURATION,
        Unit::Seconds,
        "Duration of whole readiness checks"
    );
    describe_counter!(
        "zonekeeper_http_connections_refused_total",
        "HTTP connections closed by a limit: over http.max_connections (busy), request headers not sent within http.header_read_timeout (header_timeout; idle keep-alive connections included) or a client that stopped reading for http.send_timeout (send_timeout)"
    );
    describe_counter!(
        "zonekeeper_rounds_total",
        "Delegation test and monitoring rounds by result"
    );
}

#[derive(Clone)]
struct MetricsState {
    /// The only part of the process `/metrics` reads (its gauges).
    store: Arc<dyn Store>,
    handle: PrometheusHandle,
}

pub fn router(store: Arc<dyn Store>) -> Router {
    let handle = install();
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(MetricsState { store, handle })
}

/// Refresh the store gauges. Errors leave the previous values in place.
fn refresh_store_gauges(store: &dyn Store) -> Result<(), crate::store::StoreError> {
    let s = store.stats()?;
    match LOCAL.get() {
        Some(r) => metrics::with_local_recorder(r, || set_store_gauges(&s)),
        None => set_store_gauges(&s),
    }
    Ok(())
}

fn set_store_gauges(s: &crate::store::StoreStats) {
    for (state, n) in &s.by_state {
        gauge!("zonekeeper_domains", "state" => state.clone()).set(*n as f64);
    }
    gauge!("zonekeeper_store_bytes").set(s.file_bytes as f64);
    gauge!("zonekeeper_registrars").set(s.registrars as f64);
    gauge!("zonekeeper_contacts").set(s.contacts as f64);
    gauge!("zonekeeper_hosts").set(s.hosts as f64);
}

async fn scrape(State(s): State<MetricsState>) -> Response {
    let store = s.store.clone();
    let read = tokio::task::spawn_blocking(move || refresh_store_gauges(store.as_ref()));
    match tokio::time::timeout(STORE_READ_TIMEOUT, read).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("metrics: store figures not refreshed: {e}"),
        _ => tracing::warn!("metrics: store figures not refreshed in time"),
    }
    s.handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        s.handle.render(),
    )
        .into_response()
}

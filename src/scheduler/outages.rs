//! The canary watch: feeds the outage detector on its own beat while the
//! scheduler runs (docs/delegation.md).

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

use super::checker::Checker;

/// Look at the canaries every quarter of `probe.outage_window` (1–30 s)
/// and tell the outage detector; the statistical detector is refreshed
/// on the same beat so old failures age out.
pub(super) async fn watch_outages(app: App, prober: Arc<dyn Checker>) {
    let canaries = app.config.probe.canaries.clone();
    let beat =
        (app.config.probe.outage_window / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let qname = app
        .config
        .zones
        .first()
        .cloned()
        .unwrap_or_else(|| ".".into());
    loop {
        let now = app.now();
        if canaries.is_empty() {
            app.outage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .refresh(now);
        } else {
            let answers =
                futures::future::join_all(canaries.iter().map(|a| prober.ping(*a, &qname))).await;
            let answered = answers.iter().filter(|a| **a).count();
            metrics::gauge!("zonekeeper_canaries_answering").set(answered as f64);
            app.outage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .canaries_seen(app.now(), answered, canaries.len());
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => break,
            _ = tokio::time::sleep(beat) => {}
        }
    }
}

//! The HTTP listener: RDAP under `/rdap/`, the registrar API under
//! `/api/v1/`, `/metrics`, `/healthz`, `/readyz` and the dashboard at `/`.
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::{routing::get, Router};
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

/// `/readyz` waits at most this long for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router(app: App) -> Router {
    let max_body = app.config.http.max_body_bytes;
    let timeout = app.config.http.request_timeout;
    let rdap = crate::rdap::router(app.clone());
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz).with_state(app.clone()))
        .nest("/rdap", rdap.clone())
        // `nest` leaves the base URL with its slash unrouted (a bare 404);
        // RDAP answers it like `/rdap`.
        .route_service("/rdap/", rdap.into_service())
        .merge(crate::api::router(app.clone()))
        .merge(crate::dashboard::router(app.clone()))
        .merge(crate::metrics::router(app))
        // Body extractors stop reading at the limit (the API then answers
        // 413 with a problem document); nothing else reads bodies.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
}

/// Ready when the store answers a read.
async fn readyz(State(app): State<App>) -> (StatusCode, &'static str) {
    let read = tokio::task::spawn_blocking(move || app.store.last_update());
    match tokio::time::timeout(READY_TIMEOUT, read).await {
        Ok(Ok(Ok(_))) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store not readable\n"),
    }
}

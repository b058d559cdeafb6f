//! The HTTP listener: RDAP under `/rdap/`, the registrar API under
//! `/api/v1/`, `/metrics`, `/healthz`, `/readyz` and the dashboard at `/`.
use axum::{routing::get, Router};

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .nest("/rdap", crate::rdap::router(app.clone()))
        .merge(crate::api::router(app.clone()))
        .merge(crate::dashboard::router(app.clone()))
        .merge(crate::metrics::router(app))
}

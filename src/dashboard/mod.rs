//! The operator dashboard at `/`: server-rendered HTML, no scripts beyond a
//! reload timer, no external resources.
//!
//! The dashboard shares the HTTP listener with RDAP, so it shows only what
//! is public or operational: registration data comes from
//! [`crate::public`], probe results and delegation progress from the
//! delegation record. Hold reasons, auth codes and contact details that are
//! not disclosed never appear.
//!
//! Aggregates over many domains (testing now, failures by check) read a
//! bounded sample per state, so a page stays cheap with a million domains;
//! the page says when it is a sample.

use axum::routing::get;
use axum::Router;

pub mod chart;
mod domain_page;
pub mod html;
mod overview;
mod shell;

use domain_page::{domain_page, find_domain};
use overview::overview;
pub use overview::SAMPLE_PER_STATE;
pub use shell::Deps;

pub fn router(deps: impl Into<Deps>) -> Router {
    let deps: Deps = deps.into();
    Router::new()
        .route("/", get(overview))
        .route("/domain", get(find_domain))
        .route("/domains/{name}", get(domain_page))
        .with_state(deps)
}

//! dashboard (placeholder while the API builds).
use axum::Router;

use crate::app::App;

pub fn router(_app: App) -> Router {
    Router::new()
}

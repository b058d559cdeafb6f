//! `GET /api/v1/webhook`: the caller's webhook and how its deliveries go
//! (docs/api.md, "Webhooks"). The secret is never shown.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::auth::Caller;
use super::problem::Problem;
use super::state::{blocking, ApiState};
use crate::model::Timestamp;
use crate::registry::input::PENDING_COUNT_MAX;

#[derive(Debug, Serialize)]
pub struct WebhookOut {
    /// Whether the registrar has a webhook; the fields below are null
    /// (or 0) when not.
    pub configured: bool,
    pub url: Option<String>,
    /// The feed cursor of the last event delivered (or given up).
    pub delivered_cursor: Option<String>,
    pub delivered_at: Option<Timestamp>,
    /// Events after the cursor not yet delivered (counted up to 10000).
    pub pending: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    /// Events given up after `webhook.give_up_after` of failures.
    pub given_up: u64,
}

pub async fn get_webhook(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<WebhookOut>, Problem> {
    let app = s.app.clone();
    blocking(move || {
        let hook = app.store.webhook(&caller.handle)?;
        let state = app.store.webhook_state(&caller.handle)?;
        let Some(hook) = hook else {
            return Ok(Json(WebhookOut {
                configured: false,
                url: None,
                delivered_cursor: None,
                delivered_at: None,
                pending: 0,
                last_error: None,
                last_error_at: None,
                consecutive_failures: 0,
                given_up: 0,
            }));
        };
        let state = state.unwrap_or_default();
        let pending = app
            .store
            .feed(&caller.handle, state.delivered, PENDING_COUNT_MAX)?
            .len() as u64;
        Ok(Json(WebhookOut {
            configured: true,
            url: Some(hook.url),
            delivered_cursor: Some(state.delivered.to_string()),
            delivered_at: state.delivered_at,
            pending,
            last_error: state.last_error,
            last_error_at: state.last_error_at,
            consecutive_failures: state.failures,
            given_up: state.given_up,
        }))
    })
    .await
}

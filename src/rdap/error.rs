//! RDAP error responses (RFC 9083 §6) and the JSON body writer.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::view::{self, CONFORMANCE};
use crate::store::StoreError;

// ---- errors -------------------------------------------------------------

/// An RDAP error response (RFC 9083 §6).
#[derive(Debug)]
pub struct RdapError {
    pub(super) status: StatusCode,
    pub(super) description: String,
    pub(super) retry_after: Option<u64>,
    /// The store could not be read (a storage condition): the last answer
    /// kept may be served instead.
    pub(super) storage: bool,
}

impl RdapError {
    pub(super) fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
            retry_after: None,
            storage: false,
        }
    }
    pub(super) fn bad(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, d)
    }
    pub(super) fn not_found(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, d)
    }
    pub(super) fn unprocessable(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, d)
    }
    pub(super) fn unsupported(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, d)
    }
}

/// A store that cannot be read now (an I/O error being recovered from, a
/// database restarting) is a temporary condition: 503 with `Retry-After`,
/// not a 500 (cached answers are still served before the store is read).
impl From<StoreError> for RdapError {
    fn from(e: StoreError) -> Self {
        let storage = e.storage().is_some();
        if storage {
            tracing::warn!("RDAP store read failed: {e}");
        } else {
            tracing::error!("RDAP store read failed: {e}");
        }
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The registry database could not be read; try again later.",
        );
        r.retry_after = Some(u64::from(crate::store::STORAGE_RETRY_AFTER));
        r.storage = storage;
        r
    }
}

impl IntoResponse for RdapError {
    fn into_response(self) -> Response {
        let body = view::ErrorObject {
            rdap_conformance: CONFORMANCE,
            error_code: self.status.as_u16(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            description: vec![self.description],
        };
        let mut r = (self.status, rdap_json(&body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

pub(super) type Res = Result<Response, RdapError>;

/// Serialise as the response body (content type is set by the edge
/// middleware in `rdap`).
pub(super) fn rdap_json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => b.into_response(),
        // Our own types always serialise; keep a well-formed error anyway.
        Err(e) => {
            tracing::error!("RDAP serialisation failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "{\"errorCode\":500}").into_response()
        }
    }
}

pub(super) async fn unsupported(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed().await;
    }
    RdapError::unsupported(
        "This server supports domain, nameserver, entity and help lookups and \
         domains, nameservers and entities searches.",
    )
    .into_response()
}

pub(super) async fn method_not_allowed() -> Response {
    let mut r = RdapError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "RDAP is read-only: use GET or HEAD.",
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

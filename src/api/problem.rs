//! RFC 7807 problem documents (`application/problem+json`), the only error
//! shape the registrar API returns.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

pub use crate::store::STORAGE_RETRY_AFTER;

/// One bad field of a request body (a 422's `errors` member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path in the request body, e.g. `nameservers[1].addresses`.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URN naming the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The registry rule that refused the request (e.g. `hold`,
    /// `transfer-lock`, `auth-code`); also the last part of `type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// Seconds to wait (429); also sent as `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &'static str) -> Self {
        Self {
            kind: format!("urn:zonekeeper:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            rule: None,
            retry_after: None,
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub fn errors(mut self, e: Vec<FieldError>) -> Self {
        self.errors = e;
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    // ---- the problems the API uses ------------------------------------

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").detail(detail)
    }
    pub fn forbidden(name: &str) -> Self {
        // Named like every refusal, whether the edge or the registry
        // checked the sponsor first.
        let mut p = Self::new(StatusCode::FORBIDDEN, "forbidden", "Not your domain").detail(
            format!(
                "{name} is sponsored by another registrar; a registrar reads and changes only its own domains"
            ),
        );
        p.rule = Some("forbidden");
        p
    }
    pub fn no_such_domain(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "No such domain")
            .detail(format!("{name} is not registered"))
    }
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(format!("no API resource at {path}"))
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
        .detail("see /api/v1/openapi.json for the methods each path accepts")
    }
    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request").detail(detail)
    }
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Request failed validation",
        )
        .detail(detail)
        .errors(errors)
    }
    pub fn conflict(slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title).detail(detail)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
        )
        .detail(format!("the limit is {limit} bytes"))
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail("send the body as application/json")
    }
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        )
        .detail(format!("retry in {secs} s"));
        p.retry_after = Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        p
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
        .detail(detail)
    }
    /// A write the store could not commit (nothing was changed): 507
    /// `storage-full` while its volume is full, 503 `storage-unavailable`
    /// while it cannot be written; both say when to retry.
    pub fn storage(h: crate::store::Health) -> Self {
        use crate::store::Health;
        let (status, title, detail) = match h {
            Health::Full => (
                StatusCode::INSUFFICIENT_STORAGE,
                "Registry storage full",
                "the registry's store is full and read-only; nothing was changed; retry later",
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Registry storage unavailable",
                "the registry's store cannot be written right now; nothing was changed; retry later",
            ),
        };
        let mut p = Self::new(status, h.slug(), title).detail(detail);
        p.retry_after = Some(STORAGE_RETRY_AFTER);
        p
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
        )
        .detail(detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"zonekeeper\""),
            );
        }
        res
    }
}

impl From<crate::registry::RegistryError> for Problem {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::RegistryError as E;
        let rule = e.rule();
        let mut p = match e {
            E::NotFound(n) => Problem::no_such_domain(&n),
            E::Forbidden(n) => Problem::forbidden(&n),
            E::NotAllowed(m) => {
                Problem::new(StatusCode::FORBIDDEN, "not-allowed", "Not allowed").detail(m)
            }
            E::Refused { rule, detail } => {
                // The status comes from the rule's one mapping.
                let status =
                    StatusCode::from_u16(rule.http_status()).unwrap_or(StatusCode::CONFLICT);
                Problem::new(status, rule.id(), "Refused by a registry rule").detail(detail)
            }
            E::Invalid(v) => Problem::invalid(
                "the request was refused; nothing was changed",
                v.into_iter()
                    .map(|r| FieldError {
                        field: r.field,
                        reason: r.reason,
                    })
                    .collect(),
            ),
            E::Store(s) => return s.into(),
        };
        p.rule = Some(rule);
        p
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match e {
            E::NoSuchDomain(n) => Problem::no_such_domain(&n),
            E::Rejected(v) => Problem::conflict(
                "state",
                "Not possible in the domain's current state",
                v.iter()
                    .map(|r| r.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => match other.storage() {
                Some(h) => Problem::storage(h),
                None => {
                    tracing::error!("store error in API: {other}");
                    Problem::internal("the registry store failed; try again later")
                }
            },
        }
    }
}

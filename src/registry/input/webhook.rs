//! A webhook a registrar sets: where to, and its secret.

/// Webhook events counted for the pending figure at most (a count, not
/// a scan): the delivery task and the registrar API both show it.
pub const PENDING_COUNT_MAX: usize = 10_000;

/// The shortest webhook secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// Validate a webhook: an `https://` URL (`http://` only to a loopback
/// address: tests, the demo), no credentials in it, and a secret of
/// [`MIN_SECRET_LEN`] to 256 printable ASCII characters. `Err((field,
/// reason))`.
pub fn webhook(url: &str, secret: &str) -> Result<crate::model::Webhook, (&'static str, String)> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ("webhook.url", format!("not a URL: {e}")))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(("webhook.url", "must name a host".to_string()))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err((
            "webhook.url",
            "must not carry credentials (the secret signs instead)".into(),
        ));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback_host(host) => {}
        Some("http") => {
            return Err((
                "webhook.url",
                "must be https:// (http:// only to a loopback address)".into(),
            ))
        }
        _ => {
            return Err((
                "webhook.url",
                "must be an https:// URL (http:// only to a loopback address)".into(),
            ))
        }
    }
    if secret.len() < MIN_SECRET_LEN
        || secret.len() > 256
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err((
            "webhook.secret",
            format!("must be {MIN_SECRET_LEN}–256 printable ASCII characters"),
        ));
    }
    Ok(crate::model::Webhook {
        url: url.to_string(),
        secret: secret.to_string(),
    })
}

/// `host` (from a URI: IPv6 in brackets) is a loopback address literal or
/// `localhost`.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

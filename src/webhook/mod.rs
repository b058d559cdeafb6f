//! Registrar webhooks (docs/api.md, "Webhooks"): every event of a
//! registrar's change feed POSTed to its URL, signed, in feed order, at
//! least once. [`check`](fn@check) (a rule of the registry's inputs) is what a
//! webhook must pass (import, operator command); [`deliver`] runs the
//! delivery workers. The feed stays the
//! source of truth: the worker reads it from the delivered cursor.

pub mod deliver;

pub use crate::registry::input::{webhook as check, MIN_SECRET_LEN};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Zonekeeper-Signature";
/// The header carrying the event's feed cursor.
pub const EVENT_ID_HEADER: &str = "X-Zonekeeper-Event-Id";

/// The `X-Zonekeeper-Signature` value of `body` under `secret`:
/// `sha256=<hex HMAC-SHA256>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "0123456789abcdef";

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        assert!(check("https://hooks.example.net/zk", S).is_ok());
        assert!(check("http://127.0.0.1:8080/hook", S).is_ok());
        assert!(check("http://[::1]:8080/hook", S).is_ok());
        assert!(check("http://localhost/hook", S).is_ok());
        assert_eq!(
            check("http://hooks.example.net/", S).unwrap_err().0,
            "webhook.url"
        );
        assert_eq!(check("http://192.0.2.1/", S).unwrap_err().0, "webhook.url");
        assert_eq!(check("ftp://127.0.0.1/", S).unwrap_err().0, "webhook.url");
        assert_eq!(check("hooks.example.net", S).unwrap_err().0, "webhook.url");
        assert_eq!(
            check("https://u:p@example.net/", S).unwrap_err().0,
            "webhook.url"
        );
        assert_eq!(
            check("https://example.net/", "short").unwrap_err().0,
            "webhook.secret"
        );
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Auth codes: what a registrar may set, and counting wrong ones.
//!
//! A domain takes at most `lifecycle.auth_code_max_failures` wrong codes
//! within `lifecycle.auth_code_lifetime` (transfer requests and transfer
//! queries of other registrars alike); then it refuses every code, the
//! right one too, until its sponsor sets a new one, and the sponsor's feed
//! gets one event naming the attempts. The count lives in the store beside
//! the domain and is read and written in the caller's write transaction,
//! so neither a restart nor two concurrent guesses can reset it.

use sha2::{Digest, Sha256};

use super::error::{invalid, RegistryError, Result};
use super::rule::Rule;
use super::service::Registry;
use crate::model::{AuthAttempt, AuthFailures, Domain, Timestamp};
use crate::store::Txn;

/// Check an auth code a registrar chose (create, update): the text policy
/// and at least `min_len` characters.
pub(super) fn check_auth_code(a: &str, min_len: usize) -> Result<()> {
    if let Err(e) = crate::text::check_line("auth_info", a, crate::text::MAX_TEXT) {
        return Err(invalid("auth_info", e.to_string()));
    }
    if a.trim().chars().count() < min_len {
        return Err(invalid(
            "auth_info",
            format!("must be at least {min_len} characters"),
        ));
    }
    Ok(())
}

/// Fingerprint of the registration and the code that failures count
/// against: a new code (or registration of the name) starts afresh.
fn code_tag(d: &Domain) -> String {
    let mut h = Sha256::new();
    h.update(d.created.to_rfc3339().as_bytes());
    h.update([0]);
    h.update(d.auth_info.as_deref().unwrap_or("").as_bytes());
    let out = h.finalize();
    out.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Registry<'_> {
    /// Registrar `who` presents `code` for `d` inside `txn`. `Ok(Ok(()))`:
    /// the code is right and usable. `Ok(Err(refusal))`: refused, and the
    /// count was written to `txn`, which the caller commits before it
    /// returns the refusal. `Err`: the store failed.
    pub(super) fn present_auth_code(
        &self,
        txn: &mut dyn Txn,
        d: &Domain,
        who: &str,
        code: &str,
        now: Timestamp,
    ) -> Result<Result<()>> {
        let name = d.name.as_str();
        let tag = code_tag(d);
        let mut f = txn
            .auth_failures(name)?
            .filter(|f| f.code_tag == tag)
            .unwrap_or_else(|| AuthFailures {
                code_tag: tag,
                ..Default::default()
            });
        if f.locked.is_some() {
            return Ok(Err(locked(name)));
        }
        let ok = match (&d.auth_info, d.registration.auth_info_expires) {
            (Some(c), exp) => ct_eq(c, code) && exp.is_none_or(|e| now < e),
            (None, _) => false,
        };
        if ok {
            return Ok(Ok(()));
        }
        let window = self.dur(self.lc().auth_code_lifetime);
        f.attempts.retain(|a| a.at + window > now);
        f.attempts.push(AuthAttempt {
            at: now,
            registrar: who.to_string(),
        });
        let max = self.lc().auth_code_max_failures.max(1) as usize;
        if f.attempts.len() >= max {
            f.locked = Some(now);
            self.event(txn, d, now, "registry", &lock_reason(&f.attempts), &[])?;
        }
        txn.put_auth_failures(name, Some(&f))?;
        Ok(Err(RegistryError::refused(
            Rule::AuthCode,
            "the auth code is wrong or has expired",
        )))
    }
}

fn locked(name: &str) -> RegistryError {
    RegistryError::refused(
        Rule::AuthCodeLocked,
        format!("{name} refuses auth codes after too many wrong ones, until its sponsor sets a new code"),
    )
}

/// The sponsor's feed event: how many wrong codes, by whom, when. (The
/// codes tried are not named: a typo of the right one would leak it.)
fn lock_reason(attempts: &[AuthAttempt]) -> String {
    let list: Vec<String> = attempts
        .iter()
        .map(|a| {
            format!(
                "registrar:{} at {}",
                a.registrar,
                a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .collect();
    format!(
        "{AUTH_LOCK_PREFIX}{} wrong codes ({}); every code is refused until the sponsor sets a new one",
        attempts.len(),
        list.join(", ")
    )
}

/// How the lock event's reason starts.
const AUTH_LOCK_PREFIX: &str = "auth code locked after ";

/// Compare secrets in time independent of where they differ.
fn ct_eq(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

//! The handle rule (registrars, contacts, resellers), said once.

use crate::text;

/// The handle rule, said once: what [`valid_handle`] accepts.
pub const HANDLE_RULE: &str = "1–64 letters, digits, '-' or '_'";

/// The refusal of a handle field that breaks [`HANDLE_RULE`].
pub fn handle_must() -> String {
    format!("must be {HANDLE_RULE}")
}

/// The refusal of a reference `h` that is not a handle (quoted escaped, so
/// nothing but handle characters reaches a message unescaped).
pub fn not_a_handle(h: &str) -> String {
    format!("'{}' is not a handle ({HANDLE_RULE})", text::escape(h))
}

/// A registrar, contact or reseller handle.
pub fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

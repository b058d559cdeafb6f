//! A registrar's webhook, set or cleared by the operator.

use super::actor::Actor;
use super::error::{RegistryError, Result};
use super::service::Registry;
use crate::store::RecordError;

impl Registry<'_> {
    /// Set (`Some((url, secret))`) or clear `handle`'s webhook (operator
    /// only; [`super::input::webhook()`] applies). Delivery of a newly set
    /// webhook starts after the feed's newest event; a changed URL or
    /// secret keeps the delivered cursor.
    pub fn set_webhook(
        &self,
        actor: &Actor,
        handle: &str,
        hook: Option<(&str, &str)>,
    ) -> Result<()> {
        Self::operator_only(actor, "set a registrar's webhook")?;
        let hook = match hook {
            Some((url, secret)) => Some(super::input::webhook(url, secret).map_err(
                |(field, reason)| {
                    RegistryError::Invalid(vec![RecordError {
                        section: "registrars",
                        index: 0,
                        field: field.to_string(),
                        reason,
                    }])
                },
            )?),
            None => None,
        };
        let now = self.now();
        let mut txn = self.store.begin()?;
        if txn.registrar(handle)?.is_none() {
            return Err(RegistryError::NotAllowed(format!(
                "unknown registrar {handle}"
            )));
        }
        txn.put_webhook(handle, hook.as_ref())?;
        txn.commit(now)?;
        Ok(())
    }
}

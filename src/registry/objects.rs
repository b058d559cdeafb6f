//! Registry operations that EPP (RFC 5730–5733) needs beyond the REST API:
//! contact objects with a sponsoring registrar, a registrar-chosen auth
//! code, the registrar's message-queue cursor and the state of a pending
//! registrar change. Same rules for every edge: they live here, once.

use super::actor::Actor;
use super::error::{RegistryError, Result};
use super::input::ContactIn;
use super::rule::Rule;
use super::service::Registry;
use super::transfer::TransferView;
use crate::lifecycle::{self, Operation};
use crate::model::{Contact, Domain, Registrar};

/// The state of a registrar change as both registrars may ask for it
/// (EPP `<transfer op="query">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferState {
    pub domain: String,
    /// The sponsoring registrar now.
    pub sponsor: String,
    /// The pending request, if any.
    pub pending: Option<TransferView>,
}

impl Registry<'_> {
    fn registrar_of(actor: &Actor, what: &str) -> Result<String> {
        match actor {
            Actor::Registrar(h) => Ok(h.clone()),
            _ => Err(RegistryError::NotAllowed(format!(
                "{what} is done by a registrar"
            ))),
        }
    }

    /// Create a contact sponsored by the calling registrar (checked here
    /// by [`ContactIn::validate`]).
    pub fn contact_create(&self, actor: &Actor, c: ContactIn) -> Result<Contact> {
        let handle = Self::registrar_of(actor, "creating a contact")?;
        let mut c = c.checked()?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        if txn.contact(&c.handle)?.is_some() {
            return Err(RegistryError::refused(
                Rule::ContactExists,
                format!("contact {} already exists", c.handle),
            ));
        }
        c.sponsor = Some(handle);
        c.created = Some(now);
        txn.put_contact(&c)?;
        txn.commit(now)?;
        Ok(c)
    }

    /// Load a contact its sponsor may change.
    fn own_contact(&self, txn: &dyn crate::store::Txn, actor: &Actor, h: &str) -> Result<Contact> {
        let c = txn.contact(h)?.ok_or_else(|| {
            RegistryError::refused(Rule::NoContact, format!("no such contact: {h}"))
        })?;
        match actor {
            Actor::Operator => Ok(c),
            Actor::Registrar(r) if c.sponsor.as_deref() == Some(r.as_str()) => Ok(c),
            _ => Err(RegistryError::Forbidden(format!("contact {h}"))),
        }
    }

    /// Replace a contact's data with `new` (checked like a new one); the
    /// handle and sponsor stay.
    pub fn contact_update(&self, actor: &Actor, new: impl Into<ContactIn>) -> Result<Contact> {
        let new = new.into();
        let handle = new.handle.clone();
        self.contact_change(actor, &handle, |_| Ok(new))
    }

    /// Change a contact with `change`, applied to the record as stored
    /// inside the write transaction (EPP `contact:update` changes some
    /// fields: two sessions' changes both survive); the handle and sponsor
    /// stay. The changed contact is checked here by [`ContactIn::validate`].
    pub fn contact_change(
        &self,
        actor: &Actor,
        handle: &str,
        change: impl FnOnce(&Contact) -> Result<ContactIn>,
    ) -> Result<Contact> {
        let now = self.now();
        let mut txn = self.store.begin()?;
        let old = self.own_contact(txn.as_ref(), actor, handle)?;
        let mut new = change(&old)?;
        new.handle = old.handle.clone();
        let mut new = new.checked()?;
        new.handle = old.handle.clone();
        new.sponsor = old.sponsor;
        new.created = old.created;
        txn.put_contact(&new)?;
        txn.commit(now)?;
        // WHOIS/RDAP of the domains that show it change too.
        if let Some(l) = self.listener {
            let (names, _) = self.store.domains_by_contact(&new.handle, None, 10_000)?;
            for n in names {
                l.domain_changed(&n);
            }
        }
        Ok(new)
    }

    /// Delete a contact no domain refers to.
    pub fn contact_delete(&self, actor: &Actor, handle: &str) -> Result<()> {
        let now = self.now();
        let mut txn = self.store.begin()?;
        self.own_contact(txn.as_ref(), actor, handle)?;
        let (names, _) = self.store.domains_by_contact(handle, None, 1)?;
        if !names.is_empty() {
            return Err(RegistryError::refused(
                Rule::ContactInUse,
                format!(
                    "contact {handle} is a contact of {} (and maybe others)",
                    names[0]
                ),
            ));
        }
        txn.delete_contact(handle)?;
        txn.commit(now)?;
        Ok(())
    }

    /// The sponsor sets the auth code of its domain (EPP `authInfo`), valid
    /// for `lifecycle.auth_code_lifetime`.
    pub fn set_auth_code(&self, actor: &Actor, name: &str, code: &str) -> Result<Domain> {
        super::authcode::check_auth_code(code, self.lc().auth_code_min_length)?;
        self.modify(
            actor,
            name,
            Some(Operation::ResetAuthCode),
            |_, d, _, now| {
                self.put_auth_code(d, code, now);
                Ok(("auth code set".into(), d.clone()))
            },
        )
    }

    /// Set a checked registrar-chosen code on `d` (here and in a combined
    /// [`super::DomainUpdate`]).
    pub(super) fn put_auth_code(&self, d: &mut Domain, code: &str, now: crate::model::Timestamp) {
        d.auth_info = Some(code.to_string());
        d.registration.auth_info_expires = Some(now + self.dur(self.lc().auth_code_lifetime));
    }

    /// The pending registrar change of `name`, for its sponsor or the
    /// gaining registrar (anyone else: forbidden, unless it presents the
    /// domain's auth code).
    pub fn transfer_query(
        &self,
        actor: &Actor,
        name: &str,
        auth_code: Option<&str>,
    ) -> Result<TransferState> {
        let now = self.now();
        let mut txn = self.store.begin()?;
        let d = self.load(txn.as_mut(), actor, name, now, false)?;
        let p = d.registration.pending_transfer.clone();
        if let Actor::Registrar(h) = actor {
            let party = &d.registrar == h || p.as_ref().is_some_and(|p| &p.to == h);
            if !party {
                // Anyone else answers with a code, under the rules of a
                // transfer request (locks, expiry, counted failures): the
                // query is no cheaper oracle than the request.
                let refusal = match auth_code {
                    None => Some(RegistryError::Forbidden(name.to_string())),
                    Some(code) => {
                        match lifecycle::permits(&self.status(&d, now), Operation::Transfer) {
                            Err(r) => Some(r.into()),
                            Ok(()) => self
                                .present_auth_code(txn.as_mut(), &d, h, code, now)?
                                .err(),
                        }
                    }
                };
                if let Some(e) = refusal {
                    // `load` may have completed a due automatic approval,
                    // and a wrong code is counted.
                    txn.commit(now)?;
                    return Err(e);
                }
            }
        }
        txn.commit(now)?;
        Ok(TransferState {
            domain: name.to_string(),
            sponsor: d.registrar.clone(),
            pending: p.map(|p| TransferView {
                domain: name.to_string(),
                from: d.registrar.clone(),
                to: p.to,
                requested: p.requested,
                auto_approve: p.auto_approve,
            }),
        })
    }

    /// RGP restore (RFC 3915): revoke a scheduled close, or renew a
    /// registration in its grace period; anything else has nothing to
    /// restore.
    pub fn restore(&self, actor: &Actor, name: &str) -> Result<Domain> {
        let now = self.now();
        let d = self
            .store
            .domain(name)?
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let st = self.status(&d, now);
        if st.closing_at.is_some() {
            return self.revoke_close(actor, name);
        }
        if st.expired {
            return self.renew(actor, name);
        }
        Err(RegistryError::refused(
            Rule::NotRestorable,
            format!("{name} is neither scheduled to close nor in its grace period"),
        ))
    }

    /// The registrar acknowledges its change-feed messages up to `seq`
    /// (EPP `<poll op="ack">`).
    pub fn poll_ack(&self, actor: &Actor, seq: u64) -> Result<Registrar> {
        let handle = Self::registrar_of(actor, "acknowledging a message")?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        let mut r = txn
            .registrar(&handle)?
            .ok_or_else(|| RegistryError::NotAllowed(format!("unknown registrar {handle}")))?;
        if seq <= r.epp_poll_acked {
            return Err(RegistryError::refused(
                Rule::NoMessage,
                format!("message {seq} was acknowledged already"),
            ));
        }
        r.epp_poll_acked = seq;
        txn.put_registrar(&r)?;
        txn.commit(now)?;
        Ok(r)
    }
}

impl Registry<'_> {
    /// Whether `raw` can be registered now: `Ok(name)` or `Err((rule,
    /// reason))` — EPP `<domain:check>`, by the one name rule `create`
    /// applies (`name_rule`), read outside a transaction. With no
    /// registrant known, a court-reserved name is not available.
    pub fn availability(
        &self,
        raw: &str,
    ) -> Result<std::result::Result<String, (&'static str, String)>> {
        let name = match self.parse_name(raw) {
            Ok(n) => n,
            Err(e) => return Ok(Err((e.rule(), e.to_string()))),
        };
        let now = self.now();
        match self.name_rule(&name, None, now, &|n| self.store.domain(n), &|k, e| {
            self.store.look_alike(k, e)
        }) {
            Ok(_) => Ok(Ok(name.as_str().to_string())),
            Err(e @ RegistryError::Refused { .. }) => Ok(Err((e.rule(), e.to_string()))),
            Err(e) => Err(e),
        }
    }
}

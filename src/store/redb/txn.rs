//! [`Txn`] over one redb write transaction ([`RedbTxn`]), on the writes of
//! [`super::write`].

use super::*;

impl RedbTxn<'_> {
    fn w<R>(&self, f: impl FnOnce(&W<'_>) -> Result<R>) -> Result<R> {
        self.cell.with_dependent(|_, w| f(w))
    }
}

impl Txn for RedbTxn<'_> {
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.w(|w| wget(w, REGISTRARS, handle))
    }
    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.w(|w| wget(w, CONTACTS, handle))
    }
    fn contact_exists(&self, handle: &str) -> Result<bool> {
        self.w(|w| wexists(w, CONTACTS, handle))
    }
    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.w(|w| wget(w, DOMAINS, name))
    }
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        self.w(|w| wget(w, DELEGATION, name))
    }
    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        self.w(|w| w.pairs(IDX_SKELETON, |t| look_alike_in(t, key, except)))
    }
    fn put_registrar(&mut self, r: &Registrar) -> Result<()> {
        let old: Option<Registrar> = self.w(|w| wget(w, REGISTRARS, &r.handle))?;
        if old.as_ref().map(crate::public::registrar) != Some(crate::public::registrar(r)) {
            self.changes.key(Key::Registrar(&r.handle));
        }
        self.w(|w| put_registrar(w, r))
    }
    fn put_contact(&mut self, c: &Contact) -> Result<()> {
        let old: Option<Contact> = self.w(|w| wget(w, CONTACTS, &c.handle))?;
        if old.as_ref().map(crate::public::contact) != Some(crate::public::contact(c)) {
            self.changes.key(Key::Contact(&c.handle));
        }
        self.w(|w| put_contact(w, old.as_ref(), c))
    }
    fn delete_contact(&mut self, handle: &str) -> Result<()> {
        self.changes.key(Key::Contact(handle));
        self.w(|w| {
            if let Some(old) = wget::<Contact>(w, CONTACTS, handle)? {
                if let Some(f) = public_fn(&old) {
                    idx_set(w, IDX_FN, &f, handle, false)?;
                }
                wremove(w, CONTACTS, handle)?;
            }
            Ok(())
        })
    }
    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.w(|w| wget(w, HOST_OBJECTS, name))
    }
    fn put_host_object(&mut self, h: &HostObject) -> Result<()> {
        self.w(|w| wput(w, HOST_OBJECTS, h.name.as_str(), h))
    }
    fn delete_host_object(&mut self, name: &str) -> Result<()> {
        self.w(|w| wremove(w, HOST_OBJECTS, name))
    }
    fn auth_failures(&self, name: &str) -> Result<Option<crate::model::AuthFailures>> {
        self.w(|w| wget(w, AUTH_FAILURES, name))
    }
    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        self.w(|w| wget(w, RESELLERS, &crate::model::Reseller::key(handle)))
    }
    fn put_reseller(&mut self, r: &crate::model::Reseller) -> Result<()> {
        self.w(|w| wput(w, RESELLERS, &crate::model::Reseller::key(&r.handle), r))
    }
    fn put_auth_failures(
        &mut self,
        name: &str,
        f: Option<&crate::model::AuthFailures>,
    ) -> Result<()> {
        match f {
            Some(f) => self.w(|w| wput(w, AUTH_FAILURES, name, f)),
            None => self.w(|w| wremove(w, AUTH_FAILURES, name)),
        }
    }
    fn put_domain(&mut self, d: &Domain) -> Result<()> {
        let old: Option<Domain> = self.w(|w| wget(w, DOMAINS, d.name.as_str()))?;
        if old.as_ref() == Some(d) {
            return Ok(());
        }
        self.changes.key(Key::Domain(d.name.as_str()));
        self.changes.key(Key::AnyDomain);
        // The host records of its nameservers (use counts, glue) may change.
        if old.as_ref().map(|o| &o.nameservers) != Some(&d.nameservers) {
            let before = old.iter().flat_map(|o| o.nameservers.iter());
            for n in before.chain(d.nameservers.iter()) {
                self.changes.key(Key::Host(n.name.as_str()));
            }
        }
        self.w(|w| put_domain(w, old.as_ref(), d))
    }
    fn put_delegation(&mut self, name: &str, rec: &DelegationRecord) -> Result<()> {
        let old: Option<DelegationRecord> = self.w(|w| wget(w, DELEGATION, name))?;
        if old.as_ref().map(crate::public::delegation_facts)
            != Some(crate::public::delegation_facts(rec))
        {
            self.changes.key(Key::Domain(name));
        }
        self.w(|w| put_record(w, name, old.as_ref(), rec))
    }
    fn append_event(
        &mut self,
        name: &str,
        ev: &HistoryEvent,
        actor: &str,
        registrars: &[&str],
    ) -> Result<()> {
        self.w(|w| {
            log_append(w, HISTORY, name, ev, HISTORY_KEPT)?;
            feed_append(w, name, ev, actor, registrars)
        })
    }
    fn put_webhook(&mut self, registrar: &str, hook: Option<&Webhook>) -> Result<()> {
        self.w(|w| {
            let Some(hook) = hook else {
                w.records(WEBHOOKS, |t| t.remove(registrar).map(drop).map_err(err))?;
                return Ok(());
            };
            let bytes = json_enc(hook)?;
            w.records(WEBHOOKS, |t| {
                t.insert(registrar, bytes.as_slice()).map(drop).map_err(err)
            })?;
            let known = w.records(WEBHOOK_STATE, |t| {
                Ok(t.get(registrar).map_err(err)?.is_some())
            })?;
            if !known {
                let head = w.feed.with(w.txn, FEED, |feed| {
                    Ok(feed.last().map_err(err)?.map_or(0, |(k, _)| k.value()))
                })?;
                let state = json_enc(&WebhookState {
                    delivered: head,
                    ..WebhookState::default()
                })?;
                w.records(WEBHOOK_STATE, |t| {
                    t.insert(registrar, state.as_slice()).map(drop).map_err(err)
                })?;
            }
            Ok(())
        })
    }
    fn commit(self: Box<Self>, now: Timestamp) -> Result<()> {
        if let Err(e) = self.w(|w| {
            w.flush()?;
            touch(w, now)
        }) {
            return self.shared.outcome(Err(e));
        }
        let mut changes = self.changes;
        changes.updated(now);
        // Closes the tables (their roots go back to the table tree) first.
        let txn = self.cell.into_owner();
        self.shared
            .outcome(self.stamps.commit(changes, || txn.commit().map_err(err)))
    }
}

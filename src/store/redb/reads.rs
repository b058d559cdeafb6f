//! [`Store`] for [`RedbStore`]: point reads, listings and searches, the
//! scanner's and webhooks' state, and the write entry points.

use super::*;

impl Store for RedbStore {
    /// The copy goes to an unlinked file in the store's own directory
    /// (the same volume, room for a copy is expected there).
    fn backup_file(&self) -> Result<std::fs::File> {
        use std::io::Seek;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let io = |e: std::io::Error| StoreError::Io(format!("backup in {}: {e}", dir.display()));
        let file = tempfile::tempfile_in(dir).map_err(io)?;
        let mut reader = file.try_clone().map_err(io)?;
        self.backup_into(file)?;
        reader.rewind().map_err(io)?;
        Ok(reader)
    }

    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.get(REGISTRARS, handle)
    }

    fn registrars(&self) -> Result<Vec<Registrar>> {
        let txn = self.read()?;
        let t = txn.open_table(REGISTRARS).map_err(err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (_, v) = item.map_err(err)?;
            out.push(dec(v.value())?);
        }
        Ok(out)
    }

    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.get(CONTACTS, handle)
    }

    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        self.get_if_any(RESELLERS, &crate::model::Reseller::key(handle))
    }

    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.get(DOMAINS, name)
    }

    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        self.get(DELEGATION, name)
    }

    fn bundle(&self, name: &str) -> Result<Option<DomainBundle>> {
        let txn = self.read()?;
        let Some(domain): Option<Domain> = get_in(&txn, DOMAINS, name)? else {
            return Ok(None);
        };
        let delegation = get_in(&txn, DELEGATION, name)?
            .unwrap_or_else(|| DelegationRecord::undelegated(domain.updated));
        let contact = |h: Option<&String>| -> Result<Option<Contact>> {
            match h {
                Some(h) => get_in(&txn, CONTACTS, h),
                None => Ok(None),
            }
        };
        Ok(Some(DomainBundle {
            registrar: get_in(&txn, REGISTRARS, &domain.registrar)?,
            registrant: contact(Some(&domain.registrant))?,
            admin: contact(domain.admin.as_ref())?,
            tech: contact(domain.tech.as_ref())?,
            delegation,
            domain,
        }))
    }

    fn host(&self, name: &str) -> Result<Option<HostRecord>> {
        self.get(HOSTS, name)
    }

    fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEvent>> {
        self.log_tail(HISTORY, name, limit)
    }

    fn rounds(&self, name: &str, limit: usize) -> Result<Vec<RoundSummary>> {
        self.log_tail(ROUNDS, name, limit)
    }

    fn last_update(&self) -> Result<Option<Timestamp>> {
        self.get(META, KEY_UPDATED)
    }

    fn stamps(&self) -> Option<&Stamps> {
        Some(&self.stamps)
    }

    fn health(&self) -> Health {
        self.shared.health()
    }

    fn probe_write(&self) -> Health {
        if self.shared.health() == Health::Ok {
            return Health::Ok;
        }
        let probe = || -> Result<()> {
            let txn = self.write()?;
            txn.open_table(META)
                .map_err(err)?
                .insert(KEY_PROBE, [1u8].as_slice())
                .map_err(err)?;
            self.commit(txn, Changes::default())
        };
        if let Err(e) = probe() {
            tracing::debug!("store write probe: {e}");
        }
        self.shared.health()
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn stats(&self) -> Result<StoreStats> {
        let txn = self.read()?;
        let len = |def: TableDefinition<&str, &[u8]>| -> Result<u64> {
            txn.open_table(def).map_err(err)?.len().map_err(err)
        };
        let mut by_state = BTreeMap::new();
        let counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        for s in DelegationState::ALL {
            let n = counts
                .get(s.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            by_state.insert(s.as_str().to_string(), n);
        }
        Ok(StoreStats {
            registrars: len(REGISTRARS)?,
            contacts: len(CONTACTS)?,
            domains: len(DOMAINS)?,
            hosts: len(HOSTS)?,
            by_state,
            file_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        })
    }

    fn domains_by_host(&self, host: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_HOST_DOMAIN, host, after, limit)
    }

    fn hosts_by_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .index_page(IDX_IP_HOST, &ip.to_string(), None, limit)?
            .0)
    }

    fn domains_by_registrar(
        &self,
        handle: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page(IDX_REGISTRAR, handle, after, limit)
    }

    fn domains_by_contact(&self, handle: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_CONTACT, handle, after, limit)
    }

    fn domains_by_reseller(
        &self,
        reseller: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page_opt(IDX_RESELLER, reseller, after, limit)
    }

    fn pending_transfers(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page_opt(IDX_PENDING_TRANSFER, "", after, limit)
    }

    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page(IDX_STATE, state.as_str(), after, limit)
    }

    /// One read transaction and three open tables for the page.
    fn domains_by_state_loaded(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::store::contract::LoadedPage> {
        let txn = self.read()?;
        let (names, next) = index_page_in(&txn, IDX_STATE, state.as_str(), after, limit)?;
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let records = txn.open_table(DELEGATION).map_err(err)?;
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let name = name.as_str();
            if let (Some(d), Some(r)) = (
                domains.get(name).map_err(err)?,
                records.get(name).map_err(err)?,
            ) {
                out.push((dec(d.value())?, dec(r.value())?));
            }
        }
        Ok((out, next))
    }

    fn domains_with_pending_change(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_STATE, PENDING_KEY, after, limit)
    }

    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.prefix_page(DOMAINS, prefix, after, limit)
    }

    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        let txn = self.read()?;
        let t = txn.open_table(IDX_SKELETON).map_err(err)?;
        look_alike_in(&t, key, except)
    }

    /// One snapshot and two open tables for the whole list.
    fn screen_names(&self, names: &[(&str, &str)]) -> Result<Vec<(bool, Option<String>)>> {
        let txn = self.read()?;
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let idx = txn.open_table(IDX_SKELETON).map_err(err)?;
        names
            .iter()
            .map(|(n, k)| {
                Ok((
                    domains.get(*n).map_err(err)?.is_some(),
                    look_alike_in(&idx, k, n)?,
                ))
            })
            .collect()
    }

    fn search_hosts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.prefix_page(HOSTS, prefix, after, limit)
    }

    fn search_handles(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = self.prefix_page(REGISTRARS, prefix, None, limit)?.0;
        out.extend(self.prefix_page(CONTACTS, prefix, None, limit)?.0);
        out.sort();
        out.truncate(limit);
        Ok(out)
    }

    fn search_entity_names(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let txn = self.read()?;
        let t = txn.open_table(IDX_FN).map_err(err)?;
        let mut out = Vec::new();
        for item in t.range((prefix, "")..).map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (name, handle) = k.value();
            if !name.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push(handle.to_string());
        }
        Ok(out)
    }

    fn for_each_delegation(
        &self,
        f: &mut dyn FnMut(&str, &DelegationRecord) -> bool,
    ) -> Result<()> {
        let txn = self.read()?;
        let t = txn.open_table(DELEGATION).map_err(err)?;
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let rec: DelegationRecord = dec(v.value())?;
            if !f(k.value(), &rec) {
                break;
            }
        }
        Ok(())
    }

    fn feed(&self, registrar: &str, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        let txn = self.read()?;
        let Some(idx) = table_if_any(&txn, IDX_FEED)? else {
            return Ok(Vec::new());
        };
        let feed = txn.open_table(FEED).map_err(err)?;
        let mut out = Vec::new();
        let start = after.saturating_add(1);
        for item in idx
            .range((registrar, start)..=(registrar, u64::MAX))
            .map_err(err)?
        {
            if out.len() == limit {
                break;
            }
            let (k, _) = item.map_err(err)?;
            let seq = k.value().1;
            if let Some(v) = feed.get(seq).map_err(err)? {
                out.push(dec(v.value())?);
            }
        }
        Ok(out)
    }

    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.get_if_any(HOST_OBJECTS, name)
    }

    fn host_objects_under(&self, domain: &str) -> Result<Vec<HostObject>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, HOST_OBJECTS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            if crate::names::is_at_or_below(k.value(), domain) {
                out.push(dec(v.value())?);
            }
        }
        Ok(out)
    }

    fn cds_sighting(&self, name: &str) -> Result<Option<CdsSighting>> {
        self.get_if_any(CDS_SIGHTINGS, name)
    }

    fn cds_sightings(&self) -> Result<Vec<(String, CdsSighting)>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, CDS_SIGHTINGS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_string(), dec(v.value())?));
        }
        Ok(out)
    }

    fn put_cds_sighting(&self, name: &str, sighting: Option<&CdsSighting>) -> Result<()> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(CDS_SIGHTINGS).map_err(err)?;
            match sighting {
                Some(s) => {
                    t.insert(name, enc(s)?.as_slice()).map_err(err)?;
                }
                None => {
                    t.remove(name).map_err(err)?;
                }
            }
        }
        // Scanner state: nothing public changed.
        self.commit(txn, Changes::default())
    }

    fn webhooks(&self) -> Result<Vec<(String, Webhook)>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, WEBHOOKS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_string(), json_dec(v.value())?));
        }
        Ok(out)
    }

    fn webhook_state(&self, registrar: &str) -> Result<Option<WebhookState>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, WEBHOOK_STATE)? else {
            return Ok(None);
        };
        let found = t.get(registrar).map_err(err)?;
        found.map(|v| json_dec(v.value())).transpose()
    }

    fn put_webhook_state(&self, registrar: &str, state: &WebhookState) -> Result<()> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(WEBHOOK_STATE).map_err(err)?;
            t.insert(registrar, json_enc(state)?.as_slice())
                .map_err(err)?;
        }
        // Worker state: nothing public changed.
        self.commit(txn, Changes::default())
    }

    fn begin(&self) -> Result<Box<dyn Txn + '_>> {
        Ok(Box::new(RedbTxn {
            cell: TxnCell::new(self.write()?, |txn| W::new(txn)),
            stamps: &self.stamps,
            shared: &self.shared,
            changes: Changes::default(),
        }))
    }

    fn put_delegation_when(
        &self,
        name: &str,
        accept: &dyn Fn(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        let txn = self.write()?;
        let w = W::new(&txn);
        let old: Option<DelegationRecord> = wget(&w, DELEGATION, name)?;
        if !accept(old.as_ref()) {
            drop(w);
            txn.abort().map_err(err)?;
            return Ok(false);
        }
        put_record(&w, name, old.as_ref(), record)?;
        let mut changes = Changes::default();
        if old.as_ref().map(crate::public::delegation_facts)
            != Some(crate::public::delegation_facts(record))
        {
            changes.key(Key::Domain(name));
        }
        if let Some(ev) = event {
            log_append(&w, HISTORY, name, ev, HISTORY_KEPT)?;
            if let Some(d) = wget::<Domain>(&w, DOMAINS, name)? {
                feed_append(&w, name, ev, "scheduler", &[d.registrar.as_str()])?;
            }
            touch(&w, ev.at)?;
            changes.updated(ev.at);
        }
        if let Some(r) = round {
            rounds_append(&w, name, r, &self.retention)?;
        }
        w.flush()?;
        drop(w);
        self.commit(txn, changes)?;
        Ok(true)
    }

    fn put_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        self.write_delegations(writes)
    }
}

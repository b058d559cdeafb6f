//! `zonekeeper store check` ([`Maintenance`]): every domain against the
//! shared definition ([`super::super::verify`]), and the state index,
//! counters and host records from their side.

use super::*;

impl Maintenance for RedbStore {
    /// Give free pages back to the file system (after a bulk import).
    fn compact(&mut self) -> Result<()> {
        self.db()?;
        let slot = self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        let db = slot
            .as_mut()
            .and_then(|o| Arc::get_mut(&mut o.db))
            .ok_or_else(|| StoreError::Backend("compaction: the store is in use".into()))?;
        db.compact()
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("compaction: {e}")))
    }

    /// Reads one snapshot.
    fn verify(&self) -> Result<Vec<String>> {
        let txn = self.read()?;
        let mut problems = Vec::new();
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let deleg = txn.open_table(DELEGATION).map_err(err)?;
        let regs = txn.open_table(REGISTRARS).map_err(err)?;
        let contacts = txn.open_table(CONTACTS).map_err(err)?;
        let hosts = txn.open_table(HOSTS).map_err(err)?;
        let idx_host = txn.open_table(IDX_HOST_DOMAIN).map_err(err)?;
        let idx_ip = txn.open_table(IDX_IP_HOST).map_err(err)?;
        let idx_state = txn.open_table(IDX_STATE).map_err(err)?;
        let counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        let has = |t: &::redb::ReadOnlyTable<(&str, &str), ()>, a: &str, b: &str| -> Result<bool> {
            Ok(t.get((a, b)).map_err(err)?.is_some())
        };
        let mut host_refs: BTreeMap<String, u64> = BTreeMap::new();
        // The index tables a domain's entries are in, by name.
        let entry_tables = [
            IDX_REGISTRAR,
            IDX_RESELLER,
            IDX_PENDING_TRANSFER,
            IDX_CONTACT,
            IDX_HOST_DOMAIN,
            IDX_SKELETON,
        ]
        .into_iter()
        .map(|t| Ok((t.name().to_string(), txn.open_table(t).map_err(err)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
        for item in domains.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let name = k.value();
            let d: Domain = dec(v.value())?;
            let r: Option<DelegationRecord> = match deleg.get(name).map_err(err)? {
                Some(r) => Some(dec(r.value())?),
                None => None,
            };
            let mut probe = |e: &IndexEntry| -> Result<bool> {
                let (def, key) = entry_slot(e);
                match entry_tables.get(def.name()) {
                    Some(t) => has(t, key, name),
                    None => Ok(false),
                }
            };
            verify::domain(
                name,
                &d,
                r.as_ref(),
                Stored::Probe(&mut probe),
                &mut problems,
            )?;
            if regs.get(d.registrar.as_str()).map_err(err)?.is_none() {
                problems.push(format!("{name}: registrar {} missing", d.registrar));
            }
            let ix = DomainIndexes::of(&d);
            for c in &ix.contacts {
                if contacts.get(c.as_str()).map_err(err)?.is_none() {
                    problems.push(format!("{name}: contact {c} missing"));
                }
            }
            for h in ix.hosts.keys() {
                *host_refs.entry(h.clone()).or_default() += 1;
            }
        }
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for item in deleg.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let name = k.value();
            let r: DelegationRecord = dec(v.value())?;
            *by_state.entry(r.state.as_str().to_string()).or_default() += 1;
            if domains.get(name).map_err(err)?.is_none() {
                problems.push(format!("{name}: delegation record without a domain"));
            }
            if pending_testing(&r) && !has(&idx_state, PENDING_KEY, name)? {
                problems.push(format!("{name}: not in the pending-change index"));
            }
            if !has(&idx_state, r.state.as_str(), name)? {
                problems.push(format!(
                    "{name}: not in state index for {}",
                    r.state.as_str()
                ));
            }
        }
        for item in idx_state.iter().map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (state, name) = k.value();
            let ok = match deleg.get(name).map_err(err)? {
                Some(r) => {
                    let r = dec::<DelegationRecord>(r.value())?;
                    if state == PENDING_KEY {
                        pending_testing(&r)
                    } else {
                        r.state.as_str() == state
                    }
                }
                None => false,
            };
            if !ok {
                problems.push(format!("state index entry ({state}, {name}) is stale"));
            }
        }
        for s in DelegationState::ALL {
            let stored = counts
                .get(s.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            let real = by_state.get(s.as_str()).copied().unwrap_or(0);
            if stored != real {
                problems.push(format!(
                    "state count {}: stored {stored}, actual {real}",
                    s.as_str()
                ));
            }
        }
        for item in idx_host.iter().map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (host, name) = k.value();
            let ok = match domains.get(name).map_err(err)? {
                Some(v) => dec::<Domain>(v.value())?
                    .nameservers
                    .iter()
                    .any(|n| n.name.as_str() == host),
                None => false,
            };
            if !ok {
                problems.push(format!("host index entry ({host}, {name}) is stale"));
            }
        }
        let mut host_count = 0usize;
        for item in hosts.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            host_count += 1;
            let h: HostRecord = dec(v.value())?;
            let refs = host_refs.get(k.value()).copied().unwrap_or(0);
            if h.domains != refs {
                problems.push(format!(
                    "host {}: count {} but {refs} domains declare it",
                    h.name, h.domains
                ));
            }
            for a in &h.addresses {
                if !has(&idx_ip, &a.to_string(), &h.name)? {
                    problems.push(format!("host {}: {a} not in address index", h.name));
                }
            }
        }
        if host_count != host_refs.len() {
            problems.push(format!(
                "{host_count} host records for {} declared hosts",
                host_refs.len()
            ));
        }
        Ok(problems)
    }
}

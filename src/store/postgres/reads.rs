//! [`Store`] for [`PgStore`]: point reads, listings and searches, the
//! scanner's and webhooks' state, and the claims and leadership of
//! several processes.

use super::domains::host_record;
use super::*;

impl Store for PgStore {
    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.get("SELECT rec FROM host_objects WHERE name = $1", name)
    }

    fn host_objects_under(&self, domain: &str) -> Result<Vec<HostObject>> {
        self.recs(
            "SELECT rec FROM host_objects WHERE name = $1 OR name LIKE $2 ORDER BY name",
            vec![
                Box::new(domain.to_string()),
                Box::new(format!("%.{domain}")),
            ],
        )
    }

    fn cds_sighting(&self, name: &str) -> Result<Option<CdsSighting>> {
        self.get("SELECT rec FROM cds_sightings WHERE name = $1", name)
    }

    fn cds_sightings(&self) -> Result<Vec<(String, CdsSighting)>> {
        let recs: Vec<(String, Vec<u8>)> = self.with(|c| async move {
            Ok(
                rows(&c, "SELECT name, rec FROM cds_sightings ORDER BY name", &[])
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect(),
            )
        })?;
        recs.into_iter().map(|(n, b)| Ok((n, dec(&b)?))).collect()
    }

    fn put_cds_sighting(&self, name: &str, sighting: Option<&CdsSighting>) -> Result<()> {
        let n = name.to_string();
        let rec = sighting.map(enc).transpose()?;
        self.with(move |c| async move { put_or_delete(&c, "cds_sightings", &n, rec).await })
    }

    fn webhooks(&self) -> Result<Vec<(String, Webhook)>> {
        let recs: Vec<(String, Vec<u8>)> = self.with(|c| async move {
            Ok(rows(
                &c,
                "SELECT registrar, rec FROM webhooks ORDER BY registrar",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })?;
        recs.into_iter()
            .map(|(n, b)| Ok((n, super::codec::json_dec(&b)?)))
            .collect()
    }

    fn webhook_state(&self, registrar: &str) -> Result<Option<WebhookState>> {
        let key = registrar.to_string();
        let b: Option<Vec<u8>> = self.with(move |c| async move {
            Ok(opt(
                &c,
                "SELECT rec FROM webhook_state WHERE registrar = $1",
                &[&key],
            )
            .await?
            .map(|r| r.get(0)))
        })?;
        b.map(|b| super::codec::json_dec(&b)).transpose()
    }

    fn put_webhook_state(&self, registrar: &str, state: &WebhookState) -> Result<()> {
        let n = registrar.to_string();
        let rec = super::codec::json_enc(state)?;
        self.with(move |c| async move {
            exec(
                &c,
                "INSERT INTO webhook_state (registrar, rec) VALUES ($1, $2)
                 ON CONFLICT (registrar) DO UPDATE SET rec = EXCLUDED.rec",
                &[&n, &rec],
            )
            .await
            .map(drop)
        })
    }

    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.get("SELECT rec FROM registrars WHERE handle = $1", handle)
    }

    fn registrars(&self) -> Result<Vec<Registrar>> {
        self.recs("SELECT rec FROM registrars ORDER BY handle", Vec::new())
    }

    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.get("SELECT rec FROM contacts WHERE handle = $1", handle)
    }

    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        self.get(
            "SELECT rec FROM resellers WHERE key = $1",
            &crate::model::Reseller::key(handle),
        )
    }

    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.get("SELECT rec FROM domains WHERE name = $1", name)
    }

    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        self.get("SELECT rec FROM delegation WHERE name = $1", name)
    }

    fn bundle(&self, name: &str) -> Result<Option<DomainBundle>> {
        let name = name.to_string();
        // One statement, so one snapshot and one round trip: the domain, its
        // delegation, its registrar and the contacts it names
        // (`domain_contacts` is kept with the domain in its transaction).
        type Raw = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>, Vec<Vec<u8>>);
        let raw: Option<Raw> = self.with(move |c| async move {
            Ok(opt(
                &c,
                "SELECT d.rec, g.rec, r.rec,
                   ARRAY(SELECT c.rec FROM domain_contacts dc
                         JOIN contacts c ON c.handle = dc.contact
                         WHERE dc.domain = d.name)
                 FROM domains d
                 LEFT JOIN delegation g ON g.name = d.name
                 LEFT JOIN registrars r ON r.handle = d.registrar
                 WHERE d.name = $1",
                &[&name],
            )
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
        })?;
        let Some((d, g, r, cs)) = raw else {
            return Ok(None);
        };
        let domain: Domain = dec(&d)?;
        let delegation = match g {
            Some(g) => dec(&g)?,
            None => DelegationRecord::undelegated(domain.updated),
        };
        let contacts: Vec<Contact> = cs.iter().map(|b| dec(b)).collect::<Result<_>>()?;
        let c = |h: Option<&String>| -> Option<Contact> {
            h.and_then(|h| contacts.iter().find(|c| &c.handle == h).cloned())
        };
        Ok(Some(DomainBundle {
            registrar: r.map(|b| dec(&b)).transpose()?,
            registrant: c(Some(&domain.registrant)),
            admin: c(domain.admin.as_ref()),
            tech: c(domain.tech.as_ref()),
            delegation,
            domain,
        }))
    }

    fn host(&self, name: &str) -> Result<Option<HostRecord>> {
        let name = name.to_string();
        let raw: Option<(String, Vec<String>, i64)> = self.with(move |c| async move {
            Ok(opt(
                &c,
                "SELECT h.name, h.addresses,
                   (SELECT count(*) FROM host_domains WHERE host = h.name)
                 FROM hosts h WHERE h.name = $1",
                &[&name],
            )
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
        })?;
        raw.map(|(n, a, d)| host_record(n, a, d)).transpose()
    }

    fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEvent>> {
        self.log_tail(Log::History, name, limit)
    }

    fn rounds(&self, name: &str, limit: usize) -> Result<Vec<RoundSummary>> {
        self.log_tail(Log::Rounds, name, limit)
    }

    fn last_update(&self) -> Result<Option<Timestamp>> {
        self.get("SELECT value FROM zk_meta WHERE key = $1", KEY_UPDATED)
    }

    fn stats(&self) -> Result<StoreStats> {
        self.with(|c| async move {
            let r = one(
                &c,
                "SELECT (SELECT count(*) FROM registrars), (SELECT count(*) FROM contacts),
                        (SELECT count(*) FROM domains), (SELECT count(*) FROM hosts),
                        pg_database_size(current_database())",
                &[],
            )
            .await?;
            let mut by_state: BTreeMap<String, u64> = DelegationState::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect();
            for row in rows(
                &c,
                "SELECT state, count(*) FROM delegation GROUP BY state",
                &[],
            )
            .await?
            {
                let s: String = row.get(0);
                let n: i64 = row.get(1);
                by_state.insert(s, n as u64);
            }
            let n = |i: usize| -> u64 { r.get::<_, i64>(i) as u64 };
            Ok(StoreStats {
                registrars: n(0),
                contacts: n(1),
                domains: n(2),
                hosts: n(3),
                by_state,
                file_bytes: n(4),
            })
        })
    }

    fn domains_by_host(&self, host: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT domain FROM host_domains WHERE host = $1 AND domain > $2 ORDER BY domain LIMIT $3",
            host,
            after,
            limit,
        )
    }

    fn hosts_by_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .page(
                "SELECT host FROM host_ips WHERE ip = $1 AND host > $2 ORDER BY host LIMIT $3",
                &ip.to_string(),
                None,
                limit,
            )?
            .0)
    }

    fn domains_by_registrar(
        &self,
        handle: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.page(
            "SELECT name FROM domains WHERE registrar = $1 AND name > $2 ORDER BY name LIMIT $3",
            handle,
            after,
            limit,
        )
    }

    fn domains_by_contact(&self, handle: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT domain FROM domain_contacts WHERE contact = $1 AND domain > $2 ORDER BY domain LIMIT $3",
            handle,
            after,
            limit,
        )
    }

    fn domains_by_reseller(
        &self,
        reseller: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.page(
            "SELECT name FROM domains WHERE reseller = $1 AND name > $2 ORDER BY name LIMIT $3",
            reseller,
            after,
            limit,
        )
    }

    fn pending_transfers(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT name FROM domains WHERE pending_transfer AND $1 = '' AND name > $2 ORDER BY name LIMIT $3",
            "",
            after,
            limit,
        )
    }

    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.page(
            "SELECT name FROM delegation WHERE state = $1 AND name > $2 ORDER BY name LIMIT $3",
            state.as_str(),
            after,
            limit,
        )
    }

    fn domains_with_pending_change(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT name FROM delegation WHERE pending_test AND $1 = '' AND name > $2 ORDER BY name LIMIT $3",
            "",
            after,
            limit,
        )
    }

    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT name FROM domains WHERE name >= $1 AND starts_with(name, $1) AND name > $2
             ORDER BY name LIMIT $3",
            prefix,
            after,
            limit,
        )
    }

    fn screen_names(&self, names: &[(&str, &str)]) -> Result<Vec<(bool, Option<String>)>> {
        let n: Vec<String> = names.iter().map(|(n, _)| n.to_string()).collect();
        let k: Vec<String> = names.iter().map(|(_, k)| k.to_string()).collect();
        self.with(move |c| async move {
            Ok(rows(
                &c,
                "SELECT EXISTS (SELECT 1 FROM domains d WHERE d.name = q.name),
                        (SELECT s.name FROM domain_skeletons s
                          WHERE s.skeleton = q.key AND s.name <> q.name
                          ORDER BY s.name LIMIT 1)
                   FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(name, key, i)
                  ORDER BY q.i",
                &[&n, &k],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        let (key, except) = (key.to_string(), except.to_string());
        self.with(move |c| async move {
            Ok(opt(&c, LOOK_ALIKE_SQL, &[&key, &except])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn search_hosts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.page(
            "SELECT name FROM hosts WHERE name >= $1 AND starts_with(name, $1) AND name > $2
             ORDER BY name LIMIT $3",
            prefix,
            after,
            limit,
        )
    }

    fn search_handles(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut keys = self
            .page(
                "SELECT handle FROM (
                   SELECT handle FROM registrars WHERE handle >= $1 AND starts_with(handle, $1)
                   UNION ALL
                   SELECT handle FROM contacts WHERE handle >= $1 AND starts_with(handle, $1)
                 ) t WHERE handle > $2 ORDER BY handle LIMIT $3",
                prefix,
                None,
                limit,
            )?
            .0;
        keys.truncate(limit);
        Ok(keys)
    }

    fn search_entity_names(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .page(
                "SELECT handle FROM (
                   SELECT fn, handle FROM registrars WHERE fn >= $1 AND starts_with(fn, $1)
                   UNION ALL
                   SELECT fn, handle FROM contacts WHERE fn >= $1 AND starts_with(fn, $1)
                 ) t WHERE $2 = '' ORDER BY fn, handle LIMIT $3",
                prefix,
                None,
                limit,
            )?
            .0)
    }

    fn for_each_delegation(
        &self,
        f: &mut dyn FnMut(&str, &DelegationRecord) -> bool,
    ) -> Result<()> {
        let mut after = String::new();
        loop {
            let a = after.clone();
            let page: Vec<(String, Vec<u8>)> = self.with(move |c| async move {
                Ok(rows(
                    &c,
                    "SELECT name, rec FROM delegation WHERE name > $1 ORDER BY name LIMIT $2",
                    &[&a, &WALK_PAGE],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
            })?;
            let full = page.len() as i64 == WALK_PAGE;
            for (name, b) in &page {
                if !f(name, &dec(b)?) {
                    return Ok(());
                }
            }
            match page.last() {
                Some((n, _)) if full => after = n.clone(),
                _ => return Ok(()),
            }
        }
    }

    fn feed(&self, registrar: &str, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        let after = after.min(i64::MAX as u64) as i64;
        self.recs(
            "SELECT f.rec FROM feed_registrars r JOIN feed f ON f.seq = r.seq
                 WHERE r.registrar = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
            vec![
                Box::new(registrar.to_string()),
                Box::new(after),
                Box::new(lim(limit)),
            ],
        )
    }

    fn begin(&self) -> Result<Box<dyn Txn + '_>> {
        Ok(Box::new(self.pg_begin()?))
    }

    fn put_delegation_when(
        &self,
        name: &str,
        accept: &dyn Fn(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        let mut txn = self.pg_begin()?;
        let old = txn.delegation(name)?;
        if !accept(old.as_ref()) {
            return Ok(false); // dropped: rolled back
        }
        txn.put_delegation(name, record)?;
        if let Some(ev) = event {
            let registrar = txn.domain(name)?.map(|d| d.registrar);
            let regs: Vec<&str> = registrar.iter().map(String::as_str).collect();
            if regs.is_empty() {
                txn.log_append(Log::History, name, ev, HISTORY_KEPT)?;
            } else {
                txn.append_event(name, ev, "scheduler", &regs)?;
            }
        }
        if let Some(r) = round {
            txn.rounds_append(name, r, self.retention)?;
        }
        match event {
            Some(ev) => Box::new(txn).commit(ev.at)?,
            None => txn.commit_untouched()?,
        }
        Ok(true)
    }

    fn put_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        self.write_delegations(writes)
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim(&self, owner: &str, names: &[String], lease: Duration) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.claim_leases(owner, names, lease)
    }

    fn claim_loaded(
        &self,
        owner: &str,
        names: &[String],
        lease: Duration,
    ) -> Result<Vec<crate::store::contract::Claimed>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.claim_leases_loaded(owner, names, lease)
    }

    fn release(&self, owner: &str, names: &[String]) -> Result<()> {
        self.release_leases(owner, names)
    }

    fn try_lead(&self, duty: &str) -> Result<Option<Box<dyn Leadership>>> {
        // A session advisory lock: held while this process's connection
        // lives; a killed process's session ends and a standby takes it.
        let key: i64 = {
            use sha2::Digest;
            let h = sha2::Sha256::digest(format!("zonekeeper:{duty}").as_bytes());
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[..8]);
            i64::from_le_bytes(b)
        };
        Ok(self
            .try_session_lock(key)?
            .map(|l| Box::new(l) as Box<dyn Leadership>))
    }
}

impl Leadership for SessionLock {
    fn held(&self) -> bool {
        self.alive()
    }
}

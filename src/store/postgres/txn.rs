//! [`Txn`] on one pooled connection ([`PgTxn`]): record reads under
//! advisory locks, row-by-row writes, and the bulk (import) path's
//! prefetch and held-back writes.

use super::domains::{addr_strings, apply_domain, flush};
use super::*;

impl Drop for PgTxn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.rt.spawn(async move {
                let _ = c.batch_execute("ROLLBACK").await;
            });
        }
    }
}

impl PgTxn {
    fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Object>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send,
    {
        let Some(c) = self.client.clone() else {
            return Err(StoreError::Backend("transaction already finished".into()));
        };
        let pending = self.take_pending();
        wait(self.rt.spawn(async move {
            if let Some(p) = pending {
                flush(&c, p).await?;
            }
            f(c).await
        }))?
    }

    /// The batched writes not sent yet (leaving the cache).
    fn take_pending(&self) -> Option<Bulk> {
        let b = self.bulk.as_ref()?;
        let mut b = b.borrow_mut();
        if b.is_empty() {
            return None;
        }
        Some(Bulk {
            cache: HashMap::new(),
            domains: std::mem::take(&mut b.domains),
            delegations: std::mem::take(&mut b.delegations),
            events: std::mem::take(&mut b.events),
        })
    }

    /// The cached record under `key`: `Some(None)` if known absent,
    /// `None` if not cached.
    fn cached<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Option<T>>> {
        let Some(b) = &self.bulk else {
            return Ok(None);
        };
        match b.borrow().cache.get(key) {
            Some(Some(bytes)) => Ok(Some(Some(dec(bytes)?))),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        }
    }

    /// A record from the import chunk's cache when it holds `cache_key`,
    /// else [`Self::locked_get`].
    fn cached_or_locked_get<T: DeserializeOwned>(
        &self,
        cache_key: &str,
        lock_key: String,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<T>> {
        match self.cached(cache_key)? {
            Some(v) => Ok(v),
            None => self.locked_get(lock_key, sql, key),
        }
    }

    /// Upsert a registrar or contact: `sql` takes (handle, public name, record).
    fn put_entity(
        &self,
        sql: &'static str,
        handle: String,
        public_name: Option<String>,
        rec: Vec<u8>,
    ) -> Result<()> {
        self.run(move |c| async move {
            exec(&c, sql, &[&handle, &public_name, &rec])
                .await
                .map(drop)
        })
    }

    /// Keep the cache in step with a write (only for keys it holds).
    fn recache(&self, key: &str, rec: Option<Vec<u8>>) {
        if let Some(b) = &self.bulk {
            if let Some(v) = b.borrow_mut().cache.get_mut(key) {
                *v = rec;
            }
        }
    }

    /// Send the pending writes now if there are many.
    fn flush_if_full(&self) -> Result<()> {
        let full = self.bulk.as_ref().is_some_and(|b| {
            let b = b.borrow();
            b.domains.len() >= BULK_FLUSH || b.events.len() >= 2 * BULK_FLUSH
        });
        if full {
            self.run(|_| async { Ok(()) })?;
        }
        Ok(())
    }

    /// Lock `lock_key` for the transaction, then read `sql` with `key`.
    /// (In bulk mode the bulk lock already excludes every other writer.)
    fn locked_get<T: DeserializeOwned>(
        &self,
        lock_key: String,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<T>> {
        let key = key.to_string();
        let keyed = self.bulk.is_none();
        let b: Option<Vec<u8>> = self.run(move |c| async move {
            if keyed {
                exec(&c, lock_sql(), &[&lock_key]).await?;
            }
            Ok(opt(&c, sql, &[&key]).await?.map(|r| r.get(0)))
        })?;
        b.map(|b| dec(&b)).transpose()
    }

    pub(super) fn log_append<T: Serialize>(
        &self,
        log: Log,
        name: &str,
        v: &T,
        keep: usize,
    ) -> Result<()> {
        let name = name.to_string();
        let rec = enc(v)?;
        let keep = keep as i64;
        let (next, ins, trim) = match log {
            Log::History => (
                "SELECT coalesce(max(seq) + 1, 0) FROM history WHERE name = $1",
                "INSERT INTO history (name, seq, rec) VALUES ($1, $2, $3)",
                "DELETE FROM history WHERE name = $1 AND seq < $2",
            ),
            Log::Rounds => (
                "SELECT coalesce(max(seq) + 1, 0) FROM rounds WHERE name = $1",
                "INSERT INTO rounds (name, seq, rec) VALUES ($1, $2, $3)",
                "DELETE FROM rounds WHERE name = $1 AND seq < $2",
            ),
        };
        self.run(move |c| async move {
            let n: i64 = one(&c, next, &[&name]).await?.get(0);
            exec(&c, ins, &[&name, &n, &rec]).await?;
            if n >= keep {
                let cut = n + 1 - keep;
                exec(&c, trim, &[&name, &cut]).await?;
            }
            Ok(())
        })
    }

    /// [`Self::log_append`] for probe rounds, under the retention policy
    /// (as the redb backend's `rounds_append`).
    pub(super) fn rounds_append(&self, name: &str, r: &RoundSummary, ret: Retention) -> Result<()> {
        let name = name.to_string();
        let rec = enc(r)?;
        let at = r.at;
        self.run(move |c| async move {
            let n: i64 = one(
                &c,
                "SELECT coalesce(max(seq) + 1, 0) FROM rounds WHERE name = $1",
                &[&name],
            )
            .await?
            .get(0);
            exec(
                &c,
                "INSERT INTO rounds (name, seq, rec) VALUES ($1, $2, $3)",
                &[&name, &n, &rec],
            )
            .await?;
            let Some(left) = ret.leaving(n as u64) else {
                return Ok(());
            };
            let left = left as i64;
            let x: Option<Vec<u8>> = opt(
                &c,
                "SELECT rec FROM rounds WHERE name = $1 AND seq = $2",
                &[&name, &left],
            )
            .await?
            .map(|r| r.get(0));
            if let Some(x) = x {
                let before: Option<Vec<u8>> = opt(
                    &c,
                    "SELECT rec FROM rounds WHERE name = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1",
                    &[&name, &left],
                )
                .await?
                .map(|r| r.get(0));
                let before: Option<RoundSummary> = before.map(|b| dec(&b)).transpose()?;
                if ret.drop_leaving(&dec(&x)?, before.as_ref()) {
                    exec(
                        &c,
                        "DELETE FROM rounds WHERE name = $1 AND seq = $2",
                        &[&name, &left],
                    )
                    .await?;
                }
            }
            let oldest = opt(
                &c,
                "SELECT seq, rec FROM rounds WHERE name = $1 AND seq <= $2 ORDER BY seq LIMIT 1",
                &[&name, &left],
            )
            .await?;
            if let Some(o) = oldest {
                let seq: i64 = o.get(0);
                let b: Vec<u8> = o.get(1);
                if ret.expired(&dec(&b)?, at) {
                    exec(
                        &c,
                        "DELETE FROM rounds WHERE name = $1 AND seq = $2",
                        &[&name, &seq],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }

    pub(super) fn commit_untouched(mut self) -> Result<()> {
        let c = self.client.take();
        let Some(c) = c else {
            return Err(StoreError::Backend("transaction already finished".into()));
        };
        let pending = self.take_pending();
        wait(self.rt.spawn(async move {
            if let Some(p) = pending {
                flush(&c, p).await?;
            }
            c.batch_execute("COMMIT").await.map_err(pgerr)
        }))?
    }
}

impl Txn for PgTxn {
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.locked_get(
            format!("r:{handle}"),
            "SELECT rec FROM registrars WHERE handle = $1",
            handle,
        )
    }
    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.cached_or_locked_get(
            &format!("c:{handle}"),
            format!("c:{handle}"),
            "SELECT rec FROM contacts WHERE handle = $1",
            handle,
        )
    }
    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.cached_or_locked_get(
            &format!("d:{name}"),
            format!("d:{name}"),
            "SELECT rec FROM domains WHERE name = $1",
            name,
        )
    }
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        // Locked under the domain's key: a domain and its record go together.
        self.cached_or_locked_get(
            &format!("g:{name}"),
            format!("d:{name}"),
            "SELECT rec FROM delegation WHERE name = $1",
            name,
        )
    }
    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        // The key is locked for the transaction: of two look-alikes
        // created at once, the second sees the first.
        let (key, except) = (key.to_string(), except.to_string());
        self.run(move |c| async move {
            exec(&c, lock_sql(), &[&format!("s:{key}")]).await?;
            Ok(opt(&c, LOOK_ALIKE_SQL, &[&key, &except])
                .await?
                .map(|r| r.get(0)))
        })
    }
    fn put_registrar(&mut self, r: &Registrar) -> Result<()> {
        self.put_entity(
            "INSERT INTO registrars (handle, fn, rec) VALUES ($1, $2, $3)
             ON CONFLICT (handle) DO UPDATE SET fn = EXCLUDED.fn, rec = EXCLUDED.rec",
            r.handle.clone(),
            Some(r.name.to_lowercase()),
            enc(r)?,
        )
    }
    fn put_contact(&mut self, ct: &Contact) -> Result<()> {
        let rec = enc(ct)?;
        self.recache(&format!("c:{}", ct.handle), Some(rec.clone()));
        self.put_entity(
            "INSERT INTO contacts (handle, fn, rec) VALUES ($1, $2, $3)
             ON CONFLICT (handle) DO UPDATE SET fn = EXCLUDED.fn, rec = EXCLUDED.rec",
            ct.handle.clone(),
            public_fn(ct),
            rec,
        )
    }
    fn put_webhook(&mut self, registrar: &str, hook: Option<&Webhook>) -> Result<()> {
        let n = registrar.to_string();
        let rec = hook.map(super::codec::json_enc).transpose()?;
        self.run(move |c| async move {
            let Some(rec) = rec else {
                exec(&c, "DELETE FROM webhooks WHERE registrar = $1", &[&n]).await?;
                return Ok(());
            };
            exec(
                &c,
                "INSERT INTO webhooks (registrar, rec) VALUES ($1, $2)
                 ON CONFLICT (registrar) DO UPDATE SET rec = EXCLUDED.rec",
                &[&n, &rec],
            )
            .await?;
            // First set: delivery starts after the feed's newest event.
            let head: i64 = one(&c, "SELECT coalesce(max(seq), 0) FROM feed", &[])
                .await?
                .get(0);
            let state = super::codec::json_enc(&WebhookState {
                delivered: head.max(0) as u64,
                ..WebhookState::default()
            })?;
            exec(
                &c,
                "INSERT INTO webhook_state (registrar, rec) VALUES ($1, $2)
                 ON CONFLICT (registrar) DO NOTHING",
                &[&n, &state],
            )
            .await
            .map(drop)
        })
    }
    fn delete_contact(&mut self, handle: &str) -> Result<()> {
        let h = handle.to_string();
        self.recache(&format!("c:{h}"), None);
        self.run(move |c| async move {
            exec(&c, "DELETE FROM contacts WHERE handle = $1", &[&h])
                .await
                .map(drop)
        })
    }
    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.locked_get(
            format!("o:{name}"),
            "SELECT rec FROM host_objects WHERE name = $1",
            name,
        )
    }
    fn put_host_object(&mut self, h: &HostObject) -> Result<()> {
        let (n, rec) = (h.name.as_str().to_string(), enc(h)?);
        self.run(move |c| async move {
            exec(
                &c,
                "INSERT INTO host_objects (name, rec) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec",
                &[&n, &rec],
            )
            .await
            .map(drop)
        })
    }
    fn delete_host_object(&mut self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.run(move |c| async move {
            exec(&c, "DELETE FROM host_objects WHERE name = $1", &[&n])
                .await
                .map(drop)
        })
    }
    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        let key = crate::model::Reseller::key(handle);
        self.locked_get(
            format!("rs:{key}"),
            "SELECT rec FROM resellers WHERE key = $1",
            &key,
        )
    }
    fn put_reseller(&mut self, r: &crate::model::Reseller) -> Result<()> {
        let key = crate::model::Reseller::key(&r.handle);
        let rec = enc(r)?;
        self.run(move |c| async move {
            exec(
                &c,
                "INSERT INTO resellers (key, rec) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET rec = EXCLUDED.rec",
                &[&key, &rec],
            )
            .await
            .map(drop)
        })
    }
    fn auth_failures(&self, name: &str) -> Result<Option<crate::model::AuthFailures>> {
        // Under the domain's lock: counted with the domain, never apart.
        self.locked_get(
            format!("d:{name}"),
            "SELECT rec FROM auth_failures WHERE name = $1",
            name,
        )
    }
    fn put_auth_failures(
        &mut self,
        name: &str,
        f: Option<&crate::model::AuthFailures>,
    ) -> Result<()> {
        let n = name.to_string();
        let rec = f.map(enc).transpose()?;
        self.run(move |c| async move { put_or_delete(&c, "auth_failures", &n, rec).await })
    }
    fn put_domain(&mut self, d: &Domain) -> Result<()> {
        let old = self.domain(d.name.as_str())?;
        if old.as_ref() == Some(d) {
            return Ok(());
        }
        let name = d.name.as_str().to_string();
        let rec = enc(d)?;
        let ix = DomainIndexes::of(d);
        let registrar = ix.registrar.clone();
        let reseller = ix.reseller.clone();
        let pending = ix.pending_transfer;
        let key = format!("d:{name}");
        if old.is_none() {
            if let Some(b) = &self.bulk {
                let mut b = b.borrow_mut();
                if let Some(v) = b.cache.get_mut(&key) {
                    // Announced and new: inserted with its chunk.
                    *v = Some(rec.clone());
                    let hosts = ix
                        .hosts
                        .iter()
                        .map(|(h, glue)| (h.clone(), glue.as_deref().map(addr_strings)))
                        .collect();
                    b.domains.push(NewDomain {
                        name,
                        registrar,
                        reseller,
                        pending,
                        rec,
                        contacts: ix.contact_list(),
                        hosts,
                        skeleton: ix.skeleton,
                    });
                    drop(b);
                    return self.flush_if_full();
                }
            }
        }
        self.recache(&key, Some(rec.clone()));
        let keyed = self.bulk.is_none();
        let diff = IndexDiff::between(old.as_ref().map(DomainIndexes::of).as_ref(), &ix);
        self.run(move |c| async move { apply_domain(&c, &name, &rec, &ix, &diff, keyed).await })
    }
    fn put_delegation(&mut self, name: &str, rec: &DelegationRecord) -> Result<()> {
        let name = name.to_string();
        let state = rec.state.as_str().to_string();
        let pending = pending_testing(rec);
        let b = enc(rec)?;
        let key = format!("g:{name}");
        if let Some(bulk) = &self.bulk {
            let mut bulk = bulk.borrow_mut();
            if let Some(v) = bulk.cache.get_mut(&key) {
                *v = Some(b.clone());
                bulk.delegations.insert(name, (state, pending, b));
                return Ok(());
            }
        }
        self.run(move |c| async move {
            exec(
                &c,
                "INSERT INTO delegation (name, state, pending_test, rec) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state,
                   pending_test = EXCLUDED.pending_test, rec = EXCLUDED.rec",
                &[&name, &state, &pending, &b],
            )
            .await
            .map(drop)
        })
    }
    fn append_event(
        &mut self,
        name: &str,
        ev: &HistoryEvent,
        actor: &str,
        registrars: &[&str],
    ) -> Result<()> {
        if let Some(b) = &self.bulk {
            let mut b = b.borrow_mut();
            if b.cache.contains_key(&format!("d:{name}")) {
                // An announced domain's event: sent with its chunk.
                let item = FeedEvent::of(0, name, ev, actor, registrars);
                b.events.push((name.to_string(), enc(ev)?, item));
                return Ok(());
            }
        }
        self.log_append(Log::History, name, ev, HISTORY_KEPT)?;
        let mut item = FeedEvent::of(0, name, ev, actor, registrars);
        self.run(move |c| async move {
            exec(&c, lock_sql(), &[&"feed"]).await?;
            let seq: i64 = one(&c, "SELECT coalesce(max(seq), 0) + 1 FROM feed", &[])
                .await?
                .get(0);
            item.seq = seq as u64;
            exec(
                &c,
                "INSERT INTO feed (seq, rec) VALUES ($1, $2)",
                &[&seq, &enc(&item)?],
            )
            .await?;
            exec(
                &c,
                "INSERT INTO feed_registrars (registrar, seq)
                 SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                &[&item.registrars, &seq],
            )
            .await?;
            let cut = seq - FEED_KEPT as i64;
            if cut > 0 {
                exec(&c, "DELETE FROM feed_registrars WHERE seq <= $1", &[&cut]).await?;
                exec(&c, "DELETE FROM feed WHERE seq <= $1", &[&cut]).await?;
            }
            Ok(())
        })
    }
    fn prefetch(&mut self, domains: &[&str], contacts: &[&str]) -> Result<()> {
        let names: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
        let handles: Vec<String> = contacts.iter().map(|c| c.to_string()).collect();
        let first = self.bulk.is_none();
        type Rows = Vec<(String, Vec<u8>)>;
        let (ds, gs, cs): (Rows, Rows, Rows) = self.run(move |c| async move {
            if first {
                // Every other writer waits from now to the commit.
                exec(&c, "SELECT pg_advisory_xact_lock($1)", &[&BULK_LOCK]).await?;
            }
            let pairs = |rows: Vec<tokio_postgres::Row>| -> Rows {
                rows.iter().map(|r| (r.get(0), r.get(1))).collect()
            };
            Ok((
                pairs(
                    rows(
                        &c,
                        "SELECT name, rec FROM domains WHERE name = ANY($1)",
                        &[&names],
                    )
                    .await?,
                ),
                pairs(
                    rows(
                        &c,
                        "SELECT name, rec FROM delegation WHERE name = ANY($1)",
                        &[&names],
                    )
                    .await?,
                ),
                pairs(
                    rows(
                        &c,
                        "SELECT handle, rec FROM contacts WHERE handle = ANY($1)",
                        &[&handles],
                    )
                    .await?,
                ),
            ))
        })?;
        let mut cache: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        for d in domains {
            cache.insert(format!("d:{d}"), None);
            cache.insert(format!("g:{d}"), None);
        }
        for c in contacts {
            cache.insert(format!("c:{c}"), None);
        }
        for (k, rec) in ds {
            cache.insert(format!("d:{k}"), Some(rec));
        }
        for (k, rec) in gs {
            cache.insert(format!("g:{k}"), Some(rec));
        }
        for (k, rec) in cs {
            cache.insert(format!("c:{k}"), Some(rec));
        }
        // The previous chunk's writes were sent by the statement above.
        self.bulk = Some(RefCell::new(Bulk {
            cache,
            ..Bulk::default()
        }));
        Ok(())
    }

    fn commit(mut self: Box<Self>, now: Timestamp) -> Result<()> {
        let Some(c) = self.client.take() else {
            return Err(StoreError::Backend("transaction already finished".into()));
        };
        let t = enc(&now)?;
        let pending = self.take_pending();
        wait(self.rt.spawn(async move {
            if let Some(p) = pending {
                flush(&c, p).await?;
            }
            exec(
                &c,
                "INSERT INTO zk_meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&KEY_UPDATED, &t],
            )
            .await?;
            c.batch_execute("COMMIT").await.map_err(pgerr)
        }))?
    }
}

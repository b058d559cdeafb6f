//! The scheduler's batch write ([`PgStore::write_delegations`]) and the
//! appends to history, probe rounds and the change feed it and the bulk
//! import share.

use super::*;

impl PgStore {
    /// [`Store::put_delegations`]: the scheduler's group commit in ONE
    /// transaction, with a few multi-row statements per table (the batch's
    /// records locked and read together; each write's condition checked
    /// against the record as the batch left it; delegation rows, history,
    /// feed and rounds sent as `unnest` arrays). Nothing of the batch is
    /// visible, or acknowledged, before its COMMIT.
    pub(super) fn write_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let writes = writes.to_vec();
        let ret = self.retention;
        self.with(move |c| async move {
            c.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({BULK_LOCK})"
            ))
            .await
            .map_err(pgerr)?;
            match batch_write(&c, &writes, ret).await {
                Ok(done) => {
                    c.batch_execute("COMMIT").await.map_err(pgerr)?;
                    Ok(done)
                }
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        })
    }
}

/// The body of [`PgStore::write_delegations`] inside its transaction.
pub(super) async fn batch_write(
    c: &Object,
    writes: &[DelegationWrite],
    ret: Retention,
) -> Result<Vec<bool>> {
    let mut names: Vec<String> = writes.iter().map(|w| w.name.clone()).collect();
    names.sort();
    names.dedup();
    // Each record under its domain's key, as a single write locks it; in
    // one order, so two batches never wait on each other crosswise.
    let keys: Vec<String> = names.iter().map(|n| format!("d:{n}")).collect();
    exec(
        c,
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
         FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS s",
        &[&keys],
    )
    .await?;
    let mut cur: HashMap<String, Option<DelegationRecord>> =
        names.iter().map(|n| (n.clone(), None)).collect();
    for r in rows(
        c,
        "SELECT name, rec FROM delegation WHERE name = ANY($1)",
        &[&names],
    )
    .await?
    {
        let b: Vec<u8> = r.get(1);
        cur.insert(r.get(0), Some(dec(&b)?));
    }
    let regs: HashMap<String, String> = rows(
        c,
        "SELECT name, registrar FROM domains WHERE name = ANY($1)",
        &[&names],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();

    let mut done = Vec::with_capacity(writes.len());
    let mut upserts: Vec<(&str, &DelegationRecord)> = Vec::new();
    let mut events: Vec<(&str, &HistoryEvent)> = Vec::new();
    let mut rounds_of: Vec<(&str, Vec<&RoundSummary>)> = Vec::new();
    for w in writes {
        let old = cur.get(&w.name).and_then(Option::as_ref);
        if !w.when.accepts(old) {
            done.push(false);
            continue;
        }
        cur.insert(w.name.clone(), Some(w.record.clone()));
        match upserts.iter_mut().find(|(n, _)| *n == w.name) {
            Some(u) => u.1 = &w.record,
            None => upserts.push((&w.name, &w.record)),
        }
        if let Some(ev) = &w.event {
            events.push((&w.name, ev));
        }
        if let Some(r) = &w.round {
            match rounds_of.iter_mut().find(|(n, _)| *n == w.name) {
                Some(v) => v.1.push(r),
                None => rounds_of.push((&w.name, vec![r])),
            }
        }
        done.push(true);
    }

    if !upserts.is_empty() {
        let mut n = Vec::with_capacity(upserts.len());
        let mut st = Vec::with_capacity(upserts.len());
        let mut pend = Vec::with_capacity(upserts.len());
        let mut rec = Vec::with_capacity(upserts.len());
        for (name, r) in &upserts {
            n.push(name.to_string());
            st.push(r.state.as_str().to_string());
            pend.push(pending_testing(r));
            rec.push(enc(*r)?);
        }
        exec(
            c,
            "INSERT INTO delegation (name, state, pending_test, rec)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bytea[])
             ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state,
               pending_test = EXCLUDED.pending_test, rec = EXCLUDED.rec",
            &[&n, &st, &pend, &rec],
        )
        .await?;
    }

    if let Some((_, last)) = events.last() {
        batch_history(c, &events).await?;
        let feed: Vec<FeedEvent> = events
            .iter()
            .filter_map(|(name, ev)| {
                let r = regs.get(*name)?;
                Some(FeedEvent::of(0, name, ev, "scheduler", &[r.as_str()]))
            })
            .collect();
        append_feed(c, feed).await?;
        let t = enc(&last.at)?;
        exec(
            c,
            "INSERT INTO zk_meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&KEY_UPDATED, &t],
        )
        .await?;
    }

    if !rounds_of.is_empty() {
        batch_rounds(c, &rounds_of, ret).await?;
    }
    Ok(done)
}

/// Append the batch's history events (in order) and trim each log to
/// [`HISTORY_KEPT`], as one insert and one delete.
pub(super) async fn batch_history(c: &Object, events: &[(&str, &HistoryEvent)]) -> Result<()> {
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    let recs = events
        .iter()
        .map(|(_, ev)| enc(*ev))
        .collect::<Result<Vec<_>>>()?;
    append_history(c, &names, &recs).await
}

/// Append history events (`names[i]`'s event `recs[i]`), each name's after
/// its last stored one in order, then keep each name's last
/// [`HISTORY_KEPT`]: one statement each.
pub(super) async fn append_history<N, R>(c: &Object, names: &[N], recs: &[R]) -> Result<()>
where
    N: tokio_postgres::types::ToSql + Sync,
    R: tokio_postgres::types::ToSql + Sync,
{
    exec(
        c,
        "INSERT INTO history (name, seq, rec)
         SELECT t.n, coalesce((SELECT max(seq) + 1 FROM history h WHERE h.name = t.n), 0)
                + row_number() OVER (PARTITION BY t.n ORDER BY t.o) - 1, t.r
         FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS t(n, r, o)",
        &[&names, &recs],
    )
    .await?;
    exec(
        c,
        "DELETE FROM history h WHERE h.name = ANY($1)
         AND h.seq <= (SELECT max(seq) FROM history x WHERE x.name = h.name) - $2",
        &[&names, &(HISTORY_KEPT as i64)],
    )
    .await?;
    Ok(())
}

/// Append `items` to the change feed, numbered after its last event under
/// the feed lock (one statement per table), then trim it to [`FEED_KEPT`].
pub(super) async fn append_feed(c: &Object, mut items: Vec<FeedEvent>) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    exec(c, lock_sql(), &[&"feed"]).await?;
    let last: i64 = one(c, "SELECT coalesce(max(seq), 0) FROM feed", &[])
        .await?
        .get(0);
    let (mut seqs, mut recs) = (Vec::new(), Vec::new());
    let (mut fr_reg, mut fr_seq) = (Vec::new(), Vec::new());
    for (i, item) in items.iter_mut().enumerate() {
        let seq = last + 1 + i as i64;
        item.seq = seq as u64;
        for r in &item.registrars {
            fr_reg.push(r.clone());
            fr_seq.push(seq);
        }
        seqs.push(seq);
        recs.push(enc(item)?);
    }
    exec(
        c,
        "INSERT INTO feed (seq, rec) SELECT * FROM unnest($1::bigint[], $2::bytea[])",
        &[&seqs, &recs],
    )
    .await?;
    exec(
        c,
        "INSERT INTO feed_registrars (registrar, seq)
         SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
        &[&fr_reg, &fr_seq],
    )
    .await?;
    let cut = last + items.len() as i64 - FEED_KEPT as i64;
    if cut > 0 {
        exec(c, "DELETE FROM feed_registrars WHERE seq <= $1", &[&cut]).await?;
        exec(c, "DELETE FROM feed WHERE seq <= $1", &[&cut]).await?;
    }
    Ok(())
}

/// Append the batch's rounds under the retention policy, with what one
/// append at a time keeps (see [`Retention`]): the k-th rounds of every
/// domain in the batch go together (one insert, two reads and one delete
/// for all of them); a batch has one such pass per round of its busiest
/// domain, almost always one.
pub(super) async fn batch_rounds(
    c: &Object,
    rounds_of: &[(&str, Vec<&RoundSummary>)],
    ret: Retention,
) -> Result<()> {
    let names: Vec<String> = rounds_of.iter().map(|(n, _)| n.to_string()).collect();
    let mut next: HashMap<String, i64> = rows(
        c,
        "SELECT name, max(seq) + 1 FROM rounds WHERE name = ANY($1) GROUP BY name",
        &[&names],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let passes = rounds_of.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    for k in 0..passes {
        let (mut rn, mut rs, mut rr) = (Vec::new(), Vec::new(), Vec::new());
        // (name, the round that leaves the window, the new round's time)
        let mut leaving: Vec<(String, i64, Timestamp)> = Vec::new();
        for (name, v) in rounds_of {
            let Some(r) = v.get(k) else { continue };
            let seq = next.entry(name.to_string()).or_insert(0);
            rn.push(name.to_string());
            rs.push(*seq);
            rr.push(enc(*r)?);
            if let Some(left) = ret.leaving(*seq as u64) {
                leaving.push((name.to_string(), left as i64, r.at));
            }
            *seq += 1;
        }
        exec(
            c,
            "INSERT INTO rounds (name, seq, rec) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])",
            &[&rn, &rs, &rr],
        )
        .await?;
        if leaving.is_empty() {
            continue;
        }
        let ln: Vec<String> = leaving.iter().map(|l| l.0.clone()).collect();
        let ls: Vec<i64> = leaving.iter().map(|l| l.1).collect();
        // Per domain: the leaving round and the one stored before it, and
        // the oldest round at or below it.
        let mut top: HashMap<String, Vec<(i64, Vec<u8>)>> = HashMap::new();
        for r in rows(
            c,
            "SELECT t.name, r.seq, r.rec FROM unnest($1::text[], $2::bigint[]) AS t(name, cut)
             CROSS JOIN LATERAL (SELECT seq, rec FROM rounds
                 WHERE name = t.name AND seq <= t.cut ORDER BY seq DESC LIMIT 2) AS r",
            &[&ln, &ls],
        )
        .await?
        {
            top.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
        }
        for v in top.values_mut() {
            v.sort_by_key(|x| std::cmp::Reverse(x.0));
        }
        let mut oldest: HashMap<String, (i64, Vec<u8>)> = HashMap::new();
        for r in rows(
            c,
            "SELECT t.name, r.seq, r.rec FROM unnest($1::text[], $2::bigint[]) AS t(name, cut)
             CROSS JOIN LATERAL (SELECT seq, rec FROM rounds
                 WHERE name = t.name AND seq <= t.cut ORDER BY seq LIMIT 1) AS r",
            &[&ln, &ls],
        )
        .await?
        {
            oldest.insert(r.get(0), (r.get(1), r.get(2)));
        }
        let (mut dn, mut ds) = (Vec::new(), Vec::new());
        for (name, left, at) in &leaving {
            let t = top.get(name).map(Vec::as_slice).unwrap_or_default();
            let mut dropped = false;
            if let Some((seq, x)) = t.first().filter(|(s, _)| s == left) {
                let before: Option<RoundSummary> = t.get(1).map(|(_, b)| dec(b)).transpose()?;
                if ret.drop_leaving(&dec(x)?, before.as_ref()) {
                    dn.push(name.clone());
                    ds.push(*seq);
                    dropped = true;
                }
            }
            if let Some((seq, o)) = oldest.get(name) {
                // The oldest is the leaving round only if none is older.
                let gone = dropped && seq == left;
                if !gone && ret.expired(&dec(o)?, *at) {
                    dn.push(name.clone());
                    ds.push(*seq);
                }
            }
        }
        if !dn.is_empty() {
            exec(
                c,
                "DELETE FROM rounds r USING unnest($1::text[], $2::bigint[]) AS d(name, seq)
                 WHERE r.name = d.name AND r.seq = d.seq",
                &[&dn, &ds],
            )
            .await?;
        }
    }
    Ok(())
}

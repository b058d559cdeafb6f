//! The schema: refinery migrations, the record-layout rewrites of
//! older schema versions, and the look-alike index rebuild.

use super::*;

/// Rewrite every record of `table` (keyed by `key`, and by `seq` for a
/// log) from the schema-`layout` form `Old` to `New`, inside `tx`.
pub(super) async fn rewrite<Old, New>(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    key: &str,
    log: bool,
    layout: u32,
) -> Result<()>
where
    Old: serde::de::DeserializeOwned,
    New: From<Old> + serde::Serialize,
{
    let seq = if log { ", seq" } else { "" };
    let rows = tx
        .query(
            &format!("SELECT {key}{seq}, rec FROM {table} FOR UPDATE"),
            &[],
        )
        .await
        .map_err(pgerr)?;
    for r in rows {
        let k: String = r.get(0);
        let s: Option<i64> = log.then(|| r.get(1));
        let at = match s {
            Some(s) => format!("{table}[{k}, {s}]"),
            None => format!("{table}[{k}]"),
        };
        let old: Old =
            postcard::from_bytes(r.get::<_, &[u8]>(if log { 2 } else { 1 })).map_err(|e| {
                StoreError::Corrupt(format!(
                    "migration: {at} does not decode as the schema-{layout} layout: {e}"
                ))
            })?;
        let rec = enc(&New::from(old))?;
        match s {
            Some(s) => {
                let q = format!("UPDATE {table} SET rec = $3 WHERE {key} = $1 AND seq = $2");
                tx.execute(&q, &[&k, &s, &rec]).await
            }
            None => {
                let q = format!("UPDATE {table} SET rec = $2 WHERE {key} = $1");
                tx.execute(&q, &[&k, &rec]).await
            }
        }
        .map_err(pgerr)?;
    }
    Ok(())
}

/// Rewrite records written with schema `from` (≥ 2) to
/// [`SCHEMA_VERSION`] and record it, in one transaction (the layouts are
/// redb's: [`super::migrate`]).
pub(super) async fn migrate_records(c: &mut Object, from: u32) -> Result<()> {
    let client: &mut tokio_postgres::Client = c;
    let tx = client.transaction().await.map_err(pgerr)?;
    use super::migrate::{v2, v3, v4, v6};
    if from < 3 {
        // Schema 3 gave contacts a creation time (unknown for these).
        rewrite::<v2::Contact, Contact>(&tx, "contacts", "handle", false, 2).await?;
    }
    if from < 4 {
        // Schema 4 gave domains their host-object links (none).
        rewrite::<v3::Domain, Domain>(&tx, "domains", "name", false, 3).await?;
    } else if from < 5 {
        // Schema 5 gave registrations the registry-move time (none).
        rewrite::<v4::Domain, Domain>(&tx, "domains", "name", false, 4).await?;
    } else if from < 7 {
        // Schema 7 gave registrations the client statuses (none).
        rewrite::<v6::Domain, Domain>(&tx, "domains", "name", false, 6).await?;
    }
    if from < 6 {
        // Schema 6 gave rounds their queue lag and downtime entries their
        // unmeasured time (none measured for these).
        rewrite::<v4::DelegationRecord, DelegationRecord>(&tx, "delegation", "name", false, 5)
            .await?;
        rewrite::<v4::RoundSummary, RoundSummary>(&tx, "rounds", "name", true, 5).await?;
    }
    tx.execute(
        "UPDATE zk_meta SET value = $2 WHERE key = $1",
        &[&KEY_SCHEMA, &SCHEMA_VERSION.to_le_bytes().as_slice()],
    )
    .await
    .map_err(pgerr)?;
    tx.commit().await.map_err(pgerr)
}

impl PgStore {
    /// [`migrate`] on a pooled connection (at connect).
    pub(super) fn migrate_schema(&self, shown: &str) -> Result<()> {
        let p = self.pool.clone();
        let shown = shown.to_string();
        self.spawn(async move {
            let mut c = p.get().await.map_err(|e| StoreError::Database {
                url: shown.clone(),
                message: pool_msg(e),
            })?;
            migrate(&mut c, &shown).await
        })
    }
}

/// Bring the schema up to date (refinery), refusing a newer one.
pub(super) async fn migrate(c: &mut Object, url: &str) -> Result<()> {
    let runner = embedded::migrations::runner();
    let ours = runner
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pgerr)?;
    let r = async {
        let has_history: bool = c
            .query_one(
                "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
                &[],
            )
            .await
            .map_err(pgerr)?
            .get(0);
        if has_history {
            let found: Option<i32> = c
                .query_one("SELECT max(version) FROM refinery_schema_history", &[])
                .await
                .map_err(pgerr)?
                .get(0);
            if let Some(found) = found {
                if i64::from(found) > ours {
                    return Err(StoreError::NewerSchema {
                        path: format!("{url} (SQL schema)"),
                        found: found as u32,
                        supported: ours as u32,
                    });
                }
            }
        }
        let client: &mut tokio_postgres::Client = c;
        runner
            .run_async(client)
            .await
            .map_err(|e| StoreError::Backend(format!("migration: {e}")))?;
        // The record layout, shared with redb.
        let v: Option<Vec<u8>> = c
            .query_opt("SELECT value FROM zk_meta WHERE key = $1", &[&KEY_SCHEMA])
            .await
            .map_err(pgerr)?
            .map(|r| r.get(0));
        match v {
            None => {
                c.execute(
                    "INSERT INTO zk_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&KEY_SCHEMA, &SCHEMA_VERSION.to_le_bytes().as_slice()],
                )
                .await
                .map_err(pgerr)?;
            }
            Some(b) => {
                let arr: [u8; 4] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("schema version".into()))?;
                let found = u32::from_le_bytes(arr);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: url.to_string(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found < 2 {
                    // The PostgreSQL backend started at schema 2.
                    return Err(StoreError::Backend(format!(
                        "records at schema {found}, older than any PostgreSQL store this zonekeeper wrote"
                    )));
                }
                if found < SCHEMA_VERSION {
                    migrate_records(c, found).await?;
                }
            }
        }
        build_skeleton_index(c).await?;
        Ok(())
    }
    .await;
    let _ = c
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    r
}

/// (Re)build the look-alike index unless zk_meta says this skeleton
/// algorithm built it (under the migration lock, in one transaction).
pub(super) async fn build_skeleton_index(c: &mut Object) -> Result<()> {
    let v: Option<Vec<u8>> = c
        .query_opt(
            "SELECT value FROM zk_meta WHERE key = $1",
            &[&KEY_SKELETONS],
        )
        .await
        .map_err(pgerr)?
        .map(|r| r.get(0));
    if v.as_deref() == Some(SKELETON_INDEX_VERSION.as_bytes()) {
        return Ok(());
    }
    let t = c.transaction().await.map_err(pgerr)?;
    t.execute("DELETE FROM domain_skeletons", &[])
        .await
        .map_err(pgerr)?;
    let mut after = String::new();
    loop {
        let names: Vec<String> = t
            .query(
                "SELECT name FROM domains WHERE name > $1 ORDER BY name LIMIT 10000",
                &[&after],
            )
            .await
            .map_err(pgerr)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let Some(last) = names.last().cloned() else {
            break;
        };
        let keys: Vec<String> = names
            .iter()
            .map(|n| skeleton_index_key(&DomainName::from_trusted(n.clone())))
            .collect();
        t.execute(
            "INSERT INTO domain_skeletons (skeleton, name)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&keys, &names],
        )
        .await
        .map_err(pgerr)?;
        after = last;
    }
    t.execute(
        "INSERT INTO zk_meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&KEY_SKELETONS, &SKELETON_INDEX_VERSION.as_bytes()],
    )
    .await
    .map_err(pgerr)?;
    t.commit().await.map_err(pgerr)
}

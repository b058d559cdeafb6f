//! The PostgreSQL backend: several processes (schedulers, front ends, one
//! zone writer) on one database.
//!
//! **Sync trait, async driver.** [`Store`] is synchronous and is called
//! inline from async handlers (as redb is). Making it async would touch
//! every caller while others edit them, so this backend keeps the trait and
//! runs tokio-postgres with a deadpool pool on a small runtime of its own
//! (two worker threads, `zk-postgres`). A call spawns its query there and
//! blocks only the calling thread until the answer arrives: inside a
//! multi-thread runtime through [`tokio::task::block_in_place`] (the
//! runtime moves its other tasks to another worker meanwhile), elsewhere
//! (a current-thread runtime, `spawn_blocking`, a plain thread) by parking
//! the thread. It never calls `Runtime::block_on` from inside a runtime,
//! so it cannot panic there, and the database work itself never runs on
//! the caller's runtime, so a current-thread runtime cannot deadlock.
//! The cost is one thread hop per call (~20 µs) next to the network round
//! trip; a later async trait can call the same queries directly.
//!
//! **Schema.** Migrations are refinery's, embedded from
//! `migrations/postgres/`, run under an advisory lock (processes starting
//! together migrate once). A database migrated by a newer zonekeeper is
//! refused, as is one whose records (`zk_meta.schema_version`, the postcard
//! layout shared with redb) are newer than [`SCHEMA_VERSION`].
//!
//! **Concurrency.** Transactions are READ COMMITTED. A [`Txn`]'s reads take
//! a transaction-scoped advisory lock on the record's key first, so a
//! read-check-write by the registry service in one process cannot interleave
//! with one on the same record in another (the second waits, then reads the
//! first's result). An import instead takes one exclusive lock that every
//! write transaction holds shared (`BULK_LOCK`): other writes wait for the
//! import, which then reads and writes in chunks of a thousand domains
//! with a few multi-row statements each ([`Txn::prefetch`]). Host reference counts are derived from `host_domains`
//! under a lock per host name; change-feed sequence numbers are allocated
//! under one feed lock, so a cursor never skips an event committed late.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use serde::{de::DeserializeOwned, Serialize};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::codec::{FEED_KEPT, HISTORY_KEPT};
use super::contract::*;
use super::retention::Retention;
use crate::model::{
    CdsSighting, Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, HostObject,
    Registrar, RoundSummary, Timestamp, Webhook, WebhookState,
};
use crate::model::{ContactKind, Nameserver};
use crate::names::{skeleton_index_key, DomainName, SKELETON_INDEX_VERSION};
use crate::public::DomainBundle;
use std::collections::BTreeMap;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

const KEY_SCHEMA: &str = "schema_version";
const KEY_UPDATED: &str = "last_update";
/// The [`SKELETON_INDEX_VERSION`] that built `domain_skeletons`.
const KEY_SKELETONS: &str = "skeleton_index";
/// Advisory lock held while migrating (any constant shared by all builds).
const MIGRATION_LOCK: i64 = 0x7a6b_6d69_6772;
/// Advisory lock every write transaction holds shared and a bulk writer
/// (import) exclusively: while an import runs, other writes wait for it,
/// so it needs no lock per record (a million of them would overflow the
/// server's lock table).
const BULK_LOCK: i64 = 0x7a6b_6275_6c6b;
/// Rows fetched per page when walking a whole table.
const WALK_PAGE: i64 = 10_000;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => url.split('@').next_back().unwrap_or_default().to_string(),
    }
}

fn pgerr(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // disk_full: the database's volume is full.
        Some(db) if db.code().code() == "53100" => StoreError::Full(format!("postgresql: {db}")),
        // Connection exceptions, shutting down, starting up: it comes back.
        Some(db)
            if db.code().code().starts_with("08")
                || ["57P01", "57P02", "57P03"].contains(&db.code().code()) =>
        {
            StoreError::Unavailable(format!("postgresql: {db}"))
        }
        Some(db) => StoreError::Backend(format!("postgresql: {db}")),
        None => {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m.push_str(": ");
                m.push_str(&s.to_string());
                src = s.source();
            }
            // No answer from the server: the connection or the server is
            // gone (a restart); the pool reconnects.
            StoreError::Unavailable(format!("postgresql: {m}"))
        }
    }
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    super::codec::enc(v)
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

/// Wait for `h` from synchronous code without blocking a runtime worker
/// the runtime counts on (see the module docs).
fn wait<T>(h: tokio::task::JoinHandle<T>) -> Result<T> {
    let join = move || futures::executor::block_on(h);
    let r = match Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(join)
        }
        _ => join(),
    };
    r.map_err(|e| StoreError::Backend(format!("postgresql task: {e}")))
}

pub struct PgStore {
    /// `None` only while dropping (shut down without blocking).
    rt: Option<Runtime>,
    pool: Pool,
    url: String,
    retention: Retention,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A runtime dropped inside another one panics; this one stops its
        // threads in the background instead.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connect to `url`, migrate the schema, and check its version. An
    /// unreachable database fails here, with the URL (password hidden).
    pub fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let shown = redact(url);
        let fail = |message: String| StoreError::Database {
            url: shown.clone(),
            message,
        };
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| fail(e.to_string()))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(5));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("zonekeeper");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zk-postgres")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("runtime: {e}")))?;
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let store = Self {
            rt: Some(rt),
            pool,
            url: shown.clone(),
            retention: Retention::default(),
        };
        let p = store.pool.clone();
        let shown2 = shown.clone();
        store
            .spawn(async move {
                let mut c = p.get().await.map_err(|e| StoreError::Database {
                    url: shown2.clone(),
                    message: pool_msg(e),
                })?;
                migrate(&mut c, &shown2).await
            })
            .map_err(|e| match e {
                StoreError::Backend(m) | StoreError::Unavailable(m) => fail(m),
                other => other,
            })?;
        Ok(store)
    }

    /// Which probe rounds to keep from now on (see [`Retention`]).
    pub fn set_retention(&mut self, r: Retention) {
        self.retention = r;
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn handle(&self) -> Handle {
        match &self.rt {
            Some(rt) => rt.handle().clone(),
            // Unreachable: only Drop takes the runtime.
            None => Handle::current(),
        }
    }

    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        wait(self.handle().spawn(fut))?
    }

    /// Run `f` with a pooled connection (autocommit).
    fn with<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send,
    {
        let pool = self.pool.clone();
        self.spawn(async move {
            let c = pool.get().await.map_err(pool_err)?;
            f(c).await
        })
    }

    fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<T>> {
        let key = key.to_string();
        let b: Option<Vec<u8>> =
            self.with(move |c| async move { Ok(opt(&c, sql, &[&key]).await?.map(|r| r.get(0))) })?;
        b.map(|b| dec(&b)).transpose()
    }

    /// A page of keys: `sql` takes ($1 key, $2 after, $3 limit) and returns
    /// the keys in order.
    fn page(
        &self,
        sql: &'static str,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        let key = key.to_string();
        let after = after.unwrap_or("").to_string();
        let n = lim(limit).saturating_add(1);
        let mut keys: Vec<String> = self.with(move |c| async move {
            Ok(rows(&c, sql, &[&key, &after, &n])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        Ok(cut(&mut keys, limit))
    }

    fn log_tail<T: DeserializeOwned>(
        &self,
        table: Log,
        name: &str,
        limit: usize,
    ) -> Result<Vec<T>> {
        let name = name.to_string();
        let n = lim(limit);
        let sql = match table {
            Log::History => {
                "SELECT rec FROM (SELECT seq, rec FROM history WHERE name = $1 ORDER BY seq DESC LIMIT $2) t ORDER BY seq"
            }
            Log::Rounds => {
                "SELECT rec FROM (SELECT seq, rec FROM rounds WHERE name = $1 ORDER BY seq DESC LIMIT $2) t ORDER BY seq"
            }
        };
        let recs: Vec<Vec<u8>> = self.with(move |c| async move {
            Ok(rows(&c, sql, &[&name, &n])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        recs.iter().map(|b| dec(b)).collect()
    }

    fn write_delegation_when(
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

    /// [`Store::put_delegations`]: the scheduler's group commit in ONE
    /// transaction, with a few multi-row statements per table (the batch's
    /// records locked and read together; each write's condition checked
    /// against the record as the batch left it; delegation rows, history,
    /// feed and rounds sent as `unnest` arrays). Nothing of the batch is
    /// visible, or acknowledged, before its COMMIT.
    fn write_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
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

    fn pg_begin(&self) -> Result<PgTxn> {
        let pool = self.pool.clone();
        let client = self.spawn(async move {
            let c = pool.get().await.map_err(pool_err)?;
            c.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({BULK_LOCK})"
            ))
            .await
            .map_err(pgerr)?;
            Ok(c)
        })?;
        Ok(PgTxn {
            client: Some(Arc::new(client)),
            rt: self.handle(),
            bulk: None,
        })
    }

    /// Names of the domains whose due work another live scheduler holds,
    /// and claim the rest of `names` for `owner` until `now + lease`.
    /// Returns the names this owner now holds. One statement: `FOR UPDATE
    /// SKIP LOCKED` lets schedulers claim side by side without waiting
    /// for each other.
    fn claim_leases(&self, owner: &str, names: &[String], lease: Duration) -> Result<Vec<String>> {
        let owner = owner.to_string();
        let names = names.to_vec();
        let secs = lease.as_secs_f64();
        self.with(move |c| async move {
            exec(
                &c,
                "INSERT INTO leases (name, owner, expires)
                 SELECT unnest($1::text[]), '', '-infinity' ON CONFLICT DO NOTHING",
                &[&names],
            )
            .await?;
            let r = rows(
                &c,
                "UPDATE leases SET owner = $1, expires = now() + make_interval(secs => $3)
                 WHERE name IN (
                     SELECT name FROM leases
                     WHERE name = ANY($2::text[]) AND (owner = $1 OR expires <= now())
                     FOR UPDATE SKIP LOCKED
                 )
                 RETURNING name",
                &[&owner, &names, &secs],
            )
            .await?;
            Ok(r.iter().map(|r| r.get(0)).collect())
        })
    }

    /// [`Self::claim_leases`] in ONE statement that also returns each
    /// granted domain's records (one snapshot, one round trip for the
    /// batch). A name without a lease row yet is granted by inserting its
    /// row; a concurrent insert of the same name by another scheduler
    /// wins, and then neither part here sees the row (the update's
    /// snapshot predates it), so a name is granted at most once.
    fn claim_leases_loaded(
        &self,
        owner: &str,
        names: &[String],
        lease: Duration,
    ) -> Result<Vec<crate::store::Claimed>> {
        let owner = owner.to_string();
        let names = names.to_vec();
        let secs = lease.as_secs_f64();
        type Raw = (String, Option<Vec<u8>>, Option<Vec<u8>>);
        let raw: Vec<Raw> = self.with(move |c| async move {
            Ok(rows(
                &c,
                "WITH ins AS (
                     INSERT INTO leases (name, owner, expires)
                     SELECT unnest($2::text[]), $1, now() + make_interval(secs => $3)
                     ON CONFLICT DO NOTHING
                     RETURNING name),
                 upd AS (
                     UPDATE leases SET owner = $1, expires = now() + make_interval(secs => $3)
                     WHERE name IN (
                         SELECT name FROM leases
                         WHERE name = ANY($2::text[]) AND (owner = $1 OR expires <= now())
                         FOR UPDATE SKIP LOCKED
                     )
                     RETURNING name),
                 g AS (SELECT name FROM ins UNION ALL SELECT name FROM upd)
                 SELECT g.name, d.rec, r.rec FROM g
                 LEFT JOIN domains d ON d.name = g.name
                 LEFT JOIN delegation r ON r.name = g.name",
                &[&owner, &names, &secs],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
        })?;
        raw.into_iter()
            .map(|(name, d, r)| {
                let loaded = match (d, r) {
                    (Some(d), Some(r)) => Some((dec(&d)?, dec(&r)?)),
                    _ => None,
                };
                Ok((name, loaded))
            })
            .collect()
    }

    /// Give up `owner`'s leases on `names` (all if empty).
    fn release_leases(&self, owner: &str, names: &[String]) -> Result<()> {
        let owner = owner.to_string();
        let names = names.to_vec();
        self.with(move |c| async move {
            exec(
                &c,
                "DELETE FROM leases WHERE owner = $1 AND (cardinality($2::text[]) = 0 OR name = ANY($2::text[]))",
                &[&owner, &names],
            )
            .await
            .map(drop)
        })
    }

    /// A dedicated connection (not from the pool) for session-level
    /// advisory locks, e.g. the zone writer's leadership: the lock lives
    /// as long as the returned guard.
    pub fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>> {
        let pool = self.pool.clone();
        let got = self.spawn(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let r = one(&c, "SELECT pg_try_advisory_lock($1)", &[&key]).await?;
            let ok: bool = r.get(0);
            Ok(ok.then_some(c))
        })?;
        Ok(got.map(|c| SessionLock {
            client: Some(c),
            key,
            rt: self.handle(),
        }))
    }
}

/// A held session advisory lock (dropped: unlocked, connection returned).
pub struct SessionLock {
    client: Option<Object>,
    key: i64,
    rt: Handle,
}

impl SessionLock {
    /// Whether the connection holding the lock is still alive.
    pub fn alive(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let key = self.key;
            self.rt.spawn(async move {
                let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await;
            });
        }
    }
}

fn pool_msg(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match pgerr(e) {
            StoreError::Backend(m) | StoreError::Unavailable(m) | StoreError::Full(m) => m,
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

/// No connection from the pool: the database is away for now.
fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(pool_msg(e))
}

/// A LIMIT for SQL (`usize::MAX` means all).
fn lim(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Keep `limit` keys; the last one kept is the cursor if there were more.
fn cut(keys: &mut Vec<String>, limit: usize) -> Page {
    if keys.len() > limit {
        keys.truncate(limit);
        let more = keys.last().cloned();
        (std::mem::take(keys), more)
    } else {
        (std::mem::take(keys), None)
    }
}

async fn rows(c: &Object, sql: &str, p: Params<'_>) -> Result<Vec<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await.map_err(pgerr)?;
    c.query(&st, p).await.map_err(pgerr)
}

async fn opt(c: &Object, sql: &str, p: Params<'_>) -> Result<Option<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await.map_err(pgerr)?;
    c.query_opt(&st, p).await.map_err(pgerr)
}

async fn one(c: &Object, sql: &str, p: Params<'_>) -> Result<tokio_postgres::Row> {
    let st = c.prepare_cached(sql).await.map_err(pgerr)?;
    c.query_one(&st, p).await.map_err(pgerr)
}

async fn exec(c: &Object, sql: &str, p: Params<'_>) -> Result<u64> {
    let st = c.prepare_cached(sql).await.map_err(pgerr)?;
    c.execute(&st, p).await.map_err(pgerr)
}

/// Rewrite every record of `table` (keyed by `key`, and by `seq` for a
/// log) from the schema-`layout` form `Old` to `New`, inside `tx`.
async fn rewrite<Old, New>(
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
async fn migrate_records(c: &mut Object, from: u32) -> Result<()> {
    let client: &mut tokio_postgres::Client = c;
    let tx = client.transaction().await.map_err(pgerr)?;
    use super::migrate::{v2, v3, v4};
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

/// Bring the schema up to date (refinery), refusing a newer one.
async fn migrate(c: &mut Object, url: &str) -> Result<()> {
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

#[derive(Clone, Copy)]
enum Log {
    History,
    Rounds,
}

/// A [`Txn`] on one pooled connection inside `BEGIN`; dropped without
/// commit, it is rolled back before the connection goes back to the pool.
struct PgTxn {
    client: Option<Arc<Object>>,
    rt: Handle,
    /// After a [`Txn::prefetch`]: the announced records and the writes
    /// waiting to be sent together.
    bulk: Option<RefCell<Bulk>>,
}

/// Pending writes flushed before this many domains are buffered.
const BULK_FLUSH: usize = 2000;

/// The prefetched records of a chunk (keys `d:`/`g:`/`c:` + name or
/// handle: the domain, its delegation record, a contact; `None`: known
/// absent) and the batched writes not sent yet. Reads of these keys see
/// the transaction's own writes; any other statement sends the pending
/// writes first, so what the transaction reads is what it wrote.
#[derive(Default)]
struct Bulk {
    cache: HashMap<String, Option<Vec<u8>>>,
    domains: Vec<NewDomain>,
    /// name -> (state, pending_test, rec); the last write wins.
    delegations: HashMap<String, (String, bool, Vec<u8>)>,
    /// (domain, history record, feed event with its seq still to assign)
    events: Vec<(String, Vec<u8>, FeedEvent)>,
}

impl Bulk {
    fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.delegations.is_empty() && self.events.is_empty()
    }
}

/// A domain new to the store, as its insert rows.
struct NewDomain {
    name: String,
    registrar: String,
    reseller: Option<String>,
    pending: bool,
    rec: Vec<u8>,
    contacts: Vec<String>,
    /// (host, glue addresses if this domain owns the host's glue)
    hosts: Vec<(String, Option<Vec<String>>)>,
    /// Its look-alike key ([`skeleton_index_key`]).
    skeleton: String,
}

impl Drop for PgTxn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.rt.spawn(async move {
                let _ = c.batch_execute("ROLLBACK").await;
            });
        }
    }
}

/// (Re)build the look-alike index unless zk_meta says this skeleton
/// algorithm built it (under the migration lock, in one transaction).
async fn build_skeleton_index(c: &mut Object) -> Result<()> {
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

const LOOK_ALIKE_SQL: &str = "SELECT name FROM domain_skeletons WHERE skeleton = $1 AND name <> $2
     ORDER BY name LIMIT 1";

/// Advisory-lock key of a record (transaction-scoped).
fn lock_sql() -> &'static str {
    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
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

    fn log_append<T: Serialize>(&self, log: Log, name: &str, v: &T, keep: usize) -> Result<()> {
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
    fn rounds_append(&self, name: &str, r: &RoundSummary, ret: Retention) -> Result<()> {
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

    fn commit_untouched(mut self) -> Result<()> {
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

fn contacts_of(d: &Domain) -> Vec<String> {
    let mut v: Vec<String> = [Some(&d.registrant), d.admin.as_ref(), d.tech.as_ref()]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The lower-cased public name of a contact (see the redb backend).
fn public_fn(c: &Contact) -> Option<String> {
    let p = crate::public::contact(c);
    match c.kind {
        ContactKind::Org => p.org.or(p.name),
        ContactKind::Person => p.name,
    }
    .map(|s| s.to_lowercase())
}

fn pending_testing(r: &DelegationRecord) -> bool {
    r.pending
        .as_ref()
        .is_some_and(|p| p.state == DelegationState::Testing)
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
        self.run(move |c| async move {
            match rec {
                Some(rec) => exec(
                    &c,
                    "INSERT INTO auth_failures (name, rec) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec",
                    &[&n, &rec],
                )
                .await
                .map(drop),
                None => exec(&c, "DELETE FROM auth_failures WHERE name = $1", &[&n])
                    .await
                    .map(drop),
            }
        })
    }
    fn put_domain(&mut self, d: &Domain) -> Result<()> {
        let old = self.domain(d.name.as_str())?;
        if old.as_ref() == Some(d) {
            return Ok(());
        }
        let name = d.name.as_str().to_string();
        let rec = enc(d)?;
        let registrar = d.registrar.clone();
        let reseller = d.registration.reseller.clone();
        let pending = d.registration.pending_transfer.is_some();
        let contacts = contacts_of(d);
        let key = format!("d:{name}");
        if old.is_none() {
            if let Some(b) = &self.bulk {
                let mut b = b.borrow_mut();
                if let Some(v) = b.cache.get_mut(&key) {
                    // Announced and new: inserted with its chunk.
                    *v = Some(rec.clone());
                    let hosts = d
                        .nameservers
                        .iter()
                        .map(|n| {
                            let owner = n.name.is_at_or_below(d.name.as_str());
                            (
                                n.name.as_str().to_string(),
                                owner.then(|| n.addresses.iter().map(IpAddr::to_string).collect()),
                            )
                        })
                        .collect();
                    b.domains.push(NewDomain {
                        name,
                        registrar,
                        reseller,
                        pending,
                        rec,
                        contacts,
                        hosts,
                        skeleton: skeleton_index_key(&d.name),
                    });
                    drop(b);
                    return self.flush_if_full();
                }
            }
        }
        self.recache(&key, Some(rec.clone()));
        let keyed = self.bulk.is_none();
        let old_ns: Vec<String> = old
            .as_ref()
            .map(|o| {
                o.nameservers
                    .iter()
                    .map(|n| n.name.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default();
        // (host, glue addresses if this domain owns the host's glue)
        let new_ns: Vec<(String, Option<Vec<String>>)> = d
            .nameservers
            .iter()
            .map(|n: &Nameserver| {
                let owner = n.name.is_at_or_below(d.name.as_str());
                (
                    n.name.as_str().to_string(),
                    owner.then(|| n.addresses.iter().map(IpAddr::to_string).collect()),
                )
            })
            .collect();
        let dropped: Vec<(String, bool)> = old
            .as_ref()
            .map(|o| {
                o.nameservers
                    .iter()
                    .filter(|n| !d.nameservers.iter().any(|m| m.name == n.name))
                    .map(|n| {
                        (
                            n.name.as_str().to_string(),
                            n.name.is_at_or_below(d.name.as_str()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let skeleton = old.is_none().then(|| skeleton_index_key(&d.name));
        self.run(move |c| async move {
            if let Some(k) = &skeleton {
                exec(
                    &c,
                    "INSERT INTO domain_skeletons (skeleton, name) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[k, &name],
                )
                .await?;
            }
            exec(
                &c,
                "INSERT INTO domains (name, registrar, reseller, pending_transfer, rec)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET registrar = EXCLUDED.registrar,
                   reseller = EXCLUDED.reseller, pending_transfer = EXCLUDED.pending_transfer,
                   rec = EXCLUDED.rec",
                &[&name, &registrar, &reseller, &pending, &rec],
            )
            .await?;
            exec(
                &c,
                "DELETE FROM domain_contacts WHERE domain = $1 AND NOT (contact = ANY($2::text[]))",
                &[&name, &contacts],
            )
            .await?;
            exec(
                &c,
                "INSERT INTO domain_contacts (contact, domain)
                 SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
                &[&name, &contacts],
            )
            .await?;
            // Hosts, locked in one order so two writers cannot deadlock.
            let mut all: Vec<&String> = dropped
                .iter()
                .map(|(h, _)| h)
                .chain(new_ns.iter().map(|(h, _)| h))
                .collect();
            all.sort();
            all.dedup();
            for h in all.into_iter().filter(|_| keyed) {
                exec(&c, lock_sql(), &[&format!("h:{h}")]).await?;
            }
            for (host, owner) in &dropped {
                exec(
                    &c,
                    "DELETE FROM host_domains WHERE host = $1 AND domain = $2",
                    &[host, &name],
                )
                .await?;
                let left: i64 = one(
                    &c,
                    "SELECT count(*) FROM host_domains WHERE host = $1",
                    &[host],
                )
                .await?
                .get(0);
                if left == 0 {
                    exec(&c, "DELETE FROM host_ips WHERE host = $1", &[host]).await?;
                    exec(&c, "DELETE FROM hosts WHERE name = $1", &[host]).await?;
                } else if *owner {
                    set_addresses(&c, host, &[]).await?;
                }
            }
            for (host, glue) in &new_ns {
                exec(
                    &c,
                    "INSERT INTO hosts (name, addresses) VALUES ($1, '{}') ON CONFLICT DO NOTHING",
                    &[host],
                )
                .await?;
                if !old_ns.contains(host) {
                    exec(
                        &c,
                        "INSERT INTO host_domains (host, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[host, &name],
                    )
                    .await?;
                }
                if let Some(addrs) = glue {
                    set_addresses(&c, host, addrs).await?;
                }
            }
            Ok(())
        })
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

/// The body of [`PgStore::write_delegations`] inside its transaction.
async fn batch_write(c: &Object, writes: &[DelegationWrite], ret: Retention) -> Result<Vec<bool>> {
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
async fn batch_history(c: &Object, events: &[(&str, &HistoryEvent)]) -> Result<()> {
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
async fn append_history<N, R>(c: &Object, names: &[N], recs: &[R]) -> Result<()>
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
async fn append_feed(c: &Object, mut items: Vec<FeedEvent>) -> Result<()> {
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
async fn batch_rounds(
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

/// Send a chunk's batched writes: a few multi-row statements where the
/// row-by-row path sends ~25 per domain. Same rows, same locks.
async fn flush(c: &Object, b: Bulk) -> Result<()> {
    if !b.domains.is_empty() {
        let mut names = Vec::new();
        let mut regs = Vec::new();
        let mut resellers = Vec::new();
        let mut pendings = Vec::new();
        let mut recs = Vec::new();
        let (mut dc_contact, mut dc_domain) = (Vec::new(), Vec::new());
        let (mut hd_host, mut hd_domain) = (Vec::new(), Vec::new());
        let mut glue: Vec<(&String, &Vec<String>)> = Vec::new();
        let mut skeletons = Vec::new();
        for d in &b.domains {
            names.push(&d.name);
            skeletons.push(&d.skeleton);
            regs.push(&d.registrar);
            resellers.push(d.reseller.as_ref());
            pendings.push(d.pending);
            recs.push(&d.rec);
            for ct in &d.contacts {
                dc_contact.push(ct);
                dc_domain.push(&d.name);
            }
            for (h, g) in &d.hosts {
                hd_host.push(h);
                hd_domain.push(&d.name);
                if let Some(a) = g {
                    glue.push((h, a));
                }
            }
        }
        exec(
            c,
            "INSERT INTO domains (name, registrar, reseller, pending_transfer, rec)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bytea[])
             ON CONFLICT (name) DO UPDATE SET registrar = EXCLUDED.registrar,
               reseller = EXCLUDED.reseller, pending_transfer = EXCLUDED.pending_transfer,
               rec = EXCLUDED.rec",
            &[&names, &regs, &resellers, &pendings, &recs],
        )
        .await?;
        exec(
            c,
            "INSERT INTO domain_skeletons (skeleton, name)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&skeletons, &names],
        )
        .await?;
        exec(
            c,
            "INSERT INTO domain_contacts (contact, domain)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&dc_contact, &dc_domain],
        )
        .await?;
        let mut hosts: Vec<&String> = hd_host.clone();
        hosts.sort_unstable();
        hosts.dedup();
        exec(
            c,
            "INSERT INTO hosts (name, addresses)
             SELECT h, '{}' FROM unnest($1::text[]) AS h ON CONFLICT DO NOTHING",
            &[&hosts],
        )
        .await?;
        exec(
            c,
            "INSERT INTO host_domains (host, domain)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&hd_host, &hd_domain],
        )
        .await?;
        if !glue.is_empty() {
            // The glue of the hosts these domains own, in three statements
            // (as set_addresses does per host).
            let owned: Vec<&String> = glue.iter().map(|(h, _)| *h).collect();
            let (mut g_host, mut g_ip) = (Vec::new(), Vec::new());
            for (h, addrs) in &glue {
                for a in addrs.iter() {
                    g_host.push(*h);
                    g_ip.push(a);
                }
            }
            exec(c, "DELETE FROM host_ips WHERE host = ANY($1)", &[&owned]).await?;
            exec(
                c,
                "INSERT INTO host_ips (ip, host)
                 SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                &[&g_ip, &g_host],
            )
            .await?;
            exec(
                c,
                "UPDATE hosts h SET addresses = coalesce(
                   (SELECT array_agg(x.ip ORDER BY x.o)
                    FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(host, ip, o)
                    WHERE x.host = h.name), '{}')
                 WHERE h.name = ANY($1)",
                &[&owned, &g_host, &g_ip],
            )
            .await?;
        }
    }
    if !b.delegations.is_empty() {
        let mut names = Vec::new();
        let mut states = Vec::new();
        let mut pendings = Vec::new();
        let mut recs = Vec::new();
        for (n, (s, p, r)) in &b.delegations {
            names.push(n);
            states.push(s);
            pendings.push(*p);
            recs.push(r);
        }
        exec(
            c,
            "INSERT INTO delegation (name, state, pending_test, rec)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bytea[])
             ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state,
               pending_test = EXCLUDED.pending_test, rec = EXCLUDED.rec",
            &[&names, &states, &pendings, &recs],
        )
        .await?;
    }
    if !b.events.is_empty() {
        let names: Vec<&String> = b.events.iter().map(|(n, _, _)| n).collect();
        let recs: Vec<&Vec<u8>> = b.events.iter().map(|(_, r, _)| r).collect();
        append_history(c, &names, &recs).await?;
        append_feed(c, b.events.into_iter().map(|(_, _, item)| item).collect()).await?;
    }
    Ok(())
}

async fn set_addresses(c: &Object, host: &str, addrs: &[String]) -> Result<()> {
    let cur: Vec<String> = one(c, "SELECT addresses FROM hosts WHERE name = $1", &[&host])
        .await?
        .get(0);
    if cur == addrs {
        return Ok(());
    }
    let addrs = addrs.to_vec();
    exec(c, "DELETE FROM host_ips WHERE host = $1", &[&host]).await?;
    exec(
        c,
        "INSERT INTO host_ips (ip, host) SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
        &[&host, &addrs],
    )
    .await?;
    exec(
        c,
        "UPDATE hosts SET addresses = $2 WHERE name = $1",
        &[&host, &addrs],
    )
    .await
    .map(drop)
}

fn host_record(name: String, addrs: Vec<String>, domains: i64) -> Result<HostRecord> {
    let addresses = addrs
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| StoreError::Corrupt(format!("host {name}: address {a}")))
        })
        .collect::<Result<_>>()?;
    Ok(HostRecord {
        name,
        addresses,
        domains: domains as u64,
    })
}

impl Store for PgStore {
    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.get("SELECT rec FROM host_objects WHERE name = $1", name)
    }

    fn host_objects_under(&self, domain: &str) -> Result<Vec<HostObject>> {
        let (d, below) = (domain.to_string(), format!("%.{domain}"));
        let recs: Vec<Vec<u8>> = self.with(|c| async move {
            Ok(rows(
                &c,
                "SELECT rec FROM host_objects WHERE name = $1 OR name LIKE $2 ORDER BY name",
                &[&d, &below],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })?;
        recs.iter().map(|b| dec(b)).collect()
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
        self.with(move |c| async move {
            match rec {
                Some(rec) => exec(
                    &c,
                    "INSERT INTO cds_sightings (name, rec) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec",
                    &[&n, &rec],
                )
                .await
                .map(drop),
                None => exec(&c, "DELETE FROM cds_sightings WHERE name = $1", &[&n])
                    .await
                    .map(drop),
            }
        })
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
        let recs: Vec<Vec<u8>> = self.with(|c| async move {
            Ok(rows(&c, "SELECT rec FROM registrars ORDER BY handle", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        recs.iter().map(|b| dec(b)).collect()
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
        let registrar = registrar.to_string();
        let after = after.min(i64::MAX as u64) as i64;
        let n = lim(limit);
        let recs: Vec<Vec<u8>> = self.with(move |c| async move {
            Ok(rows(
                &c,
                "SELECT f.rec FROM feed_registrars r JOIN feed f ON f.seq = r.seq
                 WHERE r.registrar = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
                &[&registrar, &after, &n],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })?;
        recs.iter().map(|b| dec(b)).collect()
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
        self.write_delegation_when(name, accept, record, event, round)
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
    ) -> Result<Vec<crate::store::Claimed>> {
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

/// name, domain record, delegation record, indexed hosts, indexed contacts.
type DomainRow = (String, Vec<u8>, Option<Vec<u8>>, Vec<String>, Vec<String>);

impl Maintenance for PgStore {
    /// VACUUM (ANALYZE): dead rows' space reused, planner statistics
    /// fresh after a bulk import.
    fn compact(&mut self) -> Result<()> {
        self.with(|c| async move { c.batch_execute("VACUUM (ANALYZE)").await.map_err(pgerr) })
    }

    /// The invariants the redb backend checks, as queries (each domain
    /// and delegation record decoded once).
    fn verify(&self) -> Result<Vec<String>> {
        let mut problems: Vec<String> = self.with(|c| async move {
            let mut p = Vec::new();
            let checks: [(&str, &str); 8] = [
                (
                    "SELECT d.name FROM domains d LEFT JOIN delegation g ON g.name = d.name WHERE g.name IS NULL",
                    "no delegation record",
                ),
                (
                    "SELECT g.name FROM delegation g LEFT JOIN domains d ON d.name = g.name WHERE d.name IS NULL",
                    "delegation record without a domain",
                ),
                (
                    "SELECT d.name FROM domains d LEFT JOIN registrars r ON r.handle = d.registrar WHERE r.handle IS NULL",
                    "registrar missing",
                ),
                (
                    "SELECT x.domain || ' (' || x.contact || ')' FROM domain_contacts x LEFT JOIN contacts c ON c.handle = x.contact WHERE c.handle IS NULL",
                    "contact missing",
                ),
                (
                    "SELECT x.domain FROM domain_contacts x LEFT JOIN domains d ON d.name = x.domain WHERE d.name IS NULL",
                    "contact index entry is stale",
                ),
                (
                    "SELECT x.host || ' (' || x.domain || ')' FROM host_domains x LEFT JOIN domains d ON d.name = x.domain WHERE d.name IS NULL",
                    "host index entry is stale",
                ),
                (
                    "SELECT h.name FROM hosts h WHERE NOT EXISTS (SELECT 1 FROM host_domains x WHERE x.host = h.name)",
                    "host record no domain declares",
                ),
                (
                    "SELECT i.host || ' (' || i.ip || ')' FROM host_ips i LEFT JOIN hosts h ON h.name = i.host WHERE h.name IS NULL OR NOT (i.ip = ANY(h.addresses))",
                    "address index entry is stale",
                ),
            ];
            for (sql, what) in checks {
                for r in rows(&c, sql, &[]).await? {
                    let k: String = r.get(0);
                    p.push(format!("{k}: {what}"));
                }
            }
            Ok(p)
        })?;
        // Record-level checks: NS sets, contacts and derived columns.
        let mut after = String::new();
        loop {
            let a = after.clone();
            let page: Vec<DomainRow> =
                self.with(move |c| async move {
                    Ok(rows(
                        &c,
                        "SELECT d.name, d.rec, g.rec,
                           ARRAY(SELECT host FROM host_domains WHERE domain = d.name ORDER BY host),
                           ARRAY(SELECT contact FROM domain_contacts WHERE domain = d.name ORDER BY contact)
                         FROM domains d LEFT JOIN delegation g ON g.name = d.name
                         WHERE d.name > $1 ORDER BY d.name LIMIT $2",
                        &[&a, &WALK_PAGE],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect())
                })?;
            for (name, d, g, hosts, contacts) in &page {
                let d: Domain = dec(d)?;
                if d.name.as_str() != name {
                    problems.push(format!("domain key {name} holds {}", d.name));
                }
                if let Some(g) = g {
                    let g: DelegationRecord = dec(g)?;
                    if g.declared_fingerprint() != d.ns_fingerprint() {
                        problems.push(format!("{name}: delegation record is for another NS set"));
                    }
                }
                let mut ns: Vec<String> = d
                    .nameservers
                    .iter()
                    .map(|n| n.name.as_str().to_string())
                    .collect();
                ns.sort();
                ns.dedup();
                if &ns != hosts {
                    problems.push(format!("{name}: host index differs from its NS set"));
                }
                if &contacts_of(&d) != contacts {
                    problems.push(format!("{name}: contact index differs from its contacts"));
                }
            }
            match page.last() {
                Some((n, ..)) if page.len() as i64 == WALK_PAGE => after = n.clone(),
                _ => break,
            }
        }
        let bad_state: Vec<String> = {
            let mut out = Vec::new();
            let mut after = String::new();
            loop {
                let a = after.clone();
                let page: Vec<(String, String, bool, Vec<u8>)> = self.with(move |c| async move {
                    Ok(rows(
                        &c,
                        "SELECT name, state, pending_test, rec FROM delegation WHERE name > $1 ORDER BY name LIMIT $2",
                        &[&a, &WALK_PAGE],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect())
                })?;
                for (name, state, pending, b) in &page {
                    let r: DelegationRecord = dec(b)?;
                    if r.state.as_str() != state || pending_testing(&r) != *pending {
                        out.push(format!("{name}: state columns differ from the record"));
                    }
                }
                match page.last() {
                    Some((n, ..)) if page.len() as i64 == WALK_PAGE => after = n.clone(),
                    _ => break,
                }
            }
            out
        };
        problems.extend(bad_state);
        Ok(problems)
    }
}

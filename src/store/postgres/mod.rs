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
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use serde::{de::DeserializeOwned, Serialize};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::codec::{dec, enc, FEED_KEPT, HISTORY_KEPT};
use super::contract::*;
use super::indexes::{pending_testing, public_fn, DomainIndexes, IndexDiff, IndexEntry};
use super::retention::Retention;
use super::verify::{self, Stored};
use crate::model::{
    CdsSighting, Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, HostObject,
    Registrar, RoundSummary, Timestamp, Webhook, WebhookState,
};

use crate::names::{skeleton_index_key, DomainName, SKELETON_INDEX_VERSION};
use crate::public::DomainBundle;

mod batch;
mod check;
mod domains;
mod reads;
mod schema;
mod txn;
use super::{codec, migrate};

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
        store.migrate_schema(&shown).map_err(|e| match e {
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

    /// Every row `sql` returns, its one column (a record) decoded.
    fn recs<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
    ) -> Result<Vec<T>> {
        let recs: Vec<Vec<u8>> = self.with(move |c| async move {
            let p: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            Ok(rows(&c, sql, &p).await?.iter().map(|r| r.get(0)).collect())
        })?;
        recs.iter().map(|b| dec(b)).collect()
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
        self.recs(sql, vec![Box::new(name), Box::new(n)])
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
    ) -> Result<Vec<crate::store::contract::Claimed>> {
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

/// Upsert `rec` under `name` in a `(name, rec)` table, or delete the row
/// when there is no `rec`.
async fn put_or_delete(c: &Object, table: &str, name: &str, rec: Option<Vec<u8>>) -> Result<()> {
    match rec {
        Some(rec) => {
            let sql = format!(
                "INSERT INTO {table} (name, rec) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec"
            );
            exec(c, &sql, &[&name, &rec]).await.map(drop)
        }
        None => {
            let sql = format!("DELETE FROM {table} WHERE name = $1");
            exec(c, &sql, &[&name]).await.map(drop)
        }
    }
}

async fn exec(c: &Object, sql: &str, p: Params<'_>) -> Result<u64> {
    let st = c.prepare_cached(sql).await.map_err(pgerr)?;
    c.execute(&st, p).await.map_err(pgerr)
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

const LOOK_ALIKE_SQL: &str = "SELECT name FROM domain_skeletons WHERE skeleton = $1 AND name <> $2
     ORDER BY name LIMIT 1";

/// Advisory-lock key of a record (transaction-scoped).
fn lock_sql() -> &'static str {
    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
}

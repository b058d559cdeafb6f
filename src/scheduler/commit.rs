//! Group commit: rounds hand their conditional writes to one writer task,
//! which commits many of them per store transaction
//! ([`crate::store::Store::put_delegations`]) instead of one durable
//! transaction (one fsync) per round.
//!
//! - A batch starts with the first write waiting; the writer then takes
//!   what else is queued, waits at most `delegation.commit_wait` for more,
//!   and commits at most `delegation.commit_batch` writes at once. While a
//!   batch commits, the next one gathers, so under load the batch grows by
//!   itself with the commit time.
//! - A round learns its outcome only after its batch committed: it is
//!   acknowledged (history, feed, zone change, API-visible state) only
//!   then. kill -9 loses at most the batch being gathered or committed;
//!   those rounds were never acknowledged and rerun from the persisted
//!   `next_probe`.
//! - Each write keeps its own condition, checked inside the batch's
//!   transaction: a write whose record changed during its round (a
//!   registrar's re-declaration, a retest) is skipped alone, not the
//!   batch.
//! - A batch that fails as a whole (an I/O error) is retried write by
//!   write, so one bad write fails only its own round.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::store::{DelegationWrite, Result, Store, StoreError};

/// A queued write and where its outcome goes.
struct Queued {
    write: DelegationWrite,
    done: oneshot::Sender<Result<bool>>,
}

/// The rounds' handle on the writer (cheap to clone). The writer stops
/// once every handle is dropped and the queue is written.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Queued>,
    /// Rounds waiting for their batch to commit.
    waiting: Arc<AtomicUsize>,
    /// Told when a round starts waiting (its slot is free).
    freed: Arc<tokio::sync::Notify>,
}

/// Counts a round as waiting for its batch while held.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Committer {
    /// Start the writer on `store`: at most `max` writes per transaction,
    /// gathering at most `wait` after the first.
    pub fn start(
        store: Arc<dyn Store>,
        max: usize,
        wait: Duration,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = tokio::spawn(writer(store, rx, max.max(1), wait));
        let (waiting, freed) = (Arc::default(), Arc::default());
        (Committer { tx, waiting, freed }, h)
    }

    /// Rounds that have probed and wait for their batch to commit: the
    /// scheduler gives their slots to rounds that probe (the batch then
    /// grows with the commit time instead of every round's slot waiting
    /// out a commit).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Told each time a round starts waiting for its batch.
    pub fn freed(&self) -> Arc<tokio::sync::Notify> {
        self.freed.clone()
    }

    /// Queue `write` and wait until its batch committed: whether it was
    /// written (false: its condition failed).
    pub async fn write(&self, write: DelegationWrite) -> Result<bool> {
        let (done, rx) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        self.freed.notify_one();
        self.tx
            .send(Queued { write, done })
            .map_err(|_| StoreError::Backend("scheduler writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("scheduler writer stopped".into()))?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    max: usize,
    wait: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
            if batch.len() >= max || wait.is_zero() {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(q)) => batch.push(q),
                _ => break,
            }
        }
        commit(&store, batch).await;
    }
}

/// Commit one batch and tell each round its outcome.
async fn commit(store: &Arc<dyn Store>, batch: Vec<Queued>) {
    let n = batch.len();
    let (writes, dones): (Vec<DelegationWrite>, Vec<_>) =
        batch.into_iter().map(|q| (q.write, q.done)).unzip();
    let store = store.clone();
    let started = Instant::now();
    let res = tokio::task::spawn_blocking(move || {
        let all = store.put_delegations(&writes);
        match all {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) if writes.len() == 1 => vec![Err(e)],
            Err(e) => {
                warn!(
                    rounds = writes.len(),
                    "batch commit failed ({e}); writing its rounds one by one"
                );
                writes
                    .iter()
                    .map(|w| {
                        store
                            .put_delegations(std::slice::from_ref(w))
                            .map(|v| v.first().copied().unwrap_or(false))
                    })
                    .collect()
            }
        }
    })
    .await;
    metrics::histogram!("zonekeeper_scheduler_commit_batch_rounds").record(n as f64);
    metrics::histogram!("zonekeeper_scheduler_commit_seconds")
        .record(started.elapsed().as_secs_f64());
    match res {
        Ok(outcomes) => {
            for (done, o) in dones.into_iter().zip(outcomes) {
                if matches!(o, Ok(false)) {
                    metrics::counter!("zonekeeper_scheduler_rounds_superseded_total").increment(1);
                }
                // The round may have been dropped (shutdown): nothing to tell.
                let _ = done.send(o);
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(StoreError::Backend(format!("commit task: {e}"))));
            }
        }
    }
}

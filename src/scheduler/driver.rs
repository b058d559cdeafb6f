//! The scheduler's loop: loads the due-queue, starts rounds while slots
//! are free, handles wakes, rescans and (on a shared store) claims, and
//! stops with a grace period on shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::delegation::{self, Policy};
use crate::model::{DelegationRecord, DelegationState, Domain, Timestamp};
use crate::store::Store;

use super::checker::Checker;
use super::commit::Committer;
use super::lag;
use super::outages::watch_outages;
use super::queue::{Queue, NEVER};
use super::round::{delegation_retry, ms, round, Loaded, RoundDone};

/// Longest sleep between looks at the clock.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How long rounds in flight may take to finish after shutdown (below
/// `serve`'s own grace period, so their writes land).
pub const ROUND_GRACE: Duration = Duration::from_secs(8);
/// Rounds in flight at most, as a multiple of `max_concurrent_rounds`,
/// counting those that wait for a per-address cap (which hold no slot).
const HELD_FACTOR: usize = 4;
/// Minimum time between two rescans of the testing index on bare wakes.
pub const BARE_WAKE_MIN_GAP: Duration = Duration::from_secs(1);
/// Shortest look for other processes' changes on a shared store.
const MIN_POLL: Duration = Duration::from_millis(100);

/// Load the due-queue from the store: every record's persisted
/// `next_probe`; overdue ones spread over `jitter` × their interval.
pub fn load_queue(store: &dyn Store, pol: &Policy, now: Timestamp) -> crate::store::Result<Queue> {
    let mut q = Queue::with_capacity(1024);
    store.for_each_delegation(&mut |name, rec| {
        let due = match delegation::due_of(rec) {
            None => return true,
            Some(d) if d < now => {
                let window = pol.interval(rec.state).num_milliseconds() as f64 * pol.jitter;
                ms(now) + (window * delegation::spread(name, now)) as i64
            }
            Some(d) => ms(d),
        };
        q.set(name, due, rec.state);
        true
    })?;
    Ok(q)
}

/// Run the scheduler with `prober` until `app.shutdown`.
pub async fn run_with(app: App, prober: Arc<dyn Checker>) {
    let pol = app.policy.clone();
    tokio::spawn(watch_outages(app.clone(), prober.clone()));
    let started = Instant::now();
    let loaded = {
        let store = app.store.clone();
        let pol = pol.clone();
        let now = app.now();
        let mut load = tokio::task::spawn_blocking(move || load_queue(store.as_ref(), &pol, now));
        // Loading a large store is progress too: the watchdog stays fed.
        let mut tick = tokio::time::interval(MAX_SLEEP);
        loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tick.tick() => crate::systemd::feed_watchdog(),
            }
        }
    };
    let queue = match loaded {
        Ok(Ok(q)) => q,
        Ok(Err(e)) => {
            error!("scheduler cannot load the delegation records: {e}; stopping");
            app.shutdown.cancel();
            return;
        }
        Err(e) => {
            error!("scheduler load task failed: {e}; stopping");
            app.shutdown.cancel();
            return;
        }
    };
    info!(
        domains = queue.len(),
        scheduled = queue.scheduled(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "scheduler queue loaded"
    );
    let (committer, writer) = Committer::start(
        app.store.clone(),
        app.config.delegation.commit_batch,
        app.config.delegation.commit_wait,
    );
    let mut s = Scheduler {
        committer: Some(committer),
        app,
        prober,
        pol,
        queue,
        inflight: JoinSet::new(),
        tasks: HashMap::new(),
        rescan_pending: false,
        last_scan: Instant::now(),
        scan_gap: BARE_WAKE_MIN_GAP,
        scan: None,
        stalls: lag::Stalls::default(),
        lags: HashMap::new(),
        owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
        throttled: Arc::default(),
        claiming: None,
        claiming_ids: Vec::new(),
        to_claim: Vec::new(),
    };
    s.run().await;
    // Rounds still queued for the writer are committed before it stops.
    drop(s);
    if let Err(e) = writer.await {
        error!("scheduler writer failed: {e}");
    }
    info!("scheduler stopped");
}

struct Scheduler {
    app: App,
    /// The group-commit writer's handle (dropped at the end of the run).
    committer: Option<Committer>,
    prober: Arc<dyn Checker>,
    pol: Arc<Policy>,
    queue: Queue,
    inflight: JoinSet<RoundDone>,
    tasks: HashMap<tokio::task::Id, u32>,
    /// A bare wake asked for a rescan of the testing index.
    rescan_pending: bool,
    last_scan: Instant,
    /// Time to wait between rescans.
    scan_gap: Duration,
    /// The rescan running in the background: the testing domains' names.
    scan: Option<tokio::task::JoinHandle<crate::store::Result<Scanned>>>,
    /// This scheduler's name in the store's claims (several schedulers on
    /// one PostgreSQL database; see [`Scheduler::claim_and_start`]).
    owner: String,
    /// The loop's turns and stalls: what part of a round's lateness was
    /// queue lag.
    stalls: lag::Stalls,
    /// The queue lag (ms) of rounds popped and not started yet.
    lags: HashMap<u32, u64>,
    /// Rounds in flight now waiting for a per-address cap.
    throttled: Arc<std::sync::atomic::AtomicUsize>,
    /// Shared store: the claim running in the background and its popped
    /// rounds, and the rounds popped meanwhile, claimed together when it
    /// returns.
    claiming: Option<tokio::task::JoinHandle<ClaimResult>>,
    claiming_ids: Vec<u32>,
    to_claim: Vec<u32>,
}

/// What the store granted of a claim (with the records).
type ClaimResult = crate::store::Result<Vec<crate::store::Claimed>>;

type ScanResult = Result<crate::store::Result<Scanned>, tokio::task::JoinError>;

/// A rescan's finds: testing domains (and delegated ones with a new NS set
/// under test), and on a shared store the delegated and suspended ones too
/// (another process's scheduler may have moved them there unseen).
#[derive(Default)]
struct Scanned {
    testing: Vec<String>,
    others: Vec<String>,
}

impl Scheduler {
    async fn run(&mut self) {
        let limit = self.app.config.delegation.max_concurrent_rounds.max(1);
        let wake = self.app.scheduler_wake.clone();
        let shutdown = self.app.shutdown.clone();
        // Names pushed before the loop started (the queue was just loaded,
        // so no rescan).
        self.on_wake();
        self.rescan_pending = false;
        // On a shared store other processes add work without waking this
        // one: look for it every poll interval (the rescan is rate-limited).
        let shared = self.app.store.shared();
        let mut poll = tokio::time::interval(self.app.config.serve.poll_interval.max(MIN_POLL));
        loop {
            if self.rescan_pending
                && self.scan.is_none()
                && self.last_scan.elapsed() >= self.scan_gap
            {
                self.rescan_pending = false;
                self.last_scan = Instant::now();
                self.scan = Some(self.start_scan());
            }
            let now = ms(self.app.now());
            self.stalls.turn(now);
            self.app
                .scheduler_turn_ms
                .store(now, std::sync::atomic::Ordering::Relaxed);
            let mut batch = Vec::new();
            while self.busy() + batch.len() < limit
                && self.inflight.len() + self.claim_held() + batch.len()
                    < limit.saturating_mul(HELD_FACTOR)
            {
                let Some((id, due)) = self.queue.pop_due(now) else {
                    break;
                };
                // The only wait the scheduler itself imposes: rounds queue
                // for one of `max_concurrent_rounds` slots.
                metrics::histogram!("zonekeeper_scheduler_lag_seconds", "reason" => "queue")
                    .record((now - due).max(0) as f64 / 1000.0);
                self.lags.insert(id, self.stalls.lag(due, now));
                batch.push(id);
            }
            // The oldest due round still waiting: how far behind it runs.
            let behind = match self.queue.next_due() {
                Some(d) if d < now => now - d,
                _ => 0,
            };
            self.app
                .scheduler_lag_ms
                .store(behind, std::sync::atomic::Ordering::Relaxed);
            metrics::gauge!("zonekeeper_scheduler_behind_seconds").set(behind as f64 / 1000.0);
            if !batch.is_empty() {
                self.claim_and_start(batch, now);
            }
            // The loop turns at least every MAX_SLEEP: a scheduler stuck
            // anywhere stops feeding systemd's watchdog.
            crate::systemd::feed_watchdog();
            metrics::gauge!("zonekeeper_scheduler_queue_domains")
                .set(self.queue.scheduled() as f64);
            metrics::gauge!("zonekeeper_scheduler_rounds_in_flight")
                .set(self.inflight.len() as f64);
            let sleep = if self.busy() >= limit {
                MAX_SLEEP
            } else {
                match self.queue.next_due() {
                    Some(d) => {
                        Duration::from_millis(u64::try_from(d.saturating_sub(now)).unwrap_or(0))
                            .min(MAX_SLEEP)
                    }
                    None => MAX_SLEEP,
                }
            };
            let sleep = if self.rescan_pending && self.scan.is_none() {
                sleep.min(self.scan_gap.saturating_sub(self.last_scan.elapsed()))
            } else {
                sleep
            };
            let has_scan = self.scan.is_some();
            let scan = &mut self.scan;
            let freed = self.committer.as_ref().map(Committer::freed);
            let has_claim = self.claiming.is_some();
            let claiming = &mut self.claiming;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                res = async { claiming.as_mut().expect("guarded by has_claim").await }, if has_claim => {
                    self.claiming = None;
                    self.claimed(res);
                }
                Some(res) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    self.finished(res).await;
                }
                res = async { scan.as_mut().expect("guarded by has_scan").await }, if has_scan => {
                    self.scan = None;
                    self.scan_gap = BARE_WAKE_MIN_GAP.max(self.last_scan.elapsed() * 10);
                    self.scanned(res);
                }
                _ = wake.notified() => self.on_wake(),
                // A round waits for its batch: its slot is free.
                _ = async { freed.as_ref().expect("guarded").notified().await }, if freed.is_some() => {}
                _ = poll.tick(), if shared => self.rescan_pending = true,
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        // A claim still running is awaited (its rounds are not started),
        // so that giving the claims back below includes its grants.
        if let Some(c) = self.claiming.take() {
            let _ = c.await;
        }
        self.to_claim.clear();
        self.claiming_ids.clear();
        let n = self.inflight.len();
        if n > 0 {
            info!(rounds = n, "scheduler stopping: finishing rounds in flight");
        }
        let drain = async {
            while let Some(res) = self.inflight.join_next_with_id().await {
                self.finished(res).await;
            }
        };
        if tokio::time::timeout(ROUND_GRACE, drain).await.is_err() {
            warn!(
                rounds = self.inflight.len(),
                "rounds still in flight after {ROUND_GRACE:?}: dropped unwritten (they rerun after restart)"
            );
            self.inflight.abort_all();
        }
        self.give_back();
        self.committer = None;
    }

    /// Rounds that hold a slot: those in flight, less those waiting for a
    /// per-address cap (a capped hoster spreads its rounds out; its
    /// waits must not hold the slots rounds on other hosters need) and
    /// those that have probed and wait for their batch to commit, plus
    /// those being claimed. (Every round in flight counts towards
    /// `HELD_FACTOR` × `max_concurrent_rounds`.)
    fn busy(&self) -> usize {
        let committing = self.committer.as_ref().map_or(0, Committer::waiting);
        self.inflight
            .len()
            .saturating_sub(self.throttled.load(std::sync::atomic::Ordering::Relaxed))
            .saturating_sub(committing)
            + self.claim_held()
    }

    /// Rounds popped and not started yet: being claimed or waiting to be.
    fn claim_held(&self) -> usize {
        self.claiming_ids.len() + self.to_claim.len()
    }

    /// Start rounds for `batch` (popped from the queue) that this
    /// scheduler may run: on a shared store it claims them first. Claims
    /// run in the background, one at a time, so the loop never waits on
    /// the database: rounds popped while one runs are claimed together
    /// by the next (one statement for the batch, which also reads each
    /// granted domain's records for its round; `FOR UPDATE SKIP LOCKED`
    /// leases that expire after `serve.claim_lease`). Under load the
    /// claims grow with their own latency, as the group commit's batches
    /// do. A claim is renewed at each of the domain's rounds, so while a
    /// scheduler lives (and probes more often than the lease) its domains
    /// stay its own. A domain another live scheduler holds is looked at
    /// again when that claim would have expired: the other has renewed it
    /// (refused again), or its round wrote the next due time (the look
    /// only reschedules), or it died and this one takes the domain over.
    fn claim_and_start(&mut self, batch: Vec<u32>, _now: i64) {
        if !self.app.store.shared() {
            for id in batch {
                self.start(id, None);
            }
            return;
        }
        self.to_claim.extend(batch);
        self.launch_claim();
    }

    /// Claim what waits to be claimed, unless a claim is running.
    fn launch_claim(&mut self) {
        if self.claiming.is_some() || self.to_claim.is_empty() {
            return;
        }
        self.claiming_ids = std::mem::take(&mut self.to_claim);
        let names: Vec<String> = self
            .claiming_ids
            .iter()
            .map(|&id| self.queue.name(id).to_string())
            .collect();
        let store = self.app.store.clone();
        let owner = self.owner.clone();
        let lease = self.app.config.serve.claim_lease;
        self.claiming = Some(tokio::task::spawn_blocking(move || {
            store.claim_loaded(&owner, &names, lease)
        }));
    }

    /// A claim returned: start the granted rounds with the records it
    /// read; look at the refused ones again after the lease.
    fn claimed(&mut self, res: Result<ClaimResult, tokio::task::JoinError>) {
        let ids = std::mem::take(&mut self.claiming_ids);
        let now = ms(self.app.now());
        let granted = match res {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                error!("scheduler cannot claim due domains: {e}");
                self.retry_unclaimed(ids, now);
                self.launch_claim();
                return;
            }
            Err(e) => {
                error!("scheduler claim task failed: {e}");
                self.retry_unclaimed(ids, now);
                self.launch_claim();
                return;
            }
        };
        let mut granted: HashMap<String, Option<(Domain, DelegationRecord)>> =
            granted.into_iter().collect();
        let lease = self.app.config.serve.claim_lease;
        let later = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        for id in ids {
            match granted.remove(&*self.queue.name(id)) {
                Some(loaded) => self.start(id, Some(loaded)),
                None => {
                    metrics::counter!("zonekeeper_scheduler_claims_refused_total").increment(1);
                    self.lags.remove(&id);
                    self.queue.finish(id, later, None);
                }
            }
        }
        self.launch_claim();
    }

    fn retry_unclaimed(&mut self, ids: Vec<u32>, now: i64) {
        let retry = now + delegation_retry(&self.pol).num_milliseconds();
        for id in ids {
            self.lags.remove(&id);
            self.queue.finish(id, retry, None);
        }
    }

    /// At shutdown: give every claim back, so other schedulers take the
    /// domains over at once rather than after the lease.
    fn give_back(&mut self) {
        if !self.app.store.shared() {
            return;
        }
        if let Err(e) = self.app.store.release(&self.owner, &[]) {
            // They expire by themselves.
            warn!("scheduler cannot give its claims back: {e}");
        }
    }

    /// Start the round of `id`; `loaded`: its records as its claim read
    /// them (else the round reads them).
    fn start(&mut self, id: u32, loaded: Option<Loaded>) {
        let lag = self.lags.remove(&id).unwrap_or(0);
        let Some(committer) = self.committer.clone() else {
            return;
        };
        let name = self.queue.name(id);
        let app = self.app.clone();
        let prober = self.prober.clone();
        let pol = self.pol.clone();
        let waiting = self.throttled.clone();
        let h = self
            .inflight
            .spawn(crate::probe::polite::in_round(waiting, async move {
                round(
                    &app,
                    prober.as_ref(),
                    &pol,
                    &committer,
                    (&name, loaded),
                    lag,
                )
                .await
            }));
        self.tasks.insert(h.id(), id);
    }

    async fn finished(
        &mut self,
        res: Result<(tokio::task::Id, RoundDone), tokio::task::JoinError>,
    ) {
        let (tid, out) = match res {
            Ok((tid, out)) => (tid, out),
            Err(e) => {
                error!("round task failed: {e}");
                let tid = e.id();
                let retry = self.app.now() + delegation_retry(&self.pol);
                (
                    tid,
                    RoundDone {
                        due: Some(retry),
                        state: None,
                    },
                )
            }
        };
        let Some(id) = self.tasks.remove(&tid) else {
            return;
        };

        let due = out.due.map_or(NEVER, ms);
        if self.queue.finish(id, due, out.state) {
            // Changed from outside during the round: look again now.
            let name = self.queue.name(id);
            self.queue.poke(&name, ms(self.app.now()));
        }
    }

    fn on_wake(&mut self) {
        let (names, overflow) = self.app.scheduler_inbox.drain();
        let now = ms(self.app.now());
        for n in &names {
            // A look at once: the round re-reads the record and decides
            // (probe only if due; otherwise just reschedule).
            self.queue.poke(n, now);
        }
        if names.is_empty() || overflow {
            self.rescan_pending = true;
        }
    }

    /// A bare wake: list the testing domains in the background.
    fn start_scan(&self) -> tokio::task::JoinHandle<crate::store::Result<Scanned>> {
        let store = self.app.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut others = Vec::new();
            if store.shared() {
                for st in [DelegationState::Delegated, DelegationState::Suspended] {
                    let mut after: Option<String> = None;
                    loop {
                        let (page, next) = store.domains_by_state(st, after.as_deref(), 10_000)?;
                        others.extend(page);
                        match next {
                            Some(n) => after = Some(n),
                            None => break,
                        }
                    }
                }
            }
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, next) =
                    store.domains_by_state(DelegationState::Testing, after.as_deref(), 10_000)?;
                all.extend(page);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            // Delegated domains with a new NS set under test.
            let mut after: Option<String> = None;
            loop {
                let (page, next) = store.domains_with_pending_change(after.as_deref(), 10_000)?;
                all.extend(page);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            Ok(Scanned {
                testing: all,
                others,
            })
        })
    }

    /// Look at testing domains the queue does not know as such.
    fn scanned(&mut self, res: ScanResult) {
        let Scanned {
            testing: names,
            others,
        } = match res {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                error!("scheduler rescan failed: {e}");
                return;
            }
            Err(e) => {
                error!("scheduler rescan task failed: {e}");
                return;
            }
        };
        let now = ms(self.app.now());
        let mut found = 0usize;
        for n in others {
            if self.queue.id(&n).is_none() {
                self.queue.poke(&n, now);
                found += 1;
            }
        }
        for n in names {
            let stale = match self.queue.id(&n) {
                None => true,
                Some(id) => {
                    !self.queue.in_flight(id)
                        && (self.queue.state(id) != DelegationState::Testing
                            || self.queue.due(id) == NEVER)
                }
            };
            if stale {
                self.queue.poke(&n, now);
                found += 1;
            }
        }
        debug!(found, "scheduler rescan of testing domains");
    }
}

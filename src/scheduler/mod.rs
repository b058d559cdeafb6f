//! The delegation scheduler (docs/delegation.md): runs probe rounds for
//! every domain being tested or monitored and drives the persisted state
//! machine of [`crate::delegation`].
//!
//! - A due-queue ([`queue::Queue`]) holds every domain that is `testing`,
//!   `delegated` or `suspended`, keyed by the time it is next due. It is
//!   loaded at start from the persisted `next_probe` of each record (overdue
//!   ones are spread over `jitter` × interval so a restart does not fire
//!   them all at once).
//! - The loop sleeps until the earliest due time (at most [`MAX_SLEEP`], so
//!   clock jumps are noticed), a wake, or a round's end; it starts rounds
//!   while fewer than `delegation.max_concurrent_rounds` run (a round
//!   waiting for a per-address cap holds no slot, up to `HELD_FACTOR` ×
//!   that many rounds in all).
//! - A round reads the domain and its record (on a shared store its batch's
//!   claim read them: [`crate::store::Store::claim_loaded`]), asks [`crate::delegation::plan`]
//!   what is needed, probes through a [`Checker`] if so, and hands the new
//!   record, its history event and the round to the group-commit writer
//!   ([`commit`]), which writes many rounds per store transaction
//!   (`Store::put_delegations`), each under its own condition. A round
//!   is acknowledged only once its batch committed; a round that was not
//!   written did not happen: kill -9 at any point loses at most the rounds
//!   in flight and the batch being written, never counts one twice, and
//!   the persisted `next_probe` brings them back at restart.
//! - Wakes: writers outside the scheduler (API declaration, retest, hold,
//!   renewal) call [`App::domain_changed`] (pushes the name into
//!   [`crate::app::Inbox`] and notifies `scheduler_wake`): the scheduler looks at those
//!   domains at once. A bare `scheduler_wake.notify_one()` without names
//!   makes it rescan the `testing` index for domains it does not know or
//!   knew in another state (rate-limited to one scan per
//!   [`BARE_WAKE_MIN_GAP`], or ten times the last scan's duration, so a
//!   large testing set costs at most a tenth of a thread).
//! - Shutdown: on `app.shutdown` no new round starts; rounds in flight get
//!   [`ROUND_GRACE`] to finish and write, then are dropped unwritten.
//! - Every time a domain enters or leaves the zone `app.zone_dirty` is
//!   notified, so the zone writer rewrites the zone files.

pub mod commit;
pub mod lag;
pub mod queue;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::delegation::{self, DecisionCtx, Plan, Policy};
use crate::lifecycle;
use crate::model::{
    CheckReport, DelegationRecord, DelegationState, Domain, HistoryEvent, Nameserver, RoundSummary,
    Timestamp,
};
use crate::names::DomainName;
use crate::store::{DelegationWrite, Store, WriteIf};

use self::commit::Committer;
use self::queue::{Queue, NEVER};

/// Longest sleep between looks at the clock.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How long rounds in flight may take to finish after shutdown (below
/// `serve`'s own grace period, so their writes land).
pub const ROUND_GRACE: Duration = Duration::from_secs(8);
/// Longest a probe round may take before it is discarded.
pub const ROUND_LIMIT: Duration = Duration::from_secs(120);
/// Rounds in flight at most, as a multiple of `max_concurrent_rounds`,
/// counting those that wait for a per-address cap (which hold no slot).
const HELD_FACTOR: usize = 4;
/// Minimum time between two rescans of the testing index on bare wakes.
pub const BARE_WAKE_MIN_GAP: Duration = Duration::from_secs(1);
/// Shortest look for other processes' changes on a shared store.
const MIN_POLL: Duration = Duration::from_millis(100);

/// Runs one check of a domain's declared servers (the probe engine).
pub trait Checker: Send + Sync + 'static {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport>;

    /// Whether a canary address answers (any DNS reply) a query for
    /// `qname`. Engines without canary support say yes.
    fn ping<'a>(&'a self, _addr: std::net::SocketAddr, _qname: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }

    /// Check a declared delegation with its DS set (the DNSSEC checks run
    /// when there is one). Engines without DNSSEC check the NS set only.
    fn check_ds<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
        _ds: &'a [crate::model::DsRecord],
    ) -> BoxFuture<'a, CheckReport> {
        self.check(domain, ns)
    }

    /// A scheduler round: `kind` decides what is asked (testing or
    /// monitoring), `now` is the scheduler's clock and `interval` the
    /// domain's probe interval (shared facts no older than it are used).
    /// Engines without shared facts run [`Checker::check_ds`].
    fn check_round<'a>(
        &'a self,
        domain: &'a DomainName,
        (ns, ds): (&'a [Nameserver], &'a [crate::model::DsRecord]),
        _round: crate::probe::Round,
    ) -> BoxFuture<'a, CheckReport> {
        self.check_ds(domain, ns, ds)
    }
}

/// Run the scheduler with the registry's probe engine until shutdown. If
/// it cannot start (bad check profile, unreadable store) it stops the
/// whole service: a registry that silently stopped verifying delegations
/// would be worse than one that does not start.
pub async fn run(app: App) {
    match build_prober(&app) {
        Ok(p) => run_with(app, p).await,
        Err(e) => {
            error!("scheduler cannot start: {e}; stopping");
            app.shutdown.cancel();
        }
    }
}

/// The registry's verifier is the scheduler's [`Checker`].
impl Checker for crate::checks::Verifier {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.check_with_ds(domain, ns, &[]))
    }

    fn check_ds<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
        ds: &'a [crate::model::DsRecord],
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.check_with_ds(domain, ns, ds))
    }

    fn ping<'a>(&'a self, addr: std::net::SocketAddr, qname: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(crate::checks::Verifier::ping(self, addr, qname))
    }

    fn check_round<'a>(
        &'a self,
        domain: &'a DomainName,
        (ns, ds): (&'a [Nameserver], &'a [crate::model::DsRecord]),
        round: crate::probe::Round,
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(async move { self.check_stored_round(domain, ns, ds, &round).await })
    }
}

/// Look at the canaries every quarter of `probe.outage_window` (1–30 s)
/// and tell the outage detector; the statistical detector is refreshed
/// on the same beat so old failures age out.
async fn watch_outages(app: App, prober: Arc<dyn Checker>) {
    let canaries = app.config.probe.canaries.clone();
    let beat =
        (app.config.probe.outage_window / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let qname = app
        .config
        .zones
        .first()
        .cloned()
        .unwrap_or_else(|| ".".into());
    loop {
        let now = app.now();
        if canaries.is_empty() {
            app.outage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .refresh(now);
        } else {
            let answers =
                futures::future::join_all(canaries.iter().map(|a| prober.ping(*a, &qname))).await;
            let answered = answers.iter().filter(|a| **a).count();
            metrics::gauge!("zonekeeper_canaries_answering").set(answered as f64);
            app.outage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .canaries_seen(app.now(), answered, canaries.len());
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => break,
            _ = tokio::time::sleep(beat) => {}
        }
    }
}

/// Build the verifier from `probe` and `delegation.profile`.
fn build_prober(app: &App) -> Result<Arc<dyn Checker>, String> {
    let v = crate::checks::Verifier::from_config(&app.config).map_err(|e| e.to_string())?;
    Ok(Arc::new(v))
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// What a round task reports back to the loop.
#[derive(Debug)]
struct RoundDone {
    due: Option<Timestamp>,
    state: Option<DelegationState>,
}

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
    /// waits must not hold the slots rounds on other hosters need), plus
    /// those being claimed.
    fn busy(&self) -> usize {
        self.inflight
            .len()
            .saturating_sub(self.throttled.load(std::sync::atomic::Ordering::Relaxed))
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

fn delegation_retry(pol: &Policy) -> chrono::Duration {
    pol.probe_interval.min(chrono::Duration::minutes(1))
}

/// A domain and its delegation record, or `None` if either is gone.
type Loaded = Option<(Domain, DelegationRecord)>;

/// Read a domain and its record.
async fn load(app: &App, name: &str) -> crate::store::Result<Option<(Domain, DelegationRecord)>> {
    let store = app.store.clone();
    let n = name.to_string();
    tokio::task::spawn_blocking(move || {
        Ok(match (store.domain(&n)?, store.delegation(&n)?) {
            (Some(d), Some(r)) => Some((d, r)),
            _ => None,
        })
    })
    .await
    .map_err(|e| crate::store::StoreError::Backend(format!("read task: {e}")))?
}

/// Run one probe of `ns` and judge whether the registry's own outage
/// makes it inconclusive (the round's failures are then not the
/// registrant's). Every round feeds the outage detector.
async fn probe_round(
    app: &App,
    prober: &dyn Checker,
    domain: &Domain,
    (ns, ds): (&[Nameserver], &[crate::model::DsRecord]),
    before: &[crate::model::ServerDowntime],
    failing_since: Option<Timestamp>,
    (kind, interval): (crate::probe::RoundKind, chrono::Duration),
) -> Option<(CheckReport, Option<String>)> {
    let started = app.now();
    let round = crate::probe::Round {
        kind,
        now: started,
        max_age: interval.to_std().unwrap_or_default(),
    };
    let check = prober.check_round(&domain.name, (ns, ds), round);
    let Ok(mut report) = tokio::time::timeout(ROUND_LIMIT, check).await else {
        // The probe engine bounds its own time; this is a safety net.
        // The round did not happen: nothing is written.
        warn!(
            domain = domain.name.as_str(),
            "round exceeded {ROUND_LIMIT:?}; discarded"
        );
        return None;
    };
    // Rounds are timed by the scheduler's (injected) clock.
    report.checked_at = started;
    let outage = app
        .outage
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .observe(started, before, failing_since, &report.servers);
    let inconclusive = match outage {
        Some(o) if delegation::round_failing(&report) => {
            metrics::counter!("zonekeeper_rounds_inconclusive_total").increment(1);
            debug!(
                domain = domain.name.as_str(),
                "round inconclusive: registry-side outage: {}", o.reason
            );
            Some(format!("registry-side outage: {}", o.reason))
        }
        _ => None,
    };
    metrics::counter!(
        "zonekeeper_scheduler_rounds_total",
        "verdict" => match (&inconclusive, report.passed()) {
            (Some(_), _) => "inconclusive",
            (None, true) => "pass",
            (None, false) => "fail",
        }
    )
    .increment(1);
    Some((report, inconclusive))
}

/// What a round of a domain in `state` asks, and how old the shared facts
/// it uses may be (docs/delegation.md, "What a round asks"): a delegated
/// domain is monitored; every other state is tested, since its rounds
/// decide whether it enters (or re-enters) the zone.
fn round_kind(state: DelegationState, pol: &Policy) -> (crate::probe::RoundKind, chrono::Duration) {
    let kind = match state {
        DelegationState::Delegated => crate::probe::RoundKind::Monitoring,
        _ => crate::probe::RoundKind::Testing,
    };
    (kind, pol.failing_interval(state))
}

/// Whether going from `old` to `new` changes what the zone holds.
fn zone_affected(
    old: &DelegationRecord,
    new: &DelegationRecord,
    status: &lifecycle::Status,
    pol: &Policy,
) -> bool {
    let was_in = lifecycle::in_zone(old, status);
    let is_in = lifecycle::in_zone(new, status);
    // With `dnssec.on_invalid = "withdraw_ds"` a violation appearing or
    // clearing withdraws or restores the DS records.
    let ds_withdrawal =
        pol.dnssec_withdraw_ds && old.violation.is_some() != new.violation.is_some();
    was_in != is_in
        || (old.state == DelegationState::Delegated) != (new.state == DelegationState::Delegated)
        || (is_in
            && (old.ns_fingerprint != new.ns_fingerprint
                || old.published != new.published
                || ds_withdrawal))
}

/// One look at a due domain: plan, probe if needed, write; then the same
/// for a pending nameserver change of a delegated domain.
async fn round(
    app: &App,
    prober: &dyn Checker,
    pol: &Policy,
    commit: &Committer,
    (name, loaded): (&str, Option<Loaded>),
    queue_lag_ms: u64,
) -> RoundDone {
    let retry = |state| RoundDone {
        due: Some(app.now() + delegation_retry(pol)),
        state,
    };
    let loaded = match loaded {
        Some(l) => Ok(l),
        None => load(app, name).await,
    };
    let (domain, rec) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => {
            return RoundDone {
                due: None,
                state: None,
            }
        }
        Err(e) => {
            error!(domain = name, "scheduler cannot read the record: {e}");
            return retry(None);
        }
    };
    let now = app.now();
    let status = lifecycle::evaluate(&domain, now, &app.config.lifecycle);
    let lifecycle_next = delegation::next_lifecycle_change(&domain, now, &app.config.lifecycle);
    let ctx = DecisionCtx {
        now,
        status: &status,
        lifecycle_next,
        queue_lag_ms,
    };
    let cap = |t: Timestamp| lifecycle_next.map_or(t, |l| l.min(t));
    let mut cur = rec.clone();
    match delegation::plan(&rec, &ctx, pol) {
        Plan::Idle => {
            return RoundDone {
                due: None,
                state: Some(rec.state),
            }
        }
        Plan::Wait(t) => {
            return RoundDone {
                due: Some(t),
                state: Some(rec.state),
            }
        }
        Plan::Write(new, ev) => {
            match write_step(
                app,
                commit,
                &rec,
                step_write(name, &rec, *new, Some(ev), None),
                &status,
            )
            .await
            {
                Step::Written(n) => cur = *n,
                Step::Stop(o) => return o,
            }
        }
        Plan::Probe => {
            // A look that is not due yet (a wake, a restart, a pending
            // change due) does not probe the main set — unless a block
            // just lifted, which is acted on.
            let due = rec.next_probe.is_none_or(|np| np <= now) || !rec.blocked.is_empty();
            if due {
                let set = rec.zone_set(&domain.nameservers).to_vec();
                let ds = rec.zone_ds(&domain.ds).to_vec();
                let Some((report, inconclusive)) = probe_round(
                    app,
                    prober,
                    &domain,
                    (&set, &ds),
                    &rec.downtime,
                    rec.failing.as_ref().map(|f| f.since),
                    round_kind(rec.state, pol),
                )
                .await
                else {
                    return retry(Some(rec.state));
                };
                let (new, ev) =
                    delegation::on_round(&rec, &report, &ctx, pol, name, inconclusive.as_deref());
                let summary = new.last_round.clone();
                match write_step(
                    app,
                    commit,
                    &rec,
                    step_write(name, &rec, new, ev, summary),
                    &status,
                )
                .await
                {
                    Step::Written(n) => cur = *n,
                    Step::Stop(o) => return o,
                }
            }
        }
    }
    // The pending nameserver change, if any.
    let now = app.now();
    match delegation::plan_pending(&cur, now, pol) {
        Some(Plan::Write(new, ev)) => {
            let old = cur.clone();
            match write_step(
                app,
                commit,
                &old,
                step_write(name, &old, *new, Some(ev), None),
                &status,
            )
            .await
            {
                Step::Written(n) => cur = *n,
                Step::Stop(o) => return o,
            }
        }
        Some(Plan::Probe) => {
            let before = cur
                .pending
                .as_ref()
                .map(|p| p.downtime.clone())
                .unwrap_or_default();
            if let Some((report, inconclusive)) = probe_round(
                app,
                prober,
                &domain,
                (&domain.nameservers, &domain.ds),
                &before,
                None,
                round_kind(DelegationState::Testing, pol),
            )
            .await
            {
                let (new, ev) = delegation::on_pending_round(
                    &cur,
                    &report,
                    &ctx,
                    pol,
                    name,
                    inconclusive.as_deref(),
                );
                let summary = new
                    .pending
                    .as_ref()
                    .and_then(|p| p.last_round.clone())
                    .or_else(|| new.last_round.clone());
                let old = cur.clone();
                match write_step(
                    app,
                    commit,
                    &old,
                    step_write(name, &old, new, ev, summary),
                    &status,
                )
                .await
                {
                    Step::Written(n) => cur = *n,
                    Step::Stop(o) => return o,
                }
            }
        }
        _ => {}
    }
    RoundDone {
        due: delegation::due_of(&cur).map(cap),
        state: Some(cur.state),
    }
}

enum Step {
    Written(Box<DelegationRecord>),
    Stop(RoundDone),
}

/// Write one step of a round (compare-and-set against `old`), log it and
/// tell the zone writer when the zone changes.
/// What one step writes: `new` in place of `old` unless someone changed
/// the record since it was read.
fn step_write(
    name: &str,
    old: &DelegationRecord,
    new: DelegationRecord,
    event: Option<HistoryEvent>,
    round: Option<RoundSummary>,
) -> DelegationWrite {
    DelegationWrite {
        name: name.to_string(),
        when: WriteIf::Unchanged(Box::new(old.clone())),
        record: new,
        event,
        round,
    }
}

async fn write_step(
    app: &App,
    commit: &Committer,
    old: &DelegationRecord,
    w: DelegationWrite,
    status: &lifecycle::Status,
) -> Step {
    let (name, new, ev) = (w.name.clone(), w.record.clone(), w.event.clone());
    let name = name.as_str();
    match write(app, commit, w).await {
        Ok(Written::Yes) => {
            if let Some(ev) = &ev {
                info!(domain = name, from = ?ev.from, to = ?ev.to, "{}", ev.reason);
                metrics::counter!(
                    "zonekeeper_delegation_transitions_total",
                    "from" => ev.from.map_or("none", |s| s.as_str()),
                    "to" => ev.to.as_str()
                )
                .increment(1);
            }
            if zone_affected(old, &new, status, &app.policy) {
                app.zone_dirty.notify_one();
            }
            Step::Written(Box::new(new))
        }
        Ok(Written::Superseded(cur)) => {
            debug!(
                domain = name,
                "record changed during the round; round discarded"
            );
            let now = app.now();
            Step::Stop(match cur {
                Some(cur) => RoundDone {
                    due: delegation::due_of(&cur).map(|d| d.max(now)),
                    state: Some(cur.state),
                },
                None => RoundDone {
                    due: None,
                    state: None,
                },
            })
        }
        Err(e) => {
            error!(domain = name, "scheduler cannot write the record: {e}");
            Step::Stop(RoundDone {
                due: Some(app.now() + delegation_retry(&app.policy)),
                state: Some(old.state),
            })
        }
    }
}

enum Written {
    Yes,
    /// Someone else changed the record since it was read: the current one.
    Superseded(Option<Box<DelegationRecord>>),
}

/// Write a round's step through the group commit: written if the record
/// is still the one the round read, in the batch's transaction; else a
/// re-declaration or a retest made during the round wins, and the round
/// is discarded (it did not happen).
async fn write(app: &App, commit: &Committer, w: DelegationWrite) -> crate::store::Result<Written> {
    let name = w.name.clone();
    if commit.write(w).await? {
        return Ok(Written::Yes);
    }
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        Ok(Written::Superseded(store.delegation(&name)?.map(Box::new)))
    })
    .await
    .map_err(|e| crate::store::StoreError::Backend(format!("read task: {e}")))?
}

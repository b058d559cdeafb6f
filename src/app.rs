//! The shared context every long-running part of `serve` gets.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::registry::{ChangeListener, Registry, ReservedNames};
use crate::sessions::Sessions;
use crate::store::Store;

pub mod writer;
pub use writer::{Inbox, Wakes, Writer, INBOX_MAX};

/// Fields are not public: an edge gets a handle (the builders below), and
/// the CLI, tests and benchmarks the few accessors further down. The
/// process's own tasks in this crate (scheduler, zone writer, CDS scanner,
/// webhook delivery, health) read the `pub(crate)` ones.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    zones: Zones,
    pub(crate) store: Arc<dyn Store>,
    clock: SharedClock,
    /// Wakes the scheduler when a domain's NS set or state changed outside
    /// it (API declaration, retest, hold), so it does not wait a full tick.
    pub(crate) scheduler_wake: Arc<tokio::sync::Notify>,
    /// Names of the domains behind those wakes (see [`App::domain_changed`]).
    pub(crate) scheduler_inbox: Arc<Inbox>,
    /// Set when a delegation entered or left the zone; the zone writer
    /// rewrites `zone.output` files after it.
    pub(crate) zone_dirty: Arc<tokio::sync::Notify>,
    /// Cancelled on SIGTERM/SIGINT: every task finishes its current unit of
    /// work, writes it, and stops.
    pub(crate) shutdown: CancellationToken,
    started: Timestamp,
    /// The delegation policy, built once from the config.
    pub(crate) policy: Arc<crate::delegation::Policy>,
    /// Whether the registry's own network is down (rounds inconclusive).
    pub(crate) outage: Arc<std::sync::Mutex<crate::delegation::outage::OutageDetector>>,
    /// Names that cannot be created or imported (`lifecycle.reserved_names`).
    reserved: Arc<ReservedNames>,
    /// EPP sessions logged in now, per registrar (the dashboard shows them).
    epp_sessions: Arc<Sessions>,
    /// Serialised public answers, valid while their domain's data is unchanged.
    answers: Arc<crate::answer_cache::Answers>,
    /// Free bytes on the store's volume, as last measured (`u64::MAX`:
    /// not measured, e.g. PostgreSQL).
    store_free: Arc<std::sync::atomic::AtomicU64>,
    /// How late (ms) the oldest due round waiting in the scheduler's queue
    /// is; 0 when it keeps up. `/healthz` reports a lag past
    /// [`App::scheduler_behind`]'s threshold.
    pub(crate) scheduler_lag_ms: Arc<std::sync::atomic::AtomicI64>,
    /// The clock's time (ms) at the scheduler loop's last turn (tests wait
    /// for a turn after moving an injected clock).
    pub(crate) scheduler_turn_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: SharedClock,
    ) -> Result<Self, crate::config::ConfigError> {
        let zones = config.zones()?;
        let reserved = ReservedNames::from_config(&config, &zones)?;
        let started = clock.now();
        let mut policy = crate::delegation::Policy::from_config(&config.delegation);
        policy.dnssec_withdraw_ds =
            config.dnssec.on_invalid == crate::config::OnDnssecInvalid::WithdrawDs;
        let policy = Arc::new(policy);
        let outage = Arc::new(std::sync::Mutex::new(
            crate::delegation::outage::OutageDetector::from_config(&config.probe),
        ));
        Ok(Self {
            policy,
            outage,
            config: Arc::new(config),
            zones,
            store,
            clock,
            scheduler_wake: Arc::new(tokio::sync::Notify::new()),
            scheduler_inbox: Arc::default(),
            zone_dirty: Arc::new(tokio::sync::Notify::new()),
            shutdown: CancellationToken::new(),
            started,
            reserved: Arc::new(reserved),
            epp_sessions: Arc::default(),
            answers: Arc::default(),
            store_free: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
            scheduler_lag_ms: Arc::default(),
            scheduler_turn_ms: Arc::default(),
        })
    }

    /// Tell the scheduler that `name`'s NS set, delegation record or
    /// lifecycle (hold, renewal, verification) changed, so it looks at the
    /// domain at once rather than at its next due time.
    pub fn domain_changed(&self, name: &str) {
        self.scheduler_inbox.push(name);
        self.scheduler_wake.notify_one();
    }

    /// The registry service, for one request: every change to registry
    /// data goes through it.
    pub fn registry(&self) -> Registry<'_> {
        Registry::new(
            self.store.as_ref(),
            &self.config,
            self.zones.clone(),
            self.reserved.clone(),
        )
        .with_clock(self.clock.as_ref())
        .with_listener(self)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store's last update time as public answers show it: from its
    /// change stamps when it keeps them (no read transaction; what the
    /// answer caches show too), else read; `now` for a store never written.
    pub fn last_update_shown(&self, now: Timestamp) -> crate::store::Result<Timestamp> {
        self.answers.last_update_shown(self.store.as_ref(), now)
    }

    /// The registry service for an edge that writes (REST API, control
    /// socket), without the rest of the process.
    pub fn writer(&self) -> Writer {
        Writer {
            config: self.config.clone(),
            zones: self.zones.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            reserved: self.reserved.clone(),
            wakes: Wakes {
                scheduler_wake: self.scheduler_wake.clone(),
                scheduler_inbox: self.scheduler_inbox.clone(),
                zone_dirty: self.zone_dirty.clone(),
            },
        }
    }

    /// What the control socket needs (docs/architecture.md, "Edge handles").
    pub fn control(&self) -> crate::control::Deps {
        crate::control::Deps {
            writer: self.writer(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// What the RDAP server needs (docs/architecture.md, "Edge handles").
    pub fn rdap(&self) -> crate::rdap::Deps {
        crate::rdap::Deps {
            config: self.config.clone(),
            zones: self.zones.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            answers: self.answers.clone(),
        }
    }

    /// What the dashboard needs (docs/architecture.md, "Edge handles").
    pub fn dashboard(&self) -> crate::dashboard::Deps {
        crate::dashboard::Deps {
            config: self.config.clone(),
            zones: self.zones.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            policy: self.policy.clone(),
            outage: self.outage.clone(),
            epp_sessions: self.epp_sessions.clone(),
        }
    }

    /// What the EPP server needs (docs/architecture.md, "Edge handles").
    pub fn epp(&self) -> crate::epp::Deps {
        crate::epp::Deps {
            writer: self.writer(),
            sessions: self.epp_sessions.clone(),
            started: self.started,
            shutdown: self.shutdown.clone(),
        }
    }

    /// What the WHOIS server needs (docs/architecture.md, "Edge handles").
    pub fn whois(&self) -> crate::whois::Deps {
        crate::whois::Deps {
            config: self.config.clone(),
            zones: self.zones.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            answers: self.answers.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// The scheduler's queue lag when it exceeds the threshold:
    /// `delegation.probe_interval` (testing domains then miss their pace;
    /// monitoring ones are at least that late), at least one minute.
    pub fn scheduler_behind(&self) -> Option<std::time::Duration> {
        let lag = self
            .scheduler_lag_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let lag = std::time::Duration::from_millis(u64::try_from(lag).unwrap_or(0));
        let threshold = self
            .config
            .delegation
            .probe_interval
            .max(std::time::Duration::from_secs(60));
        (lag > threshold).then_some(lag)
    }

    /// The registry-side outage in force, if any.
    pub fn outage(&self) -> Option<crate::delegation::outage::Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Cancelled on SIGTERM/SIGINT; cancel it to stop every task.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// This process with its own shutdown token (a task that may be stopped
    /// alone: a lost lease, a benchmark's server).
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The public answer caches (benchmarks read their hit counts).
    pub fn answers(&self) -> &Arc<crate::answer_cache::Answers> {
        &self.answers
    }

    /// This process with other answer caches (a benchmark's uncached run).
    pub fn with_answers(mut self, answers: Arc<crate::answer_cache::Answers>) -> Self {
        self.answers = answers;
        self
    }

    /// Wakes the scheduler loop (tests wake it after moving a manual clock).
    pub fn scheduler_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.scheduler_wake
    }

    /// Notified when a delegation entered or left the zone.
    pub fn zone_dirty(&self) -> &Arc<tokio::sync::Notify> {
        &self.zone_dirty
    }

    /// The clock's time (ms) at the scheduler loop's last turn.
    pub fn scheduler_turn_ms(&self) -> i64 {
        self.scheduler_turn_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Free bytes on the store's volume as last measured (`u64::MAX`: not
    /// measured).
    pub(crate) fn store_free(&self) -> u64 {
        self.store_free.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_store_free(&self, free: u64) {
        self.store_free
            .store(free, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Commits made through the registry service wake the scheduler and the
/// zone writer.
impl ChangeListener for App {
    fn domain_changed(&self, name: &str) {
        App::domain_changed(self, name);
    }

    fn zone_changed(&self) {
        self.zone_dirty.notify_one();
    }
}

impl From<App> for crate::rdap::Deps {
    fn from(app: App) -> Self {
        app.rdap()
    }
}

impl From<App> for crate::dashboard::Deps {
    fn from(app: App) -> Self {
        app.dashboard()
    }
}

impl From<App> for Writer {
    fn from(app: App) -> Self {
        app.writer()
    }
}

impl From<App> for crate::control::Deps {
    fn from(app: App) -> Self {
        app.control()
    }
}

impl From<App> for crate::whois::Deps {
    fn from(app: App) -> Self {
        app.whois()
    }
}

impl From<App> for crate::epp::Deps {
    fn from(app: App) -> Self {
        app.epp()
    }
}

impl From<&App> for crate::whois::Deps {
    fn from(app: &App) -> Self {
        app.whois()
    }
}

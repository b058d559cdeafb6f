//! The registry service for an edge that changes registry data (the REST
//! API, the control socket): what [`Registry::new`] takes and the wakes a
//! commit sends, and nothing else of the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::registry::{ChangeListener, Registry, ReservedNames};
use crate::store::Store;

/// Who is told of a commit: the scheduler (inbox and wake) and the zone
/// writer, as the running process's `App` tells them.
#[derive(Clone)]
pub struct Wakes {
    pub(super) scheduler_wake: Arc<tokio::sync::Notify>,
    pub(super) scheduler_inbox: Arc<Inbox>,
    pub(super) zone_dirty: Arc<tokio::sync::Notify>,
}

impl ChangeListener for Wakes {
    fn domain_changed(&self, name: &str) {
        self.scheduler_inbox.push(name);
        self.scheduler_wake.notify_one();
    }

    fn zone_changed(&self) {
        self.zone_dirty.notify_one();
    }
}

/// Builds the registry service per request (built by
/// [`super::App::writer`]).
#[derive(Clone)]
pub struct Writer {
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    pub(super) reserved: Arc<ReservedNames>,
    pub(super) wakes: Wakes,
}

impl Writer {
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
        .with_listener(&self.wakes)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Names kept in the inbox before it overflows into a rescan.
pub const INBOX_MAX: usize = 100_000;

/// Names of domains changed outside the scheduler since it last looked.
#[derive(Debug, Default)]
pub struct Inbox {
    names: Mutex<Vec<String>>,
    overflow: AtomicBool,
}

impl Inbox {
    pub fn push(&self, name: &str) {
        let mut v = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= INBOX_MAX {
            self.overflow.store(true, Ordering::SeqCst);
            return;
        }
        v.push(name.to_string());
    }

    /// The names pushed since the last call, and whether some were lost.
    pub fn drain(&self) -> (Vec<String>, bool) {
        let v = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        (v, self.overflow.swap(false, Ordering::SeqCst))
    }
}

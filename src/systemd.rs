//! systemd's service notifications (sd_notify(3)) for `Type=notify` units,
//! through the `sd-notify` crate (a datagram to `$NOTIFY_SOCKET`; no
//! libsystemd). Without `NOTIFY_SOCKET` every call does nothing.
//!
//! - [`ready`]: `READY=1` once the store is open and the listeners bound;
//! - [`feed_watchdog`]: `WATCHDOG=1`, called from the scheduler's loop (a
//!   process without the scheduler role feeds it from a timer), at most
//!   four times per `WATCHDOG_USEC` and only when systemd set it: a stuck
//!   scheduler stops feeding and systemd restarts the service. The loop
//!   turns at least once a second, so `WatchdogSec` should be 4 s or more;
//! - [`stopping`]: `STOPPING=1` when shutdown begins.
//!
//! docs/operations.md ("Install as a service") has the unit files.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::warn;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {e}");
    }
}

/// `READY=1`, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`, for this
/// process), if any.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// When `WATCHDOG=1` was last sent.
static LAST_FED: Mutex<Option<Instant>> = Mutex::new(None);

/// Send `WATCHDOG=1` if the watchdog is on and a quarter of its period
/// passed since the last one (the callers turn up to a second late). Cheap enough to call on every loop iteration.
pub fn feed_watchdog() {
    let Some(period) = watchdog_period() else {
        return;
    };
    let now = Instant::now();
    {
        let mut last = LAST_FED.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < period / 4) {
            return;
        }
        *last = Some(now);
    }
    send(&[NotifyState::Watchdog]);
}

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
//!   waiting for a per-address cap or for its batch to commit holds no
//!   slot, up to `HELD_FACTOR` × that many rounds in all).
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

pub mod checker;
pub mod commit;
pub mod driver;
pub mod lag;
pub mod outages;
pub mod queue;
pub mod round;

use tracing::error;

use crate::app::App;

pub use self::checker::Checker;
pub use self::driver::{load_queue, run_with, BARE_WAKE_MIN_GAP, MAX_SLEEP, ROUND_GRACE};
pub use self::round::ROUND_LIMIT;

/// Run the scheduler with the registry's probe engine until shutdown. If
/// it cannot start (bad check profile, unreadable store) it stops the
/// whole service: a registry that silently stopped verifying delegations
/// would be worse than one that does not start.
pub async fn run(app: App) {
    match checker::build_prober(&app) {
        Ok(p) => run_with(app, p).await,
        Err(e) => {
            error!("scheduler cannot start: {e}; stopping");
            app.shutdown.cancel();
        }
    }
}

//! Operator commands (`domain …`, `retest`, `hold`, `release`,
//! `transfers`, `reseller move`): on the store directly, or through
//! `serve`'s control socket while it owns the store. Same output and exit
//! codes either way.

use std::process::ExitCode;

use clap::Subcommand;

use super::common::{open_store_raw, DbArg, Fail};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::control::{self, Request};
use crate::store::StoreError;

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Show a domain's registration, delegation state and history.
    Show {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Dispute lock (court or dispute-policy case): no transfer, registrant
    /// change or close; the domain stays delegated.
    Lock {
        name: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Lift a dispute lock, recording the dispute's outcome; `paid_till`
    /// becomes at least now plus the grace period.
    Unlock {
        name: String,
        /// The court's (or dispute body's) decision, kept in the history.
        #[arg(long)]
        outcome: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Cancel the registration by a court decision and reserve the name
    /// for the claimant (a contact handle).
    CourtCancel {
        name: String,
        #[arg(long)]
        claimant: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Ask the registrant to verify its data (sanctions after the
    /// configured periods).
    Verify {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Record the registrant's answer to a verification request.
    Verified {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Renew by one registration period.
    Renew {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Close the registration now, or at the end of the paid period.
    Close {
        name: String,
        #[arg(long)]
        at_end: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Approve a pending registrar change.
    TransferApprove {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Reject a pending registrar change.
    TransferReject {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

/// `domain SUBCOMMAND`: the request each maps to.
pub(super) fn domain(cfg: &Config, command: DomainCommand) -> Result<ExitCode, Fail> {
    let (name, db, req) = match command {
        DomainCommand::Show { name, db } => (name, db, Request::Show),
        DomainCommand::Lock { name, reason, db } => (name, db, Request::Lock { reason }),
        DomainCommand::Unlock { name, outcome, db } => (name, db, Request::Unlock { outcome }),
        DomainCommand::CourtCancel { name, claimant, db } => {
            (name, db, Request::CourtCancel { claimant })
        }
        DomainCommand::Verify { name, db } => (name, db, Request::Verify),
        DomainCommand::Verified { name, db } => (name, db, Request::Verified),
        DomainCommand::Renew { name, db } => (name, db, Request::Renew),
        DomainCommand::Close { name, at_end, db } => (name, db, Request::Close { at_end }),
        DomainCommand::TransferApprove { name, db } => (name, db, Request::TransferApprove),
        DomainCommand::TransferReject { name, db } => (name, db, Request::TransferReject),
    };
    operator(cfg, &db, &name, req)
}

/// The operator commands: on the store directly, or through `serve`'s
/// control socket while it owns the store. Same output and exit codes
/// either way.
pub(super) fn operator(
    cfg: &Config,
    db: &DbArg,
    name: &str,
    req: Request,
) -> Result<ExitCode, Fail> {
    let name = normalise_domain(cfg, name)?;
    operator_raw(cfg, db, name, req)
}

/// [`operator`] for a target that is not a domain name (a reseller handle,
/// nothing).
pub(super) fn operator_raw(
    cfg: &Config,
    db: &DbArg,
    name: String,
    req: Request,
) -> Result<ExitCode, Fail> {
    let out = match open_store_raw(cfg, db) {
        Ok(store) => {
            let now = SystemClock.now();
            let reg = crate::registry::Registry::offline(&*store, cfg)?;
            control::execute(&reg, cfg, &name, &req, now).map_err(|e| Fail(e.to_string()))?
        }
        Err(StoreError::Locked { path }) => {
            let sock = cfg.store.control_socket_for(&path);
            let reply = control::call(&sock, &name, req).map_err(|e| {
                Fail(format!(
                    "store {} is in use by another process, and its control socket {} cannot be reached: {e} (is `zonekeeper serve` running with this store and store.control_socket?)",
                    path.display(),
                    sock.display()
                ))
            })?;
            if !(200..300).contains(&reply.status) {
                let msg = reply.body.lines().next().unwrap_or_default().trim();
                return Err(Fail(if msg.is_empty() {
                    format!(
                        "control socket {} answered {}",
                        sock.display(),
                        reply.status
                    )
                } else {
                    msg.to_string()
                }));
            }
            reply.body
        }
        Err(e) => return Err(e.into()),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// A Locked error for commands that need the store to themselves, with
/// what to do instead.
pub(super) fn need_store(e: StoreError, instead: &str) -> Fail {
    match e {
        StoreError::Locked { path } => Fail(format!(
            "store {} is in use by another process (is `zonekeeper serve` running?); {instead}",
            path.display()
        )),
        other => other.into(),
    }
}

fn normalise_domain(cfg: &Config, name: &str) -> Result<String, Fail> {
    Ok(cfg.zones()?.parse_domain(name)?.as_str().to_string())
}

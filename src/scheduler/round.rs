//! One round of a due domain: read it, plan, probe through the
//! [`Checker`] if needed, and hand each step's write to the group-commit
//! writer; what the round reports back to the loop.

use std::time::Duration;

use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::delegation::{self, DecisionCtx, Plan, Policy};
use crate::lifecycle;
use crate::model::{
    CheckReport, DelegationRecord, DelegationState, Domain, HistoryEvent, Nameserver, RoundSummary,
    Timestamp,
};
use crate::store::{DelegationWrite, WriteIf};

use super::checker::Checker;
use super::commit::Committer;

/// Longest a probe round may take before it is discarded.
pub const ROUND_LIMIT: Duration = Duration::from_secs(120);

pub(super) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// What a round task reports back to the loop.
#[derive(Debug)]
pub(super) struct RoundDone {
    pub(super) due: Option<Timestamp>,
    pub(super) state: Option<DelegationState>,
}

pub(super) fn delegation_retry(pol: &Policy) -> chrono::Duration {
    pol.probe_interval.min(chrono::Duration::minutes(1))
}

/// A domain and its delegation record, or `None` if either is gone.
pub(super) type Loaded = Option<(Domain, DelegationRecord)>;

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
pub(super) async fn round(
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

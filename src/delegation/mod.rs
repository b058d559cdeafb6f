//! The delegation state machine (docs/delegation.md) as pure functions of
//! the record, the lifecycle status and the time. Writers share
//! [`on_declared`] and [`on_retest`]; the scheduler drives the rest with
//! [`plan`] (before a round) and [`on_round`] / [`on_pending_round`]
//! (after it).
//!
//! ```text
//! undelegated --declare--> testing --full pass within budget--> delegated
//!                            |  \--window used up--> test_failed --retest--> testing
//!                            \--blocked: paused; block lifts: fresh window
//! delegated --failing round--> delegated (+streak, re-probe in recheck_interval)
//!           --streak confirmed (N rounds over min span) and a violation-->
//!               on_violation=suspend: suspended | report: delegated (+violation)
//! suspended (violation) --first clean round--> delegated
//! delegated --lifecycle block--> suspended(blocked) --lifted, full pass--> delegated
//!                                                  \--lifted, no pass--> testing (fresh window)
//! delegated --new NS set declared--> delegated on the old set + pending (testing)
//!           pending --full pass--> delegated on the new set (zone switches)
//!           pending --window used up--> pending test_failed (old set stays)
//! any --registration cancelled--> undelegated (fingerprint kept) --restored--> testing
//! ```
//!
//! - A *full pass* is a round with verdict pass while every server's (and
//!   address's) downtime in the current period is within `downtime_budget`.
//! - A *failing* monitoring round has a violation finding (an error about
//!   a server that answered, see [`violation_findings`]) or a server or
//!   address that did not answer. It schedules a re-probe after
//!   `recheck_interval` and records a warning; it becomes a *violation*
//!   only when the streak is confirmed (`violation_confirmations` rounds in
//!   a row spanning at least `violation_min_span`) and the round has a
//!   violation finding or a down entry over its budget
//!   ([`DOWNTIME_BUDGET_ID`]). A server down within its budget is downtime,
//!   not a violation. A clean round ends the streak and the violation.
//! - An *inconclusive* round (the registry's own outage, see [`outage`])
//!   changes nothing but the look time: no downtime, no streak, no window.
//! - The *test window* counts only conclusive probing time
//!   (`window_used_ms`): each conclusive round credits the time since the
//!   previous look, capped at twice the probe interval; time after an
//!   inconclusive round, or while serve was stopped, is not credited. A
//!   window never ends without a conclusive round.
//! - Blocked domains (expired, hold, verification overdue) are not probed;
//!   a testing window cannot fail while blocked. The blocks are kept in
//!   `DelegationRecord::blocked`; `lifecycle::in_zone` keeps them out of
//!   the zone at once, the scheduler records the state at its next look
//!   (at once on `App::domain_changed`, and at the exact instant for
//!   changes by time: expiry, release, verification deadlines).
//! - Downtime: see [`downtime`].

mod declare;
pub mod downtime;
pub mod outage;
mod policy;
pub mod schedule;

pub use downtime::{
    accrue, accrue_round, down_over_budget, downtime_ms_now, over_budget, period_start,
};

/// Start of the downtime accounting period containing `now` under
/// `cfg`: the scheduler's own computation, so the API, the dashboard and
/// the budget agree.
pub fn downtime_period_start(now: Timestamp, cfg: &Config) -> Timestamp {
    period_start(
        now,
        Config::chrono(cfg.delegation.downtime_period),
        chrono::Duration::seconds(i64::from(cfg.delegation.downtime_utc_offset_secs)),
    )
}
pub use declare::{on_declared, on_retest, RetestError};
pub use policy::{round_failing, violation_findings, Policy};
pub use schedule::{next_after, next_lifecycle_change, spread};

use std::collections::HashSet;

use chrono::Duration;

use crate::checks::catalogue::CheckId;
use crate::config::{Config, DelegationConfig, OnViolation};
use crate::lifecycle::Status;
use crate::model::{
    delegation_fingerprint, ns_fingerprint, CheckReport, DelegationRecord, DelegationState,
    DsRecord, FailStreak, HistoryEvent, Nameserver, RoundSummary, Severity, Timestamp, Violation,
};

/// Finding id of the synthetic finding for a server over its downtime budget.
pub const DOWNTIME_BUDGET_ID: &str = CheckId::DowntimeBudget.as_str();

/// Finding ids that say an address did not answer at all: for an address
/// of a server that answers elsewhere, that is downtime of the address
/// (charged to its budget), not a violation by itself.
const ADDRESS_DOWN_IDS: [CheckId; 1] = [CheckId::Responsive];

fn names_of(ns: &[Nameserver]) -> String {
    ns.iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ns1, ns2` or `ns1, ns2 with 2 DS`.
fn set_text(ns: &[Nameserver], ds: &[DsRecord]) -> String {
    match ds.len() {
        0 => names_of(ns),
        n => format!("{} with {n} DS", names_of(ns)),
    }
}

// ---------------------------------------------------------------------
// Round-driven transitions (the scheduler calls these; all pure).
// ---------------------------------------------------------------------

/// What the lifecycle says at the moment of a decision.
#[derive(Debug, Clone)]
pub struct DecisionCtx<'a> {
    pub now: Timestamp,
    pub status: &'a Status,
    /// [`next_lifecycle_change`] of the domain.
    pub lifecycle_next: Option<Timestamp>,
    /// How late the scheduler started this round after it was due, while
    /// running (the measured queue lag, ms): see [`Policy::reach_after`].
    pub queue_lag_ms: u64,
}

impl DecisionCtx<'_> {
    fn blocks(&self) -> Vec<String> {
        if self.status.exists() {
            self.status
                .blocks
                .iter()
                .map(|b| b.as_str().to_string())
                .collect()
        } else {
            Vec::new()
        }
    }
    /// `t`, or the next lifecycle change if sooner.
    fn cap(&self, t: Timestamp) -> Timestamp {
        self.lifecycle_next.map_or(t, |l| l.min(t))
    }
}

/// What to do with a domain that is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to schedule (no nameservers, or `test_failed`: waits for a
    /// declaration or retest).
    Idle,
    /// Nothing to write; look again at this time (a block still holds).
    Wait(Timestamp),
    /// Write this record and event without probing.
    Write(Box<DelegationRecord>, HistoryEvent),
    /// Run a probe round, then [`on_round`].
    Probe,
}

fn event(
    from: DelegationState,
    to: DelegationState,
    at: Timestamp,
    reason: String,
) -> HistoryEvent {
    HistoryEvent {
        at,
        from: Some(from),
        to,
        reason,
    }
}

/// Conclusive test-window time credited up to `now`: the time since the
/// last look if that look was conclusive (or since the window opened),
/// capped.
fn window_credit(rec: &DelegationRecord, now: Timestamp, pol: &Policy) -> i64 {
    let last_conclusive = rec
        .last_round
        .as_ref()
        .is_none_or(|r| r.inconclusive.is_none());
    if !last_conclusive {
        return 0;
    }
    let Some(base) = rec.last_look.or(rec.window_start) else {
        return 0;
    };
    (now - base)
        .min(pol.window_credit_cap())
        .num_milliseconds()
        .max(0)
}

/// The window time left after `used` ms.
fn window_left(used: u64, pol: &Policy) -> Duration {
    let total = pol.test_window.num_milliseconds().max(0) as u64;
    Duration::milliseconds(total.saturating_sub(used) as i64)
}

/// Decide what a due domain needs, before any probe.
///
/// Lifecycle blocks (expired, hold, verification overdue) override the
/// servers: a blocked domain is not probed; a delegated one becomes
/// `suspended` with the blocks recorded (a pending NS change then replaces
/// the old set: the domain is out of the zone anyway); a testing one stays
/// `testing` but paused (its window cannot fail while blocked) and gets a
/// fresh window when the block lifts. A cancelled registration drops to
/// `undelegated` (fingerprint kept: the record stays about the declared
/// set); if the registration is restored (new `paid_till`, verification
/// answered) testing restarts with a fresh window.
pub fn plan(rec: &DelegationRecord, ctx: &DecisionCtx<'_>, pol: &Policy) -> Plan {
    let now = ctx.now;
    let st = rec.state;
    if st == DelegationState::Undelegated {
        // Undelegated with a fingerprint: the registration was cancelled
        // with servers declared. If it exists again (operator renewal,
        // verification answered), testing restarts.
        if !rec.ns_fingerprint.is_empty() && ctx.status.exists() {
            let r = DelegationRecord::testing(rec.ns_fingerprint.clone(), now, pol.test_window);
            let ev = event(
                st,
                DelegationState::Testing,
                now,
                "registration restored: testing restarted".into(),
            );
            return Plan::Write(Box::new(r), ev);
        }
        return Plan::Idle;
    }
    if st == DelegationState::TestFailed {
        return Plan::Idle;
    }
    if let Some(c) = ctx.status.cancelled {
        // The fingerprint stays (the record is about the declared set).
        let mut r = DelegationRecord::undelegated(now);
        r.ns_fingerprint = rec.declared_fingerprint().to_string();
        r.last_round = rec.last_round.clone();
        r.downtime = rec.downtime.clone();
        let why = c.as_str();
        return Plan::Write(
            Box::new(r),
            event(
                st,
                DelegationState::Undelegated,
                now,
                format!("registration cancelled ({why})"),
            ),
        );
    }
    let blocks = ctx.blocks();
    let recheck = ctx.cap(now + pol.interval(st));
    if !blocks.is_empty() {
        if blocks == rec.blocked {
            return Plan::Wait(recheck);
        }
        let mut r = rec.clone();
        r.blocked = blocks.clone();
        r.blocked_since = rec
            .blocked_since
            .filter(|_| !rec.blocked.is_empty())
            .or(Some(now));
        r.next_probe = Some(recheck);
        let mut what = blocks.join(", ");
        if let Some(p) = r.pending.take() {
            // Out of the zone either way: the record is about the newest
            // declared set from now on.
            r.ns_fingerprint = p.ns_fingerprint;
            r.published = Vec::new();
            r.published_ds = Vec::new();
            r.downtime = Vec::new();
            what.push_str("; the pending nameserver change replaces the previous set");
        }
        let (to, reason) = match st {
            DelegationState::Delegated => {
                r.state = DelegationState::Suspended;
                r.changed_at = now;
                r.failing = None;
                (r.state, format!("suspended: {what}"))
            }
            DelegationState::Testing => (st, format!("testing paused: {what}")),
            _ => (st, format!("blocked: {what}")),
        };
        return Plan::Write(Box::new(r), event(st, to, now, reason));
    }
    if !rec.blocked.is_empty() && st == DelegationState::Testing {
        let mut r = DelegationRecord::testing(rec.ns_fingerprint.clone(), now, pol.test_window);
        r.downtime = rec.downtime.clone();
        let reason = format!(
            "block lifted ({}): test window restarted",
            rec.blocked.join(", ")
        );
        return Plan::Write(
            Box::new(r),
            event(st, DelegationState::Testing, now, reason),
        );
    }
    if st == DelegationState::Testing && window_over(rec, now, pol) {
        return Plan::Write(
            Box::new(window_failed(rec, now, pol)),
            event(
                st,
                DelegationState::TestFailed,
                now,
                format!(
                    "test window ended without a passing round ({} rounds, {} conclusive)",
                    rec.rounds, rec.conclusive_rounds
                ),
            ),
        );
    }
    Plan::Probe
}

/// A testing record whose window is used up at `now`: `test_failed`.
fn window_failed(rec: &DelegationRecord, now: Timestamp, pol: &Policy) -> DelegationRecord {
    let mut r = rec.clone();
    r.state = DelegationState::TestFailed;
    r.next_probe = None;
    r.changed_at = now;
    r.window_used_ms = r
        .window_used_ms
        .saturating_add(window_credit(rec, now, pol) as u64);
    r.window_end = Some(now);
    r
}

/// The window is used up at `now` (and had a conclusive round).
fn window_over(rec: &DelegationRecord, now: Timestamp, pol: &Policy) -> bool {
    let used = rec
        .window_used_ms
        .saturating_add(window_credit(rec, now, pol) as u64);
    rec.conclusive_rounds > 0 && window_left(used, pol).is_zero()
}

/// What to do about the pending NS change of a delegated record, if any:
/// `Some(Plan::Write)` when its window is used up (the change fails, the
/// old set stays), `Some(Plan::Probe)` when its next probe is due,
/// `None` when there is nothing to do now.
pub fn plan_pending(rec: &DelegationRecord, now: Timestamp, pol: &Policy) -> Option<Plan> {
    let p = rec.pending.as_ref()?;
    if rec.state != DelegationState::Delegated
        || !rec.blocked.is_empty()
        || p.state != DelegationState::Testing
    {
        return None;
    }
    if window_over(p, now, pol) {
        let mut r = rec.clone();
        let np = window_failed(p, now, pol);
        let reason = format!(
            "nameserver change failed: its test window ended without a passing round ({} rounds); the domain stays delegated on {}",
            p.rounds,
            names_of(&rec.published)
        );
        r.pending = Some(Box::new(np));
        return Some(Plan::Write(
            Box::new(r),
            event(rec.state, rec.state, now, reason),
        ));
    }
    match p.next_probe {
        Some(t) if t <= now => Some(Plan::Probe),
        _ => None,
    }
}

/// The record after a probe round (`report`) of a domain that [`plan`]
/// said to probe, and the history event when the state (or a violation)
/// changed. `name` seeds the jitter; `inconclusive` (the reason) when the
/// registry's own outage makes the round say nothing.
///
/// - `testing` → `delegated` on a round that passes while every server is
///   within the downtime budget of the current period; else stays testing
///   (the window end is scheduled as the last look).
/// - `delegated`/`suspended` (violation): see the module docs (streak,
///   confirmation, clean round).
/// - `suspended` after a lifecycle block lifted: a fully passing round
///   within budget delegates it again; anything else restarts testing with
///   a fresh window.
pub fn on_round(
    rec: &DelegationRecord,
    report: &CheckReport,
    ctx: &DecisionCtx<'_>,
    pol: &Policy,
    name: &str,
    inconclusive: Option<&str>,
) -> (DelegationRecord, Option<HistoryEvent>) {
    let t = report.checked_at;
    let st = rec.state;
    let mut r = rec.clone();
    let conclusive = inconclusive.is_none();
    r.downtime = accrue_round(
        &rec.downtime,
        report.checked_at,
        &report.servers,
        conclusive,
        pol.reach_after(st, rec.last_round.as_ref(), ctx.queue_lag_ms),
        pol,
    );
    r.rounds = rec.rounds.saturating_add(1);
    let mut summary = RoundSummary::from_report(report);
    summary.inconclusive = inconclusive.map(str::to_string);
    summary.queue_lag_ms = ctx.queue_lag_ms;
    r.last_round = Some(summary);
    r.last_look = Some(t);
    if st == DelegationState::Testing {
        if conclusive {
            r.window_used_ms = rec
                .window_used_ms
                .saturating_add(window_credit(rec, t, pol) as u64);
            r.conclusive_rounds = rec.conclusive_rounds.saturating_add(1);
        }
        r.window_end = Some(t + window_left(r.window_used_ms, pol));
    }
    if !conclusive {
        // Nothing is decided on a round that says nothing; look again at
        // the failing pace to notice the end of the outage soon.
        let next = next_after(t, pol.failing_interval(st), pol.jitter, name);
        let next = match (st, r.window_end) {
            (DelegationState::Testing, Some(end)) => next.min(end.max(t)),
            _ => next,
        };
        r.next_probe = Some(ctx.cap(next));
        return (r, None);
    }
    let over = over_budget(&r.downtime, t, pol);
    let full_pass = report.passed() && over.is_empty();
    let monitor_next = ctx.cap(next_after(t, pol.monitor_interval, pol.jitter, name));

    let delegate = |mut r: DelegationRecord, reason: String| {
        r.state = DelegationState::Delegated;
        r.delegated_at = Some(t);
        r.changed_at = t;
        r.rounds = 0;
        if let Some(mut v) = r.violation.take() {
            v.until = Some(t);
            r.last_violation = Some(v);
        }
        r.failing = None;
        r.blocked.clear();
        r.blocked_since = None;
        r.next_probe = Some(monitor_next);
        let ev = event(st, DelegationState::Delegated, t, reason);
        (r, Some(ev))
    };

    match st {
        DelegationState::Testing => {
            if full_pass {
                return delegate(
                    r,
                    format!(
                        "delegated: round {} passed within the downtime budget",
                        rec.rounds + 1
                    ),
                );
            }
            let mut next = next_after(t, pol.probe_interval, pol.jitter, name);
            if let Some(end) = r.window_end {
                next = next.min(end);
            }
            r.next_probe = Some(ctx.cap(next));
            (r, None)
        }
        DelegationState::Suspended if !rec.blocked.is_empty() => {
            let lifted = rec.blocked.join(", ");
            if full_pass {
                return delegate(
                    r,
                    format!("block lifted ({lifted}): round passed, delegated again"),
                );
            }
            let mut fresh =
                DelegationRecord::testing(rec.ns_fingerprint.clone(), t, pol.test_window);
            fresh.downtime = r.downtime;
            fresh.rounds = 1;
            fresh.conclusive_rounds = 1;
            fresh.last_look = Some(t);
            fresh.last_round = r.last_round;
            fresh.next_probe = Some(ctx.cap(next_after(t, pol.probe_interval, pol.jitter, name)));
            let ev = event(
                st,
                DelegationState::Testing,
                t,
                format!("block lifted ({lifted}): servers do not pass; test window restarted"),
            );
            (fresh, Some(ev))
        }
        DelegationState::Delegated | DelegationState::Suspended => {
            monitoring_round(r, rec, report, ctx, pol, name, delegate)
        }
        DelegationState::Undelegated | DelegationState::TestFailed => (rec.clone(), None),
    }
}

fn monitoring_round(
    mut r: DelegationRecord,
    rec: &DelegationRecord,
    report: &CheckReport,
    ctx: &DecisionCtx<'_>,
    pol: &Policy,
    name: &str,
    delegate: impl FnOnce(DelegationRecord, String) -> (DelegationRecord, Option<HistoryEvent>),
) -> (DelegationRecord, Option<HistoryEvent>) {
    let t = report.checked_at;
    let st = rec.state;
    // The same next probe as `delegate`'s (jitter is a function of the name).
    let monitor_next = ctx.cap(next_after(t, pol.monitor_interval, pol.jitter, name));
    if !round_failing(report) {
        r.next_probe = Some(monitor_next);
        let streak = r.failing.take();
        if st == DelegationState::Suspended {
            return delegate(r, "violation cleared: clean round, delegated again".into());
        }
        if let Some(mut v) = r.violation.take() {
            v.until = Some(t);
            r.last_violation = Some(v);
            return (
                r,
                Some(event(st, st, t, "violation cleared: clean round".into())),
            );
        }
        if let Some(s) = streak {
            let reason = format!(
                "recovered before confirmation after {} failing round(s) since {}",
                s.rounds,
                s.since.format("%Y-%m-%dT%H:%M:%SZ")
            );
            return (r, Some(event(st, st, t, reason)));
        }
        return (r, None);
    }
    // A failing round: re-probe soon, extend the streak.
    r.next_probe = Some(ctx.cap(next_after(
        t,
        pol.recheck_interval,
        pol.jitter.min(0.2),
        name,
    )));
    let vf = violation_findings(report);
    let down_over = down_over_budget(&r.downtime, t, pol);
    let mut ids: Vec<String> = vf.iter().map(|f| f.id.clone()).collect();
    let mut parts: Vec<String> = vf
        .iter()
        .map(|f| match (&f.server, &f.address) {
            (Some(s), Some(a)) => format!("{} ({s} {a}): {}", f.id, f.message),
            (Some(s), None) => format!("{} ({s}): {}", f.id, f.message),
            _ => format!("{}: {}", f.id, f.message),
        })
        .collect();
    if !down_over.is_empty() {
        ids.push(DOWNTIME_BUDGET_ID.to_string());
        parts.push(format!(
            "{DOWNTIME_BUDGET_ID}: down and over the {}s budget this period: {}",
            pol.downtime_budget.num_seconds(),
            down_over.join(", ")
        ));
    }
    let sanctionable = !ids.is_empty();
    if !sanctionable {
        // Down within the budget: downtime, measured by the re-probes.
        let down: Vec<String> = report
            .servers
            .iter()
            .flat_map(|s| {
                if !s.reachable {
                    vec![s.name.clone()]
                } else {
                    s.unreachable_addresses
                        .iter()
                        .map(|a| format!("{} ({a})", s.name))
                        .collect()
                }
            })
            .collect();
        parts.push(format!("not answering (downtime): {}", down.join(", ")));
    }
    ids.sort();
    ids.dedup();
    let message = parts.join("; ");
    // Only rounds that show this violation confirm it: a streak of
    // another kind (plain downtime, another finding) starts over here.
    let prev = rec.failing.as_ref().filter(|s| streak_continues(s, &ids));
    let streak = FailStreak {
        since: prev.map_or(t, |s| s.since),
        rounds: prev.map_or(0, |s| s.rounds).saturating_add(1),
        finding_ids: ids.clone(),
        message: message.clone(),
    };
    let confirmed =
        streak.rounds >= pol.violation_confirmations && t - streak.since >= pol.violation_min_span;
    let first = prev.is_none();
    r.failing = Some(streak.clone());
    if !(confirmed && sanctionable) {
        if first {
            let reason = format!(
                "warning: failing round (re-probe in {}s, {} in a row over {}s confirm a violation): {message}",
                pol.recheck_interval.num_seconds(),
                pol.violation_confirmations,
                pol.violation_min_span.num_seconds()
            );
            return (r, Some(event(st, st, t, reason)));
        }
        return (r, None);
    }
    let new_violation = rec.violation.is_none();
    r.violation = Some(Violation {
        since: rec.violation.as_ref().map_or(streak.since, |v| v.since),
        finding_ids: ids,
        message: message.clone(),
        until: None,
    });
    let dnssec_only = down_over.is_empty()
        && !vf.is_empty()
        && vf
            .iter()
            .all(|f| crate::checks::dnssec::is_dnssec_check(&f.id));
    let to = match pol.on_violation {
        _ if pol.dnssec_withdraw_ds && dnssec_only => DelegationState::Delegated,
        OnViolation::Suspend => DelegationState::Suspended,
        OnViolation::Report => DelegationState::Delegated,
    };
    if to != st {
        r.state = to;
        r.changed_at = t;
        let reason = match to {
            DelegationState::Suspended => format!(
                "suspended: violation confirmed ({} rounds since {}): {message}",
                streak.rounds,
                streak.since.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            _ => format!("violation reported (policy: report), back in zone: {message}"),
        };
        return (r, Some(event(st, to, t, reason)));
    }
    if new_violation {
        let reason = format!(
            "violation confirmed ({} rounds since {}): {message}",
            streak.rounds,
            streak.since.format("%Y-%m-%dT%H:%M:%SZ")
        );
        return (r, Some(event(st, st, t, reason)));
    }
    (r, None)
}

/// Whether a failing round whose violation ids are `ids` (empty: down
/// within the budget) continues the streak `prev` towards confirming a
/// violation. Downtime rounds lead up to a downtime-budget violation (the
/// outage they measured is the one over budget) but confirm no other
/// finding; a finding is confirmed only by rounds that show it.
fn streak_continues(prev: &FailStreak, ids: &[String]) -> bool {
    let downtime_only = |v: &[String]| v.iter().all(|i| i == DOWNTIME_BUDGET_ID);
    if downtime_only(ids) {
        downtime_only(&prev.finding_ids)
    } else {
        ids.iter()
            .any(|i| i != DOWNTIME_BUDGET_ID && prev.finding_ids.contains(i))
    }
}

/// The record after a probe round of the pending NS set of a delegated
/// domain ([`plan_pending`] said to probe): the pending record advances as
/// a testing record; on its first full pass the zone switches to the new
/// set (the old one is dropped, monitoring continues on the new one).
pub fn on_pending_round(
    rec: &DelegationRecord,
    report: &CheckReport,
    ctx: &DecisionCtx<'_>,
    pol: &Policy,
    name: &str,
    inconclusive: Option<&str>,
) -> (DelegationRecord, Option<HistoryEvent>) {
    let Some(p) = rec.pending.as_deref() else {
        return (rec.clone(), None);
    };
    let (np, _) = on_round(p, report, ctx, pol, name, inconclusive);
    let mut r = rec.clone();
    if np.state != DelegationState::Delegated {
        r.pending = Some(Box::new(np));
        return (r, None);
    }
    let t = report.checked_at;
    let old = names_of(&rec.published);
    r.ns_fingerprint = np.ns_fingerprint;
    r.published = Vec::new();
    r.published_ds = Vec::new();
    r.pending = None;
    r.downtime = np.downtime;
    r.last_round = np.last_round;
    r.failing = None;
    if let Some(mut v) = r.violation.take() {
        v.until = Some(t);
        r.last_violation = Some(v);
    }
    r.rounds = 0;
    r.delegated_at = Some(t);
    r.changed_at = t;
    r.next_probe = np.next_probe;
    let reason = format!(
        "nameserver change applied: the new set passed round {} within the downtime budget; the zone now holds it instead of {old}",
        p.rounds + 1
    );
    (r, Some(event(rec.state, rec.state, t, reason)))
}

/// When the scheduler should next look at a record it loads (start-up, a
/// wake): `None` for records it need not look at.
pub fn due_of(rec: &DelegationRecord) -> Option<Timestamp> {
    let main = match rec.state {
        // A cancelled registration with servers: one look (at start-up)
        // in case it was restored meanwhile.
        DelegationState::Undelegated if !rec.ns_fingerprint.is_empty() => {
            Some(rec.next_probe.unwrap_or(rec.changed_at))
        }
        DelegationState::Undelegated | DelegationState::TestFailed => None,
        _ => Some(rec.next_probe.unwrap_or(rec.changed_at)),
    };
    let pending = rec
        .pending
        .as_ref()
        .filter(|p| p.state == DelegationState::Testing && rec.blocked.is_empty())
        .and_then(|p| p.next_probe);
    match (main, pending) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;

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

pub mod downtime;
pub mod outage;
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

/// The record after `ns` with DS set `ds` is declared (the domain's
/// previous sets were `old_ns`, `old_ds`), or `None` when neither changed
/// (re-importing the same sets leaves the state as it is). A DS change is
/// tested like an NS change.
///
/// A delegated domain keeps its delegation while a new set is tested: the
/// record stays `delegated` on the old NS and DS sets (kept in `published`
/// and `published_ds`) with the new one `pending`; declaring the published set again withdraws the
/// change. Any other state starts a fresh test of the new set.
pub fn on_declared(
    old: Option<&DelegationRecord>,
    (old_ns, old_ds): (&[Nameserver], &[DsRecord]),
    (ns, ds): (&[Nameserver], &[DsRecord]),
    now: Timestamp,
    window: chrono::Duration,
) -> Option<(DelegationRecord, HistoryEvent)> {
    let fp = delegation_fingerprint(ns, ds);
    if let Some(old) = old {
        if old.declared_fingerprint() == fp {
            return None;
        }
        if old.state == DelegationState::Delegated && old.blocked.is_empty() && !ns.is_empty() {
            let mut r = old.clone();
            let zone_ns = if old.published.is_empty() {
                old_ns
            } else {
                &old.published
            };
            let reason = if ds.is_empty()
                && !old.zone_ds(old_ds).is_empty()
                && ns_fingerprint(ns) == ns_fingerprint(zone_ns)
            {
                // Removing the DS set (same servers) is always safe for
                // resolution: the delegation goes insecure at once.
                r.ns_fingerprint = fp;
                r.pending = None;
                r.published = Vec::new();
                r.published_ds = Vec::new();
                "DS set removed: the delegation is published unsigned".to_string()
            } else if old.ns_fingerprint == fp {
                r.pending = None;
                r.published = Vec::new();
                r.published_ds = Vec::new();
                "nameserver change withdrawn: the set in the zone is declared again".to_string()
            } else {
                if r.published.is_empty() {
                    r.published = old_ns.to_vec();
                    r.published_ds = old_ds.to_vec();
                }
                r.pending = Some(Box::new(DelegationRecord::testing(fp, now, window)));
                format!(
                    "nameserver change declared: {}; tested while the zone keeps {}",
                    set_text(ns, ds),
                    set_text(&r.published, &r.published_ds)
                )
            };
            let ev = event(old.state, old.state, now, reason);
            return Some((r, ev));
        }
    }
    let from = old.map(|o| o.state);
    let (rec, reason) = if ns.is_empty() {
        (
            DelegationRecord::undelegated(now),
            "nameservers removed".to_string(),
        )
    } else {
        (
            DelegationRecord::testing(fp, now, window),
            format!("nameservers declared: {}", set_text(ns, ds)),
        )
    };
    let ev = HistoryEvent {
        at: now,
        from,
        to: rec.state,
        reason,
    };
    Some((rec, ev))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetestError {
    #[error("the domain has no nameservers to test")]
    NoNameservers,
    #[error("the domain is delegated; monitoring is already running")]
    AlreadyDelegated,
}

/// A fresh test window for the current NS set (for a delegated domain
/// with a pending change: for the pending set).
pub fn on_retest(
    old: &DelegationRecord,
    now: Timestamp,
    window: chrono::Duration,
) -> Result<(DelegationRecord, HistoryEvent), RetestError> {
    match old.state {
        DelegationState::Undelegated => Err(RetestError::NoNameservers),
        DelegationState::Delegated => {
            let Some(p) = &old.pending else {
                return Err(RetestError::AlreadyDelegated);
            };
            let mut r = old.clone();
            r.pending = Some(Box::new(DelegationRecord::testing(
                p.ns_fingerprint.clone(),
                now,
                window,
            )));
            let ev = event(
                old.state,
                old.state,
                now,
                "retest of the pending nameserver change requested".into(),
            );
            Ok((r, ev))
        }
        DelegationState::Testing | DelegationState::TestFailed | DelegationState::Suspended => {
            let rec =
                DelegationRecord::testing(old.declared_fingerprint().to_string(), now, window);
            let ev = HistoryEvent {
                at: now,
                from: Some(old.state),
                to: DelegationState::Testing,
                reason: "retest requested".into(),
            };
            Ok((rec, ev))
        }
    }
}

// ---------------------------------------------------------------------
// Round-driven transitions (the scheduler calls these; all pure).
// ---------------------------------------------------------------------

/// The delegation periods and policy, as chrono durations. Built once
/// from the config and shared (scheduler, API, WHOIS, dashboard).
#[derive(Debug, Clone)]
pub struct Policy {
    pub probe_interval: Duration,
    pub monitor_interval: Duration,
    pub test_window: Duration,
    pub downtime_budget: Duration,
    pub downtime_period: Duration,
    pub downtime_utc_offset: Duration,
    pub on_violation: OnViolation,
    pub jitter: f64,
    pub recheck_interval: Duration,
    pub violation_confirmations: u32,
    pub violation_min_span: Duration,
    /// `dnssec.on_invalid = "withdraw_ds"`: a violation made only of
    /// DNSSEC findings keeps the domain delegated (the zone writer then
    /// leaves its DS out: published insecure) instead of suspending it.
    pub dnssec_withdraw_ds: bool,
}

impl Policy {
    pub fn from_config(c: &DelegationConfig) -> Self {
        Self {
            probe_interval: Config::chrono(c.probe_interval),
            monitor_interval: Config::chrono(c.monitor_interval),
            test_window: Config::chrono(c.test_window),
            downtime_budget: Config::chrono(c.downtime_budget),
            downtime_period: Config::chrono(c.downtime_period),
            downtime_utc_offset: Duration::seconds(c.downtime_utc_offset_secs.into()),
            on_violation: c.on_violation,
            jitter: c.jitter,
            // A re-probe never waits longer than a plain monitoring round
            // (configs with shrunken periods keep working).
            recheck_interval: Config::chrono(c.recheck_interval.min(c.monitor_interval)),
            violation_confirmations: c.violation_confirmations.max(1),
            violation_min_span: Config::chrono(c.violation_min_span),
            dnssec_withdraw_ds: false,
        }
    }

    /// How often a domain in `state` is looked at when all is well.
    pub fn interval(&self, state: DelegationState) -> Duration {
        match state {
            DelegationState::Testing => self.probe_interval,
            _ => self.monitor_interval,
        }
    }

    /// How often a failing domain in `state` is looked at: testing keeps
    /// its pace, monitoring re-probes soon.
    pub fn failing_interval(&self, state: DelegationState) -> Duration {
        match state {
            DelegationState::Testing => self.probe_interval,
            _ => self.recheck_interval,
        }
    }

    /// The longest gap between two conclusive probes across which a
    /// down server is charged (twice the expected gap, for jitter and a
    /// busy queue); a longer one means the registry was not looking.
    pub fn reach(&self, state: DelegationState) -> Duration {
        self.failing_interval(state) * 2
    }

    /// [`Policy::reach`] of the gap ending at a round whose predecessor
    /// (`prev`, the record's last round) took `prev.duration_ms` and that
    /// itself started `queue_lag_ms` after it was due: the next round
    /// could not start before the previous one ended, so a round longer
    /// than the interval (a dead server's round lasts `probe.timeout` ×
    /// tries) does not make the gap after it "the registry not looking";
    /// nor does a round that waited in a running scheduler's queue for a
    /// slot (a backlog). Only time the registry was not looking at all
    /// (serve stopped, the scheduler stalled) is left out.
    pub fn reach_after(
        &self,
        state: DelegationState,
        prev: Option<&crate::model::RoundSummary>,
        queue_lag_ms: u64,
    ) -> Duration {
        let took = prev.map_or(0, |r| r.duration_ms);
        let extra = took.saturating_add(queue_lag_ms);
        self.reach(state) + Duration::milliseconds(i64::try_from(extra).unwrap_or(i64::MAX / 4))
    }

    /// The most test-window time one conclusive round credits.
    pub fn window_credit_cap(&self) -> Duration {
        self.probe_interval * 2
    }
}

/// Error findings that are a monitoring violation: those about a server
/// that answered (wrong data, not plain unreachability, which the downtime
/// budget covers, nor a dead address of an answering server, which its
/// address's budget covers), and findings about no single server when
/// every server answered.
pub fn violation_findings(report: &CheckReport) -> Vec<&crate::model::Finding> {
    let down: HashSet<String> = report
        .servers
        .iter()
        .filter(|s| !s.reachable)
        .map(|s| norm(&s.name))
        .collect();
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .filter(|f| !ADDRESS_DOWN_IDS.iter().any(|c| *c == f.id))
        .filter(|f| match &f.server {
            Some(s) => !down.contains(&norm(s)),
            None => down.is_empty(),
        })
        .collect()
}

/// Whether a round saw anything wrong at all (a violation finding, a
/// server or an address that did not answer): such a round is re-probed
/// soon, and is the kind a registry-side outage makes inconclusive.
pub fn round_failing(report: &CheckReport) -> bool {
    !report.passed()
        || report
            .servers
            .iter()
            .any(|s| !s.reachable || !s.unreachable_addresses.is_empty())
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

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
mod tests {
    use super::*;
    use crate::config::LifecycleConfig;
    use crate::lifecycle::{evaluate, initial_paid_till};
    use crate::model::{Domain, Finding, Hold, ServerDowntime, ServerReport, Verdict};
    use crate::names::{parse_host, DomainName};
    use chrono::{TimeZone, Utc};

    const S: Duration = Duration::seconds(1);

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
    }

    fn pol() -> Policy {
        Policy::from_config(&DelegationConfig::default())
    }

    fn ns() -> Vec<Nameserver> {
        ["ns1.example.ru", "ns2.example.net"]
            .iter()
            .map(|n| Nameserver {
                name: parse_host(n).unwrap(),
                addresses: vec![],
            })
            .collect()
    }

    fn domain() -> Domain {
        let created = t0() - Duration::days(30);
        Domain {
            name: DomainName::from_trusted("example.ru".into()),
            registrar: "R".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created,
            paid_till: initial_paid_till(created, &LifecycleConfig::default()).unwrap(),
            nameservers: ns(),
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: created,
            registration: Default::default(),
            ds: Vec::new(),
        }
    }

    /// A report at `at`: `up[i]` = server i answered; `pass` = verdict.
    fn report(at: Timestamp, up: [bool; 2], pass: bool) -> CheckReport {
        let names = ["ns1.example.ru", "ns2.example.net"];
        let mut findings = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if !up[i] {
                findings.push(Finding {
                    id: "UNREACHABLE".into(),
                    severity: Severity::Error,
                    server: Some(n.to_string()),
                    address: None,
                    message: "timeout".into(),
                });
            }
        }
        if !pass && up.iter().all(|u| *u) {
            findings.push(Finding {
                id: "NS_SET_MISMATCH".into(),
                severity: Severity::Error,
                server: Some("ns2.example.net.".into()),
                address: None,
                message: "NS set differs".into(),
            });
        }
        CheckReport {
            domain: "example.ru".into(),
            verdict: if pass && up.iter().all(|u| *u) {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            checked_at: at,
            duration_ms: 5,
            findings,
            servers: names
                .iter()
                .zip(up)
                .map(|(n, r)| ServerReport {
                    name: n.to_string(),
                    addresses: vec![],
                    reachable: r,
                    soa_serial: r.then_some(1),
                    rtt_ms: None,
                    unreachable_addresses: vec![],
                })
                .collect(),
        }
    }

    fn ctx_at(d: &Domain, now: Timestamp) -> (Status, Option<Timestamp>) {
        let cfg = LifecycleConfig::default();
        (evaluate(d, now, &cfg), next_lifecycle_change(d, now, &cfg))
    }

    /// Plan then (if asked) probe with `rep`, as the scheduler does.
    fn step(
        rec: &DelegationRecord,
        d: &Domain,
        rep: Option<CheckReport>,
        now: Timestamp,
        pol: &Policy,
    ) -> (DelegationRecord, Option<HistoryEvent>, &'static str) {
        let (status, ln) = ctx_at(d, now);
        let ctx = DecisionCtx {
            now,
            status: &status,
            lifecycle_next: ln,
            queue_lag_ms: 0,
        };
        match plan(rec, &ctx, pol) {
            Plan::Idle => (rec.clone(), None, "idle"),
            Plan::Wait(_) => (rec.clone(), None, "wait"),
            Plan::Write(r, e) => (*r, Some(e), "write"),
            Plan::Probe => {
                let rep = rep.expect("a probe was planned");
                let (r, e) = on_round(rec, &rep, &ctx, pol, "example.ru", None);
                (r, e, "probe")
            }
        }
    }

    fn testing(at: Timestamp, pol: &Policy) -> DelegationRecord {
        DelegationRecord::testing(ns_fingerprint(&ns()), at, pol.test_window)
    }

    #[test]
    fn period_start_is_the_local_calendar_day() {
        let p = pol();
        let msk = |y, m, d, h, mi, s| Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap();
        // Moscow midnight is 21:00 UTC the day before.
        assert_eq!(
            period_start(
                msk(2026, 1, 10, 20, 59, 59),
                p.downtime_period,
                p.downtime_utc_offset
            ),
            msk(2026, 1, 9, 21, 0, 0)
        );
        assert_eq!(
            period_start(
                msk(2026, 1, 10, 21, 0, 0),
                p.downtime_period,
                p.downtime_utc_offset
            ),
            msk(2026, 1, 10, 21, 0, 0)
        );
        // Negative offsets and short periods align to epoch + offset.
        let ps = period_start(msk(2026, 1, 10, 0, 0, 6), Duration::seconds(5), -S * 2);
        assert_eq!(ps, msk(2026, 1, 10, 0, 0, 2));
        let ps = period_start(msk(2026, 1, 10, 0, 0, 7), Duration::seconds(5), -S * 2);
        assert_eq!(ps, msk(2026, 1, 10, 0, 0, 7));
        let before_epoch = chrono::DateTime::from_timestamp(-1, 0).unwrap();
        assert_eq!(
            period_start(before_epoch, Duration::days(1), Duration::zero()),
            chrono::DateTime::from_timestamp(-86400, 0).unwrap()
        );
    }

    fn dt(server: &str, start: Timestamp) -> ServerDowntime {
        ServerDowntime {
            server: parse_host(server).unwrap(),
            period_start: start,
            unreachable_secs: 0,
            unreachable_ms: 0,
            last_reachable: None,
            last_probe: None,
            address: None,
            unmeasured_ms: 0,
        }
    }

    #[test]
    fn downtime_is_measured_between_conclusive_probes_only() {
        let mut p = pol();
        p.downtime_period = Duration::seconds(100);
        p.downtime_utc_offset = Duration::zero();
        let base = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap(); // a period start
        let reach = Duration::seconds(10);
        let mut d = dt("ns1.example.ru", base);
        // First probe down: the outage starts here; nothing before it.
        accrue(&mut d, Some(false), base, reach, &p);
        assert_eq!(d.unreachable_ms, 0);
        // Down again 10 s later: the 10 s between are charged.
        accrue(&mut d, Some(false), base + S * 10, reach, &p);
        assert_eq!(d.unreachable_ms, 10_000);
        // Up 8 s later: the outage ran until this probe.
        accrue(&mut d, Some(true), base + S * 18, reach, &p);
        assert_eq!(d.unreachable_ms, 18_000);
        // Up -> down: nothing yet (no extrapolation backwards).
        accrue(&mut d, Some(false), base + S * 24, reach, &p);
        assert_eq!(d.unreachable_ms, 18_000);
        assert_eq!(d.unreachable_secs, 18);
        // A 30 s gap (serve stopped) down at both ends: not charged.
        accrue(&mut d, Some(false), base + S * 54, reach, &p);
        assert_eq!(d.unreachable_ms, 18_000);
        // An inconclusive probe breaks the chain both ways.
        accrue(&mut d, None, base + S * 60, reach, &p);
        assert_eq!(d.unreachable_ms, 18_000);
        assert_eq!(d.last_reachable, Some(false), "last state kept");
        accrue(&mut d, Some(false), base + S * 64, reach, &p);
        assert_eq!(d.unreachable_ms, 18_000);
        // Down across the period boundary at 100 s: split; the old period
        // is closed.
        accrue(&mut d, Some(false), base + S * 72, reach, &p);
        assert_eq!(d.unreachable_ms, 26_000);
        accrue(&mut d, Some(false), base + S * 82, reach, &p);
        accrue(&mut d, Some(false), base + S * 92, reach, &p);
        accrue(&mut d, Some(false), base + S * 102, reach, &p);
        assert_eq!(d.period_start, base + S * 100);
        assert_eq!(d.unreachable_ms, 2_000);
        accrue(&mut d, Some(true), base + S * 110, reach, &p);
        assert_eq!(d.unreachable_ms, 10_000);
        // Up through the next period: the figure resets to zero.
        accrue(&mut d, Some(true), base + S * 205, reach, &p);
        assert_eq!((d.period_start, d.unreachable_ms), (base + S * 200, 0));
        assert_eq!(downtime_ms_now(&d, base + S * 299, &p), 0);
        // A round replayed with an older time changes nothing.
        let before = d.clone();
        accrue(&mut d, Some(false), base + S * 150, reach, &p);
        assert_eq!(d, before);
    }

    #[test]
    fn testing_delegates_on_first_full_pass_within_budget() {
        let p = pol();
        let d = domain();
        let rec = testing(t0(), &p);
        // A failing round stays testing, next probe one interval (±jitter) on.
        let (r1, e, how) = step(&rec, &d, Some(report(t0(), [true, true], false)), t0(), &p);
        assert_eq!(
            (how, e, r1.state, r1.rounds),
            ("probe", None, DelegationState::Testing, 1)
        );
        let np = r1.next_probe.unwrap() - t0();
        assert!(
            np >= Duration::minutes(9) + S * 30 && np <= Duration::minutes(10) + S * 30,
            "{np}"
        );
        let at = t0() + Duration::minutes(10);
        let (r2, e, _) = step(&r1, &d, Some(report(at, [true, true], true)), at, &p);
        assert_eq!(r2.state, DelegationState::Delegated);
        assert_eq!(r2.delegated_at, Some(at));
        assert_eq!(r2.window_start, Some(t0()), "window kept for the record");
        let e = e.unwrap();
        assert_eq!(
            (e.from, e.to),
            (Some(DelegationState::Testing), DelegationState::Delegated)
        );
        assert!(e.reason.contains("round 2 passed"), "{}", e.reason);
        let mn = r2.next_probe.unwrap() - at;
        assert!(
            mn >= Duration::minutes(57) && mn <= Duration::minutes(63),
            "{mn}"
        );
    }

    #[test]
    fn a_pass_over_the_downtime_budget_does_not_delegate() {
        let mut p = pol();
        p.probe_interval = Duration::hours(1);
        p.jitter = 0.0;
        let d = domain();
        // Period (Moscow day) starts 2026-01-09T21:00Z; t0 is 12:00Z.
        let mut rec = testing(t0(), &p);
        let mut at = t0();
        // ns2 down at 12:00, 13:00, 14:00 → 2 h measured (at budget: ok).
        for _ in 0..3 {
            let (r, _, _) = step(&rec, &d, Some(report(at, [true, false], false)), at, &p);
            rec = r;
            at += Duration::hours(1);
        }
        assert_eq!(rec.downtime[1].unreachable_ms, 2 * 3600 * 1000);
        // Up at 15:00: the outage lasted until this probe: 3 h > 2 h.
        let (r, _, _) = step(&rec, &d, Some(report(at, [true, true], true)), at, &p);
        assert_eq!(r.downtime[1].unreachable_ms, 3 * 3600 * 1000);
        assert_eq!(
            r.state,
            DelegationState::Testing,
            "passing round over budget"
        );
        assert_eq!(
            over_budget(&r.downtime, at, &p),
            vec!["ns2.example.net".to_string()]
        );
        // The next Moscow day starts at 21:00Z: budget fresh, a pass delegates.
        let mut r = r;
        let next_day = Utc.with_ymd_and_hms(2026, 1, 10, 21, 0, 0).unwrap();
        while at + Duration::hours(1) < next_day {
            at += Duration::hours(1);
            let (n, _, _) = step(&r, &d, Some(report(at, [true, true], true)), at, &p);
            assert_eq!(n.state, DelegationState::Testing, "still the old day");
            r = n;
        }
        let (r, _, _) = step(
            &r,
            &d,
            Some(report(next_day, [true, true], true)),
            next_day,
            &p,
        );
        assert_eq!(r.state, DelegationState::Delegated);
    }

    /// Probe every 10 minutes with failing rounds until `until`.
    fn run_failing(
        mut rec: DelegationRecord,
        d: &Domain,
        from: Timestamp,
        until: Timestamp,
        p: &Policy,
    ) -> (DelegationRecord, Timestamp) {
        let mut at = from;
        while at < until {
            let (r, _, how) = step(&rec, d, Some(report(at, [true, true], false)), at, p);
            assert_eq!(how, "probe", "at {at}");
            rec = r;
            at = rec.next_probe.unwrap();
        }
        (rec, at)
    }

    #[test]
    fn window_end_fails_the_test_exactly_at_its_end() {
        let mut p = pol();
        p.jitter = 0.0;
        let d = domain();
        let rec = testing(t0(), &p);
        let end = t0() + Duration::days(4);
        assert_eq!(rec.window_end, Some(end));
        // Rounds every 10 minutes: the last look is the end itself.
        let (r, at) = run_failing(rec, &d, t0(), end, &p);
        assert_eq!(at, end);
        assert_eq!(r.window_end, Some(end));
        assert_eq!(r.conclusive_rounds, 576);
        // One millisecond before the end a round still runs, and can pass.
        let just = end - Duration::milliseconds(1);
        let (ok, _, _) = step(&r, &d, Some(report(just, [true, true], true)), just, &p);
        assert_eq!(ok.state, DelegationState::Delegated);
        // At the end: test_failed, no probe, no next probe.
        let (f, e, how) = step(&r, &d, None, end, &p);
        assert_eq!(
            (how, f.state, f.next_probe),
            ("write", DelegationState::TestFailed, None)
        );
        assert!(e.unwrap().reason.contains("test window ended"));
        assert_eq!(f.window_used_ms, 4 * 86_400_000);
        assert_eq!(step(&f, &d, None, end + S, &p).2, "idle");
        assert_eq!(due_of(&f), None);
        // Retest: a fresh window.
        let (rt, _) = on_retest(&f, end + S, p.test_window).unwrap();
        assert_eq!(rt.window_start, Some(end + S));
        assert_eq!(due_of(&rt), Some(end + S));
    }

    #[test]
    fn the_window_counts_only_conclusive_probing_time() {
        let mut p = pol();
        p.jitter = 0.0;
        let d = domain();
        let rec = testing(t0(), &p);
        // Two days of rounds, then serve is stopped for five days.
        let (r, at) = run_failing(rec, &d, t0(), t0() + Duration::days(2), &p);
        let back = at + Duration::days(5);
        // Past the nominal end, yet no failure: the stop is not counted
        // (only the capped credit of one gap).
        let (r2, e, how) = step(&r, &d, Some(report(back, [true, true], false)), back, &p);
        assert_eq!((how, e), ("probe", None));
        assert_eq!(r2.state, DelegationState::Testing);
        assert_eq!(
            r2.window_used_ms,
            r.window_used_ms + p.window_credit_cap().num_milliseconds() as u64
        );
        let left = Duration::days(4) - Duration::milliseconds(r2.window_used_ms as i64);
        assert_eq!(r2.window_end, Some(back + left));
        // Inconclusive rounds consume nothing either, and a window never
        // ends on them alone.
        let fresh = testing(t0(), &p);
        let mut cur = fresh.clone();
        let mut at = t0();
        for _ in 0..1000 {
            let (status, ln) = ctx_at(&d, at);
            let ctx = DecisionCtx {
                now: at,
                status: &status,
                lifecycle_next: ln,
                queue_lag_ms: 0,
            };
            assert_eq!(plan(&cur, &ctx, &p), Plan::Probe);
            let (n, e) = on_round(
                &cur,
                &report(at, [false, false], false),
                &ctx,
                &p,
                "example.ru",
                Some("registry-side outage"),
            );
            assert!(e.is_none());
            cur = n;
            at = cur.next_probe.unwrap();
        }
        assert!(at > t0() + Duration::days(6));
        assert_eq!((cur.window_used_ms, cur.conclusive_rounds), (0, 0));
        assert!(cur.downtime.iter().all(|d| d.unreachable_ms == 0));
        assert_eq!(
            cur.last_round.as_ref().unwrap().inconclusive.as_deref(),
            Some("registry-side outage")
        );
    }

    fn delegated(p: &Policy, d: &Domain) -> DelegationRecord {
        let rec = testing(t0(), p);
        let (r, _, _) = step(&rec, d, Some(report(t0(), [true, true], true)), t0(), p);
        assert_eq!(r.state, DelegationState::Delegated);
        r
    }

    /// Step through monitoring rounds at each look the record asks for,
    /// with `up`/`pass` per round, collecting events.
    fn monitor(
        mut r: DelegationRecord,
        d: &Domain,
        p: &Policy,
        rounds: &[([bool; 2], bool)],
    ) -> (DelegationRecord, Vec<HistoryEvent>, Timestamp) {
        let mut evs = Vec::new();
        let mut at = r.next_probe.unwrap();
        for (up, pass) in rounds {
            at = r.next_probe.unwrap();
            let (n, e, how) = step(&r, d, Some(report(at, *up, *pass)), at, p);
            assert_eq!(how, "probe");
            evs.extend(e);
            r = n;
        }
        (r, evs, at)
    }

    #[test]
    fn violations_are_confirmed_before_any_sanction() {
        for policy in [OnViolation::Report, OnViolation::Suspend] {
            let mut p = pol();
            p.on_violation = policy;
            p.jitter = 0.0;
            let d = domain();
            let rec = delegated(&p, &d);
            // One bad reply, then clean: a warning, no sanction.
            let (r, evs, at) = monitor(rec.clone(), &d, &p, &[([true, true], false)]);
            assert_eq!(r.state, DelegationState::Delegated);
            assert!(r.violation.is_none());
            assert_eq!(r.failing.as_ref().unwrap().rounds, 1);
            assert_eq!(r.next_probe, Some(at + p.recheck_interval), "re-probe soon");
            assert!(
                evs[0].reason.starts_with("warning: failing round"),
                "{}",
                evs[0].reason
            );
            let (r, evs, _) = monitor(r, &d, &p, &[([true, true], true)]);
            assert!(r.failing.is_none() && r.violation.is_none());
            assert!(evs[0].reason.contains("recovered before confirmation"));
            // Three failing rounds 5 min apart span 10 min < 15 min: not yet.
            let (r, evs, _) = monitor(rec.clone(), &d, &p, &[([true, true], false); 3]);
            assert_eq!(
                (r.state, r.violation.is_none(), evs.len()),
                (DelegationState::Delegated, true, 1)
            );
            // The fourth spans 15 min: confirmed.
            let (r, evs, at4) = monitor(r, &d, &p, &[([true, true], false)]);
            let v = r.violation.clone().unwrap();
            assert_eq!(
                v.since,
                rec.next_probe.unwrap(),
                "since the first failing round"
            );
            assert_eq!(v.finding_ids, vec!["NS_SET_MISMATCH".to_string()]);
            assert!(evs[0].reason.contains("confirmed"), "{}", evs[0].reason);
            let expected = match policy {
                OnViolation::Report => DelegationState::Delegated,
                OnViolation::Suspend => DelegationState::Suspended,
            };
            assert_eq!(r.state, expected);
            // Still failing: no new event, `since` kept.
            let (r, evs, _) = monitor(r, &d, &p, &[([true, true], false)]);
            assert!(evs.is_empty());
            assert_eq!(r.violation.as_ref().unwrap().since, v.since);
            // The first clean round ends it (and un-suspends).
            let (r, evs, at) = monitor(r, &d, &p, &[([true, true], true)]);
            assert_eq!(
                (r.state, r.violation.clone()),
                (DelegationState::Delegated, None)
            );
            assert!(
                evs[0].reason.contains("violation cleared"),
                "{}",
                evs[0].reason
            );
            let last = r.last_violation.unwrap();
            assert_eq!((last.since, last.until), (v.since, Some(at)));
            assert!(at > at4);
        }
    }

    #[test]
    fn downtime_is_charged_across_a_round_longer_than_the_recheck_interval() {
        let mut p = pol();
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        let at1 = rec.next_probe.unwrap();
        // ns2 dead: the round takes 12 min (longer than the 10 min reach
        // of a 5 min recheck), the next starts 13 min after it started.
        let at2 = at1 + Duration::minutes(13);
        for (took, charged) in [(12 * 60_000, 13 * 60_000), (0, 0)] {
            let mut rep = report(at1, [true, false], false);
            rep.duration_ms = took;
            let (r, _, _) = step(&rec, &d, Some(rep), at1, &p);
            let (r, _, _) = step(&r, &d, Some(report(at2, [true, false], false)), at2, &p);
            assert_eq!(
                r.downtime[1].unreachable_ms, charged,
                "round of {took} ms, then a 13 min gap"
            );
        }
    }

    /// The reach widens by the round's measured queue lag: a failing
    /// domain re-probed 40 min late because the scheduler's queue was
    /// backed up is charged; the same gap without lag (the registry not
    /// looking) is not charged but kept as unmeasured time.
    #[test]
    fn downtime_is_charged_across_queue_lag_and_unmeasured_beyond_it() {
        let mut p = pol();
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        let at1 = rec.next_probe.unwrap();
        let (r1, _, _) = step(&rec, &d, Some(report(at1, [true, false], false)), at1, &p);
        // Due at at1 + 5 min (recheck), started 40 min after that.
        let at2 = at1 + Duration::minutes(45);
        let lag = 40 * 60_000;
        for (queue_lag_ms, charged, unmeasured) in [(lag, 45 * 60_000, 0), (0, 0, 45 * 60_000)] {
            let (status, ln) = ctx_at(&d, at2);
            let ctx = DecisionCtx {
                now: at2,
                status: &status,
                lifecycle_next: ln,
                queue_lag_ms,
            };
            let rep = report(at2, [true, false], false);
            let (r, _) = on_round(&r1, &rep, &ctx, &p, "example.ru", None);
            let ns2 = &r.downtime[1];
            assert_eq!(
                (ns2.unreachable_ms, ns2.unmeasured_ms),
                (charged, unmeasured),
                "queue lag {queue_lag_ms} ms"
            );
            assert_eq!(r.last_round.as_ref().unwrap().queue_lag_ms, queue_lag_ms);
            // The server that answered has nothing unmeasured.
            assert_eq!(r.downtime[0].unmeasured_ms, 0);
        }
        assert_eq!(
            p.reach_after(DelegationState::Delegated, None, 60_000),
            p.reach(DelegationState::Delegated) + Duration::minutes(1)
        );
    }

    #[test]
    fn unmeasured_time_is_kept_per_period() {
        let p = Policy {
            downtime_period: Duration::seconds(100),
            downtime_utc_offset: Duration::zero(),
            ..pol()
        };
        let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = |n: i64| base + Duration::seconds(n);
        let mut d = ServerDowntime {
            server: crate::names::parse_host("ns1.example.net").unwrap(),
            period_start: base,
            unreachable_secs: 0,
            unreachable_ms: 0,
            last_reachable: None,
            last_probe: None,
            address: None,
            unmeasured_ms: 0,
        };
        let reach = Duration::seconds(10);
        accrue(&mut d, Some(false), s(10), reach, &p);
        accrue(&mut d, Some(false), s(40), reach, &p);
        assert_eq!((d.unreachable_ms, d.unmeasured_ms), (0, 30_000));
        assert_eq!(downtime::unmeasured_ms_now(&d, s(50), &p), 30_000);
        // Across the period boundary at 100: the new period keeps its part.
        accrue(&mut d, Some(false), s(130), reach, &p);
        assert_eq!((d.period_start, d.unmeasured_ms), (s(100), 30_000));
        assert_eq!(downtime::unmeasured_ms_now(&d, s(250), &p), 0);
        // A gap after an answering probe is not the server's outage.
        accrue(&mut d, Some(true), s(135), reach, &p);
        accrue(&mut d, Some(true), s(190), reach, &p);
        assert_eq!((d.unreachable_ms, d.unmeasured_ms), (5_000, 30_000));
    }

    #[test]
    fn a_transitional_round_after_plain_downtime_does_not_sanction() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        // ns2 down within the budget for 12 rounds (55 min)...
        let (r, _, _) = monitor(rec, &d, &p, &[([true, false], false); 12]);
        assert_eq!(r.failing.as_ref().unwrap().rounds, 12);
        // ...then back, but one round shows a violation (it answered
        // wrongly while coming up): the downtime rounds confirm nothing.
        let (r, evs, at) = monitor(r, &d, &p, &[([true, true], false)]);
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(r.violation.is_none());
        let f = r.failing.clone().unwrap();
        assert_eq!((f.rounds, f.since), (1, at), "a new streak");
        assert!(
            evs[0].reason.starts_with("warning: failing round"),
            "{}",
            evs[0].reason
        );
        // Only rounds that show the violation confirm it.
        let (r, _, _) = monitor(r, &d, &p, &[([true, true], false); 2]);
        assert_eq!(r.state, DelegationState::Delegated);
        let (r, evs, _) = monitor(r, &d, &p, &[([true, true], false)]);
        assert_eq!(r.state, DelegationState::Suspended);
        assert!(
            evs[0]
                .reason
                .contains("violation confirmed (4 rounds since"),
            "{}",
            evs[0].reason
        );
        assert_eq!(r.violation.unwrap().since, at);
    }

    #[test]
    fn a_server_down_within_budget_is_downtime_measured_by_re_probes() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        // ns2 down for 1 h 50 min: re-probed every 5 min, measured to the
        // probe, never suspended.
        let down = [([true, false], false); 23];
        let (r, _, at) = monitor(rec, &d, &p, &down);
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(r.violation.is_none());
        assert_eq!(r.downtime[1].unreachable_ms, 22 * 5 * 60 * 1000);
        let (r, evs, at2) = monitor(r, &d, &p, &[([true, true], true)]);
        assert_eq!(at2 - at, p.recheck_interval);
        assert_eq!(r.downtime[1].unreachable_ms, 23 * 5 * 60 * 1000);
        assert!(evs[0].reason.contains("recovered"), "{}", evs[0].reason);
        assert!(r.violation.is_none());
    }

    #[test]
    fn over_budget_suspends_and_the_domain_returns_as_soon_as_it_passes() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        // Down 2 h 05 min by the re-probes: over budget, confirmed at once
        // (the streak is long).
        let (r, evs, at) = monitor(rec, &d, &p, &[([true, false], false); 26]);
        assert_eq!(r.downtime[1].unreachable_ms, 25 * 5 * 60 * 1000);
        assert_eq!(r.state, DelegationState::Suspended);
        let v = r.violation.clone().unwrap();
        assert_eq!(v.finding_ids, vec![DOWNTIME_BUDGET_ID.to_string()]);
        assert!(v.message.contains("ns2.example.net"), "{}", v.message);
        assert!(evs.last().unwrap().reason.contains("DOWNTIME_BUDGET"));
        // Back and passing, same day: delegated again at once.
        let (r, evs, at2) = monitor(r, &d, &p, &[([true, true], true)]);
        assert_eq!(at2 - at, p.recheck_interval);
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(evs[0].reason.contains("violation cleared"));
        assert_eq!(r.last_violation.unwrap().until, Some(at2));
        // The day's figure stays on record.
        assert!(over_budget(&r.downtime, at2, &p).contains(&"ns2.example.net".to_string()));
    }

    #[test]
    fn a_dead_address_of_an_answering_server_has_its_own_budget() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let rec = delegated(&p, &d);
        let dead_addr = |at: Timestamp| {
            let mut r = report(at, [true, true], true);
            r.verdict = Verdict::Fail;
            r.findings.push(Finding {
                id: "RESPONSIVE".into(),
                severity: Severity::Error,
                server: Some("ns1.example.ru".into()),
                address: Some("192.0.2.2".into()),
                message: "no answer".into(),
            });
            r.servers[0].addresses = vec!["192.0.2.1".into(), "192.0.2.2".into()];
            r.servers[0].unreachable_addresses = vec!["192.0.2.2".into()];
            r
        };
        let mut r = rec;
        let mut at = r.next_probe.unwrap();
        // 1 h 40 min of a dead address: downtime of that address only.
        for _ in 0..21 {
            at = r.next_probe.unwrap();
            let (n, _, _) = step(&r, &d, Some(dead_addr(at)), at, &p);
            r = n;
        }
        assert_eq!(
            r.state,
            DelegationState::Delegated,
            "not an instant violation"
        );
        let a = r
            .downtime
            .iter()
            .find(|x| x.address.as_deref() == Some("192.0.2.2"))
            .unwrap();
        assert_eq!(a.unreachable_ms, 20 * 5 * 60 * 1000);
        let server = r
            .downtime
            .iter()
            .find(|x| x.address.is_none() && x.server.as_str() == "ns1.example.ru")
            .unwrap();
        assert_eq!(server.unreachable_ms, 0);
        // Past 2 h: a violation naming the address.
        for _ in 0..6 {
            at = r.next_probe.unwrap();
            let (n, _, _) = step(&r, &d, Some(dead_addr(at)), at, &p);
            r = n;
        }
        assert_eq!(r.state, DelegationState::Suspended);
        let v = r.violation.clone().unwrap();
        assert!(
            v.message.contains("ns1.example.ru (192.0.2.2)"),
            "{}",
            v.message
        );
        let _ = at;
    }

    #[test]
    fn inconclusive_monitoring_rounds_charge_nothing_and_confirm_nothing() {
        let mut p = pol();
        p.on_violation = OnViolation::Suspend;
        p.jitter = 0.0;
        let d = domain();
        let mut r = delegated(&p, &d);
        // Five hours of the registry's own outage.
        for _ in 0..60 {
            let at = r.next_probe.unwrap();
            let (status, ln) = ctx_at(&d, at);
            let ctx = DecisionCtx {
                now: at,
                status: &status,
                lifecycle_next: ln,
                queue_lag_ms: 0,
            };
            let (n, e) = on_round(
                &r,
                &report(at, [false, false], false),
                &ctx,
                &p,
                "example.ru",
                Some("none of the 2 canaries answered"),
            );
            assert!(e.is_none());
            r = n;
        }
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(r.failing.is_none() && r.violation.is_none());
        assert!(r.downtime.iter().all(|x| x.unreachable_ms == 0));
        // The network is back; the servers answer: nothing happened.
        let (r, evs, _) = monitor(r, &d, &p, &[([true, true], true)]);
        assert!(evs.is_empty());
        assert!(r.downtime.iter().all(|x| x.unreachable_ms == 0));
    }

    #[test]
    fn a_delegated_domain_keeps_its_set_while_a_new_one_is_tested() {
        let mut p = pol();
        p.jitter = 0.0;
        let mut d = domain();
        let rec = delegated(&p, &d);
        let old_ns = d.nameservers.clone();
        let new_ns: Vec<Nameserver> = ["ns1.new.net", "ns2.new.net"]
            .iter()
            .map(|n| Nameserver {
                name: parse_host(n).unwrap(),
                addresses: vec![],
            })
            .collect();
        let at = t0() + Duration::minutes(30);
        let (r, ev) = on_declared(
            Some(&rec),
            (&old_ns, &[]),
            (&new_ns, &[]),
            at,
            p.test_window,
        )
        .unwrap();
        assert_eq!(r.state, DelegationState::Delegated, "stays in the zone");
        assert_eq!(r.published, old_ns);
        assert_eq!(r.zone_set(&new_ns), &old_ns[..]);
        let pending = r.pending.clone().unwrap();
        assert_eq!(
            (pending.state, pending.next_probe),
            (DelegationState::Testing, Some(at))
        );
        assert_eq!(r.declared_fingerprint(), ns_fingerprint(&new_ns));
        assert!(
            ev.reason.contains("nameserver change declared"),
            "{}",
            ev.reason
        );
        assert_eq!(due_of(&r), Some(at));
        // Same set again: unchanged. The published set again: withdrawn.
        assert!(on_declared(Some(&r), (&new_ns, &[]), (&new_ns, &[]), at, p.test_window).is_none());
        let (w, ev) =
            on_declared(Some(&r), (&new_ns, &[]), (&old_ns, &[]), at, p.test_window).unwrap();
        assert!(w.pending.is_none() && w.published.is_empty());
        assert!(ev.reason.contains("withdrawn"));
        d.nameservers = new_ns.clone();
        // The new set fails, then passes: the zone switches on the pass.
        let (status, ln) = ctx_at(&d, at);
        let ctx = DecisionCtx {
            now: at,
            status: &status,
            lifecycle_next: ln,
            queue_lag_ms: 0,
        };
        assert_eq!(plan_pending(&r, at, &p), Some(Plan::Probe));
        let (r1, e) = on_pending_round(
            &r,
            &report(at, [true, true], false),
            &ctx,
            &p,
            "example.ru",
            None,
        );
        assert!(e.is_none());
        assert_eq!(r1.published, old_ns);
        assert_eq!(r1.pending.as_ref().unwrap().rounds, 1);
        let at2 = r1.pending.as_ref().unwrap().next_probe.unwrap();
        assert_eq!(plan_pending(&r1, at2 - S, &p), None);
        let (r2, e) = on_pending_round(
            &r1,
            &report(at2, [true, true], true),
            &ctx,
            &p,
            "example.ru",
            None,
        );
        assert_eq!(r2.state, DelegationState::Delegated);
        assert!(r2.pending.is_none() && r2.published.is_empty());
        assert_eq!(r2.ns_fingerprint, ns_fingerprint(&new_ns));
        assert!(e.unwrap().reason.contains("nameserver change applied"));
        // A change whose window runs out fails; the old set stays.
        let (mut r3, _) = on_declared(
            Some(&rec),
            (&old_ns, &[]),
            (&new_ns, &[]),
            at,
            p.test_window,
        )
        .unwrap();
        let mut t = at;
        loop {
            match plan_pending(&r3, t, &p) {
                Some(Plan::Probe) => {
                    let (n, _) = on_pending_round(
                        &r3,
                        &report(t, [true, true], false),
                        &ctx,
                        &p,
                        "example.ru",
                        None,
                    );
                    r3 = n;
                }
                Some(Plan::Write(n, e)) => {
                    assert!(
                        e.reason.contains("nameserver change failed"),
                        "{}",
                        e.reason
                    );
                    assert_eq!(e.to, DelegationState::Delegated);
                    r3 = *n;
                    break;
                }
                other => panic!("{other:?}"),
            }
            t = r3.pending.as_ref().unwrap().next_probe.unwrap();
        }
        assert_eq!(t, at + p.test_window);
        assert_eq!(r3.state, DelegationState::Delegated);
        assert_eq!(
            r3.pending.as_ref().unwrap().state,
            DelegationState::TestFailed
        );
        assert_eq!(r3.published, old_ns);
        assert_eq!(plan_pending(&r3, t + S, &p), None);
        // A retest restarts the pending test.
        let (r4, e) = on_retest(&r3, t + S, p.test_window).unwrap();
        assert_eq!(r4.pending.as_ref().unwrap().state, DelegationState::Testing);
        assert!(e.reason.contains("pending"));
        // A hold folds the change in: out of the zone, about the new set.
        d.hold = Some(Hold {
            since: t,
            reason: "court".into(),
        });
        let (s, e, how) = step(&r4, &d, None, t + S * 2, &p);
        assert_eq!((how, s.state), ("write", DelegationState::Suspended));
        assert!(s.pending.is_none() && s.published.is_empty());
        assert_eq!(s.ns_fingerprint, ns_fingerprint(&new_ns));
        assert!(e.unwrap().reason.contains("pending nameserver change"));
    }

    #[test]
    fn lifecycle_blocks_suspend_and_lift() {
        let p = pol();
        let mut d = domain();
        let rec = delegated(&p, &d);
        let at = t0() + Duration::hours(1);
        d.hold = Some(Hold {
            since: at,
            reason: "court".into(),
        });
        let (s, e, how) = step(&rec, &d, None, at, &p);
        assert_eq!((how, s.state), ("write", DelegationState::Suspended));
        assert_eq!(s.blocked, vec!["hold".to_string()]);
        assert_eq!(s.blocked_since, Some(at));
        assert_eq!(e.unwrap().reason, "suspended: hold");
        // Still held: nothing written, no probe.
        assert_eq!(step(&s, &d, None, at + Duration::hours(1), &p).2, "wait");
        // Released and the servers pass: delegated again.
        d.hold = None;
        let b = at + Duration::hours(2);
        let (r, e, how) = step(&s, &d, Some(report(b, [true, true], true)), b, &p);
        assert_eq!((how, r.state), ("probe", DelegationState::Delegated));
        assert!(r.blocked.is_empty() && r.blocked_since.is_none());
        assert!(e.unwrap().reason.contains("block lifted (hold)"));
        // Released but the servers fail: testing with a fresh window.
        let (r, e, _) = step(&s, &d, Some(report(b, [true, true], false)), b, &p);
        assert_eq!(
            (r.state, r.window_start, r.rounds),
            (DelegationState::Testing, Some(b), 1)
        );
        assert_eq!(r.window_end, Some(b + p.test_window));
        assert!(e.unwrap().reason.contains("test window restarted"));
    }

    #[test]
    fn expiry_pauses_testing_and_renewal_restarts_the_window() {
        let p = pol();
        let mut d = domain();
        d.paid_till = t0() + Duration::days(1);
        let rec = testing(t0(), &p);
        // The next look is capped at the expiry instant.
        let (r, _, _) = step(
            &rec,
            &d,
            Some(report(
                t0() + Duration::hours(23) + Duration::minutes(55),
                [true, true],
                false,
            )),
            t0() + Duration::hours(23) + Duration::minutes(55),
            &p,
        );
        assert_eq!(r.next_probe, Some(d.paid_till + Duration::milliseconds(1)));
        let exp = d.paid_till + Duration::milliseconds(1);
        let (r, e, how) = step(&r, &d, None, exp, &p);
        assert_eq!((how, r.state), ("write", DelegationState::Testing));
        assert_eq!(r.blocked, vec!["expired".to_string()]);
        assert_eq!(e.unwrap().reason, "testing paused: expired");
        // The window ends while blocked: no test_failed.
        let late = t0() + Duration::days(5);
        assert_eq!(step(&r, &d, None, late, &p).2, "wait");
        // Renewed: a fresh window, probed at once.
        d.paid_till += Duration::days(365);
        let (r, e, how) = step(&r, &d, None, late, &p);
        assert_eq!(
            (how, r.state, r.window_start, r.next_probe),
            ("write", DelegationState::Testing, Some(late), Some(late))
        );
        assert!(r.blocked.is_empty());
        assert!(e.unwrap().reason.contains("block lifted (expired)"));
        assert_eq!(
            step(&r, &d, Some(report(late, [true, true], true)), late, &p)
                .0
                .state,
            DelegationState::Delegated
        );
    }

    #[test]
    fn cancellation_drops_to_undelegated_and_restoring_restarts_testing() {
        let p = pol();
        let mut d = domain();
        let rec = delegated(&p, &d);
        d.paid_till = t0();
        let free = t0() + Duration::days(30) + Duration::milliseconds(1);
        let (r, e, _) = step(&rec, &d, None, free, &p);
        assert_eq!(r.state, DelegationState::Undelegated);
        assert_eq!(
            r.ns_fingerprint, rec.ns_fingerprint,
            "record stays about the set"
        );
        assert_eq!(r.next_probe, None);
        assert!(e.unwrap().reason.contains("not renewed"));
        // Still cancelled: nothing to do.
        assert_eq!(step(&r, &d, None, free + S, &p).2, "idle");
        // Restored by the operator (new paid_till): testing restarts.
        d.paid_till = free + Duration::days(365);
        let (t, e, how) = step(&r, &d, None, free + S, &p);
        assert_eq!(
            (how, t.state, t.window_start),
            ("write", DelegationState::Testing, Some(free + S))
        );
        assert!(e.unwrap().reason.contains("registration restored"));
        // A plain undelegated record (no servers) stays idle.
        let u = DelegationRecord::undelegated(t0());
        assert_eq!(step(&u, &d, None, t0(), &p).2, "idle");
        assert_eq!(due_of(&u), None);
    }

    #[test]
    fn next_lifecycle_change_points() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let ms = Duration::milliseconds(1);
        assert_eq!(
            next_lifecycle_change(&d, t0(), &cfg),
            Some(d.paid_till + ms)
        );
        d.verification_requested = Some(t0());
        assert_eq!(
            next_lifecycle_change(&d, t0(), &cfg),
            Some(t0() + Duration::days(14))
        );
        assert_eq!(
            next_lifecycle_change(&d, t0() + Duration::days(14), &cfg),
            Some(t0() + Duration::days(74))
        );
    }

    #[test]
    fn a_ds_change_is_tested_while_the_published_ds_stays_and_removal_is_at_once() {
        use crate::model::DsRecord;
        let p = pol();
        let d = domain();
        let rec = delegated(&p, &d);
        let ns = d.nameservers.clone();
        let ds = vec![DsRecord {
            key_tag: 2371,
            algorithm: 13,
            digest_type: 2,
            digest: "ab".repeat(32),
        }];
        let at = t0() + Duration::minutes(5);
        // Signing: tested as a pending change; the zone keeps no DS.
        let (r, ev) = on_declared(Some(&rec), (&ns, &[]), (&ns, &ds), at, p.test_window).unwrap();
        assert_eq!(r.state, DelegationState::Delegated);
        assert!(r.pending.is_some());
        assert!(r.zone_ds(&ds).is_empty(), "nothing signed published yet");
        assert!(ev.reason.contains("with 1 DS"), "{}", ev.reason);
        // Once the signed set is the zone's, removing the DS is at once.
        let mut signed = rec.clone();
        signed.ns_fingerprint = delegation_fingerprint(&ns, &ds);
        let (u, ev) =
            on_declared(Some(&signed), (&ns, &ds), (&ns, &[]), at, p.test_window).unwrap();
        assert_eq!(u.state, DelegationState::Delegated);
        assert!(u.pending.is_none() && u.published.is_empty());
        assert_eq!(u.ns_fingerprint, ns_fingerprint(&ns));
        assert!(ev.reason.contains("unsigned"), "{}", ev.reason);
    }

    #[test]
    fn violation_findings_ignore_unreachable_servers() {
        let r = report(t0(), [false, true], false);
        assert!(violation_findings(&r).is_empty());
        let r = report(t0(), [true, true], false);
        assert_eq!(violation_findings(&r).len(), 1);
        // A dead address of an answering server is its budget's business.
        let mut r = report(t0(), [true, true], true);
        r.findings.push(Finding {
            id: "RESPONSIVE".into(),
            severity: Severity::Error,
            server: Some("ns1.example.ru".into()),
            address: Some("192.0.2.2".into()),
            message: "no answer".into(),
        });
        assert!(violation_findings(&r).is_empty());
    }

    #[test]
    fn jitter_spreads_within_bounds_and_is_deterministic() {
        let i = Duration::minutes(10);
        let mut lo = i;
        let mut hi = i;
        for k in 0..1000 {
            let n = format!("d{k}.ru");
            let x = next_after(t0(), i, 0.2, &n) - t0();
            assert_eq!(x, next_after(t0(), i, 0.2, &n) - t0());
            lo = lo.min(x);
            hi = hi.max(x);
        }
        assert!(lo >= Duration::minutes(9) && hi <= Duration::minutes(11));
        assert!(hi - lo > Duration::minutes(1) + S * 30, "spread {lo}..{hi}");
        assert_eq!(next_after(t0(), i, 0.0, "x.ru") - t0(), i);
    }
}

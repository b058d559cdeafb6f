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
    let (w, ev) = on_declared(Some(&r), (&new_ns, &[]), (&old_ns, &[]), at, p.test_window).unwrap();
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
    let (u, ev) = on_declared(Some(&signed), (&ns, &ds), (&ns, &[]), at, p.test_window).unwrap();
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

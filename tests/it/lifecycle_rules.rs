//! The lifecycle rules to the letter (docs/lifecycle.md), end to end over
//! the registrar API, EPP (Perl's `Net::EPP`), RDAP and the change feed,
//! with an injected clock: the dispute lock keeps the status quo,
//! time-driven state is read as of now, every lifecycle transition is one
//! feed event, and `domain:check` agrees with `create`.

use crate::epp::{domain_cmd, drain, start, A, B};
use crate::support;
use serde_json::{json, Value};
use std::sync::Arc;
use support::api::{send, token, Server};
use support::epp::{code, Client, HOST};
use zonekeeper::clock::Clock;
use zonekeeper::lifecycle;
use zonekeeper::model::{DelegationRecord, DelegationState};
use zonekeeper::registry::Actor;

const DS: &str = "49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4F4F0A2D7F4A0E5C6B1D2E3F";

fn host_cmd(verb: &str, inner: &str) -> String {
    format!(r#"<{verb}><host:{verb} xmlns:host="{HOST}">{inner}</host:{verb}></{verb}>"#)
}

fn transfer(c: &mut Client, op: &str, name: &str, pw: &str) -> String {
    let auth = if pw.is_empty() {
        String::new()
    } else {
        format!("<domain:authInfo><domain:pw>{pw}</domain:pw></domain:authInfo>")
    };
    c.cmd(
        &domain_cmd(
            "transfer",
            &format!("<domain:name>{name}</domain:name>{auth}"),
        )
        .replace("<transfer>", &format!(r#"<transfer op="{op}">"#)),
    )
}

/// The parts of a registration a registrar could change.
fn snapshot(s: &Server, name: &str) -> Value {
    let d = s.store().domain(name).unwrap().unwrap();
    json!({
        "registrar": d.registrar, "registrant": d.registrant, "admin": d.admin,
        "tech": d.tech, "paid_till": d.paid_till, "ns": format!("{:?}", d.nameservers),
        "ds": format!("{:?}", d.ds), "auth": d.auth_info,
        "verification": d.verification_requested,
        "reg": format!("{:?}", d.registration.pending_registrant),
        "closing": format!("{:?}", d.registration.closing),
        "transfer": format!("{:?}", d.registration.pending_transfer),
        "rec": format!("{:?}", s.store().delegation(name).unwrap().map(|r| (r.state, r.ns_fingerprint))),
    })
}

/// Under a dispute lock every registrar operation of every edge is
/// refused with `dispute-lock` (REST 409, EPP 2304) and nothing changes;
/// the lock's start ends a pending registrar change, with an event to the
/// gaining registrar.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispute_lock_refuses_every_registrar_operation() {
    let env = Arc::new(start(|_| {}).await);
    let d = env.transferable(A, 0);
    // Before the lock: the domain names two host objects of A, and B asks
    // for it with the code A set.
    let e = env.clone();
    let dn = d.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        for h in ["ns1.dispute-hosts.org", "ns2.dispute-hosts.org"] {
            let r = a.cmd(&host_cmd("create", &format!("<host:name>{h}</host:name>")));
            assert_eq!(code(&r), 1000, "{r}");
        }
        let r = a.cmd(&domain_cmd(
            "update",
            &format!("<domain:name>{dn}</domain:name><domain:add><domain:ns><domain:hostObj>ns1.dispute-hosts.org</domain:hostObj><domain:hostObj>ns2.dispute-hosts.org</domain:hostObj></domain:ns></domain:add><domain:chg><domain:authInfo><domain:pw>Dispute-Code-1</domain:pw></domain:authInfo></domain:chg>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let mut b = e.logged_in(1);
        let r = transfer(&mut b, "request", &dn, "Dispute-Code-1");
        assert_eq!(code(&r), 1001, "{r}");
        drain(&mut b);
    })
    .await
    .unwrap();
    let s = &env.s;
    s.app
        .registry()
        .dispute_lock(&Actor::Operator, &d, "case A40-77/2026")
        .unwrap();
    let before = snapshot(s, &d);
    assert_eq!(before["transfer"], "None", "the lock ends the transfer");

    // REST, as the sponsor and as the gaining registrar.
    let (ta, tb) = (token(A), token(B));
    let p = |tail: &str| format!("/api/v1/domains/{d}{tail}");
    let ns2 = json!({"nameservers": [{"name": "ns1.example.net"}, {"name": "ns2.example.net"}]});
    let ds = json!({"ds": [{"key_tag": 12345, "algorithm": 13, "digest_type": 2, "digest": DS}]});
    let h = &s.http;
    let calls: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "ns []",
            s.put_json(&p("/nameservers"), &ta, json!({"nameservers": []})),
        ),
        ("ns set", s.put_json(&p("/nameservers"), &ta, ns2)),
        ("ds set", s.put_json(&p("/ds"), &ta, ds)),
        ("ds delete", h.delete(s.url(&p("/ds"))).bearer_auth(&ta)),
        ("retest", s.post(&p("/retest"), &ta)),
        ("renew", s.post(&p("/renew"), &ta)),
        (
            "contacts",
            s.put_json(&p("/contacts"), &ta, json!({"admin": null})),
        ),
        (
            "registrant change",
            s.post(&p("/registrant-change"), &ta)
                .json(&json!({"registrant": "C1-RU"})),
        ),
        (
            "registrant change withdraw",
            h.delete(s.url(&p("/registrant-change"))).bearer_auth(&ta),
        ),
        (
            "registrant change accept",
            s.post(&p("/registrant-change/accept"), &ta),
        ),
        ("auth code", s.post(&p("/auth-code"), &ta)),
        ("transfer approve", s.post(&p("/transfer/approve"), &ta)),
        ("transfer reject", s.post(&p("/transfer/reject"), &ta)),
        (
            "transfer request",
            s.post(&p("/transfer"), &tb)
                .json(&json!({"auth_code": "Dispute-Code-1"})),
        ),
        ("transfer withdraw", s.post(&p("/transfer/reject"), &tb)),
        (
            "close",
            s.post(&p("/close"), &ta).json(&json!({"when": "now"})),
        ),
        (
            "close revoke",
            h.delete(s.url(&p("/close"))).bearer_auth(&ta),
        ),
        ("verification answer", s.post(&p("/verification"), &ta)),
        (
            "verification request",
            s.post(&p("/verification-request"), &ta),
        ),
    ];
    for (what, req) in calls {
        let (st, v) = send(req).await;
        assert_eq!(
            (st, v["rule"].as_str()),
            (409, Some("dispute-lock")),
            "REST {what}: {v}"
        );
    }

    // EPP, as the sponsor and as the gaining registrar.
    let e = env.clone();
    let dn = d.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let mut b = e.logged_in(1);
        let paid = e.s.store().domain(&dn).unwrap().unwrap().paid_till;
        let upd = |inner: &str| domain_cmd("update", &format!("<domain:name>{dn}</domain:name>{inner}"));
        let cmds = [
            ("ns remove", upd("<domain:rem><domain:ns><domain:hostObj>ns1.dispute-hosts.org</domain:hostObj></domain:ns></domain:rem>")),
            ("ns add", upd("<domain:add><domain:ns><domain:hostAttr><domain:hostName>ns3.example.org</domain:hostName></domain:hostAttr></domain:ns></domain:add>")),
            ("ds", upd("").replace("</update>", &format!(r#"</update><extension><secDNS:update xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1"><secDNS:add><secDNS:dsData><secDNS:keyTag>12345</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2</secDNS:digestType><secDNS:digest>{DS}</secDNS:digest></secDNS:dsData></secDNS:add></secDNS:update></extension>"#))),
            ("contact", upd(r#"<domain:rem><domain:contact type="admin">C1-RU</domain:contact></domain:rem>"#)),
            ("registrant", upd("<domain:chg><domain:registrant>C1-RU</domain:registrant></domain:chg>")),
            ("auth code", upd("<domain:chg><domain:authInfo><domain:pw>Another-Code-2</domain:pw></domain:authInfo></domain:chg>")),
            ("renew", domain_cmd("renew", &format!(r#"<domain:name>{dn}</domain:name><domain:curExpDate>{}</domain:curExpDate><domain:period unit="y">1</domain:period>"#, paid.date_naive()))),
            ("delete", domain_cmd("delete", &format!("<domain:name>{dn}</domain:name>"))),
        ];
        for (what, cmd) in cmds {
            let r = a.cmd(&cmd);
            assert_eq!(code(&r), 2304, "EPP {what}: {r}");
            assert!(r.contains("dispute-lock"), "EPP {what}: {r}");
        }
        for (which, op, pw) in [(0, "approve", ""), (1, "request", "Dispute-Code-1"), (1, "cancel", "")] {
            let c = if which == 0 { &mut a } else { &mut b };
            let r = transfer(c, op, &dn, pw);
            assert_eq!(code(&r), 2304, "EPP transfer {op}: {r}");
            assert!(r.contains("dispute-lock"), "EPP transfer {op}: {r}");
        }
        // A host change that would re-declare the locked domain.
        let r = a.cmd(&host_cmd(
            "update",
            "<host:name>ns1.dispute-hosts.org</host:name><host:chg><host:name>ns9.dispute-hosts.org</host:name></host:chg>",
        ));
        assert_eq!(code(&r), 2304, "EPP host:update: {r}");
        assert!(r.contains("dispute-lock"), "{r}");
        // The gaining registrar heard that its request ended with the lock.
        let msgs = drain(&mut b);
        assert!(
            msgs.iter().any(|m| m.contains("cancelled by a dispute lock")),
            "{msgs:?}"
        );
        assert!(!msgs.iter().any(|m| m.contains("A40-77")), "{msgs:?}");
    })
    .await
    .unwrap();
    assert_eq!(snapshot(s, &d), before, "nothing changed under the lock");
    assert!(s
        .store()
        .host_object("ns1.dispute-hosts.org")
        .unwrap()
        .is_some());
}

/// Every event of `registrar`'s feed (the API's, paged) about `domain`.
async fn feed_of(s: &Server, registrar: &str, domain: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::from("0");
    loop {
        let (st, v) = send(s.get(
            &format!("/api/v1/events?after={after}&limit=500"),
            Some(&token(registrar)),
        ))
        .await;
        assert_eq!(st, 200, "{v}");
        let evs = v["events"].as_array().unwrap().clone();
        if evs.is_empty() {
            return out;
        }
        after = v["next_cursor"].as_str().unwrap().to_string();
        out.extend(evs.into_iter().filter(|e| e["domain"] == domain));
    }
}

fn in_zone(s: &Server, name: &str) -> bool {
    let z = zonekeeper::zone::render(s.store(), s.app.config(), "ru", s.clock.now(), 1).unwrap();
    z.lines()
        .any(|l| l.starts_with(&format!("{name}.")) && l.contains("NS"))
}

/// A domain of A with nameservers and nothing else going on, made
/// delegated now.
fn delegated_domain_of_a(s: &Server) -> String {
    let lc = &s.app.config().lifecycle;
    let now = s.clock.now();
    let d = s
        .domains_of(A, 1000)
        .into_iter()
        .find(|n| {
            let dom = s.store().domain(n).unwrap().unwrap();
            let st = lifecycle::evaluate(&dom, now, lc);
            !dom.nameservers.is_empty() && st.may_delegate() && !st.verification_pending
        })
        .expect("a fixture domain with nameservers");
    let old = s.store().delegation(&d).unwrap().unwrap();
    let rec = DelegationRecord {
        state: DelegationState::Delegated,
        delegated_at: Some(now),
        ..old.clone()
    };
    assert!(s
        .store()
        .put_delegation(&d, &old.ns_fingerprint, &rec, None, None)
        .unwrap());
    d
}

/// A disputed domain stays in the zone through `paid_till` and past its
/// grace period; the unlock records the outcome and extends `paid_till` to
/// the unlock plus the grace period; then it expires and is freed as usual.
#[tokio::test]
async fn dispute_lock_keeps_the_domain_delegated_until_unlock_and_expiry() {
    let s = Server::start(|_| {}).await;
    let lc = s.app.config().lifecycle.clone();
    let d = delegated_domain_of_a(&s);
    assert!(in_zone(&s, &d));
    let reg = s.app.registry();
    reg.dispute_lock(&Actor::Operator, &d, "case A40-78/2026")
        .unwrap();
    drop(reg);
    let paid = s.store().domain(&d).unwrap().unwrap().paid_till;
    let grace = chrono::Duration::from_std(lc.grace_period).unwrap();
    let jump = |to: zonekeeper::model::Timestamp| {
        let by = (to - s.clock.now()).to_std().unwrap();
        s.clock.advance(by);
    };
    for at in [
        paid,
        paid + chrono::Duration::seconds(1),
        paid + grace + chrono::Duration::days(1),
    ] {
        jump(at);
        let dom = s.store().domain(&d).unwrap().unwrap();
        let st = lifecycle::evaluate(&dom, at, &lc);
        assert!(
            st.exists() && !st.expired && st.blocks.is_empty(),
            "{at}: {st:?}"
        );
        assert!(in_zone(&s, &d), "in the zone at {at}");
        let (code, v) = send(s.get(&format!("/rdap/domain/{d}"), None)).await;
        assert_eq!(code, 200, "{v}");
        assert!(!v["status"].to_string().contains("pending delete"), "{v}");
    }
    // The sweep writes no expiry for it either.
    s.app.registry().sweep().unwrap();
    // The operator lifts the lock with the court's outcome.
    let unlocked = s.clock.now();
    let reg = s.app.registry();
    assert!(matches!(
        reg.dispute_unlock(&Actor::Operator, &d, " "),
        Err(zonekeeper::registry::RegistryError::Invalid(_))
    ));
    let new_paid = reg
        .dispute_unlock(&Actor::Operator, &d, "claim dismissed, A40-78/2026")
        .unwrap();
    drop(reg);
    assert_eq!(new_paid, unlocked + grace);
    let feed = Value::from(feed_of(&s, A, &d).await).to_string();
    assert!(feed.contains("dispute lock lifted"), "{feed}");
    assert!(
        !feed.contains("claim dismissed"),
        "the outcome is not public: {feed}"
    );
    let hist = s.store().history(&d, 100).unwrap();
    assert!(
        hist.iter()
            .any(|e| e.reason.contains("outcome: claim dismissed")),
        "{hist:?}"
    );
    // In the zone until the new paid_till, out after it, free after grace.
    jump(new_paid);
    assert!(in_zone(&s, &d));
    jump(new_paid + chrono::Duration::seconds(1));
    assert!(!in_zone(&s, &d));
    let (code, _) = send(s.get(&format!("/rdap/domain/{d}"), None)).await;
    assert_eq!(code, 200);
    jump(new_paid + grace + chrono::Duration::seconds(1));
    let code = s
        .get(&format!("/rdap/domain/{d}"), None)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(code.as_u16(), 404);
}

/// Domains of `registrar` with nothing going on: no nameservers (when
/// `bare`), delegable, closable, paid beyond `min_paid`.
fn quiet_domains(
    s: &Server,
    registrar: &str,
    bare: bool,
    min_paid: chrono::Duration,
) -> Vec<String> {
    let now = s.clock.now();
    let lc = &s.app.config().lifecycle;
    s.domains_of(registrar, 1000)
        .into_iter()
        .filter(|n| {
            let d = s.store().domain(n).unwrap().unwrap();
            let st = lifecycle::evaluate(&d, now, lc);
            (!bare || d.nameservers.is_empty())
                && st.may_delegate()
                && !st.verification_pending
                && st.closing_at.is_none()
                && !st.transfer_pending
                && d.registration.pending_registrant.is_none()
                && lifecycle::permits(&st, lifecycle::Operation::Close).is_ok()
                && lifecycle::permits(&st, lifecycle::Operation::ChangeRegistrant).is_ok()
                && d.paid_till > now + min_paid
        })
        .collect()
}

/// A lapsed registrant change request is not pending in any read from
/// the moment its deadline passes, before anything is written; one sweep
/// writes its lapse to the feed, once, at the deadline. A registrar change
/// past its automatic approval reads as done.
#[tokio::test]
async fn lapsed_requests_read_as_of_now_and_reach_the_feed_in_one_sweep() {
    let s = Server::start(|_| {}).await;
    let tok = token(A);
    let d = quiet_domains(&s, A, false, chrono::Duration::days(60))[0].clone();
    let (st, v) = send(
        s.post(&format!("/api/v1/domains/{d}/registrant-change"), &tok)
            .json(&json!({"registrant": "C1-RU"})),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(v["pending_registrant"]["deadline"].clone()).unwrap();
    s.clock.advance(
        s.app.config().lifecycle.registrant_change_timeout + std::time::Duration::from_secs(1),
    );
    // At once: not pending in the API, though nothing was written yet.
    let (st, v) = send(s.get(&format!("/api/v1/domains/{d}"), Some(&tok))).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["pending_registrant"].is_null(), "{v}");
    assert!(s
        .store()
        .domain(&d)
        .unwrap()
        .unwrap()
        .registration
        .pending_registrant
        .is_some());
    let lapsed = |f: &[Value]| {
        f.iter()
            .filter(|e| e["reason"].as_str().unwrap().contains("lapsed"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(lapsed(&feed_of(&s, A, &d).await).is_empty());
    // One sweep writes it, stamped at the deadline; another adds nothing.
    s.app.registry().sweep().unwrap();
    s.app.registry().sweep().unwrap();
    let ev = lapsed(&feed_of(&s, A, &d).await);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["reason"], "registrant change lapsed (not accepted)");
    let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(ev[0]["at"].clone()).unwrap();
    assert_eq!(at, deadline);
    assert!(s
        .store()
        .domain(&d)
        .unwrap()
        .unwrap()
        .registration
        .pending_registrant
        .is_none());

    // A registrar change past its automatic approval: the gaining
    // registrar reads it as its own before the sweep.
    let t = quiet_domains(&s, A, false, chrono::Duration::days(60))
        .into_iter()
        .find(|n| {
            let dom = s.store().domain(n).unwrap().unwrap();
            let st = lifecycle::evaluate(&dom, s.clock.now(), &s.app.config().lifecycle);
            lifecycle::permits(&st, lifecycle::Operation::Transfer).is_ok()
        })
        .unwrap();
    let (_, c) = send(s.post(&format!("/api/v1/domains/{t}/auth-code"), &tok)).await;
    let (st, v) = send(
        s.post(&format!("/api/v1/domains/{t}/transfer"), &token(B))
            .json(&json!({"auth_code": c["auth_code"]})),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    s.clock.advance(
        s.app.config().lifecycle.transfer_auto_approve + std::time::Duration::from_secs(1),
    );
    let (st, v) = send(s.get(&format!("/api/v1/domains/{t}"), Some(&token(B)))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["registrar"], B);
    assert!(v["pending_transfer"].is_null(), "{v}");
    assert!(
        !v["lock_statuses"].to_string().contains("pending transfer"),
        "{v}"
    );
    let (st, _) = send(s.get(&format!("/api/v1/domains/{t}"), Some(&tok))).await;
    assert_eq!(st, 403);
}

/// Read the whole EPP message queue (ack each).
fn drain_all(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..5000 {
        let r = c.cmd(r#"<poll op="req"/>"#);
        if code(&r) == 1300 {
            return out;
        }
        assert_eq!(code(&r), 1301, "{r}");
        let id = r
            .split("msgID=\"")
            .nth(1)
            .or_else(|| r.split(" id=\"").nth(1))
            .unwrap();
        let id = id.split('"').next().unwrap().to_string();
        out.push(r.clone());
        let a = c.cmd(&format!(r#"<poll op="ack" msgID="{id}"/>"#));
        assert_eq!(code(&a), 1000, "{a}");
    }
    panic!("the queue does not drain");
}

/// Every lifecycle transition of a domain without nameservers is one
/// event in its registrar's feed and one EPP poll message, written by the
/// sweep on the injected clock: expiry and freeing, verification suspend
/// and cancel, a scheduled close, a court reservation's end, a dispute
/// lock's start and end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_feed_event_per_lifecycle_transition_without_nameservers() {
    let env = Arc::new(start(|_| {}).await);
    let s = &env.s;
    let tok = token(A);
    let t0 = s.clock.now();
    let q = quiet_domains(s, A, true, chrono::Duration::days(120));
    assert!(q.len() >= 5, "{q:?}");
    let (expiring, verified, closing, court, disputed) = (&q[0], &q[1], &q[2], &q[3], &q[4]);
    let (st, v) = send(s.post(
        &format!("/api/v1/domains/{verified}/verification-request"),
        &tok,
    ))
    .await;
    assert!(st < 300, "{v}");
    let (st, v) = send(
        s.post(&format!("/api/v1/domains/{closing}/close"), &tok)
            .json(&json!({"when": "end_of_period"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let reg = s.app.registry();
    reg.court_cancel(&Actor::Operator, court, "C5-RU").unwrap();
    reg.dispute_lock(&Actor::Operator, disputed, "case 9")
        .unwrap();
    drop(reg);
    // Two years in steps of two days, a sweep after each (the sweeper's
    // rhythm); the lock ends on day 100.
    let step = std::time::Duration::from_secs(2 * 86400);
    for i in 1..=365 {
        s.clock.advance(step);
        if i == 50 {
            s.app
                .registry()
                .dispute_unlock(&Actor::Operator, disputed, "settled")
                .unwrap();
        }
        s.app.registry().sweep().unwrap();
    }
    let lc = &s.app.config().lifecycle;
    let days = |d: i64| chrono::Duration::days(d);
    let paid = |n: &str| s.store().domain(n).unwrap().unwrap().paid_till;
    let grace = chrono::Duration::from_std(lc.grace_period).unwrap();
    let asked = t0; // the clock had not moved
    let want: Vec<(&String, &str, Option<chrono::DateTime<chrono::Utc>>)> = vec![
        (
            expiring,
            "expired: not renewed by paid-till",
            Some(paid(expiring)),
        ),
        (
            expiring,
            "registration cancelled (not renewed)",
            Some(paid(expiring) + grace),
        ),
        (verified, "verification overdue", Some(asked + days(14))),
        (
            verified,
            "registration cancelled (verification unanswered)",
            Some(asked + days(74)),
        ),
        (
            closing,
            "closed at the registrant's request",
            Some(paid(closing)),
        ),
        (court, "cancelled by court decision", Some(t0)),
        (court, "court reservation ended", Some(t0 + days(60))),
        (disputed, "dispute lock placed", Some(t0)),
        (disputed, "dispute lock lifted", None),
        (
            disputed,
            "expired: not renewed by paid-till",
            Some(paid(disputed)),
        ),
        (
            disputed,
            "registration cancelled (not renewed)",
            Some(paid(disputed) + grace),
        ),
    ];
    let mut feeds = std::collections::HashMap::new();
    for (d, _, _) in &want {
        if !feeds.contains_key(*d) {
            feeds.insert((*d).clone(), feed_of(s, A, d).await);
        }
    }
    for (d, text, at) in &want {
        let hits: Vec<&Value> = feeds[*d]
            .iter()
            .filter(|e| e["reason"].as_str().unwrap().starts_with(text))
            .collect();
        assert_eq!(hits.len(), 1, "{d}: {text}: {:?}", feeds[*d]);
        if let Some(at) = at {
            let got: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(hits[0]["at"].clone()).unwrap();
            assert_eq!(&got, at, "{d}: {text}");
        }
    }
    // Nothing else time-driven was written for them (one event each).
    for d in [expiring, verified, closing, court] {
        let by_registry = feeds[d].iter().filter(|e| e["actor"] == "registry").count();
        let want_n = want
            .iter()
            .filter(|(x, t, _)| x == &d && !t.starts_with("cancelled by court"))
            .count();
        assert_eq!(by_registry, want_n, "{d}: {:?}", feeds[d]);
    }
    // The EPP queue holds the same: one message per transition.
    let e = env.clone();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(d, t, _)| ((*d).clone(), t.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let msgs = drain_all(&mut a);
        for (d, text) in want {
            let n = msgs
                .iter()
                .filter(|m| m.contains(&format!("{d}: {}", text.replace('\'', "&apos;"))))
                .count();
            assert_eq!(n, 1, "{d}: {text}");
        }
    })
    .await
    .unwrap();
}

/// `domain:check` (Net::EPP) answers with the rule `create` refuses with:
/// reserved, court-reserved, confusable, existing and invalid names are
/// `avail="0"` with the rule in `<domain:reason>`, and `create` of each
/// is refused by that same rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn domain_check_agrees_with_create() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("reserved.txt");
    std::fs::write(&list, "nic.ru\n").unwrap();
    let env = Arc::new(start(|c| c.lifecycle.reserved_names = Some(list.clone())).await);
    let s = &env.s;
    let (st, v) = send(
        s.post("/api/v1/domains", &token(A))
            .json(&json!({"name": "сбер.рф", "registrant": "C8-RU"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let taken = quiet_domains(s, A, false, chrono::Duration::days(1));
    let (court, existing) = (taken[0].clone(), taken[1].clone());
    s.app
        .registry()
        .court_cancel(&Actor::Operator, &court, "C5-RU")
        .unwrap();
    let cases: Vec<(String, Option<&'static str>)> = vec![
        ("nic.ru".into(), Some("reserved-name")),
        (court.clone(), Some("court-reservation")),
        ("с6ер.рф".into(), Some("confusable")),
        (existing.clone(), Some("exists")),
        ("-bad-.ru".into(), Some("invalid")),
        ("free-name-42.ru".into(), None),
    ];
    // The API's availability answer names the same rule.
    for (n, rule) in &cases {
        let (st, v) = send(s.get(
            &format!("/api/v1/domains/{n}/availability"),
            Some(&token(B)),
        ))
        .await;
        assert_eq!(st, 200, "{n}: {v}");
        assert_eq!(v["available"], rule.is_none(), "{n}: {v}");
        assert_eq!(v["rule"].as_str(), *rule, "{n}: {v}");
    }
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let names: String = cases
            .iter()
            .map(|(n, _)| format!("<domain:name>{n}</domain:name>"))
            .collect();
        let r = a.cmd(&domain_cmd("check", &names));
        assert_eq!(code(&r), 1000, "{r}");
        for (n, rule) in cases {
            let n = n.as_str();
            match rule {
                Some(rule) => {
                    let want = format!(r#"<domain:name avail="0">{n}</domain:name><domain:reason>{rule}: "#);
                    assert!(r.contains(&want), "{n}: {want}\n{r}");
                    if rule == "invalid" {
                        continue;
                    }
                    let c = a.cmd(&domain_cmd(
                        "create",
                        &format!("<domain:name>{n}</domain:name><domain:registrant>C8-RU</domain:registrant><domain:authInfo><domain:pw>Check-Code-77</domain:pw></domain:authInfo>"),
                    ));
                    assert!(code(&c) >= 2000 && c.contains(rule), "create {n}: {c}");
                }
                None => {
                    let want = format!(r#"<domain:name avail="1">{n}</domain:name>"#);
                    assert!(r.contains(&want), "{n}\n{r}");
                }
            }
        }
    })
    .await
    .unwrap();
}

/// Status quo: a verification request that falls overdue under a dispute
/// lock does not suspend the domain (it stays in the zone, no suspension
/// event); the unlock moves the request's deadlines by the lock's
/// duration, so it turns overdue the time it had left after the unlock.
#[tokio::test]
async fn verification_overdue_does_not_suspend_a_disputed_domain() {
    let s = Server::start(|_| {}).await;
    let lc = s.app.config().lifecycle.clone();
    let d = delegated_domain_of_a(&s);
    let suspend = chrono::Duration::from_std(lc.verification_suspend).unwrap();
    let day = chrono::Duration::days(1);
    let reg = s.app.registry();
    reg.verification_request(&Actor::Operator, &d).unwrap();
    drop(reg);
    // Half the suspension period later, the lock.
    s.clock.advance((suspend / 2).to_std().unwrap());
    s.app
        .registry()
        .dispute_lock(&Actor::Operator, &d, "case A40-79/2026")
        .unwrap();
    // Well past the suspension deadline: still in the zone, no block.
    s.clock.advance((suspend + day).to_std().unwrap());
    let at = s.clock.now();
    let dom = s.store().domain(&d).unwrap().unwrap();
    let st = lifecycle::evaluate(&dom, at, &lc);
    assert!(st.blocks.is_empty() && st.exists(), "{st:?}");
    assert!(in_zone(&s, &d), "a disputed domain stays delegated");
    s.app.registry().sweep().unwrap();
    let feed = feed_of(&s, A, &d).await;
    assert!(
        !feed
            .iter()
            .any(|e| e["reason"].to_string().contains("verification overdue")),
        "{feed:?}"
    );
    // Unlock: the request resumes with the half period it had left.
    s.app
        .registry()
        .dispute_unlock(&Actor::Operator, &d, "claim dismissed")
        .unwrap();
    let dom = s.store().domain(&d).unwrap().unwrap();
    let left = suspend / 2;
    let eval = |t| lifecycle::evaluate(&dom, t, &lc);
    let unlocked = s.clock.now();
    assert!(eval(unlocked + left - chrono::Duration::seconds(1))
        .blocks
        .is_empty());
    assert_eq!(
        eval(unlocked + left).blocks,
        vec![lifecycle::Block::VerificationOverdue]
    );
    assert!(in_zone(&s, &d));
    s.clock.advance(left.to_std().unwrap());
    assert!(!in_zone(&s, &d), "overdue after the time it had left");
}

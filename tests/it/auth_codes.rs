//! Auth codes cannot be guessed: a domain takes
//! `lifecycle.auth_code_max_failures` wrong codes, then refuses every code
//! (the right one too) until its sponsor sets a new one, and the sponsor's
//! feed names the attempts; the EPP transfer query is no oracle; weak codes
//! are refused; a registrar change by the registry clears the code. Over
//! the real HTTP API and Net::EPP, with a manual clock.

use crate::epp::{domain_cmd, drain, start, A, B};
use crate::support;
use serde_json::{json, Value};
use support::api::{send, token, Server};
use support::epp::code;
use zonekeeper::clock::Clock;
use zonekeeper::lifecycle::{self, Operation};
use zonekeeper::registry::Actor;

const REGRU: &str = "REGRU-RU";
const RUCENTER: &str = "RUCENTER-RU";

/// A fixture domain of `registrar` that a transfer may take now.
fn transferable(s: &Server, registrar: &str) -> String {
    let now = s.clock.now();
    s.domains_of(registrar, 1000)
        .into_iter()
        .find(|n| {
            let d = s.store().domain(n).unwrap().unwrap();
            let st = lifecycle::evaluate(&d, now, &s.app.config().lifecycle);
            st.exists() && lifecycle::permits(&st, Operation::Transfer).is_ok()
        })
        .expect("a transferable fixture domain")
}

async fn transfer(s: &Server, name: &str, tok: &str, code: &str) -> (u16, Value) {
    send(
        s.http
            .post(s.url(&format!("/api/v1/domains/{name}/transfer")))
            .bearer_auth(tok)
            .json(&json!({ "auth_code": code })),
    )
    .await
}

async fn new_code(s: &Server, name: &str, tok: &str) -> String {
    let (st, c) = send(s.post(&format!("/api/v1/domains/{name}/auth-code"), tok)).await;
    assert_eq!(st, 200, "{c}");
    c["auth_code"].as_str().unwrap().to_string()
}

/// A registrar's whole change feed.
async fn all_events(s: &Server, tok: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let (st, f) = send(s.get(&format!("/api/v1/events?after={after}"), Some(tok))).await;
        assert_eq!(st, 200, "{f}");
        let evs = f["events"].as_array().unwrap().clone();
        if evs.is_empty() {
            return out;
        }
        out.extend(evs);
        after = f["next_cursor"].as_str().unwrap().parse().unwrap();
    }
}

#[tokio::test]
async fn guessing_locks_the_code_until_the_sponsor_sets_a_new_one() {
    let s = Server::start(|_| {}).await;
    let (losing, gaining) = (token(REGRU), token(RUCENTER));
    let name = transferable(&s, REGRU);
    let right = new_code(&s, &name, &losing).await;
    // Five wrong codes: each refused as wrong.
    for i in 0..5 {
        let (st, p) = transfer(&s, &name, &gaining, &format!("guess-{i:04}")).await;
        assert_eq!((st, p["rule"].as_str()), (403, Some("auth-code")), "{p}");
    }
    // The count is in the store (it survives a restart).
    let f = s.store().begin().unwrap().auth_failures(&name).unwrap();
    let f = f.expect("failures are stored");
    assert_eq!(f.attempts.len(), 5);
    assert!(f.locked.is_some());
    // The sixth attempt is refused even with the right code.
    let (st, p) = transfer(&s, &name, &gaining, &right).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("auth-code-locked")),
        "{p}"
    );
    // …also for another registrar, and a while later.
    s.clock.advance(std::time::Duration::from_secs(3600));
    let (st, p) = transfer(&s, &name, &token("R01-RU"), &right).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("auth-code-locked")),
        "{p}"
    );
    assert!(s
        .store()
        .domain(&name)
        .unwrap()
        .unwrap()
        .registration
        .pending_transfer
        .is_none());
    // The sponsor's feed names the attempts (who, when), not the codes.
    let f = all_events(&s, &losing).await;
    let ev = f
        .iter()
        .find(|e| {
            e["domain"] == name.as_str()
                && e["reason"].as_str().unwrap().contains("auth code locked")
        })
        .unwrap_or_else(|| panic!("no lock event: {f:?}"))
        .clone();
    let reason = ev["reason"].as_str().unwrap();
    assert!(reason.contains("5 wrong codes"), "{reason}");
    assert!(
        reason.contains("registrar:RUCENTER-RU at 2026-11-23T10:00:00Z"),
        "{reason}"
    );
    assert!(!reason.contains("guess-"), "{reason}");
    // The guessing registrar is not told about the lock event.
    let g = all_events(&s, &gaining).await;
    assert!(!format!("{g:?}").contains("auth code locked"), "{g:?}");
    // A new code works.
    let fresh = new_code(&s, &name, &losing).await;
    let (st, v) = transfer(&s, &name, &gaining, &fresh).await;
    assert_eq!(st, 202, "{v}");
}

#[tokio::test]
async fn old_failures_age_out_of_the_window() {
    let s = Server::start(|c| c.lifecycle.auth_code_max_failures = 3).await;
    let (losing, gaining) = (token(REGRU), token(RUCENTER));
    let name = transferable(&s, REGRU);
    let right = new_code(&s, &name, &losing).await;
    for _ in 0..2 {
        let (st, _) = transfer(&s, &name, &gaining, "wrong-code-1").await;
        assert_eq!(st, 403);
    }
    // Past the window the two do not count; a code set meanwhile would
    // have expired too, so the sponsor sets one (which also resets).
    s.clock.advance(std::time::Duration::from_secs(31 * 86400));
    let right2 = new_code(&s, &name, &losing).await;
    assert_ne!(right, right2);
    for _ in 0..2 {
        let (st, _) = transfer(&s, &name, &gaining, "wrong-code-2").await;
        assert_eq!(st, 403);
    }
    let (st, v) = transfer(&s, &name, &gaining, &right2).await;
    assert_eq!(st, 202, "{v}");
}

#[tokio::test]
async fn weak_codes_are_refused() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    for bad in [
        "1234",
        "ab",
        "Abcdefgh\u{202E}xyz",
        "Abc\u{200B}defghij",
        "       x",
    ] {
        let (st, p) = send(
            s.http
                .post(s.url("/api/v1/domains"))
                .bearer_auth(&tok)
                .json(&json!({"name": "slabyi-kod.ru", "registrant": "C1-RU", "auth_info": bad})),
        )
        .await;
        assert_eq!(st, 422, "{bad:?}: {p}");
        assert!(p.to_string().contains("auth_info"), "{p}");
    }
    assert!(s.store().domain("slabyi-kod.ru").unwrap().is_none());
    // The registry refuses them for every edge (EPP and the control
    // socket call the same operation).
    let name = transferable(&s, REGRU);
    let reg = s.app.registry();
    for bad in ["1234567", "Abcdefgh\u{202E}"] {
        let e = reg
            .set_auth_code(&Actor::Registrar(REGRU.into()), &name, bad)
            .unwrap_err();
        assert_eq!(e.rule(), "invalid", "{bad:?}");
    }
    reg.set_auth_code(&Actor::Registrar(REGRU.into()), &name, "Long-Enough-1")
        .unwrap();
}

#[tokio::test]
async fn a_reseller_move_clears_the_code() {
    let s = Server::start(|_| {}).await;
    let (old, new) = (token(REGRU), token(RUCENTER));
    let (st, v) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&old)
            .json(&json!({
            "name": "pereezd-kod.ru", "registrant": "C1-RU",
            "auth_info": "Before-Move-1", "reseller": "RESELLER-7"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // Past the transfer lock of a new registration.
    s.clock.advance(std::time::Duration::from_secs(61 * 86400));
    let code = new_code(&s, "pereezd-kod.ru", &old).await;
    let moved = s
        .app
        .registry()
        .move_reseller(&Actor::Operator, "RESELLER-7", RUCENTER)
        .unwrap();
    assert_eq!(moved.domains.len(), 1);
    let d = s.store().domain("pereezd-kod.ru").unwrap().unwrap();
    assert_eq!(d.registrar, RUCENTER);
    assert!(d.auth_info.is_none() && d.registration.auth_info_expires.is_none());
    let (_, v) = send(s.get("/api/v1/domains/pereezd-kod.ru", Some(&new))).await;
    assert_eq!(v["auth_code_set"], false, "{v}");
    // Past the move's transfer lock, the old registrar's code is refused.
    s.clock.advance(std::time::Duration::from_secs(61 * 86400));
    let (st, p) = transfer(&s, "pereezd-kod.ru", &old, &code).await;
    assert_eq!((st, p["rule"].as_str()), (403, Some("auth-code")), "{p}");
    assert_eq!(
        s.store()
            .domain("pereezd-kod.ru")
            .unwrap()
            .unwrap()
            .registrar,
        RUCENTER
    );
}

/// `reseller move` (docs/cli.md): a reseller of one registrar cannot be
/// borrowed by another (409 `reseller-sponsor`, any case); the move
/// cancels a moved domain's pending registrar change with an event to the
/// losing and the gaining registrar, clears the code (the old registrar's
/// code is refused afterwards) and starts only the transfer lock.
#[tokio::test]
async fn a_reseller_move_cancels_the_pending_transfer_with_events_to_both_sides() {
    let s = Server::start(|_| {}).await;
    let (old, new, third) = (token(REGRU), token(RUCENTER), token("R01-RU"));
    // The fixture's reseller of REGRU-RU, named in another case.
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&new)
            .json(&json!({
            "name": "chuzhoj-reseller.ru", "registrant": "C2-RU",
            "reseller": "res-regru-1"})),
    )
    .await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("reseller-sponsor")),
        "{p}"
    );
    assert!(s.store().domain("chuzhoj-reseller.ru").unwrap().is_none());
    let (st, v) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&old)
            .json(&json!({
            "name": "pereezd-tri.ru", "registrant": "C1-RU",
            "reseller": "res-regru-1"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    s.clock.advance(std::time::Duration::from_secs(61 * 86400));
    let code = new_code(&s, "pereezd-tri.ru", &old).await;
    let (st, v) = transfer(&s, "pereezd-tri.ru", &third, &code).await;
    assert_eq!(st, 202, "{v}");
    let before_third = all_events(&s, &third).await.len();
    let before_old = all_events(&s, &old).await.len();

    let m = s
        .app
        .registry()
        .move_reseller(&Actor::Operator, "Res-Regru-1", RUCENTER)
        .unwrap();
    assert_eq!(m.reseller, "RES-REGRU-1");
    let moved = m
        .domains
        .iter()
        .find(|d| d.name == "pereezd-tri.ru")
        .unwrap();
    assert_eq!(moved.transfer_cancelled.as_deref(), Some("R01-RU"));
    assert!(moved.transfer_locked_until.is_some());
    let d = s.store().domain("pereezd-tri.ru").unwrap().unwrap();
    assert_eq!(d.registrar, RUCENTER);
    assert!(d.registration.pending_transfer.is_none() && d.auth_info.is_none());
    let st = lifecycle::evaluate(&d, s.clock.now(), &s.app.config().lifecycle);
    assert!(st.transfer_locked_until.is_some());
    assert!(st.registrant_locked_until.is_none(), "{st:?}");
    // Both sides of the cancelled change hear of it, once.
    for (tok, before) in [(&third, before_third), (&old, before_old)] {
        let f = all_events(&s, tok).await;
        let cancels: Vec<_> = f[before..]
            .iter()
            .filter(|e| {
                e["domain"] == "pereezd-tri.ru"
                    && e["reason"].as_str().unwrap().contains("cancelled")
            })
            .collect();
        assert_eq!(cancels.len(), 1, "{f:?}");
    }
    // The new registrar's feed has the move.
    let f = all_events(&s, &new).await;
    assert!(
        f.iter().any(|e| e["domain"] == "pereezd-tri.ru"
            && e["reason"]
                .as_str()
                .unwrap()
                .contains("moved by the registry")),
        "{f:?}"
    );
    // The reseller is RUCENTER-RU's now: REGRU-RU cannot use it.
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&old)
            .json(&json!({
            "name": "pereezd-chetyre.ru", "registrant": "C1-RU",
            "reseller": "RES-REGRU-1"})),
    )
    .await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("reseller-sponsor")),
        "{p}"
    );
    // Past the move's transfer lock, the pre-move code is refused, to the
    // old registrar and to the third one.
    s.clock.advance(std::time::Duration::from_secs(61 * 86400));
    for tok in [&old, &third] {
        let (st, p) = transfer(&s, "pereezd-tri.ru", tok, &code).await;
        assert_eq!((st, p["rule"].as_str()), (403, Some("auth-code")), "{p}");
    }
    assert_eq!(
        s.store()
            .domain("pereezd-tri.ru")
            .unwrap()
            .unwrap()
            .registrar,
        RUCENTER
    );
}

#[test]
fn imported_codes_expire() {
    let s = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(Server::start(|_| {}));
    // The fixture registry is imported: its codes expire a lifetime after.
    let now = s.clock.now();
    let life = zonekeeper::config::Config::chrono(s.app.config().lifecycle.auth_code_lifetime);
    let with_code: Vec<_> = s
        .domains_of(REGRU, 1000)
        .into_iter()
        .filter_map(|n| s.store().domain(&n).unwrap())
        .filter(|d| d.auth_info.is_some())
        .collect();
    assert!(!with_code.is_empty());
    for d in with_code {
        let exp = d
            .registration
            .auth_info_expires
            .expect("an imported code expires");
        assert!(exp <= now + life, "{exp}");
    }
}

fn epp_transfer(c: &mut support::epp::Client, op: &str, name: &str, pw: &str) -> String {
    c.cmd(
        &domain_cmd(
            "transfer",
            &format!("<domain:name>{name}</domain:name><domain:authInfo><domain:pw>{pw}</domain:pw></domain:authInfo>"),
        )
        .replace("<transfer>", &format!(r#"<transfer op="{op}">"#)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_transfer_query_is_no_oracle() {
    let env = start(|_| {}).await;
    tokio::task::spawn_blocking(move || {
        let mut a = env.logged_in(0);
        let mut b = env.logged_in(1);
        let t = env.transferable(A, 0);
        let set = |a: &mut support::epp::Client, pw: &str| {
            a.cmd(&domain_cmd(
                "update",
                &format!("<domain:name>{t}</domain:name><domain:chg><domain:authInfo><domain:pw>{pw}</domain:pw></domain:authInfo></domain:chg>"),
            ))
        };
        // Weak codes are refused over EPP too.
        for bad in ["short-1", "Bidi-Code-&#x202E;1"] {
            let r = set(&mut a, bad);
            assert_ne!(code(&r), 1000, "{bad}: {r}");
        }
        assert_eq!(code(&set(&mut a, "Oracle-Code-1")), 1000);
        drain(&mut a);
        // Under a dispute lock the query answers like a request would,
        // right code or wrong: nothing to tell them apart.
        let reg = env.s.app.registry();
        reg.dispute_lock(&Actor::Operator, &t, "case 1").unwrap();
        let right = epp_transfer(&mut b, "query", &t, "Oracle-Code-1");
        let wrong = epp_transfer(&mut b, "query", &t, "Oracle-Code-2");
        assert_eq!((code(&right), code(&wrong)), (2304, 2304), "{right}\n{wrong}");
        assert!(right.contains("dispute-lock"), "{right}");
        reg.dispute_unlock(&Actor::Operator, &t, "claim dismissed").unwrap();
        // A wrong code in a query counts like one in a request.
        for i in 0..4 {
            let r = epp_transfer(&mut b, "query", &t, &format!("Oracle-Wrong-{i}"));
            assert_eq!(code(&r), 2202, "{r}");
            assert!(r.contains("rule: auth-code)"), "{r}");
        }
        let r = epp_transfer(&mut b, "request", &t, "Oracle-Wrong-4");
        assert_eq!(code(&r), 2202, "{r}");
        // Locked: the right code no longer answers, query or request.
        for op in ["query", "request"] {
            let r = epp_transfer(&mut b, op, &t, "Oracle-Code-1");
            assert_eq!(code(&r), 2202, "{r}");
            assert!(r.contains("auth-code-locked"), "{r}");
        }
        // The sponsor's message queue says so.
        let msgs = drain(&mut a);
        assert!(
            msgs.iter().any(|m| m.contains(&t) && m.contains("auth code locked after 5 wrong codes")
                && m.contains(&format!("registrar:{B}"))),
            "{msgs:?}"
        );
        // A new code works.
        assert_eq!(code(&set(&mut a, "Oracle-Code-New")), 1000);
        // (Right code, nothing pending: the query's answer.)
        let r = epp_transfer(&mut b, "query", &t, "Oracle-Code-New");
        assert_eq!(code(&r), 2301, "{r}");
        assert!(r.contains("no-request"), "{r}");
        let r = epp_transfer(&mut b, "request", &t, "Oracle-Code-New");
        assert_eq!(code(&r), 1001, "{r}");
    })
    .await
    .unwrap();
}

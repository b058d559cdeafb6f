//! Registrar-set `client*` statuses (docs/statuses.md "Registrar-set
//! statuses") end to end: EPP `domain:update` `add`/`rem` `status` with
//! Perl's `Net::EPP`, the API's `PUT …/client-statuses`, the lock rules
//! each one adds, `clientHold` out of and back into the zone, and one feed
//! event per change.

use std::sync::Arc;

use serde_json::{json, Value};
use zonekeeper::clock::Clock;
use zonekeeper::model::{DelegationRecord, DelegationState};
use zonekeeper::registry::Actor;

use crate::epp::{domain_cmd, drain, start, Env, A, B};
use crate::support::api::{send, token, Server};
use crate::support::epp::{code, Client};

/// Make `name` delegated and in the zone (its published set is the
/// declared one).
fn delegate(s: &Server, name: &str) {
    let now = s.clock.now();
    let d = s.store().domain(name).unwrap().unwrap();
    assert!(!d.nameservers.is_empty(), "{name} has nameservers");
    let mut rec = DelegationRecord::undelegated(now - chrono::Duration::days(30));
    rec.state = DelegationState::Delegated;
    rec.delegated_at = Some(now - chrono::Duration::days(30));
    rec.published = d.nameservers.clone();
    let mut txn = s.store().begin().unwrap();
    txn.put_delegation(name, &rec).unwrap();
    txn.commit(now).unwrap();
}

fn in_zone(s: &Server, name: &str) -> bool {
    let z = zonekeeper::zone::render(s.store(), s.app.config(), "ru", s.clock.now(), 1).unwrap();
    z.lines()
        .any(|l| l.starts_with(&format!("{name}.")) && l.contains("NS"))
}

fn status_update(c: &mut Client, name: &str, add: &[&str], rem: &[&str]) -> String {
    let part = |tag: &str, list: &[&str]| {
        if list.is_empty() {
            return String::new();
        }
        let s: String = list
            .iter()
            .map(|x| format!(r#"<domain:status s="{x}"/>"#))
            .collect();
        format!("<domain:{tag}>{s}</domain:{tag}>")
    };
    c.cmd(&domain_cmd(
        "update",
        &format!(
            "<domain:name>{name}</domain:name>{}{}",
            part("add", add),
            part("rem", rem)
        ),
    ))
}

fn epp_statuses(info: &str) -> Vec<String> {
    info.split(r#"<domain:status s=""#)
        .skip(1)
        .filter_map(|x| x.split_once('"').map(|(v, _)| v.to_string()))
        .collect()
}

fn info(c: &mut Client, name: &str) -> String {
    let r = c.cmd(&domain_cmd(
        "info",
        &format!("<domain:name>{name}</domain:name>"),
    ));
    assert_eq!(code(&r), 1000, "{r}");
    r
}

fn refused(r: &str, want: u16, rule: &str) {
    assert_eq!(code(r), want, "{r}");
    assert!(r.contains(&format!("rule: {rule}")), "{rule}: {r}");
}

/// Every event of `registrar`'s feed (the API's) about `domain`.
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

fn client_events(feed: &[Value]) -> usize {
    feed.iter()
        .filter(|e| {
            e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("client statuses"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn epp_adds_and_removes_client_statuses_and_they_bind() {
    let env: Arc<Env> = Arc::new(start(|_| {}).await);
    let d = env.transferable(A, 0);
    delegate(&env.s, &d);
    assert!(in_zone(&env.s, &d));
    let before = client_events(&feed_of(&env.s, A, &d).await);

    // Add clientHold and clientTransferProhibited: shown, out of the zone.
    let e = env.clone();
    let dn = d.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let r = a.cmd(&domain_cmd(
            "update",
            &format!("<domain:name>{dn}</domain:name><domain:chg><domain:authInfo><domain:pw>Client-Code-1</domain:pw></domain:authInfo></domain:chg>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let r = status_update(&mut a, &dn, &["clientHold", "clientTransferProhibited"], &[]);
        assert_eq!(code(&r), 1000, "{r}");
        assert_eq!(
            epp_statuses(&info(&mut a, &dn)),
            ["inactive", "clientHold", "clientTransferProhibited"]
        );
    })
    .await
    .unwrap();
    assert!(!in_zone(&env.s, &d), "clientHold takes it out of the zone");
    let (st, v) = send(env.s.get(&format!("/rdap/domain/{d}"), None)).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["status"],
        json!(["inactive", "client hold", "client transfer prohibited"])
    );
    let w = env.whois(&d);
    assert!(w.contains("CLIENT HOLD"), "{w}");

    // RFC 5731 semantics and the rules each status adds.
    let e = env.clone();
    let dn = d.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let mut b = e.logged_in(1);
        refused(&status_update(&mut a, &dn, &["clientHold"], &[]), 2306, "status-present");
        refused(
            &status_update(&mut a, &dn, &[], &["clientRenewProhibited"]),
            2303,
            "status-absent",
        );
        let r = status_update(&mut a, &dn, &["serverHold"], &[]);
        assert_eq!(code(&r), 2306, "server* is the registry's: {r}");
        let r = status_update(&mut b, &dn, &["clientRenewProhibited"], &[]);
        assert_eq!(code(&r), 2201, "only the sponsor: {r}");
        let r = b.cmd(
            &domain_cmd(
                "transfer",
                &format!("<domain:name>{dn}</domain:name><domain:authInfo><domain:pw>Client-Code-1</domain:pw></domain:authInfo>"),
            )
            .replace("<transfer>", r#"<transfer op="request">"#),
        );
        refused(&r, 2304, "client-transfer-prohibited");
        // Removing clientHold puts it back.
        let r = status_update(&mut a, &dn, &[], &["clientHold", "clientTransferProhibited"]);
        assert_eq!(code(&r), 1000, "{r}");
        assert_eq!(epp_statuses(&info(&mut a, &dn)), ["ok"]);

        // clientUpdateProhibited: every update refused but its removal.
        let r = status_update(&mut a, &dn, &["clientUpdateProhibited"], &[]);
        assert_eq!(code(&r), 1000, "{r}");
        let upd = |inner: &str| domain_cmd("update", &format!("<domain:name>{dn}</domain:name>{inner}"));
        for (what, cmd) in [
            ("ns add", upd("<domain:add><domain:ns><domain:hostAttr><domain:hostName>ns3.example.org</domain:hostName></domain:hostAttr></domain:ns></domain:add>")),
            ("auth code", upd("<domain:chg><domain:authInfo><domain:pw>Another-Code-2</domain:pw></domain:authInfo></domain:chg>")),
            ("contact", upd(r#"<domain:rem><domain:contact type="admin">C1-RU</domain:contact></domain:rem>"#)),
        ] {
            let r = a.cmd(&cmd);
            assert_eq!(code(&r), 2304, "{what}: {r}");
            assert!(r.contains("client-update-prohibited"), "{what}: {r}");
        }
        refused(
            &status_update(&mut a, &dn, &["clientRenewProhibited"], &[]),
            2304,
            "client-update-prohibited",
        );
        let r = status_update(&mut a, &dn, &[], &["clientUpdateProhibited"]);
        assert_eq!(code(&r), 1000, "{r}");

        // clientRenewProhibited and clientDeleteProhibited.
        let r = status_update(
            &mut a,
            &dn,
            &["clientRenewProhibited", "clientDeleteProhibited"],
            &[],
        );
        assert_eq!(code(&r), 1000, "{r}");
        let paid = e.s.store().domain(&dn).unwrap().unwrap().paid_till;
        let r = a.cmd(&domain_cmd(
            "renew",
            &format!(r#"<domain:name>{dn}</domain:name><domain:curExpDate>{}</domain:curExpDate><domain:period unit="y">1</domain:period>"#, paid.date_naive()),
        ));
        refused(&r, 2304, "client-renew-prohibited");
        let r = a.cmd(&domain_cmd("delete", &format!("<domain:name>{dn}</domain:name>")));
        refused(&r, 2304, "client-delete-prohibited");
        // Each change is one poll message.
        let msgs = drain(&mut a);
        assert_eq!(
            msgs.iter().filter(|m| m.contains("client statuses")).count(),
            5,
            "{msgs:?}"
        );
    })
    .await
    .unwrap();
    assert!(in_zone(&env.s, &d), "back in the zone without clientHold");
    // One feed event per accepted change, none for a refused one.
    let feed = feed_of(&env.s, A, &d).await;
    assert_eq!(client_events(&feed) - before, 5, "{feed:?}");
    let stored = env.s.store().domain(&d).unwrap().unwrap();
    assert_eq!(
        stored
            .registration
            .client_statuses
            .iter()
            .map(|c| c.epp())
            .collect::<Vec<_>>(),
        ["clientDeleteProhibited", "clientRenewProhibited"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sets_client_statuses() {
    let env = start(|_| {}).await;
    let s = &env.s;
    let d = env.transferable(A, 1);
    delegate(s, &d);
    let ta = token(A);
    let put = |body: Value, tok: &str| {
        s.put_json(&format!("/api/v1/domains/{d}/client-statuses"), tok, body)
    };
    let (st, v) = send(put(json!({"statuses": ["clientHold"]}), &ta)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["statuses"], json!(["inactive", "clientHold"]));
    assert_eq!(v["client_statuses"], json!(["clientHold"]));
    assert_eq!(v["lock_statuses"], json!(["client hold"]));
    assert!(!in_zone(s, &d));
    // The same set again changes nothing (no event).
    let n = client_events(&feed_of(s, A, &d).await);
    let (st, _) = send(put(json!({"statuses": ["clientHold"]}), &ta)).await;
    assert_eq!(st, 200);
    assert_eq!(client_events(&feed_of(s, A, &d).await), n);
    // Bad values are field errors; another registrar is 403.
    for bad in ["serverHold", "ok", "nonsense"] {
        let (st, v) = send(put(json!({"statuses": [bad]}), &ta)).await;
        assert_eq!(st, 422, "{bad}: {v}");
    }
    let (st, _) = send(put(json!({"statuses": []}), &token(B))).await;
    assert_eq!(st, 403);
    // clientUpdateProhibited refuses other changes and any set keeping it.
    let (st, v) = send(put(json!({"statuses": ["clientUpdateProhibited"]}), &ta)).await;
    assert_eq!(st, 200, "{v}");
    assert!(in_zone(s, &d), "clientHold removed: back in the zone");
    let (st, v) = send(s.put_json(
        &format!("/api/v1/domains/{d}/contacts"),
        &ta,
        json!({"admin": null}),
    ))
    .await;
    assert_eq!(
        (st, v["rule"].as_str()),
        (409, Some("client-update-prohibited")),
        "{v}"
    );
    let (st, v) = send(put(
        json!({"statuses": ["clientUpdateProhibited", "clientHold"]}),
        &ta,
    ))
    .await;
    assert_eq!(
        (st, v["rule"].as_str()),
        (409, Some("client-update-prohibited")),
        "{v}"
    );
    let (st, v) = send(put(json!({"statuses": ["clientRenewProhibited"]}), &ta)).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = send(s.post(&format!("/api/v1/domains/{d}/renew"), &ta)).await;
    assert_eq!(
        (st, v["rule"].as_str()),
        (409, Some("client-renew-prohibited")),
        "{v}"
    );
    // Under a dispute lock, nothing changes.
    s.app
        .registry()
        .dispute_lock(&Actor::Operator, &d, "case A40-1/2026")
        .unwrap();
    let (st, v) = send(put(json!({"statuses": []}), &ta)).await;
    assert_eq!((st, v["rule"].as_str()), (409, Some("dispute-lock")), "{v}");
}

//! The ownership table (docs/api.md and docs/epp.md "Ownership"): every
//! registrar write of every registrar-facing edge — the REST API and EPP
//! (the in-test Net::EPP client) — tried on domains of registrar B by
//! {B itself, registrar A, registrar A on a domain sold by B's reseller}.
//! Only the sponsor changes anything; every refusal names its rule and
//! leaves the domain's record exactly as it was. (The control socket is
//! the operator's: it acts for no registrar.)

use crate::epp::{domain_cmd, start, A, B};
use crate::support;
use serde_json::{json, Value};
use support::api::{send, token};
use support::epp::{code, DOMAIN};

const PLAIN: &str = "tablica-odin.ru";
const SOLD: &str = "tablica-dva.ru";
const B_RESELLER: &str = "RES-RUCENTER-1";

/// The registrar API's write operations on an existing domain: method,
/// path under `/api/v1/domains/{name}`, body.
fn rest_ops(b_contact: &str) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("PUT", "/nameservers", json!({"nameservers": []})),
        ("PUT", "/ds", json!({"ds": []})),
        ("DELETE", "/ds", Value::Null),
        ("POST", "/retest", Value::Null),
        ("POST", "/renew", Value::Null),
        ("PUT", "/contacts", json!({"admin": null, "tech": null})),
        (
            "POST",
            "/registrant-change",
            json!({ "registrant": b_contact }),
        ),
        ("DELETE", "/registrant-change", Value::Null),
        ("POST", "/registrant-change/accept", Value::Null),
        ("POST", "/auth-code", Value::Null),
        ("POST", "/transfer/approve", Value::Null),
        ("POST", "/transfer/reject", Value::Null),
        ("POST", "/close", json!({"when": "end_of_period"})),
        ("DELETE", "/close", Value::Null),
        ("POST", "/verification", Value::Null),
        ("POST", "/verification-request", Value::Null),
    ]
}

/// EPP's write commands on domain `name` (RFC 5731, the registry's rules).
fn epp_ops(name: &str, paid_till: &str) -> Vec<(&'static str, String)> {
    let transfer = |op: &str| {
        format!(
            r#"<transfer op="{op}"><domain:transfer xmlns:domain="{DOMAIN}"><domain:name>{name}</domain:name></domain:transfer></transfer>"#
        )
    };
    vec![
        (
            "update add ns",
            domain_cmd(
                "update",
                &format!(
                    "<domain:name>{name}</domain:name><domain:add><domain:ns><domain:hostAttr><domain:hostName>ns9.attacker.example</domain:hostName></domain:hostAttr></domain:ns></domain:add>"
                ),
            ),
        ),
        (
            "update rem contact",
            domain_cmd(
                "update",
                &format!("<domain:name>{name}</domain:name><domain:chg><domain:registrant>C1-RU</domain:registrant></domain:chg>"),
            ),
        ),
        (
            "update auth code",
            domain_cmd(
                "update",
                &format!("<domain:name>{name}</domain:name><domain:chg><domain:authInfo><domain:pw>Attacker-Code-1</domain:pw></domain:authInfo></domain:chg>"),
            ),
        ),
        (
            "update add status",
            domain_cmd(
                "update",
                &format!("<domain:name>{name}</domain:name><domain:add><domain:status s=\"clientHold\"/></domain:add>"),
            ),
        ),
        (
            "renew",
            domain_cmd(
                "renew",
                &format!("<domain:name>{name}</domain:name><domain:curExpDate>{paid_till}</domain:curExpDate><domain:period unit=\"y\">1</domain:period>"),
            ),
        ),
        (
            "delete",
            domain_cmd("delete", &format!("<domain:name>{name}</domain:name>")),
        ),
        ("transfer approve", transfer("approve")),
        ("transfer reject", transfer("reject")),
        ("transfer cancel", transfer("cancel")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sponsor_changes_a_domain_at_every_edge() {
    let env = std::sync::Arc::new(start(|_| {}).await);
    let s = &env.s;
    let (tok_a, tok_b) = (token(A), token(B));
    // A contact each registrar sponsors (a registrant of its domains).
    let own_contact = |reg: &str| {
        s.domains_of(reg, 1000)
            .into_iter()
            .map(|n| s.store().domain(&n).unwrap().unwrap().registrant)
            .find(|c| s.store().contact(c).unwrap().unwrap().sponsor.as_deref() == Some(reg))
            .expect("a contact the registrar sponsors")
    };
    let b_contact = own_contact(B);
    for (name, reseller) in [(PLAIN, None), (SOLD, Some(B_RESELLER))] {
        let (st, v) = send(
            s.http
                .post(s.url("/api/v1/domains"))
                .bearer_auth(&tok_b)
                .json(&json!({"name": name, "registrant": b_contact, "reseller": reseller})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let record = |n: &str| s.store().domain(n).unwrap().unwrap();

    // A cannot borrow B's reseller (any case) for a domain of its own.
    let a_contact = own_contact(A);
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&tok_a)
            .json(&json!({"name": "tablica-tri.ru", "registrant": a_contact,
                          "reseller": B_RESELLER.to_lowercase()})),
    )
    .await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("reseller-sponsor")),
        "{p}"
    );
    assert!(s.store().domain("tablica-tri.ru").unwrap().is_none());

    // REST × {A on B's domain, A on the domain B's reseller sells}.
    let call = |method: &str, path: String, body: &Value, tok: &str| {
        let url = s.url(&path);
        let rb = match method {
            "PUT" => s.http.put(url),
            "DELETE" => s.http.delete(url),
            _ => s.http.post(url),
        }
        .bearer_auth(tok);
        if body.is_null() {
            rb
        } else {
            rb.json(body)
        }
    };
    for victim in [PLAIN, SOLD] {
        for (method, path, body) in rest_ops(&b_contact) {
            let before = record(victim);
            let (st, p) = send(call(
                method,
                format!("/api/v1/domains/{victim}{path}"),
                &body,
                &tok_a,
            ))
            .await;
            // 403 `forbidden` in general; transfer approve/reject with
            // nothing pending to A answer `no-request` (409): refused alike.
            assert!(
                [403, 404, 409].contains(&st),
                "A {method} {path} on {victim}: {st} {p}"
            );
            assert!(
                p["rule"].as_str().is_some_and(|r| !r.is_empty()),
                "A {method} {path}: no rule: {p}"
            );
            assert_eq!(record(victim), before, "A {method} {path} changed {victim}");
        }
        // A transfer request needs B's code: refused by its rule.
        let before = record(victim);
        let (st, p) = send(call(
            "POST",
            format!("/api/v1/domains/{victim}/transfer"),
            &json!({"auth_code": "Not-The-Code-1"}),
            &tok_a,
        ))
        .await;
        assert!(st >= 400, "{p}");
        assert!(p["rule"].as_str().is_some(), "{p}");
        assert_eq!(record(victim).registrar, B);
        assert_eq!(record(victim).nameservers, before.nameservers);
    }

    // EPP × the same: A's session.
    let e = env.clone();
    let (plain_till, sold_till) = (
        record(PLAIN).paid_till.format("%Y-%m-%d").to_string(),
        record(SOLD).paid_till.format("%Y-%m-%d").to_string(),
    );
    let refused: Vec<(String, String, Option<String>)> = tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        let mut out = Vec::new();
        for (victim, till) in [(PLAIN, plain_till), (SOLD, sold_till)] {
            for (what, xml) in epp_ops(victim, &till) {
                let before = e.s.store().domain(victim).unwrap().unwrap();
                let r = a.cmd(&xml);
                let c = code(&r);
                assert!(
                    (2000..2500).contains(&c),
                    "A's EPP {what} on {victim} answered {c}: {r}"
                );
                assert_eq!(
                    e.s.store().domain(victim).unwrap().unwrap(),
                    before,
                    "A's EPP {what} changed {victim}"
                );
                let rule = r
                    .split("rule: ")
                    .nth(1)
                    .map(|t| t.split(['<', ' ', ')']).next().unwrap_or("").to_string());
                out.push((victim.to_string(), what.to_string(), rule));
            }
        }
        out
    })
    .await
    .unwrap();
    for (victim, what, rule) in &refused {
        assert!(
            rule.as_deref().is_some_and(|r| !r.is_empty()),
            "A's EPP {what} on {victim}: the refusal names no rule"
        );
    }

    // The sponsor: the same operations do change its domain.
    for victim in [PLAIN, SOLD] {
        let before = record(victim);
        let (st, p) = send(call(
            "PUT",
            format!("/api/v1/domains/{victim}/contacts"),
            &json!({"admin": b_contact}),
            &tok_b,
        ))
        .await;
        assert_eq!(st, 200, "{p}");
        let (st, p) = send(call(
            "POST",
            format!("/api/v1/domains/{victim}/auth-code"),
            &Value::Null,
            &tok_b,
        ))
        .await;
        assert_eq!(st, 200, "{p}");
        let (st, p) = send(call(
            "POST",
            format!("/api/v1/domains/{victim}/renew"),
            &Value::Null,
            &tok_b,
        ))
        .await;
        assert_eq!(st, 200, "{p}");
        let after = record(victim);
        assert_eq!(after.admin.as_deref(), Some(b_contact.as_str()));
        assert!(after.paid_till > before.paid_till);
        assert_ne!(after.auth_info, before.auth_info);
    }
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = e.logged_in(1);
        let r = b.cmd(&domain_cmd(
            "update",
            &format!("<domain:name>{SOLD}</domain:name><domain:chg><domain:authInfo><domain:pw>Sponsor-Code-2</domain:pw></domain:authInfo></domain:chg>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
    })
    .await
    .unwrap();
    assert_eq!(record(SOLD).auth_info.as_deref(), Some("Sponsor-Code-2"));
    assert_eq!(
        record(SOLD).registration.reseller.as_deref(),
        Some(B_RESELLER)
    );
}

//! The registrar operations end to end through the real HTTP API (and RDAP
//! on the same server) over the sample registry, with a manual clock:
//! create, renew, contacts, registrant change, registrar change with auth
//! code (approved, rejected, automatic), close, the change feed, and the
//! refusals — each a problem document naming the rule, with nothing
//! changed.

use crate::support;
use serde_json::{json, Value};
use support::api::{send, token, Server};
use zonekeeper::registry::Actor;

const REGRU: &str = "REGRU-RU";
const RUCENTER: &str = "RUCENTER-RU";

fn post_json(s: &Server, path: &str, tok: &str, body: Value) -> reqwest::RequestBuilder {
    s.http.post(s.url(path)).bearer_auth(tok).json(&body)
}

async fn domain(s: &Server, name: &str, tok: &str) -> Value {
    let (st, v) = send(s.get(&format!("/api/v1/domains/{name}"), Some(tok))).await;
    assert_eq!(st, 200, "{v}");
    v
}

async fn rdap_status(s: &Server, name: &str) -> u16 {
    s.http
        .get(s.url(&format!("/rdap/domain/{name}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn create_renew_contacts_and_refusals() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    assert_eq!(rdap_status(&s, "novyi-domen.ru").await, 404);
    let body = json!({"name": "Novyi-Domen.RU.", "registrant": "C8-RU", "admin": "C8-RU",
                      "nameservers": [], "auth_info": "s3cret-code", "reseller": "RESELLER-1"});
    let (st, v) = send(post_json(&s, "/api/v1/domains", &tok, body.clone())).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["name"], "novyi-domen.ru");
    assert_eq!(v["registrar"], REGRU);
    assert_eq!(v["paid_till"], "2027-11-23T10:00:00Z");
    assert_eq!(v["auth_code_set"], true);
    assert!(!v.to_string().contains("s3cret-code"), "{v}");
    // RDAP shows it at once, with its reseller.
    let rdap: Value = s
        .http
        .get(s.url("/rdap/domain/novyi-domen.ru"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rdap["ldhName"], "novyi-domen.ru", "{rdap}");

    // Refusals: each a problem naming the rule; nothing changed.
    let (st, p) = send(post_json(&s, "/api/v1/domains", &tok, body.clone())).await;
    assert_eq!((st, p["rule"].as_str()), (409, Some("exists")), "{p}");
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(st, 400, "{p}");
    for (bad, field) in [
        (json!({"name": "-bad-.ru", "registrant": "C8-RU"}), "name"),
        (
            json!({"name": "fine-name.ru", "registrant": "NOBODY"}),
            "registrant",
        ),
        (
            json!({"name": "fine-name.ru", "registrant": "C8-RU", "nameservers": [{"name": "ns1.x.net"}]}),
            "nameservers",
        ),
        (
            json!({"name": "fine-name.ru", "registrant": "C8-RU", "registrar": RUCENTER}),
            "registrar",
        ),
    ] {
        let (st, p) = send(post_json(&s, "/api/v1/domains", &tok, bad.clone())).await;
        assert_eq!(st, 422, "{bad} {p}");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    // Fields the registry sets are not the registrar's to give.
    let (st, _) = send(post_json(
        &s,
        "/api/v1/domains",
        &tok,
        json!({"name": "fine-name.ru", "registrant": "C8-RU", "paid_till": "2099-01-01T00:00:00Z"}),
    ))
    .await;
    assert_eq!(st, 422);
    assert_eq!(rdap_status(&s, "fine-name.ru").await, 404);

    // Renew: one year on.
    let (st, v) = send(s.post("/api/v1/domains/torgra8.ru/renew", &tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["paid_till"], "2028-09-09T10:00:00Z");
    // Another registrar's domain, an unknown one, a bad name.
    let (st, p) = send(s.post("/api/v1/domains/deldom1.ru/renew", &tok)).await;
    assert_eq!((st, p["rule"].as_str()), (403, Some("forbidden")), "{p}");
    let (st, _) = send(s.post("/api/v1/domains/nope-nope.ru/renew", &tok)).await;
    assert_eq!(st, 404);
    // prokami9.ru: verification asked 2026-11-01, unanswered > 14 days.
    let rc = token(RUCENTER);
    let (st, p) = send(s.post("/api/v1/domains/prokami9.ru/renew", &rc)).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("verification-overdue")),
        "{p}"
    );
    let before = domain(&s, "prokami9.ru", &rc).await;
    // The answer lifts it.
    let (st, _) = send(s.post("/api/v1/domains/prokami9.ru/verification", &rc)).await;
    assert_eq!(st, 200);
    let (st, v) = send(s.post("/api/v1/domains/prokami9.ru/renew", &rc)).await;
    assert_eq!(st, 200, "{v}");
    assert_ne!(v["paid_till"], before["paid_till"]);

    // Contacts: present members replace, null removes, absent stay.
    let (st, v) = send(s.put_json(
        "/api/v1/domains/torgra8.ru/contacts",
        &tok,
        json!({"admin": "C4-RU", "tech": null}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["admin"].as_str(), v["tech"].as_str()),
        (Some("C4-RU"), None)
    );
    let (st, _) = send(s.put_json(
        "/api/v1/domains/torgra8.ru/contacts",
        &tok,
        json!({"admin": "NOBODY"}),
    ))
    .await;
    assert_eq!(st, 422);
    // Another registrar's contact (C2-RU is R01-RU's): refused, named.
    let (st, v) = send(s.put_json(
        "/api/v1/domains/torgra8.ru/contacts",
        &tok,
        json!({"admin": "C2-RU"}),
    ))
    .await;
    assert_eq!(
        (st, v["rule"].as_str()),
        (409, Some("contact-sponsor")),
        "{v}"
    );
    assert_eq!(domain(&s, "torgra8.ru", &tok).await["admin"], "C4-RU");

    // Renewal in the grace period restores the domain; after the free
    // date the name is gone.
    s.clock.advance(std::time::Duration::from_secs(44 * 86400)); // 2027-01-06
    let d = domain(&s, "findomsky0.ru", &tok).await;
    assert_eq!(d["lifecycle"]["expired"], true, "{d}");
    let (st, v) = send(s.post("/api/v1/domains/findomsky0.ru/renew", &tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["paid_till"], "2028-01-01T10:00:00Z");
    assert_eq!(v["lifecycle"]["expired"], false);
    s.clock.advance(std::time::Duration::from_secs(40 * 86400)); // 2027-02-15
    let (st, _) = send(s.post("/api/v1/domains/vekvekro12.ru/renew", &tok)).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn reserved_names_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("reserved.txt");
    std::fs::write(&list, "# the registry's own\nnic.ru\nреестр.рф\n").unwrap();
    let s = Server::start(|c| c.lifecycle.reserved_names = Some(list.clone())).await;
    let tok = token(REGRU);
    for name in ["NIC.ru", "реестр.рф"] {
        let (st, p) = send(post_json(
            &s,
            "/api/v1/domains",
            &tok,
            json!({"name": name, "registrant": "C8-RU"}),
        ))
        .await;
        assert_eq!(
            (st, p["rule"].as_str()),
            (409, Some("reserved-name")),
            "{p}"
        );
    }
    assert_eq!(rdap_status(&s, "nic.ru").await, 404);
}

/// The zone policies' confusable rule holds at create as at import: a
/// look-alike of a registered .рф name is refused naming the rule; one of a
/// .ru name is created and flagged in its history and the change feed.
#[tokio::test]
async fn look_alikes_of_registered_names_at_create() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    let create = |name: &'static str| {
        post_json(
            &s,
            "/api/v1/domains",
            &tok,
            json!({"name": name, "registrant": "C8-RU"}),
        )
    };
    let (st, v) = send(create("сбер.рф")).await;
    assert_eq!(st, 201, "{v}");
    // б and 6 share a TR39 skeleton; .рф refuses.
    let (st, p) = send(create("с6ер.рф")).await;
    assert_eq!((st, p["rule"].as_str()), (409, Some("confusable")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("сбер.рф"), "{p}");
    assert_eq!(rdap_status(&s, "с6ер.рф").await, 404);
    // 1 looks like l: deldom1.ru is in the sample registry; .ru flags.
    let (st, v) = send(create("de1dom1.ru")).await;
    assert_eq!(st, 201, "{v}");
    let (st, f) = send(s.get("/api/v1/events", Some(&tok))).await;
    assert_eq!(st, 200, "{f}");
    let ev = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["domain"] == "de1dom1.ru")
        .expect("the create event");
    let reason = ev["reason"].as_str().unwrap();
    assert!(
        reason.contains("flagged") && reason.contains("deldom1.ru"),
        "{reason}"
    );
}

#[tokio::test]
async fn registrar_change_with_auth_code() {
    let s = Server::start(|_| {}).await;
    let (losing, gaining) = (token(REGRU), token(RUCENTER));
    let path = "/api/v1/domains/torgra8.ru/transfer";
    // A wrong code: refused, nothing pending.
    let (st, p) = send(post_json(&s, path, &gaining, json!({"auth_code": "guess"}))).await;
    assert_eq!((st, p["rule"].as_str()), (403, Some("auth-code")), "{p}");
    assert!(domain(&s, "torgra8.ru", &losing).await["pending_transfer"].is_null());
    // Malformed body.
    let (st, _) = send(post_json(&s, path, &gaining, json!({"code": 1}))).await;
    assert_eq!(st, 422);
    // The right one: pending; both registrars list it.
    let (st, v) = send(post_json(
        &s,
        path,
        &gaining,
        json!({"auth_code": "auth-9673b3c89ff5814e"}),
    ))
    .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some(REGRU), Some(RUCENTER))
    );
    for t in [&losing, &gaining] {
        let (_, l) = send(s.get("/api/v1/transfers", Some(t))).await;
        assert_eq!(l["transfers"][0]["domain"], "torgra8.ru", "{l}");
    }
    // A second request while pending.
    let (st, p) = send(post_json(
        &s,
        path,
        &token("R01-RU"),
        json!({"auth_code": "auth-9673b3c89ff5814e"}),
    ))
    .await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("transfer-pending")),
        "{p}"
    );
    // Only the losing registrar approves.
    let (st, _) = send(s.post("/api/v1/domains/torgra8.ru/transfer/approve", &gaining)).await;
    assert_eq!(st, 403);
    let (st, v) = send(s.post("/api/v1/domains/torgra8.ru/transfer/approve", &losing)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["registrar"], RUCENTER);
    let d = domain(&s, "torgra8.ru", &gaining).await;
    assert_eq!(d["transferred"], "2026-11-23T10:00:00Z");
    assert_eq!(d["paid_till"], "2027-09-09T10:00:00Z", "validity unchanged");
    assert_eq!(d["auth_code_set"], false);
    let (st, _) = send(s.get("/api/v1/domains/torgra8.ru", Some(&losing))).await;
    assert_eq!(st, 403);
    // The new sponsor sets a code; a transfer right after is locked.
    let (st, c) = send(s.post("/api/v1/domains/torgra8.ru/auth-code", &gaining)).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["expires"], "2026-12-23T10:00:00Z");
    let code = c["auth_code"].as_str().unwrap().to_string();
    let (st, p) = send(post_json(&s, path, &losing, json!({"auth_code": code}))).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("transfer-lock")),
        "{p}"
    );
    // …and so are registrant change and close (60 days).
    let (st, p) = send(
        s.post("/api/v1/domains/torgra8.ru/close", &gaining)
            .json(&json!({"when": "now"})),
    )
    .await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("registrant-lock")),
        "{p}"
    );

    // Rejection, then automatic approval after the configured period.
    let (_, c) = send(s.post("/api/v1/domains/baro4.ru/auth-code", &losing)).await;
    let code = c["auth_code"].as_str().unwrap().to_string();
    let p4 = "/api/v1/domains/baro4.ru/transfer";
    let (st, _) = send(post_json(&s, p4, &gaining, json!({"auth_code": code}))).await;
    assert_eq!(st, 202);
    let (st, _) = send(s.post("/api/v1/domains/baro4.ru/transfer/reject", &losing)).await;
    assert_eq!(st, 200);
    assert_eq!(domain(&s, "baro4.ru", &losing).await["registrar"], REGRU);
    let (st, _) = send(post_json(&s, p4, &gaining, json!({"auth_code": code}))).await;
    assert_eq!(st, 202);
    s.clock.advance(std::time::Duration::from_secs(5 * 86400));
    let (_, l) = send(s.get("/api/v1/transfers", Some(&gaining))).await;
    assert!(l["transfers"].as_array().unwrap().is_empty(), "{l}");
    assert_eq!(
        domain(&s, "baro4.ru", &gaining).await["registrar"],
        RUCENTER
    );
    // An expired auth code is refused (30 days).
    let (_, c) = send(s.post("/api/v1/domains/vekvekro12.ru/auth-code", &losing)).await;
    s.clock.advance(std::time::Duration::from_secs(30 * 86400));
    let (st, p) = send(post_json(
        &s,
        "/api/v1/domains/vekvekro12.ru/transfer",
        &gaining,
        json!({"auth_code": c["auth_code"]}),
    ))
    .await;
    assert_eq!((st, p["rule"].as_str()), (403, Some("auth-code")), "{p}");

    // The change feed: the losing registrar saw its domains' events in order.
    let (st, f) = send(s.get("/api/v1/events", Some(&losing))).await;
    assert_eq!(st, 200, "{f}");
    let reasons: Vec<String> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["domain"] == "torgra8.ru")
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    // The import's declaration first, then the request, then the approval.
    assert!(
        reasons[0].starts_with("nameservers declared"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("requested"), "{reasons:?}");
    assert!(reasons[2].contains("approved"), "{reasons:?}");
    let cursors: Vec<u64> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    let next = f["next_cursor"].as_str().unwrap();
    let (_, f2) = send(s.get(&format!("/api/v1/events?after={next}"), Some(&losing))).await;
    assert_eq!(f2["events"], json!([]));
    assert_eq!(f2["next_cursor"], next);
    let (st, _) = send(s.get("/api/v1/events?after=x", Some(&losing))).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn close_registrant_change_and_operator_locks() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    // Close at the end of the paid period, revoke, close now: name free.
    let (st, v) = send(post_json(
        &s,
        "/api/v1/domains/vekvekro12.ru/close",
        &tok,
        json!({"when": "end_of_period"}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["closes_at"], "2027-01-13T10:00:00Z");
    assert!(domain(&s, "vekvekro12.ru", &tok).await["lock_statuses"]
        .to_string()
        .contains("pending delete"));
    let (st, _) = send(
        s.http
            .delete(s.url("/api/v1/domains/vekvekro12.ru/close"))
            .bearer_auth(&tok),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = send(post_json(
        &s,
        "/api/v1/domains/vekvekro12.ru/close",
        &tok,
        json!({"when": "soon"}),
    ))
    .await;
    assert_eq!(st, 422);
    let (st, _) = send(post_json(
        &s,
        "/api/v1/domains/vekvekro12.ru/close",
        &tok,
        json!({"when": "now"}),
    ))
    .await;
    assert_eq!(st, 200);
    assert_eq!(rdap_status(&s, "vekvekro12.ru").await, 404);
    let (st, _) = send(s.get("/api/v1/domains/vekvekro12.ru", Some(&tok))).await;
    assert_eq!(st, 404);
    // Free: another registrar registers it.
    let (st, v) = send(post_json(
        &s,
        "/api/v1/domains",
        &token("R01-RU"),
        json!({"name": "vekvekro12.ru", "registrant": "C2-RU"}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(rdap_status(&s, "vekvekro12.ru").await, 200);

    // Registrant change: request, accept; then the 60-day lock.
    let p = "/api/v1/domains/solroba24.ru/registrant-change";
    let (st, _) = send(post_json(&s, p, &tok, json!({"registrant": "NOBODY"}))).await;
    assert_eq!(st, 422);
    let (st, v) = send(post_json(&s, p, &tok, json!({"registrant": "C1-RU"}))).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["pending_registrant"]["to"], "C1-RU");
    assert_eq!(v["registrant"], "C24-RU");
    let (st, v) = send(s.post(&format!("{p}/accept"), &tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["registrant"], "C1-RU");
    let (st, q) = send(post_json(&s, p, &tok, json!({"registrant": "C24-RU"}))).await;
    assert_eq!(
        (st, q["rule"].as_str()),
        (409, Some("registrant-lock")),
        "{q}"
    );
    // zenkator11.ru changed registrar on 2026-10-01: close is locked.
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains/zenkator11.ru/close",
        &token("NAUNET-RU"),
        json!({"when": "now"}),
    ))
    .await;
    assert_eq!(
        (st, q["rule"].as_str()),
        (409, Some("registrant-lock")),
        "{q}"
    );

    // Dispute lock: no transfer or close, still delegatable; hold: nothing.
    let (_, c) = send(s.post("/api/v1/domains/delmimar32.ru/auth-code", &tok)).await;
    let reg = s.app.registry();
    reg.dispute_lock(&Actor::Operator, "delmimar32.ru", "case A40-1/2026")
        .unwrap();
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains/delmimar32.ru/close",
        &tok,
        json!({"when": "now"}),
    ))
    .await;
    assert_eq!((st, q["rule"].as_str()), (409, Some("dispute-lock")), "{q}");
    // Under the lock the sponsor cannot set a new code either.
    let (st, q) = send(s.post("/api/v1/domains/delmimar32.ru/auth-code", &tok)).await;
    assert_eq!((st, q["rule"].as_str()), (409, Some("dispute-lock")), "{q}");
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains/delmimar32.ru/transfer",
        &token(RUCENTER),
        json!({"auth_code": c["auth_code"]}),
    ))
    .await;
    assert_eq!((st, q["rule"].as_str()), (409, Some("dispute-lock")), "{q}");
    let d = domain(&s, "delmimar32.ru", &tok).await;
    assert_eq!(d["lifecycle"]["dispute"], true);
    assert!(d["lifecycle"]["blocks"].as_array().unwrap().is_empty());
    // The registrar sees that a lock was placed, not the operator's note.
    let (_, f) = send(s.get("/api/v1/events", Some(&tok))).await;
    assert!(f.to_string().contains("dispute lock placed"));
    assert!(!f.to_string().contains("A40-1"), "{f}");
    reg.hold(&Actor::Operator, "delmimar32.ru", "court")
        .unwrap();
    let (st, q) = send(s.post("/api/v1/domains/delmimar32.ru/renew", &tok)).await;
    assert_eq!((st, q["rule"].as_str()), (409, Some("hold")), "{q}");
    // Held past its free date: not cancelled by time.
    s.clock
        .advance(std::time::Duration::from_secs(2 * 365 * 86400));
    assert_eq!(rdap_status(&s, "delmimar32.ru").await, 200);
    assert_eq!(rdap_status(&s, "torgra8.ru").await, 404);
    // A court decision cancels it and reserves the name for the claimant.
    reg.court_cancel(&Actor::Operator, "delmimar32.ru", "C5-RU")
        .unwrap();
    drop(reg);
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains",
        &tok,
        json!({"name": "delmimar32.ru", "registrant": "C8-RU"}),
    ))
    .await;
    assert_eq!(
        (st, q["rule"].as_str()),
        (409, Some("court-reservation")),
        "{q}"
    );
    // The losing side's competitor cannot use the claimant's contact.
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains",
        &token("R01-RU"),
        json!({"name": "delmimar32.ru", "registrant": "C5-RU"}),
    ))
    .await;
    assert_eq!(
        (st, q["rule"].as_str()),
        (409, Some("contact-sponsor")),
        "{q}"
    );
    let (st, v) = send(post_json(
        &s,
        "/api/v1/domains",
        &tok,
        json!({"name": "delmimar32.ru", "registrant": "C5-RU"}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    // The bypass of docs/epp.md "Ownership": the claimant's handle is in no
    // registrar's feed, another registrar cannot register the name for it,
    // and the claimant's registration cannot be passed on at once.
    for r in [REGRU, "R01-RU", "RUCENTER-RU", "NAUNET-RU"] {
        let (_, f) = send(s.get("/api/v1/events?after=0", Some(&token(r)))).await;
        assert!(!f.to_string().contains("C5-RU"), "{r}: {f}");
    }
    let (st, q) = send(s.post("/api/v1/domains/delmimar32.ru/registrant-change", &tok)).await;
    assert!(st >= 400, "{q}");
    let (st, q) = send(post_json(
        &s,
        "/api/v1/domains/delmimar32.ru/registrant-change",
        &tok,
        json!({"registrant": "C8-RU"}),
    ))
    .await;
    assert_eq!(
        (st, q["rule"].as_str()),
        (409, Some("registrant-lock")),
        "{q}"
    );
}

/// The sponsor asks its registrant to verify (the registry's request, from
/// the registrar): pending at once and in the feed; a second request while
/// one is pending cannot restart the clock; another registrar cannot ask;
/// unanswered past `lifecycle.verification_suspend` it is overdue like an
/// operator's request, and the answer lifts it.
#[tokio::test]
async fn registrar_requests_verification() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    let path = "/api/v1/domains/torgra8.ru/verification-request";
    let (st, p) = send(s.post(path, &token(RUCENTER))).await;
    assert_eq!((st, p["rule"].as_str()), (403, Some("forbidden")), "{p}");
    let (st, v) = send(s.post(path, &tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["lifecycle"]["verification_pending"], true, "{v}");
    let (st, p) = send(s.post(path, &tok)).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("request-pending")),
        "{p}"
    );
    let (st, feed) = send(s.get("/api/v1/events?limit=1000", Some(&tok))).await;
    assert_eq!(st, 200);
    assert!(
        feed.to_string().contains("verification requested"),
        "{feed}"
    );
    // 15 days unanswered: overdue, renewal refused as for the operator's.
    s.clock.advance(std::time::Duration::from_secs(15 * 86400));
    let (st, p) = send(s.post("/api/v1/domains/torgra8.ru/renew", &tok)).await;
    assert_eq!(
        (st, p["rule"].as_str()),
        (409, Some("verification-overdue")),
        "{p}"
    );
    let (st, _) = send(s.post("/api/v1/domains/torgra8.ru/verification", &tok)).await;
    assert_eq!(st, 200);
    let v = domain(&s, "torgra8.ru", &tok).await;
    assert_eq!(v["lifecycle"]["verification_pending"], false, "{v}");
}

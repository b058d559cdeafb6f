//! Registrar API end to end: a real server on loopback, real HTTP client,
//! a store loaded from the sample registry.

use crate::support;
use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use support::api::{send, start_time, token, Server};
use zonekeeper::model::{DelegationRecord, DelegationState, ServerDowntime};
use zonekeeper::names::HostName;
use zonekeeper::registry::Actor;

const REGRU: &str = "REGRU-RU";
const RUCENTER: &str = "RUCENTER-RU";

fn ns_pair() -> serde_json::Value {
    json!({"nameservers": [
        {"name": "ns1.hosting-a.example"},
        {"name": "ns2.hosting-b.example"}
    ]})
}

#[tokio::test]
async fn authorization_matrix() {
    let s = Server::start(|_| {}).await;
    let own = s.domains_of(REGRU, 1).remove(0);
    let theirs = s.domains_of(RUCENTER, 1).remove(0);
    let path = |d: &str| format!("/api/v1/domains/{d}/delegation");
    let good = token(REGRU);

    // No token, a bad token, a wrong scheme: 401 with a challenge.
    let res = s.get(&path(&own), None).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"zonekeeper\""
    );
    let (st, p) = send(s.get(&path(&own), Some("token-nobody"))).await;
    assert_eq!(st, 401, "{p}");
    let (st, _) = send(
        s.http
            .get(s.url(&path(&own)))
            .header("authorization", format!("Basic {good}")),
    )
    .await;
    assert_eq!(st, 401);
    // A token's hash is not a token.
    let hash = s
        .store()
        .registrar(REGRU)
        .unwrap()
        .unwrap()
        .api_token_sha256
        .unwrap();
    assert_eq!(send(s.get(&path(&own), Some(&hash))).await.0, 401);
    // Every route wants a token, even for a name that does not exist.
    assert_eq!(send(s.get(&path("nosuchname.ru"), None)).await.0, 401);
    assert_eq!(send(s.get("/api/v1/domains", None)).await.0, 401);
    assert_eq!(
        send(
            s.http
                .put(s.url(&format!("/api/v1/domains/{own}/nameservers")))
                .json(&ns_pair())
        )
        .await
        .0,
        401
    );
    assert_eq!(
        send(s.http.post(s.url(&format!("/api/v1/domains/{own}/retest"))))
            .await
            .0,
        401
    );
    assert_eq!(
        send(s.http.post(s.url("/api/v1/check")).json(&json!({})))
            .await
            .0,
        401
    );

    // Another registrar's domain: 403 for read and write, with no data.
    let (st, p) = send(s.get(&path(&theirs), Some(&good))).await;
    assert_eq!(st, 403);
    assert_eq!(p["type"], "urn:zonekeeper:problem:forbidden");
    assert!(p.get("state").is_none());
    let (st, _) = send(s.put_json(
        &format!("/api/v1/domains/{theirs}/nameservers"),
        &good,
        ns_pair(),
    ))
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        send(s.post(&format!("/api/v1/domains/{theirs}/retest"), &good))
            .await
            .0,
        403
    );
    // The other registrar's own token works there.
    assert_eq!(
        send(s.get(&path(&theirs), Some(&token(RUCENTER)))).await.0,
        200
    );

    // Own domain: 200, in any case and as a U-label.
    let (st, v) = send(s.get(&path(&own.to_uppercase()), Some(&good))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["domain"], own);
    // Unregistered name: 404; a name breaking the rules: 400 naming the rule.
    let (st, p) = send(s.get(&path("nosuchname.ru"), Some(&good))).await;
    assert_eq!(st, 404);
    assert_eq!(p["type"], "urn:zonekeeper:problem:not-found");
    let (st, p) = send(s.get(&path("a_b.ru"), Some(&good))).await;
    assert_eq!(st, 400);
    assert!(p["detail"].as_str().unwrap().contains("LDH"), "{p}");
    let (st, _) = send(s.get(&path("example.com"), Some(&good))).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn idn_names_work_in_both_forms() {
    let s = Server::start(|_| {}).await;
    // соксад3.рф belongs to NAUNET-RU in the sample.
    let (st, v) = send(s.get(
        "/api/v1/domains/%D1%81%D0%BE%D0%BA%D1%81%D0%B0%D0%B43.%D1%80%D1%84/delegation",
        Some(&token("NAUNET-RU")),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["unicode_name"], "соксад3.рф");
    let ascii = v["domain"].as_str().unwrap().to_string();
    assert!(ascii.starts_with("xn--"));
    let (st, _) = send(s.get(
        &format!("/api/v1/domains/{ascii}/delegation"),
        Some(&token("NAUNET-RU")),
    ))
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn cancelled_registration_is_not_found() {
    let s = Server::start(|_| {}).await;
    // prokami9.ru (RUCENTER-RU) has a verification request from 2026-11-01;
    // unanswered for 60 days the registration is cancelled.
    let path = "/api/v1/domains/prokami9.ru/delegation";
    assert_eq!(send(s.get(path, Some(&token(RUCENTER)))).await.0, 200);
    s.clock.advance(Duration::from_secs(62 * 86400));
    let (st, p) = send(s.get(path, Some(&token(RUCENTER)))).await;
    assert_eq!(st, 404, "{p}");
    // Same answer for everyone: no hint that it was someone's.
    assert_eq!(send(s.get(path, Some(&token(REGRU)))).await.0, 404);
}

#[tokio::test]
async fn declare_starts_testing_and_wakes_the_scheduler() {
    // Loopback glue is accepted only where the prober may reach loopback.
    let s = Server::start(|c| c.probe.allow_loopback_targets = true).await;
    // A REGRU-RU domain without nameservers (every 20th of the sample).
    let own = "findomsky0.ru";
    let tok = token(REGRU);
    let (st, v) = send(s.get(&format!("/api/v1/domains/{own}/delegation"), Some(&tok))).await;
    assert_eq!(st, 200);
    assert_eq!(v["state"], "undelegated");

    let body = json!({"nameservers": [
        {"name": "NS1.findomsky0.ru.", "addresses": ["127.0.0.10", "::1"]},
        {"name": "ns2.hosting-b.example"}
    ]});
    let (st, v) = send(s.put_json(&format!("/api/v1/domains/{own}/nameservers"), &tok, body)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing");
    assert_eq!(v["in_zone"], false);
    assert_eq!(v["window_start"], "2026-11-23T10:00:00Z");
    assert_eq!(v["window_end"], "2026-11-27T10:00:00Z");
    assert_eq!(v["window_remaining_secs"], 4 * 86400);
    assert_eq!(v["nameservers"][0]["name"], "ns1.findomsky0.ru");
    assert_eq!(v["downtime"]["budget_secs"], 7200);
    assert_eq!(v["downtime"]["servers"].as_array().unwrap().len(), 2);
    tokio::time::timeout(Duration::from_secs(1), s.app.scheduler_wake().notified())
        .await
        .expect("the scheduler was woken");

    // Stored, and visible through GET.
    let d = s.store().domain(own).unwrap().unwrap();
    assert_eq!(d.nameservers.len(), 2);
    let (_, v) = send(s.get(&format!("/api/v1/domains/{own}/delegation"), Some(&tok))).await;
    assert_eq!(v["state"], "testing");
    assert_eq!(v["rounds"], 0);
    assert_eq!(v["next_probe"], "2026-11-23T10:00:00Z");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to"], "testing");
    assert!(last["reason"]
        .as_str()
        .unwrap()
        .contains("ns1.findomsky0.ru"));

    // The same set again, reordered, an hour later: the window stays.
    s.clock.advance(Duration::from_secs(3600));
    let again = json!({"nameservers": [
        {"name": "ns2.hosting-b.example"},
        {"name": "ns1.findomsky0.ru", "addresses": ["::1", "127.0.0.10"]}
    ]});
    let (st, v) =
        send(s.put_json(&format!("/api/v1/domains/{own}/nameservers"), &tok, again)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["window_start"], "2026-11-23T10:00:00Z");

    // Removing all nameservers: undelegated.
    let (st, v) = send(s.put_json(
        &format!("/api/v1/domains/{own}/nameservers"),
        &tok,
        json!({"nameservers": []}),
    ))
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["state"], "undelegated");
}

#[tokio::test]
async fn bad_nameserver_sets_are_422_and_change_nothing() {
    let s = Server::start(|_| {}).await;
    let own = s.domains_of(REGRU, 3).remove(1);
    let tok = token(REGRU);
    let before = s.store().domain(&own).unwrap().unwrap();
    let before_rec = s.store().delegation(&own).unwrap();
    let path = format!("/api/v1/domains/{own}/nameservers");
    let cases = [
        (
            json!({"nameservers": [{"name": "ns1.hosting-a.example"}]}),
            "nameservers",
            "at least 2",
        ),
        (
            json!({"nameservers": [{"name": "ns1.hosting-a.example"}, {"name": "NS1.hosting-a.example."}]}),
            "nameservers[1].name",
            "twice",
        ),
        (
            json!({"nameservers": [{"name": format!("ns1.{own}")}, {"name": "ns2.hosting-b.example"}]}),
            "nameservers[0].addresses",
            "glue",
        ),
        (
            json!({"nameservers": [{"name": "ns1.hosting-a.example", "addresses": ["192.0.2.1"]}, {"name": "ns2.hosting-b.example"}]}),
            "nameservers[0].addresses",
            "outside",
        ),
        (
            json!({"nameservers": [{"name": format!("ns1.{own}"), "addresses": ["300.1.1.1"]}, {"name": "ns2.hosting-b.example"}]}),
            "nameservers[0].addresses[0]",
            "not an IPv4",
        ),
        (
            json!({"nameservers": [{"name": "ns1..example"}, {"name": "ns2.hosting-b.example"}]}),
            "nameservers[0].name",
            "empty label",
        ),
        (
            json!({"nameservers": [{"name": format!("ns1.{own}"), "addresses": ["127.0.0.9"]}, {"name": format!("ns2.{own}"), "addresses": ["127.0.0.9"]}]}),
            "nameservers[1].addresses[0]",
            "distinct",
        ),
    ];
    for (body, field, words) in cases {
        let (st, p) = send(s.put_json(&path, &tok, body.clone())).await;
        assert_eq!(st, 422, "{body} -> {p}");
        assert_eq!(p["type"], "urn:zonekeeper:problem:invalid");
        let errs = p["errors"].as_array().unwrap();
        assert!(
            errs.iter()
                .any(|e| e["field"] == field && e["reason"].as_str().unwrap().contains(words)),
            "{body} -> {p}"
        );
    }
    assert_eq!(s.store().domain(&own).unwrap().unwrap(), before);
    assert_eq!(s.store().delegation(&own).unwrap(), before_rec);
}

#[tokio::test]
async fn malformed_bodies() {
    let s = Server::start(|c| c.http.max_body_bytes = 2048).await;
    let own = s.domains_of(REGRU, 1).remove(0);
    let tok = token(REGRU);
    let url = s.url(&format!("/api/v1/domains/{own}/nameservers"));
    let put = |body: String, ct: &str| {
        s.http
            .put(&url)
            .bearer_auth(&tok)
            .header("content-type", ct)
            .body(body)
    };
    // Not JSON / truncated JSON: 400.
    let (st, p) = send(put("{\"nameservers\": [".into(), "application/json")).await;
    assert_eq!(st, 400, "{p}");
    assert_eq!(p["type"], "urn:zonekeeper:problem:bad-json");
    assert_eq!(
        send(put("nameservers=1".into(), "application/json"))
            .await
            .0,
        400
    );
    // Unknown fields, at the top and inside a nameserver: 422 naming the field.
    let (st, p) = send(put(
        json!({"nameservers": [], "ttl": 5}).to_string(),
        "application/json",
    ))
    .await;
    assert_eq!(st, 422);
    assert!(p["detail"].as_str().unwrap().contains("ttl"), "{p}");
    let (st, p) = send(put(
        json!({"nameservers": [{"name": "a.example", "glue": []}, {"name": "b.example"}]})
            .to_string(),
        "application/json",
    ))
    .await;
    assert_eq!(st, 422);
    assert!(p["detail"].as_str().unwrap().contains("glue"), "{p}");
    // Wrong types and missing fields: 422.
    assert_eq!(
        send(put(
            json!({"nameservers": "ns1"}).to_string(),
            "application/json"
        ))
        .await
        .0,
        422
    );
    assert_eq!(
        send(put(json!({}).to_string(), "application/json")).await.0,
        422
    );
    // Not declared as JSON: 415.
    assert_eq!(send(put(ns_pair().to_string(), "text/plain")).await.0, 415);
    assert_eq!(
        send(
            s.http
                .put(&url)
                .bearer_auth(&tok)
                .body(ns_pair().to_string())
        )
        .await
        .0,
        415
    );
    // Over the size limit, with and without a Content-Length: 413.
    let big = json!({"nameservers": [{"name": "x".repeat(4000)}]}).to_string();
    let (st, p) = send(put(big.clone(), "application/json")).await;
    assert_eq!(st, 413, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("2048"));
    // Chunked, so the server cannot know the size up front.
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!(
        "PUT /api/v1/domains/{own}/nameservers HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for c in big.as_bytes().chunks(500) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            c.len(),
            std::str::from_utf8(c).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = conn.write_all(req.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Still serving.
    assert_eq!(
        send(s.put_json(
            &format!("/api/v1/domains/{own}/nameservers"),
            &tok,
            ns_pair()
        ))
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn hold_refuses_changes() {
    let s = Server::start(|_| {}).await;
    // solkazen7.ru (NAUNET-RU) is on hold in the sample.
    let tok = token("NAUNET-RU");
    let (st, v) = send(s.get("/api/v1/domains/solkazen7.ru/delegation", Some(&tok))).await;
    assert_eq!(st, 200);
    assert_eq!(v["lifecycle"]["hold"], true);
    assert_eq!(v["in_zone"], false);
    let (st, p) =
        send(s.put_json("/api/v1/domains/solkazen7.ru/nameservers", &tok, ns_pair())).await;
    assert_eq!(st, 409);
    assert_eq!(p["type"], "urn:zonekeeper:problem:hold");
    assert!(p["detail"].as_str().unwrap().contains("hold"));
    // The registry's hold reason is not shown to the registrar.
    s.app
        .registry()
        .hold(&Actor::Operator, "solkazen7.ru", "court case 77-INTERNAL")
        .unwrap();
    let (_, v) = send(s.get("/api/v1/domains/solkazen7.ru/delegation", Some(&tok))).await;
    assert!(!v.to_string().contains("77-INTERNAL"), "{v}");
    assert!(v.to_string().contains("hold placed"), "{v}");
    let (st, p) = send(s.post("/api/v1/domains/solkazen7.ru/retest", &tok)).await;
    assert_eq!(st, 409);
    assert_eq!(p["type"], "urn:zonekeeper:problem:hold");
    // Released: changes are accepted again.
    s.app
        .registry()
        .release(&Actor::Operator, "solkazen7.ru")
        .unwrap();
    assert_eq!(
        send(s.put_json("/api/v1/domains/solkazen7.ru/nameservers", &tok, ns_pair()))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn retest_after_test_failed() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    // No nameservers: nothing to retest.
    let (st, p) = send(s.post("/api/v1/domains/findomsky0.ru/retest", &tok)).await;
    assert_eq!(st, 409, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("no nameservers"));
    // A failed test window: retest starts a new one.
    let (_, v) =
        send(s.put_json("/api/v1/domains/findomsky0.ru/nameservers", &tok, ns_pair())).await;
    assert_eq!(v["state"], "testing");
    let rec = s.store().delegation("findomsky0.ru").unwrap().unwrap();
    let failed = DelegationRecord {
        state: DelegationState::TestFailed,
        rounds: 9,
        next_probe: None,
        ..rec.clone()
    };
    assert!(s
        .store()
        .put_delegation("findomsky0.ru", &rec.ns_fingerprint, &failed, None, None)
        .unwrap());
    s.clock.advance(Duration::from_secs(5 * 86400));
    let (_, v) = send(s.get("/api/v1/domains/findomsky0.ru/delegation", Some(&tok))).await;
    assert_eq!(v["state"], "test_failed");
    assert_eq!(v["window_remaining_secs"], serde_json::Value::Null);
    let (st, v) = send(s.post("/api/v1/domains/findomsky0.ru/retest", &tok)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing");
    assert_eq!(v["rounds"], 0);
    assert_eq!(v["window_start"], "2026-11-28T10:00:00Z");
    // Delegated: monitoring already runs.
    let rec = s.store().delegation("findomsky0.ru").unwrap().unwrap();
    let delegated = DelegationRecord {
        state: DelegationState::Delegated,
        ..rec.clone()
    };
    s.store()
        .put_delegation("findomsky0.ru", &rec.ns_fingerprint, &delegated, None, None)
        .unwrap();
    let (st, p) = send(s.post("/api/v1/domains/findomsky0.ru/retest", &tok)).await;
    assert_eq!(st, 409);
    assert!(p["detail"].as_str().unwrap().contains("delegated"));
}

#[tokio::test]
async fn delegation_shows_downtime_today_per_server() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    send(s.put_json("/api/v1/domains/findomsky0.ru/nameservers", &tok, ns_pair())).await;
    let rec = s.store().delegation("findomsky0.ru").unwrap().unwrap();
    // The accounting day starts at 00:00 Moscow time = 21:00 UTC.
    let today = chrono::DateTime::parse_from_rfc3339("2026-11-22T21:00:00Z")
        .unwrap()
        .to_utc();
    let with_downtime = DelegationRecord {
        downtime: vec![
            ServerDowntime {
                server: HostName::from_trusted("ns1.hosting-a.example".into()),
                period_start: today,
                unreachable_secs: 1800,
                unreachable_ms: 1_800_000,
                last_reachable: Some(false),
                last_probe: Some(start_time()),
                address: None,
                unmeasured_ms: 0,
            },
            ServerDowntime {
                server: HostName::from_trusted("ns2.hosting-b.example".into()),
                period_start: today - chrono::Duration::days(1),
                unreachable_secs: 5000,
                unreachable_ms: 5_000_000,
                last_reachable: Some(true),
                last_probe: Some(start_time()),
                address: None,
                unmeasured_ms: 0,
            },
        ],
        rounds: 3,
        ..rec.clone()
    };
    s.store()
        .put_delegation(
            "findomsky0.ru",
            &rec.ns_fingerprint,
            &with_downtime,
            None,
            None,
        )
        .unwrap();
    let (_, v) = send(s.get("/api/v1/domains/findomsky0.ru/delegation", Some(&tok))).await;
    let d = &v["downtime"];
    assert_eq!(d["period_start"], "2026-11-22T21:00:00Z");
    assert_eq!(d["period_end"], "2026-11-23T21:00:00Z");
    assert_eq!(d["servers"][0]["server"], "ns1.hosting-a.example");
    assert_eq!(d["servers"][0]["unreachable_secs"], 1800);
    assert_eq!(d["servers"][0]["remaining_secs"], 5400);
    assert_eq!(d["servers"][0]["last_reachable"], false);
    // Yesterday's figure does not count today.
    assert_eq!(d["servers"][1]["unreachable_secs"], 0);
    assert_eq!(v["rounds"], 3);
}

#[tokio::test]
async fn list_is_paged_and_only_own() {
    let s = Server::start(|c| c.api.page_size = 20).await;
    let tok = token(REGRU);
    let all_own: BTreeSet<String> = s.domains_of(REGRU, 1000).into_iter().collect();
    assert!(all_own.len() > 40);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/domains?limit=15&cursor={c}"),
            None => "/api/v1/domains?limit=15".to_string(),
        };
        let (st, v) = send(s.get(&path, Some(&tok))).await;
        assert_eq!(st, 200, "{v}");
        let items = v["domains"].as_array().unwrap();
        assert!(items.len() <= 15);
        for it in items {
            assert!(seen.insert(it["name"].as_str().unwrap().to_string()));
        }
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100);
    }
    assert_eq!(seen, all_own);
    // A limit above the page size is capped.
    let (_, v) = send(s.get("/api/v1/domains?limit=500", Some(&tok))).await;
    assert_eq!(v["domains"].as_array().unwrap().len(), 20);

    // By state: only own domains in that state.
    send(s.put_json("/api/v1/domains/findomsky0.ru/nameservers", &tok, ns_pair())).await;
    let (_, v) = send(s.get("/api/v1/domains?state=testing&limit=20", Some(&tok))).await;
    let mut testing = BTreeSet::new();
    let mut v = v;
    loop {
        for it in v["domains"].as_array().unwrap() {
            assert_eq!(it["state"], "testing");
            testing.insert(it["name"].as_str().unwrap().to_string());
        }
        let Some(c) = v["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        v = send(s.get(
            &format!("/api/v1/domains?state=testing&cursor={c}"),
            Some(&tok),
        ))
        .await
        .1;
    }
    assert!(testing.contains("findomsky0.ru"));
    assert!(testing.is_subset(&all_own));
    let (_, v) = send(s.get("/api/v1/domains?state=undelegated", Some(&tok))).await;
    assert!(v["domains"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["state"] == "undelegated"));
    assert!(!v["domains"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "findomsky0.ru"));
    // Bad queries: 400 with a clear problem.
    let (st, p) = send(s.get("/api/v1/domains?state=flying", Some(&tok))).await;
    assert_eq!(st, 400);
    assert!(p["detail"].as_str().unwrap().contains("test_failed"));
    assert_eq!(
        send(s.get("/api/v1/domains?colour=red", Some(&tok)))
            .await
            .0,
        400
    );
    assert_eq!(
        send(s.get("/api/v1/domains?limit=-1", Some(&tok))).await.0,
        400
    );
}

#[tokio::test]
async fn rate_limited_per_token() {
    let s = Server::start(|c| c.api.rate_limit_per_minute = 5).await;
    let own = s.domains_of(REGRU, 1).remove(0);
    let path = format!("/api/v1/domains/{own}/delegation");
    for _ in 0..5 {
        assert_eq!(send(s.get(&path, Some(&token(REGRU)))).await.0, 200);
    }
    let res = s.get(&path, Some(&token(REGRU))).send().await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=13).contains(&wait), "{wait}");
    // Another registrar has its own allowance.
    let theirs = s.domains_of(RUCENTER, 1).remove(0);
    assert_eq!(
        send(s.get(
            &format!("/api/v1/domains/{theirs}/delegation"),
            Some(&token(RUCENTER))
        ))
        .await
        .0,
        200
    );
    // Requests without a valid token are limited per client address.
    let mut codes = Vec::new();
    for _ in 0..7 {
        codes.push(send(s.get(&path, Some("wrong"))).await.0);
    }
    assert_eq!(&codes[..5], &[401; 5]);
    assert_eq!(codes[6], 429);
}

#[tokio::test]
async fn new_and_rotated_registrar_tokens_work_without_restart() {
    let s = Server::start(|_| {}).await;
    let path = "/api/v1/domains?limit=1";
    assert_eq!(send(s.get(path, Some("token-newreg-ru"))).await.0, 401);
    let batch = zonekeeper::store::ImportBatch {
        registrars: vec![zonekeeper::model::Registrar {
            handle: "NEWREG-RU".into(),
            name: "New Registrar".into(),
            url: None,
            email: None,
            api_token_sha256: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                b"token-newreg-ru",
            ))),
            epp_cert_sha256: Vec::new(),
            epp_password_hash: None,
            epp_poll_acked: 0,
        }],
        ..Default::default()
    };
    zonekeeper::import::apply(s.store(), &batch, s.app.config(), start_time()).unwrap();
    s.clock.advance(zonekeeper::api::auth::MISS_RELOAD_MIN);
    let (st, v) = send(s.get(path, Some("token-newreg-ru"))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["domains"], json!([]));

    // Rotation: the old token stops working within a second, the new one
    // works, with no restart (the same bound as any change between
    // processes).
    let mut rotated = batch.clone();
    rotated.registrars[0].api_token_sha256 = Some(hex::encode(
        <sha2::Sha256 as sha2::Digest>::digest(b"token-newreg-ru-2"),
    ));
    zonekeeper::import::apply(s.store(), &rotated, s.app.config(), start_time()).unwrap();
    s.clock.advance(zonekeeper::api::auth::CACHE_TTL);
    assert_eq!(send(s.get(path, Some("token-newreg-ru"))).await.0, 401);
    assert_eq!(send(s.get(path, Some("token-newreg-ru-2"))).await.0, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let s = Server::start(|_| {}).await;
    let (st, p) = send(s.get("/api/v1/nothing-here", Some(&token(REGRU)))).await;
    assert_eq!(st, 404);
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("/api/v1/nothing-here"));
    assert_eq!(send(s.get("/api/v1", None)).await.0, 404);
    let (st, _) = send(
        s.http
            .delete(s.url("/api/v1/domains"))
            .bearer_auth(token(REGRU)),
    )
    .await;
    assert_eq!(st, 405);
}

/// The OpenAPI document and the router describe the same API: every route
/// of the router's table is in the document with its method, and the
/// document has nothing more; every documented operation is served, and the
/// other methods on its path are 405.
#[tokio::test]
async fn openapi_matches_the_router() {
    let s = Server::start(|_| {}).await;
    let (st, doc) = send(s.get("/api/v1/openapi.json", None)).await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path}");
            // Generated clients name their calls after operationId.
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId {id:?}"
            );
            assert!(ids.insert(id.to_string()), "{method} {path}: {id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = zonekeeper::api::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routed);

    let own = s.domains_of(REGRU, 1).remove(0);
    let methods = ["GET", "PUT", "POST", "DELETE", "PATCH"];
    for (method, path) in &routed {
        let concrete = path.replace("{name}", &own);
        for m in methods {
            let res = s
                .http
                .request(m.parse().unwrap(), s.url(&concrete))
                .bearer_auth(token(REGRU))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let code = res.status().as_u16();
            let body = res.text().await.unwrap();
            let allowed = routed.contains(&(m.to_string(), path.clone()));
            if allowed {
                assert!(
                    code != 405 && !body.contains("no API resource"),
                    "{m} {path}: {code} {body}"
                );
            } else {
                assert_eq!(code, 405, "{m} {path} ({method} documented): {body}");
            }
        }
    }
}

#[tokio::test]
async fn check_validates_before_probing() {
    let s = Server::start(|_| {}).await;
    let tok = token(REGRU);
    let cases = [
        (
            json!({"domain": "bad_name.ru", "nameservers": [{"name": "a.example"}, {"name": "b.example"}]}),
            "domain",
        ),
        (
            json!({"domain": "new-name.ru", "nameservers": []}),
            "nameservers",
        ),
        (
            json!({"domain": "new-name.ru", "nameservers": [{"name": "a.example"}]}),
            "nameservers",
        ),
        (
            json!({"domain": "new-name.ru", "nameservers": [{"name": "ns1.new-name.ru"}, {"name": "b.example"}]}),
            "nameservers[0].addresses",
        ),
        // Test ports need loopback and probe.allow_private_targets.
        (
            json!({"domain": "new-name.ru", "nameservers": [{"name": "ns1.new-name.ru", "addresses": ["127.0.0.1:5353"]}, {"name": "b.example"}]}),
            "nameservers[0].addresses[0]",
        ),
        (
            json!({"domain": "new-name.ru", "nameservers": [{"name": "ns1.new-name.ru", "addresses": ["192.0.2.1:5353"]}, {"name": "b.example"}]}),
            "nameservers[0].addresses[0]",
        ),
    ];
    for (body, field) in cases {
        let (st, p) = send(
            s.http
                .post(s.url("/api/v1/check"))
                .bearer_auth(&tok)
                .json(&body),
        )
        .await;
        assert_eq!(st, 422, "{body} -> {p}");
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body} -> {p}"
        );
    }
    let (st, p) = send(
        s.http
            .post(s.url("/api/v1/check"))
            .bearer_auth(&tok)
            .json(&json!({"domain": "new-name.ru", "nameservers": [{"name": "a.example"}, {"name": "b.example"}], "extra": 1})),
    )
    .await;
    assert_eq!(st, 422, "{p}");
}

/// The document the server serves is valid OpenAPI 3.1 by a real validator
/// (`openapi-spec-validator` from PyPI, put in a venv by `.ci/run`; found
/// through `OPENAPI_SPEC_VALIDATOR` or `PATH`). Without it the test fails
/// under `CI=true` and is skipped with a notice otherwise.
#[tokio::test]
async fn served_openapi_passes_a_real_validator() {
    let tool = std::env::var_os("OPENAPI_SPEC_VALIDATOR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("openapi-spec-validator"))
                    .find(|p| p.is_file())
            })
        });
    let Some(tool) = tool.filter(|p| p.is_file()) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("openapi-spec-validator is required under CI=true");
        }
        eprintln!("SKIPPED served_openapi_passes_a_real_validator: no openapi-spec-validator");
        return;
    };
    let s = Server::start(|_| {}).await;
    let res = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new(&tool)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! One glue rule at every edge (`registry::input::glue_refusal`):
//! unspecified, loopback, multicast, broadcast, link-local and reserved
//! addresses are refused by the REST API (422), EPP (2005), the registry
//! the control socket calls, and import (with the record's index and the
//! reason); loopback passes where `probe.allow_loopback_targets` is set.

use crate::epp::{domain_cmd, start};
use crate::support;
use serde_json::json;
use support::api::{send, token, Server};
use support::epp::code;
use zonekeeper::config::Config;
use zonekeeper::registry::{Actor, NameserverIn};

const BAD: &[&str] = &[
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "169.254.169.254",
    "240.0.0.1",
    "::",
    "::1",
    "fe80::1",
    "127.0.0.1",
];

fn undelegated(s: &Server, registrar: &str) -> String {
    s.domains_of(registrar, 1000)
        .into_iter()
        .find(|n| s.store().domain(n).unwrap().unwrap().nameservers.is_empty())
        .expect("an undelegated fixture domain")
}

#[tokio::test]
async fn rest_and_registry_refuse_unusable_glue() {
    let s = Server::start(|_| {}).await;
    let tok = token("REGRU-RU");
    let own = undelegated(&s, "REGRU-RU");
    for ip in BAD {
        let body = json!({"nameservers": [
            {"name": format!("ns1.{own}"), "addresses": ["192.0.2.10", ip]},
            {"name": "ns2.hosting-b.example"}
        ]});
        let (st, v) =
            send(s.put_json(&format!("/api/v1/domains/{own}/nameservers"), &tok, body)).await;
        assert_eq!(st, 422, "{ip}: {v}");
        assert_eq!(
            v["errors"][0]["field"], "nameservers[0].addresses[1]",
            "{ip}: {v}"
        );
        // Create too.
        let (st, v) = send(
            s.http
                .post(s.url("/api/v1/domains"))
                .bearer_auth(&tok)
                .json(&json!({
                "name": "plohoj-glue.ru", "registrant": "C1-RU",
                "nameservers": [{"name": "ns1.plohoj-glue.ru", "addresses": [ip]},
                                {"name": "ns2.hosting-b.example"}]})),
        )
        .await;
        assert_eq!(st, 422, "{ip}: {v}");
    }
    assert!(s
        .store()
        .domain(&own)
        .unwrap()
        .unwrap()
        .nameservers
        .is_empty());
    // The registry operation the control socket and EPP call.
    let reg = s.app.registry();
    let ns = vec![
        NameserverIn {
            name: format!("ns1.{own}"),
            addresses: vec!["169.254.169.254".into()],
        },
        NameserverIn {
            name: "ns2.hosting-b.example".into(),
            addresses: vec![],
        },
    ];
    let e = reg
        .declare_nameservers(&Actor::Operator, &own, &ns)
        .unwrap_err();
    assert_eq!(e.rule(), "invalid");
    assert!(e.to_string().contains("link-local"), "{e}");
    // Documentation and private ranges are real addresses: accepted.
    let ok = vec![
        NameserverIn {
            name: format!("ns1.{own}"),
            addresses: vec!["192.0.2.10".into(), "10.1.2.3".into()],
        },
        NameserverIn {
            name: "ns2.hosting-b.example".into(),
            addresses: vec![],
        },
    ];
    reg.declare_nameservers(&Actor::Operator, &own, &ok)
        .unwrap();
}

#[tokio::test]
async fn loopback_glue_only_where_the_prober_may_reach_loopback() {
    let s = Server::start(|c| c.probe.allow_loopback_targets = true).await;
    let tok = token("REGRU-RU");
    let own = undelegated(&s, "REGRU-RU");
    let body = json!({"nameservers": [
        {"name": format!("ns1.{own}"), "addresses": ["127.0.53.1", "::1"]},
        {"name": "ns2.hosting-b.example"}
    ]});
    let (st, v) = send(s.put_json(&format!("/api/v1/domains/{own}/nameservers"), &tok, body)).await;
    assert_eq!(st, 200, "{v}");
    // The rest stays refused.
    let body = json!({"nameservers": [
        {"name": format!("ns1.{own}"), "addresses": ["0.0.0.0"]},
        {"name": "ns2.hosting-b.example"}
    ]});
    let (st, v) = send(s.put_json(&format!("/api/v1/domains/{own}/nameservers"), &tok, body)).await;
    assert_eq!(st, 422, "{v}");
}

#[test]
fn import_names_the_record_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    std::fs::write(
        &f,
        r#"{"registrars": [{"handle": "R1", "name": "Registrar One"}],
 "contacts": [{"handle": "C1", "kind": "person", "name": "Ivan Petrov"}],
 "domains": [
  {"name": "good.ru", "registrar": "R1", "registrant": "C1", "created": "2025-03-01T10:00:00Z",
   "nameservers": [{"name": "ns1.good.ru", "addresses": ["192.0.2.1"]}, {"name": "ns.x.net"}]},
  {"name": "bad.ru", "registrar": "R1", "registrant": "C1", "created": "2025-03-01T10:00:00Z",
   "nameservers": [{"name": "ns1.bad.ru", "addresses": ["192.0.2.2", "240.0.0.1"]}, {"name": "ns.x.net"}]}
 ]}"#,
    )
    .unwrap();
    let now = chrono::Utc::now();
    let e = zonekeeper::import::read_file(&f, &Config::default(), now).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("domains[1]"), "{text}");
    assert!(text.contains("nameservers[0].addresses[1]"), "{text}");
    assert!(text.contains("240.0.0.0/4"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn epp_refuses_unusable_glue_with_2005() {
    let env = start(|_| {}).await;
    tokio::task::spawn_blocking(move || {
        let mut a = env.logged_in(0);
        let host = |inner: &str| {
            format!(
                r#"<create><host:create xmlns:host="{}">{inner}</host:create></create>"#,
                support::epp::HOST
            )
        };
        let r = a.cmd(&domain_cmd(
            "create",
            "<domain:name>epp-glue.ru</domain:name><domain:registrant>C1-RU</domain:registrant>",
        ));
        assert_eq!(code(&r), 1000, "{r}");
        for (ip, v) in [("169.254.169.254", "v4"), ("0.0.0.0", "v4"), ("fe80::1", "v6"), ("::1", "v6")] {
            let r = a.cmd(&host(&format!(
                r#"<host:name>ns1.epp-glue.ru</host:name><host:addr ip="{v}">{ip}</host:addr>"#
            )));
            assert_eq!(code(&r), 2005, "{ip}: {r}");
        }
        // hostAttr glue in a domain update.
        let r = a.cmd(&domain_cmd(
            "update",
            r#"<domain:name>epp-glue.ru</domain:name><domain:add><domain:ns><domain:hostAttr><domain:hostName>ns1.epp-glue.ru</domain:hostName><domain:hostAddr ip="v4">224.0.0.1</domain:hostAddr></domain:hostAttr><domain:hostAttr><domain:hostName>ns2.example.net</domain:hostName></domain:hostAttr></domain:ns></domain:add>"#,
        ));
        assert_eq!(code(&r), 2005, "{r}");
        let r = a.cmd(&host(
            r#"<host:name>ns1.epp-glue.ru</host:name><host:addr ip="v4">192.0.2.77</host:addr>"#,
        ));
        assert_eq!(code(&r), 1000, "{r}");
    })
    .await
    .unwrap();
}

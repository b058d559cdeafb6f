//! `/metrics`, `/healthz` and `/readyz` on a real server.

use crate::support;
use support::api::{token, Server};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn prometheus_text_with_store_gauges_and_module_metrics() {
    let s = Server::start(|c| c.api.rate_limit_per_minute = 2).await;
    // What other modules emit, under their agreed names.
    metrics::counter!("zonekeeper_whois_queries_total", "result" => "found").increment(3);
    metrics::counter!("zonekeeper_rdap_requests_total", "kind" => "domain", "status" => "200")
        .increment(2);
    metrics::counter!("zonekeeper_probes_total", "result" => "ok", "transport" => "udp")
        .increment(5);
    metrics::histogram!(zonekeeper::metrics::PROBE_DURATION).record(0.004);
    metrics::histogram!(zonekeeper::metrics::PROBE_DURATION).record(0.3);
    metrics::counter!("zonekeeper_rounds_total", "result" => "pass").increment(1);
    // API traffic: a 401, and a registrar over its limit.
    let own = s.domains_of("REGRU-RU", 1).remove(0);
    let path = format!("/api/v1/domains/{own}/delegation");
    s.get(&path, None).send().await.unwrap();
    for _ in 0..3 {
        s.get(&path, Some(&token("REGRU-RU"))).send().await.unwrap();
    }

    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();

    let stats = s.store().stats().unwrap();
    for (state, n) in &stats.by_state {
        let v = value(&text, &format!("zonekeeper_domains{{state=\"{state}\"}}"));
        assert_eq!(v, Some(*n as f64), "{state}\n{text}");
    }
    assert!(value(&text, "zonekeeper_store_bytes").unwrap() > 0.0);
    assert_eq!(value(&text, "zonekeeper_registrars"), Some(4.0));
    for help in [
        "# HELP zonekeeper_domains ",
        "# HELP zonekeeper_store_bytes ",
        "# HELP zonekeeper_whois_queries_total ",
        "# HELP zonekeeper_rdap_requests_total ",
        "# HELP zonekeeper_probes_total ",
        "# HELP zonekeeper_probe_duration_seconds ",
        "# HELP zonekeeper_rounds_total ",
        "# HELP zonekeeper_rate_limited_total ",
        "# HELP zonekeeper_api_requests_total ",
        "# TYPE zonekeeper_probe_duration_seconds histogram",
    ] {
        assert!(text.contains(help), "missing {help}\n{text}");
    }
    assert!(
        value(
            &text,
            "zonekeeper_probes_total{result=\"ok\",transport=\"udp\"}"
        )
        .unwrap()
            >= 5.0
    );
    assert!(
        value(
            &text,
            "zonekeeper_probe_duration_seconds_bucket{le=\"0.005\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(value(&text, "zonekeeper_probe_duration_seconds_count").unwrap() >= 2.0);
    assert!(value(&text, "zonekeeper_api_requests_total{status=\"401\"}").unwrap() >= 1.0);
    assert!(value(&text, "zonekeeper_rate_limited_total{service=\"api\"}").unwrap() >= 1.0);

    // Gauges follow the store at the next scrape.
    let before = value(&text, "zonekeeper_domains{state=\"undelegated\"}").unwrap();
    s.put_json(
        "/api/v1/domains/findomsky0.ru/nameservers",
        &token("RUCENTER-RU"),
        serde_json::json!({"nameservers": []}),
    )
    .send()
    .await
    .unwrap();
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // findomsky0.ru is REGRU-RU's: the RUCENTER-RU call was refused, nothing moved.
    assert_eq!(
        value(&text, "zonekeeper_domains{state=\"undelegated\"}"),
        Some(before)
    );
    assert_eq!(
        value(&text, "zonekeeper_domains{state=\"testing\"}"),
        Some(stats.by_state["testing"] as f64)
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start(|_| {}).await;
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ready\n");
}

#[test]
fn install_is_idempotent() {
    let a = zonekeeper::metrics::install();
    let b = zonekeeper::metrics::install();
    // One recorder behind both handles (other tests record into it too).
    metrics::counter!("zonekeeper_test_idempotent_total").increment(1);
    for h in [&a, &b] {
        assert!(h.render().contains("zonekeeper_test_idempotent_total 1"));
    }
}

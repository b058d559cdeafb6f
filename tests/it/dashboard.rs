//! The operator dashboard, rendered by a real server and loaded in headless
//! Chromium.

use crate::support;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::api::{send, start_time, token, Server};
use zonekeeper::model::{
    DelegationRecord, DelegationState, Finding, RoundSummary, ServerDowntime, ServerReport,
    Severity,
};
use zonekeeper::names::HostName;

const CHROMIUM: &str = "/usr/bin/chromium";

fn finding(id: &str, sev: Severity, server: &str, msg: &str) -> Finding {
    Finding {
        id: id.into(),
        severity: sev,
        server: Some(server.into()),
        address: Some("127.0.0.1".into()),
        message: msg.into(),
    }
}

fn server(name: &str, up: bool) -> ServerReport {
    ServerReport {
        name: name.into(),
        addresses: vec![],
        reachable: up,
        soa_serial: up.then_some(2026112301),
        rtt_ms: up.then_some(3),
        unreachable_addresses: vec![],
    }
}

/// Put `name` into testing with `n` rounds, ns1 down in rounds 2 and 3.
async fn seed_testing(s: &Server, name: &str, n: usize) {
    let tok = token(&s.store().domain(name).unwrap().unwrap().registrar);
    let (st, v) = send(s.put_json(
        &format!("/api/v1/domains/{name}/nameservers"),
        &tok,
        json!({"nameservers": [{"name": "ns1.hosting-a.example"}, {"name": "ns2.hosting-b.example"}]}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    let mut rec = s.store().delegation(name).unwrap().unwrap();
    let fp = rec.ns_fingerprint.clone();
    for i in 0..n {
        let at = start_time() + chrono::Duration::minutes(10 * i as i64);
        let ns1_up = !(2..=3).contains(&i);
        let mut findings = vec![finding(
            "EDNS",
            Severity::Warning,
            "ns2.hosting-b.example",
            "no EDNS support",
        )];
        if !ns1_up {
            findings.push(finding(
                "UNREACHABLE",
                Severity::Error,
                "ns1.hosting-a.example",
                "no answer over UDP or TCP <script>alert('x')</script>",
            ));
        }
        findings.push(finding(
            "NS_SET_MISMATCH",
            Severity::Error,
            "ns2.hosting-b.example",
            "the server returns NS ns3.elsewhere.example, not the declared set",
        ));
        let round = RoundSummary {
            at,
            passed: false,
            duration_ms: 40 + i as u64,
            findings,
            servers: vec![
                server("ns1.hosting-a.example", ns1_up),
                server("ns2.hosting-b.example", true),
            ],
            inconclusive: None,
            queue_lag_ms: 0,
        };
        rec.rounds = i as u32 + 1;
        rec.last_round = Some(round.clone());
        rec.next_probe = Some(at + chrono::Duration::minutes(10));
        rec.downtime = vec![ServerDowntime {
            server: HostName::from_trusted("ns1.hosting-a.example".into()),
            period_start: "2026-11-22T21:00:00Z".parse().unwrap(),
            unreachable_secs: if i >= 3 { 1200 } else { 0 },
            unreachable_ms: if i >= 3 { 1_200_000 } else { 0 },
            last_reachable: Some(ns1_up),
            last_probe: Some(at),
            address: None,
            unmeasured_ms: 0,
        }];
        assert!(s
            .store()
            .put_delegation(name, &fp, &rec, None, Some(&round))
            .unwrap());
    }
}

async fn seed(s: &Server) -> (String, String) {
    // A .рф domain in testing with rounds, one failed, one delegated.
    let idn = s
        .store()
        .search_domains("xn--", None, 1)
        .unwrap()
        .0
        .remove(0);
    seed_testing(s, &idn, 8).await;
    s.clock.advance(Duration::from_secs(80 * 60));
    let failed = s.domains_of("REGRU-RU", 3).remove(2);
    seed_testing(s, &failed, 2).await;
    let rec = s.store().delegation(&failed).unwrap().unwrap();
    let fp = rec.ns_fingerprint.clone();
    s.store()
        .put_delegation(
            &failed,
            &fp,
            &DelegationRecord {
                state: DelegationState::TestFailed,
                ..rec
            },
            None,
            None,
        )
        .unwrap();
    (idn, failed)
}

async fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finished in time")
        .expect("chromium runs")
}

async fn dump_dom(url: &str) -> String {
    let out = chromium(&["--dump-dom"], url).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn screenshot(url: &str, file: &Path) -> u64 {
    let arg = format!("--screenshot={}", file.display());
    let out = chromium(&[&arg, "--hide-scrollbars"], url).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    bytes.len() as u64
}

/// The HTML itself: headings, figures, escaping, headers, accessibility
/// basics, nothing private, nothing external.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_safely() {
    let s = Server::start(|_| {}).await;
    let (idn, failed) = seed(&s).await;
    let stats = s.store().stats().unwrap();

    let res = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
    for h in [
        "<h1>",
        ">Domains by delegation state</h2>",
        ">Testing now</h2>",
        ">Failures by check</h2>",
        ">Test failed</h2>",
        "<label for=\"q\">Domain</label>",
        "href=\"#main\">Skip to content</a>",
        "<th scope=\"col\">",
        "<title id=\"state-chart-t\">",
    ] {
        assert!(html.contains(h), "missing {h}");
    }
    assert!(html.contains(&format!("data-metric=\"domains\">{}</div>", stats.domains)));
    for (state, n) in &stats.by_state {
        assert!(
            html.contains(&format!("data-state=\"{state}\">{n}</div>")),
            "{state} {n}"
        );
    }
    // Failures by check id: both seeded domains fail NS_SET_MISMATCH; only
    // the IDN one's last round had ns1 up, so UNREACHABLE counts none.
    assert!(html.contains("data-check-errors=\"NS_SET_MISMATCH\">2</td>"));
    assert!(html.contains(&format!("/domains/{failed}")));
    assert!(html.contains(&format!("/domains/{idn}")));
    assert!(html.contains("soксад") || html.contains(&zonekeeper::names::to_unicode(&idn)));
    // No external resources.
    for bad in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(bad), "{bad}");
    }

    let res = s
        .http
        .get(s.url(&format!("/domains/{idn}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    for h in [
        ">Declared nameservers</h3>",
        ">Downtime</h2>",
        ">Reachability timeline</h3>",
        ">Round history</h2>",
        ">State history</h2>",
        "<svg id=\"timeline\" role=\"img\"",
        "<title id=\"timeline-t\">Reachability of each nameserver",
        "ns1.hosting-a.example: unreachable 20m of",
        "20m of 2h",
    ] {
        assert!(html.contains(h), "missing {h}");
    }
    // Network-supplied text is escaped.
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    // Private data never shows: the registrant's undisclosed fields, the
    // auth code.
    let d = s.store().domain(&idn).unwrap().unwrap();
    let c = s.store().contact(&d.registrant).unwrap().unwrap();
    for secret in [c.tax_id, c.passport, c.birth_date, d.auth_info]
        .into_iter()
        .flatten()
    {
        assert!(!html.contains(&secret), "{secret}");
    }
    if !c
        .disclose
        .contains(&zonekeeper::model::DiscloseField::Email)
    {
        assert!(!html.contains(c.email.as_deref().unwrap()));
    }

    // Hold reasons stay out; the search form redirects; bad names are 400.
    s.app
        .registry()
        .hold(
            &zonekeeper::registry::Actor::Operator,
            &idn,
            "court order 77-SECRET",
        )
        .unwrap();
    let html = s
        .http
        .get(s.url(&format!("/domains/{idn}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("on hold since"));
    assert!(!html.contains("77-SECRET"));
    let uni = zonekeeper::names::to_unicode(&idn);
    let res = s
        .http
        .get(s.url(&format!("/domain?name={}", uni.to_uppercase())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), format!("/domains/{idn}"));
    let res = s.http.get(s.url("/domains/a_b.ru")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = s
        .http
        .get(s.url("/domains/nosuchname.ru"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("nosuchname.ru is not registered"));
}

/// Headless Chromium loads both pages: the DOM it builds has the headings
/// and figures, and the screenshots are real pictures (much larger than a
/// blank page's, measured in the same run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_dashboard() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "install chromium (.ci/run does)"
    );
    let s = Server::start(|_| {}).await;
    let (idn, _) = seed(&s).await;
    let stats = s.store().stats().unwrap();

    let dom = dump_dom(&s.url("/")).await;
    assert!(dom.contains("Domains by delegation state"));
    assert!(dom.contains("Testing now"));
    assert!(dom.contains("Failures by check"));
    assert!(dom.contains(&format!("data-metric=\"domains\">{}</div>", stats.domains)));
    assert!(dom.contains("NS_SET_MISMATCH"));

    let dom = dump_dom(&s.url(&format!("/domains/{idn}"))).await;
    assert!(dom.contains("Round history"));
    assert!(dom.contains("<svg id=\"timeline\""));
    assert!(!dom.contains("<script>alert"));

    let dir = std::env::var_os("ZONEKEEPER_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir().unwrap();
    let blank = screenshot(
        "data:text/html,<html><body></body></html>",
        &tmp.path().join("blank.png"),
    )
    .await;
    let overview = screenshot(&s.url("/"), &dir.join("zonekeeper-dashboard.png")).await;
    let domain = screenshot(
        &s.url(&format!("/domains/{idn}")),
        &dir.join("zonekeeper-domain.png"),
    )
    .await;
    assert!(
        overview > blank * 5,
        "overview {overview} B vs blank {blank} B"
    );
    assert!(domain > blank * 5, "domain {domain} B vs blank {blank} B");
}

//! The Prometheus rules and the Grafana dashboard against the real tools:
//! `promtool check rules` and `promtool test rules` (a unit test per
//! alert, `contrib/prometheus/zonekeeper-rules.test.yml`); every alert has
//! its runbook in docs/operations.md; and a real Prometheus on loopback
//! scrapes a running `serve` every second: every metric name the rules and
//! the dashboard use is among the series it scraped (so names cannot
//! drift), and the scheduler-lag alert with its threshold lowered goes
//! pending against the live process.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use support::bin::{free_port, Bin};

fn contrib(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(p)
}

/// The tool, or None (a failure under CI=true) when it is missing.
fn tool(name: &'static str) -> Option<&'static str> {
    crate::support::tool(name, "prometheus")
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    for args in [
        vec!["check", "rules", "zonekeeper-rules.yml"],
        vec!["test", "rules", "zonekeeper-rules.test.yml"],
    ] {
        let out = Command::new(promtool)
            .args(&args)
            .current_dir(contrib("prometheus"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn alerts(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

/// Every alert is unit-tested, and has a runbook heading its annotation
/// points at.
#[test]
fn every_alert_has_a_test_and_a_runbook() {
    let rules = std::fs::read_to_string(contrib("prometheus/zonekeeper-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(contrib("prometheus/zonekeeper-rules.test.yml")).unwrap();
    let ops =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let names = alerts(&rules);
    assert!(names.len() >= 15, "{names:?}");
    for a in &names {
        assert!(
            tests.contains(&format!("alertname: {a}\n")),
            "{a}: no promtool test"
        );
        assert!(
            ops.lines().any(|l| l == format!("### {a}")),
            "{a}: no runbook heading in docs/operations.md"
        );
        let anchor = format!("runbook: \"docs/operations.md#{}\"", a.to_lowercase());
        assert!(rules.contains(&anchor), "{a}: runbook annotation");
    }
}

/// `zonekeeper_…` metric names in `text` (histogram and summary suffixes
/// cut; recording rules have a colon and are not metrics).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("zonekeeper_") {
        let start = i + at;
        let prev_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b':');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if prev_ok && (end >= b.len() || b[end] != b':') {
            let n = &text[start..end];
            let n = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            out.insert(n.to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// Series that appear on their first event, which this test does not
/// cause: a logged-in EPP session.
const FIRST_EVENT_ONLY: &[&str] = &[
    "zonekeeper_epp_sessions",
    // A counter labelled by kind: its first series is the first error.
    "zonekeeper_store_errors_total",
];

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The raw answer; empty when nothing listens (yet).
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn whois(addr: std::net::SocketAddr, q: &str) {
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(format!("{q}\r\n").as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
    }
}

#[test]
fn prometheus_scrapes_serve_and_the_names_exist() {
    let Some(prom) = tool("prometheus") else {
        return;
    };
    let certs = support::epp::certs(&["REGRU-RU"]);
    let epp = free_port();
    let config = format!(
        r#"zones = ["ru", "рф"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
[delegation]
probe_interval = "1s"
test_window = "2s"
[probe]
resolvers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
# The fixture's nameservers (documentation addresses, unreachable here)
# are probed, so the probe series exist.
allow_private_targets = true
[whois]
rate_limit_per_minute = 2
[http]
header_read_timeout = "1s"
[zone]
output = "@D@/{{zone}}.zone"
primary = "a.dns.example"
hostmaster = "hostmaster.example"
nameservers = ["a.dns.example", "b.dns.example"]
[epp]
listen = "{epp}"
cert = "{}"
key = "{}"
client_ca = "{}"
[log]
filter = "info"
"#,
        certs.server.cert.display(),
        certs.server.key.display(),
        certs.ca.display()
    );
    let bin = Bin::new(&config);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json");
    let serve = bin.serve(&fixture, "zk.redb.sock");

    // Traffic, so the counters that appear on their first event exist.
    for _ in 0..4 {
        whois(serve.whois, "findomsky0.ru");
    }
    http_get(serve.http, "/rdap/domain/findomsky0.ru");
    http_get(serve.http, "/api/v1/domains");
    {
        // A connection that never sends its request: header_timeout. Wait
        // for the server to close it (the refusal is counted by then), not
        // for a guess at how long that takes on a loaded machine.
        let mut idle = TcpStream::connect(serve.http).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut sink = Vec::new();
        let _ = idle.read_to_end(&mut sink);
    }
    // Garbage instead of a TLS handshake; then a login that fails.
    if let Ok(mut s) = TcpStream::connect(epp) {
        let _ = s.write_all(b"not tls\r\n\r\n");
        let mut sink = Vec::new();
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read_to_end(&mut sink);
    }
    if let Ok(mut c) = support::epp::Client::connect(epp.port(), &certs, &certs.clients[0], None) {
        let _ = c.try_send(&support::epp::login("REGRU-RU", "wrong-password"));
    }

    // The rules with the lag threshold lowered so that it is exceeded (and
    // a long `for`, so that it stays pending).
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(contrib("prometheus/zonekeeper-rules.yml")).unwrap();
    let lowered = rules.replacen(
        "expr: zonekeeper:scheduler_lag_seconds:max > 300\n        for: 10m",
        "expr: zonekeeper:scheduler_lag_seconds:max > -1\n        for: 1h",
        1,
    );
    assert_ne!(lowered, rules, "the lag alert's expression changed");
    std::fs::write(dir.path().join("rules.yml"), &lowered).unwrap();
    let web = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: zonekeeper\n    static_configs:\n      - targets: ['{}']\n",
            serve.http
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Killed(
        Command::new(prom)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let plog = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    let wanted: BTreeSet<String> = {
        let dash = std::fs::read_to_string(contrib("grafana/zonekeeper.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&dash).unwrap();
        let mut exprs = String::new();
        for p in v["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                exprs.push_str(t["expr"].as_str().unwrap());
                exprs.push('\n');
            }
        }
        let mut w = metric_names(&rules);
        w.extend(metric_names(&exprs));
        w.retain(|n| !FIRST_EVENT_ONLY.contains(&n.as_str()));
        w
    };

    // Wait until every wanted name was scraped and the alert is pending.
    let end = Instant::now() + Duration::from_secs(60);
    let (mut missing, mut pending) = (wanted.clone(), false);
    while Instant::now() < end {
        let names = http_get(web, "/api/v1/label/__name__/values");
        missing = wanted
            .iter()
            .filter(|n| {
                // A histogram is scraped as its _bucket, _sum and _count.
                !["", "_count"]
                    .iter()
                    .any(|suf| names.contains(&format!("\"{n}{suf}\"")))
            })
            .cloned()
            .collect();
        let a = http_get(web, "/api/v1/alerts");
        pending = a.contains("\"alertname\":\"ZonekeeperSchedulerBehind\"")
            && a.contains("\"state\":\"pending\"");
        if missing.is_empty() && pending {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        missing.is_empty(),
        "names used by the rules or dashboard that serve does not export: {missing:?}\nprometheus: {}",
        plog()
    );
    assert!(
        pending,
        "the lowered lag alert is not pending: {}",
        http_get(web, "/api/v1/alerts")
    );
    eprintln!(
        "{} metric names checked against the live serve",
        wanted.len()
    );
}

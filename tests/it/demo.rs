//! The first command shows the whole job: the real binary, `serve --import
//! fixtures/registry.json` on the development config (`demo.enabled`), with
//! only ports and paths moved into a temp dir. Within seconds the demo
//! domains are delegated in the zone file, WHOIS, RDAP and the API, the
//! broken ones are testing with the findings their fault causes, and the
//! delegated ones are monitored. Every packet stays on loopback.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The dev config with this run's paths and ports, everything else as shipped.
fn dev_config(dir: &Path, probe_port: u16, resolver_port: u16) -> String {
    let text = std::fs::read_to_string("config/zonekeeper.toml").unwrap();
    let mut t: toml::Table = text.parse().unwrap();
    assert_eq!(
        t["demo"]["enabled"].as_bool(),
        Some(true),
        "the dev config runs the demo"
    );
    let d = dir.display();
    let set = |t: &mut toml::Table, sect: &str, key: &str, v: toml::Value| {
        t.get_mut(sect)
            .and_then(|s| s.as_table_mut())
            .unwrap()
            .insert(key.into(), v);
    };
    set(&mut t, "store", "path", format!("{d}/zk.redb").into());
    set(&mut t, "store", "cache_mib", 16.into());
    set(
        &mut t,
        "zone",
        "output",
        format!("{d}/{{zone}}.zone").into(),
    );
    set(&mut t, "probe", "port", i64::from(probe_port).into());
    set(
        &mut t,
        "probe",
        "resolvers",
        toml::Value::Array(vec![format!("127.0.0.1:{resolver_port}").into()]),
    );
    // The silent server costs one timeout per round.
    set(&mut t, "probe", "timeout", "500ms".into());
    t.insert("log".into(), toml::Value::Table(toml::Table::new()));
    set(&mut t, "log", "filter", "info".into());
    toml::to_string(&t).unwrap()
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_command_shows_delegated_failing_and_monitored_domains() {
    let dir = tempfile::tempdir().unwrap();
    let (whois_port, http_port) = (free_port(), free_port());
    let cfg = dir.path().join("zonekeeper.toml");
    std::fs::write(&cfg, dev_config(dir.path(), free_port(), free_port())).unwrap();
    let log = dir.path().join("serve.log");
    let started = Instant::now();
    let _child = Child(
        Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
            .args(["--config"])
            .arg(&cfg)
            .args(["serve", "--import", "fixtures/registry.json"])
            .args(["--whois-listen", &format!("127.0.0.1:{whois_port}")])
            .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
            .env_remove("RUST_LOG")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The zone file gets the first delegation.
    let zone = dir.path().join("ru.zone");
    let first = loop {
        let text = std::fs::read_to_string(&zone).unwrap_or_default();
        if text.contains("demo-good.ru. ") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no delegation in the zone file within {DEADLINE:?}:\n{text}\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("first delegation in the zone file {first:?} after start");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{http_port}");
    let delegation = |name: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}/api/v1/domains/{name}/delegation"))
                .bearer_auth("token-demo-ru")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{name}");
            r.json::<Value>().await.unwrap()
        }
    };
    let ids = |v: &Value| -> Vec<(String, String)> {
        v["last_round"]["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["id"].as_str().unwrap_or_default().to_string(),
                            f["severity"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Every scenario reaches the state its fault implies.
    let want: &[(&str, &str, Option<&str>)] = &[
        ("demo-good.ru", "delegated", None),
        ("demo-hosting.ru", "delegated", None),
        ("demo-hosted.ru", "delegated", None),
        ("xn--d1acvi.xn--p1ai", "delegated", None),
        ("demo-warn.ru", "delegated", Some("EDNS")),
        ("demo-drift.ru", "delegated", None),
        ("demo-lame.ru", "testing", Some("LAME")),
        ("demo-serial.ru", "testing", Some("SOA_CONSISTENT")),
        ("demo-notcp.ru", "testing", Some("TCP")),
        ("demo-nsset.ru", "testing", Some("NS_SET_MATCHES")),
        ("demo-glue.ru", "testing", Some("GLUE_MATCHES")),
        ("demo-down.ru", "testing", Some("RESPONSIVE")),
    ];
    for (name, state, finding) in want {
        let v = loop {
            let v = delegation(name).await;
            if v["state"] == *state && v["last_round"].is_object() {
                break v;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{name} not {state} with a round within {DEADLINE:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let found = ids(&v);
        match finding {
            Some(id) => {
                let sev = if *state == "delegated" {
                    "warning"
                } else {
                    "error"
                };
                assert!(
                    found.contains(&(id.to_string(), sev.to_string())),
                    "{name}: want {id} ({sev}), got {found:?}"
                );
            }
            // Nothing wrong; a notice (RTT on a loaded machine) is no fault.
            None => assert!(
                found.iter().all(|(_, sev)| sev == "notice"),
                "{name}: {found:?}"
            ),
        }
        if *state == "delegated" {
            // Monitored: the next monitoring round is scheduled.
            assert!(v["next_probe"].is_string(), "{name} not monitored: {v}");
            assert_eq!(v["in_zone"], true, "{v}");
        }
    }
    println!(
        "all demo scenarios settled {:?} after start",
        started.elapsed()
    );

    // The sample's documentation addresses are refused without a packet
    // (loopback is allowed, nothing else private).
    let sample = loop {
        let r = http
            .get(format!("{base}/api/v1/domains/deldom1.ru/delegation"))
            .bearer_auth("token-rucenter-ru")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        if v["last_round"].is_object() {
            break v;
        }
        assert!(started.elapsed() < DEADLINE, "deldom1.ru not probed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let found = ids(&sample);
    assert!(
        !found.is_empty() && found.iter().all(|(id, _)| id == "TARGET_REFUSED"),
        "{sample}"
    );

    // Only demo domains are delegated.
    let zone_text = std::fs::read_to_string(&zone).unwrap();
    for line in zone_text.lines().filter(|l| l.contains(" IN NS ")) {
        let owner = line.split_whitespace().next().unwrap();
        assert!(
            owner == "ru." || owner.starts_with("demo-"),
            "not a demo delegation: {line}"
        );
    }
    assert!(zone_text.contains("ns1.demo-good.ru. 345600 IN A 127.0.53.1"));
    assert!(!zone_text.contains("demo-lame.ru."), "{zone_text}");
    let rf = std::fs::read_to_string(dir.path().join("xn--p1ai.zone")).unwrap();
    assert!(rf.contains("xn--d1acvi.xn--p1ai. "), "{rf}");

    // WHOIS (the real client) and RDAP agree.
    let whois = |q: &str| {
        let o = Command::new("whois")
            .args(["-h", "127.0.0.1", "-p", &whois_port.to_string(), q])
            .output()
            .expect("the whois client (Debian package whois) is needed");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let w = whois("demo-good.ru");
    assert!(w.contains("REGISTERED, DELEGATED"), "{w}");
    assert!(
        w.contains("nserver:       ns1.demo-good.ru. 127.0.53.1"),
        "{w}"
    );
    let w = whois("demo-lame.ru");
    assert!(w.contains("NOT DELEGATED"), "{w}");
    let rdap = |name: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/rdap/domain/{name}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        rdap("demo-good.ru").await["status"],
        serde_json::json!(["active"])
    );
    let lame = rdap("demo-lame.ru").await;
    assert!(
        lame["status"]
            .as_array()
            .unwrap()
            .contains(&"inactive".into()),
        "{lame}"
    );

    // The dashboard and metrics show it too.
    let dash = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(dash.status(), 200);
    let dash = dash.text().await.unwrap();
    let count = |state: &str| -> usize {
        let key = format!("data-state=\"{state}\">");
        let at = dash.find(&key).unwrap_or_else(|| panic!("{key}: {dash}")) + key.len();
        dash[at..].split('<').next().unwrap().parse().unwrap()
    };
    assert!(count("delegated") >= 6, "{dash}");
    assert!(dash.contains("LAME"), "{dash}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("zonekeeper_checks_total"), "{metrics}");
    println!(
        "{}",
        log_text()
            .lines()
            .find(|l| l.contains("demo:"))
            .unwrap_or_default()
    );
}

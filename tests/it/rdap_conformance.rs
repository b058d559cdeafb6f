//! ICANN's RDAP conformance tool (`rdap-test` from `icann-rdap-cli`, installed
//! by `.ci/run`) against a running server: a domain, an IDN domain, a
//! nameserver and entities must show no error-level check.
//!
//! The binary comes from `RDAP_TEST_BIN` or `PATH`. Without it the test
//! fails under `CI=true` and is skipped (with a notice) otherwise.

use crate::support;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

fn find_tool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RDAP_TEST_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("rdap-test"))
            .find(|p| p.is_file())
    })
}

/// Every check item in the tool's JSON output: (where, class, check).
fn checks(v: &Value, at: &str, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Object(m) => {
            let here = m
                .get("rdap_struct")
                .and_then(|s| s.as_str())
                .map(|s| format!("{at}/{s}"))
                .unwrap_or_else(|| at.to_string());
            if let Some(class) = m.get("check_class").and_then(|c| c.as_str()) {
                let check = m.get("check").map(|c| c.to_string()).unwrap_or_default();
                out.push((here.clone(), class.to_string(), check));
            }
            m.values().for_each(|x| checks(x, &here, out));
        }
        Value::Array(a) => a.iter().for_each(|x| checks(x, at, out)),
        _ => {}
    }
}

async fn run_tool(tool: &PathBuf, url: &str) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(tool);
    cmd.env("RDAP_TEST_ALLOW_HTTP", "true")
        .args(["--skip-v6", "-C", "all", "-L", "off", "-O", "json"])
        // The tool resolves host names through 8.8.8.8 by default; our URLs
        // are IP literals, and any lookup it might try stays on loopback.
        .args(["--dns-resolver", "127.0.0.1:9", "--timeout-secs", "20"])
        .arg(url)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| format!("{url}: rdap-test did not finish in 60 s"))?
        .map_err(|e| format!("{url}: cannot run rdap-test: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find('{')
        .ok_or_else(|| format!("{url}: no JSON from rdap-test: {text}"))?;
    let mut de = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    let v = de
        .next()
        .ok_or("empty output")?
        .map_err(|e| format!("{url}: bad JSON from rdap-test ({e}): {text}"))?;
    let runs = v["test_runs"].as_array().ok_or("no test_runs")?;
    if runs.is_empty() {
        return Err(format!("{url}: nothing tested: {text}"));
    }
    let mut problems = Vec::new();
    for r in runs {
        if r["outcome"] != "Tested" {
            problems.push(format!("outcome {}", r["outcome"]));
        }
    }
    let mut found = Vec::new();
    checks(&v["test_runs"], "", &mut found);
    checks(&v["service_checks"], "service", &mut found);
    for (at, class, check) in &found {
        println!("{url}: {class} {check} at {at}");
        if class.contains("error") {
            problems.push(format!("{class} {check} at {at}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{url}: {}", problems.join("; ")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icann_rdap_test_finds_no_errors() {
    let Some(tool) = find_tool() else {
        let msg = "rdap-test (icann-rdap-cli) not found: set RDAP_TEST_BIN or put it on PATH \
                   (.ci/run installs it)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let s = support::rdap::fixture(|_| {}).await;
    let idn = {
        let v = support::rdap::get(&format!("{}domain/соксад3.рф", s.base))
            .await
            .json();
        v["ldhName"].as_str().unwrap().to_string()
    };
    let mut failures = Vec::new();
    for path in [
        "domain/deldom1.ru".to_string(),
        format!("domain/{idn}"),
        "domain/solkazen7.ru".to_string(),
        "nameserver/ns2.deldom1.ru".to_string(),
        "entity/C0-RU".to_string(),
        "entity/REGRU-RU".to_string(),
        "domains?name=ba*".to_string(),
    ] {
        if let Err(e) = run_tool(&tool, &format!("{}{path}", s.base)).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "rdap-test errors:\n{}",
        failures.join("\n")
    );
}

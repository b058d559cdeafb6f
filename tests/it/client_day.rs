//! A registrar's whole day through a client generated from the served
//! OpenAPI document: the real `serve` with periods shrunk to seconds,
//! loopback DNS servers for the domain, `openapi-python-client generate`
//! on `GET /api/v1/openapi.json`, then `tests/client/registrar_day.py`
//! (typed calls only). The tool comes from `OPENAPI_PYTHON_CLIENT` (set by
//! `.ci/run`) or `PATH`; missing, the test fails under `CI=true` and is
//! skipped otherwise. Where the generated client mistypes an answer, the
//! document is wrong.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::bin::{text, Bin};
use crate::support::dns;

fn tool() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("OPENAPI_PYTHON_CLIENT") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("openapi-python-client"))
        .find(|p| p.is_file())
}

fn token(handle: &str) -> String {
    zonekeeper::synth::sample_token(handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_runs_a_registrars_day() {
    let Some(gen) = tool() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openapi-python-client is missing (set OPENAPI_PYTHON_CLIENT)"
        );
        eprintln!("skipped: openapi-python-client not found (set OPENAPI_PYTHON_CLIENT)");
        return;
    };
    // The venv's python, beside the tool (it has the client's dependencies).
    let python = gen
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));

    // Two loopback servers answering for day.ru on one port.
    let block = dns::loopback_block();
    let ips: Vec<IpAddr> = (1..=2).map(|h| dns::ip(block, h)).collect();
    let port = dns::common_port(&ips).await;
    let z = dns::zone("day.ru", block, &[1, 2]);
    let mut servers = Vec::new();
    for (_, ip) in &z.ns {
        let mut s = None;
        for _ in 0..200 {
            s = z.try_serve_on(*ip, port).await;
            if s.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        servers.push(s.expect("bind a test DNS server"));
    }

    let b = Bin::new(&format!(
        r#"zones = ["ru"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
[delegation]
probe_interval = "200ms"
test_window = "2s"
monitor_interval = "500ms"
[probe]
allow_private_targets = true
port = {port}
timeout = "300ms"
retries = 0
resolvers = ["127.0.0.1:9"]
[lifecycle]
transfer_lock = "0s"
[log]
filter = "warn"
"#
    ));
    let sha = |h: &str| hex::encode(Sha256::digest(token(h).as_bytes()));
    let import = json!({
        "registrars": [
            {"handle": "ALPHA-RU", "name": "Alpha", "api_token_sha256": sha("ALPHA-RU")},
            {"handle": "BETA-RU", "name": "Beta", "api_token_sha256": sha("BETA-RU")}
        ],
        "contacts": [
            {"handle": "C1-RU", "kind": "person", "name": "Ivan Petrov"}
        ],
        "domains": []
    });
    std::fs::write(b.path("import.json"), import.to_string()).unwrap();
    let serve = b.serve(&b.path("import.json"), "zk.redb.sock");
    let base = format!("http://{}", serve.http);

    // Generate the client from the document the server serves.
    let doc = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(b.path("openapi.json"), doc).unwrap();
    let out = Command::new(&gen)
        .args(["generate", "--meta", "none", "--path"])
        .arg(b.path("openapi.json"))
        .arg("--output-path")
        .arg(b.path("zk_client"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && b.path("zk_client/client.py").exists(),
        "generation failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let ns: Vec<(String, String)> =
        z.ns.iter()
            .map(|(n, ip)| (n.to_string(), ip.to_string()))
            .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client/registrar_day.py");
    let out = tokio::task::spawn_blocking({
        let python = python.clone();
        let dir = b.dir.path().to_path_buf();
        move || {
            Command::new(python)
                .arg(script)
                .env("PYTHONPATH", dir)
                .env("ZK_BASE", base)
                .env("ZK_TOKEN_A", token("ALPHA-RU"))
                .env("ZK_TOKEN_B", token("BETA-RU"))
                .env("ZK_HANDLE_B", "BETA-RU")
                .env("ZK_DOMAIN", "day.ru")
                .env("ZK_REGISTRANT", "C1-RU")
                .env("ZK_NS", serde_json::to_string(&ns).unwrap())
                .env("NO_PROXY", "*")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the registrar's day failed:\n{}{}\nserve log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        b.log()
    );
    assert!(text(&out.stdout).contains("registrar day done"));
    drop(serve);
    drop(servers);
}

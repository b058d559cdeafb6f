//! Running under systemd: the real binary with `NOTIFY_SOCKET` pointing at
//! a datagram socket of the test sends `READY=1` once its listeners accept,
//! `WATCHDOG=1` well within every `WATCHDOG_USEC` while the scheduler
//! runs, and `STOPPING=1` on SIGTERM; the unit files in `contrib/systemd/`
//! pass `systemd-analyze verify` and `systemd-analyze security
//! --offline=true` rates each at an exposure of at most 2.0 (both work
//! without systemd as PID 1).

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use support::bin::{free_port, Bin, Serve};

const CONFIG: &str = r#"zones = ["ru"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
[probe]
resolvers = ["127.0.0.1:9"]
[log]
filter = "info"
"#;

fn recv(sock: &UnixDatagram, limit: Duration) -> Option<String> {
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn notify_ready_watchdog_and_stopping() {
    let bin = Bin::new(CONFIG);
    let path = bin.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let (whois, http) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(bin.path("zk.toml"))
        .args(["serve", "--whois-listen", &whois.to_string()])
        .args(["--http-listen", &http.to_string()])
        .env_remove("RUST_LOG")
        .env_remove("WATCHDOG_PID")
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "3000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut serve = Serve { child, whois, http };

    // READY=1 comes first, and by then both listeners accept.
    let first = recv(&sock, Duration::from_secs(30)).expect("no notification within 30 s");
    assert!(first.lines().any(|l| l == "READY=1"), "{first:?}");
    assert!(first.contains("STATUS=serving"), "{first:?}");
    TcpStream::connect(http).expect("HTTP not listening at READY=1");
    TcpStream::connect(whois).expect("WHOIS not listening at READY=1");

    // WATCHDOG=1 keeps coming, never more than 2 s apart (period 3 s).
    let start = Instant::now();
    let mut fed = 0;
    while start.elapsed() < Duration::from_secs(6) {
        let m = recv(&sock, Duration::from_secs(2)).expect("watchdog not fed for 2 s");
        if m.lines().any(|l| l == "WATCHDOG=1") {
            fed += 1;
        }
    }
    assert!(fed >= 3, "{fed} WATCHDOG=1 in 6 s");

    serve.signal("-TERM");
    let mut stopping = false;
    let end = Instant::now() + Duration::from_secs(10);
    while !stopping && Instant::now() < end {
        if let Some(m) = recv(&sock, Duration::from_millis(500)) {
            stopping = m.lines().any(|l| l == "STOPPING=1");
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    assert!(serve.wait(Duration::from_secs(30)).success());
}

/// Without `NOTIFY_SOCKET` nothing is sent and nothing fails (the other
/// tests run the binary that way); with a socket nobody listens on, serve
/// logs and goes on.
#[test]
fn a_dead_notify_socket_does_not_stop_serve() {
    let bin = Bin::new(CONFIG);
    let (whois, http) = (free_port(), free_port());
    let log = std::fs::File::create(bin.path("serve.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(bin.path("zk.toml"))
        .args(["serve", "--whois-listen", &whois.to_string()])
        .args(["--http-listen", &http.to_string()])
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", bin.path("nobody.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut serve = Serve { child, whois, http };
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(http).is_err() {
        assert!(Instant::now() < end, "serve not up: {}", bin.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(serve.child.try_wait().unwrap().is_none(), "{}", bin.log());
    assert!(bin.log().contains("cannot notify systemd"), "{}", bin.log());
    serve.signal("-TERM");
    assert!(serve.wait(Duration::from_secs(30)).success());
}

fn systemd_analyze() -> Option<&'static str> {
    crate::support::tool("systemd-analyze", "systemd")
}

/// The units with ExecStart pointing at the binary under test (verify
/// wants an executable), in a temp dir.
fn units_for_test(dir: &Path) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    ["zonekeeper.service", "zonekeeper@.service"]
        .iter()
        .map(|u| {
            let text = std::fs::read_to_string(src.join(u))
                .unwrap()
                .replace("/usr/bin/zonekeeper", env!("CARGO_BIN_EXE_zonekeeper"));
            let to = dir.join(u.replace('@', "@frontend"));
            std::fs::write(&to, text).unwrap();
            to
        })
        .collect()
}

/// The exposure `systemd-analyze security --offline=true UNIT` prints.
pub fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure in: {text}"));
    let after = line.rsplit(':').next().unwrap().trim();
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line}"))
}

#[test]
fn unit_files_verify_and_are_hardened() {
    let Some(tool) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for unit in units_for_test(dir.path()) {
        let out = Command::new(tool)
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && msg.trim().is_empty(),
            "{}: {msg}",
            unit.display()
        );
        let e = exposure(&unit);
        eprintln!("{}: exposure {e}", unit.display());
        assert!(e <= 2.0, "{}: exposure {e} > 2.0", unit.display());
        let text = std::fs::read_to_string(&unit).unwrap();
        for line in [
            "Type=notify",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{}: no {line}",
                unit.display()
            );
        }
    }
    // The template's instance names the roles.
    let t = std::fs::read_to_string(dir.path().join("zonekeeper@frontend.service")).unwrap();
    assert!(t.contains("serve --roles %i"), "{t}");
}

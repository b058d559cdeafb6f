//! Every config file shipped in `config/` loads.
use std::path::Path;

#[test]
fn every_shipped_config_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir("config").expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            zonekeeper::config::Config::load(Path::new(&path))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 2, "expected the dev and production configs");
}

/// The safe-decision keys: addresses with or without a port; a bad address
/// or a threshold out of range is a clear config error and `serve` exits 2.
#[test]
fn canaries_resolvers_and_outage_thresholds() {
    let load = |body: &str| {
        zonekeeper::config::Config::from_toml(body, Path::new("test.toml"))
            .map_err(|e| e.to_string())
    };
    let c = load(
        "[probe]\nresolvers = [\"192.0.2.53\", \"192.0.2.54:5353\", \"2001:db8::53\", \"[2001:db8::54]:5353\"]\n\
         canaries = [\"198.51.100.1\"]\noutage_threshold = 0.7\noutage_window = \"90s\"\n\
         [delegation]\nrecheck_interval = \"2m\"\nviolation_confirmations = 2\nviolation_min_span = \"5m\"\n",
    )
    .unwrap();
    let r: Vec<String> = c.probe.resolvers.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        r,
        [
            "192.0.2.53:53",
            "192.0.2.54:5353",
            "[2001:db8::53]:53",
            "[2001:db8::54]:5353"
        ]
    );
    assert_eq!(c.probe.canaries[0].to_string(), "198.51.100.1:53");
    assert_eq!(c.delegation.violation_confirmations, 2);
    for (body, want) in [
        (
            "[probe]\ncanaries = [\"ns1.example.net\"]\n",
            "not an IPv4/IPv6 address",
        ),
        ("[probe]\nresolvers = [\"192.0.2.1:0\"]\n", "port 0"),
        (
            "[probe]\nresolvers = [\"192.0.2.1:99999\"]\n",
            "not an IPv4/IPv6 address",
        ),
        (
            "[probe]\noutage_threshold = 0.0\n",
            "probe.outage_threshold",
        ),
        (
            "[probe]\noutage_threshold = 1.5\n",
            "probe.outage_threshold",
        ),
        ("[probe]\noutage_window = \"0s\"\n", "probe.outage_window"),
        (
            "[delegation]\nviolation_confirmations = 0\n",
            "violation_confirmations",
        ),
        (
            "[delegation]\nrecheck_interval = \"0s\"\n",
            "recheck_interval",
        ),
        (
            "[delegation]\nrecheck_interval = \"3s\"\n[probe]\ntimeout = \"2s\"\nretries = 1\n",
            "must be at least probe.timeout × (probe.retries + 1)",
        ),
    ] {
        let e = load(body).unwrap_err();
        assert!(e.contains(want), "{body}: {e}");
    }
    // The real binary: exit 2 with one clear line.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[probe]\ncanaries = [\"not-an-ip\"]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-an-ip") && err.contains("not an IPv4/IPv6 address"),
        "{err}"
    );
}

//! The smaller input cases: one form per address, zone names
//! from config validated before they reach the zone file, the RDAP base URL
//! required where a Host header would otherwise be trusted.

use std::path::Path;
use std::process::Command;

use zonekeeper::config::Config;
use zonekeeper::registry::input::{validate_nameservers, NameserverIn};

fn ns(name: &str, addrs: &[&str]) -> NameserverIn {
    NameserverIn {
        name: name.into(),
        addresses: addrs.iter().map(|a| a.to_string()).collect(),
    }
}

#[test]
fn ipv4_mapped_addresses_are_the_ipv4_address() {
    // Two "distinct" addresses that are one.
    let e = validate_nameservers(
        "example.ru",
        &[
            ns("ns1.example.ru", &["192.0.2.1"]),
            ns("ns2.example.ru", &["::ffff:192.0.2.1"]),
        ],
        2,
    )
    .unwrap_err();
    assert!(
        e.iter()
            .any(|(f, r)| f == "nameservers[1].addresses[0]"
                && r.contains("192.0.2.1 is already used")),
        "{e:?}"
    );
    let e = validate_nameservers(
        "example.ru",
        &[
            ns("ns1.example.ru", &["::FFFF:c000:0201", "192.0.2.1"]),
            ns("ns2.example.net", &[]),
        ],
        2,
    )
    .unwrap_err();
    assert!(e.iter().any(|(_, r)| r.contains("listed twice")), "{e:?}");
    // Stored in one form: the IPv4 one; zero-compressed IPv6 likewise.
    let ok = validate_nameservers(
        "example.ru",
        &[
            ns(
                "ns1.example.ru",
                &[
                    "::ffff:192.0.2.7",
                    "2001:0db8:0000:0000:0000:0000:0000:0001",
                ],
            ),
            ns("ns2.example.ru", &["2001:db8::2"]),
        ],
        2,
    )
    .unwrap();
    assert_eq!(ok[0].addresses[0].to_string(), "192.0.2.7");
    assert_eq!(ok[0].addresses[1].to_string(), "2001:db8::1");
}

#[test]
fn zone_names_in_config_are_validated() {
    for (toml, key) in [
        (
            "[zone]\nprimary = \"a.example\\n$INCLUDE /etc/passwd\"\n",
            "zone.primary",
        ),
        (
            "[zone]\nhostmaster = \"hostmaster@registry.example\"\n",
            "zone.hostmaster",
        ),
        ("[zone]\nprimary = \"localhost\"\n", "zone.primary"),
        (
            "[zone]\nnameservers = [\"ns1.example\", \"bad name.example\"]\n",
            "zone.nameservers",
        ),
    ] {
        let e = Config::from_toml(toml, Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{toml}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    // U-labels and upper case are written in A-label form.
    let c = Config::from_toml(
        "[zone]\nprimary = \"A.NS.Реестр.рф.\"\nhostmaster = \"hostmaster.реестр.рф\"\n",
        Path::new("t"),
    )
    .unwrap();
    assert_eq!(
        c.zone.primary,
        zonekeeper::names::parse_host("a.ns.реестр.рф")
            .unwrap()
            .as_str()
    );
    assert!(c.zone.primary.starts_with("a.ns.xn--") && c.zone.primary.is_ascii());
    assert!(c.zone.hostmaster.starts_with("hostmaster.xn--"));
    // Through the binary: exit 2 before anything runs.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zk.toml");
    std::fs::write(
        &cfg,
        "[zone]\nprimary = \"a.example\\n$INCLUDE /etc/passwd\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(&cfg)
        .args(["zone", "export", "--db"])
        .arg(dir.path().join("z.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zone.primary") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!dir.path().join("z.redb").exists());
}

#[test]
fn rdap_base_url_is_required_off_loopback() {
    let e = Config::from_toml("[http]\nlisten = \"0.0.0.0:8080\"\n", Path::new("t"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rdap.base_url is required"), "{e}");
    Config::from_toml(
        "[http]\nlisten = \"0.0.0.0:8080\"\n[rdap]\nbase_url = \"https://rdap.example/rdap/\"\n",
        Path::new("t"),
    )
    .unwrap();
    let e = Config::from_toml(
        "[rdap]\nbase_url = \"javascript:alert(1)\"\n",
        Path::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("rdap.base_url") && e.contains("javascript"),
        "{e}"
    );
    // The production sample sets it.
    let p = Config::load(Path::new("config/production.example.toml")).unwrap();
    assert!(p.rdap.base_url.is_some());
    // serve with a non-loopback --http-listen and no base URL: exit 2.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg("config/zonekeeper.toml")
        .args(["serve", "--http-listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("z.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rdap.base_url is required"));
}

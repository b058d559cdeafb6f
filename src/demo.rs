//! The loopback demo (config `demo.enabled`; on in the development config,
//! off by default and in every production config): `serve` imports a dozen
//! demo domains and answers for them with small authoritative DNS servers
//! on 127.0.53.0/24, most correct, some broken in the ways the checks
//! catch, so the first `cargo run -- serve` shows domains delegated,
//! failing with findings, and monitored. Every packet stays on loopback:
//! the servers listen on `probe.port`, a resolver for the demo's host names
//! answers on the loopback `probe.resolvers`, and [`Config`] refuses the
//! demo unless the prober may reach loopback and nothing else private.
//!
//! Each scenario's fault is on its second server (`ns2`), so `domain show`
//! and the API name the server to blame. See `docs/demo.md`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::authdns::{self, Behaviour, Responder, Zone};

use crate::config::Config;
use crate::model::Timestamp;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: cannot listen on {addr} ({proto}): {source}{hint}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("demo: '{0}' is not a valid DNS name")]
    Name(String),
    #[error("demo: cannot import the demo domains: {0}")]
    Import(#[from] crate::import::ImportError),
}

/// The demo registrar; its API token is `token-demo-ru`.
pub const REGISTRAR: &str = "DEMO-RU";
const CONTACT: &str = "DEMO-ORG-RU";
/// Base SOA serial of every demo zone.
const SERIAL: u32 = 2026010101;
/// Demo servers live at 127.0.53.N (N from 1).
const NET: [u8; 3] = [127, 0, 53];
/// The address `demo-glue.ru` publishes for its ns2 instead of the declared one.
const WRONG_GLUE: Ipv4Addr = Ipv4Addr::new(127, 0, 53, 250);

/// What is wrong with a scenario's `ns2` (or its zone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// Answers FORMERR to EDNS queries: a warning only.
    NoEdns,
    /// REFUSED for the zone (lame delegation).
    Lame,
    /// Another SOA serial than ns1.
    Serial,
    /// Nothing listens on TCP.
    NoTcp,
    /// Both servers publish an NS set with a third, undeclared name.
    NsSet,
    /// The zone publishes another address for ns2 than the declared glue.
    Glue,
    /// Never answers (UDP dropped, TCP accepted and left hanging).
    Silent,
    /// Correct at first; this long after start its SOA serial moves on
    /// without ns1's (a monitoring violation after delegation).
    DriftAfter(Duration),
}

/// One demo domain.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The domain (U-label form allowed).
    pub domain: &'static str,
    /// `None`: its own `ns1`/`ns2` inside the domain, with glue. `Some(d)`:
    /// the servers of demo domain `d`, declared without addresses and
    /// resolved through `probe.resolvers`.
    pub hosted_by: Option<&'static str>,
    pub fault: Fault,
    /// What it shows, for the log and `docs/demo.md`.
    pub shows: &'static str,
}

/// The demo domains. Add a row to add one; own servers get the next two
/// addresses in 127.0.53.0/24 in table order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        domain: "demo-good.ru",
        hosted_by: None,
        fault: Fault::None,
        shows: "delegated",
    },
    Scenario {
        domain: "demo-hosting.ru",
        hosted_by: None,
        fault: Fault::None,
        shows: "delegated; its servers also serve demo-hosted.ru and демо.рф",
    },
    Scenario {
        domain: "demo-hosted.ru",
        hosted_by: Some("demo-hosting.ru"),
        fault: Fault::None,
        shows: "delegated; servers outside the domain, resolved through probe.resolvers",
    },
    Scenario {
        domain: "демо.рф",
        hosted_by: Some("demo-hosting.ru"),
        fault: Fault::None,
        shows: "delegated; an IDN domain in the second zone",
    },
    Scenario {
        domain: "demo-warn.ru",
        hosted_by: None,
        fault: Fault::NoEdns,
        shows: "delegated with an EDNS warning (ns2 answers FORMERR to EDNS)",
    },
    Scenario {
        domain: "demo-lame.ru",
        hosted_by: None,
        fault: Fault::Lame,
        shows: "testing, LAME: ns2 refuses the zone",
    },
    Scenario {
        domain: "demo-serial.ru",
        hosted_by: None,
        fault: Fault::Serial,
        shows: "testing, SOA_CONSISTENT: ns2 serves another SOA serial",
    },
    Scenario {
        domain: "demo-notcp.ru",
        hosted_by: None,
        fault: Fault::NoTcp,
        shows: "testing, TCP: ns2 does not answer over TCP",
    },
    Scenario {
        domain: "demo-nsset.ru",
        hosted_by: None,
        fault: Fault::NsSet,
        shows: "testing, NS_SET_MATCHES: the zone lists an undeclared ns3",
    },
    Scenario {
        domain: "demo-glue.ru",
        hosted_by: None,
        fault: Fault::Glue,
        shows: "testing, GLUE_MATCHES: the zone publishes another address for ns2",
    },
    Scenario {
        domain: "demo-down.ru",
        hosted_by: None,
        fault: Fault::Silent,
        shows: "testing, RESPONSIVE: ns2 never answers; its downtime accrues",
    },
    Scenario {
        domain: "demo-drift.ru",
        hosted_by: None,
        fault: Fault::DriftAfter(Duration::from_secs(30)),
        shows: "delegated, then a monitoring violation (SOA_CONSISTENT) once ns2's serial moves on 30 s after start",
    },
];

fn ascii(name: &str) -> Result<String, DemoError> {
    idna::domain_to_ascii(name).map_err(|_| DemoError::Name(name.to_string()))
}

fn dns_name(name: &str) -> Result<Name, DemoError> {
    let mut n = Name::from_ascii(ascii(name)?).map_err(|_| DemoError::Name(name.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// A demo host: name (A-label form) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub addr: Ipv4Addr,
}

/// The servers a scenario declares, in order (ns1, ns2).
pub fn declared(s: &Scenario) -> Result<Vec<Host>, DemoError> {
    let mut next = 1u8;
    for sc in SCENARIOS {
        let owner = s.hosted_by.unwrap_or(s.domain);
        if sc.hosted_by.is_none() {
            if sc.domain == owner {
                let d = ascii(sc.domain)?;
                return Ok(vec![
                    Host {
                        name: format!("ns1.{d}"),
                        addr: Ipv4Addr::new(NET[0], NET[1], NET[2], next),
                    },
                    Host {
                        name: format!("ns2.{d}"),
                        addr: Ipv4Addr::new(NET[0], NET[1], NET[2], next + 1),
                    },
                ]);
            }
            next = next.saturating_add(2);
        }
    }
    Err(DemoError::Name(s.domain.to_string()))
}

/// The demo registry in the import format (docs/import.md), for the
/// ordinary import: the scenarios whose domain `keep` accepts.
pub fn import_json(keep: impl Fn(&Scenario) -> bool) -> Result<String, DemoError> {
    use serde_json::json;
    let mut domains = Vec::new();
    for s in SCENARIOS.iter().filter(|s| keep(s)) {
        let own = s.hosted_by.is_none();
        let ns: Vec<_> = declared(s)?
            .into_iter()
            .map(|h| {
                if own {
                    json!({"name": h.name, "addresses": [h.addr.to_string()]})
                } else {
                    json!({"name": h.name})
                }
            })
            .collect();
        domains.push(json!({
            "name": s.domain, "registrar": REGISTRAR, "registrant": CONTACT,
            "admin": CONTACT, "tech": CONTACT,
            "created": "2026-01-15T10:00:00Z", "paid_till": "2036-01-15T10:00:00Z",
            "nameservers": ns, "auth_info": null, "hold": false,
            "verification_requested": null, "transferred": null,
        }));
    }
    let token = crate::synth::sample_token(REGISTRAR);
    let v = json!({
        "registrars": [{
            "handle": REGISTRAR, "name": "Demo Registrar LLC", "url": "https://demo-registrar.invalid",
            "email": "abuse@demo-registrar.invalid",
            "api_token_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())),
        }],
        "contacts": [{
            "handle": CONTACT, "kind": "org", "name": "Demo Operator", "org": "OOO Demo Hosting",
            "email": "hostmaster@demo-hosting.invalid", "phone": "+7.4950000000",
            "address": {"street": ["Tverskaya 1"], "city": "Moscow", "postal_code": "125009", "country": "RU"},
            "tax_id": null, "birth_date": null, "passport": null, "disclose": ["org", "email"],
        }],
        "domains": domains,
    });
    Ok(v.to_string())
}

/// Import the demo domains of the configured zones (idempotent: an
/// unchanged set keeps its delegation state). Returns their names as stored.
pub fn import(store: &dyn Store, cfg: &Config, now: Timestamp) -> Result<Vec<String>, DemoError> {
    let zones = cfg.zones().map_err(|e| crate::import::ImportError::Json {
        path: "demo".into(),
        message: e.to_string(),
    })?;
    let text = import_json(|s| zones.parse_domain(s.domain).is_ok())?;
    let batch = crate::import::parse(text.as_bytes(), "demo", cfg, &zones, now)?;
    crate::import::apply(store, &batch, cfg, now)?;
    Ok(batch
        .domains
        .iter()
        .map(|d| d.name.as_str().to_string())
        .collect())
}

/// One demo server: its zones and the server-wide faults.
#[derive(Debug, Default)]
struct Server {
    zones: Vec<Zone>,
    behaviour: Behaviour,
}

/// Host names with their addresses (what the demo resolver answers).
type HostTable = Vec<(Name, IpAddr)>;

/// Every demo server by address, and the resolver's host table.
fn build() -> Result<(HashMap<Ipv4Addr, Server>, HostTable), DemoError> {
    let mut servers: HashMap<Ipv4Addr, Server> = HashMap::new();
    let mut hosts = Vec::new();
    for s in SCENARIOS {
        let apex = dns_name(s.domain)?;
        let decl = declared(s)?;
        let mut ns = Vec::new();
        for h in &decl {
            ns.push(dns_name(&h.name)?);
        }
        if s.fault == Fault::NsSet {
            ns.push(dns_name(&format!("ns3.{}", ascii(s.domain)?))?);
        }
        let mut zone_hosts = Vec::new();
        for (h, n) in decl.iter().zip(&ns) {
            if s.hosted_by.is_none() {
                hosts.push((n.clone(), IpAddr::V4(h.addr)));
            }
            if apex.zone_of(n) {
                let addr = if s.fault == Fault::Glue && h.name.starts_with("ns2.") {
                    WRONG_GLUE
                } else {
                    h.addr
                };
                zone_hosts.push((n.clone(), IpAddr::V4(addr)));
            }
        }
        for (i, h) in decl.iter().enumerate() {
            let ns2 = i == 1;
            let mut zone = Zone::new(apex.clone(), ns.clone());
            zone.serial = if ns2 && s.fault == Fault::Serial {
                SERIAL + 1
            } else {
                SERIAL
            };
            zone.drift = match s.fault {
                Fault::DriftAfter(d) if ns2 => Some((d, SERIAL + 1)),
                _ => None,
            };
            zone.hosts = zone_hosts.clone();
            zone.lame = ns2 && s.fault == Fault::Lame;
            let srv = servers.entry(h.addr).or_default();
            srv.zones.push(zone);
            // Server-wide faults only on a scenario's own servers.
            if ns2 && s.hosted_by.is_none() {
                let b = &mut srv.behaviour;
                b.no_tcp |= s.fault == Fault::NoTcp;
                b.silent |= s.fault == Fault::Silent;
                b.formerr_edns |= s.fault == Fault::NoEdns;
            }
        }
    }
    Ok((servers, hosts))
}

/// The demo's sockets, bound; [`Demo::run`] serves them.
pub struct Demo {
    bound: Vec<(UdpSocket, Option<TcpListener>, Arc<Responder>)>,
    /// Addresses of the authoritative servers, and where the resolver is.
    pub servers: Vec<SocketAddr>,
    pub resolvers: Vec<SocketAddr>,
}

fn bind_error(addr: SocketAddr, proto: &'static str, e: std::io::Error) -> DemoError {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root: set probe.port to e.g. 5300 for the demo)"
        }
        std::io::ErrorKind::AddrInUse => " (is another zonekeeper demo running?)",
        _ => "",
    };
    DemoError::Bind {
        addr,
        proto,
        source: e,
        hint,
    }
}

impl Demo {
    /// Bind every demo server on `probe.port` and the resolver on each
    /// loopback `probe.resolvers` address (UDP and TCP).
    pub async fn bind(cfg: &Config) -> Result<Demo, DemoError> {
        let (servers, hosts) = build()?;
        let mut d = Demo {
            bound: Vec::new(),
            servers: Vec::new(),
            resolvers: Vec::new(),
        };
        let mut addrs: Vec<_> = servers.into_iter().collect();
        addrs.sort_by_key(|(ip, _)| *ip);
        for (ip, srv) in addrs {
            let addr = SocketAddr::new(IpAddr::V4(ip), cfg.probe.port);
            let tcp = !srv.behaviour.no_tcp;
            let r = Arc::new(Responder::new(srv.zones, srv.behaviour));
            d.bind_one(addr, r, tcp).await?;
            d.servers.push(addr);
        }
        let resolver = Arc::new(Responder::resolver(hosts));
        for r in &cfg.probe.resolvers {
            if r.ip().is_loopback() {
                d.bind_one(*r, resolver.clone(), true).await?;
                d.resolvers.push(*r);
            }
        }
        Ok(d)
    }

    async fn bind_one(
        &mut self,
        addr: SocketAddr,
        r: Arc<Responder>,
        tcp: bool,
    ) -> Result<(), DemoError> {
        let proto = if tcp { "UDP/TCP" } else { "UDP" };
        let (u, t) = authdns::bind(addr, tcp)
            .await
            .map_err(|e| bind_error(addr, proto, e))?;
        self.bound.push((u, t, r));
        Ok(())
    }

    /// Serve until `stop` is cancelled (spawned on the current runtime).
    pub fn run(self, stop: CancellationToken) {
        let hits = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (u, t, r) in self.bound {
            tasks.extend(authdns::spawn(u, t, r, hits.clone()));
        }
        tokio::spawn(async move {
            stop.cancelled().await;
            for t in tasks {
                t.abort();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_build_and_import() {
        let (servers, hosts) = build().unwrap();
        // demo-hosting.ru's two servers carry three zones each.
        let h = declared(&SCENARIOS[1]).unwrap();
        assert_eq!(servers[&h[0].addr].zones.len(), 3);
        assert!(hosts
            .iter()
            .any(|(n, _)| n.to_ascii() == "ns1.demo-hosting.ru."));
        // The demo runs with loopback targets allowed (its glue is 127.0.53.x).
        let mut cfg = Config::default();
        cfg.probe.allow_loopback_targets = true;
        let zones = cfg.zones().unwrap();
        let batch = crate::import::parse(
            import_json(|_| true).unwrap().as_bytes(),
            "demo",
            &cfg,
            &zones,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(batch.domains.len(), SCENARIOS.len());
        for a in servers.keys() {
            assert_eq!(a.octets()[..3], NET);
        }
    }

    #[test]
    fn the_demo_needs_loopback_only_probing() {
        let ok = "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nresolvers = [\"127.0.0.1:5399\"]\n";
        Config::from_toml(ok, std::path::Path::new("t")).unwrap();
        for bad in [
            "[demo]\nenabled = true\n[probe]\nresolvers = [\"127.0.0.1:5399\"]\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nallow_private_targets = true\nresolvers = [\"127.0.0.1:5399\"]\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\n",
            "[demo]\nenabled = true\n[probe]\nallow_loopback_targets = true\nresolvers = [\"192.0.2.53:53\"]\n",
        ] {
            let e = Config::from_toml(bad, std::path::Path::new("t")).unwrap_err();
            assert!(e.to_string().contains("demo.enabled"), "{e}");
        }
    }
}

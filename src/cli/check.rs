//! `zonekeeper check` (docs/cli.md): one-shot readiness check of a declared set.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use super::common::Fail;
use crate::checks::{NsTarget, Profile, Verifier};
use crate::config::Config;
use crate::model::{CheckReport, Severity};
use crate::names;

#[derive(Args)]
pub struct CheckArgs {
    /// Domain to check.
    pub domain: String,
    /// Declared nameserver: NAME[/ADDR[,ADDR…]]; repeat for each server.
    #[arg(long = "ns", required = true)]
    pub ns: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Permit loopback/private/reserved probe targets.
    #[arg(long)]
    pub allow_private: bool,
    /// Check policy profile (TOML).
    #[arg(long)]
    pub profile: Option<std::path::PathBuf>,
    /// DS record "KEYTAG ALG DIGESTTYPE HEXDIGEST"; repeat for each. The
    /// DNSSEC checks then run.
    #[arg(long = "ds")]
    pub ds: Vec<String>,
}

/// Parse `NAME[/ADDR[,ADDR…]]`.
pub fn parse_ns(s: &str) -> Result<NsTarget, String> {
    let (name, addrs) = match s.split_once('/') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    let name = names::parse_host(name).map_err(|e| format!("--ns '{s}': {e}"))?;
    let mut out: Vec<SocketAddr> = Vec::new();
    if let Some(a) = addrs {
        for part in a.split(',') {
            let sa = crate::config::parse_socket_addr_53(part)
                .map_err(|e| format!("--ns '{s}': {e}"))?;
            if out.contains(&sa) {
                return Err(format!("--ns '{s}': {sa} is listed twice"));
            }
            out.push(sa);
        }
    }
    Ok(NsTarget { name, addrs: out })
}

pub fn run(cfg: Config, args: CheckArgs) -> Result<ExitCode, Fail> {
    let zones = cfg.zones()?;
    let domain = zones
        .parse_domain(&args.domain)
        .map_err(|e| Fail(format!("domain '{}': {e}", args.domain.trim())))?;
    let targets = args
        .ns
        .iter()
        .map(|s| parse_ns(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail)?;
    let mut ds = Vec::new();
    for d in &args.ds {
        let r = crate::registry::input::ds::parse_presentation(d)
            .map_err(|e| Fail(format!("--ds: {e}")))?;
        if !ds.contains(&r) {
            ds.push(r);
        }
    }
    if ds.len() > crate::registry::input::ds::MAX_DS {
        return Err(Fail(format!(
            "--ds: more than {} DS records",
            crate::registry::input::ds::MAX_DS
        )));
    }
    let profile_path = args.profile.or(cfg.delegation.profile.clone());
    let profile = match &profile_path {
        Some(p) => Profile::load(p)?,
        None => Profile::registry_default(),
    };
    let mut probe = cfg.probe.clone();
    probe.allow_private_targets |= args.allow_private;
    let verifier = Verifier::new(&probe, profile)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail(format!("cannot start the async runtime: {e}")))?;
    let report = rt.block_on(verifier.check_targets_ds(&domain, &targets, &ds));
    if args.json {
        let text = serde_json::to_string(&report)?;
        println!("{text}");
    } else {
        print!("{}", render_text(&report));
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Human report, grouped by server.
pub fn render_text(r: &CheckReport) -> String {
    let mut s = String::new();
    let count = |sev: Severity| r.findings.iter().filter(|f| f.severity == sev).count();
    let _ = writeln!(
        s,
        "{}: {} ({} error(s), {} warning(s), {} notice(s)) in {} ms",
        r.domain,
        if r.passed() {
            "PASS — would be delegated"
        } else {
            "FAIL — would not be delegated"
        },
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Notice),
        r.duration_ms
    );
    let line = |s: &mut String, f: &crate::model::Finding| {
        let _ = writeln!(
            s,
            "    {:<7} {:<16} {}{}",
            f.severity.as_str(),
            f.id,
            f.address
                .as_deref()
                .map(|a| format!("[{a}] "))
                .unwrap_or_default(),
            // Messages quote DNS data from the servers checked.
            crate::text::escape(&f.message)
        );
    };
    let general: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            f.server
                .as_deref()
                .is_none_or(|n| !r.servers.iter().any(|s| s.name == n))
        })
        .collect();
    if !general.is_empty() {
        let _ = writeln!(s, "\n  Declared set / zone:");
        for f in general {
            line(&mut s, f);
        }
    }
    for srv in &r.servers {
        let _ = writeln!(
            s,
            "\n  {} [{}] — {}{}{}",
            srv.name,
            if srv.addresses.is_empty() {
                "no address".to_string()
            } else {
                srv.addresses.join(", ")
            },
            if srv.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            },
            srv.soa_serial
                .map(|x| format!(", SOA serial {x}"))
                .unwrap_or_default(),
            srv.rtt_ms
                .map(|x| format!(", rtt {x} ms"))
                .unwrap_or_default(),
        );
        let mine: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.server.as_deref() == Some(srv.name.as_str()))
            .collect();
        if mine.is_empty() {
            let _ = writeln!(s, "    ok");
        }
        for f in mine {
            line(&mut s, f);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_syntax() {
        let t = parse_ns("NS1.Example.RU/127.0.0.1:5353,[::1]:5353,192.0.2.1").unwrap();
        assert_eq!(t.name.as_str(), "ns1.example.ru");
        assert_eq!(
            t.addrs,
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:5353".parse().unwrap(),
                "192.0.2.1:53".parse().unwrap()
            ]
        );
        assert!(parse_ns("ns2.example.net").unwrap().addrs.is_empty());
        assert!(parse_ns("ns1/1.2.3.4").is_err());
        assert!(parse_ns("ns1.example.ru/1.2.3").is_err());
        assert!(parse_ns("ns1.example.ru/1.2.3.4,1.2.3.4").is_err());
        assert!(parse_ns("ns1.example.ru/").is_err());
        assert!(parse_ns("ns1.example.ru/1.2.3.4:0").is_err());
    }
}

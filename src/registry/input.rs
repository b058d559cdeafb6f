//! Rules for declared data shared by every edge (import, the registrar
//! API, the control socket, EPP): handles and nameserver sets.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Deserialize;

use crate::model::Nameserver;
use crate::names;
use crate::text;

/// Most addresses per nameserver.
pub const MAX_ADDRESSES_PER_NS: usize = 16;
/// Most nameservers per domain.
pub const MAX_NAMESERVERS: usize = 13;

/// A nameserver as declared by import and the registrar API.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NameserverIn {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// A registrar, contact or reseller handle.
pub fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Validate a declared NS set for `domain` (shared by import and the API).
pub fn validate_nameservers(
    domain: &str,
    ns: &[NameserverIn],
    min: usize,
) -> Result<Vec<Nameserver>, Vec<(String, String)>> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    if ns.len() == 1 || (!ns.is_empty() && ns.len() < min) {
        errs.push((
            "nameservers".into(),
            format!(
                "{} nameserver(s) declared; at least {min} are required (or none, to stay undelegated)",
                ns.len()
            ),
        ));
    }
    if ns.len() > MAX_NAMESERVERS {
        errs.push((
            "nameservers".into(),
            format!("more than {MAX_NAMESERVERS} nameservers"),
        ));
    }
    let mut names = HashSet::new();
    let mut all_addrs: HashSet<IpAddr> = HashSet::new();
    for (j, n) in ns.iter().enumerate() {
        let f = |s: &str| format!("nameservers[{j}].{s}");
        let host = match names::parse_host(&n.name) {
            Ok(h) => h,
            Err(e) => {
                errs.push((f("name"), e.to_string()));
                continue;
            }
        };
        if !names.insert(host.clone()) {
            errs.push((f("name"), format!("'{host}' is declared twice")));
        }
        let in_bailiwick = host.is_at_or_below(domain);
        let mut addrs = Vec::new();
        for (k, a) in n.addresses.iter().enumerate() {
            // One address, one form: `::ffff:192.0.2.1` is 192.0.2.1, so
            // it cannot pass for a second, distinct address.
            match a.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(ip) => {
                    if addrs.contains(&ip) {
                        errs.push((
                            f(&format!("addresses[{k}]")),
                            format!("{ip} is listed twice"),
                        ));
                    } else if !all_addrs.insert(ip) {
                        errs.push((
                            f(&format!("addresses[{k}]")),
                            format!("{ip} is already used by another nameserver; each server needs distinct addresses"),
                        ));
                    } else {
                        addrs.push(ip);
                    }
                }
                Err(_) => errs.push((
                    f(&format!("addresses[{k}]")),
                    format!("'{}' is not an IPv4 or IPv6 address", text::escape(a)),
                )),
            }
        }
        if addrs.len() > MAX_ADDRESSES_PER_NS {
            errs.push((
                f("addresses"),
                format!("more than {MAX_ADDRESSES_PER_NS} addresses"),
            ));
        }
        if in_bailiwick && n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is inside {domain}, so glue addresses are required"),
            ));
        }
        if !in_bailiwick && !n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is outside {domain}; glue addresses are only accepted for names inside the domain"),
            ));
        }
        out.push(Nameserver {
            name: host,
            addresses: addrs,
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

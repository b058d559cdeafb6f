//! Value forms written in the TOML: durations in human form (`10m`,
//! `4d`), registration periods in months or years, DNS server addresses
//! with port 53 implied, the zone's own host names.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::error::ConfigError;

/// A duration written in human form (`30s`, `10m`, `4d`).
pub(super) fn human<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("'{s}': {e}")))
}

pub(super) fn human_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    human(d).map(Some)
}

/// A registration period: whole calendar months or years (`1y`, `12months`),
/// since `paid_till` moves by calendar year, not by 365 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Months(pub u32);

impl<'de> Deserialize<'de> for Months {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u32 = num.parse().map_err(|_| {
            serde::de::Error::custom(format!("'{s}': expected e.g. '1y' or '12months'"))
        })?;
        let months = match unit.trim() {
            "y" | "year" | "years" => n.checked_mul(12),
            "M" | "month" | "months" => Some(n),
            _ => None,
        };
        match months {
            Some(m) if m > 0 => Ok(Months(m)),
            _ => Err(serde::de::Error::custom(format!(
                "'{s}': expected a whole number of years or months, e.g. '1y' or '12months'"
            ))),
        }
    }
}

/// Socket addresses written as `ip` (port 53 implied) or `ip:port`.
pub(super) fn socket_addrs_53<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<SocketAddr>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_socket_addr_53(s).map_err(serde::de::Error::custom))
        .collect()
}

/// A DNS server's address: `192.0.2.53`, `192.0.2.53:5353`,
/// `2001:db8::53`, `[2001:db8::53]` or `[2001:db8::53]:5353` (port 53 by
/// default; port 0 refused). One rule for `probe.resolvers`,
/// `probe.canaries` and `check --ns NAME/ADDR`.
pub fn parse_socket_addr_53(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let addr = if let Ok(a) = t.parse::<SocketAddr>() {
        Some(a)
    } else if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        Some(SocketAddr::new(ip, 53))
    } else {
        t.strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
            .map(|ip| SocketAddr::new(ip.into(), 53))
    };
    match addr {
        Some(a) if a.port() == 0 => Err(format!(
            "'{}': port 0 is not a valid DNS port",
            s.escape_debug()
        )),
        Some(a) => Ok(a),
        None => Err(format!(
            "'{}' is not an IPv4/IPv6 address (expected e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:5353)",
            s.escape_debug()
        )),
    }
}

/// A host name of the zone's own records (SOA MNAME/RNAME, apex NS).
pub(super) fn zone_name(key: &str, v: &str) -> Result<crate::names::HostName, ConfigError> {
    crate::names::parse_host(v).map_err(|e| {
        ConfigError::Invalid(format!(
            "{key}: '{}': {}",
            crate::text::escape(v),
            crate::text::escape(&e.to_string())
        ))
    })
}

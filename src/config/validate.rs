//! What a parsed configuration must satisfy across keys (ranges, the
//! zone file's names, the demo's loopback-only rule).

use super::error::ConfigError;
use super::file::Config;
use super::forms::zone_name;

impl Config {
    /// The names the zone file is built from, with their keys.
    fn zone_names(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("zone.primary", &self.zone.primary),
            ("zone.hostmaster", &self.zone.hostmaster),
        ]
        .into_iter()
        .chain(
            self.zone
                .nameservers
                .iter()
                .map(|n| ("zone.nameservers", n)),
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delegation;
        if self.zones.is_empty() {
            return Err(ConfigError::Invalid(
                "zones must name at least one zone".into(),
            ));
        }
        let zones = self.zones()?;
        for t in self.names.load()? {
            if !zones.contains(&t.zone) {
                return Err(ConfigError::Invalid(format!(
                    "names.tables: a table governs zone '{}', which is not in zones",
                    t.zone
                )));
            }
        }
        // (`epp.listen` without `epp.cert`/`key`/`client_ca` is refused when
        // the EPP server starts: each key alone must load.)
        if self.epp.max_frame_bytes < 1024 || self.epp.max_sessions_per_registrar == 0 {
            return Err(ConfigError::Invalid(
                "epp.max_frame_bytes must be at least 1024 and epp.max_sessions_per_registrar at least 1".into(),
            ));
        }
        if self.epp.max_connections_per_ip == 0 || self.lifecycle.auth_code_max_failures == 0 {
            return Err(ConfigError::Invalid(
                "epp.max_connections_per_ip and lifecycle.auth_code_max_failures must be at least 1"
                    .into(),
            ));
        }
        let text_err = |e: crate::text::TextError| ConfigError::Invalid(e.to_string());
        crate::text::check_line("whois.source", &self.whois.source, 64).map_err(text_err)?;
        match &self.rdap.base_url {
            Some(u) => crate::text::check_url("rdap.base_url", u).map_err(text_err)?,
            None if !self.http.listen.ip().is_loopback() => {
                return Err(ConfigError::Invalid(format!(
                    "rdap.base_url is required when http.listen ({}) is not a loopback address: RDAP links must name the public URL",
                    self.http.listen
                )))
            }
            None => {}
        }
        // Written into the zone file as names: a newline and `$INCLUDE`
        // here would break (or extend) the zone.
        for (k, v) in self.zone_names() {
            let n = zone_name(k, v)?;
            if n.as_str() != v.trim().trim_end_matches('.') {
                return Err(ConfigError::Invalid(format!(
                    "{k}: '{}' is not in A-label form ('{n}')",
                    crate::text::escape(v)
                )));
            }
        }
        if d.min_nameservers < 2 {
            return Err(ConfigError::Invalid(
                "delegation.min_nameservers must be at least 2 (registry rule)".into(),
            ));
        }
        for (k, v) in [
            ("delegation.probe_interval", d.probe_interval),
            ("delegation.test_window", d.test_window),
            ("delegation.downtime_period", d.downtime_period),
            ("delegation.monitor_interval", d.monitor_interval),
            ("delegation.recheck_interval", d.recheck_interval),
            ("probe.outage_window", self.probe.outage_window),
            ("probe.timeout", self.probe.timeout),
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.send_timeout", self.http.send_timeout),
        ] {
            if v.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{k} must be greater than zero"
                )));
            }
        }
        if ![2, 4].contains(&self.dnssec.cdnskey_digest_type) {
            return Err(ConfigError::Invalid(format!(
                "dnssec.cdnskey_digest_type must be 2 (SHA-256) or 4 (SHA-384), not {}",
                self.dnssec.cdnskey_digest_type
            )));
        }
        if self.dnssec.cds_scan_interval.is_some_and(|i| i.is_zero()) {
            return Err(ConfigError::Invalid(
                "dnssec.cds_scan_interval must be greater than zero (omit it to turn scanning off)"
                    .into(),
            ));
        }
        if d.downtime_budget > d.downtime_period {
            return Err(ConfigError::Invalid(
                "delegation.downtime_budget cannot exceed delegation.downtime_period".into(),
            ));
        }
        // A re-probe must not be due before a round against a dead server
        // can have ended (every query timing out, with its retries).
        let dead_round = self
            .probe
            .timeout
            .saturating_mul(self.probe.retries.saturating_add(1));
        if d.recheck_interval < dead_round {
            return Err(ConfigError::Invalid(format!(
                "delegation.recheck_interval ({:?}) must be at least probe.timeout × (probe.retries + 1) ({:?})",
                d.recheck_interval, dead_round
            )));
        }
        if d.violation_confirmations == 0 {
            return Err(ConfigError::Invalid(
                "delegation.violation_confirmations must be at least 1".into(),
            ));
        }
        let th = self.probe.outage_threshold;
        if !(th > 0.0 && th <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "probe.outage_threshold must be within (0, 1]; got {th}"
            )));
        }
        if self.probe.port == 0 {
            return Err(ConfigError::Invalid(
                "probe.port must be a valid port (1–65535)".into(),
            ));
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            return Err(ConfigError::Invalid(
                "delegation.jitter must be within 0.0–1.0".into(),
            ));
        }
        if d.max_concurrent_rounds == 0
            || d.commit_batch == 0
            || self.probe.max_in_flight == 0
            || self.http.max_connections == 0
        {
            return Err(ConfigError::Invalid(
                "concurrency limits must be greater than zero".into(),
            ));
        }
        let api = &self.api;
        if api.max_concurrent_checks == 0
            || api.max_concurrent_checks_per_registrar == 0
            || api.max_concurrent_checks_per_registrar > api.max_concurrent_checks
        {
            return Err(ConfigError::Invalid(
                "api.max_concurrent_checks_per_registrar must be 1 ≤ it ≤ api.max_concurrent_checks"
                    .into(),
            ));
        }
        if self.whois.rate_limit_per_minute == 0
            || self.rdap.rate_limit_per_minute == 0
            || self.api.rate_limit_per_minute == 0
        {
            return Err(ConfigError::Invalid(
                "rate limits must be greater than zero (use *_rate_limit_exempt for trusted clients)"
                    .into(),
            ));
        }
        if self.demo.enabled {
            self.validate_demo()?;
        }
        if self.zones.len() > 1 {
            if let Some(out) = &self.zone.output {
                if !out.to_string_lossy().contains("{zone}") {
                    return Err(ConfigError::Invalid(
                        "zone.output must contain '{zone}' when several zones are configured"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The demo must keep every packet on loopback: its servers are probed
    /// only with loopback allowed (and nothing else private), and names are
    /// resolved only through loopback resolvers (the demo answers there).
    fn validate_demo(&self) -> Result<(), ConfigError> {
        let p = &self.probe;
        if !p.allow_loopback_targets {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.allow_loopback_targets = true (the demo servers are on 127.0.53.0/24)".into(),
            ));
        }
        if p.allow_private_targets {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.allow_private_targets = false: the sample registry's documentation addresses must not be probed".into(),
            ));
        }
        if p.resolvers.is_empty() || p.resolvers.iter().any(|r| !r.ip().is_loopback()) {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.resolvers to list only loopback addresses (the demo answers there; nothing may leave loopback)".into(),
            ));
        }
        Ok(())
    }
}

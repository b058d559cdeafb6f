//! What registrars and the public reach: `[whois]`, `[http]`, `[rdap]`,
//! `[api]`, `[epp]` and `[webhook]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::forms::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhoisConfig {
    pub listen: SocketAddr,
    pub rate_limit_per_minute: u32,
    pub rate_limit_exempt: Vec<IpNet>,
    pub max_connections: usize,
    #[serde(deserialize_with = "human")]
    pub read_timeout: Duration,
    /// The `source:` line.
    pub source: String,
}

impl Default for WhoisConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4343".parse().expect("static address"),
            rate_limit_per_minute: 30,
            rate_limit_exempt: Vec::new(),
            max_connections: 1024,
            read_timeout: Duration::from_secs(10),
            source: "TCI".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "human")]
    pub request_timeout: Duration,
    /// A client must send a request's complete headers within this time
    /// (also the idle limit between keep-alive requests); else it is cut off
    /// (slowloris).
    #[serde(deserialize_with = "human")]
    pub header_read_timeout: Duration,
    /// Connections open at once; beyond this a new one gets 503 and is
    /// closed.
    pub max_connections: usize,
    /// An answer whose write makes no progress for this long (the client
    /// stopped reading) closes the connection.
    #[serde(deserialize_with = "human")]
    pub send_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            send_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RdapConfig {
    pub rate_limit_per_minute: u32,
    pub rate_limit_exempt: Vec<IpNet>,
    /// Public base URL for links, e.g. `https://rdap.example/rdap/`
    /// (http or https). Required when `http.listen` is not a loopback
    /// address; default (development): `http://{http.listen}/rdap/`. Never
    /// taken from a request's Host header.
    pub base_url: Option<String>,
    /// Most results a search returns.
    pub search_limit: usize,
}

impl Default for RdapConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            rate_limit_exempt: Vec::new(),
            base_url: None,
            search_limit: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub rate_limit_per_minute: u32,
    pub page_size: usize,
    /// `/api/v1/check` runs at once, all registrars together (503 beyond).
    pub max_concurrent_checks: usize,
    /// `/api/v1/check` runs at once of one registrar (429 beyond), so one
    /// cannot starve the others; at most `max_concurrent_checks`.
    pub max_concurrent_checks_per_registrar: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            page_size: 100,
            // Each one-shot check sends DNS queries: a few at once.
            max_concurrent_checks: 8,
            max_concurrent_checks_per_registrar: 2,
        }
    }
}

/// The EPP server (RFC 5730–5734) for registrars; off unless `listen` is
/// set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EppConfig {
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM of the CA(s) that sign registrars' client certificates.
    pub client_ca: Option<PathBuf>,
    /// A session must log in within this.
    #[serde(deserialize_with = "human")]
    pub login_timeout: Duration,
    /// A logged-in session that sends nothing for this long is closed.
    #[serde(deserialize_with = "human")]
    pub idle_timeout: Duration,
    /// A client must send a whole frame within this once it started it.
    #[serde(deserialize_with = "human")]
    pub frame_timeout: Duration,
    /// Largest frame accepted (bytes, header included).
    pub max_frame_bytes: usize,
    pub max_sessions_per_registrar: usize,
    /// Commands per minute per registrar, all its sessions together.
    pub rate_limit_per_minute: u32,
    /// Connections one client address may hold (counted before TLS).
    pub max_connections_per_ip: usize,
    /// The TLS handshake must finish within this.
    #[serde(deserialize_with = "human")]
    pub handshake_timeout: Duration,
}

impl Default for EppConfig {
    fn default() -> Self {
        Self {
            listen: None,
            cert: None,
            key: None,
            client_ca: None,
            login_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            frame_timeout: Duration::from_secs(30),
            max_frame_bytes: 65_536,
            max_sessions_per_registrar: 4,
            rate_limit_per_minute: 600,
            max_connections_per_ip: 16,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// Registrar webhook delivery (docs/api.md, "Webhooks").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Longest wait for the receiver's TCP (and TLS) connection.
    #[serde(deserialize_with = "human")]
    pub connect_timeout: Duration,
    /// Longest wait for the whole POST, up to the answer's status line.
    #[serde(deserialize_with = "human")]
    pub timeout: Duration,
    /// How often an idle worker reads its feed, and the workers follow
    /// webhooks set or cleared meanwhile.
    #[serde(deserialize_with = "human")]
    pub poll_interval: Duration,
    /// The first retry's delay after a failed delivery; each further one
    /// doubles, up to `retry_max`.
    #[serde(deserialize_with = "human")]
    pub retry_initial: Duration,
    #[serde(deserialize_with = "human")]
    pub retry_max: Duration,
    /// An event still failing this long after its first failed attempt is
    /// given up (the feed keeps it).
    #[serde(deserialize_with = "human")]
    pub give_up_after: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

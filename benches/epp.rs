//! EPP load tool: `domain:check` and `domain:info` commands per second over
//! one and over 16 TLS sessions against the real EPP server (fixture
//! registry, client certificates made at run time), next to a bare TLS
//! echo server answering frames of the same sizes, in the same run.
//!
//! `cargo bench --bench epp` (about 1 minute). `EPP_BENCH_SECS` per phase
//! (default 5).

// The bench uses part of the tests' support code.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use zonekeeper::epp::frame::{read_frame, write_frame};
use zonekeeper::registry::Actor;

const A: &str = "REGRU-RU";
const PW: &str = "bench-password";

fn client_config(certs: &support::epp::Certs) -> Arc<rustls::ClientConfig> {
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    for c in CertificateDer::pem_slice_iter(&pem(&certs.ca)) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem(&certs.clients[0].cert))
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&pem(&certs.clients[0].key)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
    )
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(port: u16, cfg: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Run `sessions` sessions for `secs`, each sending `frames` in turn;
/// answers per second.
async fn run(
    port: u16,
    cfg: Arc<rustls::ClientConfig>,
    sessions: usize,
    secs: u64,
    login: Option<String>,
    frames: Arc<Vec<String>>,
) -> f64 {
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (cfg, login, frames) = (cfg.clone(), login.clone(), frames.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(port, cfg).await;
            if let Some(l) = &login {
                read_frame(&mut s, 1 << 20).await.unwrap(); // greeting
                write_frame(&mut s, l.as_bytes()).await.unwrap();
                let r = read_frame(&mut s, 1 << 20).await.unwrap();
                assert!(String::from_utf8_lossy(&r).contains("code=\"1000\""));
            }
            let mut n = 0u64;
            while Instant::now() < end {
                let f = &frames[n as usize % frames.len()];
                write_frame(&mut s, f.as_bytes()).await.unwrap();
                read_frame(&mut s, 1 << 20).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// A TLS server that answers each frame with a frame of `answer_len` bytes.
async fn echo(l: TcpListener, tls: rustls::ServerConfig, answer_len: usize) {
    let acc = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let Ok((tcp, _)) = l.accept().await else {
            return;
        };
        let acc = acc.clone();
        tokio::spawn(async move {
            let Ok(mut s) = acc.accept(tcp).await else {
                return;
            };
            let answer = vec![b'x'; answer_len];
            while read_frame(&mut s, 1 << 20).await.is_ok() {
                if write_frame(&mut s, &answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn main() {
    let secs: u64 = std::env::var("EPP_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let certs = support::epp::certs(&[A]);
        let s = support::api::Server::start(|c| {
            c.epp.max_sessions_per_registrar = 64;
            c.epp.rate_limit_per_minute = 100_000_000;
        })
        .await;
        let mut r = s.store().registrar(A).unwrap().unwrap();
        r.epp_cert_sha256 = vec![certs.clients[0].sha256.clone()];
        r.epp_password_hash = Some({
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(b"zonekeeper-bench").unwrap();
            argon2::Argon2::default()
                .hash_password(PW.as_bytes(), &salt)
                .unwrap()
                .to_string()
        });
        let batch = zonekeeper::store::ImportBatch {
            registrars: vec![r],
            ..Default::default()
        };
        zonekeeper::import::apply(s.store(), &batch, s.app.config(), support::api::start_time())
            .unwrap();
        let _ = s.app.registry().poll_ack(&Actor::Registrar(A.into()), 1);
        let mut epp_cfg = s.app.config().epp.clone();
        epp_cfg.cert = Some(certs.server.cert.clone());
        epp_cfg.key = Some(certs.server.key.clone());
        epp_cfg.client_ca = Some(certs.ca.clone());
        let tls = zonekeeper::epp::tls_config(&epp_cfg).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(zonekeeper::epp::serve(s.app.clone(), l, tls.clone()));

        let cfg = client_config(&certs);
        let login = support::epp::command(&support::epp::login(A, PW));
        let names = s.domains_of(A, 50);
        let check: Vec<String> = names
            .iter()
            .map(|n| {
                support::epp::command(&format!(
                    r#"<check><domain:check xmlns:domain="{}"><domain:name>{n}</domain:name></domain:check></check>"#,
                    support::epp::DOMAIN
                ))
            })
            .collect();
        let info: Vec<String> = names
            .iter()
            .map(|n| {
                support::epp::command(&format!(
                    r#"<info><domain:info xmlns:domain="{}"><domain:name>{n}</domain:name></domain:info></info>"#,
                    support::epp::DOMAIN
                ))
            })
            .collect();
        // Answer sizes, for the echo to send the same bytes.
        let mut probe = connect(port, cfg.clone()).await;
        read_frame(&mut probe, 1 << 20).await.unwrap();
        write_frame(&mut probe, login.as_bytes()).await.unwrap();
        read_frame(&mut probe, 1 << 20).await.unwrap();
        write_frame(&mut probe, check[0].as_bytes()).await.unwrap();
        let check_len = read_frame(&mut probe, 1 << 20).await.unwrap().len();
        write_frame(&mut probe, info[0].as_bytes()).await.unwrap();
        let info_len = read_frame(&mut probe, 1 << 20).await.unwrap().len();
        drop(probe);

        println!("EPP over TLS 1.3 with client certificates, loopback, 2 runtime workers (client and server share them), {secs}s per phase");
        println!("{:<14} {:>9} {:>12} {:>12} {:>7}", "command", "sessions", "epp/s", "echo/s", "ratio");
        for (label, frames, len) in [("domain:check", check, check_len), ("domain:info", info, info_len)] {
            let frames = Arc::new(frames);
            let el = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let eport = el.local_addr().unwrap().port();
            let echo_task = tokio::spawn(echo(el, tls.clone(), len + 4));
            for sessions in [1usize, 16] {
                let e = run(eport, cfg.clone(), sessions, secs, None, frames.clone()).await;
                let p = run(port, cfg.clone(), sessions, secs, Some(login.clone()), frames.clone()).await;
                println!("{label:<14} {sessions:>9} {p:>12.0} {e:>12.0} {:>7.2}", p / e);
            }
            echo_task.abort();
        }
        s.app.shutdown().cancel();
    });
}

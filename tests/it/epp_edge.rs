//! The EPP edge before and at login, with real TLS clients (Net::EPP) on
//! loopback: idle sockets from one address cannot take the slots of
//! another; a stalled TLS handshake is closed after `epp.handshake_timeout`;
//! failed logins back off per registrar ID and per address, on the app's
//! (manual) clock.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::epp::{start, A, B, PW_A, PW_B};
use support::epp::{code, login};
use zonekeeper::clock::Clock;

use crate::support;

/// A plain TCP connection to the EPP port from source address `from`.
fn connect_from(from: &str, port: u16) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let src: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&src.into())?;
    let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&dst.into())?;
    Ok(sock.into())
}

/// Whether the server closed `s` within `wait` (EOF or reset).
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_sockets_from_one_address_do_not_starve_another() {
    let env = start(|c| c.epp.handshake_timeout = Duration::from_secs(30)).await;
    let per_ip = env.s.app.config().epp.max_connections_per_ip;
    assert_eq!(per_ip, 16, "the default");
    tokio::task::spawn_blocking(move || {
        // 1,030 plain TCP connections from 127.0.0.2 that never start TLS.
        let mut idle = Vec::new();
        for _ in 0..1030 {
            idle.push(connect_from("127.0.0.2", env.port).unwrap());
        }
        // Those beyond the address's share are closed at once.
        let extra = idle.last_mut().unwrap();
        assert!(closed_within(extra, Duration::from_secs(5)));
        // The first ones are held (waiting for their handshake).
        assert!(!closed_within(&mut idle[0], Duration::from_millis(200)));
        // A real registrar from another address logs in and works.
        let mut a = env.logged_in(0);
        let r = a.cmd(&crate::epp::domain_cmd(
            "check",
            "<domain:name>svobodno.ru</domain:name>",
        ));
        assert_eq!(code(&r), 1000, "{r}");
        drop(idle);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_handshake_is_closed_after_the_timeout() {
    let env = start(|c| c.epp.handshake_timeout = Duration::from_millis(500)).await;
    tokio::task::spawn_blocking(move || {
        let mut s = connect_from("127.0.0.3", env.port).unwrap();
        let t = Instant::now();
        assert!(closed_within(&mut s, Duration::from_secs(10)));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        // Half a handshake (a TLS record header, then nothing): the same.
        let mut s = connect_from("127.0.0.3", env.port).unwrap();
        std::io::Write::write_all(&mut s, &[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(10)));
        // A real client still gets in.
        env.logged_in(1);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_back_off() {
    let env = start(|_| {}).await;
    tokio::task::spawn_blocking(move || {
        // Three wrong passwords (the session closes after the third).
        let mut c = env.client(0).unwrap();
        for expect in [2200, 2200, 2501] {
            let r = c.cmd(&login(A, "not the password"));
            assert_eq!(code(&r), expect, "{r}");
            assert!(r.contains("rule: epp-login"), "{r}");
        }
        drop(c);
        // The right password right after: refused, without being tried.
        let mut c = env.client(0).unwrap();
        let r = c.cmd(&login(A, PW_A));
        assert_eq!(code(&r), 2200, "{r}");
        assert!(r.contains("login-backoff"), "{r}");
        // The address backs off too: another registrar from it waits.
        let mut other = env.client(1).unwrap();
        let r = other.cmd(&login(B, PW_B));
        assert!(r.contains("login-backoff"), "{r}");
        drop(other);
        drop(c);
        // After the delay the right password works (and clears the count).
        env.s.clock.advance(Duration::from_secs(2));
        env.logged_in(0);
        // Many failures: refused for a while (15 minutes), not just delayed.
        for _ in 0..4 {
            // (A session is closed after its third failure.)
            let mut c = env.client(0).unwrap();
            for _ in 0..3 {
                let _ = c.cmd(&login(A, "still not it"));
                env.s.clock.advance(Duration::from_secs(61));
            }
        }
        env.s.clock.advance(Duration::from_secs(5 * 60));
        let mut c = env.client(0).unwrap();
        let r = c.cmd(&login(A, PW_A));
        assert!(r.contains("login-backoff"), "{r}");
        drop(c);
        env.s.clock.advance(Duration::from_secs(15 * 60));
        env.logged_in(0);
        let _ = env.s.clock.now();
    })
    .await
    .unwrap();
}

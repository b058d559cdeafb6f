//! Property-based fuzzing of WHOIS query handling beyond the parser's own
//! proptest (`whois::query::tests::never_panics`): arbitrary query lines are
//! parsed and answered from a store loaded with the 300-domain fixture, and
//! arbitrary bytes are sent to the real port-43 server on loopback. Every
//! answer is text, ends with a newline, carries no control characters but
//! newlines, and the server closes the connection within its read timeout.
//!
//! `ZK_FUZZ_CASES=N` for a longer run (default 300; the live-server property
//! runs a tenth of that).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::store::RedbStore;
use zonekeeper::whois::{self, query::parse_query};

const READ_TIMEOUT: Duration = Duration::from_millis(300);

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: App,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use chrono::TimeZone;
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.path = dir.path().join("fuzz.redb");
        cfg.whois.rate_limit_per_minute = 1_000_000;
        cfg.whois.read_timeout = READ_TIMEOUT;
        let store = RedbStore::open(&cfg.store.path).unwrap();
        zonekeeper::import::import_file(&store, Path::new("fixtures/registry.json"), &cfg, now)
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = App::new(cfg, Arc::new(store), Arc::new(ManualClock::new(now))).unwrap();
        let addr = rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(whois::serve(app.clone(), l));
            addr
        });
        Fixture {
            rt,
            app,
            addr,
            _dir: dir,
        }
    })
}

fn cases() -> u32 {
    std::env::var("ZK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// A word of a query line: keywords, names in and out of the registry,
/// arbitrary Unicode, long runs.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "nameserver",
            "NAMESERVER",
            "registrar",
            "deldom1.ru",
            "DELDOM1.RU.",
            "ns1.deldom1.ru",
            "пример.рф",
            "xn--e1afmkfd.xn--p1ai",
            "xn--",
            "-a-.ru",
            "a..ru",
            ".",
            "*",
            "ru",
            "example.com",
            "REGRU-RU",
        ])
        .prop_map(String::from),
        "\\PC{0,30}",
        (1usize..300).prop_map(|n| "a".repeat(n)),
        (1usize..130).prop_map(|n| "a.".repeat(n)),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::collection::vec(word(), 0..4), prop::sample::select(vec!["\r\n", "\n", "", "\r"]))
            .prop_map(|(w, end)| format!("{}{end}", w.join(" ")).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ]
}

#[track_caller]
fn assert_text(answer: &str, input: &[u8]) {
    assert!(!answer.is_empty(), "{input:?}: empty answer");
    assert!(answer.ends_with('\n'), "{input:?}: {answer:?}");
    assert!(
        !answer
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r'),
        "{input:?}: control character in {answer:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn any_line_is_answered_or_refused_in_text(l in line()) {
        let f = fixture();
        let answer = match parse_query(&l) {
            Ok(q) => whois::answer(&f.app, &q).1,
            Err(e) => whois::format::error_line(&e.to_string()),
        };
        assert_text(&answer, &l);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: (cases() / 10).max(10), .. ProptestConfig::default() })]

    /// The live server: any bytes, with or without a line end or a
    /// half-close, get a text answer and a closed connection in bounded time.
    #[test]
    fn server_answers_any_bytes_and_closes(l in line(), half_close in any::<bool>()) {
        let f = fixture();
        let (answer, took) = f.rt.block_on(async {
            let start = Instant::now();
            let mut s = TcpStream::connect(f.addr).await.unwrap();
            // The server may answer and close before reading everything.
            let _ = s.write_all(&l).await;
            if half_close {
                let _ = s.shutdown().await;
            }
            let mut out = Vec::new();
            let read = tokio::time::timeout(READ_TIMEOUT * 4, s.read_to_end(&mut out)).await;
            assert!(read.is_ok(), "{l:?}: connection still open after {:?}", READ_TIMEOUT * 4);
            (out, start.elapsed())
        });
        let answer = String::from_utf8(answer).map_err(|e| TestCaseError::fail(format!("{l:?}: not UTF-8: {e}")))?;
        assert_text(&answer, &l);
        prop_assert!(took < READ_TIMEOUT * 3, "{:?}: took {:?}", l, took);
    }
}

//! Property-based fuzzing of RDAP path and query parsing: arbitrary paths,
//! query strings and methods sent through the whole HTTP router
//! (`zonekeeper::http::router`, in process via `tower::ServiceExt::oneshot`)
//! over a redb store loaded with the 300-domain fixture. Whatever arrives,
//! the answer is never a 500 and is either a result or an RFC 9083 error
//! object, always `application/rdap+json`.
//!
//! `ZK_FUZZ_CASES=N` for a longer run (default 400).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use tower::ServiceExt;
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::store::RedbStore;

struct Fixture {
    rt: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use chrono::TimeZone;
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.path = dir.path().join("fuzz.redb");
        let store = RedbStore::open(&cfg.store.path).unwrap();
        zonekeeper::import::import_file(&store, Path::new("fixtures/registry.json"), &cfg, now)
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = App::new(cfg, Arc::new(store), Arc::new(ManualClock::new(now))).unwrap();
        let router = rt.block_on(async { zonekeeper::http::router(app) });
        Fixture {
            rt,
            router,
            _dir: dir,
        }
    })
}

fn cases() -> u32 {
    std::env::var("ZK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// Percent-encodes everything but unreserved characters, so any bytes
/// (invalid UTF-8 included) reach the router.
fn enc(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A path segment or query value: words the router knows, names in and out
/// of the registry, wildcards, arbitrary Unicode and bytes, raw escapes.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "domain",
            "nameserver",
            "entity",
            "help",
            "domains",
            "nameservers",
            "entities",
            "reverse_search",
            "",
            ".",
            "..",
            "*",
            "deldom1.ru",
            "DelDom1.RU.",
            "ns1.deldom1.ru",
            "xn--e1afmkfd.xn--p1ai",
            "xn--",
            "%",
            "%zz",
            "%C0%80",
            "%00",
            "a*b*",
            "*.ru",
        ])
        .prop_map(String::from),
        "\\PC{0,40}".prop_map(|s| enc(s.as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| enc(&b)),
        (1usize..3000).prop_map(|n| "a".repeat(n)),
        (1usize..200).prop_map(|n| "a.".repeat(n)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "name",
            "nsLdhName",
            "nsIp",
            "fn",
            "handle",
            "role",
            "ldhName",
            "count",
            "cursor",
            "",
        ])
        .prop_map(String::from),
        piece(),
    ];
    prop_oneof![
        Just(String::new()),
        prop::collection::vec((key, piece()), 1..4).prop_map(|kv| {
            let q: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("?{}", q.join("&"))
        }),
        piece().prop_map(|p| format!("?{p}")),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        6 => Just(Method::GET),
        2 => Just(Method::HEAD),
        1 => Just(Method::POST),
        1 => Just(Method::DELETE),
        1 => Just(Method::OPTIONS),
    ]
}

/// Sends one request and checks what holds for any RDAP answer.
fn check(method: Method, uri: &str) -> Result<(), TestCaseError> {
    let f = fixture();
    let Ok(req) = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("host", "rdap.example")
        .body(Body::empty())
    else {
        // Not a URI a client could send.
        return Ok(());
    };
    let (status, ctype, body) = f.rt.block_on(async {
        let resp = f.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
            .await
            .unwrap();
        (status, ctype, body)
    });
    prop_assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR && !status.is_server_error()
            || status == StatusCode::NOT_IMPLEMENTED,
        "{method} {uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    prop_assert_eq!(
        ctype.as_str(),
        "application/rdap+json",
        "{} {}",
        method,
        uri
    );
    if method == Method::HEAD {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        TestCaseError::fail(format!(
            "{method} {uri}: {status} body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    prop_assert!(
        v["rdapConformance"].is_array(),
        "{} {}: no rdapConformance: {}",
        method,
        uri,
        v
    );
    if status.is_success() {
        prop_assert!(v.get("errorCode").is_none(), "{} {}: {}", method, uri, v);
    } else {
        // RFC 9083 §6.
        prop_assert_eq!(v["errorCode"].as_u64(), Some(u64::from(status.as_u16())));
        prop_assert!(v["title"].is_string(), "{}", v);
        prop_assert!(v["description"].is_array(), "{}", v);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_paths_get_a_result_or_an_rdap_error(
        m in method(),
        segs in prop::collection::vec(piece(), 1..5),
        q in query(),
    ) {
        check(m, &format!("/rdap/{}{q}", segs.join("/")))?;
    }

    #[test]
    fn arbitrary_lookups_and_searches(
        kind in prop::sample::select(vec!["domain", "nameserver", "entity"]),
        name in piece(),
        search in prop::sample::select(vec!["domains", "nameservers", "entities", "domains/reverse_search/entity"]),
        q in query(),
    ) {
        check(Method::GET, &format!("/rdap/{kind}/{name}"))?;
        check(Method::GET, &format!("/rdap/{search}{q}"))?;
    }
}

#[test]
fn known_awkward_requests() {
    for uri in [
        // Regression: the base URL with its slash fell outside the nested
        // RDAP router (a bare 404 with no body).
        "/rdap/",
        "/rdap",
        "/rdap/domain/%FF%FE",
        "/rdap/domain/%00",
        "/rdap/domain/",
        "/rdap/domain//",
        "/rdap/domain/a/b",
        "/rdap/domains?name=%FF",
        "/rdap/domains?name=*",
        "/rdap/domains?name=**",
        "/rdap/domains?name=%",
        "/rdap/domains?name=a&name=b",
        "/rdap/domains?nsIp=999.1.1.1",
        "/rdap/nameservers?ip=::ffff:127.0.0.1",
        "/rdap/entities?fn=%2A",
        "/rdap/domains/reverse_search/entity?handle=*&role=registrant",
        "/rdap/domains?count=99999999999999999999",
        "/rdap/../../etc/passwd",
        "/rdap/%2e%2e/%2e%2e/etc/passwd",
    ] {
        check(Method::GET, uri).unwrap_or_else(|e| panic!("{e}"));
    }
    let long = format!("/rdap/domain/{}", "a".repeat(60_000));
    check(Method::GET, &long).unwrap_or_else(|e| panic!("{e}"));
}

//! The cached public answers (src/answer_cache.rs) never outlive the data:
//! under concurrent RDAP and WHOIS load, every change is visible to the
//! first request after its commit returns; and RDAP's entity tags make a
//! repeat lookup a `304` until the data changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper::registry::Actor;

use crate::support::rdap::{fixture, get, send, Server};

const NAME: &str = "deldom1.ru";

async fn whois(addr: SocketAddr, q: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{q}\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn whois_held(answer: &str) -> bool {
    let state = answer
        .lines()
        .find(|l| l.starts_with("state:"))
        .unwrap_or_else(|| panic!("no state line: {answer}"));
    state.split(',').any(|t| t.trim().ends_with("HOLD"))
}

fn rdap_held(body: &serde_json::Value) -> bool {
    body["status"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "server hold")
}

async fn start() -> (Server, SocketAddr) {
    let s = fixture(|c| {
        // The load below must not be rate limited.
        c.rdap.rate_limit_exempt = vec!["127.0.0.0/8".parse().unwrap()];
        c.whois.rate_limit_exempt = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(zonekeeper::whois::serve(s.app.clone(), l));
    (s, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_is_visible_to_the_next_request_under_load() {
    let (s, whois_addr) = start().await;
    assert!(s.app.store.generation().is_some(), "redb store caches");
    let url = format!("{}domain/{NAME}", s.base);
    // Warm both caches.
    assert!(!rdap_held(&get(&url).await.json()));
    assert!(!whois_held(&whois(whois_addr, NAME).await));

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for i in 0..8 {
        let (stop, served, url) = (stop.clone(), served.clone(), url.clone());
        load.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 0 {
                    let g = send(c.get(&url)).await;
                    assert_eq!(g.status, 200, "{}", g.text);
                } else {
                    let a = whois(whois_addr, NAME).await;
                    assert!(a.contains("domain:"), "{a}");
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let c = reqwest::Client::new();
    for round in 0..25 {
        let reg = s.app.registry();
        let held = round % 2 == 0;
        if held {
            reg.hold(&Actor::Operator, NAME, "cache test").unwrap();
        } else {
            reg.release(&Actor::Operator, NAME).unwrap();
        }
        // The commit has returned: the very next answers show it.
        let body = send(c.get(&url)).await.json();
        assert_eq!(rdap_held(&body), held, "RDAP round {round}: {body}");
        let a = whois(whois_addr, NAME).await;
        assert_eq!(whois_held(&a), held, "WHOIS round {round}: {a}");
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn entity_tags_give_304_until_the_data_changes() {
    let (s, _) = start().await;
    let url = format!("{}domain/{NAME}", s.base);
    let c = reqwest::Client::new();
    let first = get(&url).await;
    let tag = first.header("etag").to_string();
    assert!(tag.starts_with('"') && tag.len() > 2, "{tag:?}");
    // Served again (now from the cache): the same bytes, the same tag.
    let again = get(&url).await;
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("etag"), tag);

    let cond = send(c.get(&url).header("if-none-match", &tag)).await;
    assert_eq!(cond.status, 304);
    assert!(cond.text.is_empty());
    assert_eq!(cond.header("etag"), tag);
    let other = send(c.get(&url).header("if-none-match", "\"0\", W/\"1\"")).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.text, first.text);

    let head = send(c.head(&url)).await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty());
    assert_eq!(head.header("etag"), tag);
    assert_eq!(head.header("content-type"), "application/rdap+json");

    s.app
        .registry()
        .hold(&Actor::Operator, NAME, "etag test")
        .unwrap();
    let changed = send(c.get(&url).header("if-none-match", &tag)).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), tag);
    assert!(rdap_held(&changed.json()));
}

#[tokio::test]
async fn the_clock_alone_changes_a_cached_answer() {
    let (s, whois_addr) = start().await;
    let url = format!("{}domain/{NAME}", s.base);
    let before = get(&url).await;
    assert_eq!(before.status, 200);
    let w = whois(whois_addr, NAME).await;
    assert!(w.contains("domain:"), "{w}");
    // Far past paid-till and every grace period: the registration is gone,
    // with no commit in between.
    s.clock
        .advance(std::time::Duration::from_secs(3 * 365 * 86_400));
    assert_eq!(get(&url).await.status, 404);
    let w = whois(whois_addr, NAME).await;
    assert!(!w.contains("domain:"), "{w}");
}

//! The cached public answers (src/answer_cache.rs) never outlive the data:
//! under concurrent RDAP and WHOIS load, every change to a domain, its
//! registrar or its contacts is visible to the first request after its
//! commit returns; a commit that changes nothing public (a probe round's
//! bookkeeping, another domain) keeps the answer cached; and RDAP's entity
//! tags make a repeat lookup a `304` until the data changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper::model::{DelegationState, DiscloseField};
use zonekeeper::registry::Actor;

use crate::support::rdap::{fixture, get, send, Server};

const NAME: &str = "deldom1.ru";
/// `NAME`'s registrar and its registrant (also its admin and tech).
const REGISTRAR: &str = "RUCENTER-RU";
const CONTACT: &str = "C1-RU";
/// A contact `REGISTRAR` sponsors, for the domains the test creates (a
/// domain names only its sponsor's contacts).
const OWN_CONTACT: &str = "C3-RU";

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
    assert!(s.app.store().stamps().is_some(), "redb store caches");
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
    let mut held = false;
    for round in 0..30 {
        let reg = s.app.registry();
        // Each kind of data the answer is built from, in turn.
        let (rdap_shows, whois_shows) = match round % 3 {
            0 => {
                held = !held;
                if held {
                    reg.hold(&Actor::Operator, NAME, "cache test").unwrap();
                } else {
                    reg.release(&Actor::Operator, NAME).unwrap();
                }
                (None, None)
            }
            1 => {
                // The registrar's public URL (RDAP link, WHOIS admin-contact).
                let url = format!("https://r{round}.example");
                let mut t = s.app.store().begin().unwrap();
                let mut r = t.registrar(REGISTRAR).unwrap().unwrap();
                r.url = Some(url.clone());
                t.put_registrar(&r).unwrap();
                t.commit(s.app.now()).unwrap();
                (Some(url.clone()), Some(url))
            }
            _ => {
                // The registrant's disclosed e-mail (RDAP) and phone (WHOIS).
                let mut ct = s.app.store().contact(CONTACT).unwrap().unwrap();
                ct.email = Some(format!("r{round}@mail.example"));
                ct.phone = Some(format!("+7.49500000{round:02}"));
                if !ct.disclose.contains(&DiscloseField::Phone) {
                    ct.disclose.push(DiscloseField::Phone);
                }
                reg.contact_update(&Actor::Operator, ct.clone()).unwrap();
                (ct.email, ct.phone)
            }
        };
        // The commit has returned: the very next answers show it.
        let got = send(c.get(&url)).await;
        let body = got.json();
        assert_eq!(rdap_held(&body), held, "RDAP round {round}: {body}");
        if let Some(x) = rdap_shows {
            assert!(got.text.contains(&x), "RDAP round {round}: no {x}: {body}");
        }
        let a = whois(whois_addr, NAME).await;
        assert_eq!(whois_held(&a), held, "WHOIS round {round}: {a}");
        if let Some(x) = whois_shows {
            assert!(a.contains(&x), "WHOIS round {round}: no {x}: {a}");
        }
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

/// A probe round that leaves the public part of the delegation record as
/// it was, and commits about other domains, keep the answer cached (with
/// the store's new last update time in it); a public change does not.
#[tokio::test]
async fn only_public_changes_to_the_domain_rebuild_its_answer() {
    let (s, whois_addr) = start().await;
    let url = format!("{}domain/{NAME}", s.base);
    let first = get(&url).await;
    let w_first = whois(whois_addr, NAME).await;
    let rdap = || s.app.answers().rdap_domain.counts();
    let whois_counts = || s.app.answers().whois_domain.counts();
    let (r0, w0) = (rdap(), whois_counts());

    // A scheduler round's write: bookkeeping only.
    let store = &s.app.store();
    let rec = store.delegation(NAME).unwrap().unwrap();
    let mut next = rec.clone();
    next.rounds += 1;
    next.next_probe = Some(s.app.now() + chrono::Duration::minutes(5));
    assert!(store
        .put_delegation_if_unchanged(NAME, &rec, &next, None, None)
        .unwrap());
    let again = get(&url).await;
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(whois(whois_addr, NAME).await, w_first);
    assert_eq!(rdap(), (r0.0 + 1, r0.1), "RDAP answer rebuilt");
    assert_eq!(whois_counts(), (w0.0 + 1, w0.1), "WHOIS answer rebuilt");

    // Another domain changes later: still cached, showing the new time.
    s.clock.advance(std::time::Duration::from_secs(90));
    s.app
        .registry()
        .hold(&Actor::Operator, "baro4.ru", "other domain")
        .unwrap();
    let later = zonekeeper::rdap::view::ts(s.app.now());
    let moved = get(&url).await;
    let db_date = moved.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventAction"] == "last update of RDAP database")
        .map(|e| e["eventDate"].clone())
        .unwrap();
    assert_eq!(db_date, later.as_str(), "{}", moved.text);
    assert_ne!(moved.header("etag"), first.header("etag"));
    let w = whois(whois_addr, NAME).await;
    assert!(w.ends_with(&format!("Last updated on {later}\n")), "{w}");
    assert_eq!(rdap(), (r0.0 + 2, r0.1), "RDAP answer rebuilt");
    assert_eq!(whois_counts(), (w0.0 + 2, w0.1), "WHOIS answer rebuilt");
    // A public change of the delegation record: rebuilt, and shown.
    let rec = store.delegation(NAME).unwrap().unwrap();
    let mut next = rec.clone();
    // The fixture's import put it under test; the test window fails.
    assert_eq!(rec.state, DelegationState::Testing);
    next.state = DelegationState::TestFailed;
    assert!(store
        .put_delegation_if_unchanged(NAME, &rec, &next, None, None)
        .unwrap());
    let changed = get(&url).await;
    assert_ne!(changed.text, moved.text);
    assert_eq!(rdap().1, r0.1 + 1, "RDAP answer not rebuilt");
    let _ = whois(whois_addr, NAME).await;
    assert_eq!(whois_counts().1, w0.1 + 1, "WHOIS answer not rebuilt");
}

/// Absent names, nameservers and handles are cached too (as facts, so a
/// WHOIS or RDAP answer about them skips the store), and domain searches:
/// under concurrent load asking for exactly those, a new domain (and a
/// search for its name), its new nameservers, a new registrar and a
/// changed registrar are visible to the first request after their commit
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_names_hosts_and_handles_are_visible_to_the_next_request_under_load() {
    use zonekeeper::registry::{CreateIn, NameserverIn};
    let (s, whois_addr) = start().await;
    let names = |round: u64| {
        (
            format!("fresh{round}.ru"),
            format!("ns{round}.fresh-host.net"),
            format!("NEW{round}-RU"),
        )
    };
    let round_now = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for i in 0..6u64 {
        let (stop, served, round_now) = (stop.clone(), served.clone(), round_now.clone());
        let base = s.base.clone();
        load.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                // The names the next commit will create: their absence is
                // what gets cached.
                let (dom, ns, rar) = names(round_now.load(Ordering::Relaxed));
                match i % 3 {
                    0 => {
                        let _ = whois(whois_addr, &dom).await;
                        let _ = whois(whois_addr, &format!("nameserver {ns}")).await;
                    }
                    1 => {
                        let _ = whois(whois_addr, &format!("registrar {rar}")).await;
                        let _ = whois(whois_addr, &format!("registrar {REGISTRAR}")).await;
                    }
                    _ => {
                        let _ = send(c.get(format!("{base}nameserver/{ns}"))).await;
                        let prefix = dom.trim_end_matches(".ru");
                        let _ = send(c.get(format!("{base}domains?name={prefix}*"))).await;
                        let _ = send(c.get(format!("{base}entity/{rar}"))).await;
                        let _ = send(c.get(format!("{base}entity/{REGISTRAR}"))).await;
                    }
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let c = reqwest::Client::new();
    for round in 0..10u64 {
        round_now.store(round, Ordering::Relaxed);
        let (dom, ns, rar) = names(round);
        // Absent, and asked twice: the second answer comes from the cache.
        for _ in 0..2 {
            assert!(whois(whois_addr, &dom).await.contains("No entries found"));
            let a = whois(whois_addr, &format!("nameserver {ns}")).await;
            assert!(a.contains("No entries found"), "{a}");
            let a = whois(whois_addr, &format!("registrar {rar}")).await;
            assert!(a.contains("No entries found"), "{a}");
            assert_eq!(
                send(c.get(format!("{}nameserver/{ns}", s.base)))
                    .await
                    .status,
                404
            );
            assert_eq!(
                send(c.get(format!("{}entity/{rar}", s.base))).await.status,
                404
            );
            let found =
                send(c.get(format!("{}domains?name={}*", s.base, &dom[..dom.len() - 3]))).await;
            assert!(
                !found.text.contains(&format!("\"{dom}\"")),
                "{}",
                found.text
            );
        }
        let reg = s.app.registry();
        let ns_in = |n: &str| NameserverIn {
            name: n.to_string(),
            addresses: Vec::new(),
        };
        reg.create(
            &Actor::Registrar(REGISTRAR.into()),
            &CreateIn {
                name: dom.clone(),
                registrar: None,
                registrant: OWN_CONTACT.into(),
                admin: None,
                tech: None,
                nameservers: vec![ns_in(&ns), ns_in("second.fresh-host.net")],
                auth_info: None,
                reseller: None,
                ds: Vec::new(),
                host_objects: Vec::new(),
            },
        )
        .unwrap();
        let url = format!("https://r{round}.example");
        let mut t = s.app.store().begin().unwrap();
        let mut r = t.registrar(REGISTRAR).unwrap().unwrap();
        r.url = Some(url.clone());
        t.put_registrar(&r).unwrap();
        r.handle = rar.clone();
        t.put_registrar(&r).unwrap();
        t.commit(s.app.now()).unwrap();

        // The commits have returned: the very next answers show them.
        let a = whois(whois_addr, &dom).await;
        assert!(a.contains("domain:"), "round {round}: {a}");
        let a = whois(whois_addr, &format!("nameserver {ns}")).await;
        assert!(
            a.contains("nserver:") && a.contains("domains:"),
            "round {round}: {a}"
        );
        let found = send(c.get(format!("{}domains?name={}*", s.base, &dom[..dom.len() - 3]))).await;
        assert!(
            found.text.contains(&format!("\"{dom}\"")),
            "round {round}: {}",
            found.text
        );
        let got = send(c.get(format!("{}nameserver/{ns}", s.base))).await;
        assert_eq!(got.status, 200, "round {round}: {}", got.text);
        let a = whois(whois_addr, &format!("registrar {rar}")).await;
        assert!(a.contains(&url), "round {round}: {a}");
        let a = whois(whois_addr, &format!("registrar {REGISTRAR}")).await;
        assert!(a.contains(&url), "round {round}: {a}");
        for h in [&rar, REGISTRAR] {
            let got = send(c.get(format!("{}entity/{h}", s.base))).await;
            assert_eq!(got.status, 200, "round {round}: {}", got.text);
            assert!(got.text.contains(&url), "round {round}: {}", got.text);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 0);
    let (hits, _) = s.app.answers().facts.counts();
    assert!(hits > 0, "facts were served from the cache");
    let (hits, _) = s.app.answers().searches.counts();
    assert!(hits > 0, "searches were served from the cache");
}

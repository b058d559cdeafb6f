//! Port-43 WHOIS end to end: the real `whois` client and raw TCP against the
//! server on loopback, over a redb store loaded by the real importer.

use crate::support;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::clock::FakeRelativeClock;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zonekeeper::app::App;
use zonekeeper::clock::{Clock, ManualClock};
use zonekeeper::config::Config;
use zonekeeper::model::{DelegationRecord, DelegationState};
use zonekeeper::ratelimit::ClientLimiter;
use zonekeeper::store::{RedbStore, Store};
use zonekeeper::whois;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/registry.json");
const NOT_FOUND: &str = "No entries found for the selected source(s).";
const EXCEEDED: &str = "% You have exceeded allowed connection rate.";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn import_time() -> DateTime<Utc> {
    t("2026-11-22T12:00:00Z")
}

fn config() -> Config {
    let mut c = Config::default();
    c.whois.rate_limit_per_minute = 1_000_000;
    c.whois.read_timeout = Duration::from_secs(5);
    c
}

struct Server {
    addr: SocketAddr,
    app: App,
    clock: ManualClock,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// Import `files` at `import_time()` into a fresh store and serve it.
async fn start_with<C>(
    cfg: Config,
    files: &[&Path],
    limiter: Option<ClientLimiter<C>>,
    prepare: impl FnOnce(&dyn Store),
) -> Server
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("z.redb")).unwrap();
    for f in files {
        zonekeeper::import::import_file(&store, f, &cfg, import_time()).unwrap();
    }
    prepare(&store);
    let clock = ManualClock::new(import_time());
    let app = App::new(cfg, Arc::new(store), Arc::new(clock.clone())).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a = app.clone();
    let task = match limiter {
        Some(l) => tokio::spawn(whois::serve_with(
            a,
            listener,
            Arc::new(l),
            whois::Options::default(),
        )),
        None => tokio::spawn(whois::serve(a, listener)),
    };
    Server {
        addr,
        app,
        clock,
        task,
        _dir: dir,
    }
}

async fn start(files: &[&Path], prepare: impl FnOnce(&dyn Store)) -> Server {
    start_with::<FakeRelativeClock>(config(), files, None, prepare).await
}

/// Mark `name` delegated, as the scheduler would after a passing round.
fn delegate(store: &dyn Store, name: &str) {
    let d = store.domain(name).unwrap().unwrap();
    let fp = d.ns_fingerprint();
    let now = import_time();
    let rec = DelegationRecord {
        state: DelegationState::Delegated,
        delegated_at: Some(now),
        ..DelegationRecord::testing(fp.clone(), now, chrono::Duration::days(4))
    };
    assert!(store.put_delegation(name, &fp, &rec, None, None).unwrap());
}

/// Ask with the real `whois` client.
async fn whois(addr: SocketAddr, q: &str) -> String {
    let out = tokio::process::Command::new("/usr/bin/whois")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), q])
        .output()
        .await
        .expect("run /usr/bin/whois");
    String::from_utf8(out.stdout).expect("answer is UTF-8")
}

/// Send raw bytes, read the whole answer until the server closes.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    if !bytes.ends_with(b"\n") {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("server closes the connection")
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn fixture() -> Value {
    serde_json::from_slice(&std::fs::read(FIXTURE).unwrap()).unwrap()
}

/// The first fixture domain matching `f`.
fn pick(fx: &Value, f: impl Fn(&Value) -> bool) -> Value {
    fx["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| f(d))
        .cloned()
        .expect("fixture has such a domain")
}

fn value_of<'a>(answer: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}:");
    answer
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .collect()
}

fn has_glue(d: &Value) -> bool {
    d["nameservers"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n.get("addresses").is_some()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_record_with_the_real_client() {
    let fx = fixture();
    let ascii = pick(&fx, |d| {
        d["name"].as_str().unwrap().ends_with(".ru") && has_glue(d) && d.get("hold").is_none()
    });
    let ascii_name = ascii["name"].as_str().unwrap().to_string();
    let idn = pick(&fx, |d| {
        d["name"].as_str().unwrap().ends_with(".рф") && has_glue(d)
    });
    let idn_name = idn["name"].as_str().unwrap().to_string();
    let held = pick(&fx, |d| d.get("hold").is_some());
    let held_name = held["name"].as_str().unwrap().to_string();
    let n = ascii_name.clone();
    let s = start(&[Path::new(FIXTURE)], |st| delegate(st, &n)).await;
    let store = s.app.store().clone();

    // ASCII domain, delegated.
    let a = whois(s.addr, &ascii_name).await;
    assert_eq!(value_of(&a, "domain"), [ascii_name.to_uppercase()], "{a}");
    assert_eq!(
        value_of(&a, "state"),
        ["REGISTERED, DELEGATED, VERIFIED"],
        "{a}"
    );
    let ns = value_of(&a, "nserver");
    assert_eq!(ns.len(), 2, "{a}");
    assert!(
        ns[0].starts_with(&format!("ns1.{ascii_name}. 192.0.2.")),
        "{a}"
    );
    assert!(ns[1].contains(", 2001:db8::"), "{a}");
    assert_eq!(value_of(&a, "source"), ["TCI"]);
    assert!(
        a.contains("\nLast updated on 2026-11-22T12:00:00Z\n"),
        "{a}"
    );
    assert!(a.starts_with("% "), "{a}");
    // Same answer whatever the spelling.
    assert_eq!(whois(s.addr, &ascii_name.to_uppercase()).await, a);
    assert_eq!(whois(s.addr, &format!("{ascii_name}.")).await, a);
    assert_eq!(raw(s.addr, format!("{ascii_name}\n").as_bytes()).await, a);

    // IDN by U-label (raw, so no client converts it) and by A-label.
    let alabel = store.domain(&to_alabel(&idn_name)).unwrap().unwrap().name;
    let by_u = raw(s.addr, format!("{idn_name}\r\n").as_bytes()).await;
    assert_eq!(
        value_of(&by_u, "domain"),
        [alabel.as_str().to_uppercase()],
        "{by_u}"
    );
    assert_eq!(
        value_of(&by_u, "state"),
        ["REGISTERED, NOT DELEGATED, VERIFIED, TESTING"],
        "{by_u}"
    );
    assert_eq!(whois(s.addr, alabel.as_str()).await, by_u);
    assert_eq!(
        raw(
            s.addr,
            format!("{}\r\n", idn_name.to_uppercase()).as_bytes()
        )
        .await,
        by_u
    );
    assert_eq!(whois(s.addr, &idn_name).await, by_u);

    // Hold.
    let h = whois(s.addr, &held_name).await;
    let state = value_of(&h, "state");
    assert!(
        state[0].starts_with("REGISTERED, NOT DELEGATED,") && state[0].contains("HOLD"),
        "{h}"
    );

    // Nameserver, with glue and a domain count; a provider's shared server.
    let ns1 = format!("ns1.{ascii_name}");
    let n = whois(s.addr, &format!("nameserver {ns1}")).await;
    assert_eq!(value_of(&n, "nserver"), [format!("{ns1}.")], "{n}");
    assert_eq!(value_of(&n, "ip-address").len(), 1, "{n}");
    assert_eq!(value_of(&n, "domains"), ["1"], "{n}");
    let shared = whois(s.addr, "NAMESERVER NS1.HOSTING3.EXAMPLE.").await;
    let count: u64 = value_of(&shared, "domains")[0].parse().unwrap();
    assert!(count > 1, "{shared}");
    assert!(whois(s.addr, "nameserver ns9.nowhere.example")
        .await
        .contains(NOT_FOUND));

    // Registrar, any case.
    let r = whois(s.addr, "registrar REGRU-RU").await;
    assert_eq!(value_of(&r, "registrar"), ["REGRU-RU"], "{r}");
    assert_eq!(value_of(&r, "org"), ["Registrar REGRU-RU LLC"], "{r}");
    assert_eq!(value_of(&r, "www"), ["https://regru-ru.example"], "{r}");
    assert_eq!(whois(s.addr, "registrar regru-ru").await, r);
    assert!(whois(s.addr, "registrar NOPE-RU").await.contains(NOT_FOUND));

    // Not found: unregistered, other TLD, third level.
    for q in ["never-registered.ru", "example.com", "www.example.ru"] {
        let a = whois(s.addr, q).await;
        assert!(a.contains(NOT_FOUND), "{q}: {a}");
        assert!(a.contains("\nLast updated on "), "{q}: {a}");
    }
    // A malformed name names the rule.
    let bad = whois(s.addr, "ab--cd.ru").await;
    assert!(
        bad.starts_with("% Error: ") && bad.contains("3 and 4"),
        "{bad}"
    );
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

fn to_alabel(u: &str) -> String {
    zonekeeper::names::Zones::default()
        .parse_domain(u)
        .unwrap()
        .as_str()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_grace_and_cancellation_follow_the_clock() {
    let fx = fixture();
    // paid_till 2027-01-01T10:00:00Z: free-date 2027-01-31.
    let d = pick(&fx, |d| {
        d["paid_till"].as_str() == Some("2027-01-01T10:00:00Z") && has_glue(d)
    });
    let name = d["name"].as_str().unwrap().to_string();
    let n = name.clone();
    let s = start(&[Path::new(FIXTURE)], |st| delegate(st, &n)).await;
    let a = whois(s.addr, &name).await;
    assert_eq!(value_of(&a, "state"), ["REGISTERED, DELEGATED, VERIFIED"]);
    assert_eq!(value_of(&a, "free-date"), ["2027-01-31"]);

    s.clock.set(t("2027-01-15T00:00:00Z"));
    let a = whois(s.addr, &name).await;
    assert_eq!(
        value_of(&a, "state"),
        ["REGISTERED, NOT DELEGATED, VERIFIED, EXPIRED"],
        "{a}"
    );
    assert_eq!(value_of(&a, "paid-till"), ["2027-01-01T10:00:00Z"]);

    s.clock.set(t("2027-01-31T10:00:01Z"));
    let a = whois(s.addr, &name).await;
    assert!(a.contains(NOT_FOUND), "{a}");
    assert!(value_of(&a, "domain").is_empty(), "{a}");
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

/// The sample of docs/whois.md, byte for byte (after the `%` header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_sample_layout() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sample.json");
    std::fs::write(
        &f,
        r#"{"registrars":[{"handle":"REGRU-RU","name":"Registrar of Domain Names REG.RU LLC",
             "url":"https://www.reg.ru","email":"abuse@reg.ru"}],
           "contacts":[{"handle":"C1-RU","kind":"person","name":"Ivan Petrov",
             "email":"ivan@example.ru","phone":"+7.4951234567","disclose":[]}],
           "domains":[{"name":"example.ru","registrar":"REGRU-RU","registrant":"C1-RU",
             "created":"2025-03-01T10:00:00Z","paid_till":"2026-03-01T10:00:00Z",
             "nameservers":[{"name":"ns1.example.ru","addresses":["192.0.2.1"]},
                            {"name":"ns2.example.net"}]}]}"#,
    )
    .unwrap();
    let mut cfg = config();
    // Import and query inside the registration.
    cfg.whois.source = "TCI".into();
    let s = start_with::<FakeRelativeClock>(cfg, &[], None, |st| {
        let c = config();
        let now = t("2025-11-22T12:00:00Z");
        zonekeeper::import::import_file(st, &f, &c, now).unwrap();
        delegate(st, "example.ru");
    })
    .await;
    s.clock.set(t("2025-11-23T00:00:00Z"));
    let a = whois(s.addr, "example.ru").await;
    let (head, body) = a.split_once("\n\n").unwrap();
    assert!(head.lines().all(|l| l.starts_with("% ")), "{head}");
    assert_eq!(
        body,
        "domain:        EXAMPLE.RU
nserver:       ns1.example.ru. 192.0.2.1
nserver:       ns2.example.net.
state:         REGISTERED, DELEGATED, VERIFIED
person:        Private Person
registrar:     REGRU-RU
admin-contact: https://www.reg.ru
created:       2025-03-01T10:00:00Z
paid-till:     2026-03-01T10:00:00Z
free-date:     2026-03-31
source:        TCI

Last updated on 2025-11-22T12:00:00Z
"
    );
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

const SECRETS: &[&str] = &[
    "SECRET-TAXID-9f1",
    "1901-02-03",
    "SECRET-PASSPORT-9f3",
    "SECRET-AUTH-9f4",
    "5ec7e7a15ec7e7a15ec7e7a15ec7e7a15ec7e7a15ec7e7a15ec7e7a15ec7e7a1",
    "SECRET-HOLDREASON-9f6",
    "set by import",
];
const PRIVATE: &[&str] = &[
    "PRIV-NAME-9e1",
    "priv-email-9e2@example.invalid",
    "+7.9009009003", // a phone must be in EPP form
    "PRIV-STREET-9e4",
    "PRIV-CITY-9e5",
    "PRIV-REGION-9e7",
    "PRIV-POSTAL-9e8",
];
const ORG_NAME: &str = "PUBLIC-ORG-9e6";

fn marked_contact(handle: &str, kind: &str) -> String {
    format!(
        r#"{{"handle":"{handle}","kind":"{kind}","name":"{}","org":"{ORG_NAME}","email":"{}","phone":"{}",
           "address":{{"street":["{}"],"city":"{}","region":"{}","postal_code":"{}","country":"ZZ"}},
           "tax_id":"{}","birth_date":"{}","passport":"{}","disclose":[]}}"#,
        PRIVATE[0],
        PRIVATE[1],
        PRIVATE[2],
        PRIVATE[3],
        PRIVATE[4],
        PRIVATE[5],
        PRIVATE[6],
        SECRETS[0],
        SECRETS[1],
        SECRETS[2],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_field_ever_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("marked.json");
    let domain = |name: &str, contact: &str, extra: &str| {
        format!(
            r#"{{"name":"{name}","registrar":"MARK-RU","registrant":"{contact}","admin":"{contact}","tech":"{contact}",
                "created":"2025-03-01T10:00:00Z","paid_till":"2027-03-01T10:00:00Z",
                "nameservers":[{{"name":"ns1.{name}","addresses":["192.0.2.9"]}},{{"name":"ns2.{name}","addresses":["192.0.2.10"]}}],
                "auth_info":"{}","verification_requested":"2026-11-15T00:00:00Z","transferred":"2026-10-01T00:00:00Z"{extra}}}"#,
            SECRETS[3]
        )
    };
    std::fs::write(
        &f,
        format!(
            r#"{{"registrars":[{{"handle":"MARK-RU","name":"Marked Registrar","url":"https://mark.example",
                 "email":"abuse@mark.example","api_token_sha256":"{}"}}],
               "contacts":[{},{}],
               "domains":[{},{},{}]}}"#,
            SECRETS[4],
            marked_contact("CP-MARK", "person"),
            marked_contact("CO-MARK", "org"),
            domain("person-mark.ru", "CP-MARK", ""),
            domain("org-mark.ru", "CO-MARK", ""),
            domain("held-mark.ru", "CP-MARK", r#","hold":true"#),
        ),
    )
    .unwrap();
    let s = start(&[Path::new(FIXTURE), &f], |st| {
        let cfg = config();
        zonekeeper::registry::Registry::offline(st, &cfg)
            .unwrap()
            .at(import_time())
            .hold(
                &zonekeeper::registry::Actor::Operator,
                "org-mark.ru",
                SECRETS[5],
            )
            .unwrap();
        delegate(st, "person-mark.ru");
    })
    .await;
    let mut answers = Vec::new();
    for q in [
        "person-mark.ru",
        "ORG-MARK.RU.",
        "held-mark.ru",
        "nameserver ns1.person-mark.ru",
        "nameserver ns2.org-mark.ru",
        "registrar MARK-RU",
        "registrar mark-ru",
        "CP-MARK",
        "CO-MARK",
        SECRETS[3],
        PRIVATE[0],
    ] {
        answers.push((q, whois(s.addr, q).await));
        answers.push((q, raw(s.addr, format!("{q}\r\n").as_bytes()).await));
    }
    for (q, a) in &answers {
        for m in SECRETS.iter().chain(PRIVATE) {
            assert!(
                !a.to_lowercase().contains(&m.to_lowercase()),
                "{m} leaked for {q}: {a}"
            );
        }
    }
    let person = &answers[0].1;
    assert_eq!(value_of(person, "person"), ["Private Person"], "{person}");
    assert!(value_of(person, "e-mail").is_empty());
    assert_eq!(
        value_of(person, "state"),
        ["REGISTERED, DELEGATED, UNVERIFIED"],
        "{person}"
    );
    // An organisation's name is public.
    let org = &answers[2].1;
    assert_eq!(value_of(org, "org"), [ORG_NAME], "{org}");
    assert!(value_of(org, "state")[0].contains("HOLD"), "{org}");
    assert!(value_of(&answers[4].1, "state")[0].contains("HOLD"));
    // Disclosed fields do show (the check above is not vacuous).
    let reg = &answers[10].1;
    assert_eq!(value_of(reg, "e-mail"), ["abuse@mark.example"], "{reg}");
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosed_fields_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("open.json");
    std::fs::write(
        &f,
        r#"{"registrars":[{"handle":"OPEN-RU","name":"Open","url":"https://open.example"}],
           "contacts":[{"handle":"CO-OPEN","kind":"person","name":"Ivan Petrov","org":"OOO Romashka",
             "email":"ivan@example.ru","phone":"+7.4951234567",
             "address":{"street":["Tverskaya 1"],"city":"Moscow","postal_code":"125009","country":"RU"},
             "disclose":["name","org","email","phone","address"]}],
           "domains":[{"name":"open.ru","registrar":"OPEN-RU","registrant":"CO-OPEN",
             "created":"2025-03-01T10:00:00Z","paid_till":"2027-03-01T10:00:00Z"}]}"#,
    )
    .unwrap();
    let s = start(&[&f], |_| {}).await;
    let a = whois(s.addr, "open.ru").await;
    assert_eq!(value_of(&a, "person"), ["Ivan Petrov"], "{a}");
    assert_eq!(value_of(&a, "org"), ["OOO Romashka"], "{a}");
    assert_eq!(value_of(&a, "e-mail"), ["ivan@example.ru"], "{a}");
    assert_eq!(value_of(&a, "phone"), ["+7.4951234567"], "{a}");
    assert_eq!(
        value_of(&a, "address"),
        ["Tverskaya 1", "125009, Moscow, RU"],
        "{a}"
    );
    assert_eq!(
        value_of(&a, "state"),
        ["REGISTERED, NOT DELEGATED, VERIFIED"],
        "{a}"
    );
    assert!(value_of(&a, "nserver").is_empty());
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_an_error_line_never_a_hang() {
    let mut cfg = config();
    cfg.whois.read_timeout = Duration::from_millis(700);
    let s = start_with::<FakeRelativeClock>(cfg, &[Path::new(FIXTURE)], None, |_| {}).await;
    let err = |a: &str, what: &str| {
        assert!(
            a.starts_with("% Error: ") && a.contains(what),
            "{what}: {a:?}"
        );
        assert_eq!(a.lines().count(), 1, "{a:?}");
    };
    err(&raw(s.addr, &[b'a'; 4000]).await, "longer than 255 bytes");
    let mut long = vec![b'a'; 300];
    long.extend_from_slice(b".ru\r\n");
    err(&raw(s.addr, &long).await, "longer than 255 bytes");
    let mut max = vec![b'a'; 250];
    max.extend_from_slice(b".ru\r\n");
    err(&raw(s.addr, &max).await, "2–63 characters");
    err(&raw(s.addr, b"exa\0mple.ru\r\n").await, "control character");
    err(
        &raw(s.addr, b"\x1b[31mexample.ru\r\n").await,
        "control character",
    );
    err(
        &raw(s.addr, b"\xff\xfe\xfd.ru\r\n").await,
        "not valid UTF-8",
    );
    err(&raw(s.addr, b"\r\n").await, "empty query");
    err(&raw(s.addr, b"\n").await, "empty query");
    err(&raw(s.addr, b"").await, "empty query");
    err(&raw(s.addr, b"a b c\r\n").await, "too many words");
    err(&raw(s.addr, b"nameserver\r\n").await, "needs an argument");
    err(
        &raw(s.addr, b"nameserver bad_host.example\r\n").await,
        "LDH",
    );

    // Slowloris: a partial line, then silence; and a silent client.
    for bytes in [&b"exam"[..], b""] {
        let started = Instant::now();
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(bytes).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out))
            .await
            .expect("closed after the read timeout")
            .unwrap();
        assert!(out.contains("no query line received in time"), "{out:?}");
        assert!(started.elapsed() >= Duration::from_millis(600));
    }
    // Only the first line counts.
    let a = raw(s.addr, b"registrar REGRU-RU\r\nregistrar R01-RU\r\n").await;
    assert!(a.contains("registrar:     REGRU-RU"), "{a}");

    // Random garbage: always some answer, and the server keeps serving.
    let mut seed = 0x2545f4914f6cdd1d_u64;
    for i in 0..200 {
        let len = (i * 7) % 300;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed & 0xff) as u8
            })
            .chain([b'\n'])
            .collect();
        let a = raw(s.addr, &bytes).await;
        assert!(!a.is_empty(), "no answer to {bytes:?}");
    }
    assert!(raw(s.addr, b"registrar R01-RU\r\n")
        .await
        .contains("registrar:     R01-RU"));
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

/// A query dripped a byte at a time never completes: the read timeout is a
/// deadline for the whole line, not per read, and the slot comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dripping_client_is_cut_off_at_the_line_deadline() {
    let mut cfg = config();
    cfg.whois.read_timeout = Duration::from_millis(800);
    cfg.whois.max_connections = 1;
    let s = start_with::<FakeRelativeClock>(cfg, &[Path::new(FIXTURE)], None, |_| {}).await;
    let started = Instant::now();
    let (mut r, mut w) = TcpStream::connect(s.addr).await.unwrap().into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out)).await;
        (String::from_utf8_lossy(&out).into_owned(), Instant::now())
    });
    // 50 ms a byte: 16 bytes by the deadline, far below the 255-byte cap.
    for b in b"registrar REGRU-RU-and-more-and-more-and-more".iter() {
        if reader.is_finished() || w.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (out, closed) = reader.await.unwrap();
    let took = closed - started;
    assert!(out.contains("no query line received in time"), "{out:?}");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // The only connection slot is free again.
    let a = raw(s.addr, b"registrar R01-RU\r\n").await;
    assert!(a.contains("registrar:     R01-RU"), "{a:?}");
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_answers_busy() {
    let mut cfg = config();
    cfg.whois.max_connections = 2;
    cfg.whois.read_timeout = Duration::from_secs(3);
    let s = start_with::<FakeRelativeClock>(cfg, &[Path::new(FIXTURE)], None, |_| {}).await;
    let idle1 = TcpStream::connect(s.addr).await.unwrap();
    let idle2 = TcpStream::connect(s.addr).await.unwrap();
    // Connections are accepted in order, so once the idle two hold both
    // slots a query is refused busy; before that it is answered.
    let addr = s.addr;
    let a = support::eventually(
        Duration::from_secs(10),
        "the idle pair accepted",
        || async {
            let a = raw(addr, b"registrar R01-RU\r\n").await;
            (!a.contains("registrar:     R01-RU")).then_some(a)
        },
    )
    .await;
    assert!(a.contains("too many connections"), "{a:?}");
    drop((idle1, idle2));
    // The slots come back once the server has seen the two close.
    let a = support::eventually(Duration::from_secs(10), "the slots given back", || async {
        let a = raw(addr, b"registrar R01-RU\r\n").await;
        (!a.contains("too many connections")).then_some(a)
    })
    .await;
    assert!(a.contains("registrar:     R01-RU"), "{a:?}");
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_on_a_fake_clock() {
    let limited = r#"zonekeeper_rate_limited_total{service="whois"}"#;
    let answered = r#"zonekeeper_whois_queries_total{result="rate_limited"}"#;
    let before = (support::metric(limited), support::metric(answered));
    let mut cfg = config();
    cfg.whois.rate_limit_per_minute = 3;
    let clock = FakeRelativeClock::default();
    let limiter = ClientLimiter::with_clock(3, vec![], clock.clone());
    let s = start_with(cfg, &[Path::new(FIXTURE)], Some(limiter), |_| {}).await;
    for _ in 0..3 {
        let a = whois(s.addr, "registrar REGRU-RU").await;
        assert!(a.contains("registrar:     REGRU-RU"), "{a}");
    }
    for _ in 0..2 {
        let a = whois(s.addr, "registrar REGRU-RU").await;
        assert_eq!(a.trim_end(), EXCEEDED);
        assert_eq!(
            raw(s.addr, b"registrar REGRU-RU\r\n").await.trim_end(),
            EXCEEDED
        );
    }
    // 3 a minute: one more every 20 s.
    clock.advance(Duration::from_secs(20));
    assert!(whois(s.addr, "registrar REGRU-RU")
        .await
        .contains("REGRU-RU"));
    assert_eq!(
        whois(s.addr, "registrar REGRU-RU").await.trim_end(),
        EXCEEDED
    );
    clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        assert!(whois(s.addr, "registrar REGRU-RU")
            .await
            .contains("REGRU-RU"));
    }
    // At least this test's 5 (other tests run in the same process).
    assert!(support::metric(limited) - before.0 >= 5.0);
    assert!(support::metric(answered) - before.1 >= 5.0);
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();

    // An exempt network is never limited.
    let mut cfg = config();
    cfg.whois.rate_limit_per_minute = 1;
    cfg.whois.rate_limit_exempt = vec!["127.0.0.0/8".parse().unwrap()];
    let s = start_with::<FakeRelativeClock>(cfg, &[Path::new(FIXTURE)], None, |_| {}).await;
    for _ in 0..5 {
        assert!(raw(s.addr, b"registrar R01-RU\r\n")
            .await
            .contains("R01-RU"));
    }
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let s = start(&[Path::new(FIXTURE)], |_| {}).await;
    // An idle client does not hold shutdown up.
    let _idle = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.app.shutdown().cancel();
    tokio::time::timeout(Duration::from_secs(2), s.task)
        .await
        .expect("serve returns promptly")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err());
    let _ = s.clock.now();
}

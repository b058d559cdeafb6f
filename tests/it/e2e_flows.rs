//! The registrar's flows end to end, through a running `serve`: the real
//! wiring of `server::serve_on` (scheduler, zone writer, WHOIS, HTTP with
//! RDAP and the registrar API) over a real redb store, probing real
//! loopback DNS servers that the test starts, breaks, fixes and stops.
//!
//! Time is a `ManualClock` and the config keeps the registry's regulation
//! (4-day window, 10-minute probes, hourly monitoring, 2-hour daily budget
//! on the Moscow day): the test moves the clock to each domain's next
//! probe, so days pass in a few rounds. Only the probes' own timeouts are
//! real time. One test runs the real binary instead, with the periods
//! shrunk to seconds in its TOML config and the wall clock.
//!
//! Flows: a good pair delegated and published (zone file, WHOIS, RDAP); a
//! broken set failing its window, fixed and retested; an outage past the
//! budget (suspend; report against real NSD); data drift under
//! monitoring; authorization; a re-declared set; a lame server and a
//! corrected declaration; an IDN domain; a restart mid-window; expiry.

use crate::support;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use support::rdap::{statuses as rdap_statuses, whois_state};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::dns;
use support::sched::{contact, wait_for};
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::{Config, OnViolation};
use zonekeeper::model::{Contact, DelegationRecord, DelegationState, Domain, Registrar, Timestamp};
use zonekeeper::names::DomainName;
use zonekeeper::store::{ImportBatch, RedbStore};

const ALPHA: &str = "ALPHA-RU";
const BETA: &str = "BETA-RU";
/// How long the test waits for one step of the service (a round, a zone
/// rewrite) before it fails.
const STEP: Duration = Duration::from_secs(10);

/// 10:00 in Moscow: the accounting day (UTC+3) has 14 hours left.
fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap()
}

fn token(handle: &str) -> String {
    zonekeeper::synth::sample_token(handle)
}

fn registrar(handle: &str) -> Registrar {
    Registrar {
        handle: handle.into(),
        name: format!("Registrar {handle}"),
        url: None,
        email: None,
        api_token_sha256: Some(hex::encode(Sha256::digest(token(handle).as_bytes()))),
        epp_cert_sha256: Vec::new(),
        epp_password_hash: None,
        epp_poll_acked: 0,
    }
}

/// A registered domain of `registrar` with no nameservers yet.
fn domain(name: &str, registrar: &str) -> Domain {
    Domain {
        name: DomainName::from_trusted(name.into()),
        registrar: registrar.into(),
        registrant: "C1-RU".into(),
        admin: None,
        tech: None,
        created: t0() - chrono::Duration::days(10),
        paid_till: t0() + chrono::Duration::days(300),
        nameservers: vec![],
        auth_info: None,
        hold: None,
        verification_requested: None,
        transferred: None,
        updated: t0(),
        registration: Default::default(),
        ds: Vec::new(),
    }
}

fn ts(v: &Value) -> Timestamp {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// The API body declaring `zone`'s servers with their glue.
fn ns_body(z: &dns::LabZone) -> Value {
    let ns: Vec<Value> =
        z.ns.iter()
            .map(|(n, ip)| json!({"name": n, "addresses": [ip.to_string()]}))
            .collect();
    json!({ "nameservers": ns })
}

fn finding_ids(view: &Value) -> Vec<String> {
    view["last_round"]["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Loopback DNS servers for some zones, all on one port (the scheduler
/// probes every declared address on `probe.port`).
struct Lab {
    block: [u8; 3],
    port: u16,
}

impl Lab {
    /// A lab with room for `hosts` server addresses.
    async fn new(hosts: u8) -> Lab {
        let block = dns::loopback_block();
        let ips: Vec<IpAddr> = (1..=hosts).map(|h| dns::ip(block, h)).collect();
        Lab {
            block,
            port: dns::common_port(&ips).await,
        }
    }
    fn zone(&self, apex: &str, hosts: &[u8]) -> dns::LabZone {
        dns::zone(apex, self.block, hosts)
    }
    /// Start server `i` of `z` (retrying while a server just stopped on
    /// that address still holds the port: its tasks end asynchronously).
    async fn start(&self, z: &dns::LabZone, i: usize) -> dns::FakeServer {
        self.start_as(z.ns[i].1, z).await
    }

    /// A server at `ip` answering with `z`'s data.
    async fn start_as(&self, ip: IpAddr, z: &dns::LabZone) -> dns::FakeServer {
        for _ in 0..200 {
            if let Some(s) = z.try_serve_on(ip, self.port).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("cannot bind test DNS server {ip}:{}", self.port);
    }
}

/// A two-address lab with both servers of `name` up, and a registry that
/// suspends on a violation, in which ALPHA's `name` is declared and
/// delegated. The second server comes last: the tests take it down.
async fn delegated_suspending(
    name: &str,
) -> (
    Lab,
    dns::LabZone,
    dns::FakeServer,
    dns::FakeServer,
    Registry,
) {
    let lab = Lab::new(2).await;
    let z = lab.zone(name, &[1, 2]);
    let ns1 = lab.start(&z, 0).await;
    let ns2 = lab.start(&z, 1).await;
    let reg = Registry::start(&lab, &[(name, ALPHA)], |c| {
        c.delegation.on_violation = OnViolation::Suspend;
    })
    .await;
    reg.declare_delegated(ALPHA, name, ns_body(&z)).await;
    (lab, z, ns1, ns2, reg)
}

/// A two-address lab with only the first server of `name` up, and a
/// registry in which ALPHA has declared `name`, after its first round.
async fn declared_with_ns2_down(name: &str) -> (Lab, dns::LabZone, dns::FakeServer, Registry) {
    let lab = Lab::new(2).await;
    let z = lab.zone(name, &[1, 2]);
    let ns1 = lab.start(&z, 0).await;
    let reg = Registry::start(&lab, &[(name, ALPHA)], |_| {}).await;
    let (st, v) = reg.declare(ALPHA, name, ns_body(&z)).await;
    assert_eq!(st, 200, "{v}");
    assert!(wait_for(STEP, || reg.rec(name).rounds >= 1).await);
    (lab, z, ns1, reg)
}

/// A two-address lab for `name` with both servers up, the second one
/// serving a SOA serial one behind the first's.
async fn second_serial_behind(name: &str) -> (Lab, dns::LabZone, dns::FakeServer, dns::FakeServer) {
    let lab = Lab::new(2).await;
    let z = lab.zone(name, &[1, 2]);
    let mut stale = z.clone();
    stale.serial -= 1;
    let ns1 = lab.start(&z, 0).await;
    let ns2 = lab.start_as(z.ns[1].1, &stale).await;
    (lab, z, ns1, ns2)
}

/// A running `zonekeeper serve` over a fresh store.
struct Registry {
    app: App,
    clock: ManualClock,
    http: reqwest::Client,
    base: String,
    whois: SocketAddr,
    zone_file: PathBuf,
    serve: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Serve `domains` (name, registrar) with probes on `lab`'s port.
    async fn start(lab: &Lab, domains: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Self {
        let domains = domains.iter().map(|(n, r)| domain(n, r)).collect();
        Self::start_with(lab, domains, tweak).await
    }

    /// [`Registry::start`] with the domain records given.
    async fn start_with(lab: &Lab, domains: Vec<Domain>, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            zones: vec!["ru".into()],
            ..Config::default()
        };
        cfg.probe.port = lab.port;
        cfg.probe.allow_private_targets = true;
        cfg.probe.timeout = Duration::from_millis(400);
        cfg.probe.retries = 0;
        // Names carry glue; a closed loopback port keeps lookups off the host.
        cfg.probe.resolvers = vec!["127.0.0.1:9".parse().unwrap()];
        cfg.zone.output = Some(dir.path().join("{zone}.zone"));
        cfg.store.path = dir.path().join("zk.redb");
        tweak(&mut cfg);
        let store = RedbStore::open(&cfg.store.path).unwrap();
        zonekeeper::import::apply(
            &store,
            &ImportBatch {
                registrars: vec![registrar(ALPHA), registrar(BETA)],
                webhooks: vec![],
                resellers: vec![],
                // Shared by both registrars' domains: the file names its sponsor.
                contacts: vec![Contact {
                    sponsor: Some(ALPHA.into()),
                    ..contact()
                }],
                domains,
            },
            &cfg,
            t0(),
        )
        .unwrap();
        Self::serve(cfg, store, ManualClock::new(t0()), dir).await
    }

    /// Run `serve` over `store`.
    async fn serve(
        cfg: Config,
        store: RedbStore,
        clock: ManualClock,
        dir: tempfile::TempDir,
    ) -> Self {
        let first_zone = cfg.zones().unwrap().iter().next().unwrap().to_string();
        let zone_file = zonekeeper::zone::output_path(&cfg, &first_zone).unwrap();
        let app = App::new(cfg, Arc::new(store), Arc::new(clock.clone())).unwrap();
        let w = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let whois = w.local_addr().unwrap();
        let base = format!("http://{}", h.local_addr().unwrap());
        let serve = {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = zonekeeper::server::serve_on(app, w, h).await {
                    panic!("serve failed: {e}");
                }
            })
        };
        let r = Registry {
            app,
            clock,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base,
            whois,
            zone_file,
            serve,
            _dir: dir,
        };
        // The zone writer's first write: the empty zone.
        assert!(
            wait_for(STEP, || std::fs::metadata(&r.zone_file).is_ok()).await,
            "no zone file at start"
        );
        r
    }

    async fn stop(self) {
        self.app.shutdown().cancel();
        tokio::time::timeout(Duration::from_secs(15), self.serve)
            .await
            .expect("serve stops")
            .unwrap();
    }

    /// Stop `serve`, and start it again on the same store and clock after
    /// `down` (of clock time) has passed.
    async fn restart(self, down: chrono::Duration) -> Self {
        let Registry {
            app,
            clock,
            serve,
            _dir: dir,
            ..
        } = self;
        app.shutdown().cancel();
        tokio::time::timeout(Duration::from_secs(15), serve)
            .await
            .expect("serve stops")
            .unwrap();
        let cfg = (**app.config()).clone();
        drop(app);
        clock.set(zonekeeper::clock::Clock::now(&clock) + down);
        // The last handles on the store (connection tasks) end shortly
        // after the listeners stop; redb refuses a second open until then.
        let mut store = None;
        for _ in 0..500 {
            match RedbStore::open(&cfg.store.path) {
                Ok(s) => {
                    store = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        let store = store.expect("the store reopens after serve stopped");
        Self::serve(cfg, store, clock, dir).await
    }

    fn rec(&self, name: &str) -> DelegationRecord {
        self.app
            .store()
            .delegation(name)
            .unwrap()
            .unwrap_or_else(|| DelegationRecord::undelegated(t0()))
    }

    fn state(&self, name: &str) -> DelegationState {
        self.rec(name).state
    }

    /// An API call; returns status and JSON body.
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        tok: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        if status >= 400 {
            assert_eq!(ct, "application/problem+json", "{status} {text}");
        }
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn declare(&self, handle: &str, name: &str, body: Value) -> (u16, Value) {
        let path = format!("/domains/{name}/nameservers");
        let tok = token(handle);
        self.api(reqwest::Method::PUT, &path, Some(&tok), Some(body))
            .await
    }

    async fn view(&self, handle: &str, name: &str) -> (u16, Value) {
        let path = format!("/domains/{name}/delegation");
        self.api(reqwest::Method::GET, &path, Some(&token(handle)), None)
            .await
    }

    async fn retest(&self, handle: &str, name: &str) -> (u16, Value) {
        let path = format!("/domains/{name}/retest");
        self.api(reqwest::Method::POST, &path, Some(&token(handle)), None)
            .await
    }

    /// `handle`'s own view of `name`, which must be readable.
    async fn delegation(&self, handle: &str, name: &str) -> Value {
        let (st, v) = self.view(handle, name).await;
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Wait (real time) until the scheduler has written a new record for
    /// `name` (a round, or a transition without one).
    async fn changed(&self, name: &str, before: &DelegationRecord) -> DelegationRecord {
        assert!(
            wait_for(STEP, || &self.rec(name) != before).await,
            "no round for {name} within {STEP:?}: {before:?}"
        );
        self.rec(name)
    }

    /// Move the clock to `at` (or leave it, if later) and have the
    /// scheduler look at `name`; returns the record it then writes.
    async fn round_at(&self, name: &str, at: Timestamp) -> DelegationRecord {
        let before = self.rec(name);
        if at > self.clock_now() {
            self.clock.set(at);
        }
        self.app.domain_changed(name);
        self.changed(name, &before).await
    }

    /// The scheduler's next round of `name`, at its persisted next probe.
    async fn next_round(&self, name: &str) -> DelegationRecord {
        let at = self.rec(name).next_probe.expect("a probe is scheduled");
        self.round_at(name, at).await
    }

    /// Declare `body` for `name` (accepted) and wait until it is delegated.
    async fn declare_delegated(&self, handle: &str, name: &str, body: Value) {
        let (st, v) = self.declare(handle, name, body).await;
        assert_eq!(st, 200, "{v}");
        self.wait_state(name, DelegationState::Delegated).await;
    }

    async fn wait_state(&self, name: &str, s: DelegationState) {
        assert!(
            wait_for(STEP, || self.state(name) == s).await,
            "{name} not {s:?}: {:?}",
            self.rec(name)
        );
    }

    fn clock_now(&self) -> Timestamp {
        zonekeeper::clock::Clock::now(&self.clock)
    }

    fn zone_text(&self) -> String {
        std::fs::read_to_string(&self.zone_file).unwrap_or_default()
    }

    /// Wait until `name`'s delegation is in (or out of) the zone file.
    async fn wait_zone(&self, name: &str, present: bool) -> String {
        let line = format!("{name}. ");
        let ok = wait_for(STEP, || {
            self.zone_text()
                .lines()
                .any(|l| l.starts_with(&line) && l.contains(" IN NS "))
                == present
        })
        .await;
        assert!(
            ok,
            "{name} {} the zone file:\n{}",
            if present { "not in" } else { "still in" },
            self.zone_text()
        );
        self.zone_text()
    }

    /// The real `whois` client against the service's port-43 listener.
    async fn whois(&self, name: &str) -> String {
        let out = tokio::time::timeout(
            STEP,
            tokio::process::Command::new("whois")
                .args(["-h", "127.0.0.1", "-p"])
                .arg(self.whois.port().to_string())
                .arg(name)
                .output(),
        )
        .await
        .expect("whois answers")
        .expect("run whois");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    async fn rdap(&self, name: &str) -> Value {
        let res = self
            .http
            .get(format!("{}/rdap/domain/{name}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

/// The `state:` line of a WHOIS answer.
fn rdap_nameservers(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["nameservers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ldhName"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// (a) A good pair: declared → testing (window, next probe) → delegated on
/// the first passing round → in the zone file, WHOIS and RDAP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_pair_is_delegated_and_published() {
    let lab = Lab::new(2).await;
    let z = lab.zone("good.ru", &[1, 2]);
    let _ns = (lab.start(&z, 0).await, lab.start(&z, 1).await);
    let reg = Registry::start(&lab, &[("good.ru", ALPHA)], |_| {}).await;

    let v = reg.delegation(ALPHA, "good.ru").await;
    assert_eq!(v["state"], "undelegated", "{v}");
    assert_eq!(v["in_zone"], false);
    assert!(whois_state(&reg.whois("good.ru").await).contains("NOT DELEGATED"));

    let (st, v) = reg.declare(ALPHA, "good.ru", ns_body(&z)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing", "{v}");
    assert_eq!(v["in_zone"], false);
    assert_eq!(ts(&v["window_start"]), t0());
    assert_eq!(ts(&v["window_end"]), t0() + chrono::Duration::days(4));
    assert_eq!(v["window_remaining_secs"], 4 * 86400);
    // The first round is due at once.
    assert_eq!(ts(&v["next_probe"]), t0());
    assert_eq!(v["downtime"]["budget_secs"], 7200);
    assert_eq!(v["nameservers"][0]["name"], "ns1.good.ru");

    // The declaration woke the scheduler: one passing round delegates.
    reg.wait_state("good.ru", DelegationState::Delegated).await;
    let v = reg.delegation(ALPHA, "good.ru").await;
    assert_eq!(v["state"], "delegated", "{v}");
    assert_eq!(v["in_zone"], true);
    assert_eq!(ts(&v["delegated_at"]), t0());
    assert_eq!(v["last_round"]["passed"], true, "{v}");
    assert_eq!(v["window_remaining_secs"], Value::Null);
    // Monitoring: hourly, ±5 % jitter.
    let next = ts(&v["next_probe"]) - t0();
    assert!(
        (57..=63).contains(&next.num_minutes()),
        "next probe in {next}"
    );
    let hist: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(hist, ["testing", "delegated"], "{v}");
    for s in v["downtime"]["servers"].as_array().unwrap() {
        assert_eq!(s["unreachable_secs"], 0, "{v}");
        assert_eq!(s["last_reachable"], true, "{v}");
    }
    let (st, list) = reg
        .api(
            reqwest::Method::GET,
            "/domains?state=delegated",
            Some(&token(ALPHA)),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["domains"][0]["name"], "good.ru", "{list}");

    // The zone file: NS records and glue.
    let zone = reg.wait_zone("good.ru", true).await;
    for (n, ip) in &z.ns {
        assert!(
            zone.contains(&format!("good.ru. 345600 IN NS {n}.")),
            "{zone}"
        );
        assert!(zone.contains(&format!("{n}. 345600 IN A {ip}")), "{zone}");
    }
    assert!(zone.contains("; 1 delegations"), "{zone}");

    // WHOIS (the real client).
    let w = reg.whois("good.ru").await;
    assert_eq!(whois_state(&w), "REGISTERED, DELEGATED, VERIFIED", "{w}");
    for (n, ip) in &z.ns {
        assert!(w.contains(&format!("{n}. {ip}")), "{w}");
    }

    // RDAP.
    let r = reg.rdap("good.ru").await;
    let s = rdap_statuses(&r);
    assert!(s.contains(&"active".to_string()), "{s:?}");
    assert!(!s.contains(&"pending update".to_string()), "{s:?}");
    assert_eq!(rdap_nameservers(&r), ["ns1.good.ru", "ns2.good.ru"]);

    // Monitoring already runs: a retest is refused and changes nothing;
    // re-declaring the same set changes nothing either.
    let rec = reg.rec("good.ru");
    let (st, v) = reg.retest(ALPHA, "good.ru").await;
    assert_eq!(st, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("delegated"), "{v}");
    let (st, v) = reg.declare(ALPHA, "good.ru", ns_body(&z)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "delegated", "{v}");
    assert_eq!(reg.rec("good.ru"), rec);
    reg.wait_zone("good.ru", true).await;

    reg.stop().await;
}

/// (b) A broken set: one server serves another SOA serial. Findings with
/// check ids while testing; `test_failed` when the window ends; the
/// registrar fixes the server and asks for a retest; delegated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_set_fails_the_window_then_retest_delegates() {
    let (lab, z, _ns1, ns2) = second_serial_behind("bad.ru").await;
    // A 30-minute window: the window counts conclusive probing time, so it
    // is walked round by round (a 4-day one would be 576 rounds).
    let window = chrono::Duration::minutes(30);
    let reg = Registry::start(&lab, &[("bad.ru", ALPHA)], |c| {
        c.delegation.test_window = Duration::from_secs(1800);
    })
    .await;

    let before = reg.rec("bad.ru");
    let (st, v) = reg.declare(ALPHA, "bad.ru", ns_body(&z)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing");
    let end = t0() + window;
    assert_eq!(ts(&v["window_end"]), end);

    // First round (at once): fails on the serials.
    let rec = reg.changed("bad.ru", &before).await;
    let rec = if rec.rounds == 0 {
        reg.changed("bad.ru", &rec).await
    } else {
        rec
    };
    assert_eq!(rec.rounds, 1, "{rec:?}");
    let v = reg.delegation(ALPHA, "bad.ru").await;
    assert_eq!(v["state"], "testing", "{v}");
    assert_eq!(v["rounds"], 1);
    assert_eq!(v["last_round"]["passed"], false);
    assert!(
        finding_ids(&v).contains(&"SOA_CONSISTENT".to_string()),
        "{v}"
    );
    assert_eq!(ts(&v["window_start"]), t0());
    assert_eq!(ts(&v["window_end"]), end);
    // Every ten minutes (±5 %).
    let next = ts(&v["next_probe"]) - t0();
    assert!((570..=630).contains(&next.num_seconds()), "{next}");
    let w = reg.whois("bad.ru").await;
    assert_eq!(
        whois_state(&w),
        "REGISTERED, NOT DELEGATED, VERIFIED, TESTING",
        "{w}"
    );
    let s = rdap_statuses(&reg.rdap("bad.ru").await);
    assert!(
        s.contains(&"inactive".to_string()) && s.contains(&"pending update".to_string()),
        "{s:?}"
    );

    // Two more rounds, still failing; then the window runs out.
    for n in 2..=3 {
        let rec = reg.next_round("bad.ru").await;
        assert_eq!(
            (rec.state, rec.rounds),
            (DelegationState::Testing, n),
            "{rec:?}"
        );
    }
    let rec = reg.round_at("bad.ru", end).await;
    assert_eq!(rec.state, DelegationState::TestFailed, "{rec:?}");
    let v = reg.delegation(ALPHA, "bad.ru").await;
    assert_eq!(v["state"], "test_failed", "{v}");
    assert_eq!(v["next_probe"], Value::Null);
    assert!(finding_ids(&v).contains(&"SOA_CONSISTENT".to_string()));
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to"], "test_failed");
    assert_eq!(ts(&last["at"]), end);
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("test window ended"),
        "{last}"
    );
    assert!(whois_state(&reg.whois("bad.ru").await).ends_with("TEST FAILED"));
    assert!(!reg.zone_text().contains("bad.ru. "));

    // The registrar fixes ns2 and asks for a retest a day later.
    drop(ns2);
    let _ns2 = lab.start(&z, 1).await;
    reg.clock.set(end + chrono::Duration::days(1));
    let retest_at = reg.clock_now();
    let (st, v) = reg.retest(ALPHA, "bad.ru").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing", "{v}");
    assert_eq!(ts(&v["window_start"]), retest_at);
    assert_eq!(ts(&v["window_end"]), retest_at + window);
    reg.wait_state("bad.ru", DelegationState::Delegated).await;
    let v = reg.delegation(ALPHA, "bad.ru").await;
    assert_eq!(v["in_zone"], true, "{v}");
    assert_eq!(ts(&v["delegated_at"]), retest_at);
    assert!(finding_ids(&v).is_empty(), "{v}");
    reg.wait_zone("bad.ru", true).await;
    assert!(whois_state(&reg.whois("bad.ru").await).contains(", DELEGATED,"));
    assert!(rdap_statuses(&reg.rdap("bad.ru").await).contains(&"active".to_string()));

    reg.stop().await;
}

/// (c) A delegated domain whose second server goes down past the 2-hour
/// budget: the failing rounds are re-probed every 5 minutes, which measure
/// the outage; within the budget it is downtime, not a violation; past it,
/// with `on_violation = "suspend"`, the domain leaves the zone. The server
/// comes back, and the first clean round puts the domain back the same
/// day (the exceeded budget stays on record as the violation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_past_the_budget_suspends_until_recovery() {
    let (lab, z, _ns1, ns2, reg) = delegated_suspending("mon.ru").await;
    let mut ns2 = Some(ns2);
    reg.wait_zone("mon.ru", true).await;

    // ns2 goes down. Each failing round schedules a re-probe in ~5 min.
    ns2.take();
    let mut rounds = 0;
    let mut prev_at: Option<Timestamp> = None;
    let suspended = loop {
        let rec = reg.next_round("mon.ru").await;
        rounds += 1;
        let at = rec.last_round.as_ref().unwrap().at;
        if let Some(p) = prev_at {
            let gap = (at - p).num_seconds();
            assert!((270..=330).contains(&gap), "re-probed after {gap}s");
        }
        prev_at = Some(at);
        let v = reg.delegation(ALPHA, "mon.ru").await;
        let used = v["downtime"]["servers"][1]["unreachable_secs"]
            .as_u64()
            .unwrap();
        assert_eq!(v["downtime"]["servers"][1]["server"], "ns2.mon.ru");
        assert_eq!(v["downtime"]["servers"][1]["last_reachable"], false);
        assert_eq!(v["downtime"]["servers"][0]["unreachable_secs"], 0);
        if rec.state == DelegationState::Suspended {
            assert!(used > 7200, "{v}");
            assert_eq!(v["downtime"]["servers"][1]["remaining_secs"], 0);
            break v;
        }
        assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
        assert!(rec.violation.is_none(), "{rec:?}");
        assert!(used <= 7200, "{v}");
        assert_eq!(
            v["downtime"]["servers"][1]["remaining_secs"].as_u64(),
            Some(7200 - used)
        );
        assert!(rounds < 40, "not suspended after {rounds} rounds: {v}");
    };
    assert!(rounds >= 24, "2 h measured in 5-minute re-probes: {rounds}");
    assert_eq!(suspended["in_zone"], false);
    assert_eq!(
        suspended["violation"]["finding_ids"],
        json!(["DOWNTIME_BUDGET"]),
        "{suspended}"
    );
    reg.wait_zone("mon.ru", false).await;
    let w = reg.whois("mon.ru").await;
    assert_eq!(
        whois_state(&w),
        "REGISTERED, NOT DELEGATED, VERIFIED, VIOLATION, SUSPENDED",
        "{w}"
    );
    assert!(rdap_statuses(&reg.rdap("mon.ru").await).contains(&"inactive".to_string()));

    // ns2 is back: the next round (5 minutes on) delegates it again, the
    // same day.
    let _ns2 = lab.start(&z, 1).await;
    let rec = reg.next_round("mon.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
    assert!(rec.violation.is_none());
    let day2 = Utc.with_ymd_and_hms(2026, 11, 23, 21, 0, 0).unwrap();
    assert!(reg.clock_now() < day2, "back the same day");
    let v = reg.delegation(ALPHA, "mon.ru").await;
    assert_eq!(v["in_zone"], true);
    assert_eq!(
        v["last_violation"]["finding_ids"],
        json!(["DOWNTIME_BUDGET"])
    );
    assert!(v["last_violation"]["until"].is_string(), "{v}");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("violation cleared"),
        "{v}"
    );
    reg.wait_zone("mon.ru", true).await;
    assert!(whois_state(&reg.whois("mon.ru").await).contains(", DELEGATED,"));

    reg.stop().await;
}

/// (d) Authorization within the flow: registrar B cannot see, declare or
/// retest A's domain (403, and nothing changes); no or a bad token is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_registrar_and_anonymous_are_refused() {
    use reqwest::Method;
    let lab = Lab::new(4).await;
    let za = lab.zone("alpha.ru", &[1, 2]);
    let zb = lab.zone("beta.ru", &[3, 4]);
    let _a = (lab.start(&za, 0).await, lab.start(&za, 1).await);
    let _b = (lab.start(&zb, 0).await, lab.start(&zb, 1).await);
    let reg = Registry::start(&lab, &[("alpha.ru", ALPHA), ("beta.ru", BETA)], |_| {}).await;
    let (st, _) = reg.declare(ALPHA, "alpha.ru", ns_body(&za)).await;
    assert_eq!(st, 200);
    reg.wait_state("alpha.ru", DelegationState::Delegated).await;
    let before = reg.rec("alpha.ru");

    // B against A's domain: 403 with no data of the domain.
    let (st, v) = reg.view(BETA, "alpha.ru").await;
    assert_eq!(st, 403, "{v}");
    assert!(v.get("state").is_none() && !v.to_string().contains("ns1.alpha.ru"));
    let (st, v) = reg.declare(BETA, "alpha.ru", ns_body(&zb)).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = reg.retest(BETA, "alpha.ru").await;
    assert_eq!(st, 403, "{v}");
    let (st, list) = reg
        .api(Method::GET, "/domains", Some(&token(BETA)), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["domains"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["domains"][0]["name"], "beta.ru");

    // No token, a wrong token: 401 (before any domain is looked at).
    let paths = [
        (Method::GET, "/domains/alpha.ru/delegation"),
        (Method::PUT, "/domains/alpha.ru/nameservers"),
        (Method::POST, "/domains/alpha.ru/retest"),
        (Method::GET, "/domains"),
    ];
    for (m, p) in &paths {
        let body = (*m == Method::PUT).then(|| ns_body(&zb));
        for tok in [None, Some("token-nobody-ru")] {
            let (st, v) = reg.api(m.clone(), p, tok, body.clone()).await;
            assert_eq!(st, 401, "{m} {p} {tok:?}: {v}");
        }
    }

    // Nothing B or the anonymous caller did reached A's domain.
    assert_eq!(reg.rec("alpha.ru"), before);
    let (_, v) = reg.view(ALPHA, "alpha.ru").await;
    assert_eq!(v["state"], "delegated");
    assert_eq!(v["nameservers"][0]["name"], "ns1.alpha.ru");
    assert_eq!(v["history"].as_array().unwrap().len(), 2, "{v}");
    // B's own domain works as usual.
    let (st, v) = reg.declare(BETA, "beta.ru", ns_body(&zb)).await;
    assert_eq!(st, 200, "{v}");
    reg.wait_state("beta.ru", DelegationState::Delegated).await;
    let zone = reg.wait_zone("beta.ru", true).await;
    assert!(
        zone.contains("alpha.ru. 345600 IN NS ns1.alpha.ru."),
        "{zone}"
    );

    reg.stop().await;
}

/// A delegated domain whose registrar declares a new set: the domain stays
/// delegated on the old set, in the zone, while the new set is tested; the
/// zone switches to the new servers on their first full pass, with no gap.
/// A migration to a broken set fails when its window runs out and leaves
/// the old set in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclared_set_is_tested_while_the_old_one_stays_in_the_zone() {
    let lab = Lab::new(6).await;
    let old = lab.zone("move.ru", &[1, 2]);
    let new = lab.zone("move.ru", &[3, 4]);
    let broken = lab.zone("move.ru", &[5, 6]);
    let _old = (lab.start(&old, 0).await, lab.start(&old, 1).await);
    let reg = Registry::start(&lab, &[("move.ru", ALPHA)], |c| {
        c.delegation.test_window = Duration::from_secs(1800);
    })
    .await;
    reg.declare_delegated(ALPHA, "move.ru", ns_body(&old)).await;
    let zone = reg.wait_zone("move.ru", true).await;
    assert!(zone.contains(&format!("IN A {}", old.ns[0].1)), "{zone}");

    // The new servers are not up yet: the domain stays delegated on the
    // old set, everywhere.
    reg.clock.set(t0() + chrono::Duration::hours(5));
    let before = reg.rec("move.ru");
    let (st, v) = reg.declare(ALPHA, "move.ru", ns_body(&new)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "delegated", "{v}");
    assert_eq!(v["in_zone"], true, "{v}");
    assert_eq!(v["pending"]["state"], "testing", "{v}");
    assert_eq!(
        v["zone_nameservers"][0]["addresses"][0],
        old.ns[0].1.to_string(),
        "{v}"
    );
    assert!(whois_state(&reg.whois("move.ru").await).contains(", DELEGATED,"));
    let st = rdap_statuses(&reg.rdap("move.ru").await);
    assert!(
        st.contains(&"active".to_string()) && st.contains(&"pending update".to_string()),
        "{st:?}"
    );
    let mut rec = reg.changed("move.ru", &before).await;
    while rec.pending.as_ref().is_some_and(|p| p.rounds == 0) {
        rec = reg.changed("move.ru", &rec).await;
    }
    let p = rec.pending.clone().unwrap();
    assert_eq!(
        (p.state, p.rounds),
        (DelegationState::Testing, 1),
        "{rec:?}"
    );
    assert!(!p.last_round.as_ref().unwrap().passed);
    let zone = reg.zone_text();
    assert!(
        zone.contains(&format!("IN A {}", old.ns[0].1)),
        "old set kept: {zone}"
    );

    // The new servers come up: the zone switches on their first pass.
    let _new = (lab.start(&new, 0).await, lab.start(&new, 1).await);
    let rec = reg.round_at("move.ru", p.next_probe.unwrap()).await;
    assert!(rec.pending.is_none(), "{rec:?}");
    assert_eq!(rec.state, DelegationState::Delegated);
    let switched = wait_for(STEP, || {
        reg.zone_text().contains(&format!("IN A {}", new.ns[0].1))
    })
    .await;
    let zone = reg.zone_text();
    assert!(switched, "{zone}");
    assert!(!zone.contains(&old.ns[0].1.to_string()), "{zone}");
    let v = reg.delegation(ALPHA, "move.ru").await;
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("nameserver change applied"),
        "{v}"
    );
    assert_eq!(v["pending"], Value::Null);

    // A migration to servers that never come up: the change fails when its
    // 30-minute window ends; the domain stays delegated on `new`.
    let (st, v) = reg.declare(ALPHA, "move.ru", ns_body(&broken)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "delegated", "{v}");
    let mut rec = reg.rec("move.ru");
    for _ in 0..10 {
        let Some(p) = rec.pending.clone() else { break };
        if p.state == DelegationState::TestFailed {
            break;
        }
        rec = reg.round_at("move.ru", p.next_probe.unwrap()).await;
    }
    let p = rec.pending.clone().unwrap();
    assert_eq!(p.state, DelegationState::TestFailed, "{rec:?}");
    assert_eq!(rec.state, DelegationState::Delegated);
    let v = reg.delegation(ALPHA, "move.ru").await;
    assert_eq!(v["pending"]["state"], "test_failed", "{v}");
    assert_eq!(v["in_zone"], true);
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("nameserver change failed"),
        "{v}"
    );
    assert!(reg.zone_text().contains(&format!("IN A {}", new.ns[0].1)));

    // Removing every server: undelegated, out of the zone at once.
    let (st, v) = reg
        .declare(ALPHA, "move.ru", json!({"nameservers": []}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "undelegated", "{v}");
    reg.wait_zone("move.ru", false).await;

    reg.stop().await;
}

/// Monitoring with `on_violation = "report"` (the default) against a real
/// NSD: ns1 is NSD, ns2 an in-test server serving the same zone data. ns2
/// is down past the budget: the violation is recorded and shown, the
/// domain stays delegated and in the zone; the next day, with ns2 back,
/// the violation is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_pair_outage_is_reported_and_cleared() {
    let block = dns::loopback_block();
    let z = dns::zone("mixed.ru", block, &[1, 2]);
    let IpAddr::V4(ip1) = z.ns[0].1 else {
        unreachable!()
    };
    let spec = support::nsd::ZoneSpec {
        domain: "mixed.ru",
        serial: z.serial,
        rname: "hostmaster.mixed.ru.",
        ns: z.ns.iter().map(|(n, _)| n.clone()).collect(),
        hosts: z
            .ns
            .iter()
            .map(|(n, ip)| match ip {
                IpAddr::V4(v4) => (n.clone(), *v4),
                IpAddr::V6(_) => unreachable!(),
            })
            .collect(),
    };
    let nsd = tokio::task::spawn_blocking(move || {
        support::nsd::Nsd::start(ip1, &[("mixed.ru", spec.render())])
    })
    .await
    .unwrap();
    let lab = Lab {
        block,
        port: nsd.addr.port(),
    };
    let mut ns2 = Some(lab.start(&z, 1).await);
    let reg = Registry::start(&lab, &[("mixed.ru", ALPHA)], |_| {}).await;
    assert_eq!(
        reg.app.config().delegation.on_violation,
        OnViolation::Report
    );

    reg.declare_delegated(ALPHA, "mixed.ru", ns_body(&z)).await;
    let v = reg.delegation(ALPHA, "mixed.ru").await;
    assert_eq!(v["last_round"]["passed"], true, "{v}");
    reg.wait_zone("mixed.ru", true).await;

    // ns2 down: re-probed every 5 minutes until it is over the 2-hour
    // budget.
    ns2.take();
    let mut rec = reg.rec("mixed.ru");
    for _ in 0..30 {
        rec = reg.next_round("mixed.ru").await;
        assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
        if rec.violation.is_some() {
            break;
        }
    }
    let violation = rec.violation.clone().expect("a violation within 30 rounds");
    assert_eq!(violation.finding_ids, ["DOWNTIME_BUDGET"], "{violation:?}");
    assert!(violation.message.contains("ns2.mixed.ru"), "{violation:?}");
    let v = reg.delegation(ALPHA, "mixed.ru").await;
    assert_eq!(v["state"], "delegated");
    assert_eq!(v["in_zone"], true, "report keeps it in the zone: {v}");
    assert_eq!(v["violation"]["finding_ids"], json!(["DOWNTIME_BUDGET"]));
    assert_eq!(v["downtime"]["servers"][0]["unreachable_secs"], 0, "{v}");
    assert_eq!(v["downtime"]["servers"][1]["remaining_secs"], 0, "{v}");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["from"], &last["to"]),
        (&json!("delegated"), &json!("delegated"))
    );
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .starts_with("violation confirmed"),
        "{last}"
    );
    assert!(reg
        .zone_text()
        .contains("mixed.ru. 345600 IN NS ns2.mixed.ru."));
    let w = whois_state(&reg.whois("mixed.ru").await);
    assert_eq!(w, "REGISTERED, DELEGATED, VERIFIED, VIOLATION", "{w}");

    // ns2 is back: the first clean round ends the violation, the same
    // day; its start and end stay visible.
    let _ns2 = lab.start(&z, 1).await;
    rec = reg.next_round("mixed.ru").await;
    assert!(rec.violation.is_none(), "{rec:?}");
    let day2 = Utc.with_ymd_and_hms(2026, 11, 23, 21, 0, 0).unwrap();
    assert!(reg.clock_now() < day2);
    let v = reg.delegation(ALPHA, "mixed.ru").await;
    assert_eq!(v["violation"], Value::Null, "{v}");
    assert_eq!(
        v["last_violation"]["finding_ids"],
        json!(["DOWNTIME_BUDGET"]),
        "{v}"
    );
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reason"], "violation cleared: clean round", "{v}");
    assert_eq!(v["in_zone"], true);

    reg.stop().await;
    drop(nsd);
}

/// A server that refuses the zone (lame): findings name it; the registrar
/// declares a corrected set during the window, which restarts testing with
/// a fresh window and delegates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lame_server_then_corrected_declaration() {
    let lab = Lab::new(3).await;
    let z = lab.zone("lame.ru", &[1, 2]);
    let fixed = lab.zone("lame.ru", &[1, 3]);
    let ns1 = lab.start(&z, 0).await;
    // ns2 serves another zone only: REFUSED for lame.ru.
    let _ns2 = lab.start_as(z.ns[1].1, &lab.zone("other.ru", &[2])).await;
    let reg = Registry::start(&lab, &[("lame.ru", ALPHA)], |_| {}).await;

    let (st, v) = reg.declare(ALPHA, "lame.ru", ns_body(&z)).await;
    assert_eq!(st, 200, "{v}");
    assert!(wait_for(STEP, || reg.rec("lame.ru").rounds >= 1).await);
    let v = reg.delegation(ALPHA, "lame.ru").await;
    assert_eq!(v["state"], "testing", "{v}");
    let on_ns2: Vec<&Value> = v["last_round"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["server"]
                .as_str()
                .is_some_and(|s| s.contains("ns2.lame.ru"))
        })
        .collect();
    assert!(
        on_ns2
            .iter()
            .any(|f| f["severity"] == "error" && f["id"] == "LAME"),
        "{v}"
    );
    // Refusing is an answer: ns2 is reachable, so no downtime accrues.
    let next = reg.next_round("lame.ru").await;
    assert_eq!(next.state, DelegationState::Testing);
    let v = reg.delegation(ALPHA, "lame.ru").await;
    assert_eq!(v["downtime"]["servers"][1]["unreachable_secs"], 0, "{v}");
    assert_eq!(v["downtime"]["servers"][1]["last_reachable"], true, "{v}");

    // A day later the registrar moves ns2 to a working address (the zone
    // on ns1 publishes the new glue) and declares the corrected set.
    drop(ns1);
    let _ns1 = lab.start(&fixed, 0).await;
    let _ns2b = lab.start(&fixed, 1).await;
    reg.clock.set(t0() + chrono::Duration::days(1));
    let at = reg.clock_now();
    let (st, v) = reg.declare(ALPHA, "lame.ru", ns_body(&fixed)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "testing");
    assert_eq!(v["rounds"], 0);
    assert_eq!(ts(&v["window_start"]), at);
    assert_eq!(ts(&v["window_end"]), at + chrono::Duration::days(4));
    reg.wait_state("lame.ru", DelegationState::Delegated).await;
    let zone = reg.wait_zone("lame.ru", true).await;
    assert!(
        zone.contains(&format!("ns2.lame.ru. 345600 IN A {}", fixed.ns[1].1)),
        "{zone}"
    );
    let r = reg.rdap("lame.ru").await;
    assert!(rdap_statuses(&r).contains(&"active".to_string()));

    reg.stop().await;
}

/// An IDN domain in the `рф` zone, handled in U-labels by the registrar
/// (API path and NS names), published in A-labels (zone file) and found
/// by either form over WHOIS and RDAP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idn_domain_flow() {
    const ACE: &str = "xn--e1afmkfd.xn--p1ai";
    let lab = Lab::new(2).await;
    let z = lab.zone(ACE, &[1, 2]);
    let _ns = (lab.start(&z, 0).await, lab.start(&z, 1).await);
    let reg = Registry::start(&lab, &[(ACE, ALPHA)], |c| c.zones = vec!["рф".into()]).await;
    assert!(
        reg.zone_file.ends_with("xn--p1ai.zone"),
        "{:?}",
        reg.zone_file
    );

    let body = json!({"nameservers": [
        {"name": "ns1.пример.рф", "addresses": [z.ns[0].1.to_string()]},
        {"name": "NS2.Пример.РФ.", "addresses": [z.ns[1].1.to_string()]},
    ]});
    let (st, v) = reg.declare(ALPHA, "пример.рф", body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["domain"], ACE, "{v}");
    assert_eq!(v["unicode_name"], "пример.рф", "{v}");
    assert_eq!(v["nameservers"][1]["name"], format!("ns2.{ACE}"), "{v}");
    reg.wait_state(ACE, DelegationState::Delegated).await;
    let v = reg.delegation(ALPHA, "ПРИМЕР.РФ").await;
    assert_eq!(v["state"], "delegated", "{v}");

    let zone = reg.wait_zone(ACE, true).await;
    assert!(
        zone.contains(&format!("{ACE}. 345600 IN NS ns1.{ACE}.")),
        "{zone}"
    );
    assert!(zone.starts_with("; zone xn--p1ai "), "{zone}");
    for q in ["пример.рф", ACE] {
        let w = reg.whois(q).await;
        assert!(
            w.contains(&format!("domain:        {}", ACE.to_uppercase())),
            "{q}: {w}"
        );
        assert_eq!(whois_state(&w), "REGISTERED, DELEGATED, VERIFIED", "{w}");
    }
    for q in ["пример.рф", ACE] {
        let r = reg.rdap(q).await;
        assert_eq!(r["ldhName"], ACE, "{r}");
        assert_eq!(r["unicodeName"], "пример.рф", "{r}");
        assert!(rdap_statuses(&r).contains(&"active".to_string()));
        assert_eq!(
            rdap_nameservers(&r),
            [format!("ns1.{ACE}"), format!("ns2.{ACE}")]
        );
    }
    let (st, list) = reg
        .api(
            reqwest::Method::GET,
            "/domains?state=delegated",
            Some(&token(ALPHA)),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["domains"][0]["unicode_name"], "пример.рф", "{list}");

    reg.stop().await;
}

/// `serve` stopped and restarted in the middle of a test window: the
/// registrar sees the same window, rounds, downtime and history; no round
/// is lost or counted twice; the time the service was down is not charged
/// as downtime; the domain goes on to be delegated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_window_keeps_the_progress() {
    let (lab, z, _ns1, reg) = declared_with_ns2_down("again.ru").await;
    let rec = reg.next_round("again.ru").await;
    assert_eq!((rec.state, rec.rounds), (DelegationState::Testing, 2));
    let before = reg.delegation(ALPHA, "again.ru").await;
    let used = before["downtime"]["servers"][1]["unreachable_secs"]
        .as_u64()
        .unwrap();
    assert!(
        (570..=630).contains(&used),
        "one probe interval down: {before}"
    );

    let reg = reg.restart(chrono::Duration::minutes(5)).await;
    let after = reg.delegation(ALPHA, "again.ru").await;
    for k in [
        "state",
        "window_start",
        "window_end",
        "rounds",
        "last_round",
        "next_probe",
        "history",
    ] {
        assert_eq!(after[k], before[k], "{k} changed over the restart");
    }
    assert_eq!(after["downtime"]["servers"], before["downtime"]["servers"]);
    assert_eq!(
        after["window_remaining_secs"].as_i64().unwrap(),
        before["window_remaining_secs"].as_i64().unwrap() - 300
    );

    // ns2 comes up; the next round delegates.
    let _ns2 = lab.start(&z, 1).await;
    let rec = reg.next_round("again.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
    let rounds = reg.app.store().rounds("again.ru", 100).unwrap();
    assert_eq!(rounds.len(), 3, "{rounds:?}");
    assert!(rounds.windows(2).all(|w| w[0].at < w[1].at), "{rounds:?}");
    let v = reg.delegation(ALPHA, "again.ru").await;
    // Down at round 2, up at round 3: the outage is measured up to the
    // probe that saw ns2 answer (the restart's 5 minutes lie inside that
    // 10-minute gap, which is within reach).
    let total = v["downtime"]["servers"][1]["unreachable_secs"]
        .as_u64()
        .unwrap();
    assert!(total > used + 500 && total < used + 700, "{used} then {v}");
    reg.wait_zone("again.ru", true).await;

    reg.stop().await;
}

/// Lifecycle overrides the servers: a delegated domain whose registration
/// expires leaves the zone at the instant `paid_till` passes (the scheduler
/// looks then, not at its next hourly round), and every view says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_takes_a_delegated_domain_out_at_once() {
    let lab = Lab::new(2).await;
    let z = lab.zone("late.ru", &[1, 2]);
    let _ns = (lab.start(&z, 0).await, lab.start(&z, 1).await);
    let mut d = domain("late.ru", ALPHA);
    d.paid_till = t0() + chrono::Duration::minutes(90);
    let reg = Registry::start_with(&lab, vec![d], |_| {}).await;
    reg.declare_delegated(ALPHA, "late.ru", ns_body(&z)).await;
    reg.wait_zone("late.ru", true).await;

    // One hourly round, then the next look is due at the expiry itself.
    let rec = reg.next_round("late.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated);
    let expiry = t0() + chrono::Duration::minutes(90) + chrono::Duration::milliseconds(1);
    assert_eq!(rec.next_probe, Some(expiry), "{rec:?}");
    let rec = reg.next_round("late.ru").await;
    assert_eq!(rec.state, DelegationState::Suspended, "{rec:?}");
    assert_eq!(rec.blocked, ["expired"], "{rec:?}");
    reg.wait_zone("late.ru", false).await;

    let v = reg.delegation(ALPHA, "late.ru").await;
    assert_eq!(v["state"], "suspended", "{v}");
    assert_eq!(v["in_zone"], false);
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reason"], "suspended: expired", "{v}");
    let w = reg.whois("late.ru").await;
    assert!(whois_state(&w).contains("NOT DELEGATED"), "{w}");
    assert!(whois_state(&w).contains("EXPIRED"), "{w}");
    let s = rdap_statuses(&reg.rdap("late.ru").await);
    assert!(
        s.contains(&"inactive".to_string()) && s.contains(&"redemption period".to_string()),
        "{s:?}"
    );

    reg.stop().await;
}

/// Monitoring sees data that stops matching: ns2 starts serving an older
/// SOA serial. The first failing round is a warning with a re-probe in
/// 5 minutes; with `on_violation = "suspend"` the domain leaves the zone
/// once the violation is confirmed (3 rounds over at least 15 minutes; a
/// violation is not downtime: no budget applies); the first clean round
/// puts it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_drift_suspends_until_fixed() {
    let (lab, z, _ns1, ns2, reg) = delegated_suspending("drift.ru").await;
    reg.wait_zone("drift.ru", true).await;

    drop(ns2);
    let mut stale = z.clone();
    stale.serial -= 1;
    let ns2 = lab.start_as(z.ns[1].1, &stale).await;
    let rec = reg.next_round("drift.ru").await;
    let first = rec.last_round.as_ref().unwrap().at;
    assert_eq!(
        rec.state,
        DelegationState::Delegated,
        "a warning first: {rec:?}"
    );
    assert_eq!(rec.failing.as_ref().unwrap().rounds, 1, "{rec:?}");
    let re = rec.next_probe.unwrap() - first;
    assert!(
        (270..=330).contains(&re.num_seconds()),
        "re-probe in ~5 min: {re}"
    );
    let v = reg.delegation(ALPHA, "drift.ru").await;
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .starts_with("warning: failing round"),
        "{v}"
    );
    assert!(reg.zone_text().contains("drift.ru. "), "still in the zone");
    let mut rec = rec;
    let mut rounds = 1;
    while rec.state == DelegationState::Delegated {
        rec = reg.next_round("drift.ru").await;
        rounds += 1;
        assert!(rounds <= 5, "not confirmed: {rec:?}");
    }
    assert_eq!(rec.state, DelegationState::Suspended, "{rec:?}");
    let at = rec.last_round.as_ref().unwrap().at;
    assert!(
        rounds >= 3 && at - first >= chrono::Duration::minutes(15),
        "{rounds} rounds, {}",
        at - first
    );
    assert_eq!(rec.violation.as_ref().unwrap().since, first);
    reg.wait_zone("drift.ru", false).await;
    let v = reg.delegation(ALPHA, "drift.ru").await;
    assert_eq!(
        v["violation"]["finding_ids"],
        json!(["SOA_CONSISTENT"]),
        "{v}"
    );
    assert!(
        finding_ids(&v).contains(&"SOA_CONSISTENT".to_string()),
        "{v}"
    );
    for s in v["downtime"]["servers"].as_array().unwrap() {
        assert_eq!(s["unreachable_secs"], 0, "{v}");
    }
    let w = reg.whois("drift.ru").await;
    assert!(whois_state(&w).ends_with("SUSPENDED"), "{w}");

    // Fixed: back at the next round, the same day.
    drop(ns2);
    let _ns2 = lab.start(&z, 1).await;
    let rec = reg.next_round("drift.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
    assert!(rec.violation.is_none());
    reg.wait_zone("drift.ru", true).await;
    let v = reg.delegation(ALPHA, "drift.ru").await;
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["reason"], "violation cleared: clean round, delegated again",
        "{v}"
    );
    assert_eq!(ts(&v["last_violation"]["since"]), first, "{v}");
    assert!(v["last_violation"]["until"].is_string(), "{v}");

    reg.stop().await;
}

/// The real binary: `zonekeeper serve --config … --import …` with periods
/// shrunk to seconds in the TOML config, the wall clock, and SIGTERM at
/// the end. A broken set fails its 2-second window, is fixed and retested,
/// and is delegated; the zone file, WHOIS and the API agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binary_with_shrunk_periods() {
    let (lab, z, _ns1, ns2) = second_serial_behind("bin.ru").await;

    let dir = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (whois_addr, http_addr) = (free(), free());
    let d = dir.path().display();
    let cfg = format!(
        r#"zones = ["ru"]
[store]
path = "{d}/zk.redb"
cache_mib = 16
[delegation]
probe_interval = "200ms"
test_window = "2s"
monitor_interval = "500ms"
downtime_budget = "1s"
downtime_period = "1d"
[probe]
allow_private_targets = true
port = {port}
timeout = "300ms"
retries = 0
resolvers = ["127.0.0.1:9"]
[zone]
output = "{d}/{{zone}}.zone"
[log]
filter = "warn"
"#,
        port = lab.port
    );
    std::fs::write(dir.path().join("zk.toml"), cfg).unwrap();
    let now = Utc::now();
    let import = json!({
        "registrars": [{
            "handle": ALPHA, "name": "Alpha", "url": null, "email": null,
            "api_token_sha256": registrar(ALPHA).api_token_sha256,
        }],
        "contacts": [{
            "handle": "C1-RU", "kind": "person", "name": "Ivan Petrov", "org": null,
            "email": null, "phone": null, "address": null, "tax_id": null,
            "birth_date": null, "passport": null, "disclose": [],
        }],
        "domains": [{
            "name": "bin.ru", "registrar": ALPHA, "registrant": "C1-RU",
            "admin": null, "tech": null,
            "created": (now - chrono::Duration::days(10)).to_rfc3339(),
            "paid_till": (now + chrono::Duration::days(300)).to_rfc3339(),
            "nameservers": [], "auth_info": null, "hold": false,
            "verification_requested": null, "transferred": null,
        }],
    });
    let import_path = dir.path().join("registry.json");
    std::fs::write(&import_path, import.to_string()).unwrap();

    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("zk.toml"))
            .arg("--import")
            .arg(&import_path)
            .arg("--whois-listen")
            .arg(whois_addr.to_string())
            .arg("--http-listen")
            .arg(http_addr.to_string())
            .env_remove("RUST_LOG")
            // A file, not a pipe: nobody reads a pipe while it runs.
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{http_addr}");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "serve did not become ready");
    let tok = token(ALPHA);
    let view = || async {
        let r = http
            .get(format!("{base}/api/v1/domains/bin.ru/delegation"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let wait_state = |want: &'static str| {
        let view = &view;
        async move {
            for _ in 0..100 {
                let v = view().await;
                if v["state"] == want {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("bin.ru not {want}: {}", view().await);
        }
    };

    let r = http
        .put(format!("{base}/api/v1/domains/bin.ru/nameservers"))
        .bearer_auth(&tok)
        .json(&ns_body(&z))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "testing", "{v}");
    let window = ts(&v["window_end"]) - ts(&v["window_start"]);
    assert_eq!(window, chrono::Duration::seconds(2));

    let v = wait_state("test_failed").await;
    assert!(v["history"].as_array().unwrap().len() >= 2, "{v}");
    assert!(v["rounds"].as_u64().unwrap() >= 3, "{v}");
    assert!(
        finding_ids(&v).contains(&"SOA_CONSISTENT".to_string()),
        "{v}"
    );

    drop(ns2);
    let _ns2 = lab.start(&z, 1).await;
    let r = http
        .post(format!("{base}/api/v1/domains/bin.ru/retest"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = wait_state("delegated").await;
    assert_eq!(v["in_zone"], true, "{v}");

    let zone_file = dir.path().join("ru.zone");
    assert!(
        wait_for(STEP, || std::fs::read_to_string(&zone_file)
            .unwrap_or_default()
            .contains("bin.ru. 345600 IN NS ns1.bin.ru."))
        .await,
        "{:?}",
        std::fs::read_to_string(&zone_file)
    );
    let out = tokio::process::Command::new("whois")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(whois_addr.port().to_string())
        .arg("bin.ru")
        .output()
        .await
        .unwrap();
    let w = String::from_utf8(out.stdout).unwrap();
    assert_eq!(whois_state(&w), "REGISTERED, DELEGATED, VERIFIED", "{w}");

    // SIGTERM: a clean stop.
    let pid = child.0.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = child.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("serve stops within 15 s of SIGTERM");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
}

// ---- safe decisions (registry-side outages, flapping, lag, addresses) ----

/// The API body of a set where one server has several addresses.
fn ns_body_grouped(z: &dns::LabZone) -> Value {
    let mut names: Vec<&String> = z.ns.iter().map(|(n, _)| n).collect();
    names.dedup();
    let ns: Vec<Value> = names
        .iter()
        .map(|n| {
            let addrs: Vec<String> =
                z.ns.iter()
                    .filter(|(m, _)| m == *n)
                    .map(|(_, ip)| ip.to_string())
                    .collect();
            json!({"name": n, "addresses": addrs})
        })
        .collect();
    json!({ "nameservers": ns })
}

impl Registry {
    /// Probe every one of `names` at `at` (all due by then), as a busy
    /// registry probes many domains within the same minute.
    async fn round_all(&self, names: &[&str], at: Timestamp) -> Vec<DelegationRecord> {
        if at > self.clock_now() {
            self.clock.set(at);
        }
        for n in names {
            self.app.domain_changed(n);
        }
        let mut out = Vec::new();
        for n in names {
            assert!(
                wait_for(STEP, || self.rec(n).last_look >= Some(at)).await,
                "no round of {n} at {at}: {:?}",
                self.rec(n)
            );
            out.push(self.rec(n));
        }
        out
    }
}

/// The registry's own network goes down (every lab server unreachable at
/// once) for longer than the 2-hour budget: rounds are inconclusive,
/// nothing is charged, nothing suspended, and health says degraded. Run
/// once with the failure-share detector (no canaries) and once with a
/// canary that stops answering too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_side_outage_charges_nothing_and_suspends_nothing() {
    for with_canary in [false, true] {
        let lab = Lab::new(7).await;
        let names = ["aa.ru", "bb.ru", "cc.ru"];
        let zones: Vec<dns::LabZone> = names
            .iter()
            .enumerate()
            .map(|(i, n)| lab.zone(n, &[2 * i as u8 + 1, 2 * i as u8 + 2]))
            .collect();
        let canary_zone = lab.zone("canary.ru", &[7]);
        let mut servers = Vec::new();
        for z in &zones {
            servers.push(lab.start(z, 0).await);
            servers.push(lab.start(z, 1).await);
        }
        let mut canary = Some(lab.start(&canary_zone, 0).await);
        let canary_addr = SocketAddr::new(canary_zone.ns[0].1, lab.port);
        let reg = Registry::start(
            &lab,
            &names.iter().map(|n| (*n, ALPHA)).collect::<Vec<_>>(),
            |c| {
                c.delegation.on_violation = OnViolation::Suspend;
                if with_canary {
                    c.probe.canaries = vec![canary_addr];
                    c.probe.outage_window = Duration::from_secs(4);
                }
            },
        )
        .await;
        for (n, z) in names.iter().zip(&zones) {
            let (st, v) = reg.declare(ALPHA, n, ns_body(z)).await;
            assert_eq!(st, 200, "{v}");
        }
        for n in names {
            reg.wait_state(n, DelegationState::Delegated).await;
        }
        // One clean monitoring look at every domain first.
        let mut at = t0() + chrono::Duration::hours(1) + chrono::Duration::minutes(5);
        reg.round_all(&names, at).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let health = || async {
            http.get(format!("{}/healthz", reg.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        assert_eq!(health().await, "ok\n");

        // The outage: every server (and the canary) goes quiet.
        servers.clear();
        canary.take();
        if with_canary {
            assert!(
                wait_for(STEP, || reg.app.outage().is_some()).await,
                "the canary watcher did not notice"
            );
        }
        // Three hours of looks every six minutes (re-probes are due five
        // minutes, ±jitter, after a failing round), starting when every
        // domain's hourly look is due.
        at = names
            .iter()
            .map(|n| reg.rec(n).next_probe.unwrap())
            .max()
            .unwrap();
        let end = at + chrono::Duration::hours(3);
        let mut inconclusive = 0;
        reg.round_all(&names, at).await;
        while at < end {
            at += chrono::Duration::minutes(6);
            for rec in reg.round_all(&names, at).await {
                assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
                assert!(rec.violation.is_none(), "{rec:?}");
                if rec
                    .last_round
                    .as_ref()
                    .is_some_and(|r| r.inconclusive.is_some())
                {
                    inconclusive += 1;
                }
            }
        }
        assert!(inconclusive >= 3 * 29, "{inconclusive} inconclusive rounds");
        let h = health().await;
        assert!(h.starts_with("degraded: registry-side outage"), "{h}");
        let m = http
            .get(format!("{}/metrics", reg.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The recorder is process-wide and other tests' registries run in
        // parallel (their detectors set the gauge too): the counter, which
        // only grows, is what this test can rely on.
        assert!(m.contains("zonekeeper_registry_outage"), "{m}");
        let inconclusive_total: f64 = m
            .lines()
            .find_map(|l| l.strip_prefix("zonekeeper_rounds_inconclusive_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(inconclusive_total >= inconclusive as f64, "{m}");
        for n in names {
            let v = reg.delegation(ALPHA, n).await;
            assert_eq!(v["in_zone"], true, "{v}");
            for s in v["downtime"]["servers"].as_array().unwrap() {
                // At most the onset, before the detector knew.
                assert!(s["unreachable_secs"].as_u64().unwrap() <= 300, "{v}");
            }
            assert!(v["last_round"]["inconclusive"].is_string(), "{v}");
        }
        let w = reg.whois("aa.ru").await;
        assert!(whois_state(&w).contains(", DELEGATED,"), "{w}");
        for n in names {
            reg.wait_zone(n, true).await;
        }

        // The network is back: clean rounds, nothing happened.
        for z in &zones {
            servers.push(lab.start(z, 0).await);
            servers.push(lab.start(z, 1).await);
        }
        let _canary = lab.start(&canary_zone, 0).await;
        if with_canary {
            assert!(wait_for(STEP, || reg.app.outage().is_none()).await);
        }
        at += chrono::Duration::minutes(6);
        for rec in reg.round_all(&names, at).await {
            assert_eq!(rec.state, DelegationState::Delegated);
            assert!(rec.failing.is_none() && rec.violation.is_none(), "{rec:?}");
            assert!(rec.downtime.iter().all(|d| d.unreachable_ms <= 300_000));
        }
        reg.stop().await;
    }
}

/// A flapping server (down, up, down, up … on successive re-probes) and a
/// SOA serial that lags for one round and then converges are warnings
/// with events, never a suspension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_server_and_converging_serial_lag_are_not_sanctioned() {
    let (lab, z, _ns1, ns2, reg) = delegated_suspending("flap.ru").await;
    let mut ns2 = Some(ns2);
    for i in 0..12 {
        if i % 2 == 0 {
            ns2.take();
        } else {
            ns2 = Some(lab.start(&z, 1).await);
        }
        let rec = reg.next_round("flap.ru").await;
        assert_eq!(rec.state, DelegationState::Delegated, "round {i}: {rec:?}");
        assert!(rec.violation.is_none(), "{rec:?}");
    }
    // Serial lag during a NOTIFY/IXFR: one round with the old serial.
    let mut lagging = z.clone();
    lagging.serial -= 1;
    drop(ns2);
    let stale = lab.start_as(z.ns[1].1, &lagging).await;
    let rec = reg.next_round("flap.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated);
    assert_eq!(
        rec.failing.as_ref().unwrap().finding_ids,
        ["SOA_CONSISTENT"]
    );
    drop(stale);
    let _ns2 = lab.start(&z, 1).await;
    let rec = reg.next_round("flap.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated);
    assert!(rec.failing.is_none() && rec.violation.is_none(), "{rec:?}");
    let h = reg.app.store().history("flap.ru", 100).unwrap();
    assert!(h.iter().all(|e| e.to == DelegationState::Delegated
        || e.from.is_none()
        || e.from == Some(DelegationState::Testing)
        || e.from == Some(DelegationState::Undelegated)));
    assert!(h
        .iter()
        .any(|e| e.reason.starts_with("warning: failing round")));
    assert!(h
        .iter()
        .rev()
        .find(|e| e.reason.contains("recovered before confirmation"))
        .is_some());
    reg.wait_zone("flap.ru", true).await;
    reg.stop().await;
}

/// One dead address of a two-address server: a RESPONSIVE finding naming
/// the address, charged to that address's own budget, not a violation;
/// the server itself is not down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_of_a_two_address_server_has_its_own_budget() {
    let lab = Lab::new(3).await;
    let mut z = lab.zone("two.ru", &[1, 3]);
    // ns1.two.ru has a second address.
    z.ns.insert(1, ("ns1.two.ru".into(), dns::ip(lab.block, 2)));
    let _a = lab.start_as(z.ns[0].1, &z).await;
    let b = lab.start_as(z.ns[1].1, &z).await;
    let _c = lab.start_as(z.ns[2].1, &z).await;
    let reg = Registry::start(&lab, &[("two.ru", ALPHA)], |c| {
        c.delegation.on_violation = OnViolation::Suspend;
    })
    .await;
    reg.declare_delegated(ALPHA, "two.ru", ns_body_grouped(&z))
        .await;
    drop(b);
    let dead = z.ns[1].1.to_string();
    for _ in 0..13 {
        let rec = reg.next_round("two.ru").await;
        assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
        assert!(rec.violation.is_none(), "{rec:?}");
        let s = &rec.last_round.as_ref().unwrap().servers[0];
        assert!(s.reachable);
        assert_eq!(s.unreachable_addresses.len(), 1, "{s:?}");
    }
    let v = reg.delegation(ALPHA, "two.ru").await;
    let f = v["last_round"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RESPONSIVE")
        .cloned()
        .unwrap();
    assert!(f["address"].as_str().unwrap().starts_with(&dead), "{f}");
    let ns1 = &v["downtime"]["servers"][0];
    assert_eq!(ns1["unreachable_secs"], 0, "the server is not down: {v}");
    let a = &ns1["addresses"][0];
    assert!(a["address"].as_str().unwrap().starts_with(&dead), "{v}");
    let used = a["unreachable_secs"].as_u64().unwrap();
    assert!((3500..=3700).contains(&used), "an hour on the address: {v}");
    assert_eq!(a["remaining_secs"].as_u64().unwrap(), 7200 - used);
    assert!(v["failing"]["rounds"].as_u64().unwrap() >= 13, "{v}");
    let _b = lab.start_as(z.ns[1].1, &z).await;
    let rec = reg.next_round("two.ru").await;
    assert!(rec.failing.is_none(), "{rec:?}");
    reg.stop().await;
}

/// Serve stopped for longer than the whole test window: the stopped time
/// is not the registrant's; testing goes on after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stopped_longer_than_the_window_does_not_fail_the_test() {
    let (lab, z, _ns1, reg) = declared_with_ns2_down("pause.ru").await;
    let rec = reg.next_round("pause.ru").await;
    assert_eq!(rec.state, DelegationState::Testing);
    let used = rec.window_used_ms;

    let reg = reg.restart(chrono::Duration::days(5)).await;
    let restarted = reg.clock_now();
    let rec = reg.round_at("pause.ru", restarted).await;
    assert_eq!(rec.state, DelegationState::Testing, "{rec:?}");
    // Only the usual gap of one look is credited, not five days.
    assert!(rec.window_used_ms <= used + 20 * 60 * 1000, "{rec:?}");
    assert!(rec.window_end.unwrap() > restarted + chrono::Duration::days(3));
    let v = reg.delegation(ALPHA, "pause.ru").await;
    assert!(v["window_used_secs"].as_u64().unwrap() < 3600, "{v}");

    let _ns2 = lab.start(&z, 1).await;
    let rec = reg.next_round("pause.ru").await;
    assert_eq!(rec.state, DelegationState::Delegated, "{rec:?}");
    reg.stop().await;
}

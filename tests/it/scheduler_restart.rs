//! Restart safety: `zonekeeper serve` as a real child process, probing
//! loopback servers run by this test, is killed with SIGKILL at random
//! points several times and restarted. After every kill the store must be
//! consistent: window start kept, the record's round count and downtime
//! exactly what replaying its stored rounds gives (no round lost, none
//! counted twice), the last round in the record the last one stored, and
//! downtime never going back within a period.

use crate::support;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::dns;
use support::sched::*;
use zonekeeper::delegation::{self, Policy};
use zonekeeper::model::{DelegationState, Nameserver, ServerDowntime, Timestamp};
use zonekeeper::store::{Maintenance, RedbStore, Store};

fn glue(z: &dns::LabZone) -> Vec<Nameserver> {
    z.ns.iter().map(|(n, ip)| ns(n, &[*ip])).collect()
}

const CONFIG: &str = r#"
zones = ["ru"]
[store]
path = "@DB@"
# Every round kept: the check below replays them all.
rounds_keep_last = 100000
[delegation]
probe_interval = "200ms"
monitor_interval = "200ms"
test_window = "7s"
downtime_period = "3s"
downtime_budget = "1s"
downtime_utc_offset_secs = 0
jitter = 0.2
on_violation = "suspend"
max_concurrent_rounds = 8
[probe]
allow_private_targets = true
resolvers = ["127.0.0.1:9"]
timeout = "300ms"
retries = 0
port = @PORT@
[whois]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[log]
filter = "info,zonekeeper=debug"
"#;

/// One `serve` run's temp dir and, in it, its store, config file and log.
fn serve_paths() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.redb");
    let cfg_path = dir.path().join("zonekeeper.toml");
    let log = dir.path().join("serve.log");
    (dir, db, cfg_path, log)
}

/// [`CONFIG`] with the store at `db` and the servers probed on `port`.
fn config_text(db: &Path, port: &str) -> String {
    CONFIG
        .replace("@DB@", db.to_str().unwrap())
        .replace("@PORT@", port)
}

fn spawn(cfg: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[derive(Debug, Clone)]
struct Snap {
    window_start: Option<Timestamp>,
    state: DelegationState,
    rounds_stored: usize,
    downtime: Vec<ServerDowntime>,
}

/// Check one domain's record against its stored rounds.
fn check(store: &RedbStore, name: &str, pol: &Policy) -> Snap {
    let rec = store.delegation(name).unwrap().unwrap();
    let rounds = store.rounds(name, 10_000).unwrap();
    for w in rounds.windows(2) {
        assert!(w[0].at < w[1].at, "{name}: rounds out of order or twice");
    }
    assert_eq!(rec.last_round.as_ref(), rounds.last(), "{name}: last round");
    let mut dt = Vec::new();
    let mut prev: Option<&zonekeeper::model::RoundSummary> = None;
    for r in &rounds {
        let st = if rec.delegated_at.is_some_and(|d| r.at > d) {
            DelegationState::Delegated
        } else {
            DelegationState::Testing
        };
        dt = delegation::accrue_round(
            &dt,
            r.at,
            &r.servers,
            r.inconclusive.is_none(),
            pol.reach_after(st, prev, r.queue_lag_ms),
            pol,
        );
        prev = Some(r);
    }
    assert_eq!(
        dt, rec.downtime,
        "{name}: downtime differs from the replayed rounds"
    );
    let counted = match rec.state {
        DelegationState::Testing | DelegationState::TestFailed => {
            let ws = rec.window_start.unwrap();
            rounds.iter().filter(|r| r.at >= ws).count()
        }
        _ => {
            let d = rec.delegated_at.unwrap();
            rounds.iter().filter(|r| r.at > d).count()
        }
    };
    assert_eq!(rec.rounds as usize, counted, "{name}: round count");
    Snap {
        window_start: rec.window_start,
        state: rec.state,
        rounds_stored: rounds.len(),
        downtime: rec.downtime,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_doubles_nothing() {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let block = dns::loopback_block();
    let ips: Vec<_> = (1..=4).map(|h| dns::ip(block, h)).collect();
    let port = dns::common_port(&ips).await;
    let z_a = dns::zone("a.ru", block, &[1, 2]);
    let z_b = dns::zone("b.ru", block, &[3, 4]);
    let start = |z: &dns::LabZone, i: usize| {
        let z = z.clone();
        let ip = z.ns[i].1;
        async move { z.serve_on(ip, port).await }
    };
    let _a1 = start(&z_a, 0).await;
    let mut a2 = Some(start(&z_a, 1).await);
    let _b1 = start(&z_b, 0).await; // ns2.b.ru never answers

    let (_dir, db, cfg_path, log) = serve_paths();
    std::fs::write(&cfg_path, config_text(&db, &port.to_string())).unwrap();
    let cfg = zonekeeper::config::Config::load(&cfg_path).unwrap();
    let pol = Policy::from_config(&cfg.delegation);
    let now = chrono::Utc::now();
    // Extra domains whose rounds fail (the servers do not serve them), so
    // many rounds are in flight when the kill comes.
    let mut domains = vec![
        domain("a.ru", glue(&z_a), now),
        domain("b.ru", glue(&z_b), now),
    ];
    for i in 0..20 {
        domains.push(domain(&format!("x{i}.ru"), glue(&z_a), now));
    }
    let names: Vec<String> = domains
        .iter()
        .map(|d| d.name.as_str().to_string())
        .collect();
    drop(store_with(&db, domains, cfg.delegation.test_window));
    let b_window = {
        let s = RedbStore::open(&db).unwrap();
        s.delegation("b.ru").unwrap().unwrap().window_start
    };

    let mut last: HashMap<String, Snap> = HashMap::new();
    let mut runs = 0;
    for cycle in 0..5 {
        let mut child = spawn(&cfg_path, &log);
        // The random point is counted from when this run serves (holds the
        // store and schedules rounds), not from the spawn: on a loaded
        // machine start-up alone can take longer than the whole delay.
        http_addr(&log, runs);
        runs += 1;
        let ms = rng.random_range(400..1400);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if cycle == 1 {
            // a.ru's ns2 goes down: downtime accrues across the kills.
            a2.take();
        }
        child.kill().unwrap(); // SIGKILL
        assert!(wait_exit(&mut child, Duration::from_secs(5)));
        let store = RedbStore::open(&db).unwrap();
        assert_eq!(
            store.verify().unwrap(),
            Vec::<String>::new(),
            "store invariants"
        );
        for n in &names {
            let s = check(&store, n, &pol);
            if let Some(prev) = last.get(n) {
                assert!(s.rounds_stored >= prev.rounds_stored, "{n}: rounds lost");
                if s.state == DelegationState::Testing {
                    assert_eq!(s.window_start, prev.window_start, "{n}: window start lost");
                }
                for d in &s.downtime {
                    if let Some(p) = prev.downtime.iter().find(|p| p.server == d.server) {
                        if p.period_start == d.period_start {
                            assert!(d.unreachable_ms >= p.unreachable_ms, "{n}: downtime lost");
                        }
                    }
                }
            }
            last.insert(n.clone(), s);
        }
        assert_eq!(last["b.ru"].window_start, b_window);
    }
    let total: usize = last.values().map(|s| s.rounds_stored).sum();
    assert!(total > 30, "rounds ran between the kills: {total}");
    // a.ru was delegated; its ns2 outage may since have used up the budget.
    assert!(
        matches!(
            last["a.ru"].state,
            DelegationState::Delegated | DelegationState::Suspended
        ),
        "{:?}",
        last["a.ru"]
    );

    // A last run past the window's end, stopped cleanly with SIGTERM.
    // The window's end as stored: time the registry was not looking (the
    // kills, a loaded machine) extends it past window_start + 7s, also
    // during this run, so look again (a bounded number of times) while it
    // still moves.
    for _ in 0..4 {
        let b = RedbStore::open(&db)
            .unwrap()
            .delegation("b.ru")
            .unwrap()
            .unwrap();
        if b.state != DelegationState::Testing {
            break;
        }
        let end = b.window_end.unwrap();
        let mut child = spawn(&cfg_path, &log);
        http_addr(&log, runs);
        runs += 1;
        let wait = (end - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
        tokio::time::sleep(wait).await;
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert!(
            wait_exit(&mut child, Duration::from_secs(15)),
            "serve stops on SIGTERM"
        );
    }
    let store = RedbStore::open(&db).unwrap();
    assert_eq!(
        store.verify().unwrap(),
        Vec::<String>::new(),
        "store invariants"
    );
    for n in &names {
        check(&store, n, &pol);
    }
    let b = store.delegation("b.ru").unwrap().unwrap();
    assert_eq!(b.state, DelegationState::TestFailed);
    assert_eq!(
        b.window_start, b_window,
        "the window survived every restart"
    );
    let a = store.delegation("a.ru").unwrap().unwrap();
    let ns2 = a
        .downtime
        .iter()
        .find(|d| d.server.as_str() == "ns2.a.ru")
        .unwrap();
    assert_eq!(ns2.last_reachable, Some(false));
    let h = store.history("a.ru", 100).unwrap();
    assert!(h.iter().any(|e| e.to == DelegationState::Delegated));
    if a.state == DelegationState::Suspended {
        let v = a.violation.unwrap();
        assert!(
            v.finding_ids
                .contains(&delegation::DOWNTIME_BUDGET_ID.to_string()),
            "{v:?}"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("scheduler queue loaded"), "{text}");
}

#[test]
fn serve_stops_with_a_clear_message_when_the_scheduler_cannot_start() {
    let (dir, db, cfg_path, log) = serve_paths();
    let text = config_text(&db, "5353").replace(
        "[delegation]\n",
        &format!(
            "[delegation]\nprofile = \"{}\"\n",
            dir.path().join("missing-profile.toml").display()
        ),
    );
    std::fs::write(&cfg_path, text).unwrap();
    let mut child = spawn(&cfg_path, &log);
    let exited = wait_exit(&mut child, Duration::from_secs(10));
    if !exited {
        let _ = child.kill();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exited, "serve kept running without a scheduler: {text}");
    assert!(text.contains("scheduler cannot start"), "{text}");
    assert!(text.contains("missing-profile.toml"), "{text}");
}

/// The `http=` address `serve` logged at start (this run's), polled for.
fn http_addr(log: &Path, runs_before: usize) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("zonekeeper serving"))
            .filter_map(|l| l.split(" http=").nth(1))
            .filter_map(|l| l.split(' ').next())
            .collect();
        if let Some(a) = found.get(runs_before) {
            return a.to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("serve did not log its HTTP address");
}

/// Group commit: a round is acknowledged (here: the domain shows as
/// delegated over RDAP) only after its batch committed, so SIGKILL in the
/// middle of batches loses nothing anyone saw; the rounds of the batch in
/// flight simply rerun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_loses_nothing_acknowledged() {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let block = dns::loopback_block();
    const N: u8 = 12;
    let zones: Vec<dns::LabZone> = (0..N)
        .map(|i| dns::zone(&format!("d{i}.ru"), block, &[2 * i + 1, 2 * i + 2]))
        .collect();
    let ips: Vec<_> = zones
        .iter()
        .flat_map(|z| z.ns.iter().map(|n| n.1))
        .collect();
    let port = dns::common_port(&ips).await;
    let mut servers = Vec::new();
    for z in &zones {
        for (_, ip) in &z.ns {
            servers.push(z.serve_on(*ip, port).await);
        }
    }
    let (_dir, db, cfg_path, log) = serve_paths();
    std::fs::write(
        &cfg_path,
        config_text(&db, &port.to_string())
            .replace(
                "max_concurrent_rounds = 8",
                "max_concurrent_rounds = 64\ncommit_batch = 4\ncommit_wait = \"30ms\"",
            )
            .replace("timeout = \"300ms\"", "timeout = \"1s\""),
    )
    .unwrap();
    let now = chrono::Utc::now();
    let domains: Vec<_> = zones
        .iter()
        .map(|z| domain(&z.apex, glue(z), now))
        .collect();
    drop(store_with(&db, domains, Duration::from_secs(3600)));

    let mut child = spawn(&cfg_path, &log);
    let http = http_addr(&log, 0);
    let c = reqwest::Client::new();
    let mut seen: Vec<String> = Vec::new();
    let kill_after = Duration::from_millis(rng.random_range(0..400));
    let mut first_seen: Option<Instant> = None;
    while first_seen.is_none_or(|t| t.elapsed() < kill_after) {
        let looks = zones.iter().filter(|z| !seen.contains(&z.apex)).map(|z| {
            let c = c.clone();
            let url = format!("http://{http}/rdap/domain/{}", z.apex);
            async move {
                let v: serde_json::Value = c.get(url).send().await.ok()?.json().await.ok()?;
                let active = v["status"]
                    .as_array()?
                    .iter()
                    .any(|s| s.as_str() == Some("active"));
                active.then(|| z.apex.clone())
            }
        });
        let got: Vec<String> = futures::future::join_all(looks)
            .await
            .into_iter()
            .flatten()
            .collect();
        if !got.is_empty() && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        seen.extend(got);
        if seen.len() == zones.len() {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, while batches are being written
    assert!(wait_exit(&mut child, Duration::from_secs(5)));
    assert!(!seen.is_empty());
    let store = RedbStore::open(&db).unwrap();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    for n in &seen {
        let rec = store.delegation(n).unwrap().unwrap();
        assert_eq!(
            rec.state,
            DelegationState::Delegated,
            "{n} was shown delegated before the kill"
        );
        assert!(!store.history(n, 10).unwrap().is_empty(), "{n}: history");
    }
    drop(store);
    // The rest rerun after a restart.
    let mut child = spawn(&cfg_path, &log);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap();
        assert!(wait_exit(&mut child, Duration::from_secs(5)));
        let store = RedbStore::open(&db).unwrap();
        let left: Vec<String> = zones
            .iter()
            .filter(|z| {
                store.delegation(&z.apex).unwrap().unwrap().state != DelegationState::Delegated
            })
            .map(|z| z.apex.clone())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "never delegated: {left:?}");
        drop(store);
        child = spawn(&cfg_path, &log);
    }
    drop(servers);
}

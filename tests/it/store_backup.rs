//! `zonekeeper store backup DEST`: while the real `serve` owns the store
//! and a registrar's burst of API writes runs, the copy (through the
//! control socket) passes `store check` and holds every write acknowledged
//! before the backup began; DEST is never overwritten without `--force`;
//! restore (stop, copy back, start) serves the backed-up data; and without
//! `serve` the same command reads the store itself.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support;
use support::bin::Bin;

const CONFIG: &str = r#"zones = ["ru", "рф"]
[store]
path = "@D@/zk.redb"
cache_mib = 16
[api]
rate_limit_per_minute = 1000000
[probe]
resolvers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
[log]
filter = "info"
"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry.json")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn check(bin: &Bin, db: &Path) -> Output {
    bin.cli(&["store", "check", "--db", &db.display().to_string()])
}

/// Names the copy at `db` holds, of those in `names`.
fn missing_in(db: &Path, names: &[String]) -> Vec<String> {
    let store = zonekeeper::store::RedbStore::open(db).unwrap();
    names
        .iter()
        .filter(|n| {
            zonekeeper::store::Store::domain(&store, n)
                .unwrap()
                .is_none()
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_under_writes_then_restore() {
    let bin = Arc::new(Bin::new(CONFIG));
    let mut serve = bin.serve(&fixture(), "zk.redb.sock");
    let url = format!("http://{}/api/v1/domains", serve.http);

    // The burst: one registrar creating domains back to back; each name is
    // recorded once its 201 came back.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while !stop.is_cancelled() {
                let name = format!("backup-burst{i}.ru");
                let r = http
                    .post(&url)
                    .bearer_auth(support::api::token("REGRU-RU"))
                    .json(
                        &json!({"name": name, "registrant": "C0-RU", "admin": "C0-RU",
                                  "nameservers": [], "auth_info": "burst-auth-code"}),
                    )
                    .send()
                    .await
                    .unwrap();
                let st = r.status().as_u16();
                assert_eq!(st, 201, "{}", r.text().await.unwrap_or_default());
                acked.lock().unwrap().push(name);
                i += 1;
            }
            i
        })
    };
    while acked.lock().unwrap().len() < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = acked.lock().unwrap().clone();
    let dest = bin.path("copy.redb");
    let b = bin.clone();
    let d = dest.clone();
    let out =
        tokio::task::spawn_blocking(move || b.cli(&["store", "backup", &d.display().to_string()]))
            .await
            .unwrap();
    let during = acked.lock().unwrap().len();
    stop.cancel();
    let total = writer.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("running serve"), "{}", text(&out));
    assert!(
        during > before.len(),
        "writes did not go on during the backup ({during})"
    );
    eprintln!(
        "backup: {} writes acknowledged before it, {} by its end, {total} in all",
        before.len(),
        during
    );

    // The copy: consistent, and every acknowledged write is in it.
    let out = check(&bin, &dest);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).starts_with("consistent: "), "{}", text(&out));
    assert_eq!(missing_in(&dest, &before), Vec::<String>::new());

    // DEST exists: refused (exit 2, the copy untouched) unless --force.
    let len = std::fs::metadata(&dest).unwrap().len();
    let b = bin.clone();
    let d = dest.clone();
    let (refused, forced) = tokio::task::spawn_blocking(move || {
        let ds = d.display().to_string();
        (
            b.cli(&["store", "backup", &ds]),
            b.cli(&["store", "backup", &ds, "--force"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(std::fs::metadata(&dest).unwrap().len() >= len);
    // No temporary file left next to DEST.
    let left: Vec<_> = std::fs::read_dir(bin.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("backup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Restore: stop, copy the backup over the store, start.
    serve.signal("-TERM");
    assert!(serve.wait(Duration::from_secs(30)).success());
    drop(serve);
    // Offline, the same command reads the store itself.
    let offline = bin.path("offline.redb");
    let out = bin.cli(&["store", "backup", &offline.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("of the store"), "{}", text(&out));
    let all = acked.lock().unwrap().clone();
    assert_eq!(missing_in(&offline, &all), Vec::<String>::new());

    std::fs::copy(&dest, bin.path("zk.redb")).unwrap();
    let serve = bin.serve(&fixture(), "zk.redb.sock");
    let first = &before[0];
    let r = reqwest::get(format!("http://{}/rdap/domain/{first}", serve.http))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{first} not served after restore");
    let b = bin.clone();
    let out = tokio::task::spawn_blocking(move || b.cli(&["store", "check"]))
        .await
        .unwrap();
    // The restored store is serve's again: check cannot open it.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Refusals: no store, and a PostgreSQL URL (pg_dump's job).
#[test]
fn backup_refuses_without_a_store() {
    let bin = Bin::new(CONFIG);
    let out = bin.cli(&["store", "backup", &bin.path("x.redb").display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no store at"), "{}", text(&out));
    assert!(!bin.path("zk.redb").exists());
    assert!(!bin.path("x.redb").exists());
}

fn whois(addr: std::net::SocketAddr, q: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{q}\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// PostgreSQL, as docs/operations.md says: `pg_dump --format=custom` of the
/// database while `serve` runs on it, `pg_restore --no-owner` into a fresh
/// database; `store check` passes on the restored one and `serve` on it
/// answers WHOIS and RDAP for the names, the one a registrar created
/// through the API included, with the same rounds of history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_dump_restored_into_a_fresh_database_serves() {
    let Some(pg) = support::pg::PgCluster::start_or_skip("store_backup_pg") else {
        return;
    };
    let config = |url: &str| {
        format!(
            "zones = [\"ru\", \"рф\"]\n[store]\nurl = \"{url}\"\ncontrol_socket = \"@D@/zk.sock\"\n\
             [probe]\nresolvers = [\"127.0.0.1:9\"]\ntimeout = \"200ms\"\nretries = 0\n\
             [log]\nfilter = \"info\"\n"
        )
    };
    let url = pg.create_db("zk");
    let bin = Bin::new(&config(&url));
    let serve = bin.serve(&fixture(), "zk.sock");
    let http = reqwest::Client::new();
    let tok = zonekeeper::synth::sample_token("REGRU-RU");
    let created = "restored-pg.ru";
    let r = http
        .post(format!("http://{}/api/v1/domains", serve.http))
        .bearer_auth(&tok)
        .json(
            &json!({"name": created, "registrant": "C8-RU", "admin": "C8-RU",
                      "nameservers": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    // The dump is taken while serve runs (pg_dump reads one snapshot).
    let dump = pg.dir().join("zk.dump");
    let dump_s = dump.display().to_string();
    pg.tool(
        "pg_dump",
        &["--format=custom", "--file", &dump_s, "--dbname", "zk"],
    );
    let count = "SELECT count(*) FROM domains";
    let domains = pg.psql("zk", count);
    drop(serve);

    let restored = pg.create_db("zk_restored");
    pg.tool(
        "pg_restore",
        &["--no-owner", "--dbname", "zk_restored", &dump_s],
    );
    assert_eq!(pg.psql("zk_restored", count), domains);
    let out = bin.cli(&["store", "check", "--db", &restored]);
    assert!(out.status.success(), "{}", text(&out));

    let bin2 = Bin::new(&config(&restored));
    let serve = bin2.serve(&fixture(), "zk.sock");
    for name in [created, "findomsky0.ru", "baro4.ru"] {
        let w = whois(serve.whois, name);
        assert!(
            w.contains(&format!("domain:        {}", name.to_uppercase())) || w.contains("state:"),
            "{name}: {w}\n{}",
            bin2.log()
        );
        let r = http
            .get(format!("http://{}/rdap/domain/{name}", serve.http))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}");
    }
    // Serving the restored database imported nothing new: the same count.
    assert_eq!(pg.psql("zk_restored", count), domains);
    let _ = std::fs::remove_file(&dump);
}

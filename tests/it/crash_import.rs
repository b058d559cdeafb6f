//! kill -9 of `zonekeeper import` at arbitrary moments: the store always
//! opens, passes `store check`, and holds either everything from before the
//! import or everything from after it — never a part.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zonekeeper::store::{Maintenance, RedbStore, Store};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zonekeeper"));
    c.args(["--config", "config/zonekeeper.toml"]);
    c
}

fn domains(db: &std::path::Path) -> u64 {
    let s = RedbStore::open(db).expect("store opens after a kill");
    let problems = s.verify().expect("verify");
    assert!(problems.is_empty(), "inconsistent store: {problems:?}");
    s.stats().expect("stats").domains
}

#[test]
fn kill_9_during_import_leaves_old_or_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.json");
    let big = dir.path().join("big.json");
    std::fs::write(&small, zonekeeper::synth::generate(50, 1)).unwrap();
    std::fs::write(&big, zonekeeper::synth::generate(4000, 2)).unwrap();

    // How long a full import of the big file takes here, to aim the kills.
    let reference = dir.path().join("ref.redb");
    let t = Instant::now();
    let st = bin()
        .arg("import")
        .arg(&big)
        .arg("--db")
        .arg(&reference)
        .status()
        .unwrap();
    assert!(st.success());
    let full = t.elapsed();
    let after = domains(&reference);

    let mut saw_old = 0;
    let mut saw_new = 0;
    for i in 0..8u32 {
        let db = dir.path().join(format!("z{i}.redb"));
        assert!(bin()
            .arg("import")
            .arg(&small)
            .arg("--db")
            .arg(&db)
            .status()
            .unwrap()
            .success());
        let before = domains(&db);
        let mut child = bin()
            .arg("import")
            .arg(&big)
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the whole run, including just after the end.
        let at = full.mul_f64(f64::from(i) / 7.0 * 1.1);
        std::thread::sleep(at.min(Duration::from_secs(20)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let n = domains(&db);
        if n == before {
            saw_old += 1;
        } else {
            // The small and big registries share no names but the first
            // 50 synthetic indexes differ by seed, so "after" is the union.
            assert_eq!(n, before + after, "partial import visible after kill #{i}");
            saw_new += 1;
        }
        // The store still works: a clean re-import completes.
        let st = bin()
            .arg("import")
            .arg(&big)
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::null())
            .status();
        assert!(st.unwrap().success());
        assert_eq!(domains(&db), before + after);
    }
    eprintln!("kills: {saw_old} before commit, {saw_new} after (full import {full:?})");
    assert!(saw_old > 0, "no kill landed before the commit");
}

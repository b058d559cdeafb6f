//! Bounded imports (issue 20, part 3): a 50 MB file of bad records is
//! refused with a short report, and the importing process's peak RSS does
//! not grow with the number of bad records. (Before the fix every record
//! error was kept: 4 MB of bad records peaked at 502 MB.) Its own test
//! binary, so the children's peak RSS is this import's alone.

use std::io::Write;
use std::process::Command;

const FILE_BYTES: usize = 50 << 20;
/// Baseline of the binary plus the file itself (read whole) plus slack.
const RSS_BOUND_KIB: i64 = (FILE_BYTES as i64 / 1024) + 80 * 1024;

/// Bad records of every section and kind: type errors, bad names, unknown
/// fields, hostile text, each short so there are many.
const BAD: &[&str] = &[
    r#"{}"#,
    r#"{"name":"-.ru"}"#,
    r#"{"name":"xn--ls8h.ru","registrar":"R","registrant":"C","created":"2025-01-01T00:00:00Z"}"#,
    r#"{"name":"ab.ru","registrar":"R\u001b[2J","registrant":"C","created":"x"}"#,
    r#"{"x":1}"#,
];

fn write_file(path: &std::path::Path) -> usize {
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(f);
    let mut n = 0usize;
    let mut records = 0usize;
    w.write_all(b"{\"registrars\":[{\"handle\":\"-bad-\"}],\"contacts\":[{}],\"domains\":[")
        .unwrap();
    while n < FILE_BYTES {
        let r = BAD[records % BAD.len()];
        if records > 0 {
            w.write_all(b",").unwrap();
        }
        w.write_all(r.as_bytes()).unwrap();
        n += r.len() + 1;
        records += 1;
    }
    w.write_all(b"]}").unwrap();
    w.flush().unwrap();
    records + 2
}

fn children_peak_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    ru.ru_maxrss
}

#[test]
fn fifty_megabytes_of_bad_records_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let records = write_file(&file);
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg("config/zonekeeper.toml")
        .arg("import")
        .arg(&file)
        .arg("--db")
        .arg(dir.path().join("z.redb"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let peak = children_peak_rss_kib();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{records} records, {} MiB: peak RSS {} MiB (bound {} MiB), {elapsed:?}",
        FILE_BYTES >> 20,
        peak / 1024,
        RSS_BOUND_KIB / 1024
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    // Every record is counted; only the first hundred are listed.
    assert!(
        err.starts_with(&format!("zonekeeper: {records} bad record(s)")),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(
        err.lines().count() <= import_report_lines(),
        "{} lines",
        err.lines().count()
    );
    assert!(
        err.contains("… and "),
        "{}",
        &err[err.len().saturating_sub(300)..]
    );
    assert!(!err.contains('\u{1b}'));
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB is over the bound of {RSS_BOUND_KIB} KiB"
    );
    assert!(
        !dir.path().join("z.redb").exists(),
        "the store is not even created"
    );
}

fn import_report_lines() -> usize {
    zonekeeper::import::MAX_REPORTED_ERRORS + 2
}

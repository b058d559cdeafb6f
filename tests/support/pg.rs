//! A throwaway PostgreSQL cluster per test (or per group of tests running
//! at once, [`PgCluster::shared`]; never one outside the test): `initdb`
//! into a temp dir as the `postgres` user, `pg_ctl start` on a free
//! loopback port (its Unix socket in the temp dir too), stopped and
//! removed when the guard drops.
//!
//! Needs root (to run as `postgres`) and PostgreSQL's server binaries
//! (`/usr/lib/postgresql/*/bin`, or `ZK_PG_BIN`). Without them a test
//! skips with a message, except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The server options it was started with (for [`Self::start`]).
    opts: String,
}

/// The server binaries: `ZK_PG_BIN`, else the newest installed version.
fn bin_dir() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("ZK_PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgCluster {
    /// One cluster shared by the tests that hold it at the same time (each
    /// with databases of its own); it stops when the last holder drops it,
    /// so nothing outlives the test process. `None` as [`Self::start_or_skip`].
    pub fn shared(test: &str) -> Option<std::sync::Arc<Self>> {
        use std::sync::{Arc, Mutex, Weak};
        static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.upgrade() {
            return Some(c);
        }
        let c = Arc::new(Self::start_or_skip(test)?);
        *slot = Arc::downgrade(&c);
        Some(c)
    }

    /// A running cluster, or `None` (with a message) when PostgreSQL or
    /// root is missing outside CI. Under `CI=true` that is a failure.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::try_start() {
            Ok(c) => Some(c),
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{test}: PostgreSQL is required under CI=true: {why}");
                }
                eprintln!("SKIPPED {test}: {why}");
                None
            }
        }
    }

    pub fn try_start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// A cluster that commits durably (fsync, synchronous commit, full
    /// page writes on), for benchmarks that compare commit costs.
    pub fn try_start_durable() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, String> {
        let bin = bin_dir().ok_or("no PostgreSQL server binaries (apt-get install postgresql)")?;
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            return Err("not root: the cluster runs as the postgres user via runuser".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("zk-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("chown of the cluster directory to postgres failed".into());
        }
        let data = dir.path().join("data");
        let out = as_postgres(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut last = String::new();
        // A port taken between choosing and binding: try another.
        for _ in 0..5 {
            let port = free_port();
            // Tests need no durability: a crash loses the cluster anyway.
            let fast = if durable {
                ""
            } else {
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            };
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} {fast} -c max_connections=200",
                dir.path().display()
            );
            let out = as_postgres(&bin, "pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-o", &opts, "-w", "-t", "60", "start"])
                .output()
                .map_err(|e| format!("pg_ctl: {e}"))?;
            if out.status.success() {
                return Ok(Self {
                    dir,
                    bin,
                    port,
                    opts,
                });
            }
            last = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        }
        Err(format!("pg_ctl start failed: {last}"))
    }

    /// Create database `name` and return its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.tool("createdb", &[name]);
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Run a client tool of the cluster's version (`pg_dump`,
    /// `pg_restore`, …) as `postgres` against it, with `args` after the
    /// connection options; its stdout.
    pub fn tool(&self, tool: &str, args: &[&str]) -> String {
        let out = as_postgres(&self.bin, tool)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the PostgreSQL tool runs");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run one SQL statement with psql (test set-up and inspection).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = as_postgres(&self.bin, "psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-tAc", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Restart the server (every client connection is cut).
    pub fn restart(&self) {
        let out = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-m", "fast", "-w", "restart"])
            // The server must not inherit a pipe this process reads.
            .stdin(std::process::Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop the server hard (as a crash would), until [`Self::start`].
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Start it again after [`Self::stop`], with the same options.
    pub fn start(&self) {
        self.pg_ctl(&["-o", &self.opts, "-w", "-t", "60", "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

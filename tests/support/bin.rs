//! The real `zonekeeper` binary in a temp dir: a config in which `@D@`
//! stands for the dir, one-shot commands, and `serve` on free loopback
//! ports, killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Bin {
    pub dir: tempfile::TempDir,
}

impl Bin {
    /// A temp dir holding `zk.toml` = `config` with `@D@` replaced.
    pub fn new(config: &str) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config.replace("@D@", &dir.path().display().to_string());
        std::fs::write(dir.path().join("zk.toml"), cfg).unwrap();
        Bin { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_zonekeeper"));
        c.arg("--config")
            .arg(self.path("zk.toml"))
            .env_remove("RUST_LOG");
        c
    }

    /// Run one command to its end.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// What `serve` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    /// Start `serve --import import` (log in `serve.log`) and wait until
    /// its control socket `sock` (a file name in the dir) exists and HTTP
    /// answers.
    pub fn serve(&self, import: &Path, sock: &str) -> Serve {
        let (whois, http) = (free_port(), free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("serve.log"))
            .unwrap();
        let child = self
            .command()
            .arg("serve")
            .arg("--import")
            .arg(import)
            .arg("--whois-listen")
            .arg(whois.to_string())
            .arg("--http-listen")
            .arg(http.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut s = Serve { child, whois, http };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("serve exited early ({st}): {}", self.log());
            }
            if self.path(sock).exists() && TcpStream::connect(http).is_ok() {
                return s;
            }
            assert!(Instant::now() < end, "serve not up: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `serve`; killed when dropped.
pub struct Serve {
    pub child: Child,
    pub whois: SocketAddr,
    pub http: SocketAddr,
}

impl Serve {
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "serve did not stop within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback TCP port free right now.
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

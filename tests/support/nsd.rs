//! Real NSD on loopback for tests and benches: writes nsd.conf and zone files
//! into a temp dir, starts `/usr/sbin/nsd -d`, waits until it answers, and
//! kills it on drop.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

pub const NSD: &str = "/usr/sbin/nsd";

/// A random loopback address in 127.0.0.0/8 (not .0.0.x), so parallel test
/// runs of several helpers rarely meet on the same address.
pub fn random_loopback() -> Ipv4Addr {
    let r: u32 = rand::random();
    Ipv4Addr::new(
        127,
        1 + (r % 250) as u8,
        ((r >> 8) % 256) as u8,
        1 + ((r >> 16) % 254) as u8,
    )
}

/// Two distinct random loopback addresses: one per lab server.
pub fn two_loopbacks() -> (Ipv4Addr, Ipv4Addr) {
    loop {
        let (a, b) = (random_loopback(), random_loopback());
        if a != b {
            return (a, b);
        }
    }
}

/// A port free on `ip` for both UDP and TCP right now.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    loop {
        let u = UdpSocket::bind((ip, 0)).expect("bind udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// A zone file for `domain` with the registry-friendly timers.
pub struct ZoneSpec<'a> {
    pub domain: &'a str,
    pub serial: u32,
    pub rname: &'a str,
    /// NS names published at the apex (absolute, without the trailing dot).
    pub ns: Vec<String>,
    /// Address records: (absolute name, IPv4).
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl<'a> ZoneSpec<'a> {
    /// `domain` served by `ns1.<domain>` at `ip1` and `ns2.<domain>` at
    /// `ip2` (in-bailiwick, with their address records).
    pub fn two_servers(domain: &'a str, serial: u32, ip1: Ipv4Addr, ip2: Ipv4Addr) -> Self {
        ZoneSpec {
            domain,
            serial,
            rname: "hostmaster.example.ru.",
            ns: vec![format!("ns1.{domain}"), format!("ns2.{domain}")],
            hosts: vec![
                (format!("ns1.{domain}"), ip1),
                (format!("ns2.{domain}"), ip2),
            ],
        }
    }

    pub fn render(&self) -> String {
        let mut z = format!(
            "$ORIGIN {d}.\n$TTL 3600\n@ IN SOA {mname}. {rname} ( {s} 3600 900 1209600 3600 )\n",
            d = self.domain,
            mname = self.ns.first().map(String::as_str).unwrap_or("ns1.invalid"),
            rname = self.rname,
            s = self.serial
        );
        for n in &self.ns {
            z.push_str(&format!("@ IN NS {n}.\n"));
        }
        for (h, ip) in &self.hosts {
            z.push_str(&format!("{h}. IN A {ip}\n"));
        }
        z
    }
}

pub struct Nsd {
    child: Child,
    pub addr: SocketAddr,
    /// Every address NSD listens on (same port); `addr` is the first.
    pub addrs: Vec<SocketAddr>,
    pub dir: tempfile::TempDir,
}

impl Nsd {
    /// Start NSD on `ip` serving `zones` (domain, zone file text).
    pub fn start(ip: Ipv4Addr, zones: &[(&str, String)]) -> Nsd {
        Self::start_multi(&[ip], zones)
    }

    /// One NSD process listening on several addresses (one port).
    pub fn start_multi(ips: &[Ipv4Addr], zones: &[(&str, String)]) -> Nsd {
        Self::start_opts(ips, zones, 1)
    }

    /// As `start_multi`, with `server_count` NSD worker processes.
    pub fn start_opts(ips: &[Ipv4Addr], zones: &[(&str, String)], server_count: u32) -> Nsd {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(ips, zones, server_count) {
                Ok(n) => return n,
                Err(e) => last = e,
            }
        }
        panic!("nsd did not start: {last}");
    }

    /// One NSD on `ip:port` with its control socket enabled, so
    /// [`Nsd::queries`] can read NSD's own query count.
    pub fn start_controlled(ip: Ipv4Addr, port: u16, zones: &[(&str, String)]) -> Nsd {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start_on(&[ip], Some(port), zones, 1) {
                Ok(n) => return n,
                Err(e) => last = e,
            }
        }
        panic!("nsd did not start: {last}");
    }

    /// Queries NSD received since start (`nsd-control stats_noreset`,
    /// `num.queries`), over the unix control socket.
    pub fn queries(&self) -> u64 {
        let out = Command::new("/usr/sbin/nsd-control")
            .arg("-c")
            .arg(self.dir.path().join("nsd.conf"))
            .arg("stats_noreset")
            .output()
            .expect("run nsd-control");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "nsd-control: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("num.queries=")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no num.queries in: {text}"))
    }

    fn try_start(
        ips: &[Ipv4Addr],
        zones: &[(&str, String)],
        server_count: u32,
    ) -> Result<Nsd, String> {
        Self::try_start_on(ips, None, zones, server_count)
    }

    fn try_start_on(
        ips: &[Ipv4Addr],
        port: Option<u16>,
        zones: &[(&str, String)],
        server_count: u32,
    ) -> Result<Nsd, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = dir.path().display().to_string();
        let control = if port.is_some() {
            format!("remote-control:\n  control-enable: yes\n  control-interface: {d}/nsd.ctl\n")
        } else {
            "remote-control:\n  control-enable: no\n".to_string()
        };
        let port = port.unwrap_or_else(|| free_port(ips[0]));
        let listen: String = ips
            .iter()
            .map(|ip| format!("  ip-address: {ip}@{port}\n"))
            .collect();
        let mut conf = format!(
            "server:\n{listen}  port: {port}\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  \
             zonelistfile: \"{d}/zone.list\"\n  database: \"\"\n  logfile: \"{d}/nsd.log\"\n  \
             server-count: {server_count}\n  verbosity: 0\n  hide-version: yes\n  do-ip6: no\n  \
             tcp-count: 256\n  reuseport: no\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n{control}"
        );
        for (name, text) in zones {
            let file = format!("{name}.zone");
            std::fs::write(dir.path().join(&file), text).map_err(|e| e.to_string())?;
            conf.push_str(&format!(
                "zone:\n  name: \"{name}\"\n  zonefile: \"{file}\"\n"
            ));
        }
        let conf_path = dir.path().join("nsd.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let check = Command::new("/usr/sbin/nsd-checkconf")
            .arg(&conf_path)
            .output()
            .map_err(|e| e.to_string())?;
        if !check.status.success() {
            panic!(
                "nsd-checkconf: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let child = Command::new(NSD)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn nsd: {e}"))?;
        let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
        let mut nsd = Nsd {
            child,
            addr: addrs[0],
            addrs,
            dir,
        };
        let first = zones.first().map(|z| z.0).unwrap_or("invalid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = nsd.child.try_wait() {
                let log =
                    std::fs::read_to_string(nsd.dir.path().join("nsd.log")).unwrap_or_default();
                return Err(format!("nsd exited ({st}): {log}"));
            }
            if nsd.addrs.iter().all(|a| answers(*a, first)) {
                return Ok(nsd);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("nsd did not answer within 10 s".into())
    }
}

/// One blocking SOA query: did anything come back?
pub fn answers(addr: SocketAddr, zone: &str) -> bool {
    let Ok(sock) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(format!("{zone}.")).unwrap(),
        RecordType::SOA,
    ));
    let bytes = m.to_vec().unwrap();
    if sock.send_to(&bytes, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    sock.recv_from(&mut buf).is_ok()
}

impl Nsd {
    /// Replace a zone file and make NSD re-read it (SIGHUP: zone files
    /// whose mtime changed are read again).
    pub fn reload_zone(&self, zone: &str, text: &str) {
        let path = self.dir.path().join(format!("{zone}.zone"));
        let before = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        std::fs::write(&path, text).unwrap();
        // Coarse mtime clocks: make sure NSD sees a change.
        while std::fs::metadata(&path).and_then(|m| m.modified()).ok() == before {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(&path, text).unwrap();
        }
        let st = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

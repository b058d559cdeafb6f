//! A shared hoster on loopback: two real NSD servers (`ns1/ns2.bulkhost.test`,
//! out of bailiwick, one address each, one port) serving `n` zones
//! `h<i>.ru`, with their control sockets on so NSD's own statistics count
//! what probing costs. Used by `tests/it/probe_shared.rs` and
//! `benches/probe_scale.rs`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::nsd::{free_port, two_loopbacks, Nsd, ZoneSpec};

pub const NS: [&str; 2] = ["ns1.bulkhost.test", "ns2.bulkhost.test"];

pub struct Hoster {
    pub servers: [Nsd; 2],
    pub ips: (Ipv4Addr, Ipv4Addr),
    pub port: u16,
}

/// The name of the hoster's `i`th zone.
pub fn zone(i: usize) -> String {
    format!("h{i}.ru")
}

impl Hoster {
    /// `n` zones `h<i>.ru`, each on both servers; `bulkhost.test` (the
    /// servers' own names) on both too, so either resolves them.
    pub fn start(n: usize) -> Hoster {
        let ips = two_loopbacks();
        let port = loop {
            let p = free_port(ips.0);
            if std::net::UdpSocket::bind((ips.1, p)).is_ok()
                && std::net::TcpListener::bind((ips.1, p)).is_ok()
            {
                break p;
            }
        };
        let names: Vec<String> = (0..n).map(zone).collect();
        let ns: Vec<String> = NS.iter().map(|s| s.to_string()).collect();
        let mut zones: Vec<(&str, String)> = names
            .iter()
            .map(|d| {
                let z = ZoneSpec {
                    domain: d,
                    serial: 2026120601,
                    rname: "hostmaster.bulkhost.test.",
                    ns: ns.clone(),
                    hosts: vec![],
                };
                (d.as_str(), z.render())
            })
            .collect();
        let host = ZoneSpec {
            domain: "bulkhost.test",
            serial: 1,
            rname: "hostmaster.bulkhost.test.",
            ns: ns.clone(),
            hosts: vec![(ns[0].clone(), ips.0), (ns[1].clone(), ips.1)],
        }
        .render();
        zones.push(("bulkhost.test", host));
        let a = Nsd::start_controlled(ips.0, port, &zones);
        let b = Nsd::start_controlled(ips.1, port, &zones);
        Hoster {
            servers: [a, b],
            ips,
            port,
        }
    }

    /// Queries each server received since it started (NSD's `num.queries`).
    pub fn queries(&self) -> [u64; 2] {
        [self.servers[0].queries(), self.servers[1].queries()]
    }

    fn confs(&self) -> Vec<PathBuf> {
        self.servers
            .iter()
            .map(|s| s.dir.path().join("nsd.conf"))
            .collect()
    }
}

/// Samples both servers' query counters about once a second; the highest
/// rate either saw.
pub struct RateWatch {
    stop: Arc<AtomicBool>,
    /// The busiest tight window, if any; the busiest other one.
    peak: Arc<Mutex<(Option<f64>, f64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn num_queries(conf: &std::path::Path) -> u64 {
    std::process::Command::new("/usr/sbin/nsd-control")
        .arg("-c")
        .arg(conf)
        .arg("stats_noreset")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("num.queries=")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

impl RateWatch {
    pub fn start(h: &Hoster) -> RateWatch {
        let confs = h.confs();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new((None::<f64>, 0.0f64)));
        let (s, p) = (stop.clone(), peak.clone());
        // A count is taken at some moment inside its `nsd-control` run;
        // on a loaded machine a run can take a good part of a second, and
        // a window timed by the runs' ends would count more than a
        // second's queries. Each count is timed at the middle of its run,
        // and a window with a run longer than `TIGHT` at either end is not
        // used (unless no window was tight).
        const TIGHT: Duration = Duration::from_millis(60);
        let sample = |c: &std::path::Path| {
            let before = Instant::now();
            let q = num_queries(c);
            let took = before.elapsed();
            (q, before + took / 2, took <= TIGHT)
        };
        let thread = std::thread::spawn(move || {
            let mut last: Vec<(u64, Instant, bool)> =
                confs.iter().map(|c| sample(c.as_path())).collect();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1000));
                for (i, c) in confs.iter().enumerate() {
                    let (q, t, tight) = sample(c.as_path());
                    let rate = q.saturating_sub(last[i].0) as f64 / (t - last[i].1).as_secs_f64();
                    let mut pk = p.lock().unwrap_or_else(|e| e.into_inner());
                    if tight && last[i].2 {
                        pk.0 = Some(pk.0.unwrap_or(0.0).max(rate));
                    } else {
                        pk.1 = pk.1.max(rate);
                    }
                    last[i] = (q, t, tight);
                }
            }
        });
        RateWatch {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stop sampling; the busiest second either server saw.
    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (tight, loose) = *self.peak.lock().unwrap_or_else(|e| e.into_inner());
        tight.unwrap_or(loose)
    }
}

//! A scripted network standing in for the probe engine: servers up or
//! down by name, domains with wrong data, time from the injected clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use zonekeeper::clock::SharedClock;
use zonekeeper::model::{CheckReport, Finding, Nameserver, ServerReport, Severity, Verdict};
use zonekeeper::names::DomainName;
use zonekeeper::scheduler::Checker;

/// Servers up or down, per name; domains whose data is wrong; a delay per
/// check; counts of checks and of checks in flight.
pub struct Net {
    clock: SharedClock,
    pub down: Mutex<HashMap<String, bool>>,
    pub bad_data: Mutex<Vec<String>>,
    pub delay: Mutex<Duration>,
    pub checks: Mutex<HashMap<String, usize>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// When set, the next check to start takes it and waits for it to be
    /// notified, then reports the injected clock's time that passed as
    /// its duration (a round longer than the recheck interval).
    pub hold_next: Mutex<Option<std::sync::Arc<tokio::sync::Notify>>>,
}

impl Net {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            down: Mutex::default(),
            bad_data: Mutex::default(),
            delay: Mutex::default(),
            checks: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            hold_next: Mutex::default(),
        }
    }
    pub fn set_down(&self, server: &str, down: bool) {
        self.down.lock().unwrap().insert(server.into(), down);
    }
    pub fn checks(&self, d: &str) -> usize {
        self.checks.lock().unwrap().get(d).copied().unwrap_or(0)
    }
}

impl Checker for Net {
    fn check<'a>(
        &'a self,
        domain: &'a DomainName,
        ns: &'a [Nameserver],
    ) -> BoxFuture<'a, CheckReport> {
        Box::pin(async move {
            let at = self.clock.now();
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(n, Ordering::SeqCst);
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let hold = self.hold_next.lock().unwrap().take();
            if let Some(h) = &hold {
                h.notified().await;
            }
            let took = match hold {
                Some(_) => (self.clock.now() - at).to_std().unwrap_or_default(),
                None => delay,
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            *self
                .checks
                .lock()
                .unwrap()
                .entry(domain.as_str().to_string())
                .or_default() += 1;
            let down = self.down.lock().unwrap().clone();
            let bad = self
                .bad_data
                .lock()
                .unwrap()
                .contains(&domain.as_str().to_string());
            let mut findings = Vec::new();
            let servers: Vec<ServerReport> = ns
                .iter()
                .map(|s| {
                    let up = !down.get(s.name.as_str()).copied().unwrap_or(false);
                    if !up {
                        findings.push(Finding {
                            id: "UNREACHABLE".into(),
                            severity: Severity::Error,
                            server: Some(s.name.as_str().into()),
                            address: None,
                            message: "no answer".into(),
                        });
                    } else if bad {
                        findings.push(Finding {
                            id: "NS_SET_MISMATCH".into(),
                            severity: Severity::Error,
                            server: Some(s.name.as_str().into()),
                            address: None,
                            message: "NS set differs from the declared one".into(),
                        });
                    }
                    ServerReport {
                        name: s.name.as_str().into(),
                        addresses: vec![],
                        reachable: up,
                        soa_serial: up.then_some(1),
                        rtt_ms: Some(1),
                        unreachable_addresses: vec![],
                    }
                })
                .collect();
            CheckReport {
                domain: domain.as_str().into(),
                verdict: if findings.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                checked_at: at,
                duration_ms: took.as_millis() as u64,
                findings,
                servers,
            }
        })
    }
}

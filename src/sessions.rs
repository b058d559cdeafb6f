//! EPP sessions logged in now, per registrar: counted by the EPP server,
//! shown by the dashboard.

use std::sync::Mutex;

/// Sessions logged in now, per registrar (the EPP server counts them, the
/// dashboard shows them).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<std::collections::HashMap<String, usize>>);

impl Sessions {
    /// (registrar, sessions) of the registrars with a session, by handle.
    pub fn snapshot(&self) -> Vec<(String, usize)> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = s
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// Count a new session of `registrar` if it has fewer than `cap`.
    pub fn open(&self, registrar: &str, cap: usize) -> bool {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = s.entry(registrar.to_string()).or_insert(0);
        if *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    /// One session of `registrar` ended; false if none was counted.
    pub fn close(&self, registrar: &str) -> bool {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match s.get_mut(registrar) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

//! The lifecycle sweep: time-driven transitions written when they happen.

use crate::lifecycle::{self};
use crate::model::{DelegationState, HistoryEvent, Timestamp};

use super::error::Result;
use super::service::{Registry, Touched};

impl<'a> Registry<'a> {
    /// Write what time has made due on every domain (docs/lifecycle.md):
    /// automatic approvals, lapsed requests, and one feed event per
    /// lifecycle transition ([`lifecycle::transitions`]). Every domain is
    /// read; an event already in a domain's history is not written again.
    /// Returns the number of domains written.
    pub fn sweep(&self) -> Result<usize> {
        self.sweep_since(None)
    }

    /// [`Self::sweep`] for a caller whose earlier sweep covered every
    /// transition up to `since` (`serve`'s sweeper: it then reads no
    /// history for those).
    pub fn sweep_since(&self, since: Option<Timestamp>) -> Result<usize> {
        let now = self.now();
        let mut done = self.sweep_transfers()?;
        let mut after: Option<String> = None;
        loop {
            let (names, next) = self.store.search_domains("", after.as_deref(), 1000)?;
            for n in &names {
                if self.sweep_one(n, now, since)? {
                    done += 1;
                }
            }
            match next {
                Some(c) if !names.is_empty() => after = Some(c),
                _ => break,
            }
        }
        Ok(done)
    }

    /// One domain's due work; whether anything was written.
    pub(super) fn sweep_one(
        &self,
        name: &str,
        now: Timestamp,
        since: Option<Timestamp>,
    ) -> Result<bool> {
        let Some(d) = self.store.domain(name)? else {
            return Ok(false);
        };
        let settle = !lifecycle::settle(&mut d.clone(), now).is_empty();
        let due: Vec<_> = lifecycle::transitions(&d, now, self.lc())
            .into_iter()
            .filter(|(t, _)| since.is_none_or(|s| *t > s))
            .collect();
        if !settle && due.is_empty() {
            return Ok(false);
        }
        let mut todo = Vec::new();
        if !due.is_empty() {
            let history = self.store.history(name, 1000)?;
            for (t, tr) in due {
                let seen = history.iter().any(|e| {
                    e.at.timestamp_micros() == t.timestamp_micros()
                        && e.reason.starts_with(tr.text())
                });
                if !seen {
                    todo.push((t, tr));
                }
            }
        }
        if !settle && todo.is_empty() {
            return Ok(false);
        }
        let mut txn = self.store.begin()?;
        let Some(d) = txn.domain(name)? else {
            return Ok(false);
        };
        // The transitions of the registration as it was, then what time
        // completed (a transfer, a lapse) — each at its own instant.
        let scheduled = txn.delegation(name)?.is_some_and(|r| {
            matches!(
                r.state,
                DelegationState::Delegated | DelegationState::Testing | DelegationState::Suspended
            )
        });
        for (t, tr) in &todo {
            if scheduled && tr.changes_delegation() {
                // The delegation state machine writes this transition's
                // feed event itself ("suspended: expired", "registration
                // cancelled (…)"): one transition, one feed event
                // (docs/lifecycle.md "Change feed"). History keeps it.
                let state = txn
                    .delegation(name)?
                    .map_or(DelegationState::Undelegated, |r| r.state);
                let ev = HistoryEvent {
                    at: *t,
                    from: Some(state),
                    to: state,
                    reason: tr.text().to_string(),
                };
                txn.append_event(name, &ev, "registry", &[])?;
                continue;
            }
            self.event(txn.as_mut(), &d, *t, "registry", tr.text(), &[])?;
        }
        self.settle_in(txn.as_mut(), d, now)?;
        txn.commit(now)?;
        self.notify(&[Touched {
            name: name.to_string(),
            zone: !todo.is_empty(),
        }]);
        Ok(true)
    }
}

//! The registrar-set statuses (RFC 5731 §2.3 `client*`,
//! docs/statuses.md "Registrar-set statuses"): the sponsor adds and
//! removes them (EPP `domain:update` `add`/`rem`, the API's
//! `PUT …/client-statuses`), the lifecycle's lock rules enforce them
//! ([`crate::lifecycle::permits`]) and `clientHold` keeps the domain out of
//! the zone ([`crate::lifecycle::Status::may_delegate`]).

use std::collections::BTreeSet;

use super::actor::Actor;
use super::error::{invalid, RegistryError, Result};
use super::rule::Rule;
use super::service::Registry;
use crate::lifecycle::Status;
use crate::model::{ClientStatus, Domain};

/// A change of a domain's `client*` statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientStatusChange {
    /// EPP `add`/`rem` (RFC 5731 §3.2.5): adding a status already set is
    /// refused (`status-present`), as is removing one not set
    /// (`status-absent`).
    AddRem {
        add: Vec<ClientStatus>,
        rem: Vec<ClientStatus>,
    },
    /// The API's `PUT`: the whole set (the same set again changes nothing).
    Set(BTreeSet<ClientStatus>),
}

/// A status value a registrar sent: a `client*` one, or a field error
/// (`server*` values and every other status are the registry's).
pub fn parse_status(field: &str, s: &str) -> Result<ClientStatus> {
    ClientStatus::parse(s).ok_or_else(|| {
        let why = if s.starts_with("server") {
            format!("{s} is set by the registry only; a registrar sets client* statuses")
        } else {
            format!(
                "unknown status {s:?}: one of {}",
                ClientStatus::ALL.map(ClientStatus::epp).join(", ")
            )
        };
        invalid(field, why)
    })
}

/// The statuses a list names, checked (`field` names the list in errors).
pub fn parse_statuses<'s>(
    field: &str,
    list: impl IntoIterator<Item = &'s str>,
) -> Result<Vec<ClientStatus>> {
    list.into_iter().map(|s| parse_status(field, s)).collect()
}

fn names(set: &BTreeSet<ClientStatus>) -> String {
    set.iter().map(|c| c.epp()).collect::<Vec<_>>().join(", ")
}

/// Apply `c` to `d` (whose lifecycle status before is `st`), by `actor`:
/// the sponsor only (the caller loaded the domain for its sponsor, and
/// refused a dispute lock). Returns the history text ("" when nothing
/// changed).
pub(super) fn apply(
    actor: &Actor,
    d: &mut Domain,
    st: &Status,
    c: &ClientStatusChange,
) -> Result<String> {
    if !matches!(actor, Actor::Registrar(_)) {
        return Err(RegistryError::NotAllowed(
            "client statuses are the sponsoring registrar's; the registry's own are server* (hold, dispute lock)".into(),
        ));
    }
    if st.hold {
        return Err(RegistryError::refused(
            Rule::Hold,
            format!(
                "{} is on hold; only a registry operator's release ends it",
                d.name
            ),
        ));
    }
    let old = d.registration.client_statuses.clone();
    let new = match c {
        ClientStatusChange::Set(set) => set.clone(),
        ClientStatusChange::AddRem { add, rem } => {
            if let Some(x) = add.iter().find(|x| rem.contains(x)) {
                return Err(invalid(
                    "status",
                    format!("{} is both added and removed", x.epp()),
                ));
            }
            let mut set = old.clone();
            for x in rem {
                if !set.remove(x) {
                    return Err(RegistryError::refused(
                        Rule::StatusAbsent,
                        format!("{} is not set on {}", x.epp(), d.name),
                    ));
                }
            }
            for x in add {
                if !set.insert(*x) {
                    return Err(RegistryError::refused(
                        Rule::StatusPresent,
                        format!("{} is already set on {}", x.epp(), d.name),
                    ));
                }
            }
            set
        }
    };
    if new == old {
        return Ok(String::new());
    }
    // RFC 5731 §2.3: under clientUpdateProhibited the one update accepted
    // is the one that removes it.
    let cup = ClientStatus::ClientUpdateProhibited;
    if old.contains(&cup) && new.contains(&cup) {
        return Err(RegistryError::refused(
            Rule::ClientUpdateProhibited,
            "the sponsor set clientUpdateProhibited; remove that status first",
        ));
    }
    let added: BTreeSet<_> = new.difference(&old).copied().collect();
    let removed: BTreeSet<_> = old.difference(&new).copied().collect();
    d.registration.client_statuses = new;
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", names(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", names(&removed)));
    }
    Ok(format!("client statuses {}", parts.join("; ")))
}

impl Registry<'_> {
    /// Change `name`'s `client*` statuses alone (one transaction, one
    /// history and feed event). Returns the domain after.
    pub fn client_statuses(
        &self,
        actor: &Actor,
        name: &str,
        c: &ClientStatusChange,
    ) -> Result<Domain> {
        self.modify(actor, name, None, |_, d, st, _| {
            let note = apply(actor, d, st, c)?;
            Ok((note, d.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_unknown_values_are_field_errors() {
        for s in ["serverHold", "ok", "pendingDelete", "clienthold"] {
            let e = parse_status("status", s).unwrap_err();
            assert_eq!(e.rule(), "invalid", "{s}");
            assert_eq!(e.epp_code(), 2306, "{s}");
        }
        assert_eq!(
            parse_statuses("status", ["clientHold", "clientRenewProhibited"]).unwrap(),
            [
                ClientStatus::ClientHold,
                ClientStatus::ClientRenewProhibited
            ]
        );
    }
}

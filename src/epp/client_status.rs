//! EPP `domain:update` `<domain:add>`/`<domain:rem>` `<domain:status>`
//! (RFC 5731 §3.2.5): the registrar-set `client*` statuses, read into the
//! registry's [`ClientStatusChange`]. The rules (sponsor only, `server*`
//! refused, present/absent values, `clientUpdateProhibited`) are the
//! registry's (docs/statuses.md "Registrar-set statuses").

use super::xml::{Element, DOMAIN_NS};
use crate::registry::client_status::parse_status;
use crate::registry::{ClientStatusChange, RegistryError};

/// The status part of an update's `add` and `rem`, if either names one.
pub fn parse(
    add: Option<&Element>,
    rem: Option<&Element>,
) -> Result<Option<ClientStatusChange>, RegistryError> {
    let list = |part: Option<&Element>| {
        part.into_iter()
            .flat_map(|p| p.all(DOMAIN_NS, "status"))
            .map(|s| parse_status("status", s.attr("s").unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
    };
    let (add, rem) = (list(add)?, list(rem)?);
    if add.is_empty() && rem.is_empty() {
        return Ok(None);
    }
    Ok(Some(ClientStatusChange::AddRem { add, rem }))
}

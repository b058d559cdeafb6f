//! Host objects (EPP, RFC 5732) and their glue rules, once for every edge.
//!
//! Ownership (docs/epp.md "Ownership"): a host object is its sponsor's. A
//! domain is *linked* to a host object only when its sponsor attached it
//! by reference (EPP `hostObj`); a name declared otherwise links to
//! nothing, so creating a host object captures no domain that already
//! names it. A change re-declares the linked domains (and the
//! superordinate domain, whose glue it is) and no other; a change of a
//! host that another registrar's domain names is refused (`host-in-use`)
//! unless it only changes the glue of a subordinate host. Subordinate
//! hosts end with their domain's registration.
//!
//! A host inside one of the registry's zones is *subordinate* to the
//! registrable domain above it (`ns1.example.ru` → `example.ru`): it needs
//! addresses (glue), its superordinate domain must be registered, and only
//! that domain's sponsor may create or change it. A host outside the
//! registry's zones takes no addresses. A host a domain uses cannot be
//! deleted; a change of its name or addresses is a re-declaration of the
//! NS set of every domain that uses it (the declaration rule of
//! [`super::Registry::declare_nameservers`], with its delegation test).
//!
//! Domains keep their NS set as before ([`crate::model::Nameserver`]); a
//! domain's entry for a host carries the host's addresses only when the
//! host is inside that domain (the rule of
//! [`super::input::validate_nameservers`]).

use std::net::IpAddr;

use super::actor::Actor;
use super::error::{RegistryError, Result};
use super::input;
use super::rule::Rule;
use super::service::{On, Registry};
use crate::model::{HostObject, Nameserver, Timestamp};
use crate::names::{self, DomainName, HostName, Zones};
use crate::store::{RecordError, Txn};

/// Where a host name is, relative to the registry's zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Inside a zone of the registry, below (or at) this registrable
    /// domain: its superordinate domain.
    Subordinate(DomainName),
    /// Outside every zone of the registry.
    External,
}

/// The placement of `host` (pure). A host cannot be a zone itself.
pub fn placement(zones: &Zones, host: &HostName) -> std::result::Result<Placement, String> {
    let h = host.as_str();
    let Some(zone) = zones.zone_of(h) else {
        return Ok(Placement::External);
    };
    let head = h
        .strip_suffix(zone)
        .and_then(|x| x.strip_suffix('.'))
        .unwrap_or("");
    if head.is_empty() {
        return Err(format!("'{h}' is the zone {zone} itself, not a host"));
    }
    let label = head.rsplit('.').next().unwrap_or(head);
    Ok(Placement::Subordinate(DomainName::from_trusted(format!(
        "{label}.{zone}"
    ))))
}

/// The glue rule (pure): a subordinate host needs addresses, an external
/// one takes none.
pub fn check_glue(
    host: &HostName,
    place: &Placement,
    addresses: &[IpAddr],
) -> std::result::Result<(), String> {
    match place {
        Placement::Subordinate(d) if addresses.is_empty() => Err(format!(
            "'{host}' is inside {d}, a domain of this registry, so it needs addresses (glue)"
        )),
        Placement::External if !addresses.is_empty() => Err(format!(
            "'{host}' is outside the registry's zones; addresses are accepted only for hosts inside them"
        )),
        _ => Ok(()),
    }
}

/// A host object as a registrar sees it (EPP `host:info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub host: HostObject,
    /// Who acts on it now: the superordinate domain's sponsor for a
    /// subordinate host (it follows the domain's transfers), else its
    /// creator.
    pub sponsor: String,
    /// Some domain uses it.
    pub linked: bool,
}

fn host_invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(vec![RecordError {
        section: "host",
        index: 0,
        field: field.into(),
        reason: reason.into(),
    }])
}

/// The same addresses, in any order.
fn same_addresses(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let sorted = |x: &[IpAddr]| {
        let mut v = x.to_vec();
        v.sort_unstable();
        v
    };
    sorted(a) == sorted(b)
}

fn glue_differs(h: &HostObject, declared: &[IpAddr]) -> RegistryError {
    let list = |x: &[IpAddr]| {
        x.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    RegistryError::refused(
        Rule::HostGlue,
        format!(
            "{} is a host object with addresses {}, not {}: its glue changes with a host update",
            h.name,
            list(&h.addresses),
            list(declared)
        ),
    )
}

fn no_host(name: &str) -> RegistryError {
    RegistryError::refused(Rule::NoHost, format!("no such host: {name}"))
}

/// Parse addresses given under `field` (`addresses`, `add`, `rem`).
fn addresses(field: &str, raw: &[String]) -> Result<Vec<IpAddr>> {
    let (ok, bad) = input::parse_addresses(raw);
    if !bad.is_empty() {
        return Err(RegistryError::Invalid(
            bad.into_iter()
                .map(|(f, reason)| RecordError {
                    section: "host",
                    index: 0,
                    field: f.replacen("addresses", field, 1),
                    reason,
                })
                .collect(),
        ));
    }
    Ok(ok.into_iter().map(|(_, ip)| ip).collect())
}

/// Most domains a host change re-declares in one transaction.
const MAX_LINKED: usize = 10_000;

impl Registry<'_> {
    fn host_name(&self, raw: &str) -> Result<HostName> {
        names::parse_host(raw).map_err(|e| host_invalid("name", e.to_string()))
    }

    /// A registered domain other than `except` that uses host `name` in
    /// its NS set, if any.
    fn first_user(
        &self,
        txn: Option<&dyn Txn>,
        name: &HostName,
        except: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<String>> {
        let mut after: Option<String> = None;
        loop {
            let (page, next) = self
                .store
                .domains_by_host(name.as_str(), after.as_deref(), 100)?;
            for d in page {
                if Some(d.as_str()) == except {
                    continue;
                }
                let dom = match txn {
                    Some(t) => t.domain(&d)?,
                    None => self.store.domain(&d)?,
                };
                if dom.is_some_and(|x| self.status(&x, now).exists()) {
                    return Ok(Some(d));
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(None),
            }
        }
    }

    /// The sponsor of `h` now (see [`HostView::sponsor`]).
    fn host_sponsor(&self, txn: Option<&dyn Txn>, h: &HostObject) -> Result<String> {
        if let Ok(Placement::Subordinate(d)) = placement(&self.zones, &h.name) {
            let dom = match txn {
                Some(t) => t.domain(d.as_str())?,
                None => self.store.domain(d.as_str())?,
            };
            if let Some(dom) = dom {
                if self.status(&dom, self.now()).exists() {
                    return Ok(dom.registrar);
                }
            }
        }
        Ok(h.sponsor.clone())
    }

    /// The rules on a host's (new) name and addresses for `actor`: the
    /// glue rule, and a subordinate host's superordinate domain must be
    /// registered and the caller's.
    fn check_host(
        &self,
        txn: &dyn Txn,
        actor: &Actor,
        name: &HostName,
        addrs: &[IpAddr],
        now: Timestamp,
    ) -> Result<()> {
        let place = placement(&self.zones, name).map_err(|e| host_invalid("name", e))?;
        check_glue(name, &place, addrs).map_err(|e| host_invalid("addresses", e))?;
        if let Placement::Subordinate(d) = &place {
            let dom = txn
                .domain(d.as_str())?
                .filter(|x| self.status(x, now).exists())
                .ok_or_else(|| {
                    RegistryError::refused(
                        Rule::Superordinate,
                        format!("'{name}' is inside {d}, which is not registered"),
                    )
                })?;
            if let Actor::Registrar(h) = actor {
                if &dom.registrar != h {
                    return Err(RegistryError::Forbidden(d.as_str().to_string()));
                }
            }
        }
        Ok(())
    }

    /// Whether `raw` names no host object yet: `Ok(name)` or `Err(reason)`
    /// (EPP `host:check`).
    pub fn host_availability(&self, raw: &str) -> Result<std::result::Result<String, String>> {
        let name = match names::parse_host(raw) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Err(e) = placement(&self.zones, &name) {
            return Ok(Err(e));
        }
        if self.store.host_object(name.as_str())?.is_some() {
            return Ok(Err("in use".into()));
        }
        Ok(Ok(name.as_str().to_string()))
    }

    /// A host object, for anyone (its data is what the DNS publishes).
    pub fn host_info(&self, raw: &str) -> Result<HostView> {
        let name = self.host_name(raw)?;
        let host = self
            .store
            .host_object(name.as_str())?
            .ok_or_else(|| no_host(name.as_str()))?;
        let sponsor = self.host_sponsor(None, &host)?;
        let linked = self.first_user(None, &name, None, self.now())?.is_some();
        Ok(HostView {
            host,
            sponsor,
            linked,
        })
    }

    /// Create a host object for the calling registrar.
    pub fn host_create(
        &self,
        actor: &Actor,
        raw: &str,
        raw_addrs: &[String],
    ) -> Result<HostObject> {
        let Actor::Registrar(me) = actor else {
            return Err(RegistryError::NotAllowed(
                "host objects are created by a registrar".into(),
            ));
        };
        let name = self.host_name(raw)?;
        let addrs = addresses("addresses", raw_addrs)?;
        self.glue_ok("addresses", &addrs)?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        if txn.host_object(name.as_str())?.is_some() {
            return Err(RegistryError::refused(
                Rule::HostExists,
                format!("host {name} already exists"),
            ));
        }
        self.check_host(txn.as_ref(), actor, &name, &addrs, now)?;
        let h = HostObject {
            name,
            sponsor: me.clone(),
            addresses: addrs,
            created: now,
            updated: now,
        };
        // Its domain may already declare it (through the API) with glue:
        // the host object starts from the same addresses.
        if let Ok(Placement::Subordinate(d)) = placement(&self.zones, &h.name) {
            if let Some(dom) = txn.domain(d.as_str())? {
                let declared = dom.nameservers.iter().find(|n| n.name == h.name);
                if let Some(n) = declared.filter(|n| !same_addresses(&n.addresses, &h.addresses)) {
                    return Err(glue_differs(&h, &n.addresses));
                }
            }
        }
        txn.put_host_object(&h)?;
        txn.commit(now)?;
        Ok(h)
    }

    /// Load a host object the caller may change. A subordinate host whose
    /// domain is no longer registered is gone with it.
    fn own_host(&self, txn: &dyn Txn, actor: &Actor, name: &HostName) -> Result<HostObject> {
        let h = txn
            .host_object(name.as_str())?
            .ok_or_else(|| no_host(name.as_str()))?;
        if let Ok(Placement::Subordinate(d)) = placement(&self.zones, &h.name) {
            let live = txn
                .domain(d.as_str())?
                .is_some_and(|x| self.status(&x, self.now()).exists());
            if !live {
                return Err(no_host(name.as_str()));
            }
        }
        if let Actor::Registrar(me) = actor {
            if &self.host_sponsor(Some(txn), &h)? != me {
                return Err(RegistryError::Forbidden(format!("host {name}")));
            }
        }
        Ok(h)
    }

    /// Change a host object: remove `rem` and add `add` addresses, and/or
    /// rename it. Every domain that uses it re-declares its NS set with the
    /// change, in the same transaction (a delegated domain keeps its
    /// published set until the new one passes its test); a lock on any of
    /// them refuses the whole change.
    pub fn host_update(
        &self,
        actor: &Actor,
        raw: &str,
        add: &[String],
        rem: &[String],
        new_name: Option<&str>,
    ) -> Result<HostObject> {
        let name = self.host_name(raw)?;
        let add = addresses("add", add)?;
        self.glue_ok("add", &add)?;
        let rem = addresses("rem", rem)?;
        let new_name = new_name.map(|n| self.host_name(n)).transpose()?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        let old = self.own_host(txn.as_ref(), actor, &name)?;
        let mut h = old.clone();
        for ip in &rem {
            if !h.addresses.contains(ip) {
                return Err(host_invalid(
                    "rem",
                    format!("{ip} is not an address of {name}"),
                ));
            }
        }
        h.addresses.retain(|ip| !rem.contains(ip));
        for ip in add {
            if h.addresses.contains(&ip) {
                return Err(host_invalid(
                    "add",
                    format!("{ip} is already an address of {name}"),
                ));
            }
            h.addresses.push(ip);
        }
        if h.addresses.len() > input::MAX_ADDRESSES_PER_NS {
            return Err(host_invalid(
                "addresses",
                format!("more than {} addresses", input::MAX_ADDRESSES_PER_NS),
            ));
        }
        if let Some(n) = new_name {
            if n != name && txn.host_object(n.as_str())?.is_some() {
                return Err(RegistryError::refused(
                    Rule::HostExists,
                    format!("host {n} already exists"),
                ));
            }
            h.name = n;
        }
        self.check_host(txn.as_ref(), actor, &h.name, &h.addresses, now)?;
        if h == old {
            return Ok(h);
        }
        h.updated = now;
        let mut touched = Vec::new();
        let note = if h.name != old.name {
            format!(
                "host {} renamed to {} by {}",
                old.name,
                h.name,
                actor.label()
            )
        } else {
            format!("host {} changed by {}", h.name, actor.label())
        };
        let (users, more) = self
            .store
            .domains_by_host(old.name.as_str(), None, MAX_LINKED)?;
        if more.is_some() {
            return Err(RegistryError::refused(
                Rule::HostInUse,
                format!(
                    "host {} is a nameserver of more than {MAX_LINKED} domains, too many to re-declare in one change",
                    old.name
                ),
            ));
        }
        // Who follows the change: the domains linked to this host object
        // and the superordinate domain (its glue); never another
        // registrar's domain. While another registrar's domain names the
        // host, only its glue may change (that alters no other domain).
        let sponsor = self.host_sponsor(Some(txn.as_ref()), &old)?;
        let superordinate = match placement(&self.zones, &old.name) {
            Ok(Placement::Subordinate(d)) => Some(d.as_str().to_string()),
            _ => None,
        };
        let mut linked = Vec::new();
        for d in users {
            let Some(dom) = txn.domain(&d)?.filter(|x| self.status(x, now).exists()) else {
                continue;
            };
            if dom.registrar != sponsor {
                let glue_only = h.name == old.name && superordinate.is_some();
                if !glue_only && matches!(actor, Actor::Registrar(_)) {
                    return Err(RegistryError::refused(
                        Rule::HostInUse,
                        format!(
                            "host {} is a nameserver of another registrar's domain: it cannot be renamed while that domain names it",
                            old.name
                        ),
                    ));
                }
                continue;
            }
            let follows = dom.registration.host_links.contains(&old.name)
                || superordinate.as_deref() == Some(d.as_str());
            if follows {
                linked.push(d);
            }
        }
        // First, so each re-declaration below finds the host as it will be
        // (the glue rule of `check_host_glue`).
        if h.name != old.name {
            txn.delete_host_object(old.name.as_str())?;
        }
        txn.put_host_object(&h)?;
        for d in linked {
            // A record kept after its registration ended changes no more.
            let Some(dom) = txn.domain(&d)?.filter(|x| self.status(x, now).exists()) else {
                continue;
            };
            // Only domains whose NS set the change alters are re-declared
            // (an address change alters only the domain the host is in).
            let entry = host_entry(dom.name.as_str(), &h);
            let same = dom.nameservers.iter().any(|n| {
                n.name == old.name
                    && n.name.as_str() == entry.name
                    && n.addresses
                        .iter()
                        .map(|a| a.to_string())
                        .eq(entry.addresses.iter().cloned())
            });
            if same {
                continue;
            }
            let set: Vec<input::NameserverIn> = dom
                .nameservers
                .iter()
                .map(|n| {
                    if n.name == old.name {
                        entry.clone()
                    } else {
                        input::NameserverIn {
                            name: n.name.as_str().to_string(),
                            addresses: n.addresses.iter().map(|a| a.to_string()).collect(),
                        }
                    }
                })
                .collect();
            let on = On {
                name: &d,
                sponsor_only: false,
            };
            let (_, t) =
                self.redeclare_in(txn.as_mut(), actor, on, Some(note.clone()), now, |dom| {
                    let before = self.set_nameservers(dom, &set)?;
                    for l in dom.registration.host_links.iter_mut() {
                        if *l == old.name {
                            *l = h.name.clone();
                        }
                    }
                    Ok(before)
                })?;
            touched.push(t);
        }
        txn.commit(now)?;
        self.notify(&touched);
        Ok(h)
    }

    /// Delete a host object no domain uses.
    pub fn host_delete(&self, actor: &Actor, raw: &str) -> Result<()> {
        let name = self.host_name(raw)?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        self.own_host(txn.as_ref(), actor, &name)?;
        if let Some(d) = self.first_user(Some(txn.as_ref()), &name, None, now)? {
            return Err(RegistryError::refused(
                Rule::HostInUse,
                format!("host {name} is a nameserver of {d} (and maybe others)"),
            ));
        }
        txn.delete_host_object(name.as_str())?;
        txn.commit(now)?;
        Ok(())
    }

    /// A domain's glue for a host object inside it is the host object's
    /// addresses, whichever edge declares the NS set (EPP's `hostObj`
    /// takes them from the host; the API and EPP's `hostAttr`
    /// send their own): a declaration giving such a host other addresses
    /// is refused, so the zone publishes no glue but what the host's
    /// sponsor set. Entries unchanged from the set `before` are not
    /// re-checked, so a set stored before its host object existed can
    /// still change elsewhere.
    pub(super) fn check_host_glue(
        &self,
        txn: &dyn Txn,
        before: &[Nameserver],
        after: &[Nameserver],
    ) -> Result<()> {
        for n in after.iter().filter(|n| !n.addresses.is_empty()) {
            if before.contains(n) {
                continue;
            }
            if let Some(h) = txn.host_object(n.name.as_str())? {
                if !same_addresses(&h.addresses, &n.addresses) {
                    return Err(glue_differs(&h, &n.addresses));
                }
            }
        }
        Ok(())
    }

    /// Delete the host objects under `domain`, whose registration ends
    /// (or ended): they are not handed to the name's next sponsor.
    pub(super) fn drop_subordinate_hosts(&self, txn: &mut dyn Txn, domain: &str) -> Result<()> {
        for h in self.store.host_objects_under(domain)? {
            txn.delete_host_object(h.name.as_str())?;
        }
        Ok(())
    }

    /// RFC 5731 §3.2.2: a registrar cannot delete a domain while another
    /// domain uses one of its subordinate host objects as a nameserver
    /// (that domain would lose a server, and its name could be
    /// registered by anyone once free).
    pub(super) fn check_subordinate_hosts(&self, domain: &str, now: Timestamp) -> Result<()> {
        for h in self.store.host_objects_under(domain)? {
            if let Some(d) = self.first_user(None, &h.name, Some(domain), now)? {
                return Err(RegistryError::refused(
                    Rule::HostInUse,
                    format!(
                        "host {} of {domain} is a nameserver of {d}: it must leave {d}'s NS set (or be renamed) first",
                        h.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The NS set entries of `domain` for host objects named `names` (EPP
    /// `domain:hostObj`): each must exist; its addresses come along when
    /// it is inside `domain`.
    pub fn nameservers_of_hosts(
        &self,
        domain: &str,
        names: &[String],
    ) -> Result<Vec<input::NameserverIn>> {
        names
            .iter()
            .map(|raw| {
                let name = self.host_name(raw)?;
                let h = self
                    .store
                    .host_object(name.as_str())?
                    .ok_or_else(|| no_host(name.as_str()))?;
                Ok(host_entry(domain, &h))
            })
            .collect()
    }
}

/// `h` as an entry of `domain`'s NS set: glue only inside the domain.
pub(super) fn host_entry(domain: &str, h: &HostObject) -> input::NameserverIn {
    input::NameserverIn {
        name: h.name.as_str().to_string(),
        addresses: if h.name.is_at_or_below(domain) {
            h.addresses.iter().map(|a| a.to_string()).collect()
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        Zones::new(&["ru", "xn--p1ai", "com.ru"]).unwrap()
    }
    fn host(s: &str) -> HostName {
        names::parse_host(s).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn placement_finds_the_superordinate_domain() {
        let z = zones();
        assert_eq!(
            placement(&z, &host("ns1.example.ru")).unwrap(),
            Placement::Subordinate(DomainName::from_trusted("example.ru".into()))
        );
        assert_eq!(
            placement(&z, &host("a.b.ns.example.ru")).unwrap(),
            Placement::Subordinate(DomainName::from_trusted("example.ru".into()))
        );
        // The most specific zone wins.
        assert_eq!(
            placement(&z, &host("ns.shop.com.ru")).unwrap(),
            Placement::Subordinate(DomainName::from_trusted("shop.com.ru".into()))
        );
        // A domain's apex can be a host of its own.
        assert_eq!(
            placement(&z, &host("example.ru")).unwrap(),
            Placement::Subordinate(DomainName::from_trusted("example.ru".into()))
        );
        assert_eq!(
            placement(&z, &host("ns1.пример.рф")).unwrap(),
            Placement::Subordinate(DomainName::from_trusted("xn--e1afmkfd.xn--p1ai".into()))
        );
        assert_eq!(
            placement(&z, &host("ns1.example.net")).unwrap(),
            Placement::External
        );
        // Not a zone: `notru` only ends like one.
        assert_eq!(
            placement(&z, &host("ns1.notru")).unwrap(),
            Placement::External
        );
        assert!(placement(&z, &host("com.ru")).is_err());
    }

    #[test]
    fn glue_only_inside_and_always_inside() {
        let sub = Placement::Subordinate(DomainName::from_trusted("example.ru".into()));
        let h = host("ns1.example.ru");
        assert!(check_glue(&h, &sub, &[ip("192.0.2.1")]).is_ok());
        let e = check_glue(&h, &sub, &[]).unwrap_err();
        assert!(e.contains("needs addresses"), "{e}");
        let x = host("ns1.example.net");
        assert!(check_glue(&x, &Placement::External, &[]).is_ok());
        let e = check_glue(&x, &Placement::External, &[ip("192.0.2.1")]).unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn addresses_follow_the_declaration_rules() {
        let ok = addresses(
            "addresses",
            &["::ffff:192.0.2.1".into(), "2001:db8::1".into()],
        )
        .unwrap();
        assert_eq!(ok, vec![ip("192.0.2.1"), ip("2001:db8::1")]);
        let e = addresses("add", &["192.0.2.1".into(), "::ffff:192.0.2.1".into()]).unwrap_err();
        assert!(e.to_string().contains("host[0].add[1]"), "{e}");
        let e = addresses("addresses", &["999.1.1.1".into()]).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 or IPv6 address"), "{e}");
    }

    #[test]
    fn an_entry_carries_glue_only_inside_its_domain() {
        let h = HostObject {
            name: host("ns1.example.ru"),
            sponsor: "A".into(),
            addresses: vec![ip("192.0.2.1")],
            created: chrono::Utc::now(),
            updated: chrono::Utc::now(),
        };
        assert_eq!(host_entry("example.ru", &h).addresses, vec!["192.0.2.1"]);
        assert!(host_entry("other.ru", &h).addresses.is_empty());
    }
}

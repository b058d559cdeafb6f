//! EPP domain flows (RFC 5731, secDNS RFC 5910, RGP RFC 3915): one
//! function per command. Registrar changes are in [`super::transfer`].

use super::flow::{check_answer, roid, Ctx};
use super::response::{fragment, from_registry, internal, missing, ts, Out, Xml, R};
use super::xml::{Element, DOMAIN_NS, RGP_NS, SECDNS_NS};
use crate::lifecycle;
use crate::model::{DelegationRecord, Domain, DsRecord};
use crate::registry::input::DsIn;
use crate::registry::{CreateIn, DomainUpdate, NameserverIn};
use crate::status::{self, DomainStatus};

const XMLNS: (&str, &str) = ("xmlns:domain", DOMAIN_NS);

/// The `<domain:name>` of a command, in the registry's form.
pub(super) fn name(c: &Ctx, obj: &Element) -> Result<String, Out> {
    let raw = obj
        .text_of(DOMAIN_NS, "name")
        .ok_or_else(|| missing("domain:name"))?;
    c.registry()
        .parse_name(raw)
        .map(|n| n.as_str().to_string())
        .map_err(|e| Out::err(2005, e.to_string()))
}

/// A domain as of now (what time completed shows before the sweep writes
/// it); one that no longer exists is 2303.
fn load(c: &Ctx, name: &str) -> Result<(Domain, lifecycle::Status), Out> {
    let gone = || Out::err(2303, format!("no such domain: {name}"));
    let d = c
        .deps
        .store()
        .domain(name)
        .map_err(internal)?
        .ok_or_else(gone)?;
    let now = c.deps.now();
    let d = lifecycle::as_of(&d, now);
    let st = lifecycle::evaluate(&d, now, &c.deps.config().lifecycle);
    if !st.exists() {
        return Err(gone());
    }
    Ok((d, st))
}

/// The one status model (`crate::status`) of a loaded domain.
fn status_of(c: &Ctx, d: &Domain, st: &lifecycle::Status) -> Result<DomainStatus, Out> {
    let r = c
        .deps
        .store()
        .delegation(d.name.as_str())
        .map_err(internal)?
        .unwrap_or_else(|| DelegationRecord::undelegated(d.created));
    Ok(status::compute(st, status::Delegation::of(&r)))
}

pub fn check(c: &Ctx, obj: &Element) -> R {
    let reg = c.registry();
    // The reason names the rule `create` would refuse with.
    check_answer(obj, "domain", DOMAIN_NS, "name", "names", |n| {
        reg.availability(n)
            .map(|a| a.map_err(|(rule, why)| format!("{rule}: {why}")))
            .map_err(from_registry)
    })
}

pub fn info(c: &Ctx, obj: &Element) -> R {
    let name = name(c, obj)?;
    let (d, st) = load(c, &name)?;
    let sponsor = d.registrar == c.registrar;
    let model = status_of(c, &d, &st)?;
    let res = fragment(|x| {
        x.el("domain:infData", &[XMLNS], |x| {
            x.text("domain:name", &name)
                .text("domain:roid", &roid(&name));
            for s in model.epp() {
                x.empty("domain:status", &[("s", s.epp())]);
            }
            if sponsor {
                x.text("domain:registrant", &d.registrant);
                for (t, who) in [("admin", &d.admin), ("tech", &d.tech)] {
                    if let Some(who) = who {
                        x.text_with("domain:contact", &[("type", t)], who);
                    }
                }
                if !d.nameservers.is_empty() {
                    x.el("domain:ns", &[], |x| {
                        for n in &d.nameservers {
                            x.el("domain:hostAttr", &[], |x| {
                                x.text("domain:hostName", n.name.as_str());
                                for a in &n.addresses {
                                    let v = if a.is_ipv4() { "v4" } else { "v6" };
                                    x.text_with("domain:hostAddr", &[("ip", v)], &a.to_string());
                                }
                            });
                        }
                    });
                }
            }
            x.text("domain:clID", &d.registrar);
            if sponsor {
                x.text("domain:crDate", &ts(d.created))
                    .text("domain:upDate", &ts(d.updated))
                    .text("domain:exDate", &ts(d.paid_till));
                if let Some(t) = d.transferred {
                    x.text("domain:trDate", &ts(t));
                }
                // No authInfo, to the sponsor either: a code is seen once,
                // when it is set (SECURITY.md).
            }
        });
    });
    let mut o = Out::ok(res);
    if sponsor && c.secdns && !d.ds.is_empty() {
        ds_data(&mut o.ext, "infData", &d.ds);
    }
    if let Some(r) = model.rgp().filter(|_| sponsor && c.rgp) {
        o.ext.el("rgp:infData", &[("xmlns:rgp", RGP_NS)], |x| {
            x.empty("rgp:rgpStatus", &[("s", r.epp())]);
        });
    }
    Ok(o)
}

pub fn create(c: &Ctx, obj: &Element, ext: Option<&Element>) -> R {
    let name = name(c, obj)?;
    let registrant = obj
        .text_of(DOMAIN_NS, "registrant")
        .ok_or_else(|| missing("domain:registrant"))?
        .to_string();
    let mut admin = None;
    let mut tech = None;
    for k in obj.all(DOMAIN_NS, "contact") {
        match k.attr("type") {
            Some("admin") => admin = Some(k.text.clone()),
            Some("tech") => tech = Some(k.text.clone()),
            // The registry keeps no billing contact.
            Some("billing") => {}
            _ => {
                return Err(Out::err(
                    2005,
                    "contact type must be admin, tech or billing",
                ))
            }
        }
    }
    check_period(c, obj)?;
    let (ns, host_objects) = match obj.child(DOMAIN_NS, "ns") {
        Some(ns) => ns_in(ns)?,
        None => Default::default(),
    };
    let auth_info = obj
        .child(DOMAIN_NS, "authInfo")
        .and_then(|a| a.text_of(DOMAIN_NS, "pw"))
        .map(str::to_string);
    // secDNS `create`: the DS set, checked by the registry with the rest
    // of the registration (one transaction).
    let ds = match ext.and_then(|e| e.child(SECDNS_NS, "create")) {
        Some(s) => ds_list(s)?,
        None => Vec::new(),
    };
    let body = CreateIn {
        name: name.clone(),
        registrar: None,
        registrant,
        admin,
        tech,
        nameservers: ns,
        auth_info,
        reseller: None,
        ds,
        host_objects,
    };
    let d = c
        .registry()
        .create(&c.actor(), &body)
        .map_err(from_registry)?;
    Ok(Out::ok(fragment(|x| {
        x.el("domain:creData", &[XMLNS], |x| {
            x.text("domain:name", &name)
                .text("domain:crDate", &ts(d.created))
                .text("domain:exDate", &ts(d.paid_till));
        });
    })))
}

/// A period other than the registry's one is refused.
pub(super) fn check_period(c: &Ctx, obj: &Element) -> Result<(), Out> {
    if let Some(p) = obj.child(DOMAIN_NS, "period") {
        let months = c.deps.config().lifecycle.registration_period.0;
        let n: u32 = p.text.parse().map_err(|_| Out::err(2005, "bad period"))?;
        let asked = match p.attr("unit") {
            Some("y") => n * 12,
            Some("m") => n,
            _ => return Err(Out::err(2005, "period unit must be y or m")),
        };
        if asked != months {
            return Err(Out::err(
                2004,
                format!("the registration period is {months} months (rule: registration-period)"),
            ));
        }
    }
    Ok(())
}

/// All parts of the update (`add`, `rem`, `chg`, secDNS) are one
/// registry operation ([`DomainUpdate`]): applied to the record inside
/// the registry's transaction, all or nothing.
pub fn update(c: &Ctx, obj: &Element, ext: Option<&Element>) -> R {
    let name = name(c, obj)?;
    let add = obj.child(DOMAIN_NS, "add");
    let rem = obj.child(DOMAIN_NS, "rem");
    let chg = obj.child(DOMAIN_NS, "chg");
    let sec = ext.and_then(|e| e.child(SECDNS_NS, "update"));
    let rgp = ext.and_then(|e| e.child(RGP_NS, "update"));
    let mut u = DomainUpdate {
        client_statuses: super::client_status::parse(add, rem).map_err(from_registry)?,
        ..Default::default()
    };
    if let Some(r) = rem.and_then(|r| r.child(DOMAIN_NS, "ns")) {
        u.ns_rem = ns_names(r)?;
    }
    if let Some(a) = add.and_then(|a| a.child(DOMAIN_NS, "ns")) {
        (u.ns_add, u.ns_add_hosts) = ns_in(a)?;
    }
    for (part, adding) in [(rem, false), (add, true)] {
        for k in part.into_iter().flat_map(|p| p.all(DOMAIN_NS, "contact")) {
            let v = adding.then(|| k.text.clone());
            match k.attr("type") {
                Some("admin") => u.admin = Some(v),
                Some("tech") => u.tech = Some(v),
                _ => return Err(Out::err(2005, "contact type must be admin or tech")),
            }
        }
    }
    u.registrant = chg
        .and_then(|c| c.text_of(DOMAIN_NS, "registrant"))
        .map(str::to_string);
    u.auth_code = chg
        .and_then(|c| c.child(DOMAIN_NS, "authInfo"))
        .and_then(|a| a.text_of(DOMAIN_NS, "pw"))
        .map(str::to_string);
    if let Some(sec) = sec {
        if let Some(r) = sec.child(SECDNS_NS, "rem") {
            let all = r.text_of(SECDNS_NS, "all");
            if all == Some("true") || all == Some("1") {
                u.ds_rem_all = true;
            } else {
                u.ds_rem = ds_list(r)?;
            }
        }
        if let Some(a) = sec.child(SECDNS_NS, "add") {
            u.ds_add = ds_list(a)?;
        }
        if u.ds_rem_all || !u.ds_rem.is_empty() || !u.ds_add.is_empty() {
            u.ds_source = Some("EPP".into());
        } else {
            return Err(Out::err(2003, "secDNS:update without add or rem"));
        }
    }
    if let Some(r) = rgp {
        return restore(c, &name, r, &u);
    }
    if u.is_empty() {
        return Err(Out::err(2003, "the update changes nothing"));
    }
    c.registry()
        .update_domain(&c.actor(), &name, &u)
        .map_err(from_registry)?;
    if let Some(r) = &u.registrant {
        return Ok(Out::code(1001, Xml::new())
            .with_detail(&format!("the new registrant {r} must accept the change")));
    }
    Ok(Out::done())
}

/// `<rgp:update><rgp:restore op="request"/>`: a restore request, which
/// changes nothing else (RFC 3915 §4.2.5).
fn restore(c: &Ctx, name: &str, rgp: &Element, u: &DomainUpdate) -> R {
    if rgp.child(RGP_NS, "restore").and_then(|x| x.attr("op")) != Some("request") {
        return Err(Out::err(
            2102,
            "only <rgp:restore op=\"request\"> is implemented",
        ));
    }
    if !u.is_empty() {
        return Err(Out::err(
            2306,
            "a restore request changes nothing else (RFC 3915 §4.2.5; rule: restore-alone)",
        ));
    }
    let d = c
        .registry()
        .restore(&c.actor(), name)
        .map_err(from_registry)?;
    // The RGP state after the restore, from the one status model (none
    // once the domain is back to normal: no `addPeriod`, which is for new
    // registrations only).
    let st = lifecycle::evaluate(&d, c.deps.now(), &c.deps.config().lifecycle);
    let mut o = Out::done();
    if let Some(r) = status_of(c, &d, &st)?.rgp() {
        o.ext.el("rgp:upData", &[("xmlns:rgp", RGP_NS)], |x| {
            x.empty("rgp:rgpStatus", &[("s", r.epp())]);
        });
    }
    Ok(o)
}

pub fn renew(c: &Ctx, obj: &Element) -> R {
    let name = name(c, obj)?;
    let (d, _) = load(c, &name)?;
    let cur = obj
        .text_of(DOMAIN_NS, "curExpDate")
        .ok_or_else(|| missing("domain:curExpDate"))?;
    if cur != d.paid_till.date_naive().to_string() {
        return Err(Out::err(
            2004,
            format!(
                "curExpDate {cur} is not the expiry date {} (rule: cur-exp-date)",
                d.paid_till.date_naive()
            ),
        ));
    }
    check_period(c, obj)?;
    let d = c
        .registry()
        .renew(&c.actor(), &name)
        .map_err(from_registry)?;
    Ok(Out::ok(fragment(|x| {
        x.el("domain:renData", &[XMLNS], |x| {
            x.text("domain:name", &name)
                .text("domain:exDate", &ts(d.paid_till));
        });
    })))
}

pub fn delete(c: &Ctx, obj: &Element) -> R {
    let name = name(c, obj)?;
    // Deletion at the end of the paid period: reversible by RGP restore
    // until then (the registry's close rule, docs/lifecycle.md).
    let at = c
        .registry()
        .close(&c.actor(), &name, true)
        .map_err(from_registry)?;
    Ok(Out::code(1001, Xml::new())
        .with_detail(&format!("{name} is deleted at {} unless restored", ts(at))))
}

/// `<domain:ns>`: `hostAttr` entries (a name and its glue, declared by
/// name) and `hostObj` names (host objects, linked by the registry).
fn ns_in(ns: &Element) -> Result<(Vec<NameserverIn>, Vec<String>), Out> {
    let (mut attrs, mut objs) = (Vec::new(), Vec::new());
    for h in &ns.children {
        match h.name.as_str() {
            "hostObj" => objs.push(h.text.clone()),
            "hostAttr" => attrs.push(NameserverIn {
                name: h
                    .text_of(DOMAIN_NS, "hostName")
                    .ok_or_else(|| missing("domain:hostName"))?
                    .to_string(),
                addresses: h
                    .all(DOMAIN_NS, "hostAddr")
                    .map(|a| a.text.clone())
                    .collect(),
            }),
            other => {
                return Err(Out::err(
                    2001,
                    format!("unexpected <{other}> in <domain:ns>"),
                ))
            }
        }
    }
    Ok((attrs, objs))
}

/// The names in `<domain:ns>` (for `rem`: no host object needed).
fn ns_names(ns: &Element) -> Result<Vec<String>, Out> {
    ns.children
        .iter()
        .map(|h| match h.name.as_str() {
            "hostObj" => Ok(h.text.clone()),
            "hostAttr" => h
                .text_of(DOMAIN_NS, "hostName")
                .map(str::to_string)
                .ok_or_else(|| missing("domain:hostName")),
            other => Err(Out::err(
                2001,
                format!("unexpected <{other}> in <domain:ns>"),
            )),
        })
        .collect()
}

fn ds_list(el: &Element) -> Result<Vec<DsIn>, Out> {
    if el.child(SECDNS_NS, "keyData").is_some() {
        return Err(Out::err(
            2102,
            "secDNS keyData is not implemented: use dsData",
        ));
    }
    el.all(SECDNS_NS, "dsData")
        .map(|d| {
            let num = |k: &str| -> Result<i64, Out> {
                d.text_of(SECDNS_NS, k)
                    .ok_or_else(|| missing(&format!("secDNS:{k}")))?
                    .parse()
                    .map_err(|_| Out::err(2005, format!("secDNS:{k} is not a number")))
            };
            Ok(DsIn {
                key_tag: num("keyTag")?,
                algorithm: num("alg")?,
                digest_type: num("digestType")?,
                digest: d
                    .text_of(SECDNS_NS, "digest")
                    .ok_or_else(|| missing("secDNS:digest"))?
                    .to_string(),
            })
        })
        .collect()
}

/// `<secDNS:{kind}>` with the DS set.
fn ds_data(x: &mut Xml, kind: &str, ds: &[DsRecord]) {
    x.el(
        &format!("secDNS:{kind}"),
        &[("xmlns:secDNS", SECDNS_NS)],
        |x| {
            for d in ds {
                x.el("secDNS:dsData", &[], |x| {
                    x.text("secDNS:keyTag", &d.key_tag.to_string())
                        .text("secDNS:alg", &d.algorithm.to_string())
                        .text("secDNS:digestType", &d.digest_type.to_string())
                        .text("secDNS:digest", &d.digest.to_ascii_uppercase());
                });
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{create_domain, run, Kit};
    use super::*;

    const D: &str = r#"xmlns:domain="urn:ietf:params:xml:ns:domain-1.0""#;

    fn info(s: &mut super::super::session::Session, name: &str) -> super::super::testkit::Answer {
        run(
            s,
            &format!(
                r#"<info><domain:info {D}><domain:name>{name}</domain:name></domain:info></info>"#
            ),
        )
    }

    #[test]
    fn check_says_which_names_are_free_and_why_not() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "taken-name.ru", "CA").expect(1000);
        let r = run(
            &mut a,
            &format!(r#"<check><domain:check {D}><domain:name>free-name.ru</domain:name><domain:name>taken-name.ru</domain:name></domain:check></check>"#),
        )
        .expect(1000);
        let cd: Vec<_> = r.res(DOMAIN_NS, "chkData").all(DOMAIN_NS, "cd").collect();
        assert_eq!(
            cd[0].child(DOMAIN_NS, "name").unwrap().attr("avail"),
            Some("1")
        );
        assert_eq!(
            cd[1].child(DOMAIN_NS, "name").unwrap().attr("avail"),
            Some("0")
        );
        assert!(cd[1].text_of(DOMAIN_NS, "reason").unwrap().contains(':'));
        // 1 to 50 names.
        run(&mut a, &format!(r#"<check><domain:check {D}/></check>"#)).expect(2001);
    }

    #[test]
    fn create_answers_the_dates_and_refuses_a_second_time() {
        let k = Kit::new();
        let mut a = k.session("A");
        let r = create_domain(&mut a, "Fresh-Name.RU", "CA").expect(1000);
        let cre = r.res(DOMAIN_NS, "creData");
        assert_eq!(cre.text_of(DOMAIN_NS, "name"), Some("fresh-name.ru"));
        assert_eq!(
            cre.text_of(DOMAIN_NS, "crDate"),
            Some("2026-06-01T10:00:00Z")
        );
        assert!(cre
            .text_of(DOMAIN_NS, "exDate")
            .unwrap()
            .starts_with("2027-06-01"));
        assert_eq!(create_domain(&mut a, "fresh-name.ru", "CA").code(), 2302);
        // No registrant; another registrar's contact; a period not the registry's.
        run(&mut a, &format!(r#"<create><domain:create {D}><domain:name>x-y.ru</domain:name></domain:create></create>"#)).expect(2003);
        assert_ne!(create_domain(&mut a, "other-one.ru", "CB").code(), 1000);
        run(&mut a, &format!(r#"<create><domain:create {D}><domain:name>x-y.ru</domain:name><domain:period unit="y">3</domain:period><domain:registrant>CA</domain:registrant></domain:create></create>"#)).expect(2004);
    }

    #[test]
    fn info_shows_the_sponsor_everything_and_others_the_public_part() {
        let k = Kit::new();
        let (mut a, mut b) = (k.session("A"), k.session("B"));
        create_domain(&mut a, "shown.ru", "CA").expect(1000);
        let r = info(&mut a, "shown.ru").expect(1000);
        let inf = r.res(DOMAIN_NS, "infData");
        assert_eq!(inf.text_of(DOMAIN_NS, "registrant"), Some("CA"));
        assert_eq!(inf.text_of(DOMAIN_NS, "roid"), Some("SHOWN_RU-ZK"));
        assert_eq!(inf.text_of(DOMAIN_NS, "clID"), Some("A"));
        assert!(inf.child(DOMAIN_NS, "status").is_some());
        // The code is never shown, to the sponsor either.
        assert!(!r.text.contains("authInfo"), "{}", r.text);
        let r = info(&mut b, "shown.ru").expect(1000);
        let inf = r.res(DOMAIN_NS, "infData");
        assert_eq!(inf.text_of(DOMAIN_NS, "registrant"), None);
        assert_eq!(inf.text_of(DOMAIN_NS, "crDate"), None);
        info(&mut a, "absent-name.ru").expect(2303);
    }

    #[test]
    fn update_applies_all_parts_or_refuses() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "upd.ru", "CA").expect(1000);
        let upd = |inner: &str| {
            format!(
                r#"<update><domain:update {D}><domain:name>upd.ru</domain:name>{inner}</domain:update></update>"#
            )
        };
        run(
            &mut a,
            &upd(r#"<domain:add><domain:contact type="admin">CA</domain:contact></domain:add>"#),
        )
        .expect(1000);
        let r = info(&mut a, "upd.ru");
        assert!(
            r.text
                .contains(r#"<domain:contact type="admin">CA</domain:contact>"#),
            "{}",
            r.text
        );
        run(&mut a, &upd("")).expect(2003);
        // Registrar-set statuses: added once, refused twice, removed.
        let hold = r#"<domain:status s="clientHold"/>"#;
        run(&mut a, &upd(&format!("<domain:add>{hold}</domain:add>"))).expect(1000);
        run(&mut a, &upd(&format!("<domain:add>{hold}</domain:add>"))).expect(2306);
        run(&mut a, &upd(&format!("<domain:rem>{hold}</domain:rem>"))).expect(1000);
        run(
            &mut a,
            &upd(r#"<domain:add><domain:status s="serverHold"/></domain:add>"#),
        )
        .expect(2306);
        run(
            &mut a,
            &upd(r#"<domain:add><domain:contact type="billing">CA</domain:contact></domain:add>"#),
        )
        .expect(2005);
        // A DS the rules refuse: nothing is changed.
        let ds = r#"<extension><secDNS:update xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1"><secDNS:add><secDNS:dsData><secDNS:keyTag>1</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2</secDNS:digestType><secDNS:digest>00</secDNS:digest></secDNS:dsData></secDNS:add></secDNS:update></extension>"#;
        let r = run(
            &mut a,
            &format!(
                r#"<update><domain:update {D}><domain:name>upd.ru</domain:name></domain:update></update>{ds}"#
            ),
        );
        assert_eq!(r.code(), 2306, "{}", r.text);
    }

    #[test]
    fn renew_checks_the_expiry_date_and_delete_then_restore() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "life.ru", "CA").expect(1000);
        let renew = |cur: &str| {
            format!(
                r#"<renew><domain:renew {D}><domain:name>life.ru</domain:name><domain:curExpDate>{cur}</domain:curExpDate></domain:renew></renew>"#
            )
        };
        let r = run(&mut a, &renew("2020-01-01")).expect(2004);
        assert!(r.msg().contains("rule: cur-exp-date"), "{}", r.msg());
        let r = run(&mut a, &renew("2027-06-01")).expect(1000);
        assert!(r
            .res(DOMAIN_NS, "renData")
            .text_of(DOMAIN_NS, "exDate")
            .unwrap()
            .starts_with("2028-06-01"));
        let r = run(&mut a, &format!(r#"<delete><domain:delete {D}><domain:name>life.ru</domain:name></domain:delete></delete>"#)).expect(1001);
        assert!(r.msg().contains("life.ru is deleted at"), "{}", r.msg());
        let restore = r#"<extension><rgp:update xmlns:rgp="urn:ietf:params:xml:ns:rgp-1.0"><rgp:restore op="request"/></rgp:update></extension>"#;
        // A restore changes nothing else.
        run(&mut a, &format!(r#"<update><domain:update {D}><domain:name>life.ru</domain:name><domain:add><domain:contact type="tech">CA</domain:contact></domain:add></domain:update></update>{restore}"#)).expect(2306);
        run(&mut a, &format!(r#"<update><domain:update {D}><domain:name>life.ru</domain:name></domain:update></update>{restore}"#)).expect(1000);
    }

    #[test]
    fn another_registrar_cannot_change_a_domain() {
        let k = Kit::new();
        let (mut a, mut b) = (k.session("A"), k.session("B"));
        create_domain(&mut a, "mine.ru", "CA").expect(1000);
        let r = run(
            &mut b,
            &format!(
                r#"<delete><domain:delete {D}><domain:name>mine.ru</domain:name></domain:delete></delete>"#
            ),
        );
        assert_eq!(r.code(), 2201, "{}", r.text);
        assert!(r.msg().contains("(rule: "), "{}", r.msg());
    }
}

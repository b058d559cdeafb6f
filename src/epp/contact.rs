//! EPP contact flows (RFC 5733): one function per command. A contact is
//! seen and changed by its sponsoring registrar only (docs/epp.md
//! "Ownership").

use super::flow::{check_answer, roid, Ctx};
use super::response::{fragment, from_registry, internal, missing, ts, Out, R};
use super::xml::{Element, CONTACT_NS};
use crate::model::{Contact, ContactKind, DiscloseField};
use crate::registry::input::{AddressIn, ContactIn};
use crate::registry::RegistryError;

/// Every field, in the order RFC 5733 lists them.
const WITHHELD: [DiscloseField; 5] = [
    DiscloseField::Name,
    DiscloseField::Org,
    DiscloseField::Address,
    DiscloseField::Phone,
    DiscloseField::Email,
];

fn id(obj: &Element) -> Result<&str, Out> {
    obj.text_of(CONTACT_NS, "id")
        .ok_or_else(|| missing("contact:id"))
}

pub fn check(c: &Ctx, obj: &Element) -> R {
    check_answer(obj, "contact", CONTACT_NS, "id", "contacts", |id| {
        let k = c.deps.store().contact(id).map_err(internal)?;
        // Another registrar's person is answered as a free id: the check
        // does not confirm that a private person exists (docs/epp.md
        // "Ownership").
        let used = k.is_some_and(|k| {
            k.sponsor.as_deref() == Some(c.registrar) || k.kind != ContactKind::Person
        });
        Ok(if used {
            Err("In use".to_string())
        } else {
            Ok(id.to_string())
        })
    })
}

fn own(c: &Ctx, id: &str) -> Result<Contact, Out> {
    let k = c
        .deps
        .store()
        .contact(id)
        .map_err(internal)?
        .ok_or_else(|| Out::err(2303, format!("no such contact: {id}")))?;
    if k.sponsor.as_deref() != Some(c.registrar) {
        return Err(Out::err(
            2201,
            format!("contact {id} is not sponsored by you (rule: forbidden)"),
        ));
    }
    Ok(k)
}

pub fn info(c: &Ctx, obj: &Element) -> R {
    let id = id(obj)?;
    let k = own(c, id)?;
    let name = k.name.clone().or_else(|| k.org.clone()).unwrap_or_default();
    let a = k.address.clone().unwrap_or_default();
    Ok(Out::ok(fragment(|x| {
        x.el("contact:infData", &[("xmlns:contact", CONTACT_NS)], |x| {
            x.text("contact:id", id)
                .text("contact:roid", &roid(id))
                .empty("contact:status", &[("s", "ok")]);
            x.el("contact:postalInfo", &[("type", "loc")], |x| {
                x.text("contact:name", &name);
                if let Some(o) = &k.org {
                    x.text("contact:org", o);
                }
                x.el("contact:addr", &[], |x| {
                    for l in &a.street {
                        x.text("contact:street", l);
                    }
                    x.text("contact:city", a.city.as_deref().unwrap_or(""));
                    if let Some(r) = &a.region {
                        x.text("contact:sp", r);
                    }
                    if let Some(p) = &a.postal_code {
                        x.text("contact:pc", p);
                    }
                    x.text("contact:cc", a.country.as_deref().unwrap_or("RU"));
                });
            });
            if let Some(p) = &k.phone {
                x.text("contact:voice", p);
            }
            x.text("contact:email", k.email.as_deref().unwrap_or(""))
                .text("contact:clID", c.registrar)
                .text("contact:crID", c.registrar);
            // Contacts stored before schema 3 have no creation time; the
            // XSD needs crDate: the epoch marks "unknown".
            x.text(
                "contact:crDate",
                &k.created
                    .map_or_else(|| "1970-01-01T00:00:00Z".to_string(), ts),
            );
            // An empty flag="1" list is not valid XSD: with nothing
            // published, say what is withheld.
            let (flag, fields): (&str, &[DiscloseField]) = if k.disclose.is_empty() {
                ("0", &WITHHELD)
            } else {
                ("1", &k.disclose)
            };
            x.el("contact:disclose", &[("flag", flag)], |x| {
                for f in fields {
                    match f {
                        DiscloseField::Name => x.empty("contact:name", &[("type", "loc")]),
                        DiscloseField::Org => x.empty("contact:org", &[("type", "loc")]),
                        DiscloseField::Address => x.empty("contact:addr", &[("type", "loc")]),
                        DiscloseField::Phone => x.empty("contact:voice", &[]),
                        DiscloseField::Email => x.empty("contact:email", &[]),
                    };
                }
            });
        });
    })))
}

pub fn create(c: &Ctx, obj: &Element) -> R {
    let id = id(obj)?;
    let mut k = ContactIn {
        handle: id.to_string(),
        kind: ContactKind::Person,
        name: None,
        org: None,
        email: None,
        phone: None,
        address: None,
        tax_id: None,
        birth_date: None,
        passport: None,
        disclose: Vec::new(),
        registrar: None,
    };
    if obj.child(CONTACT_NS, "postalInfo").is_none() {
        return Err(missing("contact:postalInfo"));
    }
    apply(&mut k, obj)?;
    // The contact rule is the registry's.
    let k = c
        .registry()
        .contact_create(&c.actor(), k)
        .map_err(from_registry)?;
    Ok(Out::ok(fragment(|x| {
        x.el("contact:creData", &[("xmlns:contact", CONTACT_NS)], |x| {
            x.text("contact:id", id).text(
                "contact:crDate",
                &ts(k.created.unwrap_or_else(|| c.deps.now())),
            );
        });
    })))
}

pub fn update(c: &Ctx, obj: &Element) -> R {
    let id = id(obj)?;
    let old = own(c, id)?;
    if obj.child(CONTACT_NS, "add").is_some() || obj.child(CONTACT_NS, "rem").is_some() {
        return Err(Out::err(2102, "contact status values are not implemented"));
    }
    let chg = obj
        .child(CONTACT_NS, "chg")
        .ok_or_else(|| missing("contact:chg"))?;
    // Read once over the record read here (a clear answer for bad XML),
    // then applied to the record as stored inside the registry's
    // transaction, so a concurrent update is not lost; the registry
    // checks the result.
    apply(&mut ContactIn::from(&old), chg)?;
    c.registry()
        .contact_change(&c.actor(), id, |cur| {
            let mut k = ContactIn::from(cur);
            apply(&mut k, chg).map_err(|o| {
                RegistryError::Invalid(vec![crate::store::RecordError {
                    section: "contact",
                    index: 0,
                    field: "-".into(),
                    reason: o.msg,
                }])
            })?;
            Ok(k)
        })
        .map_err(from_registry)?;
    Ok(Out::done())
}

pub fn delete(c: &Ctx, obj: &Element) -> R {
    let id = id(obj)?;
    c.registry()
        .contact_delete(&c.actor(), id)
        .map_err(from_registry)?;
    Ok(Out::done())
}

/// The fields `<contact:create>` or `<contact:chg>` gives, over `k`.
fn apply(k: &mut ContactIn, el: &Element) -> Result<(), Out> {
    let text = |e: &Element, n: &str| e.text_of(CONTACT_NS, n).map(str::to_string);
    // Both forms may be given; the international one is ASCII, a subset.
    let pi = el
        .all(CONTACT_NS, "postalInfo")
        .find(|p| p.attr("type") == Some("loc"))
        .or_else(|| el.child(CONTACT_NS, "postalInfo"));
    if let Some(pi) = pi {
        if let Some(n) = text(pi, "name") {
            k.name = Some(n);
        }
        match pi.text_of(CONTACT_NS, "org") {
            Some(org) if !org.is_empty() => {
                k.org = Some(org.to_string());
                k.kind = ContactKind::Org;
            }
            Some(_) => {
                k.org = None;
                k.kind = ContactKind::Person;
            }
            None => {}
        }
        if let Some(a) = pi.child(CONTACT_NS, "addr") {
            k.address = Some(AddressIn {
                street: a
                    .all(CONTACT_NS, "street")
                    .map(|s| s.text.clone())
                    .collect(),
                city: text(a, "city"),
                region: text(a, "sp"),
                postal_code: text(a, "pc"),
                country: text(a, "cc"),
            });
        }
    }
    if let Some(p) = el.text_of(CONTACT_NS, "voice") {
        k.phone = (!p.is_empty()).then(|| p.to_string());
    }
    if let Some(e) = text(el, "email") {
        k.email = Some(e);
    }
    if let Some(d) = el.child(CONTACT_NS, "disclose") {
        let listed: Vec<DiscloseField> = d
            .children
            .iter()
            .filter_map(|c| match c.name.as_str() {
                "name" => Some(DiscloseField::Name),
                "org" => Some(DiscloseField::Org),
                "addr" => Some(DiscloseField::Address),
                "voice" => Some(DiscloseField::Phone),
                "email" => Some(DiscloseField::Email),
                _ => None,
            })
            .collect();
        match d.attr("flag") {
            Some("1" | "true") => k.disclose.extend(listed),
            Some("0" | "false") => k.disclose.retain(|f| !listed.contains(f)),
            _ => return Err(Out::err(2005, "disclose flag must be 0 or 1")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::session::Session;
    use super::super::testkit::{run, Answer, Kit};
    use super::*;

    const C: &str = r#"xmlns:contact="urn:ietf:params:xml:ns:contact-1.0""#;

    fn info(s: &mut Session, id: &str) -> Answer {
        run(
            s,
            &format!(
                r#"<info><contact:info {C}><contact:id>{id}</contact:id></contact:info></info>"#
            ),
        )
    }

    fn create(id: &str, name: &str, email: &str) -> String {
        format!(
            r#"<create><contact:create {C}><contact:id>{id}</contact:id><contact:postalInfo type="loc"><contact:name>{name}</contact:name><contact:addr><contact:street>Tverskaya 1</contact:street><contact:city>Moscow</contact:city><contact:cc>ru</contact:cc></contact:addr></contact:postalInfo><contact:email>{email}</contact:email><contact:authInfo><contact:pw>x</contact:pw></contact:authInfo></contact:create></create>"#
        )
    }

    #[test]
    fn check_does_not_confirm_another_registrars_person() {
        let k = Kit::new();
        let mut a = k.session("A");
        let r = run(&mut a, &format!(r#"<check><contact:check {C}><contact:id>CA</contact:id><contact:id>CB</contact:id></contact:check></check>"#)).expect(1000);
        let cd: Vec<_> = r.res(CONTACT_NS, "chkData").all(CONTACT_NS, "cd").collect();
        assert_eq!(
            cd[0].child(CONTACT_NS, "id").unwrap().attr("avail"),
            Some("0")
        );
        assert_eq!(cd[0].text_of(CONTACT_NS, "reason"), Some("In use"));
        assert_eq!(
            cd[1].child(CONTACT_NS, "id").unwrap().attr("avail"),
            Some("1")
        );
    }

    #[test]
    fn create_then_info_with_escaped_text() {
        let k = Kit::new();
        let mut a = k.session("A");
        let r = run(
            &mut a,
            &create("NEW1", "Ivan &amp; Co &lt;x&gt;", "ivan@example.net"),
        )
        .expect(1000);
        assert_eq!(
            r.res(CONTACT_NS, "creData").text_of(CONTACT_NS, "crDate"),
            Some("2026-06-01T10:00:00Z")
        );
        run(&mut a, &create("NEW1", "Ivan", "ivan@example.net")).expect(2302);
        let r = info(&mut a, "NEW1").expect(1000);
        assert!(
            r.text
                .contains("<contact:name>Ivan &amp; Co &lt;x&gt;</contact:name>"),
            "{}",
            r.text
        );
        let inf = r.res(CONTACT_NS, "infData");
        assert_eq!(inf.text_of(CONTACT_NS, "clID"), Some("A"));
        assert_eq!(inf.text_of(CONTACT_NS, "roid"), Some("NEW1-ZK"));
        // Nothing published: the withheld fields are listed under flag="0".
        let d = inf.child(CONTACT_NS, "disclose").unwrap();
        assert_eq!(d.attr("flag"), Some("0"));
        assert_eq!(d.children.len(), 5);
        let cc = r.text.contains("<contact:cc>RU</contact:cc>");
        assert!(cc, "{}", r.text);
        // A value the text policy refuses: nothing is created.
        let r = run(&mut a, &create("NEW2", "Ivan", "not an address"));
        assert!(r.code() >= 2000, "{}", r.text);
        info(&mut a, "NEW2").expect(2303);
        run(&mut a, &format!(r#"<create><contact:create {C}><contact:id>NEW3</contact:id></contact:create></create>"#)).expect(2003);
    }

    #[test]
    fn only_the_sponsor_sees_and_changes_a_contact() {
        let k = Kit::new();
        let (mut a, mut b) = (k.session("A"), k.session("B"));
        info(&mut b, "CA").expect(2201);
        let upd = |id: &str, inner: &str| {
            format!(
                r#"<update><contact:update {C}><contact:id>{id}</contact:id>{inner}</contact:update></update>"#
            )
        };
        run(
            &mut b,
            &upd(
                "CA",
                "<contact:chg><contact:email>b@example.net</contact:email></contact:chg>",
            ),
        )
        .expect(2201);
        run(&mut a, &upd("CA", "<contact:chg><contact:email>new@example.net</contact:email><contact:disclose flag=\"1\"><contact:email/></contact:disclose></contact:chg>")).expect(1000);
        let r = info(&mut a, "CA").expect(1000);
        let inf = r.res(CONTACT_NS, "infData");
        assert_eq!(inf.text_of(CONTACT_NS, "email"), Some("new@example.net"));
        let d = inf.child(CONTACT_NS, "disclose").unwrap();
        assert_eq!((d.attr("flag"), d.children.len()), (Some("1"), 1));
        run(&mut a, &upd("CA", "")).expect(2003);
        run(
            &mut a,
            &upd(
                "CA",
                r#"<contact:add><contact:status s="clientDeleteProhibited"/></contact:add>"#,
            ),
        )
        .expect(2102);
        run(&mut a, &upd("CA", r#"<contact:chg><contact:disclose flag="2"><contact:email/></contact:disclose></contact:chg>"#)).expect(2005);
        run(&mut b, &format!(r#"<delete><contact:delete {C}><contact:id>CA</contact:id></contact:delete></delete>"#)).expect(2201);
        run(&mut a, &format!(r#"<delete><contact:delete {C}><contact:id>CA</contact:id></contact:delete></delete>"#)).expect(1000);
        info(&mut a, "CA").expect(2303);
        run(&mut a, &format!(r#"<transfer op="request"><contact:transfer {C}><contact:id>CB</contact:id></contact:transfer></transfer>"#)).expect(2101);
    }
}

//! EPP host flows (RFC 5732): one function per command. The address and
//! glue rules are the registry's.

use super::flow::{check_answer, roid, Ctx};
use super::response::{fragment, from_registry, missing, ts, Out, R};
use super::xml::{Element, HOST_NS};

fn name(obj: &Element) -> Result<&str, Out> {
    obj.text_of(HOST_NS, "name")
        .ok_or_else(|| missing("host:name"))
}

pub fn check(c: &Ctx, obj: &Element) -> R {
    let reg = c.registry();
    check_answer(obj, "host", HOST_NS, "name", "hosts", |n| {
        reg.host_availability(n).map_err(from_registry)
    })
}

pub fn info(c: &Ctx, obj: &Element) -> R {
    let v = c.registry().host_info(name(obj)?).map_err(from_registry)?;
    let h = &v.host;
    let name = h.name.as_str();
    Ok(Out::ok(fragment(|x| {
        x.el("host:infData", &[("xmlns:host", HOST_NS)], |x| {
            x.text("host:name", name)
                .text("host:roid", &format!("{}H", roid(name)))
                .empty("host:status", &[("s", "ok")]);
            if v.linked {
                x.empty("host:status", &[("s", "linked")]);
            }
            for a in &h.addresses {
                let ip = if a.is_ipv4() { "v4" } else { "v6" };
                x.text_with("host:addr", &[("ip", ip)], &a.to_string());
            }
            x.text("host:clID", &v.sponsor)
                .text("host:crID", &h.sponsor)
                .text("host:crDate", &ts(h.created));
            if h.updated != h.created {
                x.text("host:upDate", &ts(h.updated));
            }
        });
    })))
}

pub fn create(c: &Ctx, obj: &Element) -> R {
    let name = name(obj)?;
    let addrs = addrs(obj)?;
    let h = c
        .registry()
        .host_create(&c.actor(), name, &addrs)
        .map_err(from_registry)?;
    Ok(Out::ok(fragment(|x| {
        x.el("host:creData", &[("xmlns:host", HOST_NS)], |x| {
            x.text("host:name", h.name.as_str())
                .text("host:crDate", &ts(h.created));
        });
    })))
}

pub fn update(c: &Ctx, obj: &Element) -> R {
    let name = name(obj)?;
    let add = obj.child(HOST_NS, "add");
    let rem = obj.child(HOST_NS, "rem");
    for part in [add, rem].into_iter().flatten() {
        if part.child(HOST_NS, "status").is_some() {
            return Err(Out::err(
                2102,
                "client status values are not implemented: locks are the registry's (rule: no-client-status)",
            ));
        }
    }
    let add = add.map(addrs).transpose()?.unwrap_or_default();
    let rem = rem.map(addrs).transpose()?.unwrap_or_default();
    let new_name = obj
        .child(HOST_NS, "chg")
        .map(|c| {
            c.text_of(HOST_NS, "name")
                .ok_or_else(|| missing("host:chg/host:name"))
        })
        .transpose()?;
    if add.is_empty() && rem.is_empty() && new_name.is_none() {
        return Err(Out::err(2003, "the update changes nothing"));
    }
    c.registry()
        .host_update(&c.actor(), name, &add, &rem, new_name)
        .map_err(from_registry)?;
    Ok(Out::done())
}

pub fn delete(c: &Ctx, obj: &Element) -> R {
    c.registry()
        .host_delete(&c.actor(), name(obj)?)
        .map_err(from_registry)?;
    Ok(Out::done())
}

/// The `<host:addr>` values of `el`; an address of the other family than
/// its `ip` attribute says is refused (the address rules are the
/// registry's).
fn addrs(el: &Element) -> Result<Vec<String>, Out> {
    el.all(HOST_NS, "addr")
        .map(|a| {
            let v6 = match a.attr("ip") {
                None | Some("v4") => false,
                Some("v6") => true,
                Some(_) => return Err(Out::err(2005, "host:addr ip must be v4 or v6")),
            };
            if let Ok(ip) = a.text.trim().parse::<std::net::IpAddr>() {
                if ip.to_canonical().is_ipv6() != v6 {
                    return Err(Out::err(
                        2005,
                        format!(
                            "host:addr {} is not ip=\"{}\"",
                            a.text,
                            if v6 { "v6" } else { "v4" }
                        ),
                    ));
                }
            }
            Ok(a.text.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{create_domain, run, Kit};
    use super::*;

    const H: &str = r#"xmlns:host="urn:ietf:params:xml:ns:host-1.0""#;

    fn create(name: &str, addrs: &str) -> String {
        format!(
            r#"<create><host:create {H}><host:name>{name}</host:name>{addrs}</host:create></create>"#
        )
    }

    #[test]
    fn create_info_update_delete() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "hosting.ru", "CA").expect(1000);
        let r = run(
            &mut a,
            &create(
                "ns1.hosting.ru",
                r#"<host:addr ip="v4">192.0.2.1</host:addr>"#,
            ),
        )
        .expect(1000);
        let cre = r.res(HOST_NS, "creData");
        assert_eq!(cre.text_of(HOST_NS, "name"), Some("ns1.hosting.ru"));
        assert_eq!(cre.text_of(HOST_NS, "crDate"), Some("2026-06-01T10:00:00Z"));
        run(
            &mut a,
            &create(
                "ns1.hosting.ru",
                r#"<host:addr ip="v4">192.0.2.2</host:addr>"#,
            ),
        )
        .expect(2302);
        let info = format!(
            r#"<info><host:info {H}><host:name>ns1.hosting.ru</host:name></host:info></info>"#
        );
        let r = run(&mut a, &info).expect(1000);
        assert!(
            r.text
                .contains(r#"<host:addr ip="v4">192.0.2.1</host:addr>"#),
            "{}",
            r.text
        );
        assert!(r.text.contains(r#"<host:status s="ok"/>"#), "{}", r.text);
        assert_eq!(
            r.res(HOST_NS, "infData").text_of(HOST_NS, "clID"),
            Some("A")
        );
        let upd = |inner: &str| {
            format!(
                r#"<update><host:update {H}><host:name>ns1.hosting.ru</host:name>{inner}</host:update></update>"#
            )
        };
        run(&mut a, &upd("")).expect(2003);
        run(
            &mut a,
            &upd(r#"<host:add><host:status s="clientUpdateProhibited"/></host:add>"#),
        )
        .expect(2102);
        k.clock.advance(std::time::Duration::from_secs(3600));
        run(
            &mut a,
            &upd(r#"<host:add><host:addr ip="v6">2001:db8::53</host:addr></host:add>"#),
        )
        .expect(1000);
        let r = run(&mut a, &info).expect(1000);
        assert!(
            r.text
                .contains(r#"<host:addr ip="v6">2001:db8::53</host:addr>"#),
            "{}",
            r.text
        );
        assert!(r.text.contains("<host:upDate>"), "{}", r.text);
        run(&mut a, &format!(r#"<delete><host:delete {H}><host:name>ns1.hosting.ru</host:name></host:delete></delete>"#)).expect(1000);
        run(&mut a, &info).expect(2303);
    }

    #[test]
    fn addresses_must_match_their_family_and_the_glue_rule() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "hosting.ru", "CA").expect(1000);
        run(
            &mut a,
            &create(
                "ns2.hosting.ru",
                r#"<host:addr ip="v6">192.0.2.1</host:addr>"#,
            ),
        )
        .expect(2005);
        run(
            &mut a,
            &create(
                "ns2.hosting.ru",
                r#"<host:addr ip="v5">192.0.2.1</host:addr>"#,
            ),
        )
        .expect(2005);
        run(
            &mut a,
            &create("ns2.hosting.ru", r#"<host:addr>127.0.0.1</host:addr>"#),
        )
        .expect(2005);
        // Another registrar cannot create a host inside A's domain.
        let mut b = k.session("B");
        assert_ne!(
            run(
                &mut b,
                &create("ns3.hosting.ru", r#"<host:addr>192.0.2.3</host:addr>"#)
            )
            .code(),
            1000
        );
    }

    #[test]
    fn check_lists_each_name() {
        let k = Kit::new();
        let mut a = k.session("A");
        create_domain(&mut a, "hosting.ru", "CA").expect(1000);
        run(
            &mut a,
            &create("ns1.hosting.ru", r#"<host:addr>192.0.2.1</host:addr>"#),
        )
        .expect(1000);
        let r = run(&mut a, &format!(r#"<check><host:check {H}><host:name>ns1.hosting.ru</host:name><host:name>ns9.hosting.ru</host:name></host:check></check>"#)).expect(1000);
        let cd: Vec<_> = r.res(HOST_NS, "chkData").all(HOST_NS, "cd").collect();
        assert_eq!(
            cd[0].child(HOST_NS, "name").unwrap().attr("avail"),
            Some("0")
        );
        assert_eq!(
            cd[1].child(HOST_NS, "name").unwrap().attr("avail"),
            Some("1")
        );
        run(&mut a, &format!(r#"<transfer op="request"><host:transfer {H}><host:name>ns1.hosting.ru</host:name></host:transfer></transfer>"#)).expect(2101);
    }
}

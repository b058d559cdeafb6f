//! EPP domain `<transfer>` (RFC 5731 §3.2.4): a registrar change, asked
//! for, queried, approved, rejected or cancelled; one function per op.

use super::domain::{check_period, name};
use super::flow::Ctx;
use super::response::{fragment, from_registry, missing, ts, Out, Xml, R};
use super::xml::{Element, DOMAIN_NS};
use crate::registry::TransferView;

/// Dispatch on the `op` attribute of `<transfer>`.
pub fn transfer(c: &Ctx, op: Option<&str>, obj: &Element) -> R {
    let name = name(c, obj)?;
    match op {
        Some("request") => request(c, &name, obj),
        Some("query") => query(c, &name, obj),
        Some(op @ ("approve" | "reject" | "cancel")) => decide(c, &name, op),
        _ => Err(Out::err(
            2005,
            "transfer op must be request, query, approve, reject or cancel",
        )),
    }
}

fn auth_pw(obj: &Element) -> Option<&str> {
    obj.child(DOMAIN_NS, "authInfo")
        .and_then(|a| a.text_of(DOMAIN_NS, "pw"))
}

fn trn_data(name: &str, status: &str, t: &TransferView) -> Xml {
    fragment(|x| {
        x.el("domain:trnData", &[("xmlns:domain", DOMAIN_NS)], |x| {
            x.text("domain:name", name)
                .text("domain:trStatus", status)
                .text("domain:reID", &t.to)
                .text("domain:reDate", &ts(t.requested))
                .text("domain:acID", &t.from)
                .text("domain:acDate", &ts(t.auto_approve));
        });
    })
}

fn not_pending(name: &str) -> Out {
    Out::err(
        2301,
        format!("no registrar change of {name} is pending (rule: no-request)"),
    )
}

fn request(c: &Ctx, name: &str, obj: &Element) -> R {
    let pw = auth_pw(obj).ok_or_else(|| missing("domain:authInfo"))?;
    check_period(c, obj)?;
    let t = c
        .registry()
        .transfer_request(&c.actor(), name, pw)
        .map_err(from_registry)?;
    Ok(Out::code(1001, trn_data(name, "pending", &t)))
}

fn query(c: &Ctx, name: &str, obj: &Element) -> R {
    let st = c
        .registry()
        .transfer_query(&c.actor(), name, auth_pw(obj))
        .map_err(from_registry)?;
    let t = st.pending.ok_or_else(|| not_pending(name))?;
    Ok(Out::ok(trn_data(name, "pending", &t)))
}

/// approve, reject (the losing registrar) or cancel (the gaining one).
fn decide(c: &Ctx, name: &str, op: &str) -> R {
    let reg = c.registry();
    let actor = c.actor();
    let st = reg
        .transfer_query(&actor, name, None)
        .map_err(from_registry)?;
    let t = st.pending.ok_or_else(|| not_pending(name))?;
    // The service tells a withdrawal from a rejection by who asks; EPP
    // names them: each op only by its party.
    let allowed = match op {
        "cancel" => t.to == c.registrar,
        _ => t.from == c.registrar,
    };
    if !allowed {
        return Err(Out::err(
            2201,
            format!(
                "{op} is for the {} registrar",
                if op == "cancel" { "gaining" } else { "losing" }
            ),
        ));
    }
    reg.transfer_decide(&actor, name, op == "approve")
        .map_err(from_registry)?;
    let status = match op {
        "approve" => "clientApproved",
        "reject" => "clientRejected",
        _ => "clientCancelled",
    };
    Ok(Out::ok(trn_data(name, status, &t)))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{create_domain, run, Kit};
    use super::*;

    fn trn(op: &str, pw: Option<&str>) -> String {
        let auth = pw
            .map(|p| format!("<domain:authInfo><domain:pw>{p}</domain:pw></domain:authInfo>"))
            .unwrap_or_default();
        format!(
            r#"<transfer op="{op}"><domain:transfer xmlns:domain="urn:ietf:params:xml:ns:domain-1.0"><domain:name>moving.ru</domain:name>{auth}</domain:transfer></transfer>"#
        )
    }

    /// After the transfer lock, A sets a fresh code (the one set at
    /// creation has expired by then).
    fn unlock(k: &Kit, a: &mut super::super::session::Session) {
        k.clock.advance(std::time::Duration::from_secs(61 * 86_400));
        set_code(a);
    }

    fn set_code(a: &mut super::super::session::Session) {
        run(
            a,
            r#"<update><domain:update xmlns:domain="urn:ietf:params:xml:ns:domain-1.0"><domain:name>moving.ru</domain:name><domain:chg><domain:authInfo><domain:pw>Code-2026-xyz!</domain:pw></domain:authInfo></domain:chg></domain:update></update>"#,
        )
        .expect(1000);
    }

    #[test]
    fn request_query_and_approve_by_the_right_party() {
        let k = Kit::new();
        let (mut a, mut b) = (k.session("A"), k.session("B"));
        create_domain(&mut a, "moving.ru", "CA").expect(1000);
        run(&mut a, &trn("query", None)).expect(2301);
        run(&mut b, &trn("request", None)).expect(2003);
        let r = run(&mut b, &trn("request", Some("Code-2026-xyz!"))).expect(2304);
        assert!(r.msg().contains("rule: transfer-lock"), "{}", r.msg());
        unlock(&k, &mut a);
        assert_ne!(
            run(&mut b, &trn("request", Some("wrong-code-1"))).code(),
            1001
        );
        let r = run(&mut b, &trn("request", Some("Code-2026-xyz!"))).expect(1001);
        let t = r.res(DOMAIN_NS, "trnData");
        assert_eq!(t.text_of(DOMAIN_NS, "trStatus"), Some("pending"));
        assert_eq!(t.text_of(DOMAIN_NS, "reID"), Some("B"));
        assert_eq!(t.text_of(DOMAIN_NS, "acID"), Some("A"));
        run(&mut a, &trn("query", None)).expect(1000);
        // Approve is the losing registrar's, cancel the gaining one's.
        run(&mut b, &trn("approve", None)).expect(2201);
        run(&mut a, &trn("cancel", None)).expect(2201);
        run(&mut a, &trn("bogus", None)).expect(2005);
        let r = run(&mut a, &trn("approve", None)).expect(1000);
        assert_eq!(
            r.res(DOMAIN_NS, "trnData").text_of(DOMAIN_NS, "trStatus"),
            Some("clientApproved")
        );
        run(&mut b, &trn("query", None)).expect(2301);
    }

    #[test]
    fn reject_and_cancel() {
        let k = Kit::new();
        let (mut a, mut b) = (k.session("A"), k.session("B"));
        create_domain(&mut a, "moving.ru", "CA").expect(1000);
        unlock(&k, &mut a);
        run(&mut b, &trn("request", Some("Code-2026-xyz!"))).expect(1001);
        let r = run(&mut a, &trn("reject", None)).expect(1000);
        assert!(r
            .text
            .contains("<domain:trStatus>clientRejected</domain:trStatus>"));
        set_code(&mut a);
        run(&mut b, &trn("request", Some("Code-2026-xyz!"))).expect(1001);
        let r = run(&mut b, &trn("cancel", None)).expect(1000);
        assert!(r
            .text
            .contains("<domain:trStatus>clientCancelled</domain:trStatus>"));
    }
}

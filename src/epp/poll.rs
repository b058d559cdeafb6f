//! EPP `<poll>` (RFC 5730 §2.9.2.3): the registrar's feed as a message
//! queue, read with `op="req"` and dequeued with `op="ack"`.

use super::flow::Ctx;
use super::response::{from_registry, internal, missing, MsgQ, Out, Xml, R};
use super::xml::Element;
use crate::store::FeedEvent;

/// The queue holds the registrar's feed after its acknowledged cursor.
fn queue(c: &Ctx) -> Result<Vec<FeedEvent>, Out> {
    let store = c.deps.store();
    let reg = store
        .registrar(c.registrar)
        .map_err(internal)?
        .ok_or_else(|| Out::err(2400, "registrar vanished"))?;
    store
        .feed(c.registrar, reg.epp_poll_acked, 1000)
        .map_err(internal)
}

pub fn poll(c: &Ctx, el: &Element) -> R {
    match el.attr("op") {
        Some("req") => req(c),
        Some("ack") => ack(c, el),
        _ => Err(Out::err(2005, "poll op must be req or ack")),
    }
}

fn req(c: &Ctx) -> R {
    let q = queue(c)?;
    let Some(first) = q.first() else {
        return Ok(Out::code(1300, Xml::new()));
    };
    let text = format!(
        "{}: {}",
        first.domain,
        crate::public::event_reason(&first.reason)
    );
    let mut o = Out::code(1301, Xml::new());
    o.msg_q = Some(Box::new(MsgQ {
        count: q.len(),
        id: first.seq,
        head: Some((first.at, text)),
    }));
    Ok(o)
}

fn ack(c: &Ctx, el: &Element) -> R {
    let id: u64 = el
        .attr("msgID")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| missing("msgID"))?;
    let q = queue(c)?;
    if !q.iter().any(|e| e.seq == id) {
        return Err(Out::err(2303, format!("no message {id} in the queue")));
    }
    c.registry()
        .poll_ack(&c.actor(), id)
        .map_err(from_registry)?;
    let rest: Vec<_> = q.iter().filter(|e| e.seq > id).collect();
    let mut o = Out::done();
    o.msg_q = Some(Box::new(match rest.first() {
        Some(n) => MsgQ {
            count: rest.len(),
            id: n.seq,
            head: None,
        },
        None => MsgQ {
            count: 0,
            id,
            head: None,
        },
    }));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{create_domain, run, Kit};

    #[test]
    fn req_shows_the_head_and_ack_dequeues_it() {
        let k = Kit::new();
        let mut a = k.session("A");
        run(&mut a, r#"<poll op="req"/>"#).expect(1300);
        create_domain(&mut a, "polled.ru", "CA").expect(1000);
        create_domain(&mut a, "polled2.ru", "CA").expect(1000);
        let r = run(&mut a, r#"<poll op="req"/>"#).expect(1301);
        let q = r.msg_q().unwrap();
        let count: usize = q.attr("count").unwrap().parse().unwrap();
        assert!(count >= 2, "{}", r.text);
        let id = q.attr("id").unwrap().to_string();
        assert_eq!(
            q.text_of(super::super::xml::EPP_NS, "qDate"),
            Some("2026-06-01T10:00:00Z")
        );
        assert!(q
            .text_of(super::super::xml::EPP_NS, "msg")
            .unwrap()
            .starts_with("polled.ru: "));
        run(&mut a, r#"<poll op="ack" msgID="999999"/>"#).expect(2303);
        run(&mut a, r#"<poll op="ack"/>"#).expect(2003);
        let r = run(&mut a, &format!(r#"<poll op="ack" msgID="{id}"/>"#)).expect(1000);
        let left: usize = r.msg_q().unwrap().attr("count").unwrap().parse().unwrap();
        assert_eq!(left, count - 1);
        // B's queue is its own.
        run(&mut k.session("B"), r#"<poll op="req"/>"#).expect(1300);
        run(&mut a, r#"<poll op="peek"/>"#).expect(2005);
    }
}

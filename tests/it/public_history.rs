//! The dashboard and every registrar's change feed show history through
//! the one public projection (`public::history` / `public::event_reason`):
//! no operator notes, no contact handles, nothing from an earlier
//! registration of the name. Every private field is filled with a unique
//! marker; none may appear.

use crate::support;
use serde_json::json;
use support::api::{send, token, Server};
use zonekeeper::clock::Clock;
use zonekeeper::lifecycle::{self, Operation};
use zonekeeper::model::{Contact, ContactKind};
use zonekeeper::registry::Actor;

const REGRU: &str = "REGRU-RU";

fn person(s: &Server, handle: &str) -> Contact {
    let mut c: Contact = s.store().contact("C1-RU").unwrap().unwrap();
    c.handle = handle.into();
    c.kind = ContactKind::Person;
    c.name = Some(format!("{handle}-NAME"));
    c.org = None;
    c.email = Some(format!("{}@example.ru", handle.to_lowercase()));
    c.tax_id = Some(format!("{handle}-TAXID"));
    c.passport = Some(format!("{handle}-PASSPORT"));
    c.birth_date = Some("1980-01-01".into());
    c.disclose = Vec::new();
    c.sponsor = Some(REGRU.into());
    c
}

/// A fixture domain of REGRU-RU whose registrant may change now.
fn changeable(s: &Server, skip: usize) -> String {
    let now = s.clock.now();
    s.domains_of(REGRU, 1000)
        .into_iter()
        .filter(|n| {
            let d = s.store().domain(n).unwrap().unwrap();
            let st = lifecycle::evaluate(&d, now, &s.app.config().lifecycle);
            st.exists()
                && !st.dispute
                && st.blocks.is_empty()
                && lifecycle::permits(&st, Operation::ChangeRegistrant).is_ok()
                && lifecycle::permits(&st, Operation::Close).is_ok()
        })
        .nth(skip)
        .expect("a fixture domain")
}

#[tokio::test]
async fn dashboard_and_feeds_show_only_public_history() {
    let s = Server::start(|_| {}).await;
    let now = s.clock.now();
    let batch = zonekeeper::store::ImportBatch {
        contacts: vec![
            person(&s, "PMARK-P1"),
            person(&s, "PMARK-P2"),
            person(&s, "PMARK-P3"),
        ],
        ..Default::default()
    };
    zonekeeper::import::apply(s.store(), &batch, s.app.config(), now).unwrap();
    let me = Actor::Registrar(REGRU.into());
    let (d1, d2) = (changeable(&s, 0), changeable(&s, 1));
    {
        let reg = s.app.registry();
        // A registrant change to a private person, and one requested and
        // left to lapse.
        reg.registrant_change_request(&me, &d1, "PMARK-P1").unwrap();
        reg.registrant_change_accept(&me, &d1).unwrap();
        // Operator notes.
        reg.dispute_lock(&Actor::Operator, &d1, "OPMARK-DISPUTE-NOTE")
            .unwrap();
        reg.dispute_unlock(&Actor::Operator, &d1, "claim dismissed")
            .unwrap();
        reg.hold(&Actor::Operator, &d1, "OPMARK-HOLD-NOTE").unwrap();
        reg.release(&Actor::Operator, &d1).unwrap();
        // The earlier registration of d2: a registrant change request,
        // then a court cancellation for a claimant.
        reg.registrant_change_request(&me, &d2, "PMARK-P3").unwrap();
        reg.court_cancel(&Actor::Operator, &d2, "PMARK-P2").unwrap();
    }
    // The claimant registers the name again (a new registration).
    s.clock.advance(std::time::Duration::from_secs(60));
    let (st, v) = send(
        s.http
            .post(s.url("/api/v1/domains"))
            .bearer_auth(token(REGRU))
            .json(&json!({"name": d2, "registrant": "PMARK-P2"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    let markers = ["PMARK", "OPMARK"];
    // The dashboard pages of both names, and the overview.
    for path in [
        format!("/domains/{d1}"),
        format!("/domains/{d2}"),
        "/".into(),
    ] {
        let res = s.http.get(s.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let html = res.text().await.unwrap();
        for m in markers {
            assert!(!html.contains(m), "{path} shows {m}:\n{html}");
        }
        if path.ends_with(&d1) {
            // What happened is still told, without the private parts.
            for t in ["registrant changed", "dispute lock placed", "hold placed"] {
                assert!(html.contains(t), "{path} lacks '{t}'");
            }
        }
        if path.ends_with(&d2) {
            // Nothing of the earlier registration.
            assert!(!html.contains("court decision"), "{html}");
            assert!(!html.contains("registrant change"), "{html}");
            assert!(html.contains("registered by"), "{html}");
        }
    }
    // Every registrar's change feed.
    for r in s.store().registrars().unwrap() {
        // All of it, page by page.
        let mut text = String::new();
        let mut after = 0u64;
        loop {
            let path = format!("/api/v1/events?after={after}");
            let (st, f) = send(s.get(&path, Some(&token(&r.handle)))).await;
            assert_eq!(st, 200, "{f}");
            if f["events"].as_array().unwrap().is_empty() {
                break;
            }
            text.push_str(&f.to_string());
            after = f["next_cursor"].as_str().unwrap().parse().unwrap();
        }
        for m in markers {
            assert!(!text.contains(m), "{}'s feed shows {m}: {text}", r.handle);
        }
        if r.handle == REGRU {
            for t in [
                "registrant changed",
                "cancelled by court decision",
                "hold placed",
            ] {
                assert!(text.contains(t), "the feed lacks '{t}'");
            }
        }
    }
}

#[test]
fn the_projection_drops_private_parts() {
    use zonekeeper::public::event_reason;
    for (raw, public) in [
        ("hold: OPMARK", "hold placed"),
        ("dispute lock: OPMARK", "dispute lock placed"),
        (
            "registrant changed PMARK-1 -> PMARK-2 (both sides consented)",
            "registrant changed (both sides consented)",
        ),
        (
            "registrant change to PMARK-2 requested by the registrant",
            "registrant change requested by the registrant",
        ),
        (
            "registrant change to PMARK-2 lapsed (not accepted)",
            "registrant change lapsed (not accepted)",
        ),
        (
            "cancelled by court decision; reserved for PMARK-3 until 2027-01-01T00:00:00+00:00",
            "cancelled by court decision",
        ),
        ("contacts updated", "contacts updated"),
    ] {
        assert_eq!(event_reason(raw), public);
    }
}

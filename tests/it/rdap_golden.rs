//! Golden RDAP responses: a domain, an IDN domain, a nameserver, entities
//! and a search, compared with `tests/golden/rdap/*.json`. Run with
//! `UPDATE_GOLDEN=1` to rewrite them after an intended change.

use crate::support;
use serde_json::Value;

/// Replace times that depend on when the store was loaded.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let import_time = matches!(
                m.get("eventAction").and_then(|a| a.as_str()),
                Some("last update of RDAP database" | "last changed")
            );
            if import_time {
                m.insert("eventDate".into(), Value::String("<import time>".into()));
            }
            m.values_mut().for_each(normalise);
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

#[tokio::test]
async fn golden_responses() {
    let s = support::rdap::fixture(|c| {
        c.rdap.base_url = Some("https://rdap.example/rdap/".into());
        c.rdap.search_limit = 3;
    })
    .await;
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for (file, path) in [
        ("domain", "domain/deldom1.ru"),
        ("domain_idn_org", "domain/соксад3.рф"),
        ("domain_hold", "domain/solkazen7.ru"),
        ("nameserver", "nameserver/ns2.deldom1.ru"),
        ("entity_registrar", "entity/REGRU-RU"),
        ("entity_person", "entity/C1-RU"),
        ("entity_org", "entity/C0-RU"),
        ("search_domains", "domains?name=ba*"),
        ("search_entities", "entities?fn=registrar*"),
        ("error_404", "domain/nosuch.ru"),
    ] {
        let g = support::rdap::get(&format!("{}{path}", s.base)).await;
        let mut v = g.json();
        normalise(&mut v);
        let got = serde_json::to_string_pretty(&v).unwrap() + "\n";
        let p = format!("tests/golden/rdap/{file}.json");
        if update {
            std::fs::write(&p, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e} (run with UPDATE_GOLDEN=1)"));
        if want != got {
            mismatched.push(format!("{p}:\n{got}"));
        }
    }
    assert!(
        mismatched.is_empty(),
        "responses differ from golden files (UPDATE_GOLDEN=1 rewrites):\n{}",
        mismatched.join("\n")
    );
}

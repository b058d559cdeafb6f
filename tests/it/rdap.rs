//! RDAP over HTTP: every route and error against a real server on loopback.

use crate::support;
use serde_json::Value;
use support::rdap::{fixture, get, send, statuses, Got};

fn assert_rdap_headers(g: &Got) {
    assert_eq!(
        g.header("content-type"),
        "application/rdap+json",
        "{}",
        g.text
    );
    assert_eq!(g.header("access-control-allow-origin"), "*");
}

/// `rdapConformance` appears at the top level only.
fn assert_conformance_top_only(v: &Value) {
    let c = v["rdapConformance"].as_array().expect("rdapConformance");
    assert!(c.iter().any(|x| x == "rdap_level_0"));
    fn walk(v: &Value, depth: usize) {
        match v {
            Value::Object(m) => {
                if depth > 0 {
                    assert!(!m.contains_key("rdapConformance"), "nested rdapConformance");
                }
                m.values().for_each(|x| walk(x, depth + 1));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1)),
            _ => {}
        }
    }
    walk(v, 0);
}

fn event<'a>(v: &'a Value, action: &str) -> Option<&'a str> {
    v["events"]
        .as_array()?
        .iter()
        .find(|e| e["eventAction"] == action)?["eventDate"]
        .as_str()
}

fn entity<'a>(v: &'a Value, role: &str) -> &'a Value {
    v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["roles"].as_array().unwrap().iter().any(|r| r == role))
        .unwrap_or_else(|| panic!("no {role} entity"))
}

fn vcard_prop<'a>(e: &'a Value, prop: &str) -> Option<&'a Value> {
    e["vcardArray"][1]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == prop)
}

#[tokio::test]
async fn domain_lookup() {
    let s = fixture(|_| {}).await;
    let g = get(&format!("{}domain/deldom1.ru", s.base)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_rdap_headers(&g);
    let v = g.json();
    assert_conformance_top_only(&v);
    assert_eq!(v["objectClassName"], "domain");
    assert_eq!(v["ldhName"], "deldom1.ru");
    assert_eq!(v["handle"], "deldom1.ru");
    assert!(v.get("unicodeName").is_none());
    assert_eq!(v["links"][0]["rel"], "self");
    assert_eq!(
        v["links"][0]["href"],
        format!("{}domain/deldom1.ru", s.base)
    );
    assert_eq!(v["notices"][0]["title"], "Terms of Service");
    assert_eq!(event(&v, "registration"), Some("2016-02-02T10:00:00Z"));
    assert_eq!(event(&v, "expiration"), Some("2027-02-02T10:00:00Z"));
    assert_eq!(event(&v, "last changed"), Some("2026-11-20T12:00:00Z"));
    assert_eq!(
        event(&v, "last update of RDAP database"),
        Some("2026-11-20T12:00:00Z")
    );
    // Declared, under test: not in the zone yet.
    let st = statuses(&v);
    assert!(
        st.contains(&"inactive".into()) && st.contains(&"pending update".into()),
        "{st:?}"
    );
    // Glue addresses on embedded nameservers.
    let ns = v["nameservers"].as_array().unwrap();
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[1]["ldhName"], "ns2.deldom1.ru");
    assert_eq!(ns[1]["ipAddresses"]["v4"][0], "198.51.100.1");
    assert_eq!(ns[1]["ipAddresses"]["v6"][0], "2001:db8::2");
    // The registrar, and a private person (C1, in all three roles): one
    // entity per role, without its handle or a link to look it up.
    let reg = entity(&v, "registrar");
    assert_eq!(reg["handle"], "RUCENTER-RU");
    let c = entity(&v, "registrant");
    assert!(c.get("handle").is_none(), "{c}");
    assert!(c.get("links").is_none(), "{c}");
    assert_eq!(c["roles"], serde_json::json!(["registrant"]));
    assert!(
        !g.text.contains("C1-RU"),
        "a private person's handle leaked"
    );
    assert_eq!(v["secureDNS"]["delegationSigned"], false);
    // C1 is a person who disclosed only the email.
    assert_eq!(vcard_prop(c, "fn").unwrap()[3], "");
    assert_eq!(vcard_prop(c, "email").unwrap()[3], "c1@mail.example");
    assert!(vcard_prop(c, "tel").is_none());
    let red = v["redacted"].as_array().unwrap();
    let names: Vec<&str> = red
        .iter()
        .map(|r| {
            r["name"]["type"]
                .as_str()
                .or(r["name"]["description"].as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(
        names[..4],
        [
            "Registry Registrant ID",
            "Registrant Name",
            "Registrant Phone",
            "Registrant Address"
        ]
    );
    assert_eq!(names.len(), 12, "{names:?}");
    assert_eq!(red[0]["method"], "removal");
    assert_eq!(
        red[0]["prePath"],
        "$.entities[?(@.roles[0]=='registrant')].handle"
    );
    assert_eq!(red[1]["method"], "emptyValue");
    assert_eq!(
        red[1]["postPath"],
        "$.entities[?(@.roles[0]=='registrant')].vcardArray[1][?(@[0]=='fn')][3]"
    );
    assert_eq!(red[2]["method"], "removal");
    assert_eq!(red[2]["pathLang"], "jsonpath");
    assert_eq!(
        red[2]["prePath"],
        "$.entities[?(@.roles[0]=='registrant')].vcardArray[1][?(@[0]=='tel')]"
    );
    assert!(red[2]["reason"]["description"].is_string());
}

#[tokio::test]
async fn domain_idn_case_and_accept() {
    let s = fixture(|_| {}).await;
    let u = get(&format!("{}domain/СОКСАД3.РФ", s.base)).await;
    assert_eq!(u.status, 200, "{}", u.text);
    let v = u.json();
    let ldh = v["ldhName"].as_str().unwrap().to_string();
    assert!(
        ldh.starts_with("xn--") && ldh.ends_with(".xn--p1ai"),
        "{ldh}"
    );
    assert_eq!(v["unicodeName"], "соксад3.рф");
    // The A-label form finds the same object.
    let a = get(&format!("{}domain/{ldh}", s.base)).await;
    assert_eq!(a.json()["unicodeName"], "соксад3.рф");
    // Trailing dot and upper case are normalised.
    assert_eq!(
        get(&format!("{}domain/DELDOM1.RU.", s.base)).await.status,
        200
    );
    // Any Accept gets application/rdap+json.
    let c = reqwest::Client::new();
    for accept in ["application/json", "application/rdap+json", "text/html"] {
        let g = send(
            c.get(format!("{}domain/deldom1.ru", s.base))
                .header("accept", accept),
        )
        .await;
        assert_eq!(g.status, 200);
        assert_rdap_headers(&g);
    }
}

#[tokio::test]
async fn domain_statuses() {
    let s = fixture(|_| {}).await;
    let st = |n: &'static str| {
        let b = s.base.clone();
        async move { statuses(&get(&format!("{b}domain/{n}")).await.json()) }
    };
    let hold = st("solkazen7.ru").await;
    for x in [
        "inactive",
        "server hold",
        "server transfer prohibited",
        "server update prohibited",
    ] {
        assert!(hold.contains(&x.to_string()), "{hold:?}");
    }
    // Verification requested 2026-11-01, overdue on 2026-11-20: suspended.
    let ver = st("prokami9.ru").await;
    assert!(ver.contains(&"server hold".to_string()), "{ver:?}");
    // Transferred recently: transfer lock.
    let d = get(&format!("{}domain/zenkator11.ru", s.base)).await.json();
    assert!(event(&d, "registration").is_some());
    // Past paid_till within grace: redemption period; after the grace: 404.
    let last = s.clone_time_to_expiry("findomsky0.ru", 5).await;
    let exp = statuses(&get(&format!("{}domain/findomsky0.ru", s.base)).await.json());
    assert!(
        exp.contains(&"redemption period".to_string()),
        "{exp:?} at {last}"
    );
    assert!(exp.contains(&"pending delete".to_string()), "{exp:?}");
    s.clock.advance(std::time::Duration::from_secs(40 * 86400));
    let gone = get(&format!("{}domain/findomsky0.ru", s.base)).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.json()["errorCode"], 404);
}

trait Expire {
    async fn clone_time_to_expiry(&self, name: &str, days_after: i64) -> String;
}

impl Expire for support::rdap::Server {
    /// Move the clock to `days_after` days past the domain's `paid_till`.
    async fn clone_time_to_expiry(&self, name: &str, days_after: i64) -> String {
        let d = get(&format!("{}domain/{name}", self.base)).await.json();
        let exp: chrono::DateTime<chrono::Utc> = event(&d, "expiration").unwrap().parse().unwrap();
        let t = exp + chrono::Duration::days(days_after);
        self.clock.set(t);
        t.to_rfc3339()
    }
}

#[tokio::test]
async fn domain_errors() {
    let s = fixture(|_| {}).await;
    for (path, code) in [
        ("domain/nosuchname.ru", 404),
        ("domain/example.com", 404),
        ("domain/www.deldom1.ru", 404),
        ("domain/-bad-.ru", 400),
        ("domain/a%20b.ru", 400),
        ("domain/%FF%FE.ru", 400),
        ("domain/xn--zz.ru", 400),
        ("domain/", 501),
        ("autnum/12345", 501),
        ("ip/192.0.2.1", 501),
        ("", 501),
        ("nonsense/x/y", 501),
    ] {
        let url = match path {
            "" => s.base.trim_end_matches('/').to_string(),
            "/" => s.base.clone(),
            p => format!("{}{p}", s.base),
        };
        let g = get(&url).await;
        assert_eq!(g.status, code, "{url}: {}", g.text);
        assert_rdap_headers(&g);
        let v = g.json();
        assert_eq!(v["errorCode"], code, "{path}");
        assert!(
            v["title"].is_string() && v["description"].is_array(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn head_and_methods() {
    let s = fixture(|_| {}).await;
    let c = reqwest::Client::new();
    let h = send(c.head(format!("{}domain/deldom1.ru", s.base))).await;
    assert_eq!(h.status, 200);
    assert!(h.text.is_empty());
    assert_rdap_headers(&h);
    let h = send(c.head(format!("{}domain/nosuch.ru", s.base))).await;
    assert_eq!(h.status, 404);
    assert!(h.text.is_empty());
    for m in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        for path in ["domain/deldom1.ru", "help", "whatever"] {
            let g = send(c.request(m.clone(), format!("{}{path}", s.base))).await;
            assert_eq!(g.status, 405, "{m} {path}");
            assert_rdap_headers(&g);
            assert_eq!(g.json()["errorCode"], 405);
            assert_eq!(g.header("allow"), "GET, HEAD");
        }
    }
}

#[tokio::test]
async fn nameserver_lookup() {
    let s = fixture(|_| {}).await;
    let g = get(&format!("{}nameserver/NS2.deldom1.ru", s.base)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_rdap_headers(&g);
    let v = g.json();
    assert_conformance_top_only(&v);
    assert_eq!(v["objectClassName"], "nameserver");
    assert_eq!(v["ldhName"], "ns2.deldom1.ru");
    assert_eq!(v["ipAddresses"]["v4"], serde_json::json!(["198.51.100.1"]));
    assert_eq!(v["ipAddresses"]["v6"], serde_json::json!(["2001:db8::2"]));
    assert!(event(&v, "last update of RDAP database").is_some());
    let g = get(&format!("{}nameserver/ns1.hosting0.example", s.base)).await;
    assert_eq!(g.status, 200);
    assert!(g.json().get("ipAddresses").is_none());
    assert_eq!(
        get(&format!("{}nameserver/ns9.nowhere.example", s.base))
            .await
            .status,
        404
    );
    assert_eq!(
        get(&format!("{}nameserver/bad_name!", s.base)).await.status,
        400
    );
    assert_eq!(
        get(&format!("{}nameserver/single", s.base)).await.status,
        400
    );
}

#[tokio::test]
async fn entity_lookup() {
    let s = fixture(|_| {}).await;
    let g = get(&format!("{}entity/REGRU-RU", s.base)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_rdap_headers(&g);
    let v = g.json();
    assert_conformance_top_only(&v);
    assert_eq!(v["objectClassName"], "entity");
    assert_eq!(v["roles"], serde_json::json!(["registrar"]));
    assert_eq!(vcard_prop(&v, "fn").unwrap()[3], "Registrar REGRU-RU LLC");
    assert!(!g.text.contains("df0d4ee5d8b8b664"), "token hash leaked");
    // An organisation with nothing disclosed: org name shown, rest redacted.
    let v = get(&format!("{}entity/C0-RU", s.base)).await.json();
    assert_eq!(vcard_prop(&v, "fn").unwrap()[3], "OOO Company 0");
    assert_eq!(vcard_prop(&v, "kind").unwrap()[3], "org");
    assert!(vcard_prop(&v, "email").is_none());
    let red = v["redacted"].as_array().unwrap();
    assert_eq!(red.len(), 4, "{red:?}");
    // The contact person's name of an organisation has no jCard place: no path.
    assert_eq!(red[0]["name"]["description"], "Contact Name");
    assert_eq!(red[0]["method"], "removal");
    assert!(red[0].get("prePath").is_none());
    assert_eq!(red[1]["prePath"], "$.vcardArray[1][?(@[0]=='email')]");
    // Everything disclosed: no redaction member.
    let v = get(&format!("{}entity/C3-RU", s.base)).await.json();
    assert!(v.get("redacted").is_none());
    assert_eq!(vcard_prop(&v, "adr").unwrap()[3][3], "Moscow");
    assert_eq!(get(&format!("{}entity/NOPE-RU", s.base)).await.status, 404);
    // A private person's handle: as unknown as a handle that does not exist.
    let p = get(&format!("{}entity/C1-RU", s.base)).await;
    assert_eq!(p.status, 404);
    assert!(!p.text.contains("Petrov"), "{}", p.text);
    assert_eq!(get(&format!("{}entity/a%20b", s.base)).await.status, 400);
}

#[tokio::test]
async fn help_and_base_url() {
    let s = fixture(|_| {}).await;
    let g = get(&format!("{}help", s.base)).await;
    assert_eq!(g.status, 200);
    assert_rdap_headers(&g);
    let v = g.json();
    assert_conformance_top_only(&v);
    assert!(v["notices"][0]["description"].as_array().unwrap().len() >= 2);
    assert_eq!(
        v["reverse_search_properties"].as_array().map(|a| a.len()),
        None
    );
    assert_eq!(v["reverseSearchProperties"][1]["property"], "handle");
    // A configured base URL wins over the Host header.
    let s2 = fixture(|c| c.rdap.base_url = Some("https://rdap.example/rdap".into())).await;
    let v = get(&format!("{}domain/deldom1.ru", s2.base)).await.json();
    assert_eq!(
        v["links"][0]["href"],
        "https://rdap.example/rdap/domain/deldom1.ru"
    );
    // Without one, links come from the listen address, never from a Host
    // header a client made up.
    let raw = raw_get(s.addr, "/rdap/domain/deldom1.ru", "evil.example").await;
    assert!(!raw.contains("evil.example"), "{raw}");
    assert!(
        raw.contains(&format!("http://{}/rdap/domain/deldom1.ru", s.addr)),
        "{raw}"
    );
}

fn names(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

fn truncated(v: &Value) -> bool {
    v["notices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["title"] == "Search results truncated")
}

#[tokio::test]
async fn domain_searches() {
    let s = fixture(|c| c.rdap.search_limit = 5).await;
    let g = get(&format!("{}domains?name=ba*", s.base)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_rdap_headers(&g);
    let v = g.json();
    assert_conformance_top_only(&v);
    let n = names(&v, "domainSearchResults", "ldhName");
    assert_eq!(
        n,
        [
            "babaser147.ru",
            "badom115.ru",
            "bamarnet196.ru",
            "bamarzen232.ru",
            "bamidel5.ru"
        ]
    );
    assert!(truncated(&v));
    // Redaction paths point into the result array.
    let red = v["redacted"].as_array().unwrap();
    assert!(red
        .iter()
        .filter_map(|r| r["prePath"].as_str().or(r["postPath"].as_str()))
        .all(|p| p.starts_with("$.domainSearchResults[")));
    let v = get(&format!("{}domains?name=bamidel*", s.base))
        .await
        .json();
    assert_eq!(names(&v, "domainSearchResults", "ldhName"), ["bamidel5.ru"]);
    assert!(!truncated(&v));
    let v = get(&format!("{}domains?name=СОКСАД3.рф", s.base))
        .await
        .json();
    assert_eq!(
        names(&v, "domainSearchResults", "unicodeName"),
        ["соксад3.рф"]
    );
    let v = get(&format!("{}domains?name=nosuch.ru", s.base))
        .await
        .json();
    assert_eq!(v["domainSearchResults"], serde_json::json!([]));
    let v = get(&format!("{}domains?nsLdhName=ns1.deldom1.ru", s.base))
        .await
        .json();
    assert_eq!(names(&v, "domainSearchResults", "ldhName"), ["deldom1.ru"]);
    let v = get(&format!("{}domains?nsIp=2001:db8::2", s.base))
        .await
        .json();
    assert_eq!(names(&v, "domainSearchResults", "ldhName"), ["deldom1.ru"]);
    let v = get(&format!("{}domains?nsLdhName=ns1.hosting0.example", s.base))
        .await
        .json();
    assert_eq!(names(&v, "domainSearchResults", "ldhName").len(), 5);
    assert!(truncated(&v));
    for (q, code) in [
        ("domains?name=*", 422),
        ("domains?name=b*", 422),
        ("domains?name=b*a*", 422),
        ("domains?name=*.ru", 422),
        ("domains?name=сок*", 422),
        ("domains?name=example.com", 422),
        ("domains?name=ba_*", 400),
        ("domains?name=", 400),
        ("domains", 400),
        ("domains?name=ba*&name=bb*", 400),
        ("domains?nsIp=not-an-ip", 400),
        ("domains?nsLdhName=bad..name", 400),
        ("domains?registrant=x", 501),
        // Invalid UTF-8 decodes to U+FFFD: a (partial) U-label.
        ("domains?name=%FF*", 422),
    ] {
        let g = get(&format!("{}{q}", s.base)).await;
        assert_eq!(g.status, code, "{q}: {}", g.text);
        assert_rdap_headers(&g);
        assert_eq!(g.json()["errorCode"], code);
    }
}

#[tokio::test]
async fn nameserver_and_entity_searches() {
    let s = fixture(|c| c.rdap.search_limit = 3).await;
    let v = get(&format!("{}nameservers?name=ns1.*", s.base))
        .await
        .json();
    assert_eq!(names(&v, "nameserverSearchResults", "ldhName").len(), 3);
    assert!(truncated(&v));
    let v = get(&format!("{}nameservers?name=ns2.deldom1.ru", s.base))
        .await
        .json();
    assert_eq!(
        names(&v, "nameserverSearchResults", "ldhName"),
        ["ns2.deldom1.ru"]
    );
    let v = get(&format!("{}nameservers?ip=2001:db8::2", s.base))
        .await
        .json();
    assert_eq!(
        names(&v, "nameserverSearchResults", "ldhName"),
        ["ns2.deldom1.ru"]
    );
    let v = get(&format!("{}nameservers?ip=198.51.100.1", s.base))
        .await
        .json();
    assert_eq!(names(&v, "nameserverSearchResults", "ldhName").len(), 3);
    assert!(truncated(&v));
    assert_eq!(
        get(&format!("{}nameservers?ip=300.1.1.1", s.base))
            .await
            .status,
        400
    );
    assert_eq!(
        get(&format!("{}nameservers?foo=1", s.base)).await.status,
        501
    );

    let v = get(&format!("{}entities?handle=REGRU*", s.base))
        .await
        .json();
    assert_eq!(names(&v, "entitySearchResults", "handle"), ["REGRU-RU"]);
    // A private person's handle finds nothing, exact or partial; an
    // organisation's does.
    for q in ["C1-RU", "C1*", "C1-R*"] {
        let v = get(&format!("{}entities?handle={q}", s.base)).await.json();
        assert!(
            !names(&v, "entitySearchResults", "handle").contains(&"C1-RU".to_string()),
            "{q}: {v}"
        );
    }
    let v = get(&format!("{}entities?handle=C0-RU", s.base))
        .await
        .json();
    assert_eq!(names(&v, "entitySearchResults", "handle"), ["C0-RU"]);
    assert!(v["redacted"][1]["prePath"]
        .as_str()
        .unwrap()
        .starts_with("$.entitySearchResults[0]."));
    let v = get(&format!("{}entities?fn=registrar*", s.base))
        .await
        .json();
    assert_eq!(names(&v, "entitySearchResults", "handle").len(), 3);
    assert!(truncated(&v));
    let v = get(&format!("{}entities?fn=OOO Company 0", s.base))
        .await
        .json();
    assert_eq!(names(&v, "entitySearchResults", "handle"), ["C0-RU"]);
    // Private names are not searchable: C0's person name, C1's name.
    for q in ["fn=Ivan*", "fn=Olga Petrov", "fn=olga*"] {
        let v = get(&format!("{}entities?{q}", s.base)).await.json();
        assert_eq!(v["entitySearchResults"], serde_json::json!([]), "{q}");
    }
    // Nor are persons at all, even with a disclosed name: their entity
    // would carry their identity (only domains show them, without handle).
    let v = get(&format!("{}entities?fn=Pavel Petrov", s.base))
        .await
        .json();
    assert_eq!(v["entitySearchResults"], serde_json::json!([]));
    assert_eq!(get(&format!("{}entities?fn=*", s.base)).await.status, 422);
    assert_eq!(
        get(&format!("{}entities?email=x", s.base)).await.status,
        501
    );
}

#[tokio::test]
async fn reverse_search() {
    let s = fixture(|c| c.rdap.search_limit = 50).await;
    // A private person's handle reveals nothing; an organisation's finds
    // its domains.
    for q in ["handle=C1-RU&role=registrant", "handle=C1-RU", "handle=C1*"] {
        let v = get(&format!("{}domains/reverse_search/entity?{q}", s.base))
            .await
            .json();
        let n = names(&v, "domainSearchResults", "ldhName");
        assert!(!n.contains(&"deldom1.ru".to_string()), "{q}: {n:?}");
    }
    let v = get(&format!(
        "{}domains/reverse_search/entity?handle=C0-RU&role=registrant",
        s.base
    ))
    .await
    .json();
    let n = names(&v, "domainSearchResults", "ldhName");
    assert!(n.contains(&"findomsky0.ru".to_string()), "{n:?}");
    let v = get(&format!(
        "{}domains/reverse_search/entity?handle=NAUNET-RU&role=registrar",
        s.base
    ))
    .await
    .json();
    assert!(!names(&v, "domainSearchResults", "ldhName").is_empty());
    let v = get(&format!(
        "{}domains/reverse_search/entity?handle=NAUNET-RU&role=registrant",
        s.base
    ))
    .await
    .json();
    assert!(names(&v, "domainSearchResults", "ldhName").is_empty());
    // Reverse search by a withheld name finds nothing.
    let v = get(&format!("{}domains/reverse_search/entity?fn=Olga*", s.base))
        .await
        .json();
    assert!(names(&v, "domainSearchResults", "ldhName").is_empty());
    assert_eq!(
        get(&format!(
            "{}domains/reverse_search/entity?handle=C1-RU&role=owner",
            s.base
        ))
        .await
        .status,
        422
    );
    assert_eq!(
        get(&format!("{}domains/reverse_search/entity?email=x", s.base))
            .await
            .status,
        501
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after() {
    let s = fixture(|c| {
        c.rdap.rate_limit_per_minute = 3;
        c.rdap.rate_limit_exempt = vec![];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(get(&format!("{}help", s.base)).await.status, 200);
    }
    let g = get(&format!("{}domain/deldom1.ru", s.base)).await;
    assert_eq!(g.status, 429, "{}", g.text);
    assert_rdap_headers(&g);
    assert_eq!(g.json()["errorCode"], 429);
    let secs: u64 = g.header("retry-after").parse().unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    // Loopback exempted: never limited.
    let s = fixture(|c| {
        c.rdap.rate_limit_per_minute = 1;
        c.rdap.rate_limit_exempt = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..5 {
        assert_eq!(get(&format!("{}help", s.base)).await.status, 200);
    }
}

/// A GET with a Host header of our choosing.
async fn raw_get(addr: std::net::SocketAddr, path: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

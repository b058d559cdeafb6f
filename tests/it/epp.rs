//! The EPP server end to end with a client this project did not write:
//! Perl's `Net::EPP::Client` over real TLS with client certificates on
//! loopback, against the fixture registry, with a manual clock. A
//! registrar's day, the refusals, hostile frames; WHOIS (the real `whois`
//! client) and RDAP show the changes.

use crate::support;
use std::sync::Arc;

use support::api::Server;
use support::epp::{certs, code, command, login, Certs, Client, CONTACT, DOMAIN, HOST};
use zonekeeper::clock::Clock;
use zonekeeper::config::Config;
use zonekeeper::lifecycle::{self, Operation};
use zonekeeper::registry::Actor;

pub(crate) const A: &str = "REGRU-RU";
pub(crate) const B: &str = "RUCENTER-RU";
pub(crate) const PW_A: &str = "correct horse battery staple";
pub(crate) const PW_B: &str = "another-registrar-password";

fn phc(pw: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"zonekeeper-test-salt").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub(crate) struct Env {
    pub(crate) s: Server,
    pub(crate) certs: Certs,
    pub(crate) port: u16,
    whois_port: u16,
    xsd: Option<std::path::PathBuf>,
}

pub(crate) async fn start(tweak: impl FnOnce(&mut Config)) -> Env {
    zonekeeper::metrics::install();
    let certs = certs(&[A, B, "unregistered"]);
    let s = Server::start(|c| {
        c.epp.max_sessions_per_registrar = 2;
        tweak(c)
    })
    .await;
    // The registrars' EPP credentials come with their records (import).
    let mut regs = Vec::new();
    for (h, pw, pem) in [(A, PW_A, &certs.clients[0]), (B, PW_B, &certs.clients[1])] {
        let mut r = s.store().registrar(h).unwrap().unwrap();
        r.epp_cert_sha256 = vec![pem.sha256.clone()];
        r.epp_password_hash = Some(phc(pw));
        regs.push(r);
    }
    let batch = zonekeeper::store::ImportBatch {
        registrars: regs,
        ..Default::default()
    };
    zonekeeper::import::apply(s.store(), &batch, s.app.config(), s.clock.now()).unwrap();
    // Start each registrar's message queue after the fixture's events.
    for h in [A, B] {
        if let Some(last) = s.store().feed(h, 0, 100_000).unwrap().last() {
            s.app
                .registry()
                .poll_ack(&Actor::Registrar(h.into()), last.seq)
                .unwrap();
        }
    }
    let mut epp_cfg = s.app.config().epp.clone();
    epp_cfg.cert = Some(certs.server.cert.clone());
    epp_cfg.key = Some(certs.server.key.clone());
    epp_cfg.client_ca = Some(certs.ca.clone());
    let tls = zonekeeper::epp::tls_config(&epp_cfg).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(zonekeeper::epp::serve(s.app.clone(), l, tls));
    let wl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let whois_port = wl.local_addr().unwrap().port();
    tokio::spawn(zonekeeper::whois::serve(s.app.clone(), wl));
    // The RFC schemas are not committed (see docs/epp.md): `EPP_XSD` names
    // a schema that imports them all; without it, no validation.
    Env {
        s,
        certs,
        port,
        whois_port,
        xsd: xsd(),
    }
}

/// The schema every request and answer is validated against, if any.
fn xsd() -> Option<std::path::PathBuf> {
    let xsd = std::env::var_os("EPP_XSD")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epp-xsd/all.xsd")
        });
    xsd.exists().then_some(xsd)
}

impl Env {
    /// A blocking client session (the Perl driver), on its own thread.
    pub(crate) fn client(&self, which: usize) -> Result<Client, String> {
        let pem = &self.certs.clients[which];
        Client::connect(self.port, &self.certs, pem, self.xsd.as_deref())
    }
    pub(crate) fn logged_in(&self, which: usize) -> Client {
        let mut c = self.client(which).unwrap();
        let (id, pw) = [(A, PW_A), (B, PW_B)][which];
        let r = c.cmd(&login(id, pw));
        assert_eq!(code(&r), 1000, "{r}");
        c
    }
    pub(crate) fn whois(&self, q: &str) -> String {
        let out = std::process::Command::new("whois")
            .args(["-h", "127.0.0.1", "-p", &self.whois_port.to_string(), q])
            .output()
            .expect("the whois client must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// A domain of `registrar` that a transfer's lock rules allow now.
    pub(crate) fn transferable(&self, registrar: &str, skip: usize) -> String {
        let now = self.s.clock.now();
        self.s
            .domains_of(registrar, 1000)
            .into_iter()
            .filter(|n| {
                let d = self.s.store().domain(n).unwrap().unwrap();
                let st = lifecycle::evaluate(&d, now, &self.s.app.config().lifecycle);
                st.exists()
                    && !st.dispute
                    && st.blocks.is_empty()
                    && lifecycle::permits(&st, Operation::Transfer).is_ok()
                    && lifecycle::permits(&st, Operation::Close).is_ok()
            })
            .nth(skip)
            .expect("a transferable fixture domain")
    }
}

pub(crate) fn domain_cmd(verb: &str, inner: &str) -> String {
    format!(r#"<{verb}><domain:{verb} xmlns:domain="{DOMAIN}">{inner}</domain:{verb}></{verb}>"#)
}

fn contact_cmd(verb: &str, inner: &str) -> String {
    format!(
        r#"<{verb}><contact:{verb} xmlns:contact="{CONTACT}">{inner}</contact:{verb}></{verb}>"#
    )
}

fn host_cmd(verb: &str, inner: &str) -> String {
    format!(r#"<{verb}><host:{verb} xmlns:host="{HOST}">{inner}</host:{verb}></{verb}>"#)
}

fn poll_req(c: &mut Client) -> String {
    c.cmd(r#"<poll op="req"/>"#)
}

/// Read every queued message (ack each); their texts.
pub(crate) fn drain(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let r = poll_req(c);
        if code(&r) == 1300 {
            return out;
        }
        assert_eq!(code(&r), 1301, "{r}");
        let id_at = r.find("<msgQ count=").unwrap();
        let id = r[id_at..]
            .split("id=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        out.push(r.clone());
        let a = c.cmd(&format!(r#"<poll op="ack" msgID="{id}"/>"#));
        assert_eq!(code(&a), 1000, "{a}");
    }
    panic!("the queue does not drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registrars_day_over_net_epp() {
    let env = Arc::new(start(|_| {}).await);
    if env.xsd.is_none() {
        // The RFC schemas are not committed; see docs/epp.md.
        eprintln!("note: no EPP_XSD: requests and answers are not schema-validated");
    }
    let e = env.clone();
    tokio::task::spawn_blocking(move || day(&e)).await.unwrap();
}

fn day(env: &Env) {
    let mut a = env.client(0).unwrap();
    assert!(a.greeting.contains("<greeting>"), "{}", a.greeting);
    assert!(a.greeting.contains(DOMAIN));
    assert!(a.greeting.contains(HOST), "host objects are announced");

    // Refusals at login: a command before it, the wrong password, the other
    // registrar's ID with this certificate.
    assert_eq!(
        code(&a.cmd(&domain_cmd("info", "<domain:name>x.ru</domain:name>"))),
        2002
    );
    let r = a.cmd(&login(A, "wrong password"));
    assert_eq!(code(&r), 2200, "{r}");
    assert_eq!(code(&a.cmd(&login(B, PW_B))), 2200);
    let r = a.cmd(&login(A, PW_A));
    assert_eq!(code(&r), 1000, "{r}");
    assert!(r.contains("<clTRID>TEST-"), "clTRID echoed: {r}");
    assert!(r.contains("<svTRID>ZK-"), "{r}");

    // Check.
    let taken = env.s.domains_of(A, 1)[0].clone();
    let r = a.cmd(&domain_cmd(
        "check",
        &format!("<domain:name>epp-day.ru</domain:name><domain:name>{taken}</domain:name>"),
    ));
    assert_eq!(code(&r), 1000, "{r}");
    assert!(
        r.contains(r#"<domain:name avail="1">epp-day.ru</domain:name>"#),
        "{r}"
    );
    assert!(
        r.contains(&format!(r#"<domain:name avail="0">{taken}</domain:name>"#)),
        "{r}"
    );

    // Contact create (disclose -> publication flags), check, info.
    let r = a.cmd(&contact_cmd(
        "create",
        r#"<contact:id>EPP-C1</contact:id><contact:postalInfo type="loc"><contact:name>Ivan Eppov</contact:name><contact:addr><contact:street>Tverskaya 7</contact:street><contact:city>Moscow</contact:city><contact:pc>125009</contact:pc><contact:cc>RU</contact:cc></contact:addr></contact:postalInfo><contact:voice>+7.4951112233</contact:voice><contact:email>ivan@epp.example</contact:email><contact:authInfo><contact:pw>x-contact-pw</contact:pw></contact:authInfo><contact:disclose flag="1"><contact:email/></contact:disclose>"#,
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let c = env.s.store().contact("EPP-C1").unwrap().unwrap();
    assert_eq!(c.sponsor.as_deref(), Some(A));
    assert_eq!(c.disclose, vec![zonekeeper::model::DiscloseField::Email]);
    let r = a.cmd(&contact_cmd(
        "check",
        "<contact:id>EPP-C1</contact:id><contact:id>EPP-NEW</contact:id>",
    ));
    assert!(
        r.contains(r#"<contact:id avail="0">EPP-C1</contact:id>"#),
        "{r}"
    );
    let r = a.cmd(&contact_cmd("info", "<contact:id>EPP-C1</contact:id>"));
    assert!(
        r.contains("Ivan Eppov") && r.contains("<contact:email/>"),
        "{r}"
    );
    // Its creation time is kept (schema 3).
    let created = env
        .s
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(
        r.contains(&format!("<contact:crDate>{created}</contact:crDate>")),
        "{r}"
    );
    // The text policy of import applies: a bidi override is refused.
    let r = a.cmd(&contact_cmd(
        "create",
        r#"<contact:id>EPP-BAD</contact:id><contact:postalInfo type="loc"><contact:name>Bad&#x202E;gnp.exe</contact:name><contact:addr><contact:city>Moscow</contact:city><contact:cc>RU</contact:cc></contact:addr></contact:postalInfo><contact:email>b@epp.example</contact:email><contact:authInfo><contact:pw>x-contact-pw</contact:pw></contact:authInfo>"#,
    ));
    assert_eq!(code(&r), 2306, "{r}");
    // A second contact, then delete it (nothing refers to it).
    let r = a.cmd(&contact_cmd(
        "create",
        r#"<contact:id>EPP-C2</contact:id><contact:postalInfo type="int"><contact:name>Olga Temp</contact:name><contact:addr><contact:city>Kazan</contact:city><contact:cc>RU</contact:cc></contact:addr></contact:postalInfo><contact:email>o@epp.example</contact:email><contact:authInfo><contact:pw>x-contact-pw</contact:pw></contact:authInfo>"#,
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let r = a.cmd(&contact_cmd(
        "update",
        r#"<contact:id>EPP-C2</contact:id><contact:chg><contact:email>olga@epp.example</contact:email></contact:chg>"#,
    ));
    assert_eq!(code(&r), 1000, "{r}");
    assert_eq!(
        env.s
            .store()
            .contact("EPP-C2")
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("olga@epp.example")
    );
    assert_eq!(
        code(&a.cmd(&contact_cmd("delete", "<contact:id>EPP-C2</contact:id>"))),
        1000
    );
    assert!(env.s.store().contact("EPP-C2").unwrap().is_none());

    // Create with nameservers (glue for the in-bailiwick one): the
    // delegation test starts, exactly as through the API.
    let r = a.cmd(&domain_cmd(
        "create",
        r#"<domain:name>epp-day.ru</domain:name><domain:period unit="y">1</domain:period><domain:ns><domain:hostAttr><domain:hostName>ns1.epp-day.ru</domain:hostName><domain:hostAddr ip="v4">192.0.2.53</domain:hostAddr></domain:hostAttr><domain:hostAttr><domain:hostName>ns2.example.net</domain:hostName></domain:hostAttr></domain:ns><domain:registrant>EPP-C1</domain:registrant><domain:contact type="admin">EPP-C1</domain:contact><domain:contact type="tech">EPP-C1</domain:contact><domain:authInfo><domain:pw>Epp-Day-Code-1</domain:pw></domain:authInfo>"#,
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let rec = env.s.store().delegation("epp-day.ru").unwrap().unwrap();
    assert_eq!(rec.state, zonekeeper::model::DelegationState::Testing);
    // The contact is in use now.
    let r = a.cmd(&contact_cmd("delete", "<contact:id>EPP-C1</contact:id>"));
    assert_eq!(code(&r), 2305, "{r}");
    assert!(r.contains("contact-in-use"), "{r}");
    // The same name again.
    let r = a.cmd(&domain_cmd(
        "create",
        r#"<domain:name>epp-day.ru</domain:name><domain:registrant>EPP-C1</domain:registrant><domain:authInfo><domain:pw>x1234-again</domain:pw></domain:authInfo>"#,
    ));
    assert_eq!(code(&r), 2302, "{r}");

    // Info: not in the zone yet (testing).
    let r = a.cmd(&domain_cmd("info", "<domain:name>epp-day.ru</domain:name>"));
    assert_eq!(code(&r), 1000, "{r}");
    assert!(r.contains(r#"<domain:status s="inactive"/>"#), "{r}");
    assert!(
        r.contains("<domain:hostName>ns1.epp-day.ru</domain:hostName>"),
        "{r}"
    );
    // The code is seen once, when it is set: info does not show it.
    assert!(!r.contains("<domain:pw>"), "{r}");

    // The registration is in the message queue.
    let msgs = drain(&mut a);
    assert!(
        msgs.iter()
            .any(|m| m.contains("epp-day.ru: registered by REGRU-RU")),
        "{msgs:?}"
    );

    // Update NS: replace the external server.
    let r = a.cmd(&domain_cmd(
        "update",
        r#"<domain:name>epp-day.ru</domain:name><domain:add><domain:ns><domain:hostAttr><domain:hostName>ns3.example.org</domain:hostName></domain:hostAttr></domain:ns></domain:add><domain:rem><domain:ns><domain:hostAttr><domain:hostName>ns2.example.net</domain:hostName></domain:hostAttr></domain:ns></domain:rem>"#,
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let d = env.s.store().domain("epp-day.ru").unwrap().unwrap();
    let ns: Vec<&str> = d.nameservers.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(ns.len(), 2);
    assert!(
        ns.contains(&"ns3.example.org") && !ns.contains(&"ns2.example.net"),
        "{ns:?}"
    );
    // secDNS: a DS set.
    let r = a.cmd(&domain_cmd("update", "<domain:name>epp-day.ru</domain:name>").replace(
            "</update>",
            r#"</update><extension><secDNS:update xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1"><secDNS:add><secDNS:dsData><secDNS:keyTag>12345</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2</secDNS:digestType><secDNS:digest>49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4F4F0A2D7F4A0E5C6B1D2E3F</secDNS:digest></secDNS:dsData></secDNS:add></secDNS:update></extension>"#
        )
    );
    assert_eq!(code(&r), 1000, "{r}");
    assert_eq!(
        env.s
            .store()
            .domain("epp-day.ru")
            .unwrap()
            .unwrap()
            .ds
            .len(),
        1
    );
    let r = a.cmd(&domain_cmd("info", "<domain:name>epp-day.ru</domain:name>"));
    assert!(r.contains("<secDNS:keyTag>12345</secDNS:keyTag>"), "{r}");

    // Renew.
    let exp = d.paid_till;
    let r = a.cmd(&domain_cmd(
        "renew",
        &format!(
            r#"<domain:name>epp-day.ru</domain:name><domain:curExpDate>{}</domain:curExpDate><domain:period unit="y">1</domain:period>"#,
            exp.date_naive()
        ),
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let d = env.s.store().domain("epp-day.ru").unwrap().unwrap();
    assert!(d.paid_till > exp);
    // A stale curExpDate is refused.
    let r = a.cmd(&domain_cmd(
        "renew",
        &format!(
            "<domain:name>epp-day.ru</domain:name><domain:curExpDate>{}</domain:curExpDate>",
            exp.date_naive()
        ),
    ));
    assert_eq!(code(&r), 2004, "{r}");

    // A locked domain: a new registration cannot change registrar yet.
    let mut b = env.logged_in(1);
    let r = b.cmd(&domain_cmd(
        "transfer",
        r#"<domain:name>epp-day.ru</domain:name><domain:authInfo><domain:pw>Epp-Day-Code-1</domain:pw></domain:authInfo>"#,
    ).replace("<transfer>", r#"<transfer op="request">"#));
    assert_eq!(code(&r), 2304, "{r}");
    assert!(r.contains("transfer-lock"), "{r}");

    // Transfer an older domain of A to B: A sets the code, B asks with a
    // wrong one, then the right one; A sees it queued and approves.
    let t1 = env.transferable(A, 0);
    let r = a.cmd(&domain_cmd(
        "update",
        &format!("<domain:name>{t1}</domain:name><domain:chg><domain:authInfo><domain:pw>Move-Me-2026</domain:pw></domain:authInfo></domain:chg>"),
    ));
    assert_eq!(code(&r), 1000, "{r}");
    let transfer = |c: &mut Client, op: &str, name: &str, pw: &str| {
        let auth = if pw.is_empty() {
            String::new()
        } else {
            format!("<domain:authInfo><domain:pw>{pw}</domain:pw></domain:authInfo>")
        };
        c.cmd(
            &domain_cmd(
                "transfer",
                &format!("<domain:name>{name}</domain:name>{auth}"),
            )
            .replace("<transfer>", &format!(r#"<transfer op="{op}">"#)),
        )
    };
    let r = transfer(&mut b, "request", &t1, "wrong-code");
    assert_eq!(code(&r), 2202, "{r}");
    assert!(r.contains("auth-code"), "{r}");
    let r = transfer(&mut b, "request", &t1, "Move-Me-2026");
    assert_eq!(code(&r), 1001, "{r}");
    assert!(
        r.contains("<domain:trStatus>pending</domain:trStatus>"),
        "{r}"
    );
    let r = transfer(&mut a, "query", &t1, "");
    assert_eq!(code(&r), 1000, "{r}");
    // Only the gaining registrar cancels; only the losing one approves.
    assert_eq!(code(&transfer(&mut a, "cancel", &t1, "")), 2201);
    assert_eq!(code(&transfer(&mut b, "approve", &t1, "")), 2201);
    let msgs = drain(&mut a);
    assert!(
        msgs.iter()
            .any(|m| m.contains("registrar change to RUCENTER-RU requested")),
        "{msgs:?}"
    );
    let r = transfer(&mut a, "approve", &t1, "");
    assert_eq!(code(&r), 1000, "{r}");
    assert!(r.contains("clientApproved"), "{r}");
    assert_eq!(env.s.store().domain(&t1).unwrap().unwrap().registrar, B);
    // Now it is another registrar's domain.
    let r = a.cmd(&domain_cmd(
        "update",
        &format!("<domain:name>{t1}</domain:name><domain:chg><domain:authInfo><domain:pw>Mine-Again-1</domain:pw></domain:authInfo></domain:chg>"),
    ));
    assert_eq!(code(&r), 2201, "{r}");
    let r = a.cmd(&domain_cmd(
        "info",
        &format!("<domain:name>{t1}</domain:name>"),
    ));
    assert!(
        !r.contains("<domain:pw>"),
        "no auth code for a non-sponsor: {r}"
    );

    // Automatic approval on the injected clock.
    let t2 = env.transferable(A, 0);
    let r = a.cmd(&domain_cmd(
        "update",
        &format!("<domain:name>{t2}</domain:name><domain:chg><domain:authInfo><domain:pw>Auto-Move-7</domain:pw></domain:authInfo></domain:chg>"),
    ));
    assert_eq!(code(&r), 1000, "{r}");
    assert_eq!(code(&transfer(&mut b, "request", &t2, "Auto-Move-7")), 1001);
    env.s.clock.advance(
        env.s.app.config().lifecycle.transfer_auto_approve + std::time::Duration::from_secs(1),
    );
    let r = transfer(&mut b, "query", &t2, "");
    assert_eq!(code(&r), 2301, "settled by the query: {r}");
    assert_eq!(env.s.store().domain(&t2).unwrap().unwrap().registrar, B);
    let msgs = drain(&mut b);
    assert!(
        msgs.iter().any(|m| m.contains("approved automatically")),
        "{msgs:?}"
    );

    // A held domain refuses changes, naming the rule.
    let t3 = env.transferable(A, 0);
    env.s
        .app
        .registry()
        .hold(&Actor::Operator, &t3, "court order")
        .unwrap();
    let r = a.cmd(&domain_cmd(
        "delete",
        &format!("<domain:name>{t3}</domain:name>"),
    ));
    assert_eq!(code(&r), 2304, "{r}");
    assert!(r.contains("rule: hold"), "{r}");

    // Delete (at the end of the period) and restore (RGP).
    let r = a.cmd(&domain_cmd(
        "delete",
        "<domain:name>epp-day.ru</domain:name>",
    ));
    assert_eq!(code(&r), 1001, "{r}");
    let r = a.cmd(&domain_cmd("info", "<domain:name>epp-day.ru</domain:name>"));
    assert!(r.contains(r#"s="pendingDelete""#), "{r}");
    let restore = domain_cmd(
        "update",
        "<domain:name>epp-day.ru</domain:name><domain:chg/>",
    )
    .replace(
        "</update>",
        r#"</update><extension><rgp:update xmlns:rgp="urn:ietf:params:xml:ns:rgp-1.0"><rgp:restore op="request"/></rgp:update></extension>"#,
    );
    let r = a.cmd(&restore);
    assert_eq!(code(&r), 1000, "{r}");
    assert!(env
        .s
        .store()
        .domain("epp-day.ru")
        .unwrap()
        .unwrap()
        .registration
        .closing
        .is_none());
    let r = a.cmd(&restore);
    assert_eq!(code(&r), 2304, "nothing left to restore: {r}");

    // WHOIS and RDAP show the changes.
    let w = env.whois("epp-day.ru");
    assert!(w.contains("ns3.example.org"), "{w}");
    assert!(w.contains("REGRU-RU"), "{w}");
    let w = env.whois(&t1);
    assert!(w.contains("RUCENTER-RU"), "{w}");

    // Session cap: A has one session; a second is fine, a third is refused.
    let _a2 = env.logged_in(0);
    let mut a3 = env.client(0).unwrap();
    let r = a3.cmd(&login(A, PW_A));
    assert_eq!(code(&r), 2502, "{r}");

    // Unknown extension; a host that is no host object yet.
    let r = a.cmd(
        &domain_cmd("info", "<domain:name>epp-day.ru</domain:name>").replace(
            "</info>",
            r#"</info><extension><x:y xmlns:x="urn:example:unknown"/></extension>"#,
        ),
    );
    assert_eq!(code(&r), 2103, "{r}");
    let r = a.cmd(&host_cmd("check", "<host:name>ns1.epp-day.ru</host:name>"));
    assert_eq!(code(&r), 1000, "{r}");
    assert!(
        r.contains(r#"<host:name avail="1">ns1.epp-day.ru</host:name>"#),
        "{r}"
    );

    // Logout ends the session.
    let r = a.cmd("<logout/>");
    assert_eq!(code(&r), 1500, "{r}");
    assert!(a.try_send(&command("<logout/>")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rdap_shows_an_epp_registration() {
    let env = Arc::new(start(|_| {}).await);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.logged_in(0);
        // hostObj names host objects: unknown ones are refused.
        let r = a.cmd(&domain_cmd(
            "create",
            r#"<domain:name>epp-rdap.ru</domain:name><domain:ns><domain:hostObj>ns1.example.net</domain:hostObj><domain:hostObj>ns2.example.net</domain:hostObj></domain:ns><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Rdap-Code-1</domain:pw></domain:authInfo>"#,
        ));
        assert_eq!(code(&r), 2303, "{r}");
        assert!(r.contains("rule: no-host"), "{r}");
        for h in ["ns1.example.net", "ns2.example.net"] {
            let r = a.cmd(&host_cmd("create", &format!("<host:name>{h}</host:name>")));
            assert_eq!(code(&r), 1000, "{r}");
        }
        let r = a.cmd(&domain_cmd(
            "create",
            r#"<domain:name>epp-rdap.ru</domain:name><domain:ns><domain:hostObj>ns1.example.net</domain:hostObj><domain:hostObj>ns2.example.net</domain:hostObj></domain:ns><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Rdap-Code-1</domain:pw></domain:authInfo>"#,
        ).replace(
            "</create>",
            r#"</create><extension><secDNS:create xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1"><secDNS:dsData><secDNS:keyTag>4242</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2</secDNS:digestType><secDNS:digest>49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4F4F0A2D7F4A0E5C6B1D2E3F</secDNS:digest></secDNS:dsData></secDNS:create></extension>"#,
        ));
        assert_eq!(code(&r), 1000, "{r}");
        // The DS set came with the registration, in one transaction.
        let d = e.s.store().domain("epp-rdap.ru").unwrap().unwrap();
        assert_eq!(d.ds.len(), 1);
        assert_eq!(d.ds[0].key_tag, 4242);
        // A DS set without nameservers is refused, and nothing is registered.
        let r = a.cmd(&domain_cmd(
            "create",
            r#"<domain:name>epp-rdap2.ru</domain:name><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Rdap-Code-2</domain:pw></domain:authInfo>"#,
        ).replace(
            "</create>",
            r#"</create><extension><secDNS:create xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1"><secDNS:dsData><secDNS:keyTag>4242</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2</secDNS:digestType><secDNS:digest>49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4F4F0A2D7F4A0E5C6B1D2E3F</secDNS:digest></secDNS:dsData></secDNS:create></extension>"#,
        ));
        assert_eq!(code(&r), 2306, "{r}");
        assert!(e.s.store().domain("epp-rdap2.ru").unwrap().is_none());
    })
    .await
    .unwrap();
    let (status, body) = support::api::send(env.s.get("/rdap/domain/epp-rdap.ru", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ldhName"].as_str().unwrap().to_lowercase(),
        "epp-rdap.ru"
    );
    assert!(body.to_string().contains(A), "{body}");
    assert!(body["secureDNS"].to_string().contains("4242"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_hostile_input() {
    let env = Arc::new(
        start(|c| {
            c.epp.login_timeout = std::time::Duration::from_secs(2);
            c.epp.frame_timeout = std::time::Duration::from_secs(1);
        })
        .await,
    );
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        // A certificate from another CA: no session at all.
        let err = Client::connect(e.port, &e.certs, &e.certs.rogue, None).err();
        assert!(err.is_some(), "a rogue certificate got a greeting");
        // A certificate of the registry's CA that no registrar declared.
        let mut u = e.client(2).unwrap();
        assert_eq!(code(&u.cmd(&login(A, PW_A))), 2200);

        let mut a = e.logged_in(0);
        // Billion laughs: refused, the session lives on.
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><hello/>&lol3;</epp>"#;
        let r = a.send(bomb);
        assert_eq!(code(&r), 2001, "{r}");
        assert!(r.contains("document type"), "{r}");
        // Unknown command.
        let r = a.send(&command("<bogus/>"));
        assert!(code(&r) >= 2000, "{r}");
        // Still alive.
        let r = a.cmd(&domain_cmd("check", "<domain:name>still-alive.ru</domain:name>"));
        assert_eq!(code(&r), 1000, "{r}");
        // A 4 GiB frame: an error and a closed connection, nothing allocated.
        let r = a.raw_len(u32::MAX).unwrap();
        assert_eq!(code(&r), 2500, "{r}");
        assert!(a.try_send(&command("<logout/>")).is_err());

        // A frame announced and never sent is cut off after frame_timeout.
        let mut a = e.logged_in(0);
        let r = a.raw_len(200).unwrap();
        assert_eq!(code(&r), 2500, "{r}");
        assert!(r.contains("not completed in time"), "{r}");

        // A client that connects and never logs in is cut off: wait for
        // the server's closing frame (or its close) rather than a guess at
        // how long login_timeout takes.
        let mut slow = e.client(0).unwrap();
        let cut = slow.next_frame().expect("a closing frame at login_timeout");
        assert_eq!(code(&cut), 2500, "{cut}");
        assert!(cut.contains("timed out"), "{cut}");
        let r = slow.try_send(&command(&login(A, PW_A)));
        match r {
            Err(_) => {}
            Ok(x) => assert_eq!(code(&x), 2500, "{x}"),
        }
    })
    .await
    .unwrap();
    let m = zonekeeper::metrics::install().render();
    assert!(m.contains("zonekeeper_epp_commands_total"), "{m}");
}

/// The whole `serve` wiring (`epp.listen` set, the scheduler probing,
/// WHOIS and HTTP) over a fresh store with registrars A and B, and the
/// test zone `apex` served by `ns1..` at loopback addresses `.1`, `.2`
/// (the zone names `ns1` and `ns2`); `extra` hosts of the block answer
/// for it too.
struct Live {
    app: zonekeeper::app::App,
    certs: Certs,
    epp_port: u16,
    http: std::net::SocketAddr,
    whois_port: u16,
    z: support::dns::LabZone,
    block: [u8; 3],
    serve: tokio::task::JoinHandle<Result<(), zonekeeper::server::ServeError>>,
    _servers: Vec<support::dns::FakeServer>,
    _dir: tempfile::TempDir,
}

async fn live(apex: &str, extra: &[u8]) -> Live {
    use support::dns;
    let certs = certs(&[A, B]);
    let block = dns::loopback_block();
    let mut ips = vec![dns::ip(block, 1), dns::ip(block, 2)];
    ips.extend(extra.iter().map(|h| dns::ip(block, *h)));
    let dns_port = dns::common_port(&ips).await;
    let z = dns::zone(apex, block, &[1, 2]);
    let mut servers = Vec::new();
    for ip in &ips {
        servers.push(z.serve_on(*ip, dns_port).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        zones: vec!["ru".into()],
        ..Config::default()
    };
    cfg.probe.port = dns_port;
    cfg.probe.allow_private_targets = true;
    cfg.probe.timeout = std::time::Duration::from_millis(400);
    cfg.probe.retries = 0;
    // Names carry glue; a closed loopback port keeps lookups off the host.
    cfg.probe.resolvers = vec!["127.0.0.1:9".parse().unwrap()];
    cfg.store.path = dir.path().join("zk.redb");
    let epp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.epp.listen = Some(format!("127.0.0.1:{epp_port}").parse().unwrap());
    cfg.epp.cert = Some(certs.server.cert.clone());
    cfg.epp.key = Some(certs.server.key.clone());
    cfg.epp.client_ca = Some(certs.ca.clone());
    let store = zonekeeper::store::RedbStore::open(&cfg.store.path).unwrap();
    let mut regs = Vec::new();
    for (i, (h, pw)) in [(A, PW_A), (B, PW_B)].into_iter().enumerate() {
        let mut reg = support::sched::registrar();
        reg.handle = h.into();
        reg.epp_cert_sha256 = vec![certs.clients[i].sha256.clone()];
        reg.epp_password_hash = Some(phc(pw));
        regs.push(reg);
    }
    let t0 = support::api::start_time();
    let batch = zonekeeper::store::ImportBatch {
        registrars: regs,
        webhooks: vec![],
        resellers: vec![],
        contacts: vec![support::sched::contact()],
        domains: vec![],
    };
    zonekeeper::import::apply(&store, &batch, &cfg, t0).unwrap();
    let clock = zonekeeper::clock::ManualClock::new(t0);
    let app = zonekeeper::app::App::new(cfg, Arc::new(store), Arc::new(clock)).unwrap();
    let w = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let whois_port = w.local_addr().unwrap().port();
    let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = h.local_addr().unwrap();
    let serve = tokio::spawn(zonekeeper::server::serve_on(app.clone(), w, h));
    assert!(
        support::sched::wait_for(std::time::Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", epp_port)).is_ok()
        })
        .await,
        "EPP is not listening"
    );
    Live {
        app,
        certs,
        epp_port,
        http,
        whois_port,
        z,
        block,
        serve,
        _servers: servers,
        _dir: dir,
    }
}

impl Live {
    fn login(&self, which: usize) -> Client {
        let mut c = Client::connect(
            self.epp_port,
            &self.certs,
            &self.certs.clients[which],
            xsd().as_deref(),
        )
        .unwrap();
        let (id, pw) = [(A, PW_A), (B, PW_B)][which];
        let r = c.cmd(&login(id, pw));
        assert_eq!(code(&r), 1000, "{r}");
        c
    }
    /// Wait (real time: the probes are real) until `name` is delegated.
    fn wait_delegated(&self, name: &str) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < end {
            let st = self.app.store().delegation(name).unwrap().map(|r| r.state);
            if st == Some(zonekeeper::model::DelegationState::Delegated) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
    pub(crate) fn whois(&self, q: &str) -> String {
        let out = std::process::Command::new("whois")
            .args(["-h", "127.0.0.1", "-p", &self.whois_port.to_string(), q])
            .output()
            .expect("the whois client must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    async fn stop(self) {
        self.app.shutdown().cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), self.serve).await;
    }
}

/// The whole `serve` wiring (`epp.listen` set): a domain created over EPP
/// with nameservers on loopback test servers is probed by the scheduler
/// and delegated; the result comes back through `<poll>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delegation_result_arrives_by_poll() {
    let env = Arc::new(live("epp-good.ru", &[]).await);
    let ns: String = env
        .z
        .ns
        .iter()
        .map(|(n, ip)| {
            format!(r#"<domain:hostAttr><domain:hostName>{n}</domain:hostName><domain:hostAddr ip="v4">{ip}</domain:hostAddr></domain:hostAttr>"#)
        })
        .collect();
    let e = env.clone();
    let msgs = tokio::task::spawn_blocking(move || {
        let mut a = e.login(0);
        let r = a.cmd(&domain_cmd(
            "create",
            &format!("<domain:name>epp-good.ru</domain:name><domain:ns>{ns}</domain:ns><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Good-Code-1</domain:pw></domain:authInfo>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        e.wait_delegated("epp-good.ru");
        let r = a.cmd(&domain_cmd("info", "<domain:name>epp-good.ru</domain:name>"));
        assert!(!r.contains(r#"s="inactive""#), "delegated and in the zone: {r}");
        assert!(r.contains(r#"s="serverTransferProhibited""#), "a new registration: {r}");
        assert!(!r.contains(r#"s="client"#), "the registry sets no client status: {r}");
        (drain(&mut a), a)
    })
    .await
    .unwrap();
    let (msgs, session) = msgs;
    // The dashboard counts the session that is still logged in.
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/", env.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"title="REGRU-RU: 1"><div class="n">1</div><div class="l">EPP sessions"#),
        "{page}"
    );
    drop(session);
    assert!(msgs.len() >= 2, "{msgs:?}");
    assert!(
        msgs[0].contains("epp-good.ru: registered by REGRU-RU"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .skip(1)
            .any(|m| m.contains("epp-good.ru") && m.to_lowercase().contains("delegat")),
        "{msgs:?}"
    );
    Arc::into_inner(env).unwrap().stop().await;
}

/// Host objects (RFC 5732) over EPP with the whole wiring: a registrar
/// creates its domain, the hosts inside it with glue, delegates the domain
/// with `hostObj`; the result comes by poll. An address change of a host
/// re-declares the domain's NS set (tested while the old set stays in the
/// zone) and WHOIS/RDAP show it; a host in use is not deleted. Refusals:
/// glue outside the zones, a host inside another registrar's domain, a bad
/// address, no glue inside, an unregistered superordinate domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_objects_over_net_epp() {
    let env = Arc::new(live("epp-host.ru", &[]).await);
    let e = env.clone();
    let new_ip = support::dns::ip(env.block, 3);
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut a = e.login(0);
        let mut b = e.login(1);
        let r = a.cmd(&domain_cmd(
            "create",
            "<domain:name>epp-host.ru</domain:name><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Host-Code-1</domain:pw></domain:authInfo>",
        ));
        assert_eq!(code(&r), 1000, "{r}");
        for (n, ip) in &e.z.ns {
            let r = a.cmd(&host_cmd(
                "create",
                &format!(r#"<host:name>{n}</host:name><host:addr ip="v4">{ip}</host:addr>"#),
            ));
            assert_eq!(code(&r), 1000, "{r}");
            assert!(r.contains("<host:crDate>"), "{r}");
        }
        let (ns1, ip1) = e.z.ns[0].clone();
        let (ns2, ip2) = e.z.ns[1].clone();
        let r = a.cmd(&host_cmd(
            "check",
            &format!("<host:name>{ns1}</host:name><host:name>ns9.epp-host.ru</host:name>"),
        ));
        assert!(r.contains(&format!(r#"<host:name avail="0">{ns1}</host:name>"#)), "{r}");
        assert!(r.contains(r#"<host:name avail="1">ns9.epp-host.ru</host:name>"#), "{r}");

        // Refusals.
        let refused = |c: &mut Client, inner: &str, want: u16, rule: &str| {
            let r = c.cmd(&host_cmd("create", inner));
            assert_eq!(code(&r), want, "{inner}: {r}");
            assert!(r.contains(&format!("rule: {rule}")), "{inner}: {r}");
        };
        refused(&mut a, r#"<host:name>ns.outside.example.net</host:name><host:addr ip="v4">192.0.2.1</host:addr>"#, 2306, "invalid");
        refused(&mut b, r#"<host:name>ns3.epp-host.ru</host:name><host:addr ip="v4">192.0.2.1</host:addr>"#, 2201, "forbidden");
        refused(&mut a, r#"<host:name>ns3.epp-host.ru</host:name><host:addr ip="v4">192.0.2.300</host:addr>"#, 2306, "invalid");
        refused(&mut a, "<host:name>ns3.epp-host.ru</host:name>", 2306, "invalid");
        refused(&mut a, r#"<host:name>ns1.not-registered.ru</host:name><host:addr ip="v4">192.0.2.1</host:addr>"#, 2305, "superordinate");
        refused(&mut a, &format!(r#"<host:name>{ns1}</host:name><host:addr ip="v4">192.0.2.1</host:addr>"#), 2302, "host-exists");
        let r = a.cmd(&host_cmd("create", r#"<host:name>ns3.epp-host.ru</host:name><host:addr ip="v6">192.0.2.1</host:addr>"#));
        assert_eq!(code(&r), 2005, "{r}");
        // The other registrar cannot change or delete them.
        let r = b.cmd(&host_cmd("delete", &format!("<host:name>{ns1}</host:name>")));
        assert_eq!(code(&r), 2201, "{r}");

        // Delegate with the host objects; the result comes by poll.
        drain(&mut a);
        let r = a.cmd(&domain_cmd(
            "update",
            &format!("<domain:name>epp-host.ru</domain:name><domain:add><domain:ns><domain:hostObj>{ns1}</domain:hostObj><domain:hostObj>{ns2}</domain:hostObj></domain:ns></domain:add>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let d = e.app.store().domain("epp-host.ru").unwrap().unwrap();
        assert_eq!(d.nameservers[0].addresses, vec![ip1]);
        assert!(e.wait_delegated("epp-host.ru"), "not delegated");
        let msgs = drain(&mut a);
        assert!(
            msgs.iter().any(|m| m.contains("epp-host.ru") && m.to_lowercase().contains("delegated")),
            "{msgs:?}"
        );
        let r = a.cmd(&host_cmd("info", &format!("<host:name>{ns2}</host:name>")));
        assert_eq!(code(&r), 1000, "{r}");
        assert!(r.contains(r#"<host:status s="linked"/>"#), "{r}");
        assert!(r.contains(&format!(r#"<host:addr ip="v4">{ip2}</host:addr>"#)), "{r}");
        assert!(r.contains(&format!("<host:clID>{A}</host:clID>")), "{r}");

        // In use: not deleted.
        let r = a.cmd(&host_cmd("delete", &format!("<host:name>{ns2}</host:name>")));
        assert_eq!(code(&r), 2305, "{r}");
        assert!(r.contains("rule: host-in-use"), "{r}");

        // The other registrar's domain uses ns1 too (no glue outside
        // epp-host.ru): epp-host.ru cannot be deleted while it does.
        let r = b.cmd(&host_cmd("create", "<host:name>ns.b-external.net</host:name>"));
        assert_eq!(code(&r), 1000, "{r}");
        // B names a contact of its own (C1-RU is A's now).
        let r = b.cmd(&contact_cmd(
            "create",
            r#"<contact:id>C3-RU</contact:id><contact:postalInfo type="loc"><contact:name>Anna B</contact:name><contact:addr><contact:city>Moscow</contact:city><contact:cc>RU</contact:cc></contact:addr></contact:postalInfo><contact:email>b@example.net</contact:email><contact:authInfo><contact:pw>x-123456</contact:pw></contact:authInfo>"#,
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let r = b.cmd(&domain_cmd(
            "create",
            &format!("<domain:name>epp-b.ru</domain:name><domain:ns><domain:hostObj>{ns1}</domain:hostObj><domain:hostObj>ns.b-external.net</domain:hostObj></domain:ns><domain:registrant>C3-RU</domain:registrant><domain:authInfo><domain:pw>B-Code-1</domain:pw></domain:authInfo>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let b_before = e.app.store().domain("epp-b.ru").unwrap().unwrap();
        assert!(b_before.nameservers[0].addresses.is_empty());
        let r = a.cmd(&domain_cmd("delete", "<domain:name>epp-host.ru</domain:name>"));
        assert_eq!(code(&r), 2305, "{r}");
        assert!(r.contains("epp-b.ru") && r.contains("rule: host-in-use"), "{r}");

        // ns2 moves to a new address (no server answers there yet): the
        // domain's NS set is re-declared and tested while the old set stays
        // in the zone.
        let r = a.cmd(&host_cmd(
            "update",
            &format!(r#"<host:name>{ns2}</host:name><host:add><host:addr ip="v4">{new_ip}</host:addr></host:add><host:rem><host:addr ip="v4">{ip2}</host:addr></host:rem>"#),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let d = e.app.store().domain("epp-host.ru").unwrap().unwrap();
        assert_eq!(d.nameservers[1].addresses, vec![new_ip]);
        let rec = e.app.store().delegation("epp-host.ru").unwrap().unwrap();
        assert_eq!(rec.state, zonekeeper::model::DelegationState::Delegated);
        assert!(rec.pending.is_some(), "the new set is under test: {rec:?}");
        assert!(
            rec.published.iter().any(|n| n.addresses == vec![ip2]),
            "the old set stays in the zone: {rec:?}"
        );
        let w = e.whois("epp-host.ru");
        assert!(w.contains(&format!("{ns2}. {new_ip}")), "{w}");
        // epp-b.ru does not use ns2: untouched.
        assert_eq!(
            e.app.store().domain("epp-b.ru").unwrap().unwrap(),
            b_before
        );
        let body = rt.block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("http://{}/rdap/nameserver/{ns2}", e.http))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        assert!(body.contains(&format!("\"{new_ip}\"")), "{body}");
        let msgs = drain(&mut a);
        assert!(
            msgs.iter().any(|m| m.contains(&format!("host {ns2} changed by registrar:{A}"))),
            "{msgs:?}"
        );

        // hostAttr cannot give a host object other glue than its own.
        let r = a.cmd(&domain_cmd(
            "update",
            &format!(r#"<domain:name>epp-host.ru</domain:name><domain:add><domain:ns><domain:hostAttr><domain:hostName>{ns1}</domain:hostName><domain:hostAddr ip="v4">192.0.2.77</domain:hostAddr></domain:hostAttr></domain:ns></domain:add><domain:rem><domain:ns><domain:hostObj>{ns1}</domain:hostObj></domain:ns></domain:rem>"#),
        ));
        assert_eq!(code(&r), 2306, "{r}");
        assert!(r.contains("rule: host-glue") && r.contains(&format!("{ip1}, not 192.0.2.77")), "{r}");

        // Out of the NS set, then deleted.
        let r = a.cmd(&domain_cmd(
            "update",
            &format!("<domain:name>epp-host.ru</domain:name><domain:rem><domain:ns><domain:hostObj>{ns1}</domain:hostObj><domain:hostObj>{ns2}</domain:hostObj></domain:ns></domain:rem>"),
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let r = a.cmd(&host_cmd("delete", &format!("<host:name>{ns2}</host:name>")));
        assert_eq!(code(&r), 1000, "{r}");
        let r = a.cmd(&host_cmd("info", &format!("<host:name>{ns2}</host:name>")));
        assert_eq!(code(&r), 2303, "{r}");
    })
    .await
    .unwrap();
    Arc::into_inner(env).unwrap().stop().await;
}

#[test]
fn import_checks_the_epp_credentials() {
    let cfg = Config::default();
    let zones = cfg.zones().unwrap();
    let now = support::api::start_time();
    let file = |certs: &str, hash: &str| {
        format!(
            r#"{{"registrars": [{{"handle": "EPP-RU", "name": "EPP Registrar",
                "epp_cert_sha256": {certs}, "epp_password_hash": {hash}}}]}}"#
        )
    };
    let good_hash = serde_json::to_string(&phc("pw")).unwrap();
    let fp = format!("\"{}\"", "AB".repeat(32));
    let b = zonekeeper::import::parse(
        file(&format!("[{fp}]"), &good_hash).as_bytes(),
        "f",
        &cfg,
        &zones,
        now,
    )
    .unwrap();
    assert_eq!(b.registrars[0].epp_cert_sha256, vec!["ab".repeat(32)]);
    assert!(b.registrars[0]
        .epp_password_hash
        .as_deref()
        .unwrap()
        .starts_with("$argon2id$"));
    let bcrypt = "\"$2b$12$abcdefghijklmnopqrstuuFQ5e6xZ4ZC1s5Cvfv9nFm1v0XbCq2K6\"";
    let e = zonekeeper::import::parse(file("[\"abc\"]", bcrypt).as_bytes(), "f", &cfg, &zones, now)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("epp_cert_sha256") && e.contains("epp_password_hash"),
        "{e}"
    );
}

/// The host-object hijack (docs/epp.md "Ownership"), end to end: registrar
/// B declares `victim.ru` through the REST API by names (its own hosts with
/// glue, delegated, then an external `ns.popdns.net` added); registrar A
/// creates a host object `ns.popdns.net` over EPP (accepted: it captures
/// nothing) and renames it to its own server: refused `host-in-use`, and
/// the victim's NS set, delegation record and published zone entry are
/// unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_rename_hijack_is_refused() {
    use sha2::{Digest, Sha256};
    let env = Arc::new(live("victim.ru", &[]).await);
    let tok = support::api::token(B);
    {
        let mut t = env.app.store().begin().unwrap();
        let mut r = t.registrar(B).unwrap().unwrap();
        r.api_token_sha256 = Some(hex::encode(Sha256::digest(tok.as_bytes())));
        t.put_registrar(&r).unwrap();
        t.commit(env.app.now()).unwrap();
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("http://{}{p}", env.http);
    let ns: Vec<serde_json::Value> = env
        .z
        .ns
        .iter()
        .map(|(n, ip)| serde_json::json!({"name": n, "addresses": [ip.to_string()]}))
        .collect();
    let r = http
        .post(url("/api/v1/domains"))
        .bearer_auth(&tok)
        .json(&serde_json::json!({"name": "victim.ru", "registrant": "C1-RU", "nameservers": ns}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let e = env.clone();
    assert!(
        tokio::task::spawn_blocking(move || e.wait_delegated("victim.ru"))
            .await
            .unwrap(),
        "not delegated"
    );
    let mut with_pop = ns.clone();
    with_pop.push(serde_json::json!({"name": "ns.popdns.net"}));
    let r = http
        .put(url("/api/v1/domains/victim.ru/nameservers"))
        .bearer_auth(&tok)
        .json(&serde_json::json!({ "nameservers": with_pop }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let before = env.app.store().domain("victim.ru").unwrap().unwrap();
    let rec_before = env.app.store().delegation("victim.ru").unwrap().unwrap();
    let zone_before = zone_entry(&env.app, "victim.ru");
    assert!(zone_before.contains("ns1.victim.ru"), "{zone_before}");
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.login(0);
        let r = a.cmd(&host_cmd("create", "<host:name>ns.popdns.net</host:name>"));
        assert_eq!(code(&r), 1000, "creating the host object captures nothing: {r}");
        let r = a.cmd(&host_cmd(
            "update",
            "<host:name>ns.popdns.net</host:name><host:chg><host:name>ns3.attacker.example</host:name></host:chg>",
        ));
        assert_eq!(code(&r), 2305, "{r}");
        assert!(r.contains("rule: host-in-use"), "{r}");
        // B's contact is not A's to name either.
        let r = a.cmd(&domain_cmd(
            "create",
            "<domain:name>thief.ru</domain:name><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Thief-Code-1</domain:pw></domain:authInfo>",
        ));
        assert_eq!(code(&r), 2305, "{r}");
        assert!(r.contains("rule: contact-sponsor"), "{r}");
        let r = a.cmd(&contact_cmd("info", "<contact:id>C1-RU</contact:id>"));
        assert_eq!(code(&r), 2201, "{r}");
        let r = a.cmd(&contact_cmd("check", "<contact:id>C1-RU</contact:id>"));
        assert!(r.contains(r#"<contact:id avail="1">C1-RU</contact:id>"#), "{r}");
    })
    .await
    .unwrap();
    let after = env.app.store().domain("victim.ru").unwrap().unwrap();
    assert_eq!(after, before);
    // The scheduler goes on probing: the published set and state are what
    // the attack would have changed.
    let rec_after = env.app.store().delegation("victim.ru").unwrap().unwrap();
    assert_eq!(
        (
            rec_after.state,
            &rec_after.published,
            &rec_after.ns_fingerprint
        ),
        (
            rec_before.state,
            &rec_before.published,
            &rec_before.ns_fingerprint
        )
    );
    let zone_after = zone_entry(&env.app, "victim.ru");
    assert_eq!(zone_after, zone_before);
    assert!(!zone_after.contains("attacker"), "{zone_after}");
    assert!(!env.whois("victim.ru").contains("attacker"));
    Arc::into_inner(env).unwrap().stop().await;
}

/// Lost updates (docs/epp.md `domain:update`): two sessions add different
/// nameservers to one domain at the same moment, 50 times; every add
/// survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_updates_keep_every_add() {
    let env = Arc::new(live("race.ru", &[]).await);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = e.login(0);
        let r = a.cmd(&domain_cmd(
            "create",
            "<domain:name>race.ru</domain:name><domain:ns><domain:hostAttr><domain:hostName>ns.base1.race-ext.net</domain:hostName></domain:hostAttr><domain:hostAttr><domain:hostName>ns.base2.race-ext.net</domain:hostName></domain:hostAttr></domain:ns><domain:registrant>C1-RU</domain:registrant><domain:authInfo><domain:pw>Race-Code-1</domain:pw></domain:authInfo>",
        ));
        assert_eq!(code(&r), 1000, "{r}");
        let mut b = e.login(0);
        let add = |i: usize, who: &str| {
            domain_cmd(
                "update",
                &format!("<domain:name>race.ru</domain:name><domain:add><domain:ns><domain:hostAttr><domain:hostName>ns{i}{who}.race-ext.net</domain:hostName></domain:hostAttr></domain:ns></domain:add>"),
            )
        };
        for i in 0..50 {
            let barrier = std::sync::Barrier::new(2);
            let (ra, rb) = std::thread::scope(|s| {
                let ta = s.spawn(|| {
                    barrier.wait();
                    a.cmd(&add(i, "a"))
                });
                let tb = s.spawn(|| {
                    barrier.wait();
                    b.cmd(&add(i, "b"))
                });
                (ta.join().unwrap(), tb.join().unwrap())
            });
            assert_eq!((code(&ra), code(&rb)), (1000, 1000), "{ra}\n{rb}");
            let d = e.app.store().domain("race.ru").unwrap().unwrap();
            let names: Vec<String> = d.nameservers.iter().map(|n| n.name.to_string()).collect();
            for who in ["a", "b"] {
                let n = format!("ns{i}{who}.race-ext.net");
                assert!(names.contains(&n), "round {i}: {n} lost: {names:?}");
            }
            let r = a.cmd(&domain_cmd(
                "update",
                &format!("<domain:name>race.ru</domain:name><domain:rem><domain:ns><domain:hostObj>ns{i}a.race-ext.net</domain:hostObj><domain:hostObj>ns{i}b.race-ext.net</domain:hostObj></domain:ns></domain:rem>"),
            ));
            assert_eq!(code(&r), 1000, "{r}");
        }
    })
    .await
    .unwrap();
    Arc::into_inner(env).unwrap().stop().await;
}

/// The lines of the rendered `ru` zone that belong to `name`.
fn zone_entry(app: &zonekeeper::app::App, name: &str) -> String {
    let z =
        zonekeeper::zone::render(app.store().as_ref(), app.config(), "ru", app.now(), 1).unwrap();
    z.lines()
        .filter(|l| l.contains(name))
        .collect::<Vec<_>>()
        .join("\n")
}

//! The EPP flows' unit tests: the EPP handle of an [`App`] over a temporary redb store on a
//! manual clock, registrars `A` and `B` each with a person contact
//! (`CA`, `CB`), and sessions logged in as either.

use std::sync::Arc;

use chrono::TimeZone;

use super::guard::Shared;
use super::session::Session;
use super::xml::{self, Element, EPP_NS};
use crate::app::App;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::model::{Contact, ContactKind, Registrar, Timestamp};
use crate::registry::Registry;
use crate::store::{ImportBatch, RedbStore};

pub fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap()
}

fn registrar(h: &str) -> Registrar {
    Registrar {
        handle: h.into(),
        name: format!("Registrar {h}"),
        url: None,
        email: None,
        api_token_sha256: None,
        epp_cert_sha256: Vec::new(),
        epp_password_hash: None,
        epp_poll_acked: 0,
    }
}

fn person(h: &str, sponsor: &str) -> Contact {
    Contact {
        handle: h.into(),
        kind: ContactKind::Person,
        name: Some(format!("Person {h}")),
        org: None,
        email: Some(format!("{h}@example.net").to_ascii_lowercase()),
        phone: None,
        address: None,
        tax_id: None,
        birth_date: None,
        passport: None,
        disclose: vec![],
        sponsor: Some(sponsor.into()),
        created: None,
    }
}

pub struct Kit {
    _dir: tempfile::TempDir,
    pub deps: super::Deps,
    pub clock: ManualClock,
    shared: Arc<Shared>,
}

impl Kit {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
        let cfg = Config::default();
        let batch = ImportBatch {
            registrars: vec![registrar("A"), registrar("B")],
            webhooks: vec![],
            resellers: vec![],
            contacts: vec![person("CA", "A"), person("CB", "B")],
            domains: vec![],
        };
        Registry::offline(&store, &cfg)
            .unwrap()
            .import(&batch, t0())
            .unwrap();
        let clock = ManualClock::new(t0());
        let app = App::new(cfg, Arc::new(store), Arc::new(clock.clone())).unwrap();
        let deps = app.epp();
        let shared = Arc::new(Shared::new(deps.sessions.clone(), 1_000_000));
        Self {
            _dir: dir,
            deps,
            clock,
            shared,
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// A session logged in as `registrar`, secDNS and RGP negotiated.
    pub fn session(&self, registrar: &str) -> Session {
        Session::logged_in(self.deps.clone(), self.shared.clone(), registrar)
    }
}

/// Run `command` (the inside of `<command>`) in `s`: the answer.
pub fn run(s: &mut Session, command: &str) -> Answer {
    let doc =
        format!(r#"<epp xmlns="{EPP_NS}"><command>{command}<clTRID>T-1</clTRID></command></epp>"#);
    let (text, _) = s.handle(doc.as_bytes());
    Answer::of(text)
}

/// A parsed answer: its text and tree.
pub struct Answer {
    pub text: String,
    pub root: Element,
}

impl Answer {
    fn of(text: String) -> Self {
        let root = xml::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
        Self { text, root }
    }
    fn response(&self) -> &Element {
        self.root.child(EPP_NS, "response").unwrap()
    }
    pub fn code(&self) -> u16 {
        let r = self.response().child(EPP_NS, "result").unwrap();
        r.attr("code").unwrap().parse().unwrap()
    }
    pub fn msg(&self) -> &str {
        let r = self.response().child(EPP_NS, "result").unwrap();
        r.text_of(EPP_NS, "msg").unwrap()
    }
    /// The object element inside `<resData>` (`ns`, `name`).
    pub fn res(&self, ns: &str, name: &str) -> &Element {
        self.response()
            .child(EPP_NS, "resData")
            .and_then(|r| r.child(ns, name))
            .unwrap_or_else(|| panic!("no {name} in {}", self.text))
    }
    pub fn msg_q(&self) -> Option<&Element> {
        self.response().child(EPP_NS, "msgQ")
    }
    /// Assert the result code, showing the answer when it differs.
    #[track_caller]
    pub fn expect(self, code: u16) -> Self {
        assert_eq!(self.code(), code, "{}", self.text);
        self
    }
}

/// `<domain:create>` of `name` by a registrar whose contact is `registrant`.
pub fn create_domain(s: &mut Session, name: &str, registrant: &str) -> Answer {
    run(
        s,
        &format!(
            r#"<create><domain:create xmlns:domain="urn:ietf:params:xml:ns:domain-1.0"><domain:name>{name}</domain:name><domain:registrant>{registrant}</domain:registrant><domain:authInfo><domain:pw>Code-2026-xyz!</domain:pw></domain:authInfo></domain:create></create>"#
        ),
    )
}

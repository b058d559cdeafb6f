//! One EPP session: turns a frame (an XML instance) into the answer. It
//! parses, calls the registry service as `Actor::Registrar(login)` and
//! renders the result; the rules and their refusals are the service's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::deps::Deps;
use super::flow::Ctx;
use super::guard::Shared;
use super::response::{missing, ts, Out, Xml, R};
use super::xml::{self, Element, CONTACT_NS, DOMAIN_NS, EPP_NS, HOST_NS, RGP_NS, SECDNS_NS};
use super::{contact, domain, host, poll, transfer};

static SV_SEQ: AtomicU64 = AtomicU64::new(1);

/// Object services and extensions this server implements (announced in
/// the greeting, accepted at login).
pub const OBJ_URIS: &[&str] = &[DOMAIN_NS, CONTACT_NS, HOST_NS];
pub const EXT_URIS: &[&str] = &[SECDNS_NS, RGP_NS];

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

/// Whether `pw` matches the argon2 PHC string `hash`; with no (usable)
/// hash, the same verification runs against a stand-in and fails.
fn password_matches(hash: Option<&str>, pw: &str) -> bool {
    use argon2::PasswordVerifier;
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stand_in = STAND_IN.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let Ok(salt) = SaltString::encode_b64(b"zonekeeper-stand-in") else {
            return String::new();
        };
        argon2::Argon2::default()
            .hash_password(b"no registrar has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let real = hash.and_then(|h| argon2::PasswordHash::new(h).ok());
    let checked = real.or_else(|| argon2::PasswordHash::new(stand_in).ok());
    let matched = checked.is_some_and(|ph| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &ph)
            .is_ok()
    });
    matched && hash.is_some()
}

pub struct Session {
    deps: Deps,
    shared: Arc<Shared>,
    /// SHA-256 of the client certificate's DER.
    fingerprint: String,
    registrar: Option<String>,
    /// Counted in `shared.sessions`.
    counted: bool,
    failures: u32,
    secdns: bool,
    rgp: bool,
    /// The client's address (login back-off per address).
    peer: Option<std::net::IpAddr>,
    /// When the frame being handled was handed over (its time is recorded
    /// with its count).
    frame_started: std::time::Instant,
}

impl Session {
    pub fn new(deps: Deps, fingerprint: String, shared: Arc<Shared>) -> Self {
        Self {
            deps,
            shared,
            fingerprint,
            registrar: None,
            counted: false,
            failures: 0,
            secdns: false,
            rgp: false,
            peer: None,
            frame_started: std::time::Instant::now(),
        }
    }

    /// The session of a connection from `ip`.
    pub fn from_peer(mut self, ip: std::net::IpAddr) -> Self {
        self.peer = Some(ip);
        self
    }

    /// A stand-in while the real session runs on a blocking thread.
    pub fn placeholder(deps: Deps, shared: Arc<Shared>) -> Self {
        Self::new(deps, String::new(), shared)
    }

    /// A session already logged in as `registrar` with every extension
    /// (the flows' unit tests).
    #[cfg(test)]
    pub(super) fn logged_in(deps: Deps, shared: Arc<Shared>, registrar: &str) -> Self {
        let mut s = Self::new(deps, String::new(), shared);
        s.registrar = Some(registrar.to_string());
        s.secdns = true;
        s.rgp = true;
        s
    }

    pub fn registrar(&self) -> Option<&str> {
        self.registrar.as_deref()
    }

    /// The session ends: release its slot.
    pub fn end(&mut self) {
        if self.counted {
            if let Some(r) = &self.registrar {
                self.shared.close(r);
            }
            self.counted = false;
        }
    }

    pub fn greeting(&self) -> String {
        Xml::document(|x| {
            x.el("greeting", &[], |x| {
                x.text("svID", "zonekeeper")
                    .text("svDate", &ts(self.deps.now()));
                x.el("svcMenu", &[], |x| {
                    x.text("version", "1.0").text("lang", "en");
                    for o in OBJ_URIS {
                        x.text("objURI", o);
                    }
                    x.el("svcExtension", &[], |x| {
                        for e in EXT_URIS {
                            x.text("extURI", e);
                        }
                    });
                });
                x.el("dcp", &[], |x| {
                    x.el("access", &[], |x| {
                        x.empty("personalAndOther", &[]);
                    });
                    x.el("statement", &[], |x| {
                        x.el("purpose", &[], |x| {
                            x.empty("admin", &[]).empty("prov", &[]);
                        });
                        x.el("recipient", &[], |x| {
                            x.empty("ours", &[]).empty("public", &[]);
                        });
                        x.el("retention", &[], |x| {
                            x.empty("legal", &[]);
                        });
                    });
                });
            });
        })
    }

    /// An answer that precedes closing the connection (timeouts, bad frames).
    pub fn closing(&self, code: u16, msg: &str) -> String {
        self.render(Out::err(code, msg), None)
    }

    fn render(&self, o: Out, cltrid: Option<&str>) -> String {
        let sv = format!(
            "ZK-{}-{}",
            self.deps.started.timestamp(),
            SV_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        o.render(cltrid, &sv)
    }

    /// Handle one frame: the answer and whether to close the connection.
    pub fn handle(&mut self, body: &[u8]) -> (String, bool) {
        self.handle_parsed(xml::parse(body))
    }

    /// Whether a parsed frame only reads (hello, check, info, poll req):
    /// it can be answered without a blocking thread (no commit, no fsync).
    pub fn reads_only(parsed: &Result<Element, xml::XmlError>) -> bool {
        let Ok(root) = parsed else { return true };
        if root.child(EPP_NS, "hello").is_some() {
            return true;
        }
        let Some(cmd) = root.child(EPP_NS, "command") else {
            return true;
        };
        cmd.children.iter().any(|c| {
            c.ns == EPP_NS
                && (matches!(c.name.as_str(), "check" | "info")
                    || (c.name == "poll" && c.attr("op") == Some("req")))
        })
    }

    /// [`Session::handle`] of an already parsed frame.
    pub fn handle_parsed(&mut self, parsed: Result<Element, xml::XmlError>) -> (String, bool) {
        self.frame_started = std::time::Instant::now();
        let root = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.count("parse", 2001);
                return (self.render(Out::err(2001, e.to_string()), None), false);
            }
        };
        if root.ns != EPP_NS || root.name != "epp" {
            self.count("parse", 2001);
            return (
                self.render(
                    Out::err(
                        2001,
                        "the root element must be <epp> in urn:ietf:params:xml:ns:epp-1.0",
                    ),
                    None,
                ),
                false,
            );
        }
        if root.child(EPP_NS, "hello").is_some() {
            self.count("hello", 1000);
            return (self.greeting(), false);
        }
        let Some(cmd) = root.child(EPP_NS, "command") else {
            self.count("unknown", 2001);
            return (
                self.render(Out::err(2001, "expected <hello> or <command>"), None),
                false,
            );
        };
        let cltrid = cmd.text_of(EPP_NS, "clTRID").map(str::to_string);
        if let Some(c) = &cltrid {
            if c.len() < 3 || c.len() > 64 {
                return (
                    self.render(Out::err(2001, "clTRID must be 3–64 characters"), None),
                    false,
                );
            }
        }
        let Some(verb) = cmd
            .children
            .iter()
            .find(|c| c.ns == EPP_NS && c.name != "clTRID" && c.name != "extension")
        else {
            return (
                self.render(Out::err(2001, "empty <command>"), cltrid.as_deref()),
                false,
            );
        };
        let ext = cmd.child(EPP_NS, "extension");
        let name = verb.name.clone();
        let mut close = false;
        let out = match name.as_str() {
            "login" => {
                let o = self.login(verb);
                close = o.code >= 2500 || (o.code != 1000 && self.failures >= 3);
                if close && o.code < 2500 {
                    Out::err(2501, o.msg)
                } else {
                    o
                }
            }
            "logout" if self.registrar.is_some() => {
                close = true;
                Out::code(1500, Xml::new())
            }
            _ if self.registrar.is_none() => Out::err(2002, "log in first"),
            _ => match self.rate_ok() {
                Err(o) => o,
                Ok(()) => self.command(&name, verb, ext).unwrap_or_else(|e| e),
            },
        };
        let code = out.code;
        let label = self.command_label(&name, verb);
        self.count(&label, code);
        let rendered = self.render(out, cltrid.as_deref());
        tracing::info!(
            registrar = self.registrar.as_deref().unwrap_or("-"),
            command = %label,
            code,
            cltrid = cltrid.as_deref().unwrap_or(""),
            "EPP command"
        );
        (rendered, close)
    }

    fn command_label(&self, verb: &str, el: &Element) -> String {
        // Metric labels come from a fixed set: a client's element names
        // must not grow the metric's cardinality.
        const VERBS: &[&str] = &[
            "login", "logout", "poll", "check", "info", "create", "update", "delete", "renew",
            "transfer",
        ];
        let Some(verb) = VERBS.iter().find(|v| **v == verb) else {
            return "unknown".into();
        };
        match el.children.first() {
            Some(o) if o.ns == DOMAIN_NS => format!("domain:{verb}"),
            Some(o) if o.ns == CONTACT_NS => format!("contact:{verb}"),
            Some(o) if o.ns == HOST_NS => format!("host:{verb}"),
            _ => verb.to_string(),
        }
    }

    fn count(&self, command: &str, code: u16) {
        metrics::counter!("zonekeeper_epp_commands_total",
            "command" => command.to_string(), "code" => code.to_string())
        .increment(1);
        // Known commands only: a client's made-up element names must not
        // add series.
        let verb = command.rsplit(':').next().unwrap_or(command);
        let timed = if matches!(
            verb,
            "login"
                | "logout"
                | "check"
                | "info"
                | "poll"
                | "create"
                | "update"
                | "delete"
                | "renew"
                | "transfer"
                | "hello"
                | "parse"
        ) {
            command.to_string()
        } else {
            "other".to_string()
        };
        metrics::histogram!(crate::metrics::EPP_DURATION, "command" => timed)
            .record(self.frame_started.elapsed().as_secs_f64());
    }

    fn rate_ok(&self) -> Result<(), Out> {
        let r = self.registrar.clone().unwrap_or_default();
        self.shared.limiter.check_key(&r).map_err(|_| {
            Out::err(
                2400,
                format!(
                    "more than {} commands per minute (rule: rate-limit); wait and retry",
                    self.deps.config().epp.rate_limit_per_minute
                ),
            )
        })
    }

    // ---- session management ---------------------------------------------

    fn login(&mut self, el: &Element) -> Out {
        if self.registrar.is_some() {
            return Out::err(2002, "already logged in");
        }
        let (Some(id), Some(pw)) = (el.text_of(EPP_NS, "clID"), el.text_of(EPP_NS, "pw")) else {
            return missing("clID and pw");
        };
        let opts = el.child(EPP_NS, "options");
        if opts.and_then(|o| o.text_of(EPP_NS, "version")) != Some("1.0") {
            return Out::err(2100, "only EPP version 1.0 is implemented");
        }
        if opts.and_then(|o| o.text_of(EPP_NS, "lang")) != Some("en") {
            return Out::err(2102, "only lang en is implemented");
        }
        if el.child(EPP_NS, "newPW").is_some() {
            return Out::err(2102, "newPW: the EPP password comes with the registrar record (import); it is not changed over EPP");
        }
        // Failed logins back off per registrar ID and per address: checked
        // before any credential, so a guess in the back-off tells nothing.
        let mut keys = vec![format!("id:{id}")];
        if let Some(ip) = self.peer {
            keys.push(format!("ip:{}", super::guard::client_of(ip)));
        }
        let now = self.deps.now();
        if let Err(until) = self.shared.logins.check(&keys, now) {
            self.failures += 1;
            tracing::warn!(clid = %id, peer = ?self.peer, "EPP login refused: backing off");
            return Out::err(
                2200,
                format!(
                    "too many failed logins; try again after {} (rule: login-backoff)",
                    ts(until)
                ),
            );
        }
        let reg = match self.deps.store().registrars() {
            Ok(rs) => rs
                .into_iter()
                .find(|r| r.handle == id && r.epp_cert_sha256.contains(&self.fingerprint)),
            Err(_) => return Out::err(2400, "internal error"),
        };
        // One answer for every mismatch: the certificate, the ID and the
        // password are all credentials. And the same work: argon2 runs
        // against a stand-in hash when there is no registrar's to check,
        // so the time taken does not tell which part failed.
        let hash = reg.as_ref().and_then(|r| r.epp_password_hash.as_deref());
        let verified = password_matches(hash, pw);
        let ok = reg.is_some() && hash.is_some() && verified;
        if !ok {
            self.failures += 1;
            self.shared.logins.failed(&keys, now);
            tracing::warn!(clid = %id, "EPP login refused");
            return Out::err(
                2200,
                "client ID, password and client certificate do not match a registrar (rule: epp-login)",
            );
        }
        if let Some(svcs) = el.child(EPP_NS, "svcs") {
            for o in svcs.all(EPP_NS, "objURI") {
                if !OBJ_URIS.contains(&o.text.as_str()) {
                    return Out::err(
                        2307,
                        format!("object service {} is not implemented", o.text),
                    );
                }
            }
            if let Some(ext) = svcs.child(EPP_NS, "svcExtension") {
                for e in ext.all(EPP_NS, "extURI") {
                    match e.text.as_str() {
                        SECDNS_NS => self.secdns = true,
                        RGP_NS => self.rgp = true,
                        other => {
                            return Out::err(2103, format!("extension {other} is not implemented"))
                        }
                    }
                }
            }
        }
        if !self
            .shared
            .open(id, self.deps.config().epp.max_sessions_per_registrar)
        {
            return Out::err(
                2502,
                format!(
                    "{id} has {} sessions open already (rule: session-limit)",
                    self.deps.config().epp.max_sessions_per_registrar
                ),
            );
        }
        self.shared.logins.succeeded(&keys);
        self.counted = true;
        self.registrar = Some(id.to_string());
        tracing::info!(registrar = %id, "EPP login");
        Out::done()
    }

    /// Dispatch a logged-in registrar's command to its flow.
    fn command(&mut self, verb: &str, el: &Element, ext: Option<&Element>) -> R {
        let c = Ctx {
            deps: &self.deps,
            registrar: self.registrar.as_deref().unwrap_or(""),
            secdns: self.secdns,
            rgp: self.rgp,
        };
        if verb == "poll" {
            return poll::poll(&c, el);
        }
        let Some(obj) = el.children.first() else {
            return Err(Out::err(2001, format!("<{verb}> names no object")));
        };
        if let Some(ext) = ext {
            for e in &ext.children {
                let ok = (e.ns == SECDNS_NS && self.secdns) || (e.ns == RGP_NS && self.rgp);
                if !ok {
                    return Err(Out::err(
                        2103,
                        format!("extension {} was not negotiated at login", e.ns),
                    ));
                }
            }
        }
        match (obj.ns.as_str(), verb) {
            (DOMAIN_NS, "check") => domain::check(&c, obj),
            (DOMAIN_NS, "info") => domain::info(&c, obj),
            (DOMAIN_NS, "create") => domain::create(&c, obj, ext),
            (DOMAIN_NS, "update") => domain::update(&c, obj, ext),
            (DOMAIN_NS, "renew") => domain::renew(&c, obj),
            (DOMAIN_NS, "transfer") => transfer::transfer(&c, el.attr("op"), obj),
            (DOMAIN_NS, "delete") => domain::delete(&c, obj),
            (CONTACT_NS, "check") => contact::check(&c, obj),
            (CONTACT_NS, "info") => contact::info(&c, obj),
            (CONTACT_NS, "create") => contact::create(&c, obj),
            (CONTACT_NS, "update") => contact::update(&c, obj),
            (CONTACT_NS, "delete") => contact::delete(&c, obj),
            (CONTACT_NS, "transfer") => Err(Out::err(
                2101,
                "contact transfer is not implemented: contacts stay with their sponsor",
            )),
            (HOST_NS, "check") => host::check(&c, obj),
            (HOST_NS, "info") => host::info(&c, obj),
            (HOST_NS, "create") => host::create(&c, obj),
            (HOST_NS, "update") => host::update(&c, obj),
            (HOST_NS, "delete") => host::delete(&c, obj),
            (HOST_NS, "transfer") => Err(Out::err(
                2101,
                "hosts are not transferred: a host inside a domain follows that domain's sponsor",
            )),
            (DOMAIN_NS | CONTACT_NS | HOST_NS, _) => {
                Err(Out::err(2000, format!("unknown command {verb}")))
            }
            (ns, _) => Err(Out::err(
                2307,
                format!("object service {ns} is not implemented"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{run, Kit};
    use super::*;

    #[test]
    fn greeting_announces_the_services() {
        let k = Kit::new();
        let g = k.session("A").greeting();
        let root = xml::parse(g.as_bytes()).unwrap();
        let menu = root
            .child(EPP_NS, "greeting")
            .and_then(|g| g.child(EPP_NS, "svcMenu"))
            .unwrap();
        let objs: Vec<_> = menu
            .all(EPP_NS, "objURI")
            .map(|o| o.text.as_str())
            .collect();
        assert_eq!(objs, OBJ_URIS);
    }

    #[test]
    fn dispatch_refuses_before_any_flow() {
        let k = Kit::new();
        let mut anon = Session::new(k.deps.clone(), String::new(), k.shared());
        run(&mut anon, "<logout/>").expect(2002);
        let mut a = k.session("A");
        run(&mut a, "<info/>").expect(2001);
        run(&mut a, r#"<info><x:info xmlns:x="urn:example:x"/></info>"#).expect(2307);
        run(&mut a, r#"<frobnicate><domain:frobnicate xmlns:domain="urn:ietf:params:xml:ns:domain-1.0"/></frobnicate>"#).expect(2000);
        run(&mut a, r#"<info><domain:info xmlns:domain="urn:ietf:params:xml:ns:domain-1.0"><domain:name>a.ru</domain:name></domain:info></info><extension><x:y xmlns:x="urn:example:x"/></extension>"#).expect(2103);
        let (text, close) = a.handle(
            format!(r#"<epp xmlns="{EPP_NS}"><command><logout/></command></epp>"#).as_bytes(),
        );
        assert!(close && text.contains(r#"<result code="1500">"#), "{text}");
        let (text, _) = a.handle(b"<epp");
        assert!(text.contains(r#"<result code="2001">"#), "{text}");
    }
}

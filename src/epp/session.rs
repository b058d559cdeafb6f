//! One EPP session: turns a frame (an XML instance) into the answer. It
//! parses, calls the registry service as `Actor::Registrar(login)` and
//! renders the result; the rules and their refusals are the service's.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::xml::{
    self, escape, Element, CONTACT_NS, DOMAIN_NS, EPP_NS, HOST_NS, RGP_NS, SECDNS_NS,
};
use super::Shared;
use crate::app::App;
use crate::lifecycle;
use crate::model::{Contact, DelegationRecord, DiscloseField, Domain, Timestamp};
use crate::registry::NameserverIn;
use crate::registry::{Actor, CreateIn, DomainUpdate, RegistryError, TransferView};
use crate::status::{self, DomainStatus};

static SV_SEQ: AtomicU64 = AtomicU64::new(1);

/// Object services and extensions this server implements (announced in
/// the greeting, accepted at login).
pub const OBJ_URIS: &[&str] = &[DOMAIN_NS, CONTACT_NS, HOST_NS];
pub const EXT_URIS: &[&str] = &[SECDNS_NS, RGP_NS];

/// An EPP result: the code, the message and what goes inside.
struct Out {
    code: u16,
    msg: String,
    msg_q: Option<String>,
    res: String,
    ext: String,
}

impl Out {
    fn ok(res: String) -> Self {
        Self::code(1000, res)
    }
    fn code(code: u16, res: String) -> Self {
        Out {
            code,
            msg: standard_msg(code).into(),
            msg_q: None,
            res,
            ext: String::new(),
        }
    }
    fn err(code: u16, msg: impl Into<String>) -> Self {
        Out {
            code,
            msg: msg.into(),
            msg_q: None,
            res: String::new(),
            ext: String::new(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

/// RFC 5730 §3 texts.
fn standard_msg(code: u16) -> &'static str {
    match code {
        1000 => "Command completed successfully",
        1001 => "Command completed successfully; action pending",
        1300 => "Command completed successfully; no messages",
        1301 => "Command completed successfully; ack to dequeue",
        1500 => "Command completed successfully; ending session",
        2000 => "Unknown command",
        2001 => "Command syntax error",
        2002 => "Command use error",
        2003 => "Required parameter missing",
        2004 => "Parameter value range error",
        2005 => "Parameter value syntax error",
        2100 => "Unimplemented protocol version",
        2101 => "Unimplemented command",
        2102 => "Unimplemented option",
        2103 => "Unimplemented extension",
        2200 => "Authentication error",
        2201 => "Authorization error",
        2202 => "Invalid authorization information",
        2300 => "Object pending transfer",
        2301 => "Object not pending transfer",
        2302 => "Object exists",
        2303 => "Object does not exist",
        2304 => "Object status prohibits operation",
        2305 => "Object association prohibits operation",
        2306 => "Parameter value policy error",
        2307 => "Unimplemented object service",
        2400 => "Command failed",
        2500 => "Command failed; server closing connection",
        2501 => "Authentication error; server closing connection",
        2502 => "Session limit exceeded; server closing connection",
        _ => "Command failed",
    }
}

/// The EPP result code of a registry refusal; the message names the rule.
fn from_registry(e: RegistryError) -> Out {
    // The result code comes from the registry's one mapping.
    let code = e.epp_code();
    let detail = match &e {
        RegistryError::Store(s) => match s.storage() {
            Some(crate::store::Health::Full) => {
                "registry storage full (read-only); nothing was changed; retry later".to_string()
            }
            Some(_) => "registry storage unavailable; nothing was changed; retry later".to_string(),
            None => "internal error; nothing was changed".to_string(),
        },
        other => other.to_string(),
    };
    Out::err(code, format!("{detail} (rule: {})", e.rule()))
}

type R = Result<Out, Out>;

/// A `<check>` answer (RFC 5730 §2.9.2.1) for the 1 to 50 `key` elements
/// of the `prefix` object: `avail` says `Ok(form shown)` when one is
/// available, `Err(reason)` when not.
fn check_answer(
    obj: &Element,
    prefix: &str,
    ns: &str,
    key: &str,
    what: &str,
    avail: impl Fn(&str) -> Result<std::result::Result<String, String>, Out>,
) -> R {
    let items: Vec<&str> = obj.all(ns, key).map(|e| e.text.as_str()).collect();
    if items.is_empty() || items.len() > 50 {
        return Err(Out::err(2001, format!("check 1 to 50 {what}")));
    }
    let mut s = format!(r#"<{prefix}:chkData xmlns:{prefix}="{ns}">"#);
    for n in items {
        let _ = match avail(n)? {
            Ok(shown) => write!(
                s,
                r#"<{prefix}:cd><{prefix}:{key} avail="1">{}</{prefix}:{key}></{prefix}:cd>"#,
                escape(&shown)
            ),
            Err(why) => write!(
                s,
                r#"<{prefix}:cd><{prefix}:{key} avail="0">{}</{prefix}:{key}><{prefix}:reason>{}</{prefix}:reason></{prefix}:cd>"#,
                escape(n),
                escape(&why)
            ),
        };
    }
    let _ = write!(s, "</{prefix}:chkData>");
    Ok(Out::ok(s))
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

fn missing(what: &str) -> Out {
    Out::err(2003, format!("required parameter missing: {what}"))
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub struct Session {
    app: App,
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
    pub fn new(app: App, fingerprint: String, shared: Arc<Shared>) -> Self {
        Self {
            app,
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
    pub fn placeholder(app: App, shared: Arc<Shared>) -> Self {
        Self::new(app, String::new(), shared)
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
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><epp xmlns="{EPP_NS}"><greeting><svID>zonekeeper</svID><svDate>{}</svDate><svcMenu><version>1.0</version><lang>en</lang>"#,
            ts(self.app.now())
        );
        for o in OBJ_URIS {
            let _ = write!(s, "<objURI>{o}</objURI>");
        }
        s.push_str("<svcExtension>");
        for e in EXT_URIS {
            let _ = write!(s, "<extURI>{e}</extURI>");
        }
        s.push_str("</svcExtension></svcMenu><dcp><access><personalAndOther/></access><statement><purpose><admin/><prov/></purpose><recipient><ours/><public/></recipient><retention><legal/></retention></statement></dcp></greeting></epp>");
        s
    }

    /// An answer that precedes closing the connection (timeouts, bad frames).
    pub fn closing(&self, code: u16, msg: &str) -> String {
        self.render(Out::err(code, msg), None)
    }

    fn render(&self, o: Out, cltrid: Option<&str>) -> String {
        let sv = format!(
            "ZK-{}-{}",
            self.app.started.timestamp(),
            SV_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut s = String::with_capacity(512 + o.res.len());
        let _ = write!(
            s,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><epp xmlns="{EPP_NS}"><response><result code="{}"><msg>{}</msg></result>"#,
            o.code,
            escape(&o.msg)
        );
        if let Some(q) = &o.msg_q {
            s.push_str(q);
        }
        if !o.res.is_empty() {
            let _ = write!(s, "<resData>{}</resData>", o.res);
        }
        if !o.ext.is_empty() {
            let _ = write!(s, "<extension>{}</extension>", o.ext);
        }
        s.push_str("<trID>");
        if let Some(c) = cltrid {
            let _ = write!(s, "<clTRID>{}</clTRID>", escape(c));
        }
        let _ = write!(s, "<svTRID>{sv}</svTRID></trID></response></epp>");
        s
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
                Out::code(1500, String::new())
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
                    self.app.config.epp.rate_limit_per_minute
                ),
            )
        })
    }

    fn actor(&self) -> Actor {
        Actor::Registrar(self.registrar.clone().unwrap_or_default())
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
        let now = self.app.now();
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
        let reg = match self.app.store.registrars() {
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
            .open(id, self.app.config.epp.max_sessions_per_registrar)
        {
            return Out::err(
                2502,
                format!(
                    "{id} has {} sessions open already (rule: session-limit)",
                    self.app.config.epp.max_sessions_per_registrar
                ),
            );
        }
        self.shared.logins.succeeded(&keys);
        self.counted = true;
        self.registrar = Some(id.to_string());
        tracing::info!(registrar = %id, "EPP login");
        Out::code(1000, String::new())
    }

    fn command(&mut self, verb: &str, el: &Element, ext: Option<&Element>) -> R {
        if verb == "poll" {
            return self.poll(el);
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
            (DOMAIN_NS, "check") => self.domain_check(obj),
            (DOMAIN_NS, "info") => self.domain_info(obj),
            (DOMAIN_NS, "create") => self.domain_create(obj, ext),
            (DOMAIN_NS, "update") => self.domain_update(obj, ext),
            (DOMAIN_NS, "renew") => self.domain_renew(obj),
            (DOMAIN_NS, "transfer") => self.domain_transfer(el.attr("op"), obj),
            (DOMAIN_NS, "delete") => self.domain_delete(obj),
            (CONTACT_NS, "check") => self.contact_check(obj),
            (CONTACT_NS, "info") => self.contact_info(obj),
            (CONTACT_NS, "create") => self.contact_create(obj),
            (CONTACT_NS, "update") => self.contact_update(obj),
            (CONTACT_NS, "delete") => self.contact_delete(obj),
            (CONTACT_NS, "transfer") => Err(Out::err(
                2101,
                "contact transfer is not implemented: contacts stay with their sponsor",
            )),
            (HOST_NS, "check") => self.host_check(obj),
            (HOST_NS, "info") => self.host_info(obj),
            (HOST_NS, "create") => self.host_create(obj),
            (HOST_NS, "update") => self.host_update(obj),
            (HOST_NS, "delete") => self.host_delete(obj),
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

    // ---- poll -------------------------------------------------------------

    fn poll(&mut self, el: &Element) -> R {
        let me = self.registrar.clone().unwrap_or_default();
        let store = &self.app.store;
        let reg = store
            .registrar(&me)
            .map_err(|_| Out::err(2400, "internal error"))?
            .ok_or_else(|| Out::err(2400, "registrar vanished"))?;
        let queue = |after: u64| {
            store
                .feed(&me, after, 1000)
                .map_err(|_| Out::err(2400, "internal error"))
        };
        match el.attr("op") {
            Some("req") => {
                let q = queue(reg.epp_poll_acked)?;
                let Some(first) = q.first() else {
                    return Ok(Out::code(1300, String::new()));
                };
                let text = format!(
                    "{}: {}",
                    first.domain,
                    crate::public::event_reason(&first.reason)
                );
                let mut o = Out::code(1301, String::new());
                o.msg_q = Some(format!(
                    r#"<msgQ count="{}" id="{}"><qDate>{}</qDate><msg>{}</msg></msgQ>"#,
                    q.len(),
                    first.seq,
                    ts(first.at),
                    escape(&text)
                ));
                Ok(o)
            }
            Some("ack") => {
                let id: u64 = el
                    .attr("msgID")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| missing("msgID"))?;
                let q = queue(reg.epp_poll_acked)?;
                if !q.iter().any(|e| e.seq == id) {
                    return Err(Out::err(2303, format!("no message {id} in the queue")));
                }
                self.app
                    .registry()
                    .poll_ack(&self.actor(), id)
                    .map_err(from_registry)?;
                let rest: Vec<_> = q.iter().filter(|e| e.seq > id).collect();
                let mut o = Out::ok(String::new());
                o.msg_q = Some(match rest.first() {
                    Some(n) => format!(r#"<msgQ count="{}" id="{}"/>"#, rest.len(), n.seq),
                    None => format!(r#"<msgQ count="0" id="{id}"/>"#),
                });
                Ok(o)
            }
            _ => Err(Out::err(2005, "poll op must be req or ack")),
        }
    }

    // ---- domain -----------------------------------------------------------

    fn domain_name(&self, obj: &Element) -> Result<String, Out> {
        let raw = obj
            .text_of(DOMAIN_NS, "name")
            .ok_or_else(|| missing("domain:name"))?;
        self.app
            .registry()
            .parse_name(raw)
            .map(|n| n.as_str().to_string())
            .map_err(|e| Out::err(2005, e.to_string()))
    }

    fn domain_check(&self, obj: &Element) -> R {
        let reg = self.app.registry();
        // The reason names the rule `create` would refuse with.
        check_answer(obj, "domain", DOMAIN_NS, "name", "names", |n| {
            reg.availability(n)
                .map(|a| a.map_err(|(rule, why)| format!("{rule}: {why}")))
                .map_err(from_registry)
        })
    }

    fn load_domain(&self, name: &str) -> Result<(Domain, lifecycle::Status), Out> {
        let d = self
            .app
            .store
            .domain(name)
            .map_err(|_| Out::err(2400, "internal error"))?
            .ok_or_else(|| Out::err(2303, format!("no such domain: {name}")))?;
        let now = self.app.now();
        // As of now: what time completed shows before the sweep writes it.
        let d = lifecycle::as_of(&d, now);
        let st = lifecycle::evaluate(&d, now, &self.app.config.lifecycle);
        if !st.exists() {
            return Err(Out::err(2303, format!("no such domain: {name}")));
        }
        Ok((d, st))
    }

    /// The one status model (`crate::status`) of a loaded domain.
    fn status_of(&self, d: &Domain, st: &lifecycle::Status) -> Result<DomainStatus, Out> {
        let r = self
            .app
            .store
            .delegation(d.name.as_str())
            .map_err(|_| Out::err(2400, "internal error"))?
            .unwrap_or_else(|| DelegationRecord::undelegated(d.created));
        Ok(status::compute(st, status::Delegation::of(&r)))
    }

    fn roid(name: &str) -> String {
        let mut r: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        r.push_str("-ZK");
        r
    }

    fn domain_info(&self, obj: &Element) -> R {
        let name = self.domain_name(obj)?;
        let (d, st) = self.load_domain(&name)?;
        let me = self.registrar.as_deref().unwrap_or("");
        let sponsor = d.registrar == me;
        let mut s = format!(
            r#"<domain:infData xmlns:domain="{DOMAIN_NS}"><domain:name>{}</domain:name><domain:roid>{}</domain:roid>"#,
            escape(&name),
            Self::roid(&name)
        );
        let model = self.status_of(&d, &st)?;
        for x in model.epp() {
            let _ = write!(s, r#"<domain:status s="{}"/>"#, x.epp());
        }
        if sponsor {
            let _ = write!(
                s,
                "<domain:registrant>{}</domain:registrant>",
                escape(&d.registrant)
            );
            for (t, c) in [("admin", &d.admin), ("tech", &d.tech)] {
                if let Some(c) = c {
                    let _ = write!(
                        s,
                        r#"<domain:contact type="{t}">{}</domain:contact>"#,
                        escape(c)
                    );
                }
            }
            if !d.nameservers.is_empty() {
                s.push_str("<domain:ns>");
                for n in &d.nameservers {
                    let _ = write!(
                        s,
                        "<domain:hostAttr><domain:hostName>{}</domain:hostName>",
                        escape(n.name.as_str())
                    );
                    for a in &n.addresses {
                        let v = if a.is_ipv4() { "v4" } else { "v6" };
                        let _ = write!(s, r#"<domain:hostAddr ip="{v}">{a}</domain:hostAddr>"#);
                    }
                    s.push_str("</domain:hostAttr>");
                }
                s.push_str("</domain:ns>");
            }
        }
        let _ = write!(s, "<domain:clID>{}</domain:clID>", escape(&d.registrar));
        if sponsor {
            let _ = write!(
                s,
                "<domain:crDate>{}</domain:crDate><domain:upDate>{}</domain:upDate><domain:exDate>{}</domain:exDate>",
                ts(d.created),
                ts(d.updated),
                ts(d.paid_till)
            );
            if let Some(t) = d.transferred {
                let _ = write!(s, "<domain:trDate>{}</domain:trDate>", ts(t));
            }
            // No authInfo, to the sponsor either: a code is seen once,
            // when it is set (SECURITY.md).
        }
        s.push_str("</domain:infData>");
        let mut o = Out::ok(s);
        if sponsor && self.secdns && !d.ds.is_empty() {
            o.ext = ds_data("infData", &d.ds);
        }
        if let Some(r) = model.rgp().filter(|_| sponsor && self.rgp) {
            let _ = write!(
                o.ext,
                r#"<rgp:infData xmlns:rgp="{RGP_NS}"><rgp:rgpStatus s="{}"/></rgp:infData>"#,
                r.epp()
            );
        }
        Ok(o)
    }

    fn domain_create(&self, obj: &Element, ext: Option<&Element>) -> R {
        let name = self.domain_name(obj)?;
        let registrant = obj
            .text_of(DOMAIN_NS, "registrant")
            .ok_or_else(|| missing("domain:registrant"))?
            .to_string();
        let mut admin = None;
        let mut tech = None;
        for c in obj.all(DOMAIN_NS, "contact") {
            match c.attr("type") {
                Some("admin") => admin = Some(c.text.clone()),
                Some("tech") => tech = Some(c.text.clone()),
                // The registry keeps no billing contact.
                Some("billing") => {}
                _ => {
                    return Err(Out::err(
                        2005,
                        "contact type must be admin, tech or billing",
                    ))
                }
            }
        }
        self.check_period(obj)?;
        let (ns, host_objects) = match obj.child(DOMAIN_NS, "ns") {
            Some(ns) => ns_in(ns)?,
            None => Default::default(),
        };
        let auth_info = obj
            .child(DOMAIN_NS, "authInfo")
            .and_then(|a| a.text_of(DOMAIN_NS, "pw"))
            .map(str::to_string);
        let ds = self.ds_create(ext)?;
        let body = CreateIn {
            name: name.clone(),
            registrar: None,
            registrant,
            admin,
            tech,
            nameservers: ns,
            auth_info,
            reseller: None,
            ds,
            host_objects,
        };
        let d = self
            .app
            .registry()
            .create(&self.actor(), &body)
            .map_err(from_registry)?;
        Ok(Out::ok(format!(
            r#"<domain:creData xmlns:domain="{DOMAIN_NS}"><domain:name>{}</domain:name><domain:crDate>{}</domain:crDate><domain:exDate>{}</domain:exDate></domain:creData>"#,
            escape(&name),
            ts(d.created),
            ts(d.paid_till)
        )))
    }

    /// A period other than the registry's one is refused.
    fn check_period(&self, obj: &Element) -> Result<(), Out> {
        if let Some(p) = obj.child(DOMAIN_NS, "period") {
            let months = self.app.config.lifecycle.registration_period.0;
            let n: u32 = p.text.parse().map_err(|_| Out::err(2005, "bad period"))?;
            let asked = match p.attr("unit") {
                Some("y") => n * 12,
                Some("m") => n,
                _ => return Err(Out::err(2005, "period unit must be y or m")),
            };
            if asked != months {
                return Err(Out::err(
                    2004,
                    format!(
                        "the registration period is {months} months (rule: registration-period)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// secDNS `create`: the DS set, checked by the registry with the rest
    /// of the registration (one transaction).
    fn ds_create(&self, ext: Option<&Element>) -> Result<Vec<crate::ds::DsIn>, Out> {
        match ext.and_then(|e| e.child(SECDNS_NS, "create")) {
            Some(c) => ds_list(c),
            None => Ok(Vec::new()),
        }
    }

    /// All parts of the update (`add`, `rem`, `chg`, secDNS) are one
    /// registry operation ([`DomainUpdate`]): applied to the record inside
    /// the registry's transaction, all or nothing.
    fn domain_update(&self, obj: &Element, ext: Option<&Element>) -> R {
        let name = self.domain_name(obj)?;
        let add = obj.child(DOMAIN_NS, "add");
        let rem = obj.child(DOMAIN_NS, "rem");
        let chg = obj.child(DOMAIN_NS, "chg");
        let sec = ext.and_then(|e| e.child(SECDNS_NS, "update"));
        let rgp = ext.and_then(|e| e.child(RGP_NS, "update"));
        let mut u = DomainUpdate {
            client_statuses: super::client_status::parse(add, rem).map_err(from_registry)?,
            ..Default::default()
        };
        if let Some(r) = rem.and_then(|r| r.child(DOMAIN_NS, "ns")) {
            u.ns_rem = ns_names(r)?;
        }
        if let Some(a) = add.and_then(|a| a.child(DOMAIN_NS, "ns")) {
            (u.ns_add, u.ns_add_hosts) = ns_in(a)?;
        }
        for (part, adding) in [(rem, false), (add, true)] {
            for c in part.into_iter().flat_map(|p| p.all(DOMAIN_NS, "contact")) {
                let v = adding.then(|| c.text.clone());
                match c.attr("type") {
                    Some("admin") => u.admin = Some(v),
                    Some("tech") => u.tech = Some(v),
                    _ => return Err(Out::err(2005, "contact type must be admin or tech")),
                }
            }
        }
        u.registrant = chg
            .and_then(|c| c.text_of(DOMAIN_NS, "registrant"))
            .map(str::to_string);
        u.auth_code = chg
            .and_then(|c| c.child(DOMAIN_NS, "authInfo"))
            .and_then(|a| a.text_of(DOMAIN_NS, "pw"))
            .map(str::to_string);
        if let Some(sec) = sec {
            if let Some(r) = sec.child(SECDNS_NS, "rem") {
                let all = r.text_of(SECDNS_NS, "all");
                if all == Some("true") || all == Some("1") {
                    u.ds_rem_all = true;
                } else {
                    u.ds_rem = validate_ds(&ds_list(r)?)?;
                }
            }
            if let Some(a) = sec.child(SECDNS_NS, "add") {
                u.ds_add = validate_ds(&ds_list(a)?)?;
            }
            if u.ds_rem_all || !u.ds_rem.is_empty() || !u.ds_add.is_empty() {
                u.ds_source = Some("EPP".into());
            } else {
                return Err(Out::err(2003, "secDNS:update without add or rem"));
            }
        }
        let reg = self.app.registry();
        let actor = self.actor();
        if let Some(r) = rgp {
            if r.child(RGP_NS, "restore").and_then(|x| x.attr("op")) != Some("request") {
                return Err(Out::err(
                    2102,
                    "only <rgp:restore op=\"request\"> is implemented",
                ));
            }
            // RFC 3915 §4.2.5: a restore request changes nothing else.
            if !u.is_empty() {
                return Err(Out::err(
                    2306,
                    "a restore request changes nothing else (RFC 3915 §4.2.5; rule: restore-alone)",
                ));
            }
            let d = reg.restore(&actor, &name).map_err(from_registry)?;
            // The RGP state after the restore, from the one status model
            // (none once the domain is back to normal: no `addPeriod`,
            // which is for new registrations only).
            let st = lifecycle::evaluate(&d, self.app.now(), &self.app.config.lifecycle);
            let mut o = Out::ok(String::new());
            if let Some(r) = self.status_of(&d, &st)?.rgp() {
                o.ext = format!(
                    r#"<rgp:upData xmlns:rgp="{RGP_NS}"><rgp:rgpStatus s="{}"/></rgp:upData>"#,
                    r.epp()
                );
            }
            return Ok(o);
        }
        if u.is_empty() {
            return Err(Out::err(2003, "the update changes nothing"));
        }
        reg.update_domain(&actor, &name, &u)
            .map_err(from_registry)?;
        if let Some(r) = &u.registrant {
            let mut o = Out::code(1001, String::new());
            o.msg = format!("{}: the new registrant {r} must accept the change", o.msg);
            return Ok(o);
        }
        Ok(Out::ok(String::new()))
    }

    fn domain_renew(&self, obj: &Element) -> R {
        let name = self.domain_name(obj)?;
        let (d, _) = self.load_domain(&name)?;
        let cur = obj
            .text_of(DOMAIN_NS, "curExpDate")
            .ok_or_else(|| missing("domain:curExpDate"))?;
        if cur != d.paid_till.date_naive().to_string() {
            return Err(Out::err(
                2004,
                format!(
                    "curExpDate {cur} is not the expiry date {} (rule: cur-exp-date)",
                    d.paid_till.date_naive()
                ),
            ));
        }
        self.check_period(obj)?;
        let d = self
            .app
            .registry()
            .renew(&self.actor(), &name)
            .map_err(from_registry)?;
        Ok(Out::ok(format!(
            r#"<domain:renData xmlns:domain="{DOMAIN_NS}"><domain:name>{}</domain:name><domain:exDate>{}</domain:exDate></domain:renData>"#,
            escape(&name),
            ts(d.paid_till)
        )))
    }

    fn trn_data(&self, name: &str, status: &str, t: &TransferView) -> String {
        format!(
            r#"<domain:trnData xmlns:domain="{DOMAIN_NS}"><domain:name>{}</domain:name><domain:trStatus>{status}</domain:trStatus><domain:reID>{}</domain:reID><domain:reDate>{}</domain:reDate><domain:acID>{}</domain:acID><domain:acDate>{}</domain:acDate></domain:trnData>"#,
            escape(name),
            escape(&t.to),
            ts(t.requested),
            escape(&t.from),
            ts(t.auto_approve)
        )
    }

    fn domain_transfer(&self, op: Option<&str>, obj: &Element) -> R {
        let name = self.domain_name(obj)?;
        let reg = self.app.registry();
        let actor = self.actor();
        let pw = obj
            .child(DOMAIN_NS, "authInfo")
            .and_then(|a| a.text_of(DOMAIN_NS, "pw"));
        match op {
            Some("request") => {
                let pw = pw.ok_or_else(|| missing("domain:authInfo"))?;
                self.check_period(obj)?;
                let t = reg
                    .transfer_request(&actor, &name, pw)
                    .map_err(from_registry)?;
                Ok(Out::code(1001, self.trn_data(&name, "pending", &t)))
            }
            Some("query") => {
                let st = reg
                    .transfer_query(&actor, &name, pw)
                    .map_err(from_registry)?;
                let t = st.pending.ok_or_else(|| {
                    Out::err(
                        2301,
                        format!("no registrar change of {name} is pending (rule: no-request)"),
                    )
                })?;
                Ok(Out::ok(self.trn_data(&name, "pending", &t)))
            }
            Some(op @ ("approve" | "reject" | "cancel")) => {
                let st = reg
                    .transfer_query(&actor, &name, None)
                    .map_err(from_registry)?;
                let t = st.pending.ok_or_else(|| {
                    Out::err(
                        2301,
                        format!("no registrar change of {name} is pending (rule: no-request)"),
                    )
                })?;
                let me = self.registrar.as_deref().unwrap_or("");
                // The service tells a withdrawal from a rejection by who asks;
                // EPP names them: each op only by its party.
                let allowed = match op {
                    "cancel" => t.to == me,
                    _ => t.from == me,
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
                reg.transfer_decide(&actor, &name, op == "approve")
                    .map_err(from_registry)?;
                let status = match op {
                    "approve" => "clientApproved",
                    "reject" => "clientRejected",
                    _ => "clientCancelled",
                };
                Ok(Out::ok(self.trn_data(&name, status, &t)))
            }
            _ => Err(Out::err(
                2005,
                "transfer op must be request, query, approve, reject or cancel",
            )),
        }
    }

    fn domain_delete(&self, obj: &Element) -> R {
        let name = self.domain_name(obj)?;
        // Deletion at the end of the paid period: reversible by RGP restore
        // until then (the registry's close rule, docs/lifecycle.md).
        let at = self
            .app
            .registry()
            .close(&self.actor(), &name, true)
            .map_err(from_registry)?;
        let mut o = Out::code(1001, String::new());
        o.msg = format!("{}: {name} is deleted at {} unless restored", o.msg, ts(at));
        Ok(o)
    }

    // ---- host -------------------------------------------------------------

    fn host_name<'a>(&self, obj: &'a Element) -> Result<&'a str, Out> {
        obj.text_of(HOST_NS, "name")
            .ok_or_else(|| missing("host:name"))
    }

    fn host_check(&self, obj: &Element) -> R {
        let reg = self.app.registry();
        check_answer(obj, "host", HOST_NS, "name", "hosts", |n| {
            reg.host_availability(n).map_err(from_registry)
        })
    }

    fn host_info(&self, obj: &Element) -> R {
        let v = self
            .app
            .registry()
            .host_info(self.host_name(obj)?)
            .map_err(from_registry)?;
        let h = &v.host;
        let name = h.name.as_str();
        let mut s = format!(
            r#"<host:infData xmlns:host="{HOST_NS}"><host:name>{}</host:name><host:roid>{}H</host:roid><host:status s="ok"/>"#,
            escape(name),
            Self::roid(name)
        );
        if v.linked {
            s.push_str(r#"<host:status s="linked"/>"#);
        }
        for a in &h.addresses {
            let ip = if a.is_ipv4() { "v4" } else { "v6" };
            let _ = write!(s, r#"<host:addr ip="{ip}">{a}</host:addr>"#);
        }
        let _ = write!(
            s,
            "<host:clID>{}</host:clID><host:crID>{}</host:crID><host:crDate>{}</host:crDate>",
            escape(&v.sponsor),
            escape(&h.sponsor),
            ts(h.created)
        );
        if h.updated != h.created {
            let _ = write!(s, "<host:upDate>{}</host:upDate>", ts(h.updated));
        }
        s.push_str("</host:infData>");
        Ok(Out::ok(s))
    }

    fn host_create(&self, obj: &Element) -> R {
        let name = self.host_name(obj)?;
        let addrs = host_addrs(obj)?;
        let h = self
            .app
            .registry()
            .host_create(&self.actor(), name, &addrs)
            .map_err(from_registry)?;
        Ok(Out::ok(format!(
            r#"<host:creData xmlns:host="{HOST_NS}"><host:name>{}</host:name><host:crDate>{}</host:crDate></host:creData>"#,
            escape(h.name.as_str()),
            ts(h.created)
        )))
    }

    fn host_update(&self, obj: &Element) -> R {
        let name = self.host_name(obj)?;
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
        let add = add.map(host_addrs).transpose()?.unwrap_or_default();
        let rem = rem.map(host_addrs).transpose()?.unwrap_or_default();
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
        self.app
            .registry()
            .host_update(&self.actor(), name, &add, &rem, new_name)
            .map_err(from_registry)?;
        Ok(Out::ok(String::new()))
    }

    fn host_delete(&self, obj: &Element) -> R {
        self.app
            .registry()
            .host_delete(&self.actor(), self.host_name(obj)?)
            .map_err(from_registry)?;
        Ok(Out::ok(String::new()))
    }

    // ---- contact ----------------------------------------------------------

    fn contact_id<'a>(&self, obj: &'a Element) -> Result<&'a str, Out> {
        obj.text_of(CONTACT_NS, "id")
            .ok_or_else(|| missing("contact:id"))
    }

    fn contact_check(&self, obj: &Element) -> R {
        check_answer(obj, "contact", CONTACT_NS, "id", "contacts", |id| {
            let c = self
                .app
                .store
                .contact(id)
                .map_err(|_| Out::err(2400, "internal error"))?;
            // Another registrar's person is answered as a free id: the
            // check does not confirm that a private person exists
            // (docs/epp.md "Ownership").
            let used = c.is_some_and(|c| {
                c.sponsor.as_deref() == self.registrar.as_deref()
                    || c.kind != crate::model::ContactKind::Person
            });
            Ok(if used {
                Err("In use".to_string())
            } else {
                Ok(id.to_string())
            })
        })
    }

    fn own_contact(&self, id: &str) -> Result<Contact, Out> {
        let c = self
            .app
            .store
            .contact(id)
            .map_err(|_| Out::err(2400, "internal error"))?
            .ok_or_else(|| Out::err(2303, format!("no such contact: {id}")))?;
        if c.sponsor.as_deref() != self.registrar.as_deref() {
            return Err(Out::err(
                2201,
                format!("contact {id} is not sponsored by you (rule: forbidden)"),
            ));
        }
        Ok(c)
    }

    fn contact_info(&self, obj: &Element) -> R {
        let id = self.contact_id(obj)?;
        let c = self.own_contact(id)?;
        let mut s = format!(
            r#"<contact:infData xmlns:contact="{CONTACT_NS}"><contact:id>{}</contact:id><contact:roid>{}</contact:roid><contact:status s="ok"/><contact:postalInfo type="loc">"#,
            escape(id),
            Self::roid(id)
        );
        let name = c.name.clone().or_else(|| c.org.clone()).unwrap_or_default();
        let _ = write!(s, "<contact:name>{}</contact:name>", escape(&name));
        if let Some(o) = &c.org {
            let _ = write!(s, "<contact:org>{}</contact:org>", escape(o));
        }
        let a = c.address.clone().unwrap_or_default();
        s.push_str("<contact:addr>");
        for l in &a.street {
            let _ = write!(s, "<contact:street>{}</contact:street>", escape(l));
        }
        let _ = write!(
            s,
            "<contact:city>{}</contact:city>",
            escape(a.city.as_deref().unwrap_or(""))
        );
        if let Some(r) = &a.region {
            let _ = write!(s, "<contact:sp>{}</contact:sp>", escape(r));
        }
        if let Some(p) = &a.postal_code {
            let _ = write!(s, "<contact:pc>{}</contact:pc>", escape(p));
        }
        let _ = write!(
            s,
            "<contact:cc>{}</contact:cc></contact:addr></contact:postalInfo>",
            escape(a.country.as_deref().unwrap_or("RU"))
        );
        if let Some(p) = &c.phone {
            let _ = write!(s, "<contact:voice>{}</contact:voice>", escape(p));
        }
        let me = escape(self.registrar.as_deref().unwrap_or(""));
        let _ = write!(
            s,
            "<contact:email>{}</contact:email><contact:clID>{me}</contact:clID><contact:crID>{me}</contact:crID>",
            escape(c.email.as_deref().unwrap_or("")),
        );
        // Contacts stored before schema 3 have no creation time; the XSD
        // needs crDate: the epoch marks "unknown".
        let _ = write!(
            s,
            "<contact:crDate>{}</contact:crDate>",
            c.created
                .map_or_else(|| "1970-01-01T00:00:00Z".to_string(), ts)
        );
        let _ = write!(s, r#"<contact:disclose flag="1">"#);
        for f in &c.disclose {
            let _ = match f {
                DiscloseField::Name => write!(s, r#"<contact:name type="loc"/>"#),
                DiscloseField::Org => write!(s, r#"<contact:org type="loc"/>"#),
                DiscloseField::Address => write!(s, r#"<contact:addr type="loc"/>"#),
                DiscloseField::Phone => write!(s, "<contact:voice/>"),
                DiscloseField::Email => write!(s, "<contact:email/>"),
            };
        }
        s.push_str("</contact:disclose></contact:infData>");
        if c.disclose.is_empty() {
            // An empty flag="1" list is not valid XSD: say what is withheld.
            s = s.replace(
                r#"<contact:disclose flag="1"></contact:disclose>"#,
                r#"<contact:disclose flag="0"><contact:name type="loc"/><contact:org type="loc"/><contact:addr type="loc"/><contact:voice/><contact:email/></contact:disclose>"#,
            );
        }
        Ok(Out::ok(s))
    }

    fn contact_create(&self, obj: &Element) -> R {
        let id = self.contact_id(obj)?;
        let json = contact_json(id, obj, None)?;
        let c = crate::import::contact_from_json(json)
            .map_err(|v| from_registry(RegistryError::Invalid(v)))?;
        let c = self
            .app
            .registry()
            .contact_create(&self.actor(), c)
            .map_err(from_registry)?;
        Ok(Out::ok(format!(
            r#"<contact:creData xmlns:contact="{CONTACT_NS}"><contact:id>{}</contact:id><contact:crDate>{}</contact:crDate></contact:creData>"#,
            escape(id),
            ts(c.created.unwrap_or_else(|| self.app.now()))
        )))
    }

    fn contact_update(&self, obj: &Element) -> R {
        let id = self.contact_id(obj)?;
        let old = self.own_contact(id)?;
        if obj.child(CONTACT_NS, "add").is_some() || obj.child(CONTACT_NS, "rem").is_some() {
            return Err(Out::err(2102, "contact status values are not implemented"));
        }
        let chg = obj
            .child(CONTACT_NS, "chg")
            .ok_or_else(|| missing("contact:chg"))?;
        // Checked once against the record read here (a clear answer for a
        // bad value), then applied to the record as stored inside the
        // registry's transaction, so a concurrent update is not lost.
        let json = contact_json(id, chg, Some(&old))?;
        crate::import::contact_from_json(json)
            .map_err(|v| from_registry(RegistryError::Invalid(v)))?;
        self.app
            .registry()
            .contact_change(&self.actor(), id, |cur| {
                let json = contact_json(id, chg, Some(cur)).map_err(|o| {
                    RegistryError::Invalid(vec![crate::store::RecordError {
                        section: "contact",
                        index: 0,
                        field: "-".into(),
                        reason: o.msg,
                    }])
                })?;
                crate::import::contact_from_json(json).map_err(RegistryError::Invalid)
            })
            .map_err(from_registry)?;
        Ok(Out::ok(String::new()))
    }

    fn contact_delete(&self, obj: &Element) -> R {
        let id = self.contact_id(obj)?;
        self.app
            .registry()
            .contact_delete(&self.actor(), id)
            .map_err(from_registry)?;
        Ok(Out::ok(String::new()))
    }
}

/// `<domain:ns>`: `hostAttr` entries (a name and its glue, declared by
/// name) and `hostObj` names (host objects, linked by the registry).
fn ns_in(ns: &Element) -> Result<(Vec<NameserverIn>, Vec<String>), Out> {
    let (mut attrs, mut objs) = (Vec::new(), Vec::new());
    for h in &ns.children {
        match h.name.as_str() {
            "hostObj" => objs.push(h.text.clone()),
            "hostAttr" => attrs.push(NameserverIn {
                name: h
                    .text_of(DOMAIN_NS, "hostName")
                    .ok_or_else(|| missing("domain:hostName"))?
                    .to_string(),
                addresses: h
                    .all(DOMAIN_NS, "hostAddr")
                    .map(|a| a.text.clone())
                    .collect(),
            }),
            other => {
                return Err(Out::err(
                    2001,
                    format!("unexpected <{other}> in <domain:ns>"),
                ))
            }
        }
    }
    Ok((attrs, objs))
}

/// The `<host:addr>` values of `el`; an address of the other family than
/// its `ip` attribute says is refused (the address rules are the
/// registry's).
fn host_addrs(el: &Element) -> Result<Vec<String>, Out> {
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

/// The names in `<domain:ns>` (for `rem`: no host object needed).
fn ns_names(ns: &Element) -> Result<Vec<String>, Out> {
    ns.children
        .iter()
        .map(|h| match h.name.as_str() {
            "hostObj" => Ok(h.text.clone()),
            "hostAttr" => h
                .text_of(DOMAIN_NS, "hostName")
                .map(str::to_string)
                .ok_or_else(|| missing("domain:hostName")),
            other => Err(Out::err(
                2001,
                format!("unexpected <{other}> in <domain:ns>"),
            )),
        })
        .collect()
}

fn ds_list(el: &Element) -> Result<Vec<crate::ds::DsIn>, Out> {
    if el.child(SECDNS_NS, "keyData").is_some() {
        return Err(Out::err(
            2102,
            "secDNS keyData is not implemented: use dsData",
        ));
    }
    el.all(SECDNS_NS, "dsData")
        .map(|d| {
            let num = |k: &str| -> Result<i64, Out> {
                d.text_of(SECDNS_NS, k)
                    .ok_or_else(|| missing(&format!("secDNS:{k}")))?
                    .parse()
                    .map_err(|_| Out::err(2005, format!("secDNS:{k} is not a number")))
            };
            Ok(crate::ds::DsIn {
                key_tag: num("keyTag")?,
                algorithm: num("alg")?,
                digest_type: num("digestType")?,
                digest: d
                    .text_of(SECDNS_NS, "digest")
                    .ok_or_else(|| missing("secDNS:digest"))?
                    .to_string(),
            })
        })
        .collect()
}

fn validate_ds(list: &[crate::ds::DsIn]) -> Result<Vec<crate::model::DsRecord>, Out> {
    // Whether nameservers exist is the registry's rule (declare_ds).
    crate::ds::validate_set(list, true).map_err(|v| {
        Out::err(
            2306,
            v.into_iter()
                .map(|(f, r)| format!("{f}: {r}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

fn ds_data(kind: &str, ds: &[crate::model::DsRecord]) -> String {
    let mut s = format!(r#"<secDNS:{kind} xmlns:secDNS="{SECDNS_NS}">"#);
    for d in ds {
        let _ = write!(
            s,
            "<secDNS:dsData><secDNS:keyTag>{}</secDNS:keyTag><secDNS:alg>{}</secDNS:alg><secDNS:digestType>{}</secDNS:digestType><secDNS:digest>{}</secDNS:digest></secDNS:dsData>",
            d.key_tag,
            d.algorithm,
            d.digest_type,
            d.digest.to_ascii_uppercase()
        );
    }
    let _ = write!(s, "</secDNS:{kind}>");
    s
}

/// The import format's JSON form (docs/import.md) of a contact from `<contact:create>` or
/// `<contact:chg>` (over `old`), for [`crate::import::contact_from_json`].
fn contact_json(id: &str, el: &Element, old: Option<&Contact>) -> Result<serde_json::Value, Out> {
    use serde_json::{json, Value};
    let mut v = match old {
        Some(c) => {
            let mut v = serde_json::to_value(c).map_err(|_| Out::err(2400, "internal error"))?;
            if let Some(o) = v.as_object_mut() {
                // The registry's, not contact fields.
                o.remove("sponsor");
                o.remove("created");
            }
            v
        }
        None => json!({"handle": id, "kind": "person"}),
    };
    let Some(o) = v.as_object_mut() else {
        return Err(Out::err(2400, "internal error"));
    };
    // Both forms may be given; the international one is ASCII, a subset.
    let pi = el
        .all(CONTACT_NS, "postalInfo")
        .find(|p| p.attr("type") == Some("loc"))
        .or_else(|| el.child(CONTACT_NS, "postalInfo"));
    if old.is_none() && pi.is_none() {
        return Err(missing("contact:postalInfo"));
    }
    if let Some(pi) = pi {
        if let Some(n) = pi.text_of(CONTACT_NS, "name") {
            o.insert("name".into(), json!(n));
        }
        match pi.text_of(CONTACT_NS, "org") {
            Some(org) if !org.is_empty() => {
                o.insert("org".into(), json!(org));
                o.insert("kind".into(), json!("org"));
            }
            Some(_) => {
                o.insert("org".into(), Value::Null);
                o.insert("kind".into(), json!("person"));
            }
            None => {}
        }
        if let Some(a) = pi.child(CONTACT_NS, "addr") {
            let street: Vec<&str> = a
                .all(CONTACT_NS, "street")
                .map(|s| s.text.as_str())
                .collect();
            o.insert(
                "address".into(),
                json!({
                    "street": street,
                    "city": a.text_of(CONTACT_NS, "city"),
                    "region": a.text_of(CONTACT_NS, "sp"),
                    "postal_code": a.text_of(CONTACT_NS, "pc"),
                    "country": a.text_of(CONTACT_NS, "cc"),
                }),
            );
        }
    }
    if let Some(p) = el.text_of(CONTACT_NS, "voice") {
        o.insert(
            "phone".into(),
            if p.is_empty() { Value::Null } else { json!(p) },
        );
    }
    if let Some(e) = el.text_of(CONTACT_NS, "email") {
        o.insert("email".into(), json!(e));
    }
    if let Some(d) = el.child(CONTACT_NS, "disclose") {
        let listed: Vec<&str> = d
            .children
            .iter()
            .filter_map(|c| match c.name.as_str() {
                "name" => Some("name"),
                "org" => Some("org"),
                "addr" => Some("address"),
                "voice" => Some("phone"),
                "email" => Some("email"),
                _ => None,
            })
            .collect();
        let mut cur: Vec<String> = old
            .map(|c| {
                c.disclose
                    .iter()
                    .filter_map(|f| serde_json::to_value(f).ok()?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        match d.attr("flag") {
            Some("1" | "true") => cur.extend(listed.iter().map(|s| s.to_string())),
            Some("0" | "false") => cur.retain(|f| !listed.contains(&f.as_str())),
            _ => return Err(Out::err(2005, "disclose flag must be 0 or 1")),
        }
        o.insert("disclose".into(), json!(cur));
    }
    Ok(v)
}

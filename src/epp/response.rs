//! EPP XML out: a typed writer over quick-xml ([`Xml`]: every element is
//! closed by construction, text and attribute values are escaped by the
//! writer), the result of a command ([`Out`]), the RFC 5730 result texts
//! and the one mapping of a registry refusal to an EPP result.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::xml::EPP_NS;
use crate::model::Timestamp;
use crate::registry::RegistryError;

/// A well-formed XML fragment under construction. Elements are written
/// with [`Xml::el`] (children in a closure, so every start has its end),
/// [`Xml::text`] and [`Xml::empty`]; nothing takes raw markup.
pub struct Xml {
    buf: Vec<u8>,
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Xml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.buf))
    }
}

fn start<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
    let mut s = BytesStart::new(name);
    for a in attrs {
        // `(&str, &str)` attributes are escaped by quick-xml.
        s.push_attribute(*a);
    }
    s
}

impl Xml {
    pub fn new() -> Self {
        Self { buf: Vec::new() }
    }

    fn put(&mut self, e: Event<'_>) {
        // Writing to a Vec cannot fail.
        let _ = Writer::new(&mut self.buf).write_event(e);
    }

    /// `<name attrs>…</name>`, the children written by `body`.
    pub fn el(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        body: impl FnOnce(&mut Self),
    ) -> &mut Self {
        self.put(Event::Start(start(name, attrs)));
        body(self);
        self.put(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name>text</name>`.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.text_with(name, &[], text)
    }

    /// `<name attrs>text</name>`.
    pub fn text_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.put(Event::Start(start(name, attrs)));
        self.put(Event::Text(BytesText::new(text)));
        self.put(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.put(Event::Empty(start(name, attrs)));
        self
    }

    /// Append another fragment (built by this writer, so well-formed).
    pub fn append(&mut self, other: Xml) -> &mut Self {
        self.buf.extend(other.buf);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> String {
        String::from_utf8(self.buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// A whole EPP document: the XML declaration and `<epp>`.
    pub fn document(body: impl FnOnce(&mut Self)) -> String {
        let mut x = Self::new();
        x.put(Event::Decl(BytesDecl::new(
            "1.0",
            Some("UTF-8"),
            Some("no"),
        )));
        x.el("epp", &[("xmlns", EPP_NS)], body);
        x.finish()
    }
}

/// A fragment built in one closure.
pub fn fragment(body: impl FnOnce(&mut Xml)) -> Xml {
    let mut x = Xml::new();
    body(&mut x);
    x
}

/// The message queue state shown with a poll answer.
#[derive(Debug)]
pub struct MsgQ {
    pub count: usize,
    pub id: u64,
    /// The message at the head: when and what (`poll op="req"`).
    pub head: Option<(Timestamp, String)>,
}

/// An EPP result: the code, the message and what goes inside.
#[derive(Debug)]
pub struct Out {
    pub code: u16,
    pub msg: String,
    pub msg_q: Option<Box<MsgQ>>,
    pub res: Xml,
    pub ext: Xml,
}

/// What a flow answers: a success or a refusal, both rendered.
pub type R = Result<Out, Out>;

impl Out {
    /// 1000 with `res` as `<resData>`.
    pub fn ok(res: Xml) -> Self {
        Self::code(1000, res)
    }
    /// 1000 with nothing inside.
    pub fn done() -> Self {
        Self::ok(Xml::new())
    }
    pub fn code(code: u16, res: Xml) -> Self {
        Out {
            code,
            msg: standard_msg(code).into(),
            msg_q: None,
            res,
            ext: Xml::new(),
        }
    }
    pub fn err(code: u16, msg: impl Into<String>) -> Self {
        Out {
            code,
            msg: msg.into(),
            msg_q: None,
            res: Xml::new(),
            ext: Xml::new(),
        }
    }
    /// The standard text of the code followed by `detail`.
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.msg = format!("{}: {detail}", self.msg);
        self
    }

    /// The `<response>` document.
    pub fn render(self, cltrid: Option<&str>, sv_trid: &str) -> String {
        let Out {
            code,
            msg,
            msg_q,
            res,
            ext,
        } = self;
        Xml::document(|x| {
            x.el("response", &[], |x| {
                x.el("result", &[("code", &code.to_string())], |x| {
                    x.text("msg", &msg);
                });
                if let Some(q) = msg_q.map(|q| *q) {
                    let (count, id) = (q.count.to_string(), q.id.to_string());
                    let attrs = [("count", count.as_str()), ("id", id.as_str())];
                    match q.head {
                        Some((at, text)) => {
                            x.el("msgQ", &attrs, |x| {
                                x.text("qDate", &ts(at)).text("msg", &text);
                            });
                        }
                        None => {
                            x.empty("msgQ", &attrs);
                        }
                    }
                }
                if !res.is_empty() {
                    x.el("resData", &[], |x| {
                        x.append(res);
                    });
                }
                if !ext.is_empty() {
                    x.el("extension", &[], |x| {
                        x.append(ext);
                    });
                }
                x.el("trID", &[], |x| {
                    if let Some(c) = cltrid {
                        x.text("clTRID", c);
                    }
                    x.text("svTRID", sv_trid);
                });
            });
        })
    }
}

/// RFC 5730 §3 texts.
pub fn standard_msg(code: u16) -> &'static str {
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

/// The EPP result of a registry refusal (the one mapping: the code is the
/// registry's, the message names the rule).
pub fn from_registry(e: RegistryError) -> Out {
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

/// A store read an edge makes itself failed.
pub fn internal<E>(_: E) -> Out {
    Out::err(2400, "internal error")
}

pub fn missing(what: &str) -> Out {
    Out::err(2003, format!("required parameter missing: {what}"))
}

pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_by_construction() {
        let x = fragment(|x| {
            x.el("a:b", &[("xmlns:a", "u"), ("v", "\"<&>'")], |x| {
                x.text("a:c", "<x>&'\"").empty("a:d", &[("s", "ok")]);
            });
        });
        assert_eq!(
            x.finish(),
            r#"<a:b xmlns:a="u" v="&quot;&lt;&amp;&gt;&apos;"><a:c>&lt;x&gt;&amp;&apos;&quot;</a:c><a:d s="ok"/></a:b>"#
        );
    }

    #[test]
    fn a_response_has_result_msgq_resdata_extension_and_trid_in_order() {
        let mut o = Out::ok(fragment(|x| {
            x.text("r", "1");
        }));
        o.ext = fragment(|x| {
            x.text("e", "2");
        });
        o.msg_q = Some(Box::new(MsgQ {
            count: 2,
            id: 7,
            head: None,
        }));
        let s = o.render(Some("ab<c"), "SV-1");
        assert_eq!(
            s,
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>"#,
                r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><response>"#,
                r#"<result code="1000"><msg>Command completed successfully</msg></result>"#,
                r#"<msgQ count="2" id="7"/><resData><r>1</r></resData>"#,
                r#"<extension><e>2</e></extension>"#,
                r#"<trID><clTRID>ab&lt;c</clTRID><svTRID>SV-1</svTRID></trID></response></epp>"#
            )
        );
        // What it writes, the EPP reader reads back.
        assert!(super::super::xml::parse(s.as_bytes()).is_ok());
    }
}

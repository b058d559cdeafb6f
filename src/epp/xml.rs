//! EPP XML in: a small namespace-resolved element tree read with
//! quick-xml. A document type declaration is refused outright (no DTD, no
//! entity of any kind but XML's five predefined ones), so entity expansion
//! attacks (billion laughs, external entities) cannot start; depth and
//! element count are bounded.
//!
//! EPP XML out is [`super::response`]'s typed writer.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

pub const EPP_NS: &str = "urn:ietf:params:xml:ns:epp-1.0";
pub const DOMAIN_NS: &str = "urn:ietf:params:xml:ns:domain-1.0";
pub const CONTACT_NS: &str = "urn:ietf:params:xml:ns:contact-1.0";
pub const HOST_NS: &str = "urn:ietf:params:xml:ns:host-1.0";
pub const SECDNS_NS: &str = "urn:ietf:params:xml:ns:secDNS-1.1";
pub const RGP_NS: &str = "urn:ietf:params:xml:ns:rgp-1.0";

const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 4096;
const MAX_TEXT: usize = 16_384;

/// One element: namespace URI, local name, attributes (local names), text
/// content (concatenated, trimmed) and children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("document type declarations are not accepted")]
    Doctype,
    #[error("the document is nested too deeply or has too many elements")]
    TooBig,
    #[error("not well-formed XML: {0}")]
    Malformed(String),
}

impl Element {
    /// The first child with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name && c.ns == ns)
    }
    pub fn all<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name == name && c.ns == ns)
    }
    /// Text of a child, if the child is there.
    pub fn text_of(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.as_str())
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse one EPP instance into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(input);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut root: Option<Element> = None;
    let mut buf = Vec::new();
    let bad = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        let (ns, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| bad(&e))?;
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(XmlError::Malformed(format!(
                    "undeclared namespace prefix '{}'",
                    String::from_utf8_lossy(&p)
                )))
            }
        };
        match ev {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooBig);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                let mut el = Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Default::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(&e))?;
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let v = a.unescape_value().map_err(|e| bad(&e))?.into_owned();
                    legal_chars(&v)?;
                    el.attrs.push((
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                        v,
                    ));
                }
                if matches!(ev, Event::Empty(_)) {
                    attach(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                el.text = el.text.trim().to_string();
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| bad(&e))?;
                legal_chars(&s)?;
                if let Some(top) = stack.last_mut() {
                    if top.text.len() + s.len() > MAX_TEXT {
                        return Err(XmlError::TooBig);
                    }
                    top.text.push_str(&s);
                } else if !s.trim().is_empty() {
                    return Err(XmlError::Malformed("text outside the root element".into()));
                }
            }
            Event::GeneralRef(r) => {
                // Only character references; a named entity would need a DTD.
                let c = r
                    .resolve_char_ref()
                    .map_err(|e| bad(&e))?
                    .or_else(|| {
                        quick_xml::escape::resolve_predefined_entity(&r.decode().ok()?)
                            .and_then(|s| s.chars().next())
                    })
                    .ok_or_else(|| XmlError::Malformed("unknown entity reference".into()))?;
                if !is_xml_char(c) {
                    return Err(illegal(c));
                }
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(&t);
                legal_chars(&s)?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unclosed element".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

/// XML 1.0 §2.2 `Char`: C0 controls other than tab, LF and CR (and
/// U+FFFE/U+FFFF) are not well-formed, raw or as a character reference
/// (WFC: Legal Character). quick-xml does not check this.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn illegal(c: char) -> XmlError {
    XmlError::Malformed(format!(
        "character U+{:04X} is not allowed in XML",
        c as u32
    ))
}

fn legal_chars(s: &str) -> Result<(), XmlError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(illegal(c)),
        None => Ok(()),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn billion_laughs_is_refused() {
        let doc = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><hello/>&lol2;</epp>"#;
        assert!(matches!(parse(doc), Err(XmlError::Doctype)));
        // Without the DTD the reference is simply unknown.
        let doc = br#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><x>&lol;</x></epp>"#;
        assert!(parse(doc).is_err());
    }

    #[test]
    fn illegal_characters_are_not_well_formed() {
        for doc in [
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x>a&#x1b;[31m</x></epp>",
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x>a&#0;</x></epp>",
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x>a\u{1b}b</x></epp>",
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x a=\"&#x7;\"/></epp>",
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x><![CDATA[\u{8}]]></x></epp>",
            "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x>&#xFFFE;</x></epp>",
        ] {
            assert!(
                matches!(parse(doc.as_bytes()), Err(XmlError::Malformed(_))),
                "{doc:?}"
            );
        }
        // Tab, LF and CR are characters; so are references to them.
        let doc = "<epp xmlns=\"urn:ietf:params:xml:ns:epp-1.0\"><x>a&#9;b&#xA;\tc</x></epp>";
        assert_eq!(parse(doc.as_bytes()).unwrap().children[0].text, "a\tb\n\tc");
    }

    #[test]
    fn namespaces_resolve_whatever_the_prefix() {
        let doc = br#"<e:epp xmlns:e="urn:ietf:params:xml:ns:epp-1.0"><e:command><e:check>
<d:check xmlns:d="urn:ietf:params:xml:ns:domain-1.0"><d:name>a&amp;b.ru</d:name></d:check>
</e:check></e:command></e:epp>"#;
        let r = parse(doc).unwrap();
        assert_eq!((r.ns.as_str(), r.name.as_str()), (EPP_NS, "epp"));
        let c = r
            .child(EPP_NS, "command")
            .unwrap()
            .child(EPP_NS, "check")
            .unwrap();
        let d = c.child(DOMAIN_NS, "check").unwrap();
        assert_eq!(d.text_of(DOMAIN_NS, "name"), Some("a&b.ru"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(parse(doc.as_bytes()), Err(XmlError::TooBig)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn parser_never_panics(s in "(<[a-z:]{1,4}( [a-z:]{1,3}=\"[^\"<]{0,4}\")?/?>|</[a-z:]{1,4}>|[^<]{0,5}|&[a-z#0-9]{0,5};|<!DOCTYPE|<!\\[CDATA\\[)*") {
            let _ = parse(s.as_bytes());
        }
        #[test]
        fn parser_never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&b);
        }
    }
}

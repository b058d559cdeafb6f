//! What every EPP flow shares: the logged-in registrar's context, the
//! `<check>` answer and the repository object IDs. A flow is one function
//! per command (in `domain`, `transfer`, `contact`, `host`, `poll`): parse
//! the command element, call the registry service, render an [`Out`].

use super::deps::Deps;
use super::response::{fragment, Out, R};
use super::xml::Element;
use crate::registry::{Actor, Registry};

/// The context of one command from a logged-in registrar.
pub struct Ctx<'a> {
    /// The process as EPP sees it.
    pub deps: &'a Deps,
    /// The registrar's handle.
    pub registrar: &'a str,
    /// secDNS was negotiated at login.
    pub secdns: bool,
    /// RGP was negotiated at login.
    pub rgp: bool,
}

impl Ctx<'_> {
    pub fn actor(&self) -> Actor {
        Actor::Registrar(self.registrar.to_string())
    }
    pub fn registry(&self) -> Registry<'_> {
        self.deps.registry()
    }
}

/// A `<check>` answer (RFC 5730 §2.9.2.1) for the 1 to 50 `key` elements
/// of the `prefix` object: `avail` says `Ok(form shown)` when one is
/// available, `Err(reason)` when not.
pub fn check_answer(
    obj: &Element,
    prefix: &str,
    ns: &str,
    key: &str,
    what: &str,
    avail: impl Fn(&str) -> Result<Result<String, String>, Out>,
) -> R {
    let items: Vec<&str> = obj.all(ns, key).map(|e| e.text.as_str()).collect();
    if items.is_empty() || items.len() > 50 {
        return Err(Out::err(2001, format!("check 1 to 50 {what}")));
    }
    let answers = items
        .iter()
        .map(|n| avail(n))
        .collect::<Result<Vec<_>, Out>>()?;
    let (chk, cd, k, reason) = (
        format!("{prefix}:chkData"),
        format!("{prefix}:cd"),
        format!("{prefix}:{key}"),
        format!("{prefix}:reason"),
    );
    let xmlns = format!("xmlns:{prefix}");
    Ok(Out::ok(fragment(|x| {
        x.el(&chk, &[(&xmlns, ns)], |x| {
            for (n, a) in items.iter().zip(answers) {
                x.el(&cd, &[], |x| match a {
                    Ok(shown) => {
                        x.text_with(&k, &[("avail", "1")], &shown);
                    }
                    Err(why) => {
                        x.text_with(&k, &[("avail", "0")], n).text(&reason, &why);
                    }
                });
            }
        });
    })))
}

/// The repository object ID of a name or handle.
pub fn roid(name: &str) -> String {
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

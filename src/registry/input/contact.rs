//! A contact as an edge declares it, and the one contact rule.

use crate::model::{Contact, ContactKind, DiscloseField, PostalAddress};
use crate::text;

use super::handle::{handle_must, valid_handle};
use crate::registry::error::{self, Result};

/// A postal address as an edge declares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressIn {
    pub street: Vec<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A contact as an edge declares it (import, EPP `contact:create` and
/// `contact:update`); [`ContactIn::validate`] is the one contact rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactIn {
    pub handle: String,
    pub kind: ContactKind,
    pub name: Option<String>,
    pub org: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<AddressIn>,
    pub tax_id: Option<String>,
    pub birth_date: Option<String>,
    pub passport: Option<String>,
    pub disclose: Vec<DiscloseField>,
    /// The sponsoring registrar where the edge names it (import); the
    /// registry sets it for a registrar's own contact.
    pub registrar: Option<String>,
}

impl From<Contact> for ContactIn {
    fn from(c: Contact) -> Self {
        Self::from(&c)
    }
}

impl From<&Contact> for ContactIn {
    /// A stored contact as input again (a change over the stored record).
    fn from(c: &Contact) -> Self {
        ContactIn {
            handle: c.handle.clone(),
            kind: c.kind,
            name: c.name.clone(),
            org: c.org.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            address: c.address.as_ref().map(|a| AddressIn {
                street: a.street.clone(),
                city: a.city.clone(),
                region: a.region.clone(),
                postal_code: a.postal_code.clone(),
                country: a.country.clone(),
            }),
            tax_id: c.tax_id.clone(),
            birth_date: c.birth_date.clone(),
            passport: c.passport.clone(),
            disclose: c.disclose.clone(),
            registrar: c.sponsor.clone(),
        }
    }
}

/// Free text is stored without leading or trailing whitespace: it carries
/// no meaning, and a leading space would shift WHOIS's value column.
fn trim_str(s: String) -> String {
    match s.trim() {
        t if t.len() == s.len() => s,
        t => t.to_string(),
    }
}

fn trim(s: Option<String>) -> Option<String> {
    s.map(trim_str)
}

impl ContactIn {
    /// [`ContactIn::validate`] with its refusals as the registry's
    /// `Invalid` (section `contact`; reasons escaped, as they may quote
    /// the input).
    pub fn checked(self) -> Result<Contact> {
        self.validate().map_err(|v| {
            let escaped = v
                .into_iter()
                .map(|(f, r)| (f, text::escape(&r).into_owned()));
            error::fields("contact", escaped.collect())
        })
    }

    /// The contact rule (handle, kind, the text policy, dates, country):
    /// the contact to store, or every refusal as (field, reason).
    pub fn validate(self) -> Result<Contact, Vec<(String, String)>> {
        let mut e: Vec<(String, String)> = Vec::new();
        let mut push = |f: &str, r: String| e.push((f.to_string(), r));
        if !valid_handle(&self.handle) {
            push("handle", handle_must());
        }
        let (name, org) = (trim(self.name), trim(self.org));
        let (tax_id, passport) = (trim(self.tax_id), trim(self.passport));
        match self.kind {
            ContactKind::Person if name.is_none() => push("name", "a person needs a name".into()),
            ContactKind::Org if org.is_none() => push("org", "an organisation needs org".into()),
            _ => {}
        }
        let check_text = |push: &mut dyn FnMut(&str, String), f: &str, v: &Option<String>, max| {
            if let Some(s) = v {
                if let Err(err) = text::check_line(f, s, max) {
                    push(f, err.to_string());
                }
            }
        };
        for (f, v) in [
            ("name", &name),
            ("org", &org),
            ("tax_id", &tax_id),
            ("passport", &passport),
        ] {
            check_text(&mut push, f, v, text::MAX_TEXT);
        }
        type Rule = fn(&str, &str) -> Result<(), text::TextError>;
        for (f, v, rule) in [
            ("email", &self.email, text::check_email as Rule),
            ("phone", &self.phone, text::check_phone as Rule),
        ] {
            if let Some(s) = v {
                if let Err(err) = rule(f, s) {
                    push(f, err.to_string());
                }
            }
        }
        if let Some(b) = &self.birth_date {
            if chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_err() {
                push("birth_date", format!("'{b}' is not a date (YYYY-MM-DD)"));
            }
        }
        let address = self.address.map(|a| {
            let street: Vec<String> = a.street.into_iter().map(trim_str).collect();
            if let Err(err) =
                text::check_count("address.street", street.len(), text::MAX_STREET_LINES)
            {
                push("address.street", err.to_string());
            } else {
                for (j, s) in street.iter().enumerate() {
                    let f = format!("address.street[{j}]");
                    if let Err(err) = text::check_line(&f, s, text::MAX_TEXT) {
                        push(&f, err.to_string());
                    }
                }
            }
            let (city, region, postal_code) = (trim(a.city), trim(a.region), trim(a.postal_code));
            check_text(&mut push, "address.city", &city, text::MAX_TEXT);
            check_text(&mut push, "address.region", &region, text::MAX_TEXT);
            check_text(
                &mut push,
                "address.postal_code",
                &postal_code,
                text::MAX_POSTAL_CODE,
            );
            if let Some(cc) = &a.country {
                if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
                    push(
                        "address.country",
                        format!("'{}' is not an ISO 3166 two-letter code", text::escape(cc)),
                    );
                }
            }
            PostalAddress {
                street,
                city,
                region,
                postal_code,
                country: a.country.map(|c| c.to_ascii_uppercase()),
            }
        });
        let mut disclose = self.disclose;
        disclose.sort();
        disclose.dedup();
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Contact {
            handle: self.handle,
            kind: self.kind,
            name,
            org,
            email: self.email,
            phone: self.phone,
            address,
            tax_id,
            birth_date: self.birth_date,
            passport,
            disclose,
            sponsor: self.registrar,
            created: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::handle::HANDLE_RULE;
    use super::*;

    fn person(h: &str) -> ContactIn {
        ContactIn {
            handle: h.into(),
            kind: ContactKind::Person,
            name: Some("  Ivan Petrov ".into()),
            org: None,
            email: Some("ivan@example.net".into()),
            phone: None,
            address: Some(AddressIn {
                street: vec![" Tverskaya 1".into()],
                city: Some("Moscow ".into()),
                country: Some("ru".into()),
                ..Default::default()
            }),
            tax_id: None,
            birth_date: None,
            passport: None,
            disclose: vec![
                DiscloseField::Email,
                DiscloseField::Name,
                DiscloseField::Email,
            ],
            registrar: None,
        }
    }

    #[test]
    fn a_contact_is_tidied_on_the_way_in() {
        let c = person("C-1").validate().unwrap();
        assert_eq!(c.name.as_deref(), Some("Ivan Petrov"));
        let a = c.address.unwrap();
        assert_eq!(a.street, vec!["Tverskaya 1"]);
        assert_eq!(a.city.as_deref(), Some("Moscow"));
        assert_eq!(a.country.as_deref(), Some("RU"));
        assert_eq!(c.disclose, vec![DiscloseField::Name, DiscloseField::Email]);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let mut c = person("bad handle");
        c.name = None;
        c.email = Some("not an address".into());
        c.birth_date = Some("1990-13-01".into());
        if let Some(a) = c.address.as_mut() {
            a.country = Some("RUS".into());
        }
        let errs = c.validate().unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["handle", "name", "email", "birth_date", "address.country"]
        );
        assert_eq!(errs[0].1, format!("must be {HANDLE_RULE}"));
        let mut org = person("O");
        org.kind = ContactKind::Org;
        assert_eq!(org.validate().unwrap_err()[0].0, "org");
    }
}

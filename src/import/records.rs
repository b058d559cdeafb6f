//! The import format's records (docs/import.md) and their field checks.

use serde::Deserialize;

use crate::model::{ContactKind, DiscloseField, Timestamp};
use crate::registry::input::{not_a_handle, valid_handle, AddressIn, ContactIn, NameserverIn};
use crate::store::RecordError;
use crate::text;

use super::error::MAX_REPORTED_ERRORS;

/// Free text is stored without leading or trailing whitespace: it carries
/// no meaning, and a leading space would shift WHOIS's value column.
pub(super) mod tidy {
    use serde::{Deserialize, Deserializer};

    fn trim(s: String) -> String {
        let t = s.trim();
        if t.len() == s.len() {
            s
        } else {
            t.to_string()
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        String::deserialize(d).map(trim)
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(trim))
    }

    /// A field that is present (`Some`), possibly `null` (`Some(None)`).
    pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Vec::<String>::deserialize(d).map(|v| v.into_iter().map(trim).collect())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistrarIn {
    pub(super) handle: String,
    #[serde(deserialize_with = "tidy::string")]
    pub(super) name: String,
    pub(super) url: Option<String>,
    pub(super) email: Option<String>,
    pub(super) api_token_sha256: Option<String>,
    #[serde(default)]
    pub(super) epp_cert_sha256: Vec<String>,
    pub(super) epp_password_hash: Option<String>,
    /// Absent: left as stored; `null`: removed.
    #[serde(default, deserialize_with = "tidy::present")]
    pub(super) webhook: Option<Option<WebhookIn>>,
}

/// A reseller and the registrar it belongs to (docs/import.md
/// "Resellers").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResellerIn {
    pub(super) handle: String,
    #[serde(deserialize_with = "tidy::string")]
    pub(super) name: String,
    pub(super) registrar: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookIn {
    pub(super) url: String,
    pub(super) secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressJson {
    #[serde(default, deserialize_with = "tidy::list")]
    pub(super) street: Vec<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) city: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) region: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) postal_code: Option<String>,
    pub(super) country: Option<String>,
}

/// A contact's JSON form, turned into the registry's
/// [`crate::registry::input::ContactIn`] (which holds the contact rule).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactJson {
    pub(super) handle: String,
    pub(super) kind: ContactKind,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) org: Option<String>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) address: Option<AddressJson>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) tax_id: Option<String>,
    pub(super) birth_date: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    pub(super) passport: Option<String>,
    #[serde(default)]
    pub(super) disclose: Vec<DiscloseField>,
    /// The sponsoring registrar (docs/import.md "Ownership"); without it,
    /// the registrar of the file's domains that name the contact.
    #[serde(default)]
    pub(super) registrar: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainIn {
    pub(super) name: String,
    pub(super) registrar: String,
    pub(super) registrant: String,
    pub(super) admin: Option<String>,
    pub(super) tech: Option<String>,
    pub(super) created: Timestamp,
    pub(super) paid_till: Option<Timestamp>,
    #[serde(default)]
    pub(super) nameservers: Vec<NameserverIn>,
    pub(super) auth_info: Option<String>,
    /// When the code stops being accepted; without it,
    /// `lifecycle.auth_code_lifetime` after the import.
    pub(super) auth_info_expires: Option<Timestamp>,
    #[serde(default)]
    pub(super) hold: bool,
    pub(super) verification_requested: Option<Timestamp>,
    pub(super) transferred: Option<Timestamp>,
    pub(super) reseller: Option<String>,
    #[serde(default)]
    pub(super) ds: Vec<crate::registry::input::DsIn>,
}

pub(super) struct Errors {
    /// The first [`MAX_REPORTED_ERRORS`].
    pub(super) list: Vec<RecordError>,
    /// All of them.
    pub(super) total: usize,
    pub(super) section: &'static str,
    pub(super) index: usize,
}

impl Errors {
    pub(super) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.total += 1;
        if self.list.len() >= MAX_REPORTED_ERRORS {
            return;
        }
        self.list.push(RecordError {
            section: self.section,
            index: self.index,
            field: field.into(),
            // Reasons may quote the input (serde's messages do): escaped,
            // so a report cannot forge lines or drive the operator's terminal.
            reason: text::escape(&reason.into()).into_owned(),
        });
    }
}

impl ContactJson {
    pub(super) fn input(self) -> ContactIn {
        ContactIn {
            handle: self.handle,
            kind: self.kind,
            name: self.name,
            org: self.org,
            email: self.email,
            phone: self.phone,
            address: self.address.map(|a| AddressIn {
                street: a.street,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country: a.country,
            }),
            tax_id: self.tax_id,
            birth_date: self.birth_date,
            passport: self.passport,
            disclose: self.disclose,
            registrar: self.registrar,
        }
    }
}

/// One outside text field under the text policy (`crate::text`).
pub(super) fn check_text(e: &mut Errors, field: &str, v: &Option<String>, max: usize) {
    if let Some(s) = v {
        if let Err(err) = text::check_line(field, s, max) {
            e.push(field, err.to_string());
        }
    }
}

pub(super) fn check_with(
    e: &mut Errors,
    field: &str,
    v: &Option<String>,
    rule: fn(&str, &str) -> Result<(), text::TextError>,
) {
    if let Some(s) = v {
        if let Err(err) = rule(field, s) {
            e.push(field, err.to_string());
        }
    }
}

/// A reference to a registrar or contact: a handle, so nothing but handle
/// characters reaches an error message or the store.
pub(super) fn check_ref(e: &mut Errors, field: &str, v: Option<&str>) {
    if let Some(h) = v {
        if !valid_handle(h) {
            e.push(field, not_a_handle(h));
        }
    }
}

//! Reading an import file's sections record by record, as raw JSON.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The sections of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Registrars,
    Resellers,
    Contacts,
    Domains,
}

pub(super) const SECTIONS: &[&str] = &["registrars", "resellers", "contacts", "domains"];

/// Reads the top-level object and hands each record of each section, as
/// raw JSON, to the callback as soon as it is read.
pub(super) struct FileSeed<'f, F>(pub(super) &'f mut F);

impl<'de, F: FnMut(Section, usize, &RawValue)> DeserializeSeed<'de> for FileSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Section, usize, &RawValue)> Visitor<'de> for FileSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with registrars, contacts and domains")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<String>()? {
            let (section, i) = match key.as_str() {
                "registrars" => (Section::Registrars, 0),
                "resellers" => (Section::Resellers, 1),
                "contacts" => (Section::Contacts, 2),
                "domains" => (Section::Domains, 3),
                other => return Err(A::Error::unknown_field(other, SECTIONS)),
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(A::Error::duplicate_field(SECTIONS[i]));
            }
            map.next_value_seed(SectionSeed {
                section,
                f: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

pub(super) struct SectionSeed<'f, F> {
    pub(super) section: Section,
    pub(super) f: &'f mut F,
}

impl<'de, F: FnMut(Section, usize, &RawValue)> DeserializeSeed<'de> for SectionSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Section, usize, &RawValue)> Visitor<'de> for SectionSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        // Owned: a record read from a stream cannot borrow from it.
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            (self.f)(self.section, i, &raw);
            i += 1;
        }
        Ok(())
    }
}

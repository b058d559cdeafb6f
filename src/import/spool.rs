//! The validated records spooled to a temporary file (large imports).

use crate::model::{Contact, Domain, Registrar, Reseller, Webhook};
use crate::names::DomainName;
use crate::store::{ImportRecord, ImportSource, StoreError};

use super::parse::Sink;

/// Records spooled to an unnamed temporary file (postcard, back to back),
/// with where each one starts: the validated file is written out once and
/// read back once, and memory holds only the offsets.
pub(super) struct Spill {
    pub(super) file: std::fs::File,
    pub(super) buf: Vec<u8>,
    /// Start of each record; the last entry is the end of the last record.
    pub(super) offsets: Vec<u64>,
}

/// Bytes buffered before a spill writes them out.
pub(super) const SPILL_BUF: usize = 1 << 20;

impl Spill {
    pub(super) fn new() -> std::io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
            buf: Vec::with_capacity(SPILL_BUF),
            offsets: vec![0],
        })
    }

    pub(super) fn push<T: serde::Serialize>(&mut self, v: &T) -> std::io::Result<()> {
        use std::io::Write;
        let bytes = postcard::to_allocvec(v).map_err(std::io::Error::other)?;
        self.buf.extend_from_slice(&bytes);
        let end = self.offsets.last().copied().unwrap_or(0) + bytes.len() as u64;
        self.offsets.push(end);
        if self.buf.len() >= SPILL_BUF {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.file.write_all(&self.buf)?;
        self.buf = Vec::new();
        self.offsets.shrink_to_fit();
        self.file.flush()
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(super) fn get<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, StoreError> {
        use std::os::unix::fs::FileExt;
        let (start, end) = (self.offsets[i], self.offsets[i + 1]);
        let mut bytes = vec![0u8; (end - start) as usize];
        let spool = |e: String| StoreError::Backend(format!("import spool file: {e}"));
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|e| spool(e.to_string()))?;
        postcard::from_bytes(&bytes).map_err(|e| spool(e.to_string()))
    }
}

/// A validated import file, spooled to disk: memory holds the registrars,
/// the domain names and offsets, not the records, so an import of a million
/// domains runs in bounded memory. Read back in write order
/// ([`ImportSource`]), any number of times.
pub struct Spooled {
    pub(super) registrars: Vec<Registrar>,
    pub(super) webhooks: Vec<(String, Option<Webhook>)>,
    pub(super) resellers: Vec<Reseller>,
    pub(super) contacts: Spill,
    pub(super) domains: Spill,
    /// The domains' names, in file order.
    pub(super) names: Vec<DomainName>,
}

impl Spooled {
    pub(super) fn new() -> std::io::Result<Spooled> {
        Ok(Spooled {
            registrars: Vec::new(),
            webhooks: Vec::new(),
            resellers: Vec::new(),
            contacts: Spill::new()?,
            domains: Spill::new()?,
            names: Vec::new(),
        })
    }

    /// How many domains the file holds.
    pub fn domains(&self) -> usize {
        self.names.len()
    }

    /// The records in write order (registrars, contacts, domains by name).
    pub fn source(&self) -> impl ImportSource + '_ {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
        SpoolSource {
            spooled: self,
            pos: 0,
            order,
        }
    }
}

impl Sink for Spooled {
    fn webhooks(&mut self) -> &mut Vec<(String, Option<Webhook>)> {
        &mut self.webhooks
    }
    fn resellers(&mut self) -> &mut Vec<Reseller> {
        &mut self.resellers
    }
    fn registrar(&mut self, r: Registrar) -> std::io::Result<()> {
        self.registrars.push(r);
        Ok(())
    }
    fn contact(&mut self, c: Contact) -> std::io::Result<()> {
        self.contacts.push(&c)
    }
    fn domain(&mut self, d: Domain) -> std::io::Result<()> {
        self.domains.push(&d)?;
        self.names.push(d.name);
        Ok(())
    }
}

pub(super) struct SpoolSource<'a> {
    pub(super) spooled: &'a Spooled,
    pub(super) pos: usize,
    pub(super) order: Vec<u32>,
}

impl ImportSource for SpoolSource<'_> {
    fn next_record(&mut self) -> Result<Option<ImportRecord>, StoreError> {
        let s = self.spooled;
        let (w, c) = (s.webhooks.len(), s.contacts.len());
        let rs = s.resellers.len();
        let r = s.registrars.len() + w;
        let p = self.pos;
        self.pos += 1;
        Ok(if p < r - w {
            Some(ImportRecord::Registrar(s.registrars[p].clone()))
        } else if p < r {
            let (h, hook) = &s.webhooks[p - (r - w)];
            Some(ImportRecord::Webhook {
                registrar: h.clone(),
                hook: hook.clone(),
            })
        } else if p < r + rs {
            Some(ImportRecord::Reseller(s.resellers[p - r].clone()))
        } else if p - rs < r + c {
            let p = p - rs;
            Some(ImportRecord::Contact(s.contacts.get(p - r)?))
        } else {
            match self.order.get(p - rs - r - c) {
                Some(&i) => Some(ImportRecord::Domain {
                    index: i as usize,
                    domain: s.domains.get(i as usize)?,
                }),
                None => None,
            }
        })
    }
}

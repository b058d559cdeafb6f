//! `zonekeeper store check` ([`Maintenance`]): set-wise joins for the
//! links, and each domain against the shared definition
//! ([`super::super::verify`]).

use super::*;

/// A domain's row with what is derived from it, for `store check`.
pub(super) struct DomainRow {
    name: String,
    rec: Vec<u8>,
    /// Its delegation record.
    deleg: Option<Vec<u8>>,
    /// Its `host_domains` and `domain_contacts` rows.
    hosts: Vec<String>,
    contacts: Vec<String>,
    registrar: String,
    reseller: Option<String>,
    pending_transfer: bool,
}

impl Maintenance for PgStore {
    /// VACUUM (ANALYZE): dead rows' space reused, planner statistics
    /// fresh after a bulk import.
    fn compact(&mut self) -> Result<()> {
        self.with(|c| async move { c.batch_execute("VACUUM (ANALYZE)").await.map_err(pgerr) })
    }

    /// The invariants the redb backend checks, as queries (each domain
    /// and delegation record decoded once).
    fn verify(&self) -> Result<Vec<String>> {
        let mut problems: Vec<String> = self.with(|c| async move {
            let mut p = Vec::new();
            let checks: [(&str, &str); 7] = [
                (
                    "SELECT g.name FROM delegation g LEFT JOIN domains d ON d.name = g.name WHERE d.name IS NULL",
                    "delegation record without a domain",
                ),
                (
                    "SELECT d.name FROM domains d LEFT JOIN registrars r ON r.handle = d.registrar WHERE r.handle IS NULL",
                    "registrar missing",
                ),
                (
                    "SELECT x.domain || ' (' || x.contact || ')' FROM domain_contacts x LEFT JOIN contacts c ON c.handle = x.contact WHERE c.handle IS NULL",
                    "contact missing",
                ),
                (
                    "SELECT x.domain FROM domain_contacts x LEFT JOIN domains d ON d.name = x.domain WHERE d.name IS NULL",
                    "contact index entry is stale",
                ),
                (
                    "SELECT x.host || ' (' || x.domain || ')' FROM host_domains x LEFT JOIN domains d ON d.name = x.domain WHERE d.name IS NULL",
                    "host index entry is stale",
                ),
                (
                    "SELECT h.name FROM hosts h WHERE NOT EXISTS (SELECT 1 FROM host_domains x WHERE x.host = h.name)",
                    "host record no domain declares",
                ),
                (
                    "SELECT i.host || ' (' || i.ip || ')' FROM host_ips i LEFT JOIN hosts h ON h.name = i.host WHERE h.name IS NULL OR NOT (i.ip = ANY(h.addresses))",
                    "address index entry is stale",
                ),
            ];
            for (sql, what) in checks {
                for r in rows(&c, sql, &[]).await? {
                    let k: String = r.get(0);
                    p.push(format!("{k}: {what}"));
                }
            }
            Ok(p)
        })?;
        // Record-level checks against the shared definition: the domain's
        // columns, link rows and look-alike row are its index entries.
        let mut after = String::new();
        loop {
            let a = after.clone();
            let page: Vec<DomainRow> =
                self.with(move |c| async move {
                    Ok(rows(
                        &c,
                        "SELECT d.name, d.rec, g.rec,
                           ARRAY(SELECT host FROM host_domains WHERE domain = d.name ORDER BY host),
                           ARRAY(SELECT contact FROM domain_contacts WHERE domain = d.name ORDER BY contact),
                           d.registrar, d.reseller, d.pending_transfer
                         FROM domains d LEFT JOIN delegation g ON g.name = d.name
                         WHERE d.name > $1 ORDER BY d.name LIMIT $2",
                        &[&a, &WALK_PAGE],
                    )
                    .await?
                    .iter()
                    .map(|r| DomainRow {
                        name: r.get(0),
                        rec: r.get(1),
                        deleg: r.get(2),
                        hosts: r.get(3),
                        contacts: r.get(4),
                        registrar: r.get(5),
                        reseller: r.get(6),
                        pending_transfer: r.get(7),
                    })
                    .collect())
                })?;
            let decoded = page
                .iter()
                .map(|r| {
                    Ok((
                        dec::<Domain>(&r.rec)?,
                        r.deleg.as_deref().map(dec).transpose()?,
                    ))
                })
                .collect::<Result<Vec<(Domain, Option<DelegationRecord>)>>>()?;
            let (keys, names): (Vec<String>, Vec<String>) = decoded
                .iter()
                .map(|(d, _)| (skeleton_index_key(&d.name), d.name.as_str().to_string()))
                .unzip();
            let skeletons: std::collections::HashSet<(String, String)> =
                self.with(move |c| async move {
                    Ok(rows(
                        &c,
                        "SELECT s.skeleton, s.name FROM domain_skeletons s
                         JOIN unnest($1::text[], $2::text[]) AS x(skeleton, name)
                           ON s.skeleton = x.skeleton AND s.name = x.name",
                        &[&keys, &names],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect())
                })?;
            for (row, (d, g)) in page.iter().zip(&decoded) {
                let mut held: BTreeSet<IndexEntry> = BTreeSet::new();
                held.insert(IndexEntry::Registrar(row.registrar.clone()));
                held.extend(row.reseller.clone().map(IndexEntry::Reseller));
                if row.pending_transfer {
                    held.insert(IndexEntry::PendingTransfer);
                }
                held.extend(row.contacts.iter().cloned().map(IndexEntry::Contact));
                held.extend(row.hosts.iter().cloned().map(IndexEntry::Host));
                let key = skeleton_index_key(&d.name);
                if skeletons.contains(&(key.clone(), d.name.as_str().to_string())) {
                    held.insert(IndexEntry::LookAlike(key));
                }
                verify::domain(
                    &row.name,
                    d,
                    g.as_ref(),
                    Stored::Listed(held),
                    &mut problems,
                )?;
            }
            match page.last() {
                Some(r) if page.len() as i64 == WALK_PAGE => after = r.name.clone(),
                _ => break,
            }
        }
        let bad_state: Vec<String> = {
            let mut out = Vec::new();
            let mut after = String::new();
            loop {
                let a = after.clone();
                let page: Vec<(String, String, bool, Vec<u8>)> = self.with(move |c| async move {
                    Ok(rows(
                        &c,
                        "SELECT name, state, pending_test, rec FROM delegation WHERE name > $1 ORDER BY name LIMIT $2",
                        &[&a, &WALK_PAGE],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect())
                })?;
                for (name, state, pending, b) in &page {
                    let r: DelegationRecord = dec(b)?;
                    if r.state.as_str() != state || pending_testing(&r) != *pending {
                        out.push(format!("{name}: state columns differ from the record"));
                    }
                }
                match page.last() {
                    Some((n, ..)) if page.len() as i64 == WALK_PAGE => after = n.clone(),
                    _ => break,
                }
            }
            out
        };
        problems.extend(bad_state);
        Ok(problems)
    }
}

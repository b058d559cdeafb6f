//! Domain writes: a bulk chunk's multi-row flush and one domain's
//! [`IndexDiff`] applied to the link tables and host rows.

use super::batch::{append_feed, append_history};
use super::*;

/// Send a chunk's batched writes: a few multi-row statements where the
/// row-by-row path sends ~25 per domain. Same rows, same locks.
pub(super) async fn flush(c: &Object, b: Bulk) -> Result<()> {
    if !b.domains.is_empty() {
        let mut names = Vec::new();
        let mut regs = Vec::new();
        let mut resellers = Vec::new();
        let mut pendings = Vec::new();
        let mut recs = Vec::new();
        let (mut dc_contact, mut dc_domain) = (Vec::new(), Vec::new());
        let (mut hd_host, mut hd_domain) = (Vec::new(), Vec::new());
        let mut glue: Vec<(&String, &Vec<String>)> = Vec::new();
        let mut skeletons = Vec::new();
        for d in &b.domains {
            names.push(&d.name);
            skeletons.push(&d.skeleton);
            regs.push(&d.registrar);
            resellers.push(d.reseller.as_ref());
            pendings.push(d.pending);
            recs.push(&d.rec);
            for ct in &d.contacts {
                dc_contact.push(ct);
                dc_domain.push(&d.name);
            }
            for (h, g) in &d.hosts {
                hd_host.push(h);
                hd_domain.push(&d.name);
                if let Some(a) = g {
                    glue.push((h, a));
                }
            }
        }
        exec(
            c,
            "INSERT INTO domains (name, registrar, reseller, pending_transfer, rec)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bytea[])
             ON CONFLICT (name) DO UPDATE SET registrar = EXCLUDED.registrar,
               reseller = EXCLUDED.reseller, pending_transfer = EXCLUDED.pending_transfer,
               rec = EXCLUDED.rec",
            &[&names, &regs, &resellers, &pendings, &recs],
        )
        .await?;
        exec(
            c,
            "INSERT INTO domain_skeletons (skeleton, name)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&skeletons, &names],
        )
        .await?;
        exec(
            c,
            "INSERT INTO domain_contacts (contact, domain)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&dc_contact, &dc_domain],
        )
        .await?;
        let mut hosts: Vec<&String> = hd_host.clone();
        hosts.sort_unstable();
        hosts.dedup();
        exec(
            c,
            "INSERT INTO hosts (name, addresses)
             SELECT h, '{}' FROM unnest($1::text[]) AS h ON CONFLICT DO NOTHING",
            &[&hosts],
        )
        .await?;
        exec(
            c,
            "INSERT INTO host_domains (host, domain)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&hd_host, &hd_domain],
        )
        .await?;
        if !glue.is_empty() {
            // The glue of the hosts these domains own, in three statements
            // (as set_addresses does per host).
            let owned: Vec<&String> = glue.iter().map(|(h, _)| *h).collect();
            let (mut g_host, mut g_ip) = (Vec::new(), Vec::new());
            for (h, addrs) in &glue {
                for a in addrs.iter() {
                    g_host.push(*h);
                    g_ip.push(a);
                }
            }
            exec(c, "DELETE FROM host_ips WHERE host = ANY($1)", &[&owned]).await?;
            exec(
                c,
                "INSERT INTO host_ips (ip, host)
                 SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                &[&g_ip, &g_host],
            )
            .await?;
            exec(
                c,
                "UPDATE hosts h SET addresses = coalesce(
                   (SELECT array_agg(x.ip ORDER BY x.o)
                    FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(host, ip, o)
                    WHERE x.host = h.name), '{}')
                 WHERE h.name = ANY($1)",
                &[&owned, &g_host, &g_ip],
            )
            .await?;
        }
    }
    if !b.delegations.is_empty() {
        let mut names = Vec::new();
        let mut states = Vec::new();
        let mut pendings = Vec::new();
        let mut recs = Vec::new();
        for (n, (s, p, r)) in &b.delegations {
            names.push(n);
            states.push(s);
            pendings.push(*p);
            recs.push(r);
        }
        exec(
            c,
            "INSERT INTO delegation (name, state, pending_test, rec)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bytea[])
             ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state,
               pending_test = EXCLUDED.pending_test, rec = EXCLUDED.rec",
            &[&names, &states, &pendings, &recs],
        )
        .await?;
    }
    if !b.events.is_empty() {
        let names: Vec<&String> = b.events.iter().map(|(n, _, _)| n).collect();
        let recs: Vec<&Vec<u8>> = b.events.iter().map(|(_, r, _)| r).collect();
        append_history(c, &names, &recs).await?;
        append_feed(c, b.events.into_iter().map(|(_, _, item)| item).collect()).await?;
    }
    Ok(())
}

/// Glue addresses as the `hosts.addresses` / `host_ips.ip` text.
pub(super) fn addr_strings(addrs: &[IpAddr]) -> Vec<String> {
    addrs.iter().map(IpAddr::to_string).collect()
}

/// Write domain `name` (its record `rec`, index entries `ix`) and apply
/// what it changes in the link tables and host rows (`diff`); `keyed`:
/// take each touched host's lock (a bulk writer holds the bulk lock).
pub(super) async fn apply_domain(
    c: &Object,
    name: &String,
    rec: &Vec<u8>,
    ix: &DomainIndexes,
    diff: &IndexDiff,
    keyed: bool,
) -> Result<()> {
    for e in &diff.added {
        if let IndexEntry::LookAlike(k) = e {
            exec(
                c,
                "INSERT INTO domain_skeletons (skeleton, name) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[k, name],
            )
            .await?;
        }
    }
    exec(
        c,
        "INSERT INTO domains (name, registrar, reseller, pending_transfer, rec)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET registrar = EXCLUDED.registrar,
           reseller = EXCLUDED.reseller, pending_transfer = EXCLUDED.pending_transfer,
           rec = EXCLUDED.rec",
        &[name, &ix.registrar, &ix.reseller, &ix.pending_transfer, rec],
    )
    .await?;
    let contacts = |es: &[IndexEntry]| -> Vec<String> {
        es.iter()
            .filter_map(|e| match e {
                IndexEntry::Contact(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    };
    let (gone, new) = (contacts(&diff.removed), contacts(&diff.added));
    if !gone.is_empty() {
        exec(
            c,
            "DELETE FROM domain_contacts WHERE domain = $1 AND contact = ANY($2::text[])",
            &[name, &gone],
        )
        .await?;
    }
    if !new.is_empty() {
        exec(
            c,
            "INSERT INTO domain_contacts (contact, domain)
             SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
            &[name, &new],
        )
        .await?;
    }
    // Hosts, locked in one order so two writers cannot deadlock.
    for h in diff.hosts_touched().into_iter().filter(|_| keyed) {
        exec(c, lock_sql(), &[&format!("h:{h}")]).await?;
    }
    for host in diff.hosts_dropped() {
        exec(
            c,
            "DELETE FROM host_domains WHERE host = $1 AND domain = $2",
            &[&host, name],
        )
        .await?;
        let left: i64 = one(
            c,
            "SELECT count(*) FROM host_domains WHERE host = $1",
            &[&host],
        )
        .await?
        .get(0);
        if left == 0 {
            exec(c, "DELETE FROM host_ips WHERE host = $1", &[&host]).await?;
            exec(c, "DELETE FROM hosts WHERE name = $1", &[&host]).await?;
        } else if diff.unglued.contains(host) {
            set_addresses(c, host, &[]).await?;
        }
    }
    for host in diff.hosts_added() {
        exec(
            c,
            "INSERT INTO hosts (name, addresses) VALUES ($1, '{}') ON CONFLICT DO NOTHING",
            &[&host],
        )
        .await?;
        exec(
            c,
            "INSERT INTO host_domains (host, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&host, name],
        )
        .await?;
    }
    for (host, addrs) in &diff.glue {
        set_addresses(c, host, &addr_strings(addrs)).await?;
    }
    Ok(())
}

pub(super) async fn set_addresses(c: &Object, host: &str, addrs: &[String]) -> Result<()> {
    let cur: Vec<String> = one(c, "SELECT addresses FROM hosts WHERE name = $1", &[&host])
        .await?
        .get(0);
    if cur == addrs {
        return Ok(());
    }
    let addrs = addrs.to_vec();
    exec(c, "DELETE FROM host_ips WHERE host = $1", &[&host]).await?;
    exec(
        c,
        "INSERT INTO host_ips (ip, host) SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING",
        &[&host, &addrs],
    )
    .await?;
    exec(
        c,
        "UPDATE hosts SET addresses = $2 WHERE name = $1",
        &[&host, &addrs],
    )
    .await
    .map(drop)
}

pub(super) fn host_record(name: String, addrs: Vec<String>, domains: i64) -> Result<HostRecord> {
    let addresses = addrs
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| StoreError::Corrupt(format!("host {name}: address {a}")))
        })
        .collect::<Result<_>>()?;
    Ok(HostRecord {
        name,
        addresses,
        domains: domains as u64,
    })
}

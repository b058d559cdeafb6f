//! Pure judgement: probe facts in, findings (with the catalogue's default
//! severities) out. No I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, RecordType};

use super::catalogue::CheckId;
use crate::model::{Finding, ServerReport, Severity};
use crate::probe::{AddressFacts, NsTarget, Outcome, ProbeFacts, Probes, QueryResult, Reply};

/// Registry rule (docs/delegation.md): at least two nameservers.
pub const MIN_NAMESERVERS: usize = 2;

pub use crate::probe::show_addr;

/// Lower-case presentation form without the trailing dot.
fn plain(n: &Name) -> String {
    n.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string()
}

struct Out(Vec<Finding>);

impl Out {
    fn push(&mut self, id: CheckId, server: Option<&str>, addr: Option<SocketAddr>, msg: String) {
        let severity = id.check().map_or(Severity::Error, |c| c.severity);
        self.0.push(Finding {
            id: id.as_str().to_string(),
            severity,
            server: server.map(str::to_string),
            address: addr.map(show_addr),
            // Messages quote names and text from DNS replies (a U-label can
            // decode to bidi controls or line separators): escaped here,
            // once, for every place a finding is shown.
            message: crate::text::escape(&msg).into_owned(),
        });
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Reply(r) => format!("answered {}", r.rcode),
        Outcome::Timeout => "no reply before the timeout".into(),
        Outcome::Io(e) => e.clone(),
        Outcome::Malformed(e) => format!("malformed reply ({e})"),
    }
}

fn soa_of(r: &Reply, apex: &Name) -> Option<SOA> {
    r.answer_rdata(apex, RecordType::SOA).find_map(|d| match d {
        RData::SOA(s) => Some(s.clone()),
        _ => None,
    })
}

/// The SOA queries asked of an address for this zone that got a usable
/// (decoded) reply. Shared facts never count: they may have asked another
/// zone.
fn soa_replies(p: &Probes) -> impl Iterator<Item = &QueryResult> {
    [
        Some(&p.soa_udp_edns),
        p.soa_udp.as_ref(),
        p.soa_tcp.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter(|q| q.reply().is_some())
}

/// The reply to this zone's SOA without EDNS: the plain query if it was
/// asked, else the EDNS query's retry without EDNS, if it made one.
fn plain_soa_reply(p: &Probes) -> Option<&Reply> {
    match &p.soa_udp {
        Some(q) => q.reply(),
        None => p
            .soa_udp_edns
            .first
            .reply()
            .filter(|r| crate::probe::edns_rejected(r.rcode))
            .and_then(|_| p.soa_udp_edns.reply()),
    }
}

/// Judge one probe round. `targets` is the declared set as given.
pub fn evaluate(facts: &ProbeFacts, targets: &[NsTarget]) -> Vec<Finding> {
    let mut out = Out(Vec::new());
    let domain = facts.domain.as_str();
    let apex = crate::probe::fqdn(domain).unwrap_or_else(Name::root);

    // --- the declared set -------------------------------------------------
    let names: BTreeSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    if names.len() < MIN_NAMESERVERS {
        out.push(
            CheckId::NsCount,
            None,
            None,
            format!(
                "{} distinct nameserver(s) declared; at least {MIN_NAMESERVERS} are required",
                names.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for t in targets {
        if !seen.insert(t.name.as_str()) {
            out.push(
                CheckId::NsDistinctName,
                Some(t.name.as_str()),
                None,
                format!("{} is declared more than once", t.name),
            );
        }
    }
    // Addresses actually probed (declared or resolved), per distinct server.
    let mut by_addr: BTreeMap<SocketAddr, Vec<&str>> = BTreeMap::new();
    for s in &facts.servers {
        for a in &s.addresses {
            let v = by_addr.entry(a.addr).or_default();
            if !v.contains(&s.name.as_str()) {
                v.push(s.name.as_str());
            }
        }
    }
    for (addr, owners) in &by_addr {
        if owners.len() > 1 {
            out.push(
                CheckId::NsDistinctAddr,
                None,
                Some(*addr),
                format!(
                    "{} is used by {}; each nameserver needs its own addresses",
                    show_addr(*addr),
                    owners.join(" and ")
                ),
            );
        }
    }

    // --- per server -------------------------------------------------------
    for s in &facts.servers {
        let name = s.name.as_str();
        let in_bailiwick = s.name.is_at_or_below(domain);
        if in_bailiwick && s.declared.is_empty() {
            out.push(
                CheckId::GlueRequired,
                Some(name),
                None,
                format!("{name} is inside {domain}, so glue addresses must be declared"),
            );
        }
        if let Some(res) = &s.resolution {
            if res.addresses.is_empty() {
                let why = if res.errors.is_empty() {
                    "no A or AAAA records".to_string()
                } else {
                    res.errors.join("; ")
                };
                out.push(
                    CheckId::NsResolves,
                    Some(name),
                    None,
                    format!("{name} does not resolve to an address: {why}"),
                );
            }
            if let Some(c) = &res.cname {
                out.push(
                    CheckId::NsNotCname,
                    Some(name),
                    None,
                    format!("{name} is an alias (CNAME to {}); NS names must not be aliases (RFC 2181 §10.3)", plain(c)),
                );
            }
        }
        for a in &s.addresses {
            address_checks(&mut out, name, a, &apex);
        }
    }

    // --- across servers ---------------------------------------------------
    soa_checks(&mut out, facts, &apex);
    host_checks(&mut out, facts, targets, domain);
    out.0
}

fn address_checks(out: &mut Out, name: &str, a: &AddressFacts, apex: &Name) {
    let addr = Some(a.addr);
    if let Some(why) = a.refused {
        out.push(
            CheckId::TargetRefused,
            Some(name),
            addr,
            format!(
                "{} is a {why} address; not probed (allow private targets to test it)",
                show_addr(a.addr)
            ),
        );
        return;
    }
    let Some(p) = &a.probes else { return };
    let udp_shown = p.soa_udp.as_ref().unwrap_or(&p.soa_udp_edns);
    let tcp_shown = a
        .tcp_query()
        .map_or_else(|| "not asked".to_string(), |q| outcome_text(&q.first));
    if !p.all().any(QueryResult::answered) {
        out.push(
            CheckId::Responsive,
            Some(name),
            addr,
            format!(
                "{name} does not answer on {}: UDP {}, TCP {tcp_shown}",
                show_addr(a.addr),
                outcome_text(&udp_shown.first),
            ),
        );
        return;
    }
    let malformed: Vec<String> = p
        .all()
        .filter_map(|q| match q.last() {
            Outcome::Malformed(e) => Some(format!(
                "{} {} over {}: {e}",
                plain(&q.qname),
                q.qtype,
                q.transport.as_str()
            )),
            _ => None,
        })
        .collect();
    if let Some(first) = malformed.first() {
        out.push(
            CheckId::MalformedReply,
            Some(name),
            addr,
            format!(
                "{} malformed repl{} (first: {first})",
                malformed.len(),
                if malformed.len() == 1 { "y" } else { "ies" }
            ),
        );
    }
    let udp_answered =
        p.soa_udp_edns.first.answered() || p.soa_udp.as_ref().is_some_and(|q| q.first.answered());
    if !udp_answered {
        out.push(
            CheckId::Udp,
            Some(name),
            addr,
            format!(
                "no answer to SOA over UDP: {}",
                outcome_text(&udp_shown.first)
            ),
        );
    }
    let tcp_answered = a.tcp_answered();
    if !tcp_answered {
        out.push(
            CheckId::Tcp,
            Some(name),
            addr,
            format!("no answer to SOA over TCP: {tcp_shown}"),
        );
    }
    if p.soa_udp.as_ref().is_some_and(QueryResult::truncated) && p.soa_udp_edns.truncated() {
        out.push(
            CheckId::TcpOnly,
            Some(name),
            addr,
            "UDP answers to SOA are always truncated; the answer is only available over TCP".into(),
        );
    }
    // EDNS: judge the UDP reply to the EDNS query itself.
    if let (Some(r), Some(plain_r)) = (p.soa_udp_edns.first.reply(), plain_soa_reply(p)) {
        if crate::probe::edns_rejected(r.rcode) && plain_r.rcode == ResponseCode::NoError {
            out.push(
                CheckId::Edns,
                Some(name),
                addr,
                format!(
                    "a query with EDNS(0) is answered {} while one without EDNS works (RFC 6891)",
                    r.rcode
                ),
            );
        } else if !r.edns && r.rcode == ResponseCode::NoError {
            out.push(
                CheckId::Edns,
                Some(name),
                addr,
                "the reply to an EDNS(0) query carries no OPT record (RFC 6891 §7)".into(),
            );
        }
    }
    // Serving the zone: rcode, SOA presence, AA — one finding per kind.
    // Replies come after any EDNS/TCP retry, so an EDNS-only failure is
    // judged by the EDNS check above, not here.
    let mut lame = None;
    let mut no_soa = Vec::new();
    let mut not_aa = Vec::new();
    for q in soa_replies(p) {
        let Some(r) = q.reply() else { continue };
        if r.rcode != ResponseCode::NoError {
            lame.get_or_insert(r.rcode);
            continue;
        }
        let label = format!(
            "{}{}",
            r.transport.as_str(),
            if q.edns { "+EDNS" } else { "" }
        );
        match soa_of(r, apex) {
            None => no_soa.push(label),
            Some(_) if !r.aa => not_aa.push(label),
            Some(_) => {}
        }
    }
    let zone = plain(apex);
    if let Some(rc) = lame {
        let what = match rc {
            ResponseCode::Refused => "refuses queries for the zone",
            ResponseCode::NXDomain => "says the zone apex does not exist (NXDOMAIN)",
            ResponseCode::ServFail => "fails on the zone (SERVFAIL)",
            ResponseCode::NotAuth => "is not authoritative for the zone (NOTAUTH)",
            _ => "answers the zone's SOA with an error",
        };
        out.push(
            CheckId::Lame,
            Some(name),
            addr,
            format!("{name} {what}: {rc} for {zone} SOA; the server is lame for {zone}"),
        );
    }
    if !no_soa.is_empty() {
        out.push(
            CheckId::SoaAnswer,
            Some(name),
            addr,
            format!(
                "the SOA query for {zone} is answered NOERROR without the SOA record ({})",
                no_soa.join(", ")
            ),
        );
    }
    if !not_aa.is_empty() {
        out.push(
            CheckId::Authoritative,
            Some(name),
            addr,
            format!(
                "the SOA answer for {zone} lacks the AA flag ({}); the server is not authoritative",
                not_aa.join(", ")
            ),
        );
    }
    if lame.is_none() {
        // A missing AA on the SOA is already AUTHORITATIVE's finding.
        let aa_judged = !not_aa.is_empty();
        queries_answered(
            out,
            name,
            a.addr,
            p,
            (udp_answered, tcp_answered),
            aa_judged,
        );
    }
    // Open recursion: a non-authoritative answer for a name outside the zone.
    if let Some((rq, r)) = a.recursion().and_then(|q| Some((q, q.reply()?))) {
        let recursed = r.ra
            && !r.aa
            && ((r.rcode == ResponseCode::NoError && !r.answers.is_empty())
                || r.rcode == ResponseCode::NXDomain);
        if recursed {
            out.push(
                CheckId::OpenRecursion,
                Some(name),
                addr,
                format!(
                    "{name} answers recursive queries for names outside its zones ({} {}); authoritative servers should not be open resolvers",
                    plain(&rq.qname),
                    r.rcode
                ),
            );
        }
    }
    let rtt = median_rtt(p);
    if let Some(rtt) = rtt {
        if rtt > Duration::from_secs(1) {
            out.push(
                CheckId::Rtt,
                Some(name),
                addr,
                format!("median round-trip time is {} ms", rtt.as_millis()),
            );
        }
    }
}

fn median_rtt(p: &Probes) -> Option<Duration> {
    let mut v: Vec<Duration> = p.all().filter_map(|q| q.reply().map(|r| r.rtt)).collect();
    if v.is_empty() {
        return None;
    }
    v.sort();
    Some(v[v.len() / 2])
}

fn soa_text(s: &SOA) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        plain(&s.mname),
        s.rname.to_ascii(),
        s.serial,
        s.refresh,
        s.retry,
        s.expire,
        s.minimum
    )
}

fn soa_checks(out: &mut Out, facts: &ProbeFacts, apex: &Name) {
    // Distinct SOA RDATA seen, with who served it.
    let mut variants: Vec<(SOA, Vec<String>)> = Vec::new();
    for s in &facts.servers {
        for a in &s.addresses {
            let Some(p) = &a.probes else { continue };
            let Some(soa) = soa_replies(p)
                .filter_map(|q| q.reply())
                .filter(|r| r.rcode == ResponseCode::NoError)
                .find_map(|r| soa_of(r, apex))
            else {
                continue;
            };
            let who = format!("{} ({})", s.name, show_addr(a.addr));
            match variants.iter_mut().find(|(v, _)| *v == soa) {
                Some((_, w)) => w.push(who),
                None => variants.push((soa, vec![who])),
            }
        }
    }
    if variants.len() > 1 {
        let serials: BTreeSet<u32> = variants.iter().map(|(s, _)| s.serial).collect();
        let detail: Vec<String> = variants
            .iter()
            .map(|(s, w)| format!("{}: serial {} [{}]", w.join(", "), s.serial, soa_text(s)))
            .collect();
        let what = if serials.len() > 1 {
            "SOA serial differs between servers"
        } else {
            "SOA record differs between servers"
        };
        out.push(
            CheckId::SoaConsistent,
            None,
            None,
            format!("{what}: {}", detail.join("; ")),
        );
    }
    for (soa, _) in &variants {
        soa_syntax(out, soa);
    }
}

fn ldh_label(l: &[u8]) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && l[0] != b'-'
        && l[l.len() - 1] != b'-'
}

fn soa_syntax(out: &mut Out, soa: &SOA) {
    let labels: Vec<&[u8]> = soa.rname.iter().collect();
    let rname = soa.rname.to_ascii();
    if labels.iter().any(|l| l.contains(&b'@')) {
        out.push(
            CheckId::RnameSyntax,
            None,
            None,
            format!("SOA RNAME '{rname}' contains '@'; write the mailbox as a domain name, e.g. hostmaster.example.ru. (RFC 1035 §8)"),
        );
    } else if labels.len() < 3 || !labels[1..].iter().all(|l| ldh_label(l)) {
        out.push(
            CheckId::RnameSyntax,
            None,
            None,
            format!(
                "SOA RNAME '{rname}' is not a mailbox name (local part followed by a mail domain)"
            ),
        );
    }
    let mlabels: Vec<&[u8]> = soa.mname.iter().collect();
    if mlabels.len() < 2 || !mlabels.iter().all(|l| ldh_label(l)) {
        out.push(
            CheckId::MnameSyntax,
            None,
            None,
            format!(
                "SOA MNAME '{}' is not a valid host name",
                soa.mname.to_ascii()
            ),
        );
    }
    // RFC 1912 §2.2 and RFC 2308 §5, as Zonemaster ZONE02–ZONE06 apply them.
    let mut bad = Vec::new();
    if soa.refresh < 1200 {
        bad.push(format!("refresh {} < 1200", soa.refresh));
    }
    if soa.retry >= soa.refresh {
        bad.push(format!("retry {} ≥ refresh {}", soa.retry, soa.refresh));
    }
    if soa.retry < 120 {
        bad.push(format!("retry {} < 120", soa.retry));
    }
    if soa.expire < 604_800 {
        bad.push(format!("expire {} < 604800 (one week)", soa.expire));
    }
    if i64::from(soa.expire) < i64::from(soa.refresh) + i64::from(soa.retry) {
        bad.push(format!("expire {} < refresh + retry", soa.expire));
    }
    if soa.minimum < 300 || soa.minimum > 86_400 {
        bad.push(format!("minimum {} outside 300–86400", soa.minimum));
    }
    if !bad.is_empty() {
        out.push(
            CheckId::SoaTimers,
            None,
            None,
            format!("SOA timers outside recommended ranges: {}", bad.join(", ")),
        );
    }
}

/// NS set and glue, as published by each server that answers.
fn host_checks(out: &mut Out, facts: &ProbeFacts, targets: &[NsTarget], domain: &str) {
    let declared: BTreeSet<String> = targets.iter().map(|t| t.name.to_string()).collect();
    let apex = crate::probe::fqdn(domain).unwrap_or_else(Name::root);
    for s in &facts.servers {
        for a in &s.addresses {
            let Some(p) = &a.probes else { continue };
            let Some(r) = p.ns.reply() else { continue };
            if r.rcode != ResponseCode::NoError {
                continue; // LAME covers it
            }
            let published: BTreeSet<String> = r
                .answer_rdata(&apex, RecordType::NS)
                .filter_map(|d| match d {
                    RData::NS(ns) => Some(plain(&ns.0)),
                    _ => None,
                })
                .collect();
            if published.is_empty() {
                out.push(
                    CheckId::NsSetMatches,
                    Some(s.name.as_str()),
                    Some(a.addr),
                    format!("{} returns no NS records for {domain}", s.name),
                );
            } else if published != declared {
                let list = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(", ");
                out.push(
                    CheckId::NsSetMatches,
                    Some(s.name.as_str()),
                    Some(a.addr),
                    format!(
                        "{} publishes NS {{{}}} but the declared set is {{{}}}",
                        s.name,
                        list(&published),
                        list(&declared)
                    ),
                );
            }
        }
    }
    // Glue: what the zone itself publishes for each in-bailiwick name.
    for t in targets.iter().filter(|t| t.name.is_at_or_below(domain)) {
        let Some(host) = crate::probe::fqdn(t.name.as_str()) else {
            continue;
        };
        let declared: BTreeSet<IpAddr> = t.addrs.iter().map(|a| a.ip()).collect();
        let mut mismatches: BTreeMap<Vec<IpAddr>, Vec<String>> = BTreeMap::new();
        let mut cname = None;
        for s in &facts.servers {
            for a in &s.addresses {
                let Some(p) = &a.probes else { continue };
                let mut published = BTreeSet::new();
                let mut complete = true;
                for (h, q) in &p.hosts {
                    if *h != t.name {
                        continue;
                    }
                    match q.reply() {
                        Some(r)
                            if r.rcode == ResponseCode::NoError
                                || r.rcode == ResponseCode::NXDomain =>
                        {
                            for rec in &r.answers {
                                match &rec.data {
                                    RData::A(x) if rec.name.eq_ignore_root(&host) => {
                                        published.insert(IpAddr::V4(x.0));
                                    }
                                    RData::AAAA(x) if rec.name.eq_ignore_root(&host) => {
                                        published.insert(IpAddr::V6(x.0));
                                    }
                                    RData::CNAME(c) if rec.name.eq_ignore_root(&host) => {
                                        cname = Some(plain(&c.0));
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => complete = false,
                    }
                }
                if complete && published != declared && !declared.is_empty() {
                    mismatches
                        .entry(published.into_iter().collect())
                        .or_default()
                        .push(format!("{} ({})", s.name, show_addr(a.addr)));
                }
            }
        }
        if let Some(c) = cname {
            out.push(
                CheckId::NsNotCname,
                Some(t.name.as_str()),
                None,
                format!(
                    "{} is an alias (CNAME to {c}); NS names must not be aliases (RFC 2181 §10.3)",
                    t.name
                ),
            );
            continue;
        }
        for (published, who) in mismatches {
            let shown = |v: &mut dyn Iterator<Item = &IpAddr>| {
                let v: Vec<String> = v.map(|i| i.to_string()).collect();
                if v.is_empty() {
                    "no addresses".to_string()
                } else {
                    v.join(", ")
                }
            };
            out.push(
                CheckId::GlueMatches,
                Some(t.name.as_str()),
                None,
                format!(
                    "declared glue for {} is {} but the zone publishes {} (per {})",
                    t.name,
                    shown(&mut declared.iter()),
                    shown(&mut published.iter()),
                    who.join(", ")
                ),
            );
        }
    }
}

/// Per-server summary for the report.
/// Every query the checks rely on besides the SOA (which the checks above
/// judge): NS of the apex and A/AAAA of in-bailiwick server names, over UDP
/// and TCP, must be answered NOERROR with AA (NXDOMAIN for a host name is
/// the glue check's business). One finding per address lists them all.
/// A transport on which even the SOA got no answer is left to the UDP/TCP
/// findings.
fn queries_answered(
    out: &mut Out,
    name: &str,
    addr: SocketAddr,
    p: &Probes,
    (udp_ok, tcp_ok): (bool, bool),
    aa_judged: bool,
) {
    let mut bad = Vec::new();
    let ns = [Some(&p.ns), p.ns_tcp.as_ref()]
        .into_iter()
        .flatten()
        .map(|q| (q, false));
    let hosts = p
        .hosts
        .iter()
        .chain(p.hosts_tcp.iter())
        .map(|(_, q)| (q, true));
    for (q, is_host) in ns.into_iter().chain(hosts) {
        let usable = match q.transport {
            crate::probe::Transport::Udp => udp_ok,
            crate::probe::Transport::Tcp => tcp_ok,
        };
        if !usable {
            continue;
        }
        let what = format!(
            "{} {} over {}",
            q.qtype,
            plain(&q.qname),
            q.transport.as_str()
        );
        match q.last() {
            Outcome::Malformed(_) => {} // MALFORMED_REPLY covers it
            Outcome::Timeout | Outcome::Io(_) => bad.push(format!("{what}: no answer")),
            Outcome::Reply(r) => {
                if r.rcode == ResponseCode::NXDomain && is_host {
                    continue;
                }
                if r.rcode != ResponseCode::NoError {
                    bad.push(format!("{what}: {}", rcode_name(r.rcode)));
                } else if !r.aa && !aa_judged {
                    bad.push(format!("{what}: not authoritative (no AA)"));
                }
            }
        }
    }
    if let Some(first) = bad.first() {
        let more = if bad.len() > 1 {
            format!(" (and {} more: {})", bad.len() - 1, bad[1..].join("; "))
        } else {
            String::new()
        };
        out.push(
            CheckId::QueryAnswered,
            Some(name),
            Some(addr),
            format!("{name} on {}: {first}{more}", show_addr(addr)),
        );
    }
}

/// The RFC mnemonic of a response code (`REFUSED`, not "Query Refused").
fn rcode_name(rc: ResponseCode) -> String {
    match rc {
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

pub fn server_reports(facts: &ProbeFacts) -> Vec<ServerReport> {
    let apex = crate::probe::fqdn(facts.domain.as_str()).unwrap_or_else(Name::root);
    facts
        .servers
        .iter()
        .map(|s| {
            let probes: Vec<&Probes> = s
                .addresses
                .iter()
                .filter_map(|a| a.probes.as_ref())
                .collect();
            let reachable = probes.iter().any(|p| p.all().any(QueryResult::answered));
            let soa_serial = probes.iter().find_map(|p| {
                soa_replies(p)
                    .filter_map(|q| q.reply())
                    .filter(|r| r.rcode == ResponseCode::NoError)
                    .find_map(|r| soa_of(r, &apex))
                    .map(|s| s.serial)
            });
            let mut rtts: Vec<Duration> = probes
                .iter()
                .flat_map(|p| p.all().filter_map(|q| q.reply().map(|r| r.rtt)))
                .collect();
            rtts.sort();
            let rtt_ms = rtts
                .get(rtts.len() / 2)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            // Addresses that answered nothing while the server answered on
            // another: each is charged to its own downtime budget.
            let unreachable_addresses = if reachable {
                s.addresses
                    .iter()
                    .filter(|a| {
                        a.probes
                            .as_ref()
                            .is_some_and(|p| !p.all().any(QueryResult::answered))
                    })
                    .map(|a| show_addr(a.addr))
                    .collect()
            } else {
                Vec::new()
            };
            ServerReport {
                name: s.name.to_string(),
                addresses: s.addresses.iter().map(|a| show_addr(a.addr)).collect(),
                reachable,
                soa_serial,
                rtt_ms,
                unreachable_addresses,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reply text in a finding cannot forge a line or reorder what is
    /// shown: forbidden characters are escaped when the finding is made.
    #[test]
    fn finding_messages_escape_reply_text() {
        let mut out = Out(Vec::new());
        let from_reply = Name::from_utf8("evil\u{202e}moc\u{2028}x.ru.")
            .map(|n| n.to_utf8())
            .unwrap_or_else(|_| "evil\u{202e}moc\u{2028}x.ru".into());
        out.push(
            CheckId::NsCount,
            None,
            None,
            format!("NS {from_reply} \u{1b}[2J"),
        );
        let m = &out.0[0].message;
        assert!(!m.chars().any(crate::text::is_forbidden), "{m:?}");
        assert!(m.contains("\\u{202e}") && m.contains("\\u{001b}"), "{m:?}");
    }

    fn soa(rname: &str, refresh: i32, retry: i32, expire: i32, minimum: u32) -> SOA {
        SOA::new(
            Name::from_ascii("ns1.example.ru.").unwrap(),
            if rname.contains('@') {
                // As NSD loads `hostmaster@example.ru.` from a zone file.
                Name::from_labels(rname.trim_end_matches('.').split('.').map(str::as_bytes))
                    .unwrap()
            } else {
                Name::from_ascii(rname).unwrap()
            },
            1,
            refresh,
            retry,
            expire,
            minimum,
        )
    }

    fn ids(s: &SOA) -> Vec<String> {
        let mut out = Out(Vec::new());
        soa_syntax(&mut out, s);
        out.0.into_iter().map(|f| f.id).collect::<Vec<_>>()
    }

    #[test]
    fn rname_and_timers() {
        assert!(ids(&soa("hostmaster.example.ru.", 3600, 900, 1209600, 3600)).is_empty());
        assert_eq!(
            ids(&soa("hostmaster@example.ru.", 3600, 900, 1209600, 3600)),
            ["RNAME_SYNTAX"]
        );
        assert_eq!(
            ids(&soa("example.ru.", 3600, 900, 1209600, 3600)),
            ["RNAME_SYNTAX"]
        );
        // A dotted local part is escaped in the first label: still valid.
        assert!(ids(&soa("john\\.doe.example.ru.", 3600, 900, 1209600, 3600)).is_empty());
        assert_eq!(
            ids(&soa("hostmaster.example.ru.", 600, 900, 86400, 10)),
            ["SOA_TIMERS"]
        );
    }

    #[test]
    fn addresses_show_port_only_when_not_53() {
        assert_eq!(show_addr("192.0.2.1:53".parse().unwrap()), "192.0.2.1");
        assert_eq!(
            show_addr("[2001:db8::1]:53".parse().unwrap()),
            "2001:db8::1"
        );
        assert_eq!(
            show_addr("127.0.0.1:5353".parse().unwrap()),
            "127.0.0.1:5353"
        );
    }
}

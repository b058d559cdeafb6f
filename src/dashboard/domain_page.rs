//! One domain's page, and the search form that leads to it.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::config::Config;
use crate::model::{DelegationRecord, DelegationState, RoundSummary, Timestamp};
use crate::store::StoreError;

use super::html::{duration, esc, opt_time, page, path_segment, state_badge, time_el};
use super::shell::*;
use super::{chart, html};

/// Rounds shown on a domain page (and drawn in its timeline).
pub(super) const ROUNDS_SHOWN: usize = 200;
pub(super) const HISTORY_SHOWN: usize = 50;

// ---- domain page ---------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct FindQuery {
    name: Option<String>,
}

/// The search form: normalise the name and go to its page.
pub(super) async fn find_domain(
    State(deps): State<Deps>,
    q: Result<Query<FindQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let raw = q.ok().and_then(|q| q.0.name).unwrap_or_default();
    match deps.zones.parse_domain(raw.trim()) {
        Ok(n) => Redirect::to(&format!("/domains/{}", path_segment(n.as_str()))).into_response(),
        Err(e) => error_page(
            &deps,
            StatusCode::BAD_REQUEST,
            "Not a domain name of this registry",
            &format!("'{raw}': {e}"),
        ),
    }
}

pub(super) struct DomainData {
    public: crate::public::PublicDomain,
    rec: DelegationRecord,
    hold_since: Option<Timestamp>,
    rounds: Vec<RoundSummary>,
    history: Vec<crate::public::PublicEvent>,
}

pub(super) fn gather_domain(
    deps: &Deps,
    name: &str,
    now: Timestamp,
) -> Result<Option<DomainData>, StoreError> {
    let store = deps.store.as_ref();
    let Some(b) = store.bundle(name)? else {
        return Ok(None);
    };
    let Some(public) = crate::public::domain(&b, now, &deps.config.lifecycle) else {
        return Ok(None);
    };
    Ok(Some(DomainData {
        public,
        rec: b.delegation,
        hold_since: b.domain.hold.as_ref().map(|h| h.since),
        rounds: store.rounds(name, ROUNDS_SHOWN)?,
        history: crate::public::history(&store.history(name, HISTORY_SHOWN)?, b.domain.created),
    }))
}

pub(super) fn render_domain(deps: &Deps, d: &DomainData, now: Timestamp) -> String {
    let cfg = &deps.config;
    let p = &d.public;
    let rec = &d.rec;
    let mut b = String::new();
    let heading = if p.unicode_name != p.name {
        format!(
            "{} <span class=\"muted\">({})</span>",
            esc(&p.unicode_name),
            esc(&p.name)
        )
    } else {
        esc(&p.name)
    };
    let _ = writeln!(
        b,
        "<h2 id=\"domain\">{heading} {}</h2>",
        state_badge(rec.state)
    );

    // Facts.
    b.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(b, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    fact("Delegation state", state_badge(rec.state));
    fact(
        "In the zone",
        if p.delegated { "yes" } else { "no" }.to_string(),
    );
    // The one status model's EPP names (docs/statuses.md).
    let statuses: Vec<&str> = p.status.epp().into_iter().map(|x| x.epp()).collect();
    fact("Statuses", esc(&statuses.join(", ")));
    if let Some(r) = &p.registrar {
        fact(
            "Registrar",
            format!("{} ({})", esc(&r.name), esc(&r.handle)),
        );
    }
    if let Some(c) = &p.registrant {
        fact("Registrant", esc(&c.display_name));
    }
    fact("Paid till", time_el(p.paid_till));
    let mut flags = Vec::new();
    if p.expired {
        flags.push("expired".to_string());
    }
    if p.hold {
        flags.push(format!(
            "on hold{}",
            d.hold_since
                .map(|t| format!(" since {}", time_el(t)))
                .unwrap_or_default()
        ));
    }
    if p.verification_pending {
        flags.push("verification pending".into());
    }
    if !flags.is_empty() {
        fact("Registration", flags.join(", "));
    }
    fact(
        "Test window",
        match (rec.window_start, rec.window_end) {
            (Some(s), Some(e)) => format!("{} – {}", time_el(s), time_el(e)),
            _ => "—".into(),
        },
    );
    if rec.state == DelegationState::Testing {
        if let Some(e) = rec.window_end {
            fact("Time left", duration((e - now).num_seconds().max(0)));
        }
    }
    fact("Rounds run", rec.rounds.to_string());
    fact("Next probe", opt_time(rec.next_probe));
    if let Some(t) = rec.delegated_at {
        fact("Delegated at", time_el(t));
    }
    if let Some(v) = &rec.violation {
        fact(
            "Violation",
            format!(
                "<span class=\"fail\">{}</span> since {} ({})",
                esc(&v.message),
                time_el(v.since),
                esc(&v.finding_ids.join(", "))
            ),
        );
    }
    if let Some(f) = &rec.failing {
        fact(
            "Failing rounds",
            format!(
                "<span class=\"warn\">{} in a row since {}</span> (re-probed every {}; a violation needs {} over {}): {}",
                f.rounds,
                time_el(f.since),
                duration(deps.policy.recheck_interval.num_seconds()),
                deps.policy.violation_confirmations,
                duration(deps.policy.violation_min_span.num_seconds()),
                esc(&f.message)
            ),
        );
    }
    if let Some(v) = &rec.last_violation {
        fact(
            "Last violation",
            format!(
                "{} – {} ({}): {}",
                time_el(v.since),
                opt_time(v.until),
                esc(&v.finding_ids.join(", ")),
                esc(&v.message)
            ),
        );
    }
    if let Some(why) = rec
        .last_round
        .as_ref()
        .and_then(|r| r.inconclusive.as_ref())
    {
        fact(
            "Last round",
            format!("<span class=\"warn\">inconclusive</span>: {}", esc(why)),
        );
    }
    if let Some(pend) = &rec.pending {
        let names: Vec<String> = p.nameservers.iter().map(|n| esc(&n.unicode_name)).collect();
        fact(
            "Pending NS change",
            format!(
                "{} {} (window {} – {}, {} rounds); the zone keeps {}",
                state_badge(pend.state),
                names.join(", "),
                opt_time(pend.window_start),
                opt_time(pend.window_end),
                pend.rounds,
                esc(&rec
                    .published
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
            ),
        );
    }
    fact("State changed", time_el(rec.changed_at));
    b.push_str("</dl>\n");

    // Nameservers.
    b.push_str("<h3 id=\"ns\">Declared nameservers</h3>\n");
    if p.nameservers.is_empty() {
        b.push_str("<p>None declared.</p>\n");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Glue addresses</th></tr></thead><tbody>\n");
        for ns in &p.nameservers {
            let addrs: Vec<String> = ns.addresses.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&ns.unicode_name),
                if addrs.is_empty() {
                    "—".to_string()
                } else {
                    esc(&addrs.join(", "))
                }
            );
        }
        b.push_str("</tbody></table>\n");
    }

    // Downtime budget today.
    let start = crate::delegation::downtime_period_start(now, cfg);
    let budget = cfg.delegation.downtime_budget.as_secs();
    let _ = write!(
        b,
        "<h2 id=\"downtime\">Downtime</h2>\n<h3>Budget used this period (since {})</h3>\n",
        time_el(start)
    );
    let items: Vec<(String, f64, String, &str)> = p
        .nameservers
        .iter()
        .map(|ns| {
            let used = rec
                .downtime
                .iter()
                .find(|x| x.server.as_str() == ns.name)
                .filter(|x| x.period_start >= start)
                .map(|x| x.unreachable_secs)
                .unwrap_or(0);
            let colour = if used > budget {
                chart::DOWN
            } else if used * 2 > budget {
                "#b26a00"
            } else {
                chart::UP
            };
            (
                ns.unicode_name.clone(),
                used as f64,
                format!("{} of {}", duration(used as i64), duration(budget as i64)),
                colour,
            )
        })
        .collect();
    if !items.is_empty() {
        b.push_str(&chart::hbars(
            "budget-chart",
            "Unreachable time per nameserver against the daily budget",
            &items,
            Some(budget as f64),
        ));
    }
    // Time the registry itself did not probe a down server: not charged.
    let unmeasured = crate::public::unmeasured(rec);
    if !unmeasured.is_empty() {
        b.push_str("<h3 id=\"unmeasured\">Unmeasured time</h3>\n<p>The registry did not probe these servers again in time while they were down; this time is not charged to the budget.</p>\n<table><thead><tr><th>Nameserver</th><th>Unmeasured</th><th>Period from</th></tr></thead><tbody>\n");
        for u in &unmeasured {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&crate::names::to_unicode(&u.server)),
                duration(u.secs as i64),
                time_el(u.period_start)
            );
        }
        b.push_str("</tbody></table>\n");
    }

    // Timeline from the rounds.
    b.push_str("<h3>Reachability timeline</h3>\n");
    if d.rounds.is_empty() {
        b.push_str("<p>No probe rounds yet.</p>\n");
    } else {
        let mut servers: Vec<String> = p.nameservers.iter().map(|n| n.name.clone()).collect();
        for r in &d.rounds {
            for s in &r.servers {
                if !servers.contains(&s.name) {
                    servers.push(s.name.clone());
                }
            }
        }
        let lanes: Vec<chart::Lane> = servers
            .iter()
            .map(|s| chart::Lane {
                server: crate::names::to_unicode(s),
                samples: d
                    .rounds
                    .iter()
                    .map(|r| {
                        (
                            r.at,
                            r.servers.iter().find(|x| &x.name == s).map(|x| x.reachable),
                        )
                    })
                    .collect(),
            })
            .collect();
        let from = d.rounds.first().map(|r| r.at).unwrap_or(now);
        let last = d.rounds.last().map(|r| r.at).unwrap_or(now);
        // Extend the last result to now, but not beyond one probe interval
        // past the last round (a stale record should look stale).
        let interval = Config::chrono(cfg.delegation.probe_interval);
        let to = now
            .min(last + interval)
            .max(from + chrono::Duration::minutes(1));
        b.push_str(&chart::timeline("timeline", &lanes, from, to));
        let _ = writeln!(
            b,
            "<p class=\"note\">From the last {} round(s). Each result holds until the next round.</p>",
            d.rounds.len()
        );
    }

    // Rounds, newest first.
    b.push_str("<h2 id=\"rounds\">Round history</h2>\n");
    if d.rounds.is_empty() {
        b.push_str("<p>No rounds yet.</p>\n");
    } else {
        b.push_str("<table>\n<caption>Probe rounds, newest first</caption>\n<thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Result</th><th scope=\"col\" class=\"num\">Duration</th><th scope=\"col\">Servers reachable</th><th scope=\"col\">Findings</th></tr></thead>\n<tbody>\n");
        for r in d.rounds.iter().rev() {
            let reach = r
                .servers
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        esc(&crate::names::to_unicode(&s.name)),
                        if s.reachable {
                            "<span class=\"pass\">up</span>"
                        } else {
                            "<span class=\"fail\">down</span>"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            let findings = if r.findings.is_empty() {
                "—".to_string()
            } else {
                let mut s = String::from("<ul class=\"findings\">");
                for f in &r.findings {
                    let at = match (&f.server, &f.address) {
                        (Some(sv), Some(a)) => format!(" ({} {})", esc(sv), esc(a)),
                        (Some(sv), None) => format!(" ({})", esc(sv)),
                        (None, Some(a)) => format!(" ({})", esc(a)),
                        (None, None) => String::new(),
                    };
                    let _ = write!(
                        s,
                        "<li>{} <code>{}</code>{at}: {}</li>",
                        html::severity_badge(f.severity),
                        esc(&f.id),
                        esc(&f.message)
                    );
                }
                s.push_str("</ul>");
                s
            };
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{} ms</td><td>{reach}</td><td>{findings}</td></tr>",
                time_el(r.at),
                if r.passed {
                    "<span class=\"pass\">pass</span>"
                } else {
                    "<span class=\"fail\">fail</span>"
                },
                r.duration_ms,
            );
        }
        b.push_str("</tbody></table>\n");
    }

    // State history.
    b.push_str("<h2 id=\"history\">State history</h2>\n");
    if d.history.is_empty() {
        b.push_str("<p>No state changes recorded.</p>\n");
    } else {
        b.push_str("<table>\n<caption>Delegation state changes, newest first</caption>\n<thead><tr><th scope=\"col\">Time</th><th scope=\"col\">From</th><th scope=\"col\">To</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n");
        for e in d.history.iter().rev() {
            // Already the public projection (no operator notes, no handles).
            let reason = e.reason.as_str();
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time_el(e.at),
                e.from.map(state_badge).unwrap_or_else(|| "—".into()),
                state_badge(e.to),
                esc(reason)
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b
}

pub(super) async fn domain_page(State(deps): State<Deps>, Path(raw): Path<String>) -> Response {
    let name = match deps.zones.parse_domain(&raw) {
        Ok(n) => n,
        Err(e) => {
            return error_page(
                &deps,
                StatusCode::BAD_REQUEST,
                "Not a domain name of this registry",
                &format!("'{raw}': {e}"),
            )
        }
    };
    let now = deps.now();
    let a = deps.clone();
    let key = name.as_str().to_string();
    match blocking(move || gather_domain(&a, &key, now)).await {
        Ok(Some(d)) => {
            let n = nonce();
            let body = render_domain(&deps, &d, now);
            let title = d.public.unicode_name.clone();
            html_response(StatusCode::OK, &n, page(&title, now, &n, &body))
        }
        Ok(None) => error_page(
            &deps,
            StatusCode::NOT_FOUND,
            "No such domain",
            &format!("{} is not registered.", name.to_unicode()),
        ),
        Err(e) => {
            tracing::error!("dashboard: {e}");
            error_page(
                &deps,
                StatusCode::SERVICE_UNAVAILABLE,
                "Store unavailable",
                "The registry store could not be read; try again shortly.",
            )
        }
    }
}

//! The overview page at `/`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::config::Config;
use crate::model::{DelegationRecord, DelegationState, RoundSummary, Severity, Timestamp};
use crate::store::{StoreError, StoreStats};

use super::html::{duration, esc, opt_time, page, path_segment, time_el};
use super::shell::*;
use super::{chart, html};

/// Domains read per state for the aggregates.
pub const SAMPLE_PER_STATE: usize = 2000;
/// Rows in the "testing now" and "test failed" tables.
pub(super) const TABLE_ROWS: usize = 50;
// ---- overview ------------------------------------------------------------

/// A domain's row in the overview tables.
pub(super) struct Row {
    name: String,
    unicode: String,
    registrar: String,
    rec: DelegationRecord,
}

#[derive(Default)]
pub(super) struct CheckCount {
    errors: u64,
    warnings: u64,
    example: String,
}

pub(super) struct Overview {
    stats: StoreStats,
    testing: Vec<Row>,
    testing_sampled: bool,
    failed: Vec<Row>,
    failed_sampled: bool,
    by_check: BTreeMap<String, CheckCount>,
    checked_domains: usize,
    sampled: bool,
}

pub(super) fn gather(deps: &Deps) -> Result<Overview, StoreError> {
    let store = deps.store.as_ref();
    let stats = store.stats()?;
    let mut by_check: BTreeMap<String, CheckCount> = BTreeMap::new();
    let mut checked_domains = 0;
    let mut sampled = false;
    let mut testing = Vec::new();
    let mut failed = Vec::new();
    let (mut testing_sampled, mut failed_sampled) = (false, false);
    for state in [
        DelegationState::Testing,
        DelegationState::TestFailed,
        DelegationState::Suspended,
        DelegationState::Delegated,
    ] {
        let (keys, more) = store.domains_by_state(state, None, SAMPLE_PER_STATE)?;
        sampled |= more.is_some();
        for k in keys {
            let Some(rec) = store.delegation(&k)? else {
                continue;
            };
            if let Some(r) = &rec.last_round {
                checked_domains += 1;
                // Count each check once per domain, at its worst severity.
                let mut worst: HashMap<&str, Severity> = HashMap::new();
                for f in &r.findings {
                    let e = worst.entry(f.id.as_str()).or_insert(f.severity);
                    *e = (*e).max(f.severity);
                }
                for (id, sev) in worst {
                    let c = by_check.entry(id.to_string()).or_default();
                    match sev {
                        Severity::Error => c.errors += 1,
                        Severity::Warning => c.warnings += 1,
                        Severity::Notice => continue,
                    }
                    if c.example.is_empty() {
                        c.example = k.clone();
                    }
                }
            }
            let target = match state {
                DelegationState::Testing => &mut testing,
                DelegationState::TestFailed => &mut failed,
                _ => continue,
            };
            let registrar = store.domain(&k)?.map(|d| d.registrar).unwrap_or_default();
            target.push(Row {
                unicode: crate::names::to_unicode(&k),
                name: k,
                registrar,
                rec,
            });
        }
        match state {
            DelegationState::Testing => testing_sampled = more.is_some(),
            DelegationState::TestFailed => failed_sampled = more.is_some(),
            _ => {}
        }
    }
    // Most urgent first: the least time left in the window.
    testing.sort_by_key(|r| r.rec.window_end);
    // Most recent failures first.
    failed.sort_by_key(|r| std::cmp::Reverse(r.rec.changed_at));
    Ok(Overview {
        stats,
        testing,
        testing_sampled,
        failed,
        failed_sampled,
        by_check,
        checked_domains,
        sampled,
    })
}

pub(super) fn state_colour(s: DelegationState) -> &'static str {
    match s {
        DelegationState::Delegated => "#2e7d32",
        DelegationState::Testing => "#b26a00",
        DelegationState::TestFailed => "#c62828",
        DelegationState::Suspended => "#7b1fa2",
        DelegationState::Undelegated => "#616161",
    }
}

pub(super) fn domain_link(name: &str, unicode: &str) -> String {
    let shown = if unicode != name {
        format!(
            "{} <span class=\"muted\">({})</span>",
            esc(unicode),
            esc(name)
        )
    } else {
        esc(name)
    };
    format!("<a href=\"/domains/{}\">{shown}</a>", path_segment(name))
}

pub(super) fn failing_ids(r: &Option<RoundSummary>) -> String {
    let Some(r) = r else {
        return "<span class=\"muted\">no round yet</span>".into();
    };
    let mut ids: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        if r.passed {
            "<span class=\"pass\">passed</span>".into()
        } else {
            "<span class=\"fail\">failed</span>".into()
        }
    } else {
        format!(
            "<span class=\"fail\">failed</span>: {}",
            ids.iter()
                .map(|i| format!("<code>{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The EPP sessions card (only when the EPP server is on): the count, and
/// per registrar in its title.
pub(super) fn epp_card(deps: &Deps) -> String {
    if deps.config.epp.listen.is_none() {
        return String::new();
    }
    let s = deps.epp_sessions.snapshot();
    let total: usize = s.iter().map(|(_, n)| n).sum();
    let per: Vec<String> = s.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    format!(
        "<div class=\"card\" title=\"{}\"><div class=\"n\">{total}</div><div class=\"l\">EPP sessions</div></div>",
        html::esc(&per.join(", "))
    )
}

pub(super) fn render_overview(deps: &Deps, o: &Overview, now: Timestamp) -> String {
    let mut b = String::new();
    if let Some(o) = deps.outage() {
        let _ = writeln!(
            b,
            "<p class=\"banner warn\" role=\"alert\" id=\"outage\">Registry-side outage since {}: {}. Failing rounds are inconclusive: nothing is charged to registrants.</p>",
            time_el(o.since),
            esc(&o.reason)
        );
    }
    let total = o.stats.domains;
    // Summary cards.
    let _ = write!(
        b,
        "<h2 id=\"states\">Domains by delegation state</h2>\n<div class=\"cards\">\
<div class=\"card\"><div class=\"n\" data-metric=\"domains\">{total}</div><div class=\"l\">domains</div></div>"
    );
    for s in DelegationState::ALL {
        let n = o.stats.by_state.get(s.as_str()).copied().unwrap_or(0);
        let _ = write!(
            b,
            "<div class=\"card\"><div class=\"n\" data-state=\"{0}\">{n}</div><div class=\"l\">{1}</div></div>",
            s.as_str(),
            s.as_str().replace('_', " ")
        );
    }
    let _ = writeln!(
        b,
        "<div class=\"card\"><div class=\"n\">{}</div><div class=\"l\">registrars</div></div>\
<div class=\"card\"><div class=\"n\">{}</div><div class=\"l\">nameserver hosts</div></div>\
<div class=\"card\"><div class=\"n\">{:.1}&nbsp;MB</div><div class=\"l\">store size</div></div>{}</div>",
        o.stats.registrars,
        o.stats.hosts,
        o.stats.file_bytes as f64 / 1_048_576.0,
        epp_card(deps)
    );
    let items: Vec<(String, f64, String, &str)> = DelegationState::ALL
        .iter()
        .map(|s| {
            let n = o.stats.by_state.get(s.as_str()).copied().unwrap_or(0);
            let pct = if total > 0 {
                n as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            (
                s.as_str().replace('_', " "),
                n as f64,
                format!("{n} ({pct:.1}%)"),
                state_colour(*s),
            )
        })
        .collect();
    b.push_str(&chart::hbars(
        "state-chart",
        "Domains by delegation state",
        &items,
        None,
    ));

    // Testing now.
    let _ = write!(
        b,
        "\n<h2 id=\"testing\">Testing now</h2>\n<p class=\"note\">Most urgent first: the least time left in the test window. A window that ends without a passing round becomes <em>test failed</em>.{}</p>\n",
        if o.testing_sampled {
            format!(" Showing the most urgent of the first {SAMPLE_PER_STATE} domains in testing.")
        } else {
            String::new()
        }
    );
    if o.testing.is_empty() {
        b.push_str("<p>No domain is being tested.</p>\n");
    } else {
        let window = Config::chrono(deps.config.delegation.test_window)
            .num_seconds()
            .max(1);
        b.push_str("<table>\n<caption>Domains in their test window</caption>\n<thead><tr><th scope=\"col\">Domain</th><th scope=\"col\">Registrar</th><th scope=\"col\" class=\"num\">Rounds</th><th scope=\"col\">Time left</th><th scope=\"col\">Window ends</th><th scope=\"col\">Last round</th><th scope=\"col\">Next probe</th></tr></thead>\n<tbody>\n");
        for r in o.testing.iter().take(TABLE_ROWS) {
            let left = r
                .rec
                .window_end
                .map(|e| (e - now).num_seconds().max(0))
                .unwrap_or(0);
            let pct = (left as f64 * 100.0 / window as f64).clamp(0.0, 100.0);
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><span class=\"bar\" role=\"presentation\"><span style=\"width:{pct:.0}%\"></span></span> {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                domain_link(&r.name, &r.unicode),
                esc(&r.registrar),
                r.rec.rounds,
                duration(left),
                opt_time(r.rec.window_end),
                failing_ids(&r.rec.last_round),
                opt_time(r.rec.next_probe),
            );
        }
        b.push_str("</tbody></table>\n");
        if o.testing.len() > TABLE_ROWS {
            let _ = writeln!(
                b,
                "<p class=\"note\">and {} more.</p>",
                o.testing.len() - TABLE_ROWS
            );
        }
    }

    // Failures by check.
    let _ = write!(
        b,
        "<h2 id=\"failures\">Failures by check</h2>\n<p class=\"note\">From the last round of {} domain(s) that are testing, test failed, suspended or delegated{}. A domain counts once per check, at its worst severity.</p>\n",
        o.checked_domains,
        if o.sampled {
            format!(" (up to {SAMPLE_PER_STATE} per state)")
        } else {
            String::new()
        }
    );
    if o.by_check.is_empty() {
        b.push_str("<p>No check reported an error or warning.</p>\n");
    } else {
        let mut rows: Vec<_> = o.by_check.iter().collect();
        rows.sort_by(|a, b| {
            (b.1.errors, b.1.warnings)
                .cmp(&(a.1.errors, a.1.warnings))
                .then(a.0.cmp(b.0))
        });
        b.push_str("<table>\n<caption>Domains whose last round reported each check</caption>\n<thead><tr><th scope=\"col\">Check</th><th scope=\"col\" class=\"num\">Domains failing (error)</th><th scope=\"col\" class=\"num\">Domains warned</th><th scope=\"col\">Example</th></tr></thead>\n<tbody>\n");
        for (id, c) in &rows {
            let _ = writeln!(
                b,
                "<tr><th scope=\"row\"><code>{}</code></th><td class=\"num\" data-check-errors=\"{}\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(id),
                esc(id),
                c.errors,
                c.warnings,
                domain_link(&c.example, &crate::names::to_unicode(&c.example))
            );
        }
        b.push_str("</tbody></table>\n");
        let items: Vec<(String, f64, String, &str)> = rows
            .iter()
            .filter(|(_, c)| c.errors > 0)
            .take(15)
            .map(|(id, c)| {
                (
                    id.to_string(),
                    c.errors as f64,
                    format!("{} domain(s)", c.errors),
                    chart::DOWN,
                )
            })
            .collect();
        if !items.is_empty() {
            b.push_str(&chart::hbars(
                "check-chart",
                "Domains failing each check (errors)",
                &items,
                None,
            ));
        }
    }

    // Test failed.
    let _ = write!(
        b,
        "\n<h2 id=\"failed\">Test failed</h2>\n<p class=\"note\">Testing stopped; it restarts on a retest request (registrar API or <code>zonekeeper retest</code>).{}</p>\n",
        if o.failed_sampled {
            format!(" Showing the first {SAMPLE_PER_STATE} by name, most recent first.")
        } else {
            String::new()
        }
    );
    if o.failed.is_empty() {
        b.push_str("<p>No domain is in test failed.</p>\n");
    } else {
        b.push_str("<table>\n<caption>Domains whose test window ended without a pass</caption>\n<thead><tr><th scope=\"col\">Domain</th><th scope=\"col\">Registrar</th><th scope=\"col\" class=\"num\">Rounds</th><th scope=\"col\">Failed at</th><th scope=\"col\">Last round</th></tr></thead>\n<tbody>\n");
        for r in o.failed.iter().take(TABLE_ROWS) {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                domain_link(&r.name, &r.unicode),
                esc(&r.registrar),
                r.rec.rounds,
                time_el(r.rec.changed_at),
                failing_ids(&r.rec.last_round),
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b
}

pub(super) async fn overview(State(deps): State<Deps>) -> Response {
    let a = deps.clone();
    match blocking(move || gather(&a)).await {
        Ok(o) => {
            let now = deps.now();
            let n = nonce();
            let body = render_overview(&deps, &o, now);
            html_response(StatusCode::OK, &n, page("Overview", now, &n, &body))
        }
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

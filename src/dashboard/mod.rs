//! The operator dashboard at `/`: server-rendered HTML, no scripts beyond a
//! reload timer, no external resources.
//!
//! The dashboard shares the HTTP listener with RDAP, so it shows only what
//! is public or operational: registration data comes from
//! [`crate::public`], probe results and delegation progress from the
//! delegation record. Hold reasons, auth codes and contact details that are
//! not disclosed never appear.
//!
//! Aggregates over many domains (testing now, failures by check) read a
//! bounded sample per state, so a page stays cheap with a million domains;
//! the page says when it is a sample.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::delegation::outage::{Outage, OutageDetector};
use crate::delegation::Policy;
use crate::model::{DelegationRecord, DelegationState, RoundSummary, Severity, Timestamp};
use crate::names::Zones;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::store::{StoreError, StoreStats};

pub mod chart;
pub mod html;

use html::{duration, esc, opt_time, page, path_segment, state_badge, time_el};

/// Domains read per state for the aggregates.
pub const SAMPLE_PER_STATE: usize = 2000;
/// Rows in the "testing now" and "test failed" tables.
const TABLE_ROWS: usize = 50;
/// Rounds shown on a domain page (and drawn in its timeline).
const ROUNDS_SHOWN: usize = 200;
const HISTORY_SHOWN: usize = 50;

/// What the dashboard uses of the process, and nothing else (built by
/// [`crate::app::App::dashboard`]).
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    /// The delegation policy (rules shown on a domain page).
    pub policy: Arc<Policy>,
    /// The registry-side outage detector (a banner while one is in force).
    pub outage: Arc<Mutex<OutageDetector>>,
    /// EPP sessions logged in now.
    pub epp_sessions: Arc<Sessions>,
}

impl Deps {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn outage(&self) -> Option<Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
    }
}

pub fn router(deps: impl Into<Deps>) -> Router {
    let deps: Deps = deps.into();
    Router::new()
        .route("/", get(overview))
        .route("/domain", get(find_domain))
        .route("/domains/{name}", get(domain_page))
        .with_state(deps)
}

fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn html_response(status: StatusCode, nonce: &str, body: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn error_page(deps: &Deps, status: StatusCode, title: &str, detail: &str) -> Response {
    let n = nonce();
    let body = format!(
        "<h2>{}</h2>\n<p>{}</p>\n<p><a href=\"/\">Back to the overview</a></p>",
        esc(title),
        esc(detail)
    );
    html_response(status, &n, page(title, deps.now(), &n, &body))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

// ---- overview ------------------------------------------------------------

/// A domain's row in the overview tables.
struct Row {
    name: String,
    unicode: String,
    registrar: String,
    rec: DelegationRecord,
}

#[derive(Default)]
struct CheckCount {
    errors: u64,
    warnings: u64,
    example: String,
}

struct Overview {
    stats: StoreStats,
    testing: Vec<Row>,
    testing_sampled: bool,
    failed: Vec<Row>,
    failed_sampled: bool,
    by_check: BTreeMap<String, CheckCount>,
    checked_domains: usize,
    sampled: bool,
}

fn gather(deps: &Deps) -> Result<Overview, StoreError> {
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

fn state_colour(s: DelegationState) -> &'static str {
    match s {
        DelegationState::Delegated => "#2e7d32",
        DelegationState::Testing => "#b26a00",
        DelegationState::TestFailed => "#c62828",
        DelegationState::Suspended => "#7b1fa2",
        DelegationState::Undelegated => "#616161",
    }
}

fn domain_link(name: &str, unicode: &str) -> String {
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

fn failing_ids(r: &Option<RoundSummary>) -> String {
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
fn epp_card(deps: &Deps) -> String {
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

fn render_overview(deps: &Deps, o: &Overview, now: Timestamp) -> String {
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

async fn overview(State(deps): State<Deps>) -> Response {
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

// ---- domain page ---------------------------------------------------------

#[derive(Deserialize)]
struct FindQuery {
    name: Option<String>,
}

/// The search form: normalise the name and go to its page.
async fn find_domain(
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

struct DomainData {
    public: crate::public::PublicDomain,
    rec: DelegationRecord,
    hold_since: Option<Timestamp>,
    rounds: Vec<RoundSummary>,
    history: Vec<crate::public::PublicEvent>,
}

fn gather_domain(
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

fn render_domain(deps: &Deps, d: &DomainData, now: Timestamp) -> String {
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

async fn domain_page(State(deps): State<Deps>, Path(raw): Path<String>) -> Response {
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

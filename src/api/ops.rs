//! Registrar operations on registrations: create, renew, contacts,
//! registrant change, registrar change, close, verification answer and the
//! change feed. Each handler parses its input, makes one call to the
//! registry service as `Actor::Registrar(caller)` and renders the result;
//! the rules are the service's.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::problem::Problem;
use super::state::{blocking, own_domain, parse_name, ApiJson, ApiState};
use super::view::NameserverOut;
use crate::app::writer::Writer;
use crate::lifecycle::{self, Status};
use crate::model::{DelegationRecord, Domain, PendingRegistrant, PendingTransfer, Timestamp};
use crate::names::DomainName;
use crate::registry::{Actor, CreateIn, Registry, RegistryError, TransferView};
use crate::status::{self, EppStatus, RgpStatus};

/// A registration as its sponsor sees it (never the auth code itself).
#[derive(Debug, Serialize)]
pub struct DomainOut {
    pub name: String,
    pub unicode_name: String,
    pub registrar: String,
    pub registrant: String,
    pub admin: Option<String>,
    pub tech: Option<String>,
    pub reseller: Option<String>,
    pub created: Timestamp,
    pub paid_till: Timestamp,
    pub nameservers: Vec<NameserverOut>,
    pub transferred: Option<Timestamp>,
    /// Whether an auth code is set, and until when it is accepted.
    pub auth_code_set: bool,
    pub auth_code_expires: Option<Timestamp>,
    pub pending_transfer: Option<PendingTransfer>,
    pub pending_registrant: Option<PendingRegistrant>,
    /// EPP status values (RFC 5731 §2.3) of the one status model
    /// (docs/statuses.md).
    pub statuses: Vec<EppStatus>,
    /// The RFC 3915 RGP state, if any (`redemptionPeriod`, `pendingDelete`).
    pub rgp_status: Option<RgpStatus>,
    /// The RDAP (RFC 8056) names of the locks and pending requests among
    /// `statuses`; kept for compatibility.
    pub lock_statuses: Vec<&'static str>,
    /// The `client*` statuses the sponsor set (`PUT …/client-statuses`).
    pub client_statuses: Vec<&'static str>,
    pub lifecycle: Status,
}

fn domain_out(app: &Writer, d: &Domain) -> Result<DomainOut, Problem> {
    let now = app.now();
    // As of now: what time completed shows before the sweep writes it.
    let d = &lifecycle::as_of(d, now);
    let st = lifecycle::evaluate(d, now, &app.config.lifecycle);
    let rec = app
        .store
        .delegation(d.name.as_str())?
        .unwrap_or_else(|| DelegationRecord::undelegated(d.created));
    let model = status::compute(&st, status::Delegation::of(&rec));
    Ok(DomainOut {
        name: d.name.as_str().to_string(),
        unicode_name: d.name.to_unicode(),
        registrar: d.registrar.clone(),
        registrant: d.registrant.clone(),
        admin: d.admin.clone(),
        tech: d.tech.clone(),
        reseller: d.registration.reseller.clone(),
        created: d.created,
        paid_till: d.paid_till,
        nameservers: d
            .nameservers
            .iter()
            .map(|n| NameserverOut {
                name: n.name.as_str().to_string(),
                addresses: n.addresses.clone(),
            })
            .collect(),
        transferred: d.transferred,
        auth_code_set: d.auth_info.is_some(),
        auth_code_expires: d.registration.auth_info_expires,
        pending_transfer: d.registration.pending_transfer.clone(),
        pending_registrant: d.registration.pending_registrant.clone(),
        statuses: model.epp(),
        rgp_status: model.rgp(),
        lock_statuses: model.lock_words(),
        client_statuses: model.client.iter().map(|c| c.epp()).collect(),
        lifecycle: st,
    })
}

fn actor(c: &Caller) -> Actor {
    Actor::Registrar(c.handle.clone())
}

/// Read the caller's own domain after a change.
fn reread(app: &Writer, caller: &Caller, name: &str) -> Result<DomainOut, Problem> {
    let d = app
        .store
        .domain(name)?
        .ok_or_else(|| Problem::no_such_domain(name))?;
    // The sponsor as of now (a registrar change may be due, not yet swept).
    let d = lifecycle::as_of(&d, app.now());
    if d.registrar != caller.handle {
        return Err(Problem::forbidden(name));
    }
    domain_out(app, &d)
}

type NamePath = Result<Path<String>, PathRejection>;

/// The shape of every handler on one of the caller's domains: parse the
/// name from the path, then run `op` off the runtime as the caller.
async fn on_domain<T, F>(s: &ApiState, caller: Caller, path: NamePath, op: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&Writer, &Caller, &Actor, &DomainName) -> Result<T, Problem> + Send + 'static,
{
    let name = parse_name(&s.app, path)?;
    let app = s.app.clone();
    blocking(move || op(&app, &caller, &actor(&caller), &name)).await
}

/// [`on_domain`] for one registry operation that returns the changed
/// domain: answered as the sponsor sees it.
async fn change<F>(
    s: &ApiState,
    caller: Caller,
    path: NamePath,
    op: F,
) -> Result<Json<DomainOut>, Problem>
where
    F: FnOnce(&Registry<'_>, &Actor, &str) -> Result<Domain, RegistryError> + Send + 'static,
{
    on_domain(s, caller, path, move |app, _, who, name| {
        let d = op(&app.registry(), who, name.as_str())?;
        Ok(Json(domain_out(app, &d)?))
    })
    .await
}

pub async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateIn>,
) -> Result<(StatusCode, Json<DomainOut>), Problem> {
    let app = s.app.clone();
    blocking(move || {
        let d = app.registry().create(&actor(&caller), &body)?;
        tracing::info!(domain = %d.name, registrar = %caller.handle, "domain created via API");
        Ok((StatusCode::CREATED, Json(domain_out(&app, &d)?)))
    })
    .await
}

pub async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    on_domain(&s, caller, path, |app, caller, _, name| {
        let (d, _) = own_domain(app, caller, name, app.now())?;
        Ok(Json(domain_out(app, &d)?))
    })
    .await
}

/// Whether a name can be registered now, by the rule `create` applies
/// (the same answer as EPP `domain:check`).
#[derive(Debug, Serialize)]
pub struct AvailabilityOut {
    pub name: String,
    pub available: bool,
    /// The rule `create` would refuse with (`reserved-name`, `confusable`,
    /// `exists`, `court-reservation`, `invalid`).
    pub rule: Option<&'static str>,
    pub reason: Option<String>,
}

pub async fn availability(
    State(s): State<ApiState>,
    _caller: Caller,
    path: NamePath,
) -> Result<Json<AvailabilityOut>, Problem> {
    let Path(raw) = path.map_err(|e| Problem::bad_request("bad-path", e.body_text()))?;
    let app = s.app.clone();
    blocking(move || {
        Ok(Json(match app.registry().availability(&raw)? {
            Ok(name) => AvailabilityOut {
                name,
                available: true,
                rule: None,
                reason: None,
            },
            Err((rule, why)) => AvailabilityOut {
                name: raw,
                available: false,
                rule: Some(rule),
                reason: Some(why),
            },
        }))
    })
    .await
}

pub async fn renew(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    change(&s, caller, path, |r, who, name| r.renew(who, name)).await
}

/// `PUT …/contacts`: each member present replaces that contact (`null`
/// removes it); absent members stay.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsIn {
    #[serde(default, deserialize_with = "present")]
    pub admin: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub tech: Option<Option<String>>,
}

/// A member that is present (even `null`) is `Some`; an absent one stays
/// `None` through `default`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub async fn contacts(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
    ApiJson(body): ApiJson<ContactsIn>,
) -> Result<Json<DomainOut>, Problem> {
    change(&s, caller, path, move |r, who, name| {
        r.update_contacts(who, name, body.admin, body.tech)
    })
    .await
}

/// `PUT …/client-statuses`: the whole set of the sponsor's `client*`
/// statuses (docs/statuses.md "Registrar-set statuses").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientStatusesIn {
    pub statuses: Vec<String>,
}

pub async fn client_statuses(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
    ApiJson(body): ApiJson<ClientStatusesIn>,
) -> Result<Json<DomainOut>, Problem> {
    change(&s, caller, path, move |r, who, name| {
        use crate::registry::client_status::{parse_statuses, ClientStatusChange};
        let set = parse_statuses("statuses", body.statuses.iter().map(String::as_str))?;
        r.client_statuses(
            who,
            name,
            &ClientStatusChange::Set(set.into_iter().collect()),
        )
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrantIn {
    /// The incoming registrant's contact handle.
    pub registrant: String,
}

pub async fn registrant_request(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
    ApiJson(body): ApiJson<RegistrantIn>,
) -> Result<(StatusCode, Json<DomainOut>), Problem> {
    change(&s, caller, path, move |r, who, name| {
        r.registrant_change_request(who, name, &body.registrant)
    })
    .await
    .map(|d| (StatusCode::ACCEPTED, d))
}

pub async fn registrant_accept(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    change(&s, caller, path, |r, who, name| {
        r.registrant_change_accept(who, name)
    })
    .await
}

pub async fn registrant_cancel(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    change(&s, caller, path, |r, who, name| {
        r.registrant_change_cancel(who, name)
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct AuthCodeOut {
    /// Shown once; give it to the registrant for a registrar change.
    pub auth_code: String,
    pub expires: Timestamp,
}

pub async fn reset_auth_code(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<AuthCodeOut>, Problem> {
    on_domain(&s, caller, path, |app, _, who, name| {
        let (auth_code, expires) = app.registry().reset_auth_code(who, name.as_str())?;
        Ok(Json(AuthCodeOut { auth_code, expires }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferIn {
    pub auth_code: String,
}

pub async fn transfer_request(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
    ApiJson(body): ApiJson<TransferIn>,
) -> Result<(StatusCode, Json<TransferView>), Problem> {
    on_domain(&s, caller, path, move |app, _, who, name| {
        let t = app
            .registry()
            .transfer_request(who, name.as_str(), &body.auth_code)?;
        Ok((StatusCode::ACCEPTED, Json(t)))
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct DecisionOut {
    pub domain: String,
    /// The sponsoring registrar after the decision.
    pub registrar: String,
}

async fn decide(
    s: ApiState,
    caller: Caller,
    path: NamePath,
    approve: bool,
) -> Result<Json<DecisionOut>, Problem> {
    on_domain(&s, caller, path, move |app, _, who, name| {
        let d = app
            .registry()
            .transfer_decide(who, name.as_str(), approve)?;
        Ok(Json(DecisionOut {
            domain: d.name.as_str().to_string(),
            registrar: d.registrar,
        }))
    })
    .await
}

pub async fn transfer_approve(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DecisionOut>, Problem> {
    decide(s, caller, path, true).await
}

pub async fn transfer_reject(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DecisionOut>, Problem> {
    decide(s, caller, path, false).await
}

#[derive(Debug, Serialize)]
pub struct TransfersOut {
    pub transfers: Vec<TransferView>,
}

pub async fn transfers(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<TransfersOut>, Problem> {
    let app = s.app.clone();
    blocking(move || {
        let transfers = app.registry().pending_transfers(&actor(&caller))?;
        Ok(Json(TransfersOut { transfers }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseIn {
    /// `now` or `end_of_period`.
    pub when: CloseWhen,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseWhen {
    Now,
    EndOfPeriod,
}

#[derive(Debug, Serialize)]
pub struct CloseOut {
    pub domain: String,
    /// When the registration ends (the name is free after it).
    pub closes_at: Timestamp,
}

pub async fn close(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
    ApiJson(body): ApiJson<CloseIn>,
) -> Result<Json<CloseOut>, Problem> {
    on_domain(&s, caller, path, move |app, _, who, name| {
        let at_end = matches!(body.when, CloseWhen::EndOfPeriod);
        let closes_at = app.registry().close(who, name.as_str(), at_end)?;
        Ok(Json(CloseOut {
            domain: name.as_str().to_string(),
            closes_at,
        }))
    })
    .await
}

pub async fn revoke_close(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    on_domain(&s, caller, path, |app, caller, who, name| {
        app.registry().revoke_close(who, name.as_str())?;
        reread(app, caller, name.as_str()).map(Json)
    })
    .await
}

pub async fn verification_request(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    on_domain(&s, caller, path, |app, caller, who, name| {
        app.registry().verification_request(who, name.as_str())?;
        reread(app, caller, name.as_str()).map(Json)
    })
    .await
}

pub async fn verification_answer(
    State(s): State<ApiState>,
    caller: Caller,
    path: NamePath,
) -> Result<Json<DomainOut>, Problem> {
    on_domain(&s, caller, path, |app, caller, who, name| {
        app.registry().verification_answer(who, name.as_str())?;
        reread(app, caller, name.as_str()).map(Json)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// `next_cursor` of the previous call; absent: from the start.
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// A feed entry as the API answers it (and the webhook delivers it).
pub use crate::registry::FeedEntry as EventOut;

#[derive(Debug, Serialize)]
pub struct EventsOut {
    pub events: Vec<EventOut>,
    /// Pass as `after` next time (also when no event came: poll again).
    pub next_cursor: String,
}

pub async fn events(
    State(s): State<ApiState>,
    caller: Caller,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsOut>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request("bad-query", e.body_text()))?;
    let after: u64 = match q.after.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse().map_err(|_| {
            Problem::bad_request("bad-query", format!("'{c}' is not a cursor from this API"))
        })?,
    };
    let page = s.app.config.api.page_size.max(1);
    let limit = q.limit.unwrap_or(page).clamp(1, page);
    let app = s.app.clone();
    blocking(move || {
        // (Due automatic approvals are made by serve's sweep, every
        // `lifecycle.sweep_interval`; a poll stays a cheap range read.)
        let evs = app.store.feed(&caller.handle, after, limit)?;
        let next = evs.last().map(|e| e.seq).unwrap_or(after);
        Ok(Json(EventsOut {
            events: evs.into_iter().map(EventOut::of).collect(),
            next_cursor: next.to_string(),
        }))
    })
    .await
}

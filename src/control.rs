//! The local control socket: the operator commands (`domain show`,
//! `retest`, `hold`, `release` and the registry operations of
//! [`Request`]) while `serve` owns the store.
//!
//! redb lets one process open the store, so while `serve` runs the CLI
//! cannot. Like `nsd-control`/`unbound-control` in local mode, `serve` then
//! listens on a Unix socket (`store.control_socket`, default `<store>.sock`)
//! created with mode 0600: file permissions are the authentication, and a
//! peer-credential check refuses any other user that connects in the moment
//! between `bind` and `chmod`. The CLI tries the store first and falls back
//! to the socket on [`StoreError::Locked`].
//!
//! Protocol (HTTP/1.1 over the socket; `curl --unix-socket` works too):
//! - `GET /domains/{name}`: the JSON `domain show` prints;
//! - `POST /domains/{name}/{op}` with `op` one of `retest`, `hold` (body
//!   `{"reason": "…"}`), `release`, `lock` (`{"reason"}`), `unlock`
//!   (`{"outcome"}`), `court-cancel` (`{"claimant"}`), `verify`, `verified`, `renew`,
//!   `close` (`{"at_end": bool}`), `transfer-approve`, `transfer-reject`;
//!   `POST /resellers/{handle}/move` (`{"to": REGISTRAR}`);
//!   `POST /registrars/{handle}/webhook` (`{"url", "secret"}`, or `{}` to
//!   remove it); `GET
//!   /transfers`: the text the CLI prints;
//! - `POST /backup`: a consistent copy of the store (redb: one read
//!   transaction), streamed as the body (`application/octet-stream`);
//!   `zonekeeper store backup DEST` writes and checks it;
//! - errors: 400 bad name or body, 404 unknown domain, 409 refused (e.g.
//!   nothing to retest), 500 store failure, each with a one-line text body.
//!
//! The operations themselves ([`show`], [`execute`] over the registry
//! service as [`Actor::Operator`]) are shared by both paths, so the rules,
//! output and exit codes are the same either way.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tracing::{error, info, warn};

use crate::app::writer::Writer;
use crate::config::Config;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::registry::{Actor, Registry, RegistryError};
use crate::store::{Store, StoreError};

/// `sun_path` holds 108 bytes on Linux, the terminating NUL included.
const SUN_PATH_MAX: usize = 107;

/// A control request (server side) or call (client side) gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---- the operations ---------------------------------------------------

/// Why an operator command failed; the status the socket answers with.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The store refused the change (e.g. no nameservers to retest).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Internal(String),
    /// The store cannot commit now (full volume, unreachable): retry.
    #[error("{0}")]
    Unavailable(String),
}

impl OpError {
    pub fn status(&self) -> StatusCode {
        match self {
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Refused(_) => StatusCode::CONFLICT,
            OpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            OpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchDomain(_) => OpError::NotFound(e.to_string()),
            StoreError::Rejected(v) => OpError::Refused(
                v.iter()
                    .map(|r| r.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other if other.storage().is_some() => OpError::Unavailable(other.to_string()),
            other => OpError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        // One line, whatever the cause said.
        let msg = self.to_string().replace(['\n', '\r'], " ");
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{msg}\n"),
        )
            .into_response()
    }
}

/// A domain name as typed (U-labels, any case, trailing dot) to its A-label
/// form.
pub fn normalise(zones: &Zones, name: &str) -> Result<String, OpError> {
    zones
        .parse_domain(name)
        .map(|d| d.as_str().to_string())
        .map_err(|e| OpError::BadRequest(e.to_string()))
}

/// Operator view: registration (the public projection, no secrets), hold,
/// delegation record and history, as pretty JSON ending in a newline.
pub fn show(
    store: &dyn Store,
    cfg: &Config,
    name: &str,
    now: Timestamp,
) -> Result<String, OpError> {
    let Some(b) = store.bundle(name)? else {
        return Err(OpError::NotFound(format!("no such domain: {name}")));
    };
    let st = crate::lifecycle::evaluate(&b.domain, now, &cfg.lifecycle);
    let view = serde_json::json!({
        "domain": crate::public::domain(&b, now, &cfg.lifecycle),
        "lifecycle": st,
        "hold": b.domain.hold,
        "delegation": b.delegation,
        "history": store.history(name, 50)?,
    });
    let text = serde_json::to_string_pretty(&view).map_err(|e| OpError::Internal(e.to_string()))?;
    Ok(format!("{text}\n"))
}

impl From<RegistryError> for OpError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(_) => OpError::NotFound(e.to_string()),
            RegistryError::Invalid(_) => OpError::BadRequest(e.to_string()),
            RegistryError::Store(s) => s.into(),
            RegistryError::Refused { rule, detail } => {
                OpError::Refused(format!("refused by rule {rule}: {detail}"))
            }
            other => OpError::Refused(other.to_string()),
        }
    }
}

/// Run one operator request on domain `name` (A-label form) through the
/// registry service; the text to print. Both the socket and the CLI's
/// direct path use it, so the output is the same either way.
pub fn execute(
    reg: &Registry,
    cfg: &Config,
    name: &str,
    req: &Request,
    now: Timestamp,
) -> Result<String, OpError> {
    let op = Actor::Operator;
    let ts = |t: Timestamp| t.to_rfc3339();
    Ok(match req {
        Request::Show => return show(reg.store(), cfg, name, now),
        Request::Retest => {
            let (_, rec) = reg.retest(&op, name)?;
            format!(
                "{name}: testing until {}\n",
                rec.window_end.map(ts).unwrap_or_default()
            )
        }
        Request::Hold { reason } => {
            reg.hold(&op, name, reason)?;
            format!("{name}: on hold\n")
        }
        Request::Release => {
            reg.release(&op, name)?;
            format!("{name}: released\n")
        }
        Request::Lock { reason } => {
            reg.dispute_lock(&op, name, reason)?;
            format!("{name}: dispute lock set\n")
        }
        Request::Unlock { outcome } => {
            let paid = reg.dispute_unlock(&op, name, outcome)?;
            format!("{name}: dispute lock lifted; paid until {}\n", ts(paid))
        }
        Request::CourtCancel { claimant } => {
            let until = reg.court_cancel(&op, name, claimant)?;
            format!(
                "{name}: cancelled; reserved for {claimant} until {}\n",
                ts(until)
            )
        }
        Request::Verify => {
            reg.verification_request(&op, name)?;
            format!("{name}: verification requested\n")
        }
        Request::Verified => {
            reg.verification_answer(&op, name)?;
            format!("{name}: verification answered\n")
        }
        Request::Renew => {
            let d = reg.renew(&op, name)?;
            format!("{name}: paid till {}\n", ts(d.paid_till))
        }
        Request::Close { at_end } => {
            let at = reg.close(&op, name, *at_end)?;
            format!("{name}: closes at {}\n", ts(at))
        }
        Request::TransferApprove => {
            let d = reg.transfer_decide(&op, name, true)?;
            format!("{name}: transferred to {}\n", d.registrar)
        }
        Request::TransferReject => {
            reg.transfer_decide(&op, name, false)?;
            format!("{name}: registrar change rejected\n")
        }
        Request::MoveReseller { to } => {
            // `name` is the reseller handle here.
            let m = reg.move_reseller(&op, name, to)?;
            let mut out = format!(
                "reseller {}: {} domain(s) moved to {to}\n",
                m.reseller,
                m.domains.len()
            );
            // One line per domain: what the move did to it.
            for d in &m.domains {
                out.push_str(&format!(
                    "{}: moved {} -> {to}; transfer lock until {}; transfer {}; locks kept: {}\n",
                    d.name,
                    d.from,
                    d.transfer_locked_until
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into()),
                    match &d.transfer_cancelled {
                        Some(g) => format!("to {g} cancelled"),
                        None => "none pending".into(),
                    },
                    if d.locks_kept.is_empty() {
                        "none".into()
                    } else {
                        d.locks_kept.join(", ")
                    }
                ));
            }
            out
        }
        Request::Webhook { url, secret } => {
            // `name` is the registrar handle here.
            match (url, secret) {
                (Some(u), Some(sec)) => {
                    reg.set_webhook(&op, name, Some((u, sec)))?;
                    format!("registrar {name}: webhook set to {u}\n")
                }
                (None, None) => {
                    reg.set_webhook(&op, name, None)?;
                    format!("registrar {name}: webhook removed\n")
                }
                _ => {
                    return Err(OpError::BadRequest(
                        "give both a URL and a secret, or neither (to remove the webhook)".into(),
                    ))
                }
            }
        }
        Request::Transfers => {
            let v = reg.pending_transfers(&op)?;
            let mut out = String::new();
            for t in v {
                out.push_str(&format!(
                    "{} {} -> {} requested {} auto-approve {}\n",
                    t.domain,
                    t.from,
                    t.to,
                    ts(t.requested),
                    ts(t.auto_approve)
                ));
            }
            out
        }
    })
}

// ---- server -----------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {0} is in use by another running zonekeeper")]
    InUse(PathBuf),
    #[error("control socket path {0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("control socket path {0} is too long for a Unix socket (at most {SUN_PATH_MAX} bytes); set store.control_socket to a shorter path")]
    TooLong(PathBuf),
    #[error("control socket {path}: {source} (store.control_socket sets where it goes)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A bound control socket. Dropping it removes the socket file (if it is
/// still the one this process created).
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    file: SocketFile,
    /// The uid that owns the socket file (this process's user).
    owner: u32,
}

struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only our own socket: never a file someone put there since.
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Bind the control socket at `path` with mode 0600. A socket file nobody
/// listens on (left by a killed `serve`) is replaced; a live one or a
/// non-socket file is an error. Must run inside a tokio runtime.
pub fn bind(path: &Path) -> Result<ControlSocket, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked first so a long store path gets advice, not "invalid argument".
    if path.as_os_str().len() > SUN_PATH_MAX {
        return Err(ControlError::TooLong(path.to_path_buf()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ControlError::InUse(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                warn!(path = %path.display(), "replacing a stale control socket");
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        },
        Ok(_) => return Err(ControlError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    std_listener.set_nonblocking(true).map_err(io)?;
    let listener = tokio::net::UnixListener::from_std(std_listener).map_err(io)?;
    Ok(ControlSocket {
        listener,
        file,
        owner: meta.uid(),
    })
}

/// Accepts only peers running as the socket's owner or root.
struct PeerChecked {
    listener: tokio::net::UnixListener,
    owner: u32,
}

impl axum::serve::Listener for PeerChecked {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => match stream.peer_cred() {
                    Ok(c) if c.uid() == self.owner || c.uid() == 0 => return (stream, addr),
                    Ok(c) => warn!(uid = c.uid(), "control socket: refused another user"),
                    Err(e) => warn!("control socket: no peer credentials: {e}"),
                },
                Err(e) => {
                    // Out of descriptors and the like: back off, don't spin.
                    warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// What the control socket uses of the process, and nothing else (built
/// by [`crate::app::App::control`]).
#[derive(Clone)]
pub struct Deps {
    /// The registry service (and the store, config and clock it uses).
    pub writer: Writer,
    /// Cancelled when `serve` stops; a failed listener cancels it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The control API.
pub fn router(deps: impl Into<Deps>) -> Router {
    let deps: Deps = deps.into();
    Router::new()
        .route("/domains/{name}", get(show_h))
        .route("/domains/{name}/{op}", post(op_h))
        .route("/resellers/{handle}/move", post(move_h))
        .route("/registrars/{handle}/webhook", post(webhook_h))
        .route("/transfers", get(transfers_h))
        .with_state(deps.clone())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // A backup of a large store takes longer than any other request.
        .merge(
            Router::new()
                .route("/backup", post(backup_h))
                .with_state(deps),
        )
}

/// The store's backup file, streamed; the unlinked file goes with the
/// stream.
async fn backup_h(State(deps): State<Deps>) -> Result<Response, OpError> {
    let store = deps.writer.store.clone();
    let file = tokio::task::spawn_blocking(move || store.backup_file())
        .await
        .map_err(|e| OpError::Internal(format!("backup task failed: {e}")))??;
    let len = file.metadata().map(|m| m.len()).ok();
    info!(bytes = len, "store backup via the control socket");
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

/// Serve the control API until `shutdown`; the socket file is removed
/// when this returns.
pub async fn serve(deps: impl Into<Deps>, sock: ControlSocket) -> std::io::Result<()> {
    let deps: Deps = deps.into();
    let ControlSocket {
        listener,
        file,
        owner,
    } = sock;
    let token = deps.shutdown.clone();
    let res = axum::serve(PeerChecked { listener, owner }, router(deps))
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await;
    drop(file);
    res
}

async fn blocking<F>(f: F) -> Result<String, OpError>
where
    F: FnOnce() -> Result<String, OpError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OpError::Internal(format!("control task failed: {e}")))?
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

async fn show_h(
    State(deps): State<Deps>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, OpError> {
    let name = normalise(&deps.writer.zones, &name)?;
    let a = deps.writer.clone();
    let body = blocking(move || show(a.store.as_ref(), &a.config, &name, a.now())).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The optional JSON body of an operator request.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OpBody {
    pub reason: Option<String>,
    pub claimant: Option<String>,
    /// `unlock`: the dispute's outcome.
    pub outcome: Option<String>,
    pub at_end: Option<bool>,
    pub to: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
}

fn parse_body(body: &axum::body::Bytes) -> Result<OpBody, OpError> {
    if body.is_empty() {
        return Ok(OpBody::default());
    }
    serde_json::from_slice(body).map_err(|e| OpError::BadRequest(format!("bad body: {e}")))
}

fn need(v: Option<String>, what: &str) -> Result<String, OpError> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| OpError::BadRequest(format!("give {what}")))
}

impl Request {
    /// The request named `op` in the socket path, with its body.
    fn parse(op: &str, b: OpBody) -> Result<Request, OpError> {
        Ok(match op {
            "retest" => Request::Retest,
            "hold" => Request::Hold {
                reason: need(b.reason, "a reason")?,
            },
            "release" => Request::Release,
            "lock" => Request::Lock {
                reason: need(b.reason, "a reason")?,
            },
            "unlock" => Request::Unlock {
                outcome: need(b.outcome, "the dispute's outcome")?,
            },
            "court-cancel" => Request::CourtCancel {
                claimant: need(b.claimant, "the claimant's contact handle")?,
            },
            "verify" => Request::Verify,
            "verified" => Request::Verified,
            "renew" => Request::Renew,
            "close" => Request::Close {
                at_end: b.at_end.unwrap_or(false),
            },
            "transfer-approve" => Request::TransferApprove,
            "transfer-reject" => Request::TransferReject,
            other => return Err(OpError::NotFound(format!("no operator request '{other}'"))),
        })
    }

    /// Method, path and body of this request on the socket.
    fn wire(&self, name: &str) -> (&'static str, String, Option<serde_json::Value>) {
        use serde_json::json;
        let p = |op: &str| format!("/domains/{name}/{op}");
        match self {
            Request::Show => ("GET", format!("/domains/{name}"), None),
            Request::Retest => ("POST", p("retest"), None),
            Request::Hold { reason } => ("POST", p("hold"), Some(json!({ "reason": reason }))),
            Request::Release => ("POST", p("release"), None),
            Request::Lock { reason } => ("POST", p("lock"), Some(json!({ "reason": reason }))),
            Request::Unlock { outcome } => {
                ("POST", p("unlock"), Some(json!({ "outcome": outcome })))
            }
            Request::CourtCancel { claimant } => (
                "POST",
                p("court-cancel"),
                Some(json!({ "claimant": claimant })),
            ),
            Request::Verify => ("POST", p("verify"), None),
            Request::Verified => ("POST", p("verified"), None),
            Request::Renew => ("POST", p("renew"), None),
            Request::Close { at_end } => ("POST", p("close"), Some(json!({ "at_end": at_end }))),
            Request::TransferApprove => ("POST", p("transfer-approve"), None),
            Request::TransferReject => ("POST", p("transfer-reject"), None),
            Request::MoveReseller { to } => (
                "POST",
                format!("/resellers/{name}/move"),
                Some(json!({ "to": to })),
            ),
            Request::Webhook { url, secret } => (
                "POST",
                format!("/registrars/{name}/webhook"),
                Some(json!({ "url": url, "secret": secret })),
            ),
            Request::Transfers => ("GET", "/transfers".into(), None),
        }
    }
}

async fn run_op(deps: Deps, name: String, req: Request) -> Result<Response, OpError> {
    let a = deps.writer.clone();
    let n = name.clone();
    let body = blocking(move || {
        let reg = a.registry();
        execute(&reg, &a.config, &n, &req, a.now())
    })
    .await?;
    info!(target = %name, "operator request via the control socket");
    Ok(text(body))
}

async fn op_h(
    State(deps): State<Deps>,
    UrlPath((name, op)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, OpError> {
    let name = normalise(&deps.writer.zones, &name)?;
    let req = Request::parse(&op, parse_body(&body)?)?;
    run_op(deps, name, req).await
}

async fn move_h(
    State(deps): State<Deps>,
    UrlPath(handle): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, OpError> {
    let b = parse_body(&body)?;
    let req = Request::MoveReseller {
        to: need(b.to, "the registrar to move to")?,
    };
    run_op(deps, handle, req).await
}

async fn webhook_h(
    State(deps): State<Deps>,
    UrlPath(handle): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, OpError> {
    let b = parse_body(&body)?;
    run_op(
        deps,
        handle,
        Request::Webhook {
            url: b.url,
            secret: b.secret,
        },
    )
    .await
}

async fn transfers_h(State(deps): State<Deps>) -> Result<Response, OpError> {
    run_op(deps, String::new(), Request::Transfers).await
}

/// Log and stop `serve` if the control listener fails.
pub async fn run(deps: impl Into<Deps>, sock: ControlSocket) {
    let deps: Deps = deps.into();
    let shutdown = deps.shutdown.clone();
    if let Err(e) = serve(deps, sock).await {
        error!("control socket stopped: {e}");
        shutdown.cancel();
    }
}

// ---- client -----------------------------------------------------------

/// A control request as the CLI sends it.
#[derive(Debug, Clone)]
pub enum Request {
    Show,
    Retest,
    Hold {
        reason: String,
    },
    Release,
    /// Dispute lock.
    Lock {
        reason: String,
    },
    /// Lift a dispute lock, recording the court's outcome.
    Unlock {
        outcome: String,
    },
    CourtCancel {
        claimant: String,
    },
    /// Ask the registrant to verify its data.
    Verify,
    /// The registrant answered.
    Verified,
    Renew,
    Close {
        at_end: bool,
    },
    TransferApprove,
    TransferReject,
    /// Move a reseller's domains (`name` is the reseller handle).
    MoveReseller {
        to: String,
    },
    /// List pending registrar changes.
    Transfers,
    /// Set (both given) or remove (neither) a registrar's webhook (`name`
    /// is the registrar handle).
    Webhook {
        url: Option<String>,
        secret: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens there (no socket file, stale socket, no permission).
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The answer: HTTP status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Send one request for the (normalised) domain `name` over the socket at
/// `sock` and wait for the answer.
pub fn call(sock: &Path, name: &str, req: Request) -> Result<Reply, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    rt.block_on(async {
        tokio::time::timeout(REQUEST_TIMEOUT, call_async(sock, name, req))
            .await
            .map_err(|_| ClientError::Timeout(REQUEST_TIMEOUT))?
    })
}

/// Ask the `serve` listening on `sock` for a backup of its store and write
/// it to `out`; returns the bytes written. No overall time limit: a large
/// store takes as long as it takes.
pub fn backup(sock: &Path, out: &mut std::fs::File) -> Result<u64, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    rt.block_on(backup_async(sock, out))
}

/// An HTTP/1 connection to serve's control socket: the request sender and
/// the task driving the connection (the commands and the backup stream).
async fn connect<B>(
    sock: &Path,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<B>,
        tokio::task::JoinHandle<hyper::Result<()>>,
    ),
    ClientError,
>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::UnixStream::connect(sock)
        .await
        .map_err(ClientError::Connect)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((sender, tokio::spawn(conn)))
}

async fn backup_async(sock: &Path, out: &mut std::fs::File) -> Result<u64, ClientError> {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Empty};
    use std::io::Write;

    let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
    let (mut sender, conn) = connect(sock).await?;
    let request = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri("/backup")
        .header(header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .map_err(|e| proto(&e))?;
    let resp = sender.send_request(request).await.map_err(|e| proto(&e))?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = body.collect().await.map_err(|e| proto(&e))?.to_bytes();
        let msg = String::from_utf8_lossy(&bytes);
        return Err(ClientError::Protocol(format!(
            "serve answered {status}: {}",
            msg.lines().next().unwrap_or_default().trim()
        )));
    }
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| proto(&e))?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data)
                .map_err(|e| ClientError::Protocol(format!("writing the copy: {e}")))?;
            n += data.len() as u64;
        }
    }
    drop(sender);
    let _ = conn.await;
    Ok(n)
}

async fn call_async(sock: &Path, name: &str, req: Request) -> Result<Reply, ClientError> {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::Method;

    let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
    let (method, path, body) = req.wire(name);
    let method = if method == "GET" {
        Method::GET
    } else {
        Method::POST
    };
    let body = body.map(|b| b.to_string());
    let (mut sender, conn) = connect(sock).await?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost");
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| proto(&e))?;
    let resp = sender.send_request(request).await.map_err(|e| proto(&e))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| proto(&e))?
        .to_bytes();
    drop(sender);
    let _ = conn.await;
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

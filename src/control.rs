//! The local control socket: the operator commands (`domain show`,
//! `retest`, `hold`, `release`) while `serve` owns the store.
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
//! - `POST /domains/{name}/retest`, `POST /domains/{name}/hold` (body
//!   `{"reason": "…"}`), `POST /domains/{name}/release`: the line the CLI
//!   prints;
//! - errors: 400 bad name or body, 404 unknown domain, 409 refused (e.g.
//!   nothing to retest), 500 store failure, each with a one-line text body.
//!
//! The operations themselves ([`show`], [`retest`], [`hold`], [`release`])
//! are shared by both paths, so the output is the same either way.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tracing::{error, info, warn};

use crate::app::App;
use crate::config::Config;
use crate::model::{Hold, Timestamp};
use crate::names::Zones;
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
}

impl OpError {
    pub fn status(&self) -> StatusCode {
        match self {
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Refused(_) => StatusCode::CONFLICT,
            OpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

/// Restart testing; the line to print.
pub fn retest(
    store: &dyn Store,
    cfg: &Config,
    name: &str,
    now: Timestamp,
) -> Result<String, OpError> {
    let window = Config::chrono(cfg.delegation.test_window);
    let rec = store.retest(name, now, window)?;
    Ok(format!(
        "{name}: testing until {}\n",
        rec.window_end.map(|t| t.to_rfc3339()).unwrap_or_default()
    ))
}

pub fn hold(
    store: &dyn Store,
    name: &str,
    reason: String,
    now: Timestamp,
) -> Result<String, OpError> {
    store.set_hold(name, Some(Hold { since: now, reason }), now)?;
    Ok(format!("{name}: on hold\n"))
}

pub fn release(store: &dyn Store, name: &str, now: Timestamp) -> Result<String, OpError> {
    store.set_hold(name, None, now)?;
    Ok(format!("{name}: released\n"))
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

/// The control API.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/domains/{name}", get(show_h))
        .route("/domains/{name}/retest", post(retest_h))
        .route("/domains/{name}/hold", post(hold_h))
        .route("/domains/{name}/release", post(release_h))
        .with_state(app)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
}

/// Serve the control API until `app.shutdown`; the socket file is removed
/// when this returns.
pub async fn serve(app: App, sock: ControlSocket) -> std::io::Result<()> {
    let ControlSocket {
        listener,
        file,
        owner,
    } = sock;
    let token = app.shutdown.clone();
    let res = axum::serve(PeerChecked { listener, owner }, router(app))
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

/// After a write: the scheduler looks at the domain now, and the zone file
/// follows at once (a hold takes a delegated domain out of the zone).
fn changed(app: &App, name: &str) {
    app.domain_changed(name);
    app.zone_dirty.notify_one();
}

async fn show_h(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, OpError> {
    let name = normalise(&app.zones, &name)?;
    let a = app.clone();
    let body = blocking(move || show(a.store.as_ref(), &a.config, &name, a.now())).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn retest_h(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, OpError> {
    let name = normalise(&app.zones, &name)?;
    let (a, n) = (app.clone(), name.clone());
    let body = blocking(move || retest(a.store.as_ref(), &a.config, &n, a.now())).await?;
    info!(domain = %name, "retest requested via the control socket");
    changed(&app, &name);
    Ok(text(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    pub reason: String,
}

async fn hold_h(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<HoldBody>, JsonRejection>,
) -> Result<Response, OpError> {
    let name = normalise(&app.zones, &name)?;
    let Json(HoldBody { reason }) = body.map_err(|e| OpError::BadRequest(e.body_text()))?;
    let (a, n) = (app.clone(), name.clone());
    let body = blocking(move || hold(a.store.as_ref(), &n, reason, a.now())).await?;
    info!(domain = %name, "hold set via the control socket");
    changed(&app, &name);
    Ok(text(body))
}

async fn release_h(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, OpError> {
    let name = normalise(&app.zones, &name)?;
    let (a, n) = (app.clone(), name.clone());
    let body = blocking(move || release(a.store.as_ref(), &n, a.now())).await?;
    info!(domain = %name, "hold released via the control socket");
    changed(&app, &name);
    Ok(text(body))
}

/// Log and stop `serve` if the control listener fails.
pub async fn run(app: App, sock: ControlSocket) {
    if let Err(e) = serve(app.clone(), sock).await {
        error!("control socket stopped: {e}");
        app.shutdown.cancel();
    }
}

// ---- client -----------------------------------------------------------

/// A control request as the CLI sends it.
pub enum Request {
    Show,
    Retest,
    Hold { reason: String },
    Release,
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

async fn call_async(sock: &Path, name: &str, req: Request) -> Result<Reply, ClientError> {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::Method;

    let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
    let (method, path, body) = match req {
        Request::Show => (Method::GET, format!("/domains/{name}"), None),
        Request::Retest => (Method::POST, format!("/domains/{name}/retest"), None),
        Request::Hold { reason } => (
            Method::POST,
            format!("/domains/{name}/hold"),
            Some(serde_json::json!({ "reason": reason }).to_string()),
        ),
        Request::Release => (Method::POST, format!("/domains/{name}/release"), None),
    };
    let stream = tokio::net::UnixStream::connect(sock)
        .await
        .map_err(ClientError::Connect)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| proto(&e))?;
    let conn = tokio::spawn(conn);
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

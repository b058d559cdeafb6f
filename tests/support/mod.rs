//! Support code shared by the integration tests (`tests/it/`) and the
//! check benchmarks.

pub mod api;
pub mod bin;
pub mod check;
pub mod dns;
pub mod epp;
pub mod hoster;
pub mod net;
pub mod nsd;
pub mod pg;
pub mod rdap;
pub mod sched;
pub mod signer;

/// `name` when it runs (`name --version` succeeds), else None with a
/// notice; under `CI=true` a missing tool is a failure, never a skip.
/// `package` names the Debian package that brings it.
pub fn tool(name: &'static str, package: &str) -> Option<&'static str> {
    let ok = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing (Debian package {package})"
        );
        eprintln!("skipped: {name} is missing");
        return None;
    }
    Some(name)
}

/// The value of one metric line (`name{labels}`) in the process-wide
/// recorder's output; 0 when absent. Tests share the recorder, so they
/// compare values before and after their own work.
pub fn metric(series: &str) -> f64 {
    let text = zonekeeper::metrics::install().render();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Serve `app` over HTTP on `listener` with the real server
/// (`zonekeeper::http::serve`: connection limits and timeouts included)
/// until `app.shutdown()`. The one HTTP test server of the API, RDAP and
/// dashboard tests.
pub fn serve_http(app: &zonekeeper::app::App, listener: tokio::net::TcpListener) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = zonekeeper::http::serve(app, listener).await {
            panic!("test HTTP server failed: {e}");
        }
    });
}

/// Poll `probe` every 10 ms until it gives `Some`, and return that; panics
/// naming `what` after `within`. For waits on an event the test cannot be
/// told of directly (a connection accepted, a slot taken), instead of a
/// guessed sleep.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

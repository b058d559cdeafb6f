//! Port-43 WHOIS server (stub: filled by the WHOIS work).
use tokio::net::TcpListener;

use crate::app::App;

pub async fn serve(app: App, _listener: TcpListener) -> std::io::Result<()> {
    app.shutdown.cancelled().await;
    Ok(())
}

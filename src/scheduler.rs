//! Delegation scheduler (stub: filled by the scheduler work).
use crate::app::App;

pub async fn run(app: App) {
    app.shutdown.cancelled().await;
}

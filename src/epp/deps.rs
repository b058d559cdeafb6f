//! What the EPP server uses of the process, and nothing else (built by
//! [`crate::app::App::epp`]; docs/architecture.md, "Edge handles").

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::writer::Writer;
use crate::config::Config;
use crate::model::Timestamp;
use crate::registry::Registry;
use crate::sessions::Sessions;
use crate::store::Store;

#[derive(Clone)]
pub struct Deps {
    /// The registry service (and the config, store and clock it uses):
    /// `epp.*` limits, `lifecycle.*` statuses, reads for `<info>`/`<check>`.
    pub writer: Writer,
    /// EPP sessions logged in now, per registrar (the dashboard shows them).
    pub sessions: Arc<Sessions>,
    /// When the process started: the prefix of server transaction IDs.
    pub started: Timestamp,
    /// Cancelled when `serve` stops.
    pub shutdown: CancellationToken,
}

impl Deps {
    pub fn config(&self) -> &Config {
        &self.writer.config
    }

    pub fn store(&self) -> &dyn Store {
        self.writer.store.as_ref()
    }

    pub fn now(&self) -> Timestamp {
        self.writer.now()
    }

    /// The registry service, for one command.
    pub fn registry(&self) -> Registry<'_> {
        self.writer.registry()
    }
}

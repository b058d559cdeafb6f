//! Who asks the registry for a change.

/// Who asks for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A registrar (API token, later EPP login), by handle.
    Registrar(String),
    /// A registry operator (control socket / CLI).
    Operator,
    /// A bulk import file.
    Import,
}

impl Actor {
    /// The name recorded in the change feed.
    pub fn label(&self) -> String {
        match self {
            Actor::Registrar(h) => format!("registrar:{h}"),
            Actor::Operator => "operator".into(),
            Actor::Import => "import".into(),
        }
    }
    pub(super) fn is_registrar(&self, h: &str) -> bool {
        matches!(self, Actor::Registrar(x) if x == h)
    }
}

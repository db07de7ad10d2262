//! The `store:` URL of routes.yaml: an SQLite file or a PostgreSQL server.

use crate::secret::Secret;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where payments, events and nonces are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    /// A `postgres://` URL (its password is a secret: never shown).
    Postgres(Secret),
}

/// Shown as the URL routes.yaml would write, a PostgreSQL password hidden.
impl Serialize for StoreUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StoreUrl::Sqlite(path) => s.serialize_str(&format!("sqlite://{}", path.display())),
            StoreUrl::Postgres(url) => s.serialize_str(&crate::secret::redact_url_passwords(url.expose())),
        }
    }
}

/// Reads a `store:` value (secrets already resolved); relative SQLite paths are taken from
/// `base_dir`.
pub fn parse_store(text: &str, base_dir: &Path) -> Result<StoreUrl, String> {
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("store: sqlite:// needs a file path".into());
        }
        let path = Path::new(path);
        let path = if path.is_relative() { base_dir.join(path) } else { path.to_path_buf() };
        Ok(StoreUrl::Sqlite(path))
    } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        if let Err(e) = crate::store::postgres::check_url(text) {
            return Err(format!("store: not a valid PostgreSQL URL: {e}"));
        }
        Ok(StoreUrl::Postgres(Secret::new(text)))
    } else {
        Err(format!("store: {text:?} is neither sqlite://FILE nor postgres://..."))
    }
}

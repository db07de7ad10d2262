//! One provider account as routes.yaml sets it up (validated by `config`): the settings every
//! dialect builds itself from, and the upstream client calls with.

use crate::secret::Secret;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub dialect: String,
    pub base_url: String,
    pub credentials: BTreeMap<String, Secret>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// At most this many calls in flight to the account at once.
    pub max_connections: usize,
    /// How long the provider keeps an unpaid order payable (when ops know it); after it,
    /// payglot may close an expired payment locally even where the provider offers no close.
    pub order_lifetime_secs: Option<u64>,
    /// The circuit opens after this many consecutive failures...
    pub circuit_failures: u32,
    /// ...and sheds calls for this long before one probe.
    pub circuit_open_ms: u64,
    /// xxpay's `channel/scene` → productId table.
    pub products: BTreeMap<String, u32>,
    /// Dialect settings (AES mode, key encoding, paths...), documented in each dialect.
    pub options: BTreeMap<String, String>,
    /// Takes no new payments, keeps serving existing ones.
    pub retired: bool,
    /// Plain `http://` to a host that is not loopback, allowed explicitly (and logged).
    pub insecure_http: bool,
    /// Queries prompted by unverified messages: at most this many per window (seconds).
    pub unverified_queries: (u32, u64),
}

/// Shown to ops (`/admin/config`): the credentials that only name an account (the dialect's
/// `public_credentials`: mch_id, mid, appid, uid, open_id...) in clear, every other one
/// redacted, a password in the base URL hidden, the query limit as words.
impl Serialize for ProviderConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let public = super::spec(&self.dialect).map(|d| d.public_credentials).unwrap_or(&[]);
        let credentials: BTreeMap<&str, String> = self
            .credentials
            .iter()
            .map(|(k, v)| {
                (k.as_str(), if public.contains(&k.as_str()) { v.expose().to_string() } else { v.redacted() })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "dialect": self.dialect,
            "base_url": crate::secret::redact_url_passwords(&self.base_url),
            "credentials": credentials,
            "timeout_ms": self.timeout_ms,
            "connect_timeout_ms": self.connect_timeout_ms,
            "max_connections": self.max_connections,
            "order_lifetime_secs": self.order_lifetime_secs,
            "circuit_failures": self.circuit_failures,
            "circuit_open_ms": self.circuit_open_ms,
            "products": self.products,
            "options": self.options,
            "retired": self.retired,
            "insecure_http": self.insecure_http,
            "unverified_queries": {"max": self.unverified_queries.0, "window_secs": self.unverified_queries.1},
        })
        .serialize(s)
    }
}

impl ProviderConfig {
    /// A provider entry with defaults and no credentials: for dialect unit tests, and for the
    /// front doors, whose account is only checked and signed with, never called.
    pub fn with_defaults(name: &str, dialect: &str) -> Self {
        ProviderConfig {
            name: name.into(),
            dialect: dialect.into(),
            base_url: "http://127.0.0.1:1".into(),
            credentials: BTreeMap::new(),
            timeout_ms: 5000,
            connect_timeout_ms: 1000,
            max_connections: 64,
            order_lifetime_secs: None,
            circuit_failures: 5,
            circuit_open_ms: 30_000,
            products: BTreeMap::new(),
            options: BTreeMap::new(),
            retired: false,
            insecure_http: false,
            unverified_queries: (30, 60),
        }
    }
}

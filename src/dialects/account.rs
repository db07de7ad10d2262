//! One provider account as routes.yaml sets it up (validated by `config`): the settings every
//! dialect builds itself from, and the upstream client calls with.

use crate::secret::Secret;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
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

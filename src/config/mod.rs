//! routes.yaml: the schema, secret resolution, complete validation with field paths, and the
//! live config that hot reload swaps (see `reload`).
//!
//! Parsing happens in two steps: serde reads the raw shape (unknown keys are errors), then
//! `validate` checks every cross-reference and collects *all* problems, each prefixed with
//! its field path (`merchants.school-a.routes[1].to: unknown provider "zhixao-main"`).

pub mod reload;
pub mod secrets;

pub use crate::dialects::account::ProviderConfig;
pub use crate::http::ServerConfig;
pub use crate::secret::Secret;
pub use crate::store::url::StoreUrl;

use crate::dialects::{self, Dialect};
use crate::model::{Channel, Scene};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file as serde reads it. No `Debug`: it holds keys in plain text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    #[serde(default)]
    admin_listen: Option<String>,
    #[serde(default)]
    admin_token: Option<String>,
    public_url: String,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    sandbox: Option<RawSandbox>,
    #[serde(default)]
    delivery: Option<RawDelivery>,
    #[serde(default)]
    requery: Option<RawRequery>,
    #[serde(default)]
    server: Option<RawServer>,
    providers: BTreeMap<String, RawProvider>,
    merchants: BTreeMap<String, RawMerchant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    listen: String,
    #[serde(default)]
    notify_retry_secs: Option<Vec<u64>>,
    #[serde(default)]
    adjustable_clock: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    #[serde(default)]
    retry_schedule_secs: Option<Vec<u64>>,
    #[serde(default)]
    give_up_after_secs: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    poll_ms: Option<u64>,
    #[serde(default)]
    lease_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequery {
    #[serde(default)]
    unknown_order_fail_secs: Option<u64>,
    #[serde(default)]
    schedule_secs: Option<Vec<u64>>,
    #[serde(default)]
    default_expire_secs: Option<u64>,
    #[serde(default)]
    poll_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    header_read_timeout_ms: Option<u64>,
    #[serde(default)]
    idle_timeout_ms: Option<u64>,
    #[serde(default)]
    body_read_timeout_ms: Option<u64>,
    #[serde(default)]
    max_connections: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    dialect: String,
    base_url: String,
    #[serde(default)]
    credentials: BTreeMap<String, String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    order_lifetime_secs: Option<u64>,
    #[serde(default)]
    circuit: Option<RawCircuit>,
    #[serde(default)]
    products: BTreeMap<String, u32>,
    #[serde(default)]
    options: BTreeMap<String, Scalar>,
    #[serde(default)]
    retired: bool,
    #[serde(default)]
    insecure_http: bool,
    #[serde(default)]
    unverified_queries: Option<RawUnverified>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnverified {
    #[serde(default)]
    max: Option<u32>,
    #[serde(default)]
    window_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCircuit {
    #[serde(default)]
    failures: Option<u32>,
    #[serde(default)]
    open_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMerchant {
    key: String,
    /// The key that takes over during a rotation: requests signed with either are accepted.
    #[serde(default)]
    next_key: Option<String>,
    /// Standard Webhooks secrets (`whsec_` + base64): the current one, and the next during a
    /// rotation (both signatures are sent).
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    next_webhook_secret: Option<String>,
    #[serde(default)]
    notify_url: Option<String>,
    #[serde(default)]
    allow_private_notify: bool,
    routes: Vec<RawRoute>,
    /// Provider-compatible front doors, by dialect: the credentials the school's existing
    /// integration signs with, plus optional `channel`, `scene` and `options`.
    #[serde(default)]
    compat: BTreeMap<String, BTreeMap<String, DoorEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default, rename = "match")]
    matches: Option<RawMatch>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    split: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    fallback: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    channel: Option<OneOrMany>,
    #[serde(default)]
    scene: Option<OneOrMany>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    min_amount: Option<i64>,
    #[serde(default)]
    max_amount: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A validated routes.yaml.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// When set, admin endpoints other than /healthz and /readyz need `Authorization: Bearer`.
    pub admin_token: Option<Secret>,
    /// Base URL providers call back to, without a trailing slash.
    pub public_url: String,
    pub store: StoreUrl,
    pub sandbox: Option<SandboxConfig>,
    pub delivery: DeliveryConfig,
    pub requery: RequeryConfig,
    pub server: ServerConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub merchants: BTreeMap<String, MerchantConfig>,
}

/// Simulated providers started inside `payglot serve` (see `src/sandbox/`).
#[derive(Debug, Clone, Serialize)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub notify_retry_secs: Vec<u64>,
    /// Whether the admin may move the gateway's clock forward (`POST /admin/clock`), for tests
    /// and demos that advance time instead of waiting. Only a sandbox gateway has it.
    pub adjustable_clock: bool,
}

/// How merchant notifications are retried.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryConfig {
    /// Delay before each retry; the last one repeats until `give_up_after_secs`.
    pub retry_schedule_secs: Vec<u64>,
    pub give_up_after_secs: u64,
    pub timeout_ms: u64,
    /// How often the worker looks for due events when nothing wakes it.
    pub poll_ms: u64,
    /// How long an instance holds the events it claimed before another may take them.
    pub lease_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            // Exponential: doubling from 10 s to 2 h (each jittered down by up to half).
            retry_schedule_secs: vec![10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 7200],
            give_up_after_secs: 3 * 24 * 3600,
            timeout_ms: 15_000,
            poll_ms: 1000,
            lease_secs: 60,
        }
    }
}

/// How payglot asks providers about payments whose callback has not come.
#[derive(Debug, Clone, Serialize)]
pub struct RequeryConfig {
    /// Delays between checks of a pending payment; the last one repeats until it expires.
    pub schedule_secs: Vec<u64>,
    /// When a payment without `expire_seconds` (and an account without a lifetime) expires.
    pub default_expire_secs: u64,
    pub poll_ms: u64,
    /// A payment the provider never confirmed and still does not know this long after its
    /// creation is failed.
    pub unknown_order_fail_secs: u64,
}

impl Default for RequeryConfig {
    fn default() -> Self {
        RequeryConfig {
            schedule_secs: vec![60, 120, 300, 600, 1800, 3600],
            default_expire_secs: 7200,
            poll_ms: 1000,
            unknown_order_fail_secs: 600,
        }
    }
}

/// One provider account.
/// One merchant (school or business) calling the merchant API.
#[derive(Debug, Clone, Serialize)]
pub struct MerchantConfig {
    pub id: String,
    pub key: Secret,
    /// A second API key accepted during a key rotation.
    pub next_key: Option<Secret>,
    /// The keys notifications are signed with for Standard Webhooks (`webhook-signature`), as
    /// hex: the decoded `webhook_secret` and `next_webhook_secret`, or else the API key's bytes
    /// (so the receiver's secret is `whsec_` + base64 of the API key).
    pub webhook_keys: Vec<Secret>,
    pub notify_url: Option<String>,
    /// Notify URLs of this merchant may point at loopback, private and link-local addresses
    /// (see `egress`); never at payglot's own listeners.
    pub allow_private_notify: bool,
    pub routes: Vec<Route>,
    /// Front doors (`/compat/{dialect}/...`) by dialect.
    pub compat: BTreeMap<String, DoorConfig>,
}

/// One provider-compatible front door of a merchant.
#[derive(Debug, Clone, Serialize)]
pub struct DoorConfig {
    /// The credentials (and options) the school signs with, held like a provider account of
    /// the dialect so the dialect checks them the same way; its base_url is unused.
    pub account: ProviderConfig,
    /// The account id the school's requests carry (mchId, mid, appid, uid, open_id).
    pub account_id: String,
    /// What a request that does not name its channel or scene means (xiaojitong has neither;
    /// zhixiao and jings name no scene).
    pub channel: Option<Channel>,
    pub scene: Option<Scene>,
}

/// The key bytes of a Standard Webhooks secret (`whsec_` + base64 of 24 to 64 random bytes),
/// held as a Secret of their lowercase hex.
fn webhook_key(secret: &str) -> Result<Secret, String> {
    use base64::Engine;
    let encoded =
        secret.strip_prefix("whsec_").ok_or("must start with whsec_ (make one with `payglot webhook-secret`)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "is not whsec_ followed by base64".to_string())?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!("holds {} bytes; Standard Webhooks secrets hold 24 to 64", bytes.len()));
    }
    Ok(Secret::new(hex::encode(bytes)))
}

/// The dialects whose accounts take a `products:` table, for messages.
fn product_dialects() -> String {
    dialects::REGISTRY.iter().filter(|d| d.products).map(|d| d.name).collect::<Vec<_>>().join(", ")
}

impl DoorConfig {
    /// The account the school signs with, and what its requests imply, as the dialect's
    /// provider side takes it.
    pub fn keyed(&self) -> crate::dialects::provider_side::Keyed {
        crate::dialects::provider_side::Keyed {
            account: self.account.clone(),
            channel: self.channel,
            scene: self.scene,
        }
    }
}

/// One routing rule: when `matches` holds, the payment goes to `target`.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub matches: RouteMatch,
    pub target: RouteTarget,
    pub fallback: Vec<String>,
}

/// Conditions of a rule; an empty condition matches everything.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteMatch {
    pub channels: Vec<Channel>,
    pub scenes: Vec<Scene>,
    pub currency: Option<String>,
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
}

impl RouteMatch {
    pub fn is_catch_all(&self) -> bool {
        self.channels.is_empty()
            && self.scenes.is_empty()
            && self.currency.is_none()
            && self.min_amount.is_none()
            && self.max_amount.is_none()
    }
}

/// One account, or a weighted split between accounts (weights add up to 100).
#[derive(Debug, Clone)]
pub enum RouteTarget {
    One(String),
    Split(Vec<(String, u32)>),
}

/// Shown as routes.yaml means it: `{"account": "a"}` or `{"split": [{"account": "a", "weight": 70}, ...]}`.
impl Serialize for RouteTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            RouteTarget::One(account) => map.serialize_entry("account", account)?,
            RouteTarget::Split(parts) => {
                let parts: Vec<_> = parts
                    .iter()
                    .map(|(account, weight)| serde_json::json!({"account": account, "weight": weight}))
                    .collect();
                map.serialize_entry("split", &parts)?
            }
        }
        map.end()
    }
}

impl RouteTarget {
    pub fn accounts(&self) -> Vec<&str> {
        match self {
            RouteTarget::One(a) => vec![a.as_str()],
            RouteTarget::Split(parts) => parts.iter().map(|(a, _)| a.as_str()).collect(),
        }
    }
}

fn check_http_url(path: &str, url: &str, errors: &mut Vec<String>) {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        errors.push(format!("{path}: {url:?} is not an http:// or https:// URL"));
    }
}

/// Whether an http(s) URL names a loopback host (127.0.0.0/8, ::1 or localhost).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_addr(path: &str, text: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match text.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!("{path}: {text:?} is not an address like 127.0.0.1:8080"));
            None
        }
    }
}

/// Reads, resolves and validates a routes.yaml text. Relative store paths are taken from
/// `base_dir` (the file's folder). Returns every problem found, each with its field path.
/// Parses and validates routes.yaml. No error message holds a secret: every value taken
/// from `${ENV}` or a `file:` is replaced by `<redacted>` in them, and so is the password of
/// any URL.
pub fn parse(text: &str, base_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
    let resolver = secrets::Resolver::new(env);
    parse_with(text, base_dir, &resolver).map_err(|errors| errors.into_iter().map(|e| resolver.scrub(&e)).collect())
}

fn parse_with(text: &str, base_dir: &Path, resolver: &secrets::Resolver<'_>) -> Result<Config, Vec<String>> {
    let raw = read_yaml(text)?;
    let mut errors = Vec::new();

    let listen = parse_addr("listen", &raw.listen, &mut errors);
    // The admin listener is on loopback by default: ops endpoints are never public by accident.
    let admin_listen = parse_addr("admin_listen", raw.admin_listen.as_deref().unwrap_or("127.0.0.1:9901"), &mut errors);
    let admin_token = match raw.admin_token.as_deref().map(|t| resolver.resolve(t)) {
        None => None,
        Some(Ok(t)) if t.expose().len() >= 16 => Some(t),
        Some(Ok(_)) => {
            errors.push("admin_token: must be at least 16 characters".into());
            None
        }
        Some(Err(e)) => {
            errors.push(format!("admin_token: {e}"));
            None
        }
    };
    if let (Some(addr), None) = (admin_listen, &admin_token) {
        if !addr.ip().is_loopback() {
            errors.push(format!(
                "admin_listen: {addr} is not a loopback address; set admin_token (at least 16 characters) before exposing the admin endpoints"
            ));
        }
    }
    // `${NAME}` allowed: a container takes its public URL from the environment.
    let public_url = match resolver.resolve_plain(&raw.public_url) {
        Ok(url) => url.trim_end_matches('/').to_string(),
        Err(e) => {
            errors.push(format!("public_url: {e}"));
            String::new()
        }
    };
    if !public_url.is_empty() {
        check_http_url("public_url", &public_url, &mut errors);
    }
    let store_text = match resolver.resolve(raw.store.as_deref().unwrap_or("sqlite://payglot.db")) {
        Ok(s) => s.expose().to_string(),
        Err(e) => {
            errors.push(format!("store: {e}"));
            String::from("sqlite://payglot.db")
        }
    };
    let store = match crate::store::url::parse_store(&store_text, base_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(e);
            None
        }
    };

    let sandbox = raw.sandbox.as_ref().and_then(|s| {
        let listen = parse_addr("sandbox.listen", &s.listen, &mut errors)?;
        Some(SandboxConfig {
            listen,
            notify_retry_secs: s.notify_retry_secs.clone().unwrap_or_else(|| vec![60, 120, 180, 240, 300]),
            adjustable_clock: s.adjustable_clock,
        })
    });

    let mut delivery = DeliveryConfig::default();
    if let Some(d) = &raw.delivery {
        if let Some(s) = &d.retry_schedule_secs {
            if s.is_empty() {
                errors.push("delivery.retry_schedule_secs: needs at least one delay".into());
            }
            delivery.retry_schedule_secs = s.clone();
        }
        delivery.give_up_after_secs = d.give_up_after_secs.unwrap_or(delivery.give_up_after_secs);
        delivery.timeout_ms = d.timeout_ms.unwrap_or(delivery.timeout_ms);
        delivery.poll_ms = d.poll_ms.unwrap_or(delivery.poll_ms).max(10);
        delivery.lease_secs = d.lease_secs.unwrap_or(delivery.lease_secs);
        if delivery.lease_secs * 1000 <= delivery.timeout_ms {
            errors.push(format!(
                "delivery.lease_secs: {} s must be longer than delivery.timeout_ms ({} ms), or two instances could send one event",
                delivery.lease_secs, delivery.timeout_ms
            ));
        }
    }

    let mut requery = RequeryConfig::default();
    if let Some(r) = &raw.requery {
        if let Some(s) = &r.schedule_secs {
            if s.is_empty() || s.contains(&0) {
                errors.push("requery.schedule_secs: needs at least one delay, each more than 0".into());
            }
            requery.schedule_secs = s.clone();
        }
        requery.default_expire_secs = r.default_expire_secs.unwrap_or(requery.default_expire_secs);
        requery.poll_ms = r.poll_ms.unwrap_or(requery.poll_ms).max(10);
        requery.unknown_order_fail_secs = r.unknown_order_fail_secs.unwrap_or(requery.unknown_order_fail_secs);
    }

    let mut server = ServerConfig::default();
    if let Some(s) = &raw.server {
        for (field, value) in [
            ("header_read_timeout_ms", s.header_read_timeout_ms),
            ("idle_timeout_ms", s.idle_timeout_ms),
            ("body_read_timeout_ms", s.body_read_timeout_ms),
        ] {
            if value == Some(0) {
                errors.push(format!("server.{field}: must be more than 0"));
            }
        }
        if s.max_connections.is_some_and(|n| n < 4) {
            errors.push("server.max_connections: must be at least 4".into());
        }
        server.header_read_timeout_ms = s.header_read_timeout_ms.unwrap_or(server.header_read_timeout_ms);
        server.idle_timeout_ms = s.idle_timeout_ms.unwrap_or(server.idle_timeout_ms);
        server.body_read_timeout_ms = s.body_read_timeout_ms.unwrap_or(server.body_read_timeout_ms);
        server.max_connections = s.max_connections.unwrap_or(server.max_connections);
    }

    let mut providers = BTreeMap::new();
    if raw.providers.is_empty() {
        errors.push("providers: at least one provider account is needed".into());
    }
    for (name, p) in &raw.providers {
        let path = format!("providers.{name}");
        if !valid_name(name) {
            errors.push(format!("{path}: name may hold only letters, digits, '-' and '_'"));
        }
        let mut credentials = BTreeMap::new();
        for (k, v) in &p.credentials {
            match resolver.resolve(v) {
                Ok(s) => {
                    credentials.insert(k.clone(), s);
                }
                Err(e) => errors.push(format!("{path}.credentials.{k}: {e}")),
            }
        }
        let base_url = p.base_url.trim_end_matches('/').to_string();
        check_http_url(&format!("{path}.base_url"), &base_url, &mut errors);
        if base_url.starts_with("http://") && !is_loopback_url(&base_url) && !p.insecure_http {
            errors.push(format!(
                "{path}.base_url: plain http:// to a host that is not loopback lets anyone on the path read and change payments (jings' query answers are not even signed); use https://, or set insecure_http: true on this account if the network is trusted"
            ));
        }
        for (field, value) in [("timeout_ms", p.timeout_ms), ("connect_timeout_ms", p.connect_timeout_ms)] {
            if value == Some(0) {
                errors.push(format!("{path}.{field}: must be more than 0"));
            }
        }
        if p.max_connections == Some(0) {
            errors.push(format!("{path}.max_connections: must be more than 0"));
        }
        if let Some(c) = &p.circuit {
            if c.failures == Some(0) {
                errors.push(format!("{path}.circuit.failures: must be more than 0"));
            }
            if c.open_ms == Some(0) {
                errors.push(format!("{path}.circuit.open_ms: must be more than 0"));
            }
        }
        if !p.products.is_empty() && !dialects::spec(&p.dialect).is_some_and(|d| d.products) {
            errors.push(format!("{path}.products: only {} accounts have a product table", product_dialects()));
        }
        for key in p.products.keys() {
            if let Err(e) = check_product_key(key) {
                errors.push(format!("{path}.products.{key}: {e}"));
            }
        }
        let options: BTreeMap<String, String> = p.options.iter().map(|(k, v)| (k.clone(), v.text())).collect();
        let provider = ProviderConfig {
            name: name.clone(),
            dialect: p.dialect.clone(),
            base_url,
            credentials,
            timeout_ms: p.timeout_ms.unwrap_or(5000),
            connect_timeout_ms: p.connect_timeout_ms.unwrap_or(2000),
            max_connections: p.max_connections.unwrap_or(64),
            order_lifetime_secs: p.order_lifetime_secs,
            circuit_failures: p.circuit.as_ref().and_then(|c| c.failures).unwrap_or(5),
            circuit_open_ms: p.circuit.as_ref().and_then(|c| c.open_ms).unwrap_or(30_000),
            products: p.products.clone(),
            options,
            retired: p.retired,
            insecure_http: p.insecure_http,
            unverified_queries: (
                p.unverified_queries.as_ref().and_then(|u| u.max).unwrap_or(30),
                p.unverified_queries.as_ref().and_then(|u| u.window_secs).unwrap_or(60).max(1),
            ),
        };
        if let Err(es) = dialects::build(&provider) {
            errors.extend(es.into_iter().map(|e| format!("{path}.{e}")));
        }
        providers.insert(name.clone(), provider);
    }

    let mut merchants = BTreeMap::new();
    let mut door_owners = HashMap::new();
    if raw.merchants.is_empty() {
        errors.push("merchants: at least one merchant is needed".into());
    }
    for (id, m) in &raw.merchants {
        let path = format!("merchants.{id}");
        if !valid_name(id) || id.len() > 64 {
            errors.push(format!("{path}: id may hold only letters, digits, '-' and '_' (at most 64)"));
        }
        let key = match resolver.resolve(&m.key) {
            Ok(k) if k.expose().chars().count() < 16 => {
                errors.push(format!("{path}.key: must be at least 16 characters"));
                None
            }
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(format!("{path}.key: {e}"));
                None
            }
        };
        let next_key = m.next_key.as_ref().and_then(|raw| match resolver.resolve(raw) {
            Ok(k) if k.expose().chars().count() < 16 => {
                errors.push(format!("{path}.next_key: must be at least 16 characters"));
                None
            }
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(format!("{path}.next_key: {e}"));
                None
            }
        });
        let mut webhook_keys = Vec::new();
        for (field, raw) in [("webhook_secret", &m.webhook_secret), ("next_webhook_secret", &m.next_webhook_secret)] {
            let Some(raw) = raw else { continue };
            match resolver.resolve(raw).map_err(|e| e.to_string()).and_then(|s| webhook_key(s.expose())) {
                Ok(k) => webhook_keys.push(k),
                Err(e) => errors.push(format!("{path}.{field}: {e}")),
            }
        }
        if m.next_webhook_secret.is_some() && m.webhook_secret.is_none() {
            errors.push(format!("{path}.next_webhook_secret: needs a webhook_secret to rotate from"));
        }
        if webhook_keys.is_empty() {
            if let Some(k) = &key {
                webhook_keys.push(Secret::new(hex::encode(k.expose().as_bytes())));
            }
        }
        if let Some(url) = &m.notify_url {
            check_http_url(&format!("{path}.notify_url"), url, &mut errors);
            let own: Vec<SocketAddr> = listen.iter().chain(admin_listen.iter()).copied().collect();
            let rule = crate::egress::NotifyRule { allow_private: m.allow_private_notify, own: &own };
            if let Err(e) = rule.check_url(url) {
                errors.push(format!("{path}.notify_url: {url} {e}"));
            }
        }
        let routes = validate_routes(&path, &m.routes, &providers, &mut errors);
        let compat = validate_doors(&path, &m.compat, resolver, &mut door_owners, &mut errors);
        merchants.insert(
            id.clone(),
            MerchantConfig {
                id: id.clone(),
                key: key.unwrap_or_else(|| Secret::new("")),
                next_key,
                webhook_keys,
                notify_url: m.notify_url.clone(),
                allow_private_notify: m.allow_private_notify,
                routes,
                compat,
            },
        );
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        listen: listen.expect("checked"),
        admin_listen,
        admin_token,
        public_url,
        store: store.expect("checked"),
        sandbox,
        delivery,
        requery,
        server,
        providers,
        merchants,
    })
}

/// Reads routes.yaml's YAML into the raw schema (serde-saphyr: pure Rust, panic-free, with
/// budgets against alias bombs). An error names the field path and the line; no source
/// snippet is shown, since neighbouring lines may hold secrets. When the YAML does not read and
/// a line is indented under a key that already has a value, that line is named first: it is
/// the mistake, though the parser only notices it a line earlier or later.
fn read_yaml(text: &str) -> Result<RawConfig, Vec<String>> {
    let options = serde_saphyr::options! { with_snippet: false, };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if path == "." { inner.to_string() } else { format!("{path}: {inner}") };
            <serde_saphyr::Error as serde::de::Error>::custom(message)
        })
    })
    .map_err(|e| indent_mistake(text).into_iter().chain([e.to_string()]).collect())
}

/// The first line indented deeper than the `key: value` line above it (nothing can nest under a
/// key that has a value): `line N: ...`.
fn indent_mistake(text: &str) -> Option<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut previous: Option<(usize, &str)> = None;
    for (n, line) in text.lines().enumerate() {
        let content = line.split(" #").next().unwrap_or("").trim_end();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if let Some((above, above_line)) = previous {
            let body = above_line.trim_start().trim_start_matches("- ");
            let has_value = body.split_once(": ").is_some_and(|(_, v)| {
                let v = v.trim();
                !v.is_empty() && !matches!(v.chars().next(), Some('|' | '>' | '&' | '!'))
            });
            let is_key = content.trim_start().split_once(':').is_some_and(|(k, _)| !k.contains(' ') && !k.is_empty());
            // A sequence item's keys sit after its "- ".
            let above_keys = indent(above_line) + if above_line.trim_start().starts_with("- ") { 2 } else { 0 };
            if has_value && is_key && indent(content) > above_keys {
                return Some(format!(
                    "line {}: indented deeper than line {} above it, whose key already has a value (align it with that key, or give it a parent key)",
                    n + 1,
                    above + 1
                ));
            }
        }
        previous = Some((n, content));
    }
    None
}

/// A scalar of routes.yaml where the schema takes any (an option's value, a door's
/// credential): a string, a number or a boolean, kept as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// One entry of a merchant's door: its `options:` table, or a scalar (a credential, `channel`,
/// `scene`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DoorEntry {
    Table(BTreeMap<String, Scalar>),
    Scalar(Scalar),
}

/// Validates a merchant's `compat:` doors; `owners` maps (dialect, account id) to the merchant
/// that has it, since a door request names only its account id.
fn validate_doors(
    merchant_path: &str,
    raw: &BTreeMap<String, BTreeMap<String, DoorEntry>>,
    resolver: &secrets::Resolver<'_>,
    owners: &mut HashMap<(String, String), String>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, DoorConfig> {
    let merchant = merchant_path.trim_start_matches("merchants.");
    let mut doors = BTreeMap::new();
    for (dialect, entries) in raw {
        let path = format!("{merchant_path}.compat.{dialect}");
        let Some(id_name) = dialects::account_id_credential(dialect) else {
            errors.push(format!("{path}: unknown dialect (known: {})", dialects::names()));
            continue;
        };
        let mut account = ProviderConfig::with_defaults(&format!("{merchant}/compat/{dialect}"), dialect);
        let (mut channel, mut scene) = (None, None);
        for (k, v) in entries {
            match (k.as_str(), v) {
                ("options", DoorEntry::Table(m)) => {
                    for (name, value) in m {
                        account.options.insert(name.clone(), value.text());
                    }
                }
                ("options", DoorEntry::Scalar(_)) => errors.push(format!("{path}.options: must be a table of scalars")),
                (name, DoorEntry::Table(_)) => errors.push(format!("{path}.{name}: must be a scalar")),
                ("channel", DoorEntry::Scalar(v)) => match v.text().parse::<Channel>() {
                    Ok(c) => channel = Some(c),
                    _ => errors.push(format!("{path}.channel: not a channel")),
                },
                ("scene", DoorEntry::Scalar(v)) => match v.text().parse::<Scene>() {
                    Ok(s) => scene = Some(s),
                    _ => errors.push(format!("{path}.scene: not a scene")),
                },
                (name, DoorEntry::Scalar(v)) => match resolver.resolve(&v.text()) {
                    Ok(secret) => {
                        account.credentials.insert(name.to_string(), secret);
                    }
                    Err(e) => errors.push(format!("{path}.{name}: {e}")),
                },
            }
        }
        if let Err(es) = dialects::build(&account) {
            errors.extend(es.into_iter().map(|e| format!("{path}.{}", e.trim_start_matches("credentials."))));
        }
        let account_id = dialects::credential(&account, id_name);
        if let Some(other) = owners.insert((dialect.clone(), account_id.clone()), merchant.to_string()) {
            errors.push(format!("{path}.{id_name}: {account_id:?} is already the {dialect} door of merchant {other}"));
        }
        doors.insert(dialect.clone(), DoorConfig { account, account_id, channel, scene });
    }
    doors
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_product_key(key: &str) -> Result<(), String> {
    let (channel, scene) =
        key.split_once('/').ok_or_else(|| "key must be channel/scene, like wechat/qr".to_string())?;
    channel.parse::<Channel>()?;
    scene.parse::<Scene>()?;
    Ok(())
}

fn validate_routes(
    merchant_path: &str,
    raw: &[RawRoute],
    providers: &BTreeMap<String, ProviderConfig>,
    errors: &mut Vec<String>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    if raw.is_empty() {
        errors.push(format!("{merchant_path}.routes: at least one route is needed"));
    }
    let check_account = |path: &str, name: &str, errors: &mut Vec<String>, new_payments: bool| match providers.get(name)
    {
        None => errors.push(format!("{path}: unknown provider {name:?}")),
        Some(p) if new_payments && p.retired => {
            errors.push(format!("{path}: provider {name:?} is retired and takes no new payments"))
        }
        Some(_) => {}
    };
    for (i, r) in raw.iter().enumerate() {
        let path = format!("{merchant_path}.routes[{i}]");
        let target = match (&r.to, &r.split) {
            (Some(to), None) => {
                check_account(&format!("{path}.to"), to, errors, true);
                RouteTarget::One(to.clone())
            }
            (None, Some(split)) => {
                let mut total: u64 = 0;
                for (name, weight) in split {
                    check_account(&format!("{path}.split.{name}"), name, errors, true);
                    if *weight == 0 {
                        errors.push(format!("{path}.split.{name}: weight must be more than 0"));
                    }
                    total += u64::from(*weight);
                }
                if total != 100 {
                    errors.push(format!("{path}.split: weights add up to {total}, not 100"));
                }
                RouteTarget::Split(split.iter().map(|(k, v)| (k.clone(), *v)).collect())
            }
            _ => {
                errors.push(format!("{path}: needs exactly one of `to` or `split`"));
                RouteTarget::One(String::new())
            }
        };
        for (j, f) in r.fallback.iter().enumerate() {
            check_account(&format!("{path}.fallback[{j}]"), f, errors, true);
        }
        let mut matches = RouteMatch::default();
        if let Some(m) = &r.matches {
            if let Some(c) = &m.channel {
                for item in c.items() {
                    match item.parse() {
                        Ok(ch) => matches.channels.push(ch),
                        Err(e) => errors.push(format!("{path}.match.channel: {e}")),
                    }
                }
            }
            if let Some(s) = &m.scene {
                for item in s.items() {
                    match item.parse() {
                        Ok(sc) => matches.scenes.push(sc),
                        Err(e) => errors.push(format!("{path}.match.scene: {e}")),
                    }
                }
            }
            matches.currency = m.currency.as_ref().map(|c| c.to_ascii_uppercase());
            matches.min_amount = m.min_amount;
            matches.max_amount = m.max_amount;
            if let (Some(lo), Some(hi)) = (m.min_amount, m.max_amount) {
                if lo > hi {
                    errors.push(format!("{path}.match: min_amount {lo} is above max_amount {hi}"));
                }
            }
            for (name, v) in [("min_amount", m.min_amount), ("max_amount", m.max_amount)] {
                if v.is_some_and(|v| v < 0) {
                    errors.push(format!("{path}.match.{name}: must not be negative"));
                }
            }
        }
        routes.push(Route { matches, target, fallback: r.fallback.clone() });
    }
    if let Some(last) = routes.last() {
        if !last.matches.is_catch_all() {
            errors.push(format!(
                "{merchant_path}.routes: the last route must have no `match` (the default route), so every payment has a provider"
            ));
        }
    }
    routes
}

/// A validated config with its dialects built: what one request runs against, start to end.
pub struct LiveConfig {
    pub config: Config,
    pub dialects: HashMap<String, Arc<dyn Dialect>>,
    /// (dialect, account id) → merchant id, for the front doors.
    pub doors: HashMap<(String, String), String>,
    pub source: PathBuf,
    pub loaded_at: i64,
}

impl LiveConfig {
    pub fn build(config: Config, source: PathBuf) -> Result<Self, Vec<String>> {
        let mut dialects = HashMap::new();
        for (name, p) in &config.providers {
            let d = dialects::build(p)
                .map_err(|es| es.into_iter().map(|e| format!("providers.{name}.{e}")).collect::<Vec<_>>())?;
            if p.insecure_http {
                tracing::warn!(provider = %name, "insecure_http: payments with this account travel over plain HTTP");
            }
            dialects.insert(name.clone(), d);
        }
        let mut doors = HashMap::new();
        for m in config.merchants.values() {
            for (dialect, door) in &m.compat {
                doors.insert((dialect.clone(), door.account_id.clone()), m.id.clone());
            }
        }
        Ok(LiveConfig { config, dialects, doors, source, loaded_at: crate::model::now_unix() })
    }

    /// Loads and validates a file, with secrets from the process environment.
    pub fn load(path: &Path) -> Result<Self, Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = parse(&text, &base, &|name| std::env::var(name).ok())?;
        Self::build(config, path.to_path_buf())
    }

    pub fn merchant(&self, id: &str) -> Option<&MerchantConfig> {
        self.config.merchants.get(id)
    }

    /// The merchant and door a front-door request with this account id is for.
    pub fn door(&self, dialect: &str, account_id: &str) -> Option<(&MerchantConfig, &DoorConfig)> {
        let merchant = self.merchant(self.doors.get(&(dialect.to_string(), account_id.to_string()))?)?;
        Some((merchant, merchant.compat.get(dialect)?))
    }

    pub fn dialect(&self, account: &str) -> Option<&Arc<dyn Dialect>> {
        self.dialects.get(account)
    }

    /// The gateway's own listeners, which no notification may target.
    pub fn own_listeners(&self) -> Vec<SocketAddr> {
        std::iter::once(self.config.listen).chain(self.config.admin_listen).collect()
    }

    /// Checks a notify URL of `merchant` (see `egress`): `Err` says why it is refused.
    pub fn check_notify_url(&self, merchant: &MerchantConfig, url: &str) -> Result<(), String> {
        let own = self.own_listeners();
        crate::egress::NotifyRule { allow_private: merchant.allow_private_notify, own: &own }.check_url(url)
    }
}

/// The human summary `payglot check` prints.
pub fn summary(config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "listen {}  public_url {}", config.listen, config.public_url);
    let _ = writeln!(out, "providers ({}):", config.providers.len());
    for (name, p) in &config.providers {
        let retired = if p.retired { "  [retired: no new payments]" } else { "" };
        let _ = writeln!(out, "  {name}: {} at {}{retired}", p.dialect, p.base_url);
    }
    let _ = writeln!(out, "merchants ({}):", config.merchants.len());
    for (id, m) in &config.merchants {
        let _ = writeln!(out, "  {id}:");
        for (i, r) in m.routes.iter().enumerate() {
            let when = describe_match(&r.matches);
            let to = match &r.target {
                RouteTarget::One(a) => a.clone(),
                RouteTarget::Split(parts) => {
                    parts.iter().map(|(a, w)| format!("{a} {w}%")).collect::<Vec<_>>().join(", ")
                }
            };
            let fallback = if r.fallback.is_empty() {
                String::new()
            } else {
                format!("  (fallback: {})", r.fallback.join(" -> "))
            };
            let _ = writeln!(out, "    [{i}] {when} -> {to}{fallback}");
        }
        for (dialect, door) in &m.compat {
            let id_name = dialects::account_id_credential(dialect).unwrap_or("id");
            let _ = writeln!(out, "    front door /compat/{dialect} ({id_name} {})", door.account_id);
        }
    }
    out
}

fn describe_match(m: &RouteMatch) -> String {
    if m.is_catch_all() {
        return "everything else".into();
    }
    let mut parts = Vec::new();
    if !m.channels.is_empty() {
        parts.push(format!("channel {}", m.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|")));
    }
    if !m.scenes.is_empty() {
        parts.push(format!("scene {}", m.scenes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|")));
    }
    if let Some(c) = &m.currency {
        parts.push(format!("currency {c}"));
    }
    match (m.min_amount, m.max_amount) {
        (Some(lo), Some(hi)) => parts.push(format!("amount {lo}..={hi} fen")),
        (Some(lo), None) => parts.push(format!("amount >= {lo} fen")),
        (None, Some(hi)) => parts.push(format!("amount <= {hi} fen")),
        (None, None) => {}
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen: 127.0.0.1:8080
public_url: https://pay.example.edu/
store: sqlite://data/payglot.db
providers:
  xxpay-main:
    dialect: xxpay
    base_url: http://127.0.0.1:3020
    credentials: { mch_id: "20001222", app_id: "app", key: "${XXPAY_KEY}" }
    products: { wechat/qr: 8002 }
  xxpay-backup:
    dialect: xxpay
    base_url: http://127.0.0.1:3021
    credentials: { mch_id: "1", app_id: "app", key: "k" }
merchants:
  school-a:
    key: "${SCHOOL_A_KEY}"
    routes:
      - match: { channel: wechat }
        to: xxpay-main
        fallback: [xxpay-backup]
      - split: { xxpay-main: 90, xxpay-backup: 10 }
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "XXPAY_KEY" => Some("xxpay-secret".into()),
            "SCHOOL_A_KEY" => Some("school-a-secret-key-0001".into()),
            _ => None,
        }
    }

    fn errors_of(text: &str) -> Vec<String> {
        parse(text, Path::new("/etc/payglot"), &env).unwrap_err()
    }

    #[test]
    fn yaml_errors_name_the_field_path_and_the_wrong_line() {
        // An unknown key: its path and its line (GOOD's line 8 is `base_url` of xxpay-main).
        let text = GOOD.replace(
            "    base_url: http://127.0.0.1:3020\n",
            "    base_url: http://127.0.0.1:3020\n    timeout_msec: 5\n",
        );
        let e = errors_of(&text);
        assert!(e[0].starts_with("providers.xxpay-main.timeout_msec: unknown field `timeout_msec`"), "{e:?}");
        assert!(e[0].contains("line 9"), "{e:?}");
        // A key indented under a key that has a value: the parser notices a line early; the
        // first error names the line that is wrong.
        let text = GOOD.replace("    base_url: http://127.0.0.1:3021\n", "      base_url: http://127.0.0.1:3021\n");
        let wrong = text.lines().position(|l| l == "      base_url: http://127.0.0.1:3021").unwrap() + 1;
        let e = errors_of(&text);
        assert!(e[0].starts_with(&format!("line {wrong}: indented deeper than line {}", wrong - 1)), "{e:?}");
        // No error shows a neighbouring line (a credential could be on it).
        let text = GOOD.replace("listen: 127.0.0.1:8080", "listen: [oops");
        assert!(errors_of(&text).iter().all(|e| !e.contains("app_id") && !e.contains('\n')), "{:?}", errors_of(&text));
    }

    #[test]
    fn reads_a_good_file() {
        let c = parse(GOOD, Path::new("/etc/payglot"), &env).unwrap();
        assert_eq!(c.public_url, "https://pay.example.edu");
        assert_eq!(c.store, StoreUrl::Sqlite("/etc/payglot/data/payglot.db".into()));
        assert_eq!(c.providers["xxpay-main"].credentials["key"].expose(), "xxpay-secret");
        assert_eq!(c.merchants["school-a"].routes.len(), 2);
        let s = summary(&c);
        assert!(s.contains("channel wechat -> xxpay-main  (fallback: xxpay-backup)"), "{s}");
        assert!(s.contains("everything else -> xxpay-backup 10%, xxpay-main 90%"), "{s}");
        assert!(!s.contains("xxpay-secret"));
        assert!(!format!("{c:?}").contains("xxpay-secret"));
    }

    #[test]
    fn names_the_field_path_of_each_error() {
        let text = GOOD.replace("to: xxpay-main", "to: xxpay-mian");
        assert_eq!(
            errors_of(&text),
            vec![r#"merchants.school-a.routes[0].to: unknown provider "xxpay-mian""#.to_string()]
        );
        let text = GOOD.replace("xxpay-main: 90", "xxpay-main: 80");
        assert!(errors_of(&text)[0].contains("merchants.school-a.routes[1].split: weights add up to 90, not 100"));
        let text = GOOD.replace(
            "dialect: xxpay\n    base_url: http://127.0.0.1:3021",
            "dialect: xxpey\n    base_url: http://127.0.0.1:3021",
        );
        assert!(errors_of(&text)[0].starts_with("providers.xxpay-backup.dialect: unknown dialect \"xxpey\""));
        let text = GOOD.replace(r#"key: "k" }"#, "}");
        assert_eq!(errors_of(&text), vec!["providers.xxpay-backup.credentials.key: missing".to_string()]);
        let text = GOOD.replace("${XXPAY_KEY}", "${NOPE}");
        assert!(
            errors_of(&text)[0].contains("providers.xxpay-main.credentials.key: environment variable NOPE is not set")
        );
        let text = GOOD.replace("wechat/qr", "wechat/scan");
        assert!(errors_of(&text)[0].starts_with("providers.xxpay-main.products.wechat/scan: unknown scene"));
    }

    #[test]
    fn front_doors_are_checked_like_provider_accounts() {
        let with_doors = |doors: &str| {
            GOOD.replace(
                "      - split: { xxpay-main: 90, xxpay-backup: 10 }\n",
                &format!("      - split: {{ xxpay-main: 90, xxpay-backup: 10 }}\n    compat:\n{doors}"),
            )
        };
        let good = with_doors(
            "      xxpay: { mch_id: 100, app_id: a, key: \"${XXPAY_KEY}\" }\n      xiaojitong: { mid: 7, key: k, channel: alipay, scene: qr }\n",
        );
        let c = parse(&good, Path::new("/etc/payglot"), &env).unwrap();
        let door = &c.merchants["school-a"].compat["xxpay"];
        assert_eq!(door.account_id, "100", "a YAML number is read as written");
        assert_eq!(door.account.credentials["key"].expose(), "xxpay-secret");
        assert_eq!(c.merchants["school-a"].compat["xiaojitong"].channel, Some(Channel::Alipay));
        let live = LiveConfig::build(c, PathBuf::new()).unwrap();
        assert_eq!(live.door("xxpay", "100").map(|(m, _)| m.id.as_str()), Some("school-a"));
        assert!(live.door("xxpay", "101").is_none());
        assert!(live.door("xiaojitong", "100").is_none());

        let errors = errors_of(&with_doors("      xxpay: { mch_id: 100, app_id: a }\n      xxpey: { key: k }\n      mct: { open_id: s, open_key: short, scene: scan }\n"));
        assert!(errors.contains(&"merchants.school-a.compat.xxpay.key: missing".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("merchants.school-a.compat.xxpey: unknown dialect")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("merchants.school-a.compat.mct.open_key: AES-256 needs 32 bytes")),
            "{errors:?}"
        );
        assert!(errors.contains(&"merchants.school-a.compat.mct.scene: not a scene".to_string()), "{errors:?}");

        // Two merchants cannot answer to the same account id at one door.
        let twice = with_doors("      xxpay: { mch_id: 100, app_id: a, key: k }\n").replace(
            "merchants:\n",
            "merchants:\n  school-b:\n    key: school-b-secret-key-0001\n    routes: [ { to: xxpay-main } ]\n    compat: { xxpay: { mch_id: \"100\", app_id: b, key: k2 } }\n",
        );
        let errors = errors_of(&twice);
        assert_eq!(
            errors,
            vec![r#"merchants.school-b.compat.xxpay.mch_id: "100" is already the xxpay door of merchant school-a"#
                .to_string()]
        );
    }

    #[test]
    fn collects_every_error_at_once() {
        let text = GOOD
            .replace("to: xxpay-main", "to: nowhere")
            .replace("listen: 127.0.0.1:8080", "listen: somewhere")
            .replace("channel: wechat", "channel: wechart");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn unknown_keys_and_missing_default_route() {
        let text = GOOD.replace("fallback: [xxpay-backup]", "falback: [xxpay-backup]");
        let e = errors_of(&text);
        assert!(e[0].contains("unknown field `falback`"), "{e:?}");
        let text = GOOD.replace("      - split: { xxpay-main: 90, xxpay-backup: 10 }\n", "");
        let e = errors_of(&text);
        assert!(e[0].contains("the last route must have no `match`"), "{e:?}");
        let text = GOOD.replace("key: \"${SCHOOL_A_KEY}\"", "key: short");
        assert!(errors_of(&text)[0].contains("merchants.school-a.key: must be at least 16"));
        let text = GOOD
            .replace("    products: { wechat/qr: 8002 }\n", "    products: { wechat/qr: 8002 }\n    retired: true\n");
        let e = errors_of(&text);
        assert!(e.iter().any(|e| e.contains("routes[0].to: provider \"xxpay-main\" is retired")), "{e:?}");
    }
}

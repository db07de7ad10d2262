//! Provider dialects. Each dialect is sans-IO: it turns a canonical operation into the bytes of
//! an HTTP request, and the bytes of an HTTP answer or callback into a canonical result, with
//! time passed in. All I/O lives in the server, callback and delivery layers.

pub mod account;
pub mod jings;
pub mod mct;
pub mod provider_side;
pub mod signing;
pub mod xiaojitong;
pub mod xxpay;
pub mod zhixiao;

use crate::model::{Action, Channel, Payment, PaymentStatus, Payout, Refund, Scene, TransferStatus};
pub use account::ProviderConfig;
pub use provider_side::ProviderSide;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Builds the merchant side of an account, or says what is wrong with its settings.
pub type Build = fn(&ProviderConfig) -> Result<Arc<dyn Dialect>, Vec<String>>;

/// What payglot knows of one dialect: the one place its name selects code. Each dialect's file
/// declares its `SPEC`; adding a provider is its file and a line in `REGISTRY`.
pub struct DialectSpec {
    /// The name routes.yaml uses.
    pub name: &'static str,
    /// The credential that names a merchant's account in the dialect's requests (the key of
    /// its front door).
    pub account_id: &'static str,
    /// The credentials that name an account and are not secret (shown to ops in clear).
    pub public_credentials: &'static [&'static str],
    /// Builds the merchant side of an account, checking its credentials and options.
    pub build: Build,
    /// The provider side: what the sandbox and the front doors speak.
    pub side: &'static dyn ProviderSide,
    /// Whether the provider offers payouts (代付).
    pub payouts: bool,
    /// Whether its accounts take a `products:` table.
    pub products: bool,
    /// `payglot sign`: the string signed (key shown as `<key>`) and the signature of the
    /// command line's fields.
    pub cli_sign: fn(&[String], &str) -> (String, String),
    /// The provider's API as its document lists it: (method, path below the base URL).
    pub endpoints: &'static [(&'static str, &'static str)],
    /// The account of the document's own examples (its printed signatures are made with it;
    /// the fuzz targets and conformance fixtures use it).
    pub example_credentials: &'static [(&'static str, &'static str)],
    pub example_options: &'static [(&'static str, &'static str)],
}

impl DialectSpec {
    /// The document's example account, as a provider account named `name`.
    pub fn example_account(&self, name: &str) -> ProviderConfig {
        let mut p = ProviderConfig::with_defaults(name, self.name);
        for (k, v) in self.example_credentials {
            p.credentials.insert(k.to_string(), crate::secret::Secret::new(*v));
        }
        for (k, v) in self.example_options {
            p.options.insert(k.to_string(), v.to_string());
        }
        p
    }
}

/// Every dialect payglot speaks.
pub static REGISTRY: [DialectSpec; 5] = [xiaojitong::SPEC, zhixiao::SPEC, jings::SPEC, mct::SPEC, xxpay::SPEC];

/// Every dialect's merchant side with its document's example account, in registry order (for
/// the fuzz targets and tests).
pub fn examples() -> Vec<(&'static DialectSpec, Arc<dyn Dialect>)> {
    REGISTRY
        .iter()
        .map(|spec| {
            let account = spec.example_account(&format!("example-{}", spec.name));
            (spec, (spec.build)(&account).expect("the documents' example accounts are valid"))
        })
        .collect()
}

/// The dialect of this name.
pub fn spec(name: &str) -> Option<&'static DialectSpec> {
    REGISTRY.iter().find(|d| d.name == name)
}

/// The names of the dialects, for messages.
pub fn names() -> String {
    REGISTRY.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}

/// `name=value` arguments as pairs (a bare argument is a name with an empty value).
pub fn arg_pairs(args: &[String]) -> Vec<(String, String)> {
    args.iter()
        .map(|f| f.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((f.clone(), String::new())))
        .collect()
}

/// One order as a provider keeps it: the provider side of every dialect (the sandbox providers
/// and the front doors) builds its answers and callbacks from this.
#[derive(Debug, Clone)]
pub struct ProviderOrder {
    pub dialect: &'static str,
    /// The provider's order number (at a front door: payglot's payment_id).
    pub provider_no: String,
    /// The merchant account (mch_id, mid, appid, uid, open_id) that created it.
    pub account: String,
    /// The merchant's order number (payglot's payment_id).
    pub merchant_order_no: String,
    pub amount: i64,
    /// What the payer must pay (xiaojitong's reallyprice); usually the amount.
    pub payable: i64,
    pub notify_url: String,
    /// Where the payer's browser goes once paid (empty: nowhere).
    pub return_url: String,
    pub status: PaymentStatus,
    pub paid_at: Option<i64>,
    pub refunded: i64,
    /// Anything else the dialect keeps (product id, scene, return url...).
    pub fields: BTreeMap<String, String>,
}

/// A callback to send: request and how to recognise the ack.
pub struct Notify {
    pub method: &'static str,
    pub url: String,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    pub ack: Ack,
}

impl Notify {
    /// A callback sent as a GET with its fields in the query string (xiaojitong, mct, xxpay
    /// payouts).
    pub fn get(url: &str, query: &str, ack: Ack) -> Notify {
        let sep = if url.contains('?') { '&' } else { '?' };
        Notify { method: "GET", url: format!("{url}{sep}{query}"), content_type: None, body: Vec::new(), ack }
    }
}

/// What the merchant side answers when it took a callback.
#[derive(Debug, Clone, Copy)]
pub enum Ack {
    /// A 2xx with exactly this text (xxpay `success`, mct `notify_success`).
    Text(&'static str),
    /// A 2xx with a JSON body whose field has this value as text (xiaojitong `code` 1,
    /// zhixiao `ret_code` 0).
    JsonField(&'static str, &'static str),
    /// Any 2xx (jings).
    Status2xx,
}

impl Ack {
    /// Whether an answer with this status and body is the ack.
    pub fn matches(&self, status: u16, body: &[u8]) -> bool {
        if !(200..300).contains(&status) {
            return false;
        }
        match self {
            Ack::Text(t) => String::from_utf8_lossy(body).trim() == *t,
            Ack::JsonField(k, v) => {
                serde_json::from_slice::<serde_json::Value>(body).ok().is_some_and(|j| field(&j, k) == *v)
            }
            Ack::Status2xx => true,
        }
    }
}

/// The credential that names a merchant's account in each dialect's requests.
pub fn account_id_credential(dialect: &str) -> Option<&'static str> {
    spec(dialect).map(|d| d.account_id)
}

/// An HTTP request to send to a provider, relative to the account's `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub method: &'static str,
    /// Path (and query, for GET) appended to the account's base_url.
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// An HTTP answer from a provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderResponse<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// An HTTP request a provider sent to payglot (a callback), as received.
#[derive(Debug, Clone, Copy)]
pub struct InboundHttp<'a> {
    pub method: &'a str,
    pub query: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// The reply payglot sends back to a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Everything a dialect needs to create a payment at its provider.
#[derive(Debug, Clone)]
pub struct CreateOrder<'a> {
    pub payment: &'a Payment,
    /// Where the provider must send its callback: `{public_url}/callbacks/{account}`.
    pub callback_url: String,
    pub client_ip: Option<&'a str>,
    /// The payer's code for `barcode` payments.
    pub auth_code: Option<&'a str>,
    /// The payer's id for `jsapi` / `miniapp` payments.
    pub openid: Option<&'a str>,
    /// Provider-specific fields the merchant passed in `extra` (documented per dialect).
    pub extra: &'a serde_json::Map<String, serde_json::Value>,
}

impl<'a> CreateOrder<'a> {
    /// The order of `payment` with the callback URL and nothing else (no payer's address,
    /// code or id, no extra fields).
    pub fn new(payment: &'a Payment, callback_url: impl Into<String>) -> Self {
        static NO_EXTRA: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> = std::sync::OnceLock::new();
        CreateOrder {
            payment,
            callback_url: callback_url.into(),
            client_ip: None,
            auth_code: None,
            openid: None,
            extra: NO_EXTRA.get_or_init(serde_json::Map::new),
        }
    }

    /// A string from `extra`.
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
    }
}

/// What a provider answered to a create: its order number and what the payer does next.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub provider_trade_no: Option<String>,
    pub action: Action,
    /// Some providers settle barcode payments at once.
    pub status: PaymentStatus,
    /// When the provider says the order stops being payable (xiaojitong `order_time_out`),
    /// unix seconds.
    pub expires_at: Option<i64>,
}

/// The first step of a create: either a call to the provider, or (for providers that take
/// the payer's browser directly) the finished answer without any server call.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateStep {
    Call(ProviderRequest),
    Done(Created),
}

/// A provider's verified statement about one payment, from a query answer or a callback.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentReport {
    /// payglot's payment_id, the merchant order number the provider knows.
    pub payment_id: String,
    pub provider_trade_no: Option<String>,
    pub status: PaymentStatus,
    /// The order amount the provider states, in fen; `None` when its message does not say
    /// (a stated amount must equal the payment's).
    pub amount: Option<i64>,
    /// What the payer actually paid, when the provider says and it differs from `amount`.
    pub paid_amount: Option<i64>,
    /// When the provider says it was paid, unix seconds.
    pub paid_at: Option<i64>,
}

/// A verified callback: about a payment, or about a payout.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackReport {
    Payment(PaymentReport),
    Payout(PayoutReport),
}

/// A provider's verified statement about a refund.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundReport {
    pub provider_refund_no: Option<String>,
    pub status: TransferStatus,
}

/// A provider's verified statement about a payout.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutReport {
    pub payout_id: String,
    pub provider_payout_no: Option<String>,
    pub status: TransferStatus,
    pub amount: Option<i64>,
}

/// One page of a provider's order listing: (merchant order number, status, amount) per order,
/// and whether more pages follow.
pub type OrderPage = (Vec<(String, PaymentStatus, Option<i64>)>, bool);

/// One payment method an account offers (mct `paylist`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PaymentMethod {
    pub name: String,
    pub tag: String,
    /// The provider's scene codes, as it lists them.
    pub types: Vec<String>,
}

/// The operations of the merchant API, for `unsupported_operation` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ClosePayment,
    Refund,
    QueryRefund,
    CreatePayout,
    QueryPayout,
    Balance,
    PaymentMethods,
    Identity,
    CardLink,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ClosePayment => "close payment",
            Operation::Refund => "refund",
            Operation::QueryRefund => "query refund",
            Operation::CreatePayout => "create payout",
            Operation::QueryPayout => "query payout",
            Operation::Balance => "balance",
            Operation::PaymentMethods => "payment methods",
            Operation::Identity => "user identity",
            Operation::CardLink => "campus card link",
        }
    }
}

/// The error for an operation the provider does not offer.
pub fn unsupported<T>(dialect: &str, op: Operation) -> Result<T, DialectError> {
    Err(DialectError::Unsupported(format!("{dialect} does not offer {}", op.as_str())))
}

/// How a provider's refusal maps onto the merchant API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The provider said no: 502 provider_error.
    Generic,
    /// The object is not in a state that allows it (already paid, not paid...): 409.
    InvalidState,
    /// More than can be refunded: 422 amount_exceeds_refundable.
    AmountExceeded,
    /// The account has not enabled this: 422 unsupported_operation.
    NotEnabled,
}

/// Why a dialect could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectError {
    /// The provider answered, with a valid message, that it did not do it.
    Rejected { code: String, message: String, kind: Refusal },
    /// The provider's answer or callback is malformed or its signature is wrong.
    BadMessage(String),
    /// The provider does not offer this operation, or cannot express this request.
    Unsupported(String),
    /// The request can not be expressed with this account's settings.
    Invalid(String),
    /// The provider answered, as clearly as its protocol lets it, that it does not know the
    /// order (xiaojitong -1, zhixiao "不存在", mct 8002, xxpay 订单不存在).
    UnknownOrder(String),
}

impl fmt::Display for DialectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialectError::Rejected { code, message, .. } => {
                write!(f, "provider refused: {code} {message}")
            }
            DialectError::BadMessage(m) => write!(f, "bad provider message: {m}"),
            DialectError::Unsupported(m) => write!(f, "unsupported: {m}"),
            DialectError::Invalid(m) => write!(f, "invalid request: {m}"),
            DialectError::UnknownOrder(m) => write!(f, "the provider does not know the order: {m}"),
        }
    }
}

impl DialectError {
    /// A plain refusal with the provider's code and message.
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        DialectError::Rejected { code: code.into(), message: message.into(), kind: Refusal::Generic }
    }
}

/// One provider account speaking one dialect: the merchant side of the protocol. Operations
/// a provider does not offer keep the default, which answers `Unsupported` without any call.
pub trait Dialect: Send + Sync {
    fn dialect(&self) -> &'static str;
    /// Builds the create request (or the finished answer for browser-only providers).
    fn create_payment(&self, order: &CreateOrder<'_>, now: i64) -> Result<CreateStep, DialectError>;
    /// Verifies and reads the provider's answer to a create.
    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError>;
    /// Builds a query for one payment.
    fn query_payment(&self, payment: &Payment, now: i64) -> Result<ProviderRequest, DialectError>;
    /// Verifies and reads the provider's answer to a query.
    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError>;
    /// Verifies (and decrypts) a callback and reads it.
    fn read_callback(&self, callback: InboundHttp<'_>, now: i64) -> Result<CallbackReport, DialectError>;
    /// The reply that tells the provider its callback was taken (`true`) or must be retried.
    fn callback_reply(&self, accepted: bool) -> CallbackReply;
    /// The payment id an unverified callback claims to be about, without trusting anything
    /// else in it: when a callback fails verification, payglot asks the provider about that
    /// payment instead, so a signing quirk never loses a real payment.
    fn claimed_payment_id(&self, _callback: InboundHttp<'_>) -> Option<String> {
        None
    }

    /// How long the provider keeps an unpaid order payable, where its document says (zhixiao:
    /// one hour). After it, an expired payment may be closed locally.
    fn order_lifetime(&self) -> Option<Duration> {
        None
    }
    /// The provider's limit on queries of one order (jings: one a minute).
    fn query_interval(&self) -> Option<Duration> {
        None
    }
    /// The provider's limit on balance queries (jings: one every three minutes).
    fn balance_interval(&self) -> Option<Duration> {
        None
    }

    fn close_payment(&self, _payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::ClosePayment)
    }
    fn read_close(&self, _payment: &Payment, _answer: ProviderResponse<'_>) -> Result<(), DialectError> {
        unsupported(self.dialect(), Operation::ClosePayment)
    }
    fn refund(&self, _payment: &Payment, _refund: &Refund, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::Refund)
    }
    fn read_refund(&self, _refund: &Refund, _answer: ProviderResponse<'_>) -> Result<RefundReport, DialectError> {
        unsupported(self.dialect(), Operation::Refund)
    }
    /// A refund query; providers without one answer Unsupported and the store is the answer.
    fn query_refund(&self, _refund: &Refund, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::QueryRefund)
    }
    fn read_refund_query(&self, _refund: &Refund, _answer: ProviderResponse<'_>) -> Result<RefundReport, DialectError> {
        unsupported(self.dialect(), Operation::QueryRefund)
    }
    fn create_payout(&self, _payout: &Payout, _callback_url: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::CreatePayout)
    }
    fn read_payout(&self, _payout: &Payout, _answer: ProviderResponse<'_>) -> Result<PayoutReport, DialectError> {
        unsupported(self.dialect(), Operation::CreatePayout)
    }
    fn query_payout(&self, _payout: &Payout, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::QueryPayout)
    }
    fn read_payout_query(&self, _payout: &Payout, _answer: ProviderResponse<'_>) -> Result<PayoutReport, DialectError> {
        unsupported(self.dialect(), Operation::QueryPayout)
    }
    fn balance(&self, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::Balance)
    }
    /// The balance in fen.
    fn read_balance(&self, _answer: ProviderResponse<'_>) -> Result<i64, DialectError> {
        unsupported(self.dialect(), Operation::Balance)
    }
    fn payment_methods(&self, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::PaymentMethods)
    }
    fn read_payment_methods(&self, _answer: ProviderResponse<'_>) -> Result<Vec<PaymentMethod>, DialectError> {
        unsupported(self.dialect(), Operation::PaymentMethods)
    }
    /// The provider's own list of orders created in a Beijing-time day (mct `order`, §4.2):
    /// (merchant order number, status, amount) per order, one page (1-based) at a time; the
    /// bool says whether more pages follow.
    fn list_orders(&self, _date: &str, _page: u32, _now: i64) -> Result<ProviderRequest, DialectError> {
        Err(DialectError::Unsupported("order listing".into()))
    }
    fn read_order_list(&self, _answer: ProviderResponse<'_>) -> Result<OrderPage, DialectError> {
        Err(DialectError::Unsupported("order listing".into()))
    }
    /// The payer's identity behind a wallet uid (zhixiao 2.6), as the provider states it.
    fn identity(&self, _uid: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::Identity)
    }
    fn read_identity(&self, _answer: ProviderResponse<'_>) -> Result<serde_json::Value, DialectError> {
        unsupported(self.dialect(), Operation::Identity)
    }
    /// A student's or teacher's campus card link (zhixiao 2.7).
    fn card_link(&self, _school_id: &str, _user_no: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        unsupported(self.dialect(), Operation::CardLink)
    }
    fn read_card_link(&self, _answer: ProviderResponse<'_>) -> Result<serde_json::Value, DialectError> {
        unsupported(self.dialect(), Operation::CardLink)
    }
}

/// A provider's answer as JSON, or a BadMessage saying why not.
pub fn answer_json(answer: ProviderResponse<'_>) -> Result<serde_json::Value, DialectError> {
    if !(200..300).contains(&answer.status) {
        return Err(DialectError::BadMessage(format!("HTTP status {}", answer.status)));
    }
    signing::parse_loose_json(&String::from_utf8_lossy(answer.body)).map_err(DialectError::BadMessage)
}

/// The text of a JSON value as providers sign it: strings as they are, numbers as written,
/// objects and arrays as compact JSON, null as empty.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A field of a JSON object as text ("" when missing).
pub fn field(object: &serde_json::Value, key: &str) -> String {
    object.get(key).map(json_text).unwrap_or_default()
}

/// A credential of a provider account (checked present by `check_credentials`).
pub fn credential(provider: &ProviderConfig, name: &str) -> String {
    provider.credentials.get(name).map(|s| s.expose().to_string()).unwrap_or_default()
}

/// Cuts a string to at most `max` characters (for documents that count characters).
pub fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Cuts a string to at most `max_bytes` bytes on a character boundary (providers count bytes).
pub fn truncate_bytes(s: &str, max_bytes: usize) -> String {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > max_bytes {
            break;
        }
        end = i + c.len_utf8();
    }
    s[..end].to_string()
}

/// Beijing time (UTC+8) as `YYYY-MM-DD HH:MM:SS`, the providers' clock.
pub fn beijing_time(unix_seconds: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs((unix_seconds + 8 * 3600).max(0) as u64);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    // "2018-09-02T12:35:06Z" -> "2018-09-02 12:35:06"
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// Parses Beijing time `YYYY-MM-DD HH:MM:SS` into unix seconds.
pub fn parse_beijing_time(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(&format!("{}Z", text.trim().replacen(' ', "T", 1))).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(secs - 8 * 3600)
}

/// Builds the dialect for one provider account, checking its credentials and options.
/// Errors are messages relative to the provider's entry in routes.yaml.
pub fn build(provider: &ProviderConfig) -> Result<Arc<dyn Dialect>, Vec<String>> {
    match spec(&provider.dialect) {
        Some(d) => (d.build)(provider),
        None => Err(vec![format!("dialect: unknown dialect {:?} (known: {})", provider.dialect, names())]),
    }
}

/// The key a provider's product table uses for a channel and scene: `wechat/qr`.
pub fn product_key(channel: Channel, scene: Scene) -> String {
    format!("{channel}/{scene}")
}

/// Checks that only known option names are set; returns messages.
pub fn check_options(provider: &ProviderConfig, known: &[&str]) -> Vec<String> {
    provider
        .options
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            let expected = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            format!("options.{k}: unknown option for dialect {} (expected: {expected})", provider.dialect)
        })
        .collect()
}

/// Checks that exactly the expected credential names are present; returns messages.
pub fn check_credentials(provider: &ProviderConfig, required: &[&str], optional: &[&str]) -> Vec<String> {
    let mut errors = Vec::new();
    for name in required {
        match provider.credentials.get(*name) {
            None => errors.push(format!("credentials.{name}: missing")),
            Some(v) if v.expose().is_empty() => errors.push(format!("credentials.{name}: is empty")),
            Some(_) => {}
        }
    }
    for name in provider.credentials.keys() {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            errors.push(format!(
                "credentials.{name}: unknown credential for dialect {} (expected: {})",
                provider.dialect,
                required.iter().chain(optional).copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_round_trips() {
        // 2018-09-02 12:35:06 in Beijing is 04:35:06 UTC.
        let unix = 1_535_862_906;
        assert_eq!(beijing_time(unix), "2018-09-02 12:35:06");
        assert_eq!(parse_beijing_time("2018-09-02 12:35:06"), Some(unix));
        assert_eq!(parse_beijing_time("garbage"), None);
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate_bytes("学费abc", 4), "学");
        assert_eq!(truncate_bytes("学费abc", 7), "学费a");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }
}

/// Amounts cross every wire format exactly: fen → the dialect's rendering → fen, from 1 fen to
/// 10^9 fen. The rendering is pinned to each document's examples (yuan with two decimals for
/// xiaojitong and jings, fen strings for zhixiao, fen integers for mct and xxpay), since a
/// `1` / `1.0` / `1.00` difference changes a signature.
#[cfg(test)]
mod amount_tests {
    use super::*;
    use crate::money::{fen_to_yuan, yuan_to_fen};
    use crate::secret::Secret;
    use serde_json::{json, Value};

    fn account(dialect: &str, creds: &[(&str, &str)]) -> Arc<dyn Dialect> {
        let mut p = ProviderConfig::with_defaults("acct", dialect);
        p.base_url = "http://127.0.0.1:1".into();
        for (k, v) in creds {
            p.credentials.insert(k.to_string(), Secret::new(*v));
        }
        build(&p).unwrap()
    }

    /// 1..=10^9 fen: edges, then a deterministic xorshift sample.
    fn amounts() -> Vec<i64> {
        let mut v =
            vec![1, 9, 10, 11, 99, 100, 101, 110, 999, 1000, 1001, 19_800, 123_456_789, 999_999_999, 1_000_000_000];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push((x % 1_000_000_000) as i64 + 1);
        }
        v
    }

    fn order_for<'a>(p: &'a Payment, extra: &'a serde_json::Map<String, Value>) -> CreateOrder<'a> {
        CreateOrder {
            payment: p,
            callback_url: "http://gw/cb".into(),
            client_ip: None,
            auth_code: None,
            openid: None,
            extra,
        }
    }

    #[test]
    fn yuan_dialects_render_two_decimals_and_read_back_exactly() {
        let xjt = account("xiaojitong", &[("mid", "2"), ("key", "k")]);
        let jg = account("jings", &[("uid", "1"), ("token", "t")]);
        let extra = serde_json::Map::new();
        for amount in amounts() {
            let mut p = crate::test_support::payment();
            p.amount = amount;
            p.channel = Channel::Wechat;
            let CreateStep::Call(req) = xjt.create_payment(&order_for(&p, &extra), 0).unwrap() else { panic!() };
            let fields = xiaojitong::provider::read_create(&req.body, |_| Some("k".into())).unwrap();
            assert_eq!(fields["price"], fen_to_yuan(amount));
            assert_eq!(fields["price"].split('.').nth(1).map(str::len), Some(2), "two decimals as the document shows");
            assert_eq!(yuan_to_fen(&fields["price"]), Ok(amount));
            // The provider answers prices as JSON numbers; they read back exactly.
            let number: Value = serde_json::from_str(&fen_to_yuan(amount)).unwrap();
            let answer = json!({"code": 1, "data": {"payid": p.payment_id, "orderid": "1", "paytype": 1, "price": number, "reallyprice": number, "payurl": "wxp://x"}});
            let created = xjt
                .read_create(
                    &order_for(&p, &extra),
                    ProviderResponse { status: 200, body: answer.to_string().as_bytes() },
                )
                .unwrap();
            assert_eq!(created.action, Action::QrCode { qr_code: "wxp://x".into(), amount: Some(amount) });
            let q = xiaojitong::provider::callback_query(
                "2",
                &p.payment_id,
                "",
                &fen_to_yuan(amount),
                &fen_to_yuan(amount),
                "k",
            );
            let CallbackReport::Payment(r) =
                xjt.read_callback(InboundHttp { method: "GET", query: &q, content_type: "", body: b"" }, 0).unwrap()
            else {
                panic!()
            };
            assert_eq!(r.amount, Some(amount));

            p.channel = Channel::Alipay;
            p.scene = Scene::Web;
            p.return_url = Some("https://s/r".into());
            let CreateStep::Done(created) = jg.create_payment(&order_for(&p, &extra), 0).unwrap() else { panic!() };
            let Action::FormPost { fields, .. } = created.action else { panic!() };
            assert_eq!(fields["paymoney"], fen_to_yuan(amount));
            let body =
                jings::provider::notify_body("9", &p.payment_id, "", &fields["paymoney"], &fields["paymoney"], "t");
            let inbound = InboundHttp {
                method: "POST",
                query: "",
                content_type: "application/x-www-form-urlencoded",
                body: body.as_bytes(),
            };
            let CallbackReport::Payment(r) = jg.read_callback(inbound, 0).unwrap() else { panic!() };
            assert_eq!(r.amount, Some(amount));
        }
    }

    #[test]
    fn fen_dialects_send_integers() {
        let xx = account("xxpay", &[("mch_id", "1"), ("app_id", "a"), ("key", "k")]);
        let zx =
            account("zhixiao", &[("appid", "p"), ("appsecret", "s"), ("aes_key", "AD42F6697B035B7580E4FEF93BE20B4D")]);
        let mc = account("mct", &[("open_id", "o"), ("open_key", "0828e83720fdbe3685a7b94214af04f9")]);
        let zx_env = zhixiao::Envelope::new("p", "s", "AD42F6697B035B7580E4FEF93BE20B4D", &Default::default()).unwrap();
        let mct_env = mct::Envelope::new("o", "0828e83720fdbe3685a7b94214af04f9", true).unwrap();
        let extra = serde_json::Map::new();
        for amount in amounts().into_iter().step_by(4) {
            let mut p = crate::test_support::payment();
            p.amount = amount;
            let CreateStep::Call(req) = xx.create_payment(&order_for(&p, &extra), 0).unwrap() else { panic!() };
            let fields = xxpay::provider::read_request(&req.body, |_| Some("k".into())).unwrap();
            assert_eq!(fields["amount"], amount.to_string());

            let CreateStep::Call(req) = zx.create_payment(&order_for(&p, &extra), 0).unwrap() else { panic!() };
            let content = zx_env.read_request(&req.body).unwrap();
            assert_eq!(content["total_fee"], json!(amount.to_string()), "zhixiao: fen as a string");

            let CreateStep::Call(req) = mc.create_payment(&order_for(&p, &extra), 0).unwrap() else { panic!() };
            let (_, data) = mct::provider::read_request(&req.body, 0, |_| Some(mct_env.clone())).unwrap();
            assert_eq!(data["trade_amount"], json!(amount), "mct: fen as an integer");
        }
    }
}

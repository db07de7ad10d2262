//! Provider dialects. Each dialect is sans-IO: it turns a canonical operation into the bytes of
//! an HTTP request, and the bytes of an HTTP answer or callback into a canonical result, with
//! time passed in. All I/O lives in the server, callback and delivery layers.

pub mod signing;
pub mod xxpay;

use crate::config::ProviderConfig;
use crate::model::{Action, Channel, Payment, PaymentStatus, Scene};
use std::fmt;
use std::sync::Arc;

/// The dialects payglot knows, by the name used in routes.yaml.
pub const DIALECTS: &[&str] = &["xxpay"];

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
}

/// What a provider answered to a create: its order number and what the payer does next.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub provider_trade_no: Option<String>,
    pub action: Action,
    /// Some providers settle barcode payments at once.
    pub status: PaymentStatus,
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
    /// The amount the provider says the order is for (or was paid), in fen.
    pub amount: Option<i64>,
    /// When the provider says it was paid, unix seconds.
    pub paid_at: Option<i64>,
}

/// Why a dialect could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectError {
    /// The provider answered, with a valid message, that it did not do it.
    Rejected { code: String, message: String },
    /// The provider's answer or callback is malformed or its signature is wrong.
    BadMessage(String),
    /// The provider does not offer this operation, or cannot express this request.
    Unsupported(String),
    /// The request can not be expressed with this account's settings.
    Invalid(String),
}

impl fmt::Display for DialectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialectError::Rejected { code, message } => {
                write!(f, "provider refused: {code} {message}")
            }
            DialectError::BadMessage(m) => write!(f, "bad provider message: {m}"),
            DialectError::Unsupported(m) => write!(f, "unsupported: {m}"),
            DialectError::Invalid(m) => write!(f, "invalid request: {m}"),
        }
    }
}

/// One provider account speaking one dialect: the merchant side of the protocol.
pub trait Dialect: Send + Sync {
    fn dialect(&self) -> &'static str;
    /// Builds the create request (or the finished answer for browser-only providers).
    fn create_payment(&self, order: &CreateOrder<'_>, now: i64)
        -> Result<CreateStep, DialectError>;
    /// Verifies and reads the provider's answer to a create.
    fn read_create(
        &self,
        order: &CreateOrder<'_>,
        answer: ProviderResponse<'_>,
    ) -> Result<Created, DialectError>;
    /// Builds a query for one payment.
    fn query_payment(&self, payment: &Payment, now: i64) -> Result<ProviderRequest, DialectError>;
    /// Verifies and reads the provider's answer to a query.
    fn read_query(
        &self,
        payment: &Payment,
        answer: ProviderResponse<'_>,
    ) -> Result<PaymentReport, DialectError>;
    /// Verifies (and decrypts) a payment callback and reads it.
    fn read_callback(
        &self,
        callback: InboundHttp<'_>,
        now: i64,
    ) -> Result<PaymentReport, DialectError>;
    /// The reply that tells the provider its callback was taken (`true`) or must be retried.
    fn callback_reply(&self, accepted: bool) -> CallbackReply;
}

/// Builds the dialect for one provider account, checking its credentials and options.
/// Errors are messages relative to the provider's entry in routes.yaml.
pub fn build(provider: &ProviderConfig) -> Result<Arc<dyn Dialect>, Vec<String>> {
    match provider.dialect.as_str() {
        "xxpay" => Ok(Arc::new(xxpay::Xxpay::from_config(provider)?)),
        other => Err(vec![format!(
            "dialect: unknown dialect {other:?} (known: {})",
            DIALECTS.join(", ")
        )]),
    }
}

/// The key a provider's product table uses for a channel and scene: `wechat/qr`.
pub fn product_key(channel: Channel, scene: Scene) -> String {
    format!("{channel}/{scene}")
}

/// Checks that exactly the expected credential names are present; returns messages.
pub fn check_credentials(
    provider: &ProviderConfig,
    required: &[&str],
    optional: &[&str],
) -> Vec<String> {
    let mut errors = Vec::new();
    for name in required {
        match provider.credentials.get(*name) {
            None => errors.push(format!("credentials.{name}: missing")),
            Some(v) if v.expose().is_empty() => {
                errors.push(format!("credentials.{name}: is empty"))
            }
            Some(_) => {}
        }
    }
    for name in provider.credentials.keys() {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            errors.push(format!(
                "credentials.{name}: unknown credential for dialect {} (expected: {})",
                provider.dialect,
                required
                    .iter()
                    .chain(optional)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    errors
}

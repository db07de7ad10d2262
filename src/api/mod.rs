//! The merchant API (`/v1`): authentication, routing of endpoints to handlers, error mapping,
//! and the one helper every handler uses to call a provider account. This is the core every
//! door calls.

pub mod accounts;
pub mod auth;
pub mod error;
pub mod payments;
pub mod payouts;
pub mod refunds;

use crate::config::{LiveConfig, MerchantConfig, ProviderConfig, RouteTarget};
use crate::dialects::{Dialect, DialectError, ProviderRequest, ProviderResponse, Refusal};
use crate::model::now_unix;
use crate::server::{Gateway, HttpIn, Reply};
use crate::upstream::{Answer, UpstreamError};
use error::ApiError;
use std::sync::Arc;

/// Handles one `/v1/...` request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Reply {
    let result = dispatch(gateway, request).await;
    let operation = endpoint(&request.method, &request.path).map(|e| e.name()).unwrap_or("unknown");
    // Only configured merchants become label values: a header can say anything.
    let merchant = request
        .header("payglot-merchant")
        .filter(|m| gateway.config.current().merchant(m).is_some())
        .unwrap_or("unknown")
        .to_string();
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    metrics::counter!("payglot_api_requests_total", "merchant" => merchant, "operation" => operation, "outcome" => outcome).increment(1);
    match result {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    }
}

/// Every endpoint of the merchant API as (method, path template): the same list as
/// `openapi.yaml` (a test holds them together) and as `endpoint` below.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments/{out_trade_no}"),
    ("POST", "/v1/payments/{out_trade_no}/close"),
    ("POST", "/v1/payments/{out_trade_no}/refunds"),
    ("GET", "/v1/payments/{payment_id}/checkout"),
    ("GET", "/v1/refunds/{out_refund_no}"),
    ("POST", "/v1/payouts"),
    ("GET", "/v1/payouts/{out_payout_no}"),
    ("GET", "/v1/balance"),
    ("GET", "/v1/payment-methods"),
    ("GET", "/v1/identity"),
    ("GET", "/v1/card-link"),
];

/// The OpenAPI 3 document of the merchant API (also served on the admin listener).
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

enum Endpoint {
    CreatePayment,
    QueryPayment(String),
    ClosePayment(String),
    CreateRefund(String),
    QueryRefund(String),
    CreatePayout,
    QueryPayout(String),
    Balance,
    PaymentMethods,
    Identity,
    CardLink,
    Checkout(String),
}

impl Endpoint {
    fn name(&self) -> &'static str {
        match self {
            Endpoint::CreatePayment => "create_payment",
            Endpoint::QueryPayment(_) => "query_payment",
            Endpoint::ClosePayment(_) => "close_payment",
            Endpoint::CreateRefund(_) => "create_refund",
            Endpoint::QueryRefund(_) => "query_refund",
            Endpoint::CreatePayout => "create_payout",
            Endpoint::QueryPayout(_) => "query_payout",
            Endpoint::Balance => "balance",
            Endpoint::PaymentMethods => "payment_methods",
            Endpoint::Identity => "identity",
            Endpoint::CardLink => "card_link",
            Endpoint::Checkout(_) => "checkout",
        }
    }
}

/// Which endpoint a method and path name (for the fuzz targets, too).
pub(crate) fn endpoint_name(method: &str, path: &str) -> Result<&'static str, ApiError> {
    endpoint(method, path).map(|e| e.name())
}

fn endpoint(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let id = |s: &str| s.to_string();
    let found = match (method, segments.as_slice()) {
        ("POST", ["v1", "payments"]) => Some(Endpoint::CreatePayment),
        ("GET", ["v1", "payments", no]) if !no.is_empty() => Some(Endpoint::QueryPayment(id(no))),
        ("POST", ["v1", "payments", no, "close"]) => Some(Endpoint::ClosePayment(id(no))),
        ("POST", ["v1", "payments", no, "refunds"]) => Some(Endpoint::CreateRefund(id(no))),
        ("GET", ["v1", "payments", pid, "checkout"]) => Some(Endpoint::Checkout(id(pid))),
        ("GET", ["v1", "refunds", no]) if !no.is_empty() => Some(Endpoint::QueryRefund(id(no))),
        ("POST", ["v1", "payouts"]) => Some(Endpoint::CreatePayout),
        ("GET", ["v1", "payouts", no]) if !no.is_empty() => Some(Endpoint::QueryPayout(id(no))),
        ("GET", ["v1", "balance"]) => Some(Endpoint::Balance),
        ("GET", ["v1", "payment-methods"]) => Some(Endpoint::PaymentMethods),
        ("GET", ["v1", "identity"]) => Some(Endpoint::Identity),
        ("GET", ["v1", "card-link"]) => Some(Endpoint::CardLink),
        _ => None,
    };
    if let Some(e) = found {
        return Ok(e);
    }
    let known_path = matches!(
        segments.as_slice(),
        ["v1", "payments"]
            | ["v1", "payments", _]
            | ["v1", "payments", _, "close" | "refunds" | "checkout"]
            | ["v1", "refunds", _]
            | ["v1", "payouts"]
            | ["v1", "payouts", _]
            | ["v1", "balance"]
            | ["v1", "payment-methods"]
            | ["v1", "identity"]
            | ["v1", "card-link"]
    );
    if known_path {
        Err(ApiError::method_not_allowed(format!("{method} is not allowed on {path}")))
    } else {
        Err(ApiError::not_found(format!("no such endpoint: {method} {path}")))
    }
}

async fn dispatch(gateway: &Gateway, request: &HttpIn) -> Result<Reply, ApiError> {
    let endpoint = endpoint(&request.method, &request.path)?;
    if let Endpoint::Checkout(payment_id) = &endpoint {
        // Unsigned: the payer's browser opens it; the payment_id is unguessable.
        return payments::checkout(gateway, payment_id).await;
    }
    // The request runs against the config it started with, even if a reload swaps it.
    let live = gateway.config.current();
    let now = now_unix();
    let headers = auth::SignedHeaders {
        merchant: request.header("payglot-merchant"),
        timestamp: request.header("payglot-timestamp"),
        nonce: request.header("payglot-nonce"),
        signature: request.header("payglot-signature"),
    };
    let merchant_id = auth::authenticate(
        &live,
        gateway.store.as_ref(),
        headers,
        &request.method,
        &request.path_and_query(),
        &request.body,
        now,
    )
    .await?;
    let merchant = live.merchant(&merchant_id).expect("authenticated merchant exists");
    let body = &request.body;
    match endpoint {
        Endpoint::CreatePayment => payments::create(gateway, &live, merchant, body, now).await,
        Endpoint::QueryPayment(no) => payments::query(gateway, &live, merchant, &no, now).await,
        Endpoint::ClosePayment(no) => payments::close(gateway, &live, merchant, &no, now).await,
        Endpoint::CreateRefund(no) => refunds::create(gateway, &live, merchant, &no, body, now).await,
        Endpoint::QueryRefund(no) => refunds::query(gateway, &live, merchant, &no, now).await,
        Endpoint::CreatePayout => payouts::create(gateway, &live, merchant, body, now).await,
        Endpoint::QueryPayout(no) => payouts::query(gateway, &live, merchant, &no, now).await,
        Endpoint::Balance => accounts::balance(gateway, &live, merchant, &request.query, now).await,
        Endpoint::PaymentMethods => accounts::payment_methods(gateway, &live, merchant, &request.query, now).await,
        Endpoint::Identity => accounts::identity(gateway, &live, merchant, &request.query, now).await,
        Endpoint::CardLink => accounts::card_link(gateway, &live, merchant, &request.query, now).await,
        Endpoint::Checkout(_) => unreachable!("answered above"),
    }
}

fn percent_decode(segment: &str) -> String {
    // form_urlencoded would also turn '+' into a space; path segments keep '+'.
    let escaped = segment.replace('+', "%2B");
    form_urlencoded::parse(format!("x={escaped}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Maps a dialect's refusal onto the merchant API error.
pub fn dialect_error(account: &str, e: DialectError) -> ApiError {
    match e {
        DialectError::Rejected { code, message, kind } => match kind {
            Refusal::Generic => ApiError::provider_error(account, &code, &message),
            Refusal::InvalidState => {
                let mut err = ApiError::invalid_state(format!("provider account {account} refused: {message}"));
                err.provider = Some(account.to_string());
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
            Refusal::AmountExceeded => {
                let mut err =
                    ApiError::amount_exceeds_refundable(format!("provider account {account} refused: {message}"));
                err.provider = Some(account.to_string());
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
            Refusal::NotEnabled => {
                let mut err = ApiError::unsupported(
                    account,
                    format!("provider account {account} has not enabled this: {message}"),
                );
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
        },
        DialectError::BadMessage(m) => {
            let mut err = ApiError::provider_error(account, "bad_answer", &m);
            err.message =
                format!("provider account {account} gave an answer payglot could not verify; query for the outcome");
            err
        }
        DialectError::Unsupported(m) => ApiError::unsupported(account, format!("provider account {account}: {m}")),
        DialectError::Invalid(m) => ApiError::invalid_request(format!("provider account {account}: {m}")),
        DialectError::UnknownOrder(m) => {
            let mut err = ApiError::provider_error(account, "unknown_order", &m);
            err.message = format!("provider account {account} says it does not know this order");
            err
        }
    }
}

/// A provider account as a handler needs it: its settings and its dialect.
pub struct Account<'a> {
    pub name: &'a str,
    pub config: &'a ProviderConfig,
    pub dialect: Arc<dyn Dialect>,
    /// Whether calls count for the account's circuit breaker (not for queries prompted by
    /// unverified messages).
    pub counted: bool,
}

/// The account `name` in the live config, or an error naming it.
pub fn account<'a>(live: &'a LiveConfig, name: &'a str) -> Result<Account<'a>, ApiError> {
    match (live.config.providers.get(name), live.dialect(name)) {
        (Some(config), Some(dialect)) => Ok(Account { name, config, dialect: dialect.clone(), counted: true }),
        _ => Err(ApiError::provider_unavailable(
            Some(name),
            format!("provider account {name} is no longer defined in routes.yaml"),
        )),
    }
}

/// Sends one dialect request to an account. Errors are the merchant API's 503s.
pub async fn send(
    gateway: &Gateway,
    account: &Account<'_>,
    request: &ProviderRequest,
) -> Result<Answer, (UpstreamError, ApiError)> {
    let c = account.config;
    gateway.upstream.call_provider_with(c, request, account.counted).await.map_err(|e| {
        let api = ApiError::provider_unavailable(Some(account.name), format!("provider account {}: {e}", account.name));
        (e, api)
    })
}

/// Sends a dialect's request to an account and reads the verified answer, mapping every
/// failure onto the merchant API error; with a `subject` the call goes on its timeline.
pub async fn ask<T>(
    gateway: &Gateway,
    account: &Account<'_>,
    call: Result<ProviderRequest, DialectError>,
    subject: Option<&str>,
    read: impl FnOnce(&dyn Dialect, ProviderResponse<'_>) -> Result<T, DialectError>,
) -> Result<T, ApiError> {
    let call = call.map_err(|e| dialect_error(account.name, e))?;
    let answer = match subject {
        Some(s) => send_about(gateway, account, &call, s).await,
        None => send(gateway, account, &call).await,
    }
    .map_err(|(_, e)| e)?;
    read(account.dialect.as_ref(), ProviderResponse { status: answer.status, body: &answer.body })
        .map_err(|e| dialect_error(account.name, e))
}

/// `send`, noting the call (operation, HTTP status or error, latency) on `subject`'s timeline.
pub async fn send_about(
    gateway: &Gateway,
    account: &Account<'_>,
    request: &ProviderRequest,
    subject: &str,
) -> Result<Answer, (UpstreamError, ApiError)> {
    let started = std::time::Instant::now();
    let result = send(gateway, account, request).await;
    note_call(gateway, subject, account.name, request, result.as_ref().map_err(|(e, _)| e), started);
    result
}

/// Notes one provider call on `subject`'s timeline.
pub fn note_call(
    gateway: &Gateway,
    subject: &str,
    account: &str,
    request: &ProviderRequest,
    result: Result<&Answer, &UpstreamError>,
    started: std::time::Instant,
) {
    let operation = request.path.split('?').next().unwrap_or("");
    // A payment polled many times a second: the same answer is noted once a second.
    if let Ok(a) = result {
        let mut recent = gateway.recent_calls.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.first_in_a_while((subject, account, operation, a.status), std::time::Instant::now()) {
            return;
        }
    }
    let outcome = match result {
        Ok(a) => serde_json::json!({"status": a.status}),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    gateway.note(
        subject,
        "upstream",
        serde_json::json!({"provider": account, "operation": operation, "outcome": outcome, "latency_ms": started.elapsed().as_millis() as u64}),
    );
}

/// Checks a merchant's order number (`out_trade_no`, `out_refund_no`, `out_payout_no`).
pub fn check_order_number(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::invalid_request(format!(
            "{field}: 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The notify_url of a request, else the merchant's default; one of them is required.
pub fn notify_url(requested: &Option<String>, merchant: &MerchantConfig) -> Result<String, ApiError> {
    requested.clone().or_else(|| merchant.notify_url.clone()).ok_or_else(|| {
        ApiError::invalid_request("notify_url: required (no default notify_url is configured for this merchant)")
    })
}

/// Whether `account` is one this merchant's routes use (merchants only reach their accounts).
pub fn merchant_uses(merchant: &MerchantConfig, account: &str) -> bool {
    merchant.routes.iter().any(|r| {
        r.fallback.iter().any(|f| f == account)
            || match &r.target {
                RouteTarget::One(a) => a == account,
                RouteTarget::Split(parts) => parts.iter().any(|(a, _)| a == account),
            }
    })
}

/// The `provider` query parameter, checked against the merchant's accounts.
pub fn provider_param(merchant: &MerchantConfig, query: &str) -> Result<String, ApiError> {
    let provider = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "provider")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::invalid_request("provider: query parameter required (a provider account id)"))?;
    if !merchant_uses(merchant, &provider) {
        return Err(ApiError::not_found(format!("provider account {provider:?} is not one of this merchant's")));
    }
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_answered_and_documented_and_nothing_else() {
        let doc: serde_yaml::Value = serde_yaml::from_str(OPENAPI).expect("openapi.yaml parses");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_mapping().unwrap() {
            for (method, _) in item.as_mapping().unwrap() {
                documented.push((method.as_str().unwrap().to_ascii_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        routes.sort();
        assert_eq!(routes, documented, "ROUTES and openapi.yaml list the same endpoints");
        for (method, template) in ROUTES {
            let path = template
                .replace("{out_trade_no}", "T1")
                .replace("{payment_id}", "P1")
                .replace("{out_refund_no}", "R1")
                .replace("{out_payout_no}", "W1");
            assert!(endpoint(method, &path).is_ok(), "{method} {path} is answered");
            let other = if *method == "GET" { "DELETE" } else { "PUT" };
            assert_eq!(endpoint(other, &path).err().map(|e| e.status), Some(405), "{other} {path}");
        }
        assert_eq!(endpoint("GET", "/v1/nothing").err().map(|e| e.status), Some(404));
        assert_eq!(endpoint("GET", "/v1/payments/T1/nothing").err().map(|e| e.status), Some(404));
    }
}

//! The merchant API (`/v1`): authentication, which handler an endpoint is, and the metric of
//! every request. The handlers are thin: they read the request and answer the core's result.

pub mod accounts;
pub mod auth;
pub mod payments;
pub mod payouts;
pub mod refunds;

use crate::app::Gateway;
use crate::config::MerchantConfig;
use crate::core::ask::merchant_uses;
use crate::core::error::ApiError;
use crate::http::{HttpIn, Reply};
use crate::model::now_unix;

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
pub const OPENAPI: &str = include_str!("../../../openapi.yaml");

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
        return crate::doors::checkout::checkout(gateway, payment_id).await;
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

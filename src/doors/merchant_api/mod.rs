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

/// Handles one `/v1/...` request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Reply {
    let result = dispatch(gateway, request).await;
    let operation = endpoint(&request.method, &request.path).map(|e| e.name()).unwrap_or("unknown");
    crate::http::note_operation("merchant_api", operation);
    // Only configured merchants become label values: a header can say anything.
    let merchant = request
        .header("payglot-merchant")
        .filter(|m| gateway.config.current().merchant(m).is_some())
        .unwrap_or("unknown")
        .to_string();
    if merchant != "unknown" {
        crate::http::note_merchant(&merchant);
    }
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    metrics::counter!("payglot_api_requests_total", "merchant" => merchant, "operation" => operation, "outcome" => outcome).increment(1);
    match result {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    }
}

/// Reads a JSON request body; a mistake is named by its field path, and an amount that is not
/// an integer (`"19.80"`, `19.8`) is told the fen rule with what was sent.
pub fn read_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        if path == "amount" || path.ends_with(".amount") {
            // The requests' amounts are top-level fields.
            let sent = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("amount").map(|a| a.to_string()))
                .unwrap_or_else(|| "something else".into());
            return ApiError::invalid_request(format!("{path}: {}, not {sent}", crate::money::FEN_RULE));
        }
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::invalid_request(format!("body is not a valid {what}: {inner}"))
        } else {
            ApiError::invalid_request(format!("body is not a valid {what}: {path}: {inner}"))
        }
    })
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
#[cfg(any(test, feature = "test-support"))]
pub(crate) fn endpoint_name(method: &str, path: &str) -> Result<&'static str, ApiError> {
    endpoint(method, path).map(|e| e.name())
}

/// The router of `ROUTES`: a path template (with its parameter named `id` for matchit, which
/// wants one name per position) to the template as listed.
fn router() -> &'static matchit::Router<&'static str> {
    static ROUTER: std::sync::OnceLock<matchit::Router<&'static str>> = std::sync::OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut r = matchit::Router::new();
        for (_, template) in ROUTES {
            let normalized: String = template
                .split('/')
                .map(|seg| if seg.starts_with('{') { "{id}" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            // Several methods share a path: the first insertion wins, the value is the template.
            let _ = r.insert(normalized, *template);
        }
        r
    })
}

/// The methods a merchant API path takes (for a 405's `Allow`), if the path is one.
pub fn allowed_methods(path: &str) -> Option<String> {
    let template = *router().at(path).ok()?.value;
    Some(ROUTES.iter().filter(|(_, t)| *t == template).map(|(m, _)| *m).collect::<Vec<_>>().join(", "))
}

fn endpoint(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    let Ok(found) = router().at(path) else {
        return Err(ApiError::not_found(format!("no such endpoint: {method} {path}")));
    };
    let template = *found.value;
    let id =
        found.params.get("id").map(|raw| percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned());
    let id = || id.clone().unwrap_or_default();
    let endpoint = match (method, template) {
        ("POST", "/v1/payments") => Endpoint::CreatePayment,
        ("GET", "/v1/payments/{out_trade_no}") => Endpoint::QueryPayment(id()),
        ("POST", "/v1/payments/{out_trade_no}/close") => Endpoint::ClosePayment(id()),
        ("POST", "/v1/payments/{out_trade_no}/refunds") => Endpoint::CreateRefund(id()),
        ("GET", "/v1/payments/{payment_id}/checkout") => Endpoint::Checkout(id()),
        ("GET", "/v1/refunds/{out_refund_no}") => Endpoint::QueryRefund(id()),
        ("POST", "/v1/payouts") => Endpoint::CreatePayout,
        ("GET", "/v1/payouts/{out_payout_no}") => Endpoint::QueryPayout(id()),
        ("GET", "/v1/balance") => Endpoint::Balance,
        ("GET", "/v1/payment-methods") => Endpoint::PaymentMethods,
        ("GET", "/v1/identity") => Endpoint::Identity,
        ("GET", "/v1/card-link") => Endpoint::CardLink,
        _ => {
            // The path is known, the method is not.
            let allowed = allowed_methods(path).unwrap_or_default();
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not allowed on {path} (allowed: {allowed})"
            )));
        }
    };
    Ok(endpoint)
}

async fn dispatch(gateway: &Gateway, request: &HttpIn) -> Result<Reply, ApiError> {
    let endpoint = endpoint(&request.method, &request.path)?;
    if let Endpoint::Checkout(payment_id) = &endpoint {
        // Unsigned: the payer's browser opens it by the payment_id, which is unguessable. A
        // signed request names the merchant's out_trade_no, like every other payment path
        // (an out_trade_no is guessable, so it alone never opens a payer's page).
        if request.header("payglot-signature").is_none() {
            return crate::doors::checkout::checkout(gateway, payment_id).await;
        }
    }
    // The request runs against the config it started with, even if a reload swaps it.
    let live = gateway.config.current();
    let now = gateway.clock.now();
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
        // The two hot paths' futures are boxed, so the larger of them is not copied into this one.
        Endpoint::CreatePayment => Box::pin(payments::create(gateway, &live, merchant, body, now)).await,
        Endpoint::QueryPayment(no) => Box::pin(payments::query(gateway, &live, merchant, &no, now)).await,
        Endpoint::ClosePayment(no) => payments::close(gateway, &live, merchant, &no, now).await,
        Endpoint::CreateRefund(no) => refunds::create(gateway, &live, merchant, &no, body, now).await,
        Endpoint::QueryRefund(no) => refunds::query(gateway, &live, merchant, &no, now).await,
        Endpoint::CreatePayout => payouts::create(gateway, &live, merchant, body, now).await,
        Endpoint::QueryPayout(no) => payouts::query(gateway, &live, merchant, &no, now).await,
        Endpoint::Balance => accounts::balance(gateway, &live, merchant, &request.query, now).await,
        Endpoint::PaymentMethods => accounts::payment_methods(gateway, &live, merchant, &request.query, now).await,
        Endpoint::Identity => accounts::identity(gateway, &live, merchant, &request.query, now).await,
        Endpoint::CardLink => accounts::card_link(gateway, &live, merchant, &request.query, now).await,
        Endpoint::Checkout(no) => payments::checkout(gateway, merchant, &no).await,
    }
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
        let doc: serde_json::Value = serde_saphyr::from_str(OPENAPI).expect("openapi.yaml parses");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.to_ascii_uppercase(), path.clone()));
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

//! The merchant API (`/v1`): authentication, routing of endpoints to handlers, error mapping.
//! This is the core every door calls.

pub mod auth;
pub mod error;
pub mod payments;

use crate::model::now_unix;
use crate::server::{Gateway, HttpIn, Reply};
use error::ApiError;

/// Handles one `/v1/...` request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Reply {
    match dispatch(gateway, request).await {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    }
}

enum Endpoint<'a> {
    CreatePayment,
    QueryPayment(&'a str),
}

fn endpoint<'a>(method: &str, path: &'a str) -> Result<Endpoint<'a>, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "payments"]) => Ok(Endpoint::CreatePayment),
        ("GET", ["v1", "payments", id]) if !id.is_empty() => Ok(Endpoint::QueryPayment(id)),
        (_, ["v1", "payments"]) | (_, ["v1", "payments", _]) => Err(ApiError::method_not_allowed(
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::not_found(format!(
            "no such endpoint: {method} {path}"
        ))),
    }
}

async fn dispatch(gateway: &Gateway, request: &HttpIn) -> Result<Reply, ApiError> {
    let endpoint = endpoint(&request.method, &request.path)?;
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
    let merchant = live
        .merchant(&merchant_id)
        .expect("authenticated merchant exists");
    match endpoint {
        Endpoint::CreatePayment => {
            payments::create(gateway, &live, merchant, &request.body, now).await
        }
        Endpoint::QueryPayment(out_trade_no) => {
            let out_trade_no = percent_decode(out_trade_no);
            payments::query(gateway, &live, merchant, &out_trade_no, now).await
        }
    }
}

fn percent_decode(segment: &str) -> String {
    // form_urlencoded would also turn '+' into a space; path segments keep '+'.
    let escaped = segment.replace('+', "%2B");
    form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

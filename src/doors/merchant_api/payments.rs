//! `POST /v1/payments`, `GET /v1/payments/{out_trade_no}` and its close: the merchant API's
//! shape around `core::payments`.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::error::ApiError;
use crate::core::payments::{close_payment, create_payment, current_state, payment_of, CreatePaymentRequest};
use crate::http::Reply;

pub async fn create(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    body: &[u8],
    now: i64,
) -> Result<Reply, ApiError> {
    let request: CreatePaymentRequest = super::read_body(body, "payment request")?;
    let payment = create_payment(gateway, live, merchant, &request, None, now).await?;
    Ok(Reply::json_of(200, &payment.merchant_view()))
}

pub async fn query(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let payment = payment_of(gateway, merchant, out_trade_no).await?;
    // When the provider cannot tell, the stored state is the answer, with the reason, so the
    // merchant sees the provider is down rather than a silently stale "pending".
    match current_state(gateway, live, payment, now).await {
        (p, None) => Ok(Reply::json_of(200, &p.merchant_view())),
        (p, Some(reason)) => {
            let mut json = p.to_merchant_json();
            json["provider_error"] = serde_json::json!({"code": "provider_unavailable", "message": reason});
            Ok(Reply::json(200, &json))
        }
    }
}

/// `POST /v1/payments/{out_trade_no}/close`: closes an unpaid payment at its provider, then
/// locally (with a `payment.closed` event). Closing a closed payment answers it again.
pub async fn close(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let payment = payment_of(gateway, merchant, out_trade_no).await?;
    Ok(Reply::json(200, &close_payment(gateway, live, payment, now).await?.to_merchant_json()))
}

/// `GET /v1/payments/{out_trade_no}/checkout`, signed: the checkout page of the merchant's
/// payment (the unsigned form takes the payment_id, see `doors::checkout`).
pub async fn checkout(gateway: &Gateway, merchant: &MerchantConfig, out_trade_no: &str) -> Result<Reply, ApiError> {
    let payment = payment_of(gateway, merchant, out_trade_no).await?;
    crate::doors::checkout::checkout(gateway, &payment.payment_id).await
}

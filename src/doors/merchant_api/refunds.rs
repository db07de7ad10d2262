//! `POST /v1/payments/{out_trade_no}/refunds` and `GET /v1/refunds/{out_refund_no}`.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::error::ApiError;
use crate::core::refunds::{create_refund, refresh_refund, CreateRefundRequest};
use crate::http::Reply;
use crate::model::TransferStatus;

pub async fn create(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    body: &[u8],
    now: i64,
) -> Result<Reply, ApiError> {
    let request: CreateRefundRequest = super::read_body(body, "refund request")?;
    let refund = create_refund(gateway, live, merchant, out_trade_no, &request, now).await?;
    Ok(Reply::json(200, &refund.to_merchant_json()))
}

pub async fn query(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_refund_no: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let refund = gateway
        .store
        .refund_by_out_no(&merchant.id, out_refund_no)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no refund with out_refund_no {out_refund_no:?}")))?;
    if refund.status != TransferStatus::Pending {
        return Ok(Reply::json(200, &refund.to_merchant_json()));
    }
    let current = refresh_refund(gateway, live, &refund, now).await.unwrap_or(refund);
    Ok(Reply::json(200, &current.to_merchant_json()))
}

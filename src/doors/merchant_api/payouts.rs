//! `POST /v1/payouts` and `GET /v1/payouts/{out_payout_no}` (代付).

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::error::ApiError;
use crate::core::payouts::{create_payout, refresh_payout, CreatePayoutRequest};
use crate::http::Reply;
use crate::model::TransferStatus;

pub async fn create(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    body: &[u8],
    now: i64,
) -> Result<Reply, ApiError> {
    let request: CreatePayoutRequest = super::read_body(body, "payout request")?;
    let payout = create_payout(gateway, live, merchant, &request, now).await?;
    Ok(Reply::json(200, &payout.to_merchant_json()))
}

pub async fn query(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_payout_no: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let payout = gateway
        .store
        .payout_by_out_no(&merchant.id, out_payout_no)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no payout with out_payout_no {out_payout_no:?}")))?;
    if payout.status != TransferStatus::Pending {
        return Ok(Reply::json(200, &payout.to_merchant_json()));
    }
    let current = refresh_payout(gateway, live, &payout, now).await.unwrap_or(payout);
    Ok(Reply::json(200, &current.to_merchant_json()))
}

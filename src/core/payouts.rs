//! `POST /v1/payouts` and `GET /v1/payouts/{out_payout_no}` (代付).
//!
//! The request names the provider account (`provider`, one of the merchant's accounts) or
//! leaves it to payglot, which takes the first of the merchant's accounts whose dialect offers
//! payouts. The payout is written as `pending` before the provider is called; its callback
//! (or a query) settles it with a `payout.succeeded` / `payout.failed` event. Account numbers
//! are masked in every answer and event.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::ask::{account, ask, check_order_number, dialect_error, merchant_uses, notify_url, send_about};
use crate::core::error::ApiError;
use crate::core::refunds::Unanswered;
use crate::core::settle::apply_payout_report;
use crate::dialects::{DialectError, ProviderResponse};
use crate::model::{new_transfer_id, Payee, Payout, TransferStatus};
use crate::store::PayoutInserted;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePayoutRequest {
    pub out_payout_no: String,
    pub amount: i64,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub payee: Payee,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub notify_url: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
}

fn default_currency() -> String {
    "CNY".into()
}

/// Creates a payout (代付) at the merchant's account that offers them, or the one it names.
pub async fn create_payout(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    request: &CreatePayoutRequest,
    now: i64,
) -> Result<Payout, ApiError> {
    check_order_number("out_payout_no", &request.out_payout_no)?;
    if let Some(problem) = crate::money::amount_problem(request.amount) {
        return Err(ApiError::invalid_request(problem));
    }
    let p = &request.payee;
    if p.account_name.trim().is_empty() || p.account_no.trim().is_empty() {
        return Err(ApiError::invalid_request("payee: account_name and account_no are required"));
    }
    if !["bank", "wechat", "alipay", "other"].contains(&p.account_type.as_str()) {
        return Err(ApiError::invalid_request("payee.account_type: bank, wechat, alipay or other"));
    }
    let notify_url = notify_url(&request.notify_url, merchant)?;
    live.check_notify_url(merchant, &notify_url)
        .map_err(|e| ApiError::invalid_request(format!("notify_url: {notify_url} {e}")))?;
    let provider = match &request.provider {
        Some(name) if merchant_uses(merchant, name) => name.clone(),
        Some(name) => {
            return Err(ApiError::not_found(format!("provider account {name:?} is not one of this merchant's")))
        }
        None => merchant
            .routes
            .iter()
            .flat_map(|r| r.target.accounts().into_iter().map(str::to_string).chain(r.fallback.iter().cloned()))
            .find(|a| {
                live.config
                    .providers
                    .get(a)
                    .is_some_and(|p| crate::dialects::spec(&p.dialect).is_some_and(|d| d.payouts))
            })
            .ok_or_else(|| {
                ApiError::unsupported("(none)", "none of this merchant's provider accounts offers payouts")
            })?,
    };
    let payout = Payout {
        payout_id: new_transfer_id('W', now),
        out_payout_no: request.out_payout_no.clone(),
        merchant_id: merchant.id.clone(),
        amount: request.amount,
        currency: request.currency.to_ascii_uppercase(),
        payee: request.payee.clone(),
        remark: request.remark.clone(),
        status: TransferStatus::Pending,
        provider: provider.clone(),
        provider_payout_no: None,
        notify_url: Some(notify_url),
        created_at: now,
        updated_at: now,
    };
    let account = account(live, &provider)?;
    let callback_url = format!("{}/callbacks/{provider}", live.config.public_url);
    let call =
        account.dialect.create_payout(&payout, &callback_url, now).map_err(|e| dialect_error(account.name, e))?;
    let fingerprint = hex::encode(Sha256::digest(serde_json::to_vec(request).expect("serializes")));
    match gateway.store.insert_payout(&payout, &fingerprint).await? {
        PayoutInserted::New => {}
        PayoutInserted::Existing(existing, fp) if fp == fingerprint => return Ok(*existing),
        PayoutInserted::Existing(..) => {
            return Err(ApiError::duplicate(
                crate::core::error::ErrorCode::DuplicateOutPayoutNo,
                format!("out_payout_no {:?} was already used for a different payout", request.out_payout_no),
            ))
        }
    }
    let outcome = match send_about(gateway, &account, &call, &payout.payout_id).await {
        Err((u, e)) if u.not_sent() => {
            gateway.store.settle_payout(&payout.payout_id, TransferStatus::Failed, None, false, now).await?;
            return Err(e);
        }
        Err((_, e)) => return Err(e),
        Ok(answer) => {
            account.dialect.read_payout(&payout, ProviderResponse { status: answer.status, body: &answer.body })
        }
    };
    match outcome {
        Ok(report) => {
            let updated = apply_payout_report(gateway, &payout, &report, now)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(updated)
        }
        Err(e @ DialectError::Rejected { .. }) => {
            gateway.store.settle_payout(&payout.payout_id, TransferStatus::Failed, None, false, now).await?;
            Err(dialect_error(account.name, e))
        }
        Err(e) => Err(dialect_error(account.name, e)),
    }
}

/// Asks a pending payout's provider about it and applies a verified answer (with its event).
pub async fn refresh_payout(
    gateway: &Gateway,
    live: &LiveConfig,
    payout: &Payout,
    now: i64,
) -> Result<Payout, Unanswered> {
    let account = account(live, &payout.provider).map_err(|_| Unanswered::NotNow)?;
    let call = account.dialect.query_payout(payout, now).map_err(|e| Unanswered::of(&e))?;
    let report = ask(gateway, &account, Ok(call), Some(&payout.payout_id), |d, a| d.read_payout_query(payout, a))
        .await
        .map_err(|e| {
            tracing::warn!(payout_id = %payout.payout_id, error = %e.message, detail = e.provider_message.as_deref().unwrap_or("-"), "payout query gave no verified answer");
            Unanswered::NotNow
        })?;
    apply_payout_report(gateway, payout, &report, now).await.map_err(|_| Unanswered::NotNow)
}

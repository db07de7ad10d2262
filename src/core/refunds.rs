//! `POST /v1/payments/{out_trade_no}/refunds` and `GET /v1/refunds/{out_refund_no}`.
//!
//! A refund goes to the provider account of its payment. It is checked and written as
//! `pending` before the provider is called, inside one store transaction that never lets the
//! refunds of a payment add up to more than was paid (refunds in progress count). Idempotent on
//! `out_refund_no`: the same body returns the stored refund; a different one is `409
//! duplicate_out_refund_no`. A provider that refuses leaves the refund `failed` (the merchant is
//! told in the answer); a timeout leaves it `pending` for a later query.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::ask::{account, ask, check_order_number, dialect_error, send_about};
use crate::core::error::ApiError;
use crate::dialects::{DialectError, ProviderResponse, RefundReport};
use crate::model::{new_transfer_id, Refund, TransferStatus};
use crate::store::RefundInserted;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    pub out_refund_no: String,
    /// Fen, a positive JSON integer.
    pub amount: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Refunds part or all of a paid payment at its provider account.
pub async fn create_refund(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    request: &CreateRefundRequest,
    now: i64,
) -> Result<Refund, ApiError> {
    check_order_number("out_refund_no", &request.out_refund_no)?;
    if let Some(problem) = crate::money::amount_problem(request.amount) {
        return Err(ApiError::invalid_request(problem));
    }
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > 100) {
        return Err(ApiError::invalid_request("reason: at most 100 characters"));
    }
    let payment = gateway
        .store
        .payment_by_out_trade_no(&merchant.id, out_trade_no)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no payment with out_trade_no {out_trade_no:?}")))?;
    let refund = Refund {
        refund_id: new_transfer_id('R', now),
        out_refund_no: request.out_refund_no.clone(),
        merchant_id: merchant.id.clone(),
        payment_id: payment.payment_id.clone(),
        out_trade_no: payment.out_trade_no.clone(),
        amount: request.amount,
        reason: request.reason.clone(),
        status: TransferStatus::Pending,
        provider: payment.provider.clone(),
        provider_refund_no: None,
        created_at: now,
        updated_at: now,
    };
    let account = account(live, &payment.provider)?;
    // Built first: a provider without refunds is told before anything is written.
    let call = account.dialect.refund(&payment, &refund, now).map_err(|e| dialect_error(account.name, e))?;
    let fingerprint =
        hex::encode(Sha256::digest(format!("{out_trade_no}\n{}", serde_json::to_string(request).expect("serializes"))));
    match gateway.store.insert_refund(&refund, &fingerprint).await? {
        RefundInserted::New => {}
        RefundInserted::Existing(existing, fp) if fp == fingerprint => return Ok(*existing),
        RefundInserted::Existing(..) => {
            return Err(ApiError::duplicate(
                crate::core::error::ErrorCode::DuplicateOutRefundNo,
                format!("out_refund_no {:?} was already used for a different refund", request.out_refund_no),
            ))
        }
        RefundInserted::NotPaid(status) => {
            return Err(ApiError::invalid_state(format!(
                "payment {out_trade_no:?} is {status}; only a paid payment can be refunded"
            )))
        }
        RefundInserted::Exceeds(refundable) => {
            return Err(ApiError::amount_exceeds_refundable(format!(
                "refund of {} fen is more than the {refundable} fen still refundable",
                request.amount
            )))
        }
    }
    let outcome = match send_about(gateway, &account, &call, &payment.payment_id).await {
        Err((u, e)) if u.not_sent() => {
            // Never reached the provider: the refund did not happen.
            gateway.store.settle_refund(&refund.refund_id, TransferStatus::Failed, None, false, now).await?;
            return Err(e);
        }
        Err((_, e)) => return Err(e),
        Ok(answer) => {
            account.dialect.read_refund(&refund, ProviderResponse { status: answer.status, body: &answer.body })
        }
    };
    match outcome {
        Ok(RefundReport { provider_refund_no, status }) => {
            let settled = gateway
                .store
                .settle_refund(&refund.refund_id, status, provider_refund_no.as_deref(), true, now)
                .await?;
            gateway.outbox_wake.notify_one();
            Ok(settled)
        }
        Err(e @ DialectError::Rejected { .. }) => {
            gateway.store.settle_refund(&refund.refund_id, TransferStatus::Failed, None, false, now).await?;
            Err(dialect_error(account.name, e))
        }
        // An answer payglot cannot verify: the refund may have happened; it stays pending.
        Err(e) => Err(dialect_error(account.name, e)),
    }
}

/// Why a pending refund or payout was not settled by asking its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The provider offers no query for it: the stored state is all there is.
    NoQuery,
    /// It could not tell now (unreachable, unverifiable answer, store down): ask again later.
    NotNow,
}

impl Unanswered {
    /// Why the dialect could not build the query.
    pub(crate) fn of(e: &DialectError) -> Self {
        if matches!(e, DialectError::Unsupported(_)) {
            Unanswered::NoQuery
        } else {
            Unanswered::NotNow
        }
    }
}

/// Asks a pending refund's provider about it and applies a verified answer (with its event).
pub async fn refresh_refund(
    gateway: &Gateway,
    live: &LiveConfig,
    refund: &Refund,
    now: i64,
) -> Result<Refund, Unanswered> {
    let account = account(live, &refund.provider).map_err(|_| Unanswered::NotNow)?;
    let call = account.dialect.query_refund(refund, now).map_err(|e| Unanswered::of(&e))?;
    let report = ask(gateway, &account, Ok(call), Some(&refund.payment_id), |d, a| d.read_refund_query(refund, a))
        .await
        .map_err(|e| {
            tracing::warn!(refund_id = %refund.refund_id, error = %e.message, detail = e.provider_message.as_deref().unwrap_or("-"), "refund query gave no verified answer");
            Unanswered::NotNow
        })?;
    let settled = gateway
        .store
        .settle_refund(&refund.refund_id, report.status, report.provider_refund_no.as_deref(), true, now)
        .await
        .map_err(|_| Unanswered::NotNow)?;
    if settled.status != TransferStatus::Pending {
        gateway.outbox_wake.notify_one();
    }
    Ok(settled)
}

//! Applying a provider's verified word about a payment or payout.
//!
//! Every verified statement from a provider (a callback, a query answer, a create answer that
//! settles at once) goes through `apply_report`: the amount is checked, the status moves
//! forward and the merchant event is written in the same store transaction, and only then is
//! the provider acked. A duplicate or late statement changes nothing and writes no event.

use crate::app::Gateway;
use crate::dialects::{PaymentReport, PayoutReport};
use crate::model::{EventType, Payment, PaymentStatus, Payout, TransferStatus};
use crate::store::{count_anomaly, AnomalyKind, NewAnomaly, Settled, Settlement, StoreError};
use std::fmt;

/// Where a verified provider statement came from (for logs).
#[derive(Debug, Clone, Copy)]
pub enum ReportSource {
    Callback,
    Query,
    CreateAnswer,
}

/// Why a verified statement was not applied.
#[derive(Debug)]
pub enum ReportError {
    /// The statement is about another payment.
    WrongPayment(String),
    /// The provider says a different amount than the order's: never settle on it.
    AmountMismatch {
        expected: i64,
        reported: Option<i64>,
    },
    Store(StoreError),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::WrongPayment(id) => write!(f, "statement is about payment {id}"),
            ReportError::AmountMismatch { expected, reported } => {
                write!(f, "amount {reported:?} fen does not match the order's {expected} fen")
            }
            ReportError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Applies a verified provider statement to a payment. Returns the payment as it now is.
///
/// Amounts: a stated order amount must be the payment's (else nothing is applied). A paid
/// statement is checked against the amount due (`Payment::amount_due`): less paid than due
/// fails the payment with a `payment.amount_mismatch` event carrying both amounts, never
/// `payment.succeeded`; more paid than due succeeds it and is recorded as an anomaly. Both
/// are anomalies for ops (`/admin/anomalies`, reconcile, `payglot_anomalies_total`); either
/// way the provider gets its ack. A paid statement about a payment already failed or closed
/// changes nothing and is recorded too.
pub async fn apply_report(
    gateway: &Gateway,
    payment: &Payment,
    report: &PaymentReport,
    source: ReportSource,
    now: i64,
) -> Result<Payment, ReportError> {
    if report.payment_id != payment.payment_id {
        return Err(ReportError::WrongPayment(report.payment_id.clone()));
    }
    if report.status == PaymentStatus::Pending {
        return Ok(payment.clone());
    }
    // A stated order amount must be the payment's; providers whose messages state none
    // settle the order they were given at creation (see each dialect's module doc).
    if report.amount.is_some_and(|a| a != payment.amount) {
        return Err(ReportError::AmountMismatch { expected: payment.amount, reported: report.amount });
    }
    let mut settlement = Settlement {
        status: report.status,
        provider_trade_no: report.provider_trade_no.clone(),
        paid_amount: report.paid_amount.or(report.amount),
        paid_at: report.paid_at,
        ..Default::default()
    };
    if report.status == PaymentStatus::Succeeded {
        let due = payment.amount_due();
        let paid = settlement.paid_amount.unwrap_or(due);
        let anomaly = |kind| NewAnomaly {
            kind,
            payment_id: payment.payment_id.clone(),
            provider: payment.provider.clone(),
            detail: serde_json::json!({"due": due, "paid": paid, "amount": payment.amount, "source": format!("{source:?}")}),
        };
        if paid < due {
            tracing::warn!(payment_id = %payment.payment_id, due, paid, "less than due was paid: the payment fails");
            settlement.status = PaymentStatus::Failed;
            settlement.paid_amount = Some(paid);
            settlement.event = Some(EventType::PaymentAmountMismatch);
            settlement.anomaly = Some(anomaly(AnomalyKind::Underpaid));
        } else if paid > due {
            tracing::warn!(payment_id = %payment.payment_id, due, paid, "more than due was paid");
            settlement.anomaly = Some(anomaly(AnomalyKind::Overpaid));
        }
    }
    match gateway.store.settle_payment(&payment.payment_id, &settlement, now).await {
        Ok(Settled::Moved(p)) => {
            tracing::info!(payment_id = %p.payment_id, status = %p.status, ?source, "payment settled");
            if let Some(a) = &settlement.anomaly {
                count_anomaly(a);
            }
            gateway.outbox_wake.notify_one();
            Ok(p)
        }
        Ok(Settled::Unchanged(p)) => {
            if report.status == PaymentStatus::Succeeded
                && matches!(p.status, PaymentStatus::Failed | PaymentStatus::Closed)
            {
                let anomaly = NewAnomaly {
                    kind: AnomalyKind::PaidAfterFinal,
                    payment_id: p.payment_id.clone(),
                    provider: p.provider.clone(),
                    detail: serde_json::json!({"status": p.status, "paid": settlement.paid_amount, "source": format!("{source:?}")}),
                };
                note_anomaly(gateway, &anomaly, now).await;
            }
            Ok(p)
        }
        Err(e) => Err(ReportError::Store(e)),
    }
}

/// Records an anomaly (once) and counts it; a store failure only logs, the caller's answer
/// does not depend on it.
pub async fn note_anomaly(gateway: &Gateway, anomaly: &NewAnomaly, now: i64) {
    match gateway.store.record_anomaly(anomaly, now).await {
        Ok(true) => {
            tracing::warn!(payment_id = %anomaly.payment_id, provider = %anomaly.provider, kind = anomaly.kind.as_str(), "anomaly recorded");
            count_anomaly(anomaly);
        }
        Ok(false) => {}
        Err(e) => tracing::error!(payment_id = %anomaly.payment_id, error = %e, "anomaly not recorded"),
    }
}

/// Applies a verified provider statement about a payout: final statuses write the event.
pub async fn apply_payout_report(
    gateway: &Gateway,
    payout: &Payout,
    report: &PayoutReport,
    now: i64,
) -> Result<Payout, ReportError> {
    if report.payout_id != payout.payout_id {
        return Err(ReportError::WrongPayment(report.payout_id.clone()));
    }
    if report.amount.is_some_and(|a| a != payout.amount) {
        return Err(ReportError::AmountMismatch { expected: payout.amount, reported: report.amount });
    }
    if report.status == TransferStatus::Pending
        && (report.provider_payout_no.is_none() || payout.provider_payout_no.is_some())
    {
        return Ok(payout.clone());
    }
    let updated = gateway
        .store
        .settle_payout(&payout.payout_id, report.status, report.provider_payout_no.as_deref(), true, now)
        .await
        .map_err(ReportError::Store)?;
    if updated.status != payout.status {
        tracing::info!(payout_id = %payout.payout_id, status = %updated.status, "payout settled");
        gateway.outbox_wake.notify_one();
    }
    Ok(updated)
}

//! `{public_url}/callbacks/{provider_account}`: a provider tells payglot about a payment.
//! The callback is verified (and decrypted) with that account's credentials; a forged,
//! malformed, misdirected or unknown callback is refused with the dialect's non-ack and
//! logged; a valid one is applied (status and outbox event in one transaction), then acked.
//! When the store is down the reply is a non-ack, so the provider retries.

use crate::app::Gateway;
use crate::core::settle::{apply_payout_report, apply_report, ReportError, ReportSource};
use crate::dialects::{CallbackReply, CallbackReport, InboundHttp, PaymentReport, PayoutReport};
use crate::http::{HttpIn, Reply};

fn reply(r: CallbackReply, status: u16) -> Reply {
    Reply { status, content_type: r.content_type, body: r.body }
}

pub async fn handle(gateway: &Gateway, account: &str, request: &HttpIn) -> Reply {
    let live = gateway.config.current();
    let Some(dialect) = live.dialect(account) else {
        tracing::warn!(account, "callback for an unknown provider account refused");
        count("unknown", "unknown_account");
        return Reply {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            body: "unknown provider account".into(),
        };
    };
    let inbound = InboundHttp {
        method: &request.method,
        query: &request.query,
        content_type: request.header("content-type").unwrap_or(""),
        body: &request.body,
    };
    let now = gateway.clock.now();
    let report = match dialect.read_callback(inbound, now) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(account, error = %e, "callback refused");
            count(account, "bad_message");
            if let Some(payment_id) = dialect.claimed_payment_id(inbound) {
                let detail = serde_json::json!({"provider": account, "verdict": "bad_message", "error": e.to_string()});
                gateway.note(&payment_id, "callback", detail);
                check_claimed_payment(gateway, account, &payment_id, now).await;
            }
            return reply(dialect.callback_reply(false), 400);
        }
    };
    let (outcome, subject, status) = match &report {
        CallbackReport::Payment(r) => {
            let span = crate::telemetry::Span::of_payment("payment.callback", &r.payment_id)
                .attr("provider", account)
                .attr("status", r.status.to_string());
            let outcome = span.run(on_payment(gateway, account, r, now)).await;
            if let Err(why) = outcome {
                span.failed(&format!("not acked: {why:?}"));
            }
            (outcome, r.payment_id.clone(), r.status.to_string())
        }
        CallbackReport::Payout(r) => {
            (on_payout(gateway, account, r, now).await, r.payout_id.clone(), r.status.to_string())
        }
    };
    let verdict = match outcome {
        Ok(()) => "accepted",
        Err(NotAcked::Unknown) => "unknown_order",
        Err(NotAcked::StoreDown) => "store_unavailable",
        Err(NotAcked::Refused) => "refused",
    };
    count(account, verdict);
    gateway.note(&subject, "callback", serde_json::json!({"provider": account, "verdict": verdict, "status": status}));
    match outcome {
        Ok(()) => reply(dialect.callback_reply(true), 200),
        Err(why) => reply(dialect.callback_reply(false), why.status()),
    }
}

/// Counts a callback by provider account and verdict (a refusal's verdict is its request
/// log line's code).
fn count(account: &str, verdict: &'static str) {
    if verdict != "accepted" {
        crate::http::note_error_code(verdict);
    }
    metrics::counter!("payglot_callbacks_total", "provider" => account.to_string(), "verdict" => verdict).increment(1);
}

/// Why a verified callback is not acked: the provider is answered with the dialect's non-ack
/// and this HTTP status, and sends it again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotAcked {
    /// It names no payment (or payout) payglot has.
    Unknown,
    /// It cannot be applied (a foreign account's pending status, an amount or status that does
    /// not fit).
    Refused,
    /// The store is down: the provider's retry will find it up.
    StoreDown,
}

impl NotAcked {
    fn status(self) -> u16 {
        match self {
            NotAcked::Unknown => 404,
            NotAcked::Refused => 400,
            NotAcked::StoreDown => 503,
        }
    }
}

/// Applies a payment callback.
async fn on_payment(gateway: &Gateway, account: &str, report: &PaymentReport, now: i64) -> Result<(), NotAcked> {
    let payment = match gateway.store.payment_by_id(&report.payment_id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            tracing::warn!(account, payment_id = %report.payment_id, "callback for an unknown payment refused");
            return Err(NotAcked::Unknown);
        }
        Err(e) => {
            tracing::error!(account, error = %e, "store unavailable; callback not acked so the provider retries");
            return Err(NotAcked::StoreDown);
        }
    };
    crate::http::note_merchant(&payment.merchant_id);
    if payment.provider != account {
        // Verified with this account's credentials: the payment failed over away from an
        // account that took the order after all (its refusal was not signed). It must not
        // settle the payment (the owner's word does), but ops must see it; once recorded it is
        // acked so the provider stops sending it.
        tracing::warn!(account, payment_id = %payment.payment_id, owner = %payment.provider, status = %report.status, "verified callback from an account that does not own the payment");
        if report.status == crate::model::PaymentStatus::Pending {
            return Err(NotAcked::Refused);
        }
        let anomaly = crate::store::NewAnomaly {
            kind: crate::store::AnomalyKind::ForeignCallback,
            payment_id: payment.payment_id.clone(),
            provider: account.to_string(),
            detail: serde_json::json!({"owner": payment.provider, "status": report.status, "amount": report.amount, "paid": report.paid_amount}),
        };
        return match gateway.store.record_anomaly(&anomaly, now).await {
            Ok(new) => {
                if new {
                    crate::store::count_anomaly(&anomaly);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(account, error = %e, "store unavailable; callback not acked so the provider retries");
                Err(NotAcked::StoreDown)
            }
        };
    }
    match apply_report(gateway, &payment, report, ReportSource::Callback, now).await {
        Ok(_) => Ok(()),
        Err(ReportError::Store(e)) => {
            tracing::error!(account, error = %e, "store unavailable; callback not acked so the provider retries");
            Err(NotAcked::StoreDown)
        }
        Err(e) => {
            tracing::warn!(account, payment_id = %payment.payment_id, error = %e, "callback refused");
            Err(NotAcked::Refused)
        }
    }
}

/// Applies a payout callback.
async fn on_payout(gateway: &Gateway, account: &str, report: &PayoutReport, now: i64) -> Result<(), NotAcked> {
    let payout = match gateway.store.payout_by_id(&report.payout_id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            tracing::warn!(account, payout_id = %report.payout_id, "callback for an unknown payout refused");
            return Err(NotAcked::Unknown);
        }
        Err(e) => {
            tracing::error!(account, error = %e, "store unavailable; callback not acked so the provider retries");
            return Err(NotAcked::StoreDown);
        }
    };
    if payout.provider != account {
        tracing::warn!(account, payout_id = %payout.payout_id, "payout callback from an account that does not own it refused");
        return Err(NotAcked::Refused);
    }
    match apply_payout_report(gateway, &payout, report, now).await {
        Ok(_) => Ok(()),
        Err(ReportError::Store(e)) => {
            tracing::error!(account, error = %e, "store unavailable; callback not acked so the provider retries");
            Err(NotAcked::StoreDown)
        }
        Err(e) => {
            tracing::warn!(account, payout_id = %payout.payout_id, error = %e, "payout callback refused");
            Err(NotAcked::Refused)
        }
    }
}

/// A callback that failed verification named `payment_id`: if that is a pending payment of
/// this account, ask the provider (a verified query) so a real payment is not missed because
/// of a signing quirk; the unverified callback itself changes nothing.
async fn check_claimed_payment(gateway: &Gateway, account: &str, payment_id: &str, now: i64) {
    let Ok(Some(payment)) = gateway.store.payment_by_id(payment_id).await else {
        return;
    };
    if payment.provider != account || payment.status.is_final() {
        return;
    }
    let live = gateway.config.current();
    let outcome = crate::core::payments::refresh_unverified(gateway, &live, &payment, now).await;
    tracing::info!(account, payment_id, status = %outcome.map(|p| p.status.to_string()).unwrap_or_else(|_| "unknown".into()), "queried the provider after an unverifiable callback");
}

//! Payments whose callback never comes: a background job asks the provider account that owns
//! each pending payment at growing intervals (`requery.schedule_secs`, default 1, 2, 5, 10,
//! 30 minutes, then hourly), through the same rate limits and circuit breakers as every call.
//! A verified answer settles the payment exactly as a callback would (one event, whichever
//! comes first: the store moves a status once).
//!
//! Expiry: once a payment is past `expires_at` and a last query still says unpaid, it is closed
//! at the provider where the provider offers close; where it does not, it is closed locally
//! only once the provider's order lifetime has passed (the account's `order_lifetime_secs`, or
//! the document's), since before that the payer could still pay. Otherwise the payment stays
//! pending and keeps being asked hourly. A payment whose provider cannot be reached, or whose
//! rate limit says not now, is never closed on that check.
//!
//! Refunds and payouts that are not final are asked about on the same schedule, where the
//! provider offers a refund or payout query (a verified answer writes their event).
//!
//! Each due payment is claimed in the store for a lease, so with several instances on one
//! PostgreSQL store each payment is checked by one instance at a time.

use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::payments::{close_at_provider, close_locally, refresh_from_provider};
use crate::core::payouts::refresh_payout;
use crate::core::refunds::refresh_refund;
use crate::dialects::DialectError;
use crate::model::{Payment, TransferStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

const BATCH: usize = 32;
/// How long a claimed check belongs to this instance.
const LEASE_SECS: i64 = 120;
/// How often an expired payment that cannot be closed yet is asked again.
const EXPIRED_RECHECK_SECS: i64 = 3600;

/// When the next check is due after `checks_done` checks.
pub fn next_check(schedule: &[u64], checks_done: u32, now: i64) -> i64 {
    let delay = schedule.get(checks_done as usize).or(schedule.last()).copied().unwrap_or(3600);
    now + delay as i64
}

/// Runs until `shutdown` turns true.
pub async fn run(gateway: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let checked = check_due(&gateway).await;
        if checked > 0 {
            continue;
        }
        let poll = Duration::from_millis(gateway.config.current().config.requery.poll_ms);
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Checks every payment that is due now; returns how many.
pub async fn check_due(gateway: &Arc<Gateway>) -> usize {
    let due = match gateway.store.claim_due_checks(gateway.clock.now(), BATCH, LEASE_SECS).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot read payments due for a check");
            return 0;
        }
    };
    let live = gateway.config.current();
    let first_delay = live.config.requery.schedule_secs.first().copied().unwrap_or(60) as i64;
    let (refunds, payouts) =
        match gateway.store.claim_due_transfer_checks(gateway.clock.now(), first_delay, BATCH, LEASE_SECS).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read refunds and payouts due for a check");
                (Vec::new(), Vec::new())
            }
        };
    let count = due.len() + refunds.len() + payouts.len();
    let mut checks = JoinSet::new();
    for (refund, done) in refunds {
        let (gateway, live) = (gateway.clone(), live.clone());
        checks.spawn(async move {
            let now = gateway.clock.now();
            let next = match refresh_refund(&gateway, &live, &refund, now).await {
                Ok(r) if r.status != TransferStatus::Pending => None,
                Err(crate::core::refunds::Unanswered::NoQuery) => None,
                _ => Some(next_check(&live.config.requery.schedule_secs, done + 1, now)),
            };
            let _ = gateway.store.schedule_transfer_check(true, &refund.refund_id, next, done + 1).await;
        });
    }
    for (payout, done) in payouts {
        let (gateway, live) = (gateway.clone(), live.clone());
        checks.spawn(async move {
            let now = gateway.clock.now();
            let next = match refresh_payout(&gateway, &live, &payout, now).await {
                Ok(p) if p.status != TransferStatus::Pending => None,
                Err(crate::core::refunds::Unanswered::NoQuery) => None,
                _ => Some(next_check(&live.config.requery.schedule_secs, done + 1, now)),
            };
            let _ = gateway.store.schedule_transfer_check(false, &payout.payout_id, next, done + 1).await;
        });
    }
    for (payment, done) in due {
        let (gateway, live) = (gateway.clone(), live.clone());
        checks.spawn(async move { check(&gateway, &live, payment, done).await });
    }
    while checks.join_next().await.is_some() {}
    count
}

async fn check(gateway: &Gateway, live: &LiveConfig, payment: Payment, done: u32) {
    let now = gateway.clock.now();
    let schedule = &live.config.requery.schedule_secs;
    let next = match refresh_from_provider(gateway, live, &payment, now).await {
        Ok(p) if p.status.is_final() => None,
        // Still unpaid, in the provider's own verified word.
        Ok(p) if now >= p.expires_at => expire(gateway, live, &p, now).await,
        Ok(_) => Some(next_check(schedule, done + 1, now)),
        // The provider's rate limit: ask again when it allows.
        Err(None) => Some(now + 60),
        // The provider could not tell: never close on that.
        Err(Some(_)) => Some(next_check(schedule, done + 1, now)),
    };
    if let Err(e) = gateway.store.schedule_check(&payment.payment_id, next, done + 1).await {
        tracing::error!(payment_id = %payment.payment_id, error = %e, "cannot schedule the next check");
    }
}

/// Closes an expired, verified-unpaid payment if that is safe; returns the next check if not.
///
/// Where the provider can close this payment it is asked to; a provider that cannot be reached
/// is asked again a minute later, but a refusal (the order cannot be closed there) is not
/// retried: the payment then ends like one whose provider has no close, by the provider's own
/// order lifetime or by its verified word (an expiry or cancel in a query or notify).
async fn expire(gateway: &Gateway, live: &LiveConfig, payment: &Payment, now: i64) -> Option<i64> {
    let Some(dialect) = live.dialect(&payment.provider) else {
        return Some(now + EXPIRED_RECHECK_SECS);
    };
    match dialect.close_payment(payment, now) {
        Ok(_) => match close_at_provider(gateway, live, payment, now).await {
            Ok(_) => {
                tracing::info!(payment_id = %payment.payment_id, "expired payment closed at its provider");
                return None;
            }
            Err(e) if e.code == crate::core::error::ErrorCode::ProviderUnavailable => {
                tracing::warn!(payment_id = %payment.payment_id, error = %e.message, "expired payment not closed yet");
                return Some(now + 60);
            }
            Err(e) => {
                tracing::warn!(payment_id = %payment.payment_id, error = %e.message, "the provider refused to close the expired payment; it ends by the provider's lifetime or word");
            }
        },
        Err(DialectError::Unsupported(_)) => {}
        Err(_) => return Some(now + EXPIRED_RECHECK_SECS),
    }
    let lifetime = live
        .config
        .providers
        .get(&payment.provider)
        .and_then(|p| p.order_lifetime_secs)
        .map(|s| s as i64)
        .or_else(|| dialect.order_lifetime().map(|d| d.as_secs() as i64));
    match lifetime {
        Some(l) if now >= payment.created_at + l => match close_locally(gateway, payment, now).await {
            Ok(_) => {
                tracing::info!(payment_id = %payment.payment_id, "expired payment closed: its provider's order lifetime has passed");
                None
            }
            Err(_) => Some(now + 60),
        },
        Some(l) => Some(payment.created_at + l),
        None => {
            tracing::warn!(
                payment_id = %payment.payment_id,
                account = %payment.provider,
                "expired, but the provider cannot close it and its order lifetime is unknown (set order_lifetime_secs): kept pending"
            );
            Some(now + EXPIRED_RECHECK_SECS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_grow_then_repeat_the_last_interval() {
        let s = [60, 120, 300];
        assert_eq!(next_check(&s, 0, 1000), 1060);
        assert_eq!(next_check(&s, 2, 1000), 1300);
        assert_eq!(next_check(&s, 9, 1000), 1300);
    }
}

//! The store: payments, the merchant-notification outbox and seen nonces, behind one small
//! async trait. SQLite (one local file, WAL) is the embedded default; the trait keeps to what a
//! PostgreSQL implementation can do the same way (transactions, unique constraints, row claims).

pub mod nonces;
pub mod postgres;
pub mod rows;
pub mod sqlite;
pub mod url;

use crate::model::{
    Action, Door, EventType, NewEvent, Payment, PaymentStatus, Payout, Refund, TimelineEntry, TransferStatus,
};
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;
use url::StoreUrl;

/// The store could not be reached or failed; callers answer 503 / non-ack and retry later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(pub String);

pub type StoreResult<T> = Result<T, StoreError>;

/// What happened when a new payment was written.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// Written; the caller now calls the provider.
    New,
    /// This merchant already has a payment with this out_trade_no; here it is, with the
    /// fingerprint of the request that created it.
    Existing(Box<Payment>, String),
}

/// A provider's verified word about a payment, to apply.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    pub status: PaymentStatus,
    pub provider_trade_no: Option<String>,
    /// What the provider says was paid (kept for a succeeded payment, and for one failed
    /// because less than due was paid).
    pub paid_amount: Option<i64>,
    pub paid_at: Option<i64>,
    /// The event to write instead of the one the status has (`payment.amount_mismatch`).
    pub event: Option<EventType>,
    /// Something ops must see, written in the same transaction.
    pub anomaly: Option<NewAnomaly>,
}

impl Settlement {
    /// A plain move to `status`.
    pub fn to(status: PaymentStatus) -> Self {
        Settlement { status, ..Default::default() }
    }
}

/// What an anomaly is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A verified message says less than due was paid: the payment failed, the money needs
    /// an operator (a refund at the provider).
    Underpaid,
    /// A verified message says more than due was paid: the payment succeeded, the excess
    /// needs an operator.
    Overpaid,
    /// A verified payment callback from an account that does not own the payment (it failed
    /// over away from that account, which may have taken the order after all).
    ForeignCallback,
    /// A verified message says a payment that is already final (failed or closed) was paid.
    PaidAfterFinal,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Underpaid => "amount_mismatch_underpaid",
            AnomalyKind::Overpaid => "amount_mismatch_overpaid",
            AnomalyKind::ForeignCallback => "foreign_callback",
            AnomalyKind::PaidAfterFinal => "paid_after_final",
        }
    }
}

/// An anomaly to record; one per (kind, payment, provider account).
#[derive(Debug, Clone)]
pub struct NewAnomaly {
    pub kind: AnomalyKind,
    pub payment_id: String,
    /// The provider account whose message it is.
    pub provider: String,
    pub detail: serde_json::Value,
}

/// A recorded anomaly, for ops (`/admin/anomalies`, reconcile, the payment's admin page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Anomaly {
    pub kind: String,
    pub payment_id: String,
    pub provider: String,
    pub detail: serde_json::Value,
    pub created_at: String,
}

/// Moves a payment as a settlement says, in memory (both stores then write the result): a
/// final payment never moves; `false` then.
pub fn apply_settlement(p: &mut Payment, s: &Settlement, now: i64) -> bool {
    if !p.status.can_move_to(s.status) {
        return false;
    }
    p.status = s.status;
    if p.provider_trade_no.is_none() {
        p.provider_trade_no = s.provider_trade_no.clone();
    }
    match s.status {
        PaymentStatus::Succeeded => {
            p.paid_amount = s.paid_amount.or(Some(p.amount));
            p.paid_at = s.paid_at.or(Some(now));
        }
        PaymentStatus::Failed if s.paid_amount.is_some() => p.paid_amount = s.paid_amount,
        _ => {}
    }
    p.updated_at = now;
    true
}

/// The event a moved payment emits under a settlement.
pub fn settlement_event(p: &Payment, s: &Settlement, now: i64) -> Option<NewEvent> {
    let kind = s.event.or_else(|| crate::model::EventType::for_payment(p.status))?;
    Some(NewEvent::for_payment(p, kind, now))
}

/// What applying a settlement did.
#[derive(Debug, Clone)]
pub enum Settled {
    /// The status moved forward and the event (if the new status has one) was written.
    Moved(Payment),
    /// The payment was already final (a duplicate or late message); nothing changed.
    Unchanged(Payment),
}

/// What happened when a new refund was written.
#[derive(Debug, Clone)]
pub enum RefundInserted {
    /// Written as pending; the caller now calls the provider.
    New,
    /// This merchant already has a refund with this out_refund_no (with its fingerprint).
    Existing(Box<Refund>, String),
    /// The payment is not paid, so nothing can be refunded.
    NotPaid(PaymentStatus),
    /// More than paid minus refunded (minus refunds in progress); the refundable fen.
    Exceeds(i64),
}

/// What happened when a new payout was written.
#[derive(Debug, Clone)]
pub enum PayoutInserted {
    New,
    Existing(Box<Payout>, String),
}

/// Which payments an operator lists (`Store::list_payments`); every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub merchant_id: Option<String>,
    /// A payment_id or an out_trade_no.
    pub id: Option<String>,
    pub status: Option<PaymentStatus>,
    pub provider: Option<String>,
    pub channel: Option<crate::model::Channel>,
    pub scene: Option<crate::model::Scene>,
    /// Created at or after (unix seconds).
    pub from: Option<i64>,
    /// Created before (unix seconds).
    pub to: Option<i64>,
    /// Only payments listed after this one (its created_at and payment_id): the next page.
    pub after: Option<(i64, String)>,
}

/// How many payments one provider account took in one hour, by status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentCount {
    /// The hour's start (unix seconds, a multiple of 3600).
    pub hour: i64,
    pub provider: String,
    pub status: PaymentStatus,
    pub count: i64,
}

/// Pending payments waiting for payglot to ask their provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequeryBacklog {
    /// Pending with a check scheduled.
    pub scheduled: i64,
    /// Of those, the ones whose check is due now or overdue.
    pub due: i64,
}

/// The outbox at a glance: events still to deliver and the creation time of the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxDepth {
    pub pending: i64,
    pub oldest_created_at: Option<i64>,
}

/// One outbox row to deliver.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub kind: String,
    pub notify_url: String,
    pub body: String,
    pub attempts: u32,
    pub created_at: i64,
}

/// An outbox event as ops see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventSummary {
    pub id: String,
    pub merchant_id: String,
    /// The payment (or payout) it is about.
    pub order_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::model::as_rfc3339")]
    pub next_attempt_at: i64,
    #[serde(serialize_with = "crate::model::as_rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::model::as_opt_rfc3339")]
    pub delivered_at: Option<i64>,
}

/// Where an outbox event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    Pending,
    Delivered,
    Failed,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Failed => "failed",
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Records a merchant's request nonce; `false` when it was seen since `not_before`.
    async fn remember_nonce(&self, merchant_id: &str, nonce: &str, now: i64, not_before: i64) -> StoreResult<bool>;

    /// Writes a new pending payment before its provider is called, or returns the one this
    /// merchant already has under the same out_trade_no.
    /// `first_check_at` is when payglot first asks the provider if no callback came.
    async fn insert_payment(&self, payment: &Payment, fingerprint: &str, first_check_at: i64) -> StoreResult<Inserted>;

    /// Claims pending payments whose next provider check is due, for `lease_secs`, with how
    /// many checks each had; one instance checks a payment at a time.
    async fn claim_due_checks(&self, now: i64, limit: usize, lease_secs: i64) -> StoreResult<Vec<(Payment, u32)>>;

    /// Claims pending refunds and payouts whose next provider check is due (the first one
    /// `first_delay` after creation), for `lease_secs`.
    async fn claim_due_transfer_checks(
        &self,
        now: i64,
        first_delay: i64,
        limit: usize,
        lease_secs: i64,
    ) -> StoreResult<(Vec<(Refund, u32)>, Vec<(Payout, u32)>)>;

    /// Sets a refund's (`is_refund`) or payout's next check and releases its claim.
    async fn schedule_transfer_check(
        &self,
        is_refund: bool,
        id: &str,
        next_check_at: Option<i64>,
        checks: u32,
    ) -> StoreResult<()>;

    /// Payments of one provider account created in `[from, to)` (unix seconds), for
    /// reconciliation.
    async fn payments_created_between(&self, provider: &str, from: i64, to: i64) -> StoreResult<Vec<Payment>>;

    /// Sets a payment's next check (`None`: no more) and releases its claim.
    async fn schedule_check(&self, payment_id: &str, next_check_at: Option<i64>, checks: u32) -> StoreResult<()>;

    /// Moves a pending payment to another provider account (failover before any acceptance).
    async fn set_payment_provider(&self, payment_id: &str, provider: &str, now: i64) -> StoreResult<()>;

    /// Records the provider's answer to the create: its order number, the action, and when
    /// the provider stops taking money for it (`expires_at` only ever moves earlier).
    async fn record_created(
        &self,
        payment_id: &str,
        provider_trade_no: Option<&str>,
        action: &Action,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;

    /// Records an anomaly for ops; `false` when the same one was recorded already.
    async fn record_anomaly(&self, anomaly: &NewAnomaly, now: i64) -> StoreResult<bool>;

    /// Anomalies, newest first, of one provider account and/or payment, recorded in `[from, to)`.
    async fn anomalies(
        &self,
        provider: Option<&str>,
        payment_id: Option<&str>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> StoreResult<Vec<Anomaly>>;

    /// Marks a pending payment that no provider took as failed, without an event: the
    /// merchant was told synchronously.
    async fn fail_unaccepted(&self, payment_id: &str, now: i64) -> StoreResult<()>;

    async fn payment_by_out_trade_no(&self, merchant_id: &str, out_trade_no: &str) -> StoreResult<Option<Payment>>;

    async fn payment_by_id(&self, payment_id: &str) -> StoreResult<Option<Payment>>;

    /// Applies a verified provider statement: moves the status forward and writes the
    /// merchant event in the same transaction. A final payment is never changed.
    async fn settle_payment(&self, payment_id: &str, settlement: &Settlement, now: i64) -> StoreResult<Settled>;

    /// Writes a pending refund of a paid payment, if the amount fits what is refundable
    /// (paid, minus refunded, minus refunds still pending), in one transaction.
    async fn insert_refund(&self, refund: &Refund, fingerprint: &str) -> StoreResult<RefundInserted>;

    /// Moves a pending refund to a final status; on success adds it to the payment's
    /// refunded_amount. With `emit`, writes the merchant event in the same transaction.
    async fn settle_refund(
        &self,
        refund_id: &str,
        status: TransferStatus,
        provider_refund_no: Option<&str>,
        emit: bool,
        now: i64,
    ) -> StoreResult<Refund>;

    async fn refund_by_out_no(&self, merchant_id: &str, out_refund_no: &str) -> StoreResult<Option<Refund>>;

    /// Writes a pending payout before its provider is called.
    async fn insert_payout(&self, payout: &Payout, fingerprint: &str) -> StoreResult<PayoutInserted>;

    /// Moves a pending payout to a final status (with its event when `emit`), or records the
    /// provider's number while pending.
    async fn settle_payout(
        &self,
        payout_id: &str,
        status: TransferStatus,
        provider_payout_no: Option<&str>,
        emit: bool,
        now: i64,
    ) -> StoreResult<Payout>;

    async fn payout_by_out_no(&self, merchant_id: &str, out_payout_no: &str) -> StoreResult<Option<Payout>>;

    async fn payout_by_id(&self, payout_id: &str) -> StoreResult<Option<Payout>>;

    /// How many payments, refunds and payouts that are not final each of `providers` holds.
    async fn open_counts(&self, providers: &[String]) -> StoreResult<Vec<(String, i64)>>;

    /// Claims events due for delivery for `lease_secs`: oldest first, at most one per payment
    /// (its earliest undelivered one, so each payment's events arrive in order), none claimed
    /// by another instance whose lease still runs. An instance that dies holding a claim only
    /// delays those events until the lease ends.
    async fn claim_due_events(&self, now: i64, limit: usize, lease_secs: i64) -> StoreResult<Vec<OutboxEvent>>;

    async fn mark_delivered(&self, event_id: &str, now: i64) -> StoreResult<()>;

    /// Records a failed attempt: retry at `next_attempt_at`, or give up (`None`).
    async fn mark_attempt_failed(
        &self,
        event_id: &str,
        error: &str,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;

    /// Events of one payment with their state, in order (for tests and ops).
    async fn events_for_payment(&self, payment_id: &str) -> StoreResult<Vec<(OutboxEvent, EventState)>>;

    /// Events for ops, newest first, filtered by merchant and state.
    async fn list_events(
        &self,
        merchant_id: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EventSummary>>;

    /// Makes an event due for delivery now (whatever its state); `false` if there is none.
    async fn replay_event(&self, event_id: &str, now: i64) -> StoreResult<bool>;

    /// Makes due now every event of a merchant in `state` created in `from..to`; how many.
    async fn replay_events(
        &self,
        merchant_id: &str,
        state: EventState,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64>;

    /// Appends timeline entries (one transaction for the batch).
    async fn append_timeline(&self, entries: Vec<TimelineEntry>) -> StoreResult<()>;

    /// A payment's (or payout's) timeline, oldest first.
    async fn timeline(&self, subject: &str) -> StoreResult<Vec<TimelineEntry>>;

    /// How many events wait for delivery (pending, not given up), and when the oldest of them
    /// was created (unix seconds).
    async fn outbox_depth(&self) -> StoreResult<OutboxDepth>;

    /// Payments for ops, newest first (created_at, then payment_id), at most `limit`.
    async fn list_payments(&self, filter: &PaymentFilter, limit: usize) -> StoreResult<Vec<Payment>>;

    /// Payments created at or after `since`, counted by hour, provider account and status.
    async fn payment_counts(&self, since: i64) -> StoreResult<Vec<PaymentCount>>;

    /// A payment's refunds, oldest first.
    async fn refunds_for_payment(&self, payment_id: &str) -> StoreResult<Vec<Refund>>;

    /// How many pending payments wait for a provider check, and how many of them are due at `now`.
    async fn requery_backlog(&self, now: i64) -> StoreResult<RequeryBacklog>;

    /// Whether the store answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// Opens the store a routes.yaml names.
pub async fn open(url: &StoreUrl) -> StoreResult<Arc<dyn Store>> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        StoreUrl::Postgres(url) => Ok(Arc::new(postgres::PgStore::open(url.expose(), 16).await?)),
    }
}

/// The metric of recorded anomalies.
pub fn count_anomaly(a: &NewAnomaly) {
    metrics::counter!("payglot_anomalies_total", "kind" => a.kind.as_str(), "provider" => a.provider.clone())
        .increment(1);
}

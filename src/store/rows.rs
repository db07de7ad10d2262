//! What the two stores share, written once: the column lists, the mapping of a row to a
//! payment, refund, payout or event (over `Columns`, which both drivers' rows implement), the
//! money rules of a refund and of a transfer's settlement, and the statements both run alike
//! (in PostgreSQL's `$n` spelling; the SQLite store takes `$n` as `?n`, see `sqlite::sql`).

use super::{OutboxEvent, RefundInserted, StoreError};
use crate::model::{Door, Payment, PaymentStatus, Payout, Refund, TransferStatus};

/// The columns of a payment row, in the order `payment` reads them.
macro_rules! payment_columns {
    () => {
        "payment_id, merchant_id, out_trade_no, amount, currency, subject, description, channel, scene, status, provider, provider_trade_no, paid_amount, paid_at, refunded_amount, attach, notify_url, return_url, action, created_at, updated_at, fingerprint, expires_at, door"
    };
}
macro_rules! refund_columns {
    () => {
        "refund_id, out_refund_no, merchant_id, payment_id, out_trade_no, amount, reason, status, provider, provider_refund_no, created_at, updated_at, fingerprint"
    };
}
macro_rules! payout_columns {
    () => {
        "payout_id, out_payout_no, merchant_id, amount, currency, payee, remark, status, provider, provider_payout_no, notify_url, created_at, updated_at, fingerprint"
    };
}
macro_rules! event_columns {
    () => {
        "id, merchant_id, payment_id, kind, notify_url, body, attempts, created_at"
    };
}

pub const PAYMENT_COLUMNS: &str = payment_columns!();
pub const REFUND_COLUMNS: &str = refund_columns!();
pub const PAYOUT_COLUMNS: &str = payout_columns!();
pub const EVENT_COLUMNS: &str = event_columns!();

/// The statements both stores run as they are.
pub mod sql {
    pub const PAYMENT_BY_ID: &str = concat!("SELECT ", payment_columns!(), " FROM payments WHERE payment_id = $1");
    pub const PAYMENT_BY_OUT_TRADE_NO: &str =
        concat!("SELECT ", payment_columns!(), " FROM payments WHERE merchant_id = $1 AND out_trade_no = $2");
    pub const INSERT_PAYMENT: &str = concat!(
        "INSERT INTO payments (",
        payment_columns!(),
        ", next_check_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) ON CONFLICT (merchant_id, out_trade_no) DO NOTHING"
    );
    pub const SET_PAYMENT_PROVIDER: &str =
        "UPDATE payments SET provider = $2, updated_at = $3 WHERE payment_id = $1 AND status = 'pending'";
    pub const FAIL_UNACCEPTED: &str =
        "UPDATE payments SET status = 'failed', updated_at = $2 WHERE payment_id = $1 AND status = 'pending'";
    pub const SETTLE_PAYMENT: &str = "UPDATE payments SET status = $2, provider_trade_no = $3, paid_amount = $4, paid_at = $5, updated_at = $6 WHERE payment_id = $1";
    pub const SCHEDULE_CHECK: &str =
        "UPDATE payments SET next_check_at = $2, checks = $3, check_claimed_until = NULL WHERE payment_id = $1";
    pub const PAYMENTS_CREATED_BETWEEN: &str = concat!(
        "SELECT ",
        payment_columns!(),
        " FROM payments WHERE provider = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at"
    );
    pub const INSERT_EVENT: &str = "INSERT INTO events (id, merchant_id, payment_id, kind, notify_url, body, state, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)";
    pub const INSERT_ANOMALY: &str = "INSERT INTO anomalies (kind, payment_id, provider, detail, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

    pub const REFUND_BY_ID: &str = concat!("SELECT ", refund_columns!(), " FROM refunds WHERE refund_id = $1");
    pub const REFUND_BY_OUT_NO: &str =
        concat!("SELECT ", refund_columns!(), " FROM refunds WHERE merchant_id = $1 AND out_refund_no = $2");
    pub const REFUNDS_IN_PROGRESS: &str =
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = $1 AND status = 'pending'";
    pub const INSERT_REFUND: &str = concat!(
        "INSERT INTO refunds (",
        refund_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    pub const SETTLE_REFUND: &str =
        "UPDATE refunds SET status = $2, provider_refund_no = $3, updated_at = $4 WHERE refund_id = $1";
    pub const ADD_REFUNDED: &str =
        "UPDATE payments SET refunded_amount = refunded_amount + $2, updated_at = $3 WHERE payment_id = $1";

    pub const PAYOUT_BY_ID: &str = concat!("SELECT ", payout_columns!(), " FROM payouts WHERE payout_id = $1");
    pub const PAYOUT_BY_OUT_NO: &str =
        concat!("SELECT ", payout_columns!(), " FROM payouts WHERE merchant_id = $1 AND out_payout_no = $2");
    pub const INSERT_PAYOUT: &str = concat!(
        "INSERT INTO payouts (",
        payout_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (merchant_id, out_payout_no) DO NOTHING"
    );
    pub const SETTLE_PAYOUT: &str =
        "UPDATE payouts SET status = $2, provider_payout_no = $3, updated_at = $4 WHERE payout_id = $1";
    pub const SCHEDULE_REFUND_CHECK: &str =
        "UPDATE refunds SET next_check_at = $2, checks = $3, check_claimed_until = NULL WHERE refund_id = $1";
    pub const SCHEDULE_PAYOUT_CHECK: &str =
        "UPDATE payouts SET next_check_at = $2, checks = $3, check_claimed_until = NULL WHERE payout_id = $1";
    pub const OPEN_COUNT: &str = "SELECT CAST((SELECT COUNT(*) FROM payments WHERE provider = $1 AND status = 'pending') + (SELECT COUNT(*) FROM refunds WHERE provider = $1 AND status = 'pending') + (SELECT COUNT(*) FROM payouts WHERE provider = $1 AND status = 'pending') AS BIGINT)";
    pub const ANOMALIES: &str = "SELECT kind, payment_id, provider, detail, created_at FROM anomalies WHERE (CAST($1 AS TEXT) IS NULL OR provider = $1) AND (CAST($2 AS TEXT) IS NULL OR payment_id = $2) AND created_at >= $3 AND created_at < $4 ORDER BY seq DESC LIMIT $5";
    pub const REPLAY_EVENTS: &str = "UPDATE events SET state = 'pending', next_attempt_at = $5, claimed_until = NULL WHERE merchant_id = $1 AND state = $2 AND created_at >= $3 AND created_at < $4";
    pub const REFUNDS_FOR_PAYMENT: &str =
        concat!("SELECT ", refund_columns!(), " FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_id");
    pub const REQUERY_BACKLOG: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN next_check_at <= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM payments WHERE status = 'pending' AND next_check_at IS NOT NULL";
    pub const OUTBOX_DEPTH: &str = "SELECT COUNT(*), MIN(created_at) FROM events WHERE state = 'pending'";
}

/// A value bound to a statement built at run time (`list_payments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// The statement listing payments that match `filter` (newest first, at most `limit`), with
/// its parameters; only the filters given appear, so each query can use its index.
pub fn list_payments(filter: &super::PaymentFilter, limit: usize) -> (String, Vec<Param>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let bind = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    let text = |s: &str| Param::Text(s.to_string());
    if let Some(m) = &filter.merchant_id {
        conditions.push(format!("merchant_id = {}", bind(&mut params, text(m))));
    }
    if let Some(id) = &filter.id {
        let n = bind(&mut params, text(id));
        conditions.push(format!("(payment_id = {n} OR out_trade_no = {n})"));
    }
    if let Some(status) = filter.status {
        conditions.push(format!("status = {}", bind(&mut params, text(status.as_str()))));
    }
    if let Some(p) = &filter.provider {
        conditions.push(format!("provider = {}", bind(&mut params, text(p))));
    }
    if let Some(c) = filter.channel {
        conditions.push(format!("channel = {}", bind(&mut params, text(c.as_str()))));
    }
    if let Some(s) = filter.scene {
        conditions.push(format!("scene = {}", bind(&mut params, text(s.as_str()))));
    }
    if let Some(from) = filter.from {
        conditions.push(format!("created_at >= {}", bind(&mut params, Param::Int(from))));
    }
    if let Some(to) = filter.to {
        conditions.push(format!("created_at < {}", bind(&mut params, Param::Int(to))));
    }
    if let Some((at, id)) = &filter.after {
        let at = bind(&mut params, Param::Int(*at));
        let id = bind(&mut params, text(id));
        conditions.push(format!("(created_at < {at} OR (created_at = {at} AND payment_id < {id}))"));
    }
    let mut sql = concat!("SELECT ", payment_columns!(), " FROM payments").to_string();
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let limit = bind(&mut params, Param::Int(limit as i64));
    sql.push_str(&format!(" ORDER BY created_at DESC, payment_id DESC LIMIT {limit}"));
    (sql, params)
}

/// A row of either driver, read by column index.
pub trait Columns {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;

    /// A text column holding one of payglot's enums (status, channel, scene).
    fn parsed<T: std::str::FromStr<Err = String>>(&self, i: usize) -> Result<T, StoreError> {
        self.text(i)?.parse().map_err(StoreError)
    }
}

/// A payment row (`PAYMENT_COLUMNS`) with the fingerprint of the request that made it.
pub fn payment(row: &impl Columns) -> Result<(Payment, String), StoreError> {
    let payment = Payment {
        payment_id: row.text(0)?,
        merchant_id: row.text(1)?,
        out_trade_no: row.text(2)?,
        amount: row.int(3)?,
        currency: row.text(4)?,
        subject: row.text(5)?,
        description: row.text(6)?,
        channel: row.parsed(7)?,
        scene: row.parsed(8)?,
        status: row.parsed(9)?,
        provider: row.text(10)?,
        provider_trade_no: row.opt_text(11)?,
        paid_amount: row.opt_int(12)?,
        paid_at: row.opt_int(13)?,
        refunded_amount: row.int(14)?,
        attach: row.opt_text(15)?,
        notify_url: row.opt_text(16)?,
        return_url: row.opt_text(17)?,
        action: row.opt_text(18)?.and_then(|a| serde_json::from_str(&a).ok()),
        created_at: row.int(19)?,
        updated_at: row.int(20)?,
        expires_at: row.int(22)?,
        door: row.opt_text(23)?.and_then(|d| Door::from_json(&d)),
    };
    Ok((payment, row.text(21)?))
}

/// A refund row (`REFUND_COLUMNS`) with its request's fingerprint.
pub fn refund(row: &impl Columns) -> Result<(Refund, String), StoreError> {
    let refund = Refund {
        refund_id: row.text(0)?,
        out_refund_no: row.text(1)?,
        merchant_id: row.text(2)?,
        payment_id: row.text(3)?,
        out_trade_no: row.text(4)?,
        amount: row.int(5)?,
        reason: row.opt_text(6)?,
        status: row.parsed(7)?,
        provider: row.text(8)?,
        provider_refund_no: row.opt_text(9)?,
        created_at: row.int(10)?,
        updated_at: row.int(11)?,
    };
    Ok((refund, row.text(12)?))
}

/// A payout row (`PAYOUT_COLUMNS`) with its request's fingerprint.
pub fn payout(row: &impl Columns) -> Result<(Payout, String), StoreError> {
    let payee = serde_json::from_str(&row.text(5)?).map_err(|e| StoreError(format!("payee: {e}")))?;
    let payout = Payout {
        payout_id: row.text(0)?,
        out_payout_no: row.text(1)?,
        merchant_id: row.text(2)?,
        amount: row.int(3)?,
        currency: row.text(4)?,
        payee,
        remark: row.opt_text(6)?,
        status: row.parsed(7)?,
        provider: row.text(8)?,
        provider_payout_no: row.opt_text(9)?,
        notify_url: row.opt_text(10)?,
        created_at: row.int(11)?,
        updated_at: row.int(12)?,
    };
    Ok((payout, row.text(13)?))
}

/// An outbox event row (`EVENT_COLUMNS`).
pub fn event(row: &impl Columns) -> Result<OutboxEvent, StoreError> {
    Ok(OutboxEvent {
        id: row.text(0)?,
        merchant_id: row.text(1)?,
        payment_id: row.text(2)?,
        kind: row.text(3)?,
        notify_url: row.text(4)?,
        body: row.text(5)?,
        attempts: u32::try_from(row.int(6)?).unwrap_or(0),
        created_at: row.int(7)?,
    })
}

/// Whether a new refund of `amount` may be taken for `payment` while `in_progress` fen of its
/// refunds are pending: `None` when it may, else what to answer. A payment is refundable only
/// once succeeded, and never for more than was paid less what is refunded or being refunded.
pub fn refund_refusal(payment: &Payment, in_progress: i64, amount: i64) -> Option<RefundInserted> {
    if payment.status != PaymentStatus::Succeeded {
        return Some(RefundInserted::NotPaid(payment.status));
    }
    let refundable = payment.paid_amount.unwrap_or(payment.amount) - payment.refunded_amount - in_progress;
    (amount > refundable).then(|| RefundInserted::Exceeds(refundable.max(0)))
}

/// Applies a provider's word about a refund or payout: the provider's number is kept once
/// known, and the status moves only from pending. Returns whether it moved.
pub fn settle_transfer(
    current: &mut TransferStatus,
    provider_no: &mut Option<String>,
    updated_at: &mut i64,
    status: TransferStatus,
    given_no: Option<&str>,
    now: i64,
) -> bool {
    if provider_no.is_none() {
        *provider_no = given_no.map(str::to_string);
    }
    let moves = *current == TransferStatus::Pending && status != TransferStatus::Pending;
    if moves {
        *current = status;
    }
    *updated_at = now;
    moves
}

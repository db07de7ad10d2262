//! The canonical model every dialect translates to and from: payments, refunds, payouts,
//! merchant events, their status and the action a merchant takes next.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} {s:?} (expected one of: {})",
                        stringify!($name).to_lowercase(),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// The payer's payment instrument.
    Channel { Wechat => "wechat", Alipay => "alipay", Unionpay => "unionpay", Qq => "qq", Jd => "jd", Bank => "bank" }
);

string_enum!(
    /// How the payer pays: scans a code, is scanned, inside an app, on a page.
    Scene { Qr => "qr", Barcode => "barcode", Jsapi => "jsapi", Miniapp => "miniapp", H5 => "h5", Web => "web" }
);

string_enum!(
    /// Where a payment stands. Only moves forward: pending -> succeeded | failed | closed.
    PaymentStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed", Closed => "closed" }
);

// By hand: the enum comes from `string_enum!`, which has no place for `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for PaymentStatus {
    fn default() -> Self {
        PaymentStatus::Pending
    }
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        self != PaymentStatus::Pending
    }

    /// Whether a payment in `self` may move to `next`. A final status never changes, so a
    /// late or replayed message can not move a payment back.
    pub fn can_move_to(self, next: PaymentStatus) -> bool {
        self == PaymentStatus::Pending && next != PaymentStatus::Pending
    }
}

/// What the merchant (or its payer's browser) does next to complete a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    QrCode {
        qr_code: String,
        /// What the payer must pay, when the provider asks for a different amount than the
        /// order's (xiaojitong's `reallyprice`), in fen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<i64>,
    },
    Redirect {
        url: String,
    },
    FormPost {
        url: String,
        fields: BTreeMap<String, String>,
    },
    Jsapi {
        params: BTreeMap<String, String>,
    },
    None,
}

/// One payment as payglot keeps it and shows it to the merchant. Amounts are fen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub merchant_id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub currency: String,
    pub subject: String,
    pub description: String,
    pub channel: Channel,
    pub scene: Scene,
    pub status: PaymentStatus,
    pub provider: String,
    pub provider_trade_no: Option<String>,
    pub paid_amount: Option<i64>,
    pub paid_at: Option<i64>,
    pub refunded_amount: i64,
    pub attach: Option<String>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub action: Option<Action>,
    pub created_at: i64,
    pub updated_at: i64,
    /// After this (unix seconds) an unpaid payment is closed: at the provider where it offers
    /// close, else once the provider's own order lifetime has passed.
    pub expires_at: i64,
    /// The provider-compatible front door the payment came in through, when it did: its
    /// events go back to the school in that dialect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub door: Option<Door>,
}

/// Where a payment entered through `/compat/{dialect}/...`: the school's dialect, its account
/// id at that door, and the request fields its dialect's answers and callbacks repeat
/// (xxpay `productId`/`param1`, xiaojitong `param`, jings `orderuid`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Door {
    pub dialect: String,
    pub account: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl Door {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("door serializes")
    }

    pub fn from_json(text: &str) -> Option<Door> {
        serde_json::from_str(text).ok()
    }

    /// One of the saved request fields, or "".
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

string_enum!(
    /// Where a refund or payout stands.
    TransferStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed" }
);

/// A refund of part or all of a paid payment. It goes to the payment's provider account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub out_refund_no: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub reason: Option<String>,
    pub status: TransferStatus,
    pub provider: String,
    pub provider_refund_no: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Refund {
    /// The refund as merchants see it.
    pub fn to_merchant_json(&self) -> serde_json::Value {
        serde_json::json!({
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "payment_id": self.payment_id,
            "out_trade_no": self.out_trade_no,
            "amount": self.amount,
            "reason": self.reason,
            "status": self.status,
            "provider": self.provider,
            "provider_refund_no": self.provider_refund_no,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

/// A payout (代付) to a bank account or wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    pub payout_id: String,
    pub out_payout_no: String,
    pub merchant_id: String,
    pub amount: i64,
    pub currency: String,
    /// The payee: bank code and name, account type and holder, account number, province, city.
    pub payee: Payee,
    pub remark: Option<String>,
    pub status: TransferStatus,
    pub provider: String,
    pub provider_payout_no: Option<String>,
    pub notify_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a payout goes. Its `Debug` masks the account number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payee {
    /// `bank` (card transfer), `wechat`, `alipay` or `other`.
    pub account_type: String,
    pub account_name: String,
    pub account_no: String,
    #[serde(default)]
    pub bank_code: String,
    #[serde(default)]
    pub bank_name: String,
    #[serde(default)]
    pub province: String,
    #[serde(default)]
    pub city: String,
    /// `personal` (default) or `corporate`.
    #[serde(default)]
    pub account_attr: Option<String>,
}

impl fmt::Debug for Payee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payee")
            .field("account_type", &self.account_type)
            .field("account_name", &self.account_name)
            .field("account_no", &self.masked_account_no())
            .field("bank_code", &self.bank_code)
            .field("bank_name", &self.bank_name)
            .field("province", &self.province)
            .field("city", &self.city)
            .field("account_attr", &self.account_attr)
            .finish()
    }
}

impl Payee {
    /// The account number with all but the last four characters masked, for output and logs.
    pub fn masked_account_no(&self) -> String {
        let n = self.account_no.chars().count();
        let keep: String = self.account_no.chars().skip(n.saturating_sub(4)).collect();
        format!("{}{keep}", "*".repeat(n.saturating_sub(4)))
    }
}

impl Payout {
    /// The payout as merchants see it; the account number is masked.
    pub fn to_merchant_json(&self) -> serde_json::Value {
        let mut payee = serde_json::to_value(&self.payee).expect("payee serializes");
        payee["account_no"] = serde_json::Value::String(self.payee.masked_account_no());
        serde_json::json!({
            "payout_id": self.payout_id,
            "out_payout_no": self.out_payout_no,
            "merchant_id": self.merchant_id,
            "amount": self.amount,
            "currency": self.currency,
            "payee": payee,
            "remark": self.remark,
            "status": self.status,
            "provider": self.provider,
            "provider_payout_no": self.provider_payout_no,
            "notify_url": self.notify_url,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

string_enum!(
    /// What a merchant notification is about.
    EventType {
        PaymentSucceeded => "payment.succeeded",
        PaymentFailed => "payment.failed",
        PaymentAmountMismatch => "payment.amount_mismatch",
        PaymentClosed => "payment.closed",
        RefundSucceeded => "refund.succeeded",
        RefundFailed => "refund.failed",
        PayoutSucceeded => "payout.succeeded",
        PayoutFailed => "payout.failed"
    }
);

impl EventType {
    /// The event a payment emits when it reaches `status`, if any.
    pub fn for_payment(status: PaymentStatus) -> Option<EventType> {
        match status {
            PaymentStatus::Pending => None,
            PaymentStatus::Succeeded => Some(EventType::PaymentSucceeded),
            PaymentStatus::Failed => Some(EventType::PaymentFailed),
            PaymentStatus::Closed => Some(EventType::PaymentClosed),
        }
    }
}

/// The body POSTed to a merchant's notify_url. Its bytes are fixed when the event is written,
/// so every retry carries the same body and the same id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBody {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub data: serde_json::Value,
}

impl Payment {
    /// What the payer must pay: the amount, unless the provider asked for a slightly
    /// different one at create (xiaojitong's `reallyprice`, kept as the qr_code action's
    /// `amount`).
    pub fn amount_due(&self) -> i64 {
        match &self.action {
            Some(Action::QrCode { amount: Some(due), .. }) => *due,
            _ => self.amount,
        }
    }

    /// When less than due was paid: (due, paid). Such a payment is failed, never succeeded.
    pub fn underpayment(&self) -> Option<(i64, i64)> {
        let paid = self.paid_amount?;
        (self.status == PaymentStatus::Failed && paid < self.amount_due()).then(|| (self.amount_due(), paid))
    }

    /// The payment as merchants see it: amounts in fen, times as RFC 3339.
    pub fn to_merchant_json(&self) -> serde_json::Value {
        serde_json::to_value(self.merchant_view()).expect("a payment serializes")
    }

    /// `to_merchant_json` without the intermediate map, for writing the answer at once (the
    /// same bytes: the fields are in the map's alphabetical order).
    pub fn merchant_view(&self) -> MerchantPayment<'_> {
        MerchantPayment {
            action: self.action.as_ref().and_then(|a| serde_json::to_value(a).ok()),
            amount: self.amount,
            amount_mismatch: self.underpayment().map(|(due, paid)| AmountMismatch { due, paid }),
            attach: &self.attach,
            channel: self.channel,
            created_at: rfc3339(self.created_at),
            currency: &self.currency,
            description: &self.description,
            expires_at: rfc3339(self.expires_at),
            merchant_id: &self.merchant_id,
            notify_url: &self.notify_url,
            out_trade_no: &self.out_trade_no,
            paid_amount: self.paid_amount,
            paid_at: self.paid_at.map(rfc3339),
            payment_id: &self.payment_id,
            provider: &self.provider,
            provider_trade_no: &self.provider_trade_no,
            refunded_amount: self.refunded_amount,
            return_url: &self.return_url,
            scene: self.scene,
            status: self.status,
            subject: &self.subject,
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A payment as merchants see it (`Payment::merchant_view`), fields in alphabetical order.
#[derive(Debug, Serialize)]
pub struct MerchantPayment<'a> {
    /// As a map, so its keys are sorted like the rest.
    action: Option<serde_json::Value>,
    amount: i64,
    amount_mismatch: Option<AmountMismatch>,
    attach: &'a Option<String>,
    channel: Channel,
    created_at: String,
    currency: &'a str,
    description: &'a str,
    expires_at: String,
    merchant_id: &'a str,
    notify_url: &'a Option<String>,
    out_trade_no: &'a str,
    paid_amount: Option<i64>,
    paid_at: Option<String>,
    payment_id: &'a str,
    provider: &'a str,
    provider_trade_no: &'a Option<String>,
    refunded_amount: i64,
    return_url: &'a Option<String>,
    scene: Scene,
    status: PaymentStatus,
    subject: &'a str,
    updated_at: String,
}

/// Less than due was paid: both amounts in fen.
#[derive(Debug, Serialize)]
pub struct AmountMismatch {
    due: i64,
    paid: i64,
}

/// One line of a payment's timeline (upstream calls, callbacks, notification attempts), for
/// ops. Kept best effort: written in batches, not part of any payment transaction.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// The payment (or payout) it is about.
    pub subject: String,
    /// Unix milliseconds (shown as RFC 3339 with milliseconds, `at`).
    #[serde(rename = "at", serialize_with = "as_rfc3339_millis")]
    pub at_ms: i64,
    /// `upstream`, `callback` or `notification`.
    pub kind: String,
    pub detail: serde_json::Value,
}

/// A merchant event about to be written to the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub kind: EventType,
    pub merchant_id: String,
    pub payment_id: String,
    pub notify_url: String,
    /// The exact bytes every delivery attempt sends.
    pub body: String,
    pub created_at: i64,
}

impl NewEvent {
    /// An event about `data`; events with the same `order_key` are delivered in order.
    pub fn new(
        kind: EventType,
        merchant_id: &str,
        order_key: &str,
        notify_url: &str,
        data: serde_json::Value,
        now: i64,
    ) -> NewEvent {
        let id = random_id("evt_", 24);
        let body = EventBody { id: id.clone(), kind: kind.as_str().to_string(), created_at: rfc3339(now), data };
        NewEvent {
            id,
            kind,
            merchant_id: merchant_id.to_string(),
            payment_id: order_key.to_string(),
            notify_url: notify_url.to_string(),
            body: serde_json::to_string(&body).expect("event serializes"),
            created_at: now,
        }
    }

    /// The event a payment emits when it moves to a final status.
    pub fn for_payment(payment: &Payment, kind: EventType, now: i64) -> NewEvent {
        let notify_url = payment.notify_url.clone().unwrap_or_default();
        Self::new(kind, &payment.merchant_id, &payment.payment_id, &notify_url, payment.to_merchant_json(), now)
    }

    /// The event a refund emits when it is final; ordered after its payment's events.
    pub fn for_refund(refund: &Refund, payment: &Payment, now: i64) -> Option<NewEvent> {
        let kind = match refund.status {
            TransferStatus::Succeeded => EventType::RefundSucceeded,
            TransferStatus::Failed => EventType::RefundFailed,
            TransferStatus::Pending => return None,
        };
        let mut data = refund.to_merchant_json();
        data["payment"] = payment.to_merchant_json();
        let notify_url = payment.notify_url.clone().unwrap_or_default();
        Some(Self::new(kind, &refund.merchant_id, &refund.payment_id, &notify_url, data, now))
    }

    /// The event a payout emits when it is final.
    pub fn for_payout(payout: &Payout, now: i64) -> Option<NewEvent> {
        let kind = match payout.status {
            TransferStatus::Succeeded => EventType::PayoutSucceeded,
            TransferStatus::Failed => EventType::PayoutFailed,
            TransferStatus::Pending => return None,
        };
        let notify_url = payout.notify_url.clone().unwrap_or_default();
        Some(Self::new(kind, &payout.merchant_id, &payout.payout_id, &notify_url, payout.to_merchant_json(), now))
    }
}

/// Formats unix seconds as RFC 3339 UTC, the way every time leaves payglot.
/// A time given as unix seconds or as RFC 3339 in UTC (`2026-12-01T08:00:00Z`).
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let t = humantime::parse_rfc3339(text).ok()?;
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)
}

/// Serializes unix seconds as RFC 3339 (for ops-facing JSON).
pub fn as_rfc3339<S: serde::Serializer>(unix_seconds: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*unix_seconds))
}

/// Serializes optional unix seconds as RFC 3339 or null.
pub fn as_opt_rfc3339<S: serde::Serializer>(unix_seconds: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match unix_seconds {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// Serializes unix milliseconds as RFC 3339 with milliseconds.
pub fn as_rfc3339_millis<S: serde::Serializer>(unix_ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis((*unix_ms).clamp(0, 253_402_300_799_999) as u64);
    s.serialize_str(&humantime::format_rfc3339_millis(t).to_string())
}

pub fn rfc3339(unix_seconds: i64) -> String {
    // Clamped to 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds.clamp(0, 253_402_300_799) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Random id of `len` characters of `[0-9A-Za-z]`, behind a prefix.
pub fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let target = prefix.len() + len;
    let mut id = String::with_capacity(target);
    id.push_str(prefix);
    let mut buf = [0u8; 32];
    while id.len() < target {
        random_bytes(&mut buf);
        // 248 is the largest multiple of 62 below 256; rejecting above it keeps ids uniform.
        for b in buf.iter().filter(|b| **b < 248).take(target - id.len()) {
            id.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    id
}

/// Fills `out` with the operating system's random bytes, taken 4 KiB at a time per thread:
/// one `getrandom` call served about a hundred ids instead of one (it was a syscall per
/// request, for the request id).
fn random_bytes(out: &mut [u8]) {
    thread_local! {
        static POOL: std::cell::RefCell<(Box<[u8; 4096]>, usize)> = std::cell::RefCell::new((Box::new([0; 4096]), 4096));
    }
    POOL.with(|pool| {
        let (bytes, used) = &mut *pool.borrow_mut();
        for chunk in out.chunks_mut(bytes.len()) {
            if bytes.len() - *used < chunk.len() {
                getrandom::getrandom(&mut bytes[..]).expect("operating system random source");
                *used = 0;
            }
            chunk.copy_from_slice(&bytes[*used..*used + chunk.len()]);
            // Bytes handed out are not kept: a later reader of this memory learns no id.
            bytes[*used..*used + chunk.len()].fill(0);
            *used += chunk.len();
        }
    });
}

/// A new refund or payout id: a letter, 10-digit unix time and 19 random characters.
pub fn new_transfer_id(letter: char, now: i64) -> String {
    let prefix = format!("{letter}{:010}", now.max(0) % 10_000_000_000);
    random_id(&prefix, 19)
}

/// A new payment id: "P", a 10-digit unix time and 19 random characters (30 in all), so ids
/// sort by creation time in provider back offices and never collide across merchants.
pub fn new_payment_id(now: i64) -> String {
    let prefix = format!("P{:010}", now.max(0) % 10_000_000_000);
    random_id(&prefix, 19)
}

#[cfg(test)]
mod tests {

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(super::parse_time("1795391707"), Some(1_795_391_707));
        assert_eq!(super::parse_time("1994-11-06T08:49:37Z"), Some(784_111_777));
        assert_eq!(super::parse_time(&super::rfc3339(1_795_391_707)), Some(1_795_391_707));
        assert_eq!(super::parse_time("yesterday"), None);
    }

    use super::*;

    #[test]
    fn status_only_moves_forward() {
        use PaymentStatus::*;
        assert!(Pending.can_move_to(Succeeded));
        assert!(Pending.can_move_to(Closed));
        assert!(!Succeeded.can_move_to(Pending));
        assert!(!Succeeded.can_move_to(Failed));
        assert!(!Closed.can_move_to(Succeeded));
        assert!(!Pending.can_move_to(Pending));
    }

    #[test]
    fn payment_ids_fit_providers() {
        let id = new_payment_id(1_700_000_000);
        assert_eq!(id.len(), 30);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(id.starts_with("P1700000000"));
        assert_ne!(new_payment_id(1), new_payment_id(1));
    }

    #[test]
    fn actions_serialize_with_a_type_tag() {
        let a = Action::QrCode { qr_code: "weixin://x".into(), amount: None };
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"type":"qr_code","qr_code":"weixin://x"}"#);
        assert_eq!(serde_json::to_string(&Action::None).unwrap(), r#"{"type":"none"}"#);
        assert_eq!("wechat".parse::<Channel>(), Ok(Channel::Wechat));
        assert!("wx".parse::<Channel>().unwrap_err().contains("wechat"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    /// Ids drawn across many refills of the per-thread pool are distinct and use the whole
    /// alphabet evenly (each of the 62 characters within ±25 % of its share).
    #[test]
    fn random_ids_stay_distinct_and_even_across_pool_refills() {
        let ids: Vec<String> = (0..2000).map(|_| random_id("", 19)).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let mut counts = std::collections::HashMap::new();
        for c in ids.iter().flat_map(|id| id.chars()) {
            *counts.entry(c).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 62);
        let share = 2000.0 * 19.0 / 62.0;
        assert!(counts.values().all(|&n| (n as f64 - share).abs() < share * 0.25), "{counts:?}");
        let mut long = [0u8; 10_000];
        random_bytes(&mut long);
        assert!(long.iter().filter(|b| **b == 0).count() < 200, "a fill longer than the pool is random throughout");
    }
}

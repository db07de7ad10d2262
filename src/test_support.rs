//! Fixtures shared by the unit tests, the integration tests and the fuzz targets (the
//! `test-support` feature, which the dev-dependency on payglot itself turns on): one payment.
//! (The dialects with their documents' example accounts are `dialects::examples`.) Not part of
//! the gateway's build.

use crate::model::{Channel, Payment, PaymentStatus, Scene};

/// A pending 1.00 yuan alipay qr payment of merchant `school-a`.
pub fn payment() -> Payment {
    Payment {
        payment_id: "P1700000000abcdefghijklmnopqrs".into(),
        merchant_id: "school-a".into(),
        out_trade_no: "T1".into(),
        amount: 100,
        currency: "CNY".into(),
        subject: "学费".into(),
        description: String::new(),
        channel: Channel::Alipay,
        scene: Scene::Qr,
        status: PaymentStatus::Pending,
        provider: "test-account".into(),
        provider_trade_no: None,
        paid_amount: None,
        paid_at: None,
        refunded_amount: 0,
        attach: None,
        notify_url: None,
        return_url: None,
        action: None,
        created_at: 0,
        updated_at: 0,
        expires_at: i64::MAX,
        door: None,
    }
}

/// `payment()` as merchant `merchant`'s order `out_trade_no` of `amount` fen, with a fresh
/// payment_id, a notify URL and a two-hour expiry.
pub fn payment_of(merchant: &str, out_trade_no: &str, amount: i64) -> Payment {
    Payment {
        payment_id: crate::model::new_payment_id(crate::model::now_unix()),
        merchant_id: merchant.into(),
        out_trade_no: out_trade_no.into(),
        amount,
        provider: "acct".into(),
        notify_url: Some("http://merchant/notify".into()),
        created_at: 1,
        updated_at: 1,
        expires_at: 7200,
        ..payment()
    }
}

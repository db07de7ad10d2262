//! What merchants are told: the signature of a merchant API notification, and the callback a
//! front door's school gets for a payment event, in its door's dialect (the payment as that
//! dialect's provider side shows an order: the order number is the payment_id, the account the
//! school's).

use crate::config::{DoorConfig, MerchantConfig};
use crate::dialects::{self, Notify, ProviderOrder};
use crate::model::{Action, Payment};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The payment as the door's provider side shows it: the order number is the payment_id, the
/// account the school's, and the saved request fields come back.
pub fn provider_order(payment: &Payment, door: &DoorConfig) -> ProviderOrder {
    let mut fields = payment.door.as_ref().map(|d| d.fields.clone()).unwrap_or_default();
    if let Some(no) = &payment.provider_trade_no {
        fields.entry("channelOrderNo".into()).or_insert_with(|| no.clone());
        fields.entry("trade_no".into()).or_insert_with(|| no.clone());
    }
    let qr_amount = match &payment.action {
        Some(Action::QrCode { amount, .. }) => *amount,
        _ => None,
    };
    let dialect = dialects::spec(&door.account.dialect).map(|d| d.name).unwrap_or("");
    ProviderOrder {
        dialect,
        provider_no: payment.payment_id.clone(),
        account: door.account_id.clone(),
        merchant_order_no: payment.out_trade_no.clone(),
        amount: payment.amount,
        payable: payment.paid_amount.or(qr_amount).unwrap_or(payment.amount),
        notify_url: payment.notify_url.clone().unwrap_or_default(),
        return_url: payment.return_url.clone().unwrap_or_default(),
        status: payment.status,
        paid_at: payment.paid_at,
        refunded: payment.refunded_amount,
        fields,
    }
}

/// The callback of a payment event in the school's dialect; `None` when its dialect has no
/// callback for this event (the five documents call back paid orders only) or the school gave
/// no notify URL.
pub fn callback(merchant: &MerchantConfig, payment: &Payment, kind: &str, now: i64) -> Result<Option<Notify>, String> {
    let Some(origin) = &payment.door else { return Ok(None) };
    if kind != "payment.succeeded" || payment.notify_url.as_deref().unwrap_or("").is_empty() {
        return Ok(None);
    }
    let door = merchant
        .compat
        .get(&origin.dialect)
        .ok_or_else(|| format!("merchant {} has no {} door in routes.yaml any more", merchant.id, origin.dialect))?;
    let spec = dialects::spec(&origin.dialect).ok_or_else(|| format!("unknown door dialect {}", origin.dialect))?;
    let notify = spec
        .side
        .notify(&door.keyed(), &provider_order(payment, door), now)
        .ok_or_else(|| format!("the {} door of merchant {} cannot seal a callback", origin.dialect, merchant.id))?;
    Ok(Some(notify))
}

/// The `webhook-signature` of a notification (Standard Webhooks v1): `v1,` + base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, one per key, space-separated (during a secret
/// rotation the receiver accepts either). `keys` are hex (`MerchantConfig::webhook_keys`).
pub fn standard_webhook_signature(keys: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    keys.iter()
        .filter_map(|k| hex::decode(k).ok())
        .map(|key| {
            let mut m = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
            m.update(id.as_bytes());
            m.update(b".");
            m.update(timestamp.to_string().as_bytes());
            m.update(b".");
            m.update(body);
            format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("operating system random source");
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The signature of a merchant notification.
pub fn event_signature(key: &str, timestamp: &str, event_id: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b"\n");
    m.update(event_id.as_bytes());
    m.update(b"\n");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::standard_webhook_signature;

    #[test]
    fn standard_webhooks_signature_reproduces_the_specifications_vector() {
        // The vector of the Standard Webhooks reference libraries: secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp
        // 1614265330, body {"test": 2432232314}.
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = hex::encode(key);
        let sig =
            standard_webhook_signature(&[&key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = standard_webhook_signature(&[&key, "00ff"], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b"{}");
        assert_eq!(two.split(' ').count(), 2, "one signature per secret during a rotation: {two}");
    }
}

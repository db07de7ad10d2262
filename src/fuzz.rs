//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and the fuzz smoke test: each
//! reads attacker-controlled bytes the way the gateway does — the merchant API request and its
//! authentication, every dialect's callback and answer readers, every provider side's request
//! reader (what the front doors and the sandbox run), routes.yaml — and must never panic,
//! whatever the bytes. They use fixed accounts (the documents' example credentials), so signed
//! inputs from `tests/fixtures` reach the code after the signature check.

use crate::config::LiveConfig;
use crate::dialects::provider_side::{Fail, Failure, Keyed, Request};
use crate::dialects::{self, CreateOrder, Dialect, DialectSpec, InboundHttp, ProviderResponse};
use crate::model::{Action, Channel, Payment, Refund, TransferStatus};
use std::sync::{Arc, OnceLock};

/// Every dialect's merchant side with its document's example account, in registry order.
fn accounts() -> &'static [(&'static DialectSpec, Arc<dyn Dialect>)] {
    static ACCOUNTS: OnceLock<Vec<(&'static DialectSpec, Arc<dyn Dialect>)>> = OnceLock::new();
    ACCOUNTS.get_or_init(dialects::examples)
}

/// Splits fuzz bytes at the first 0xff: (head, rest); no 0xff: (empty, all).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[], data),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A pending wechat qr payment that a provider numbered and asked 3 fen for.
fn payment(payment_id: &str) -> Payment {
    Payment {
        payment_id: payment_id.into(),
        merchant_id: "m".into(),
        out_trade_no: "o".into(),
        amount: 1,
        channel: Channel::Wechat,
        provider: "fz".into(),
        provider_trade_no: Some("20220326232724".into()),
        action: Some(Action::QrCode { qr_code: "q".into(), amount: Some(3) }),
        ..crate::test_support::payment()
    }
}

/// A callback to one dialect: byte 0 picks the dialect; the rest is `query 0xff body`.
pub fn callback(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (_, dialect) = &accounts()[pick as usize % accounts().len()];
    let (query, body) = split(rest);
    let query = text(query);
    for method in ["GET", "POST"] {
        let inbound = InboundHttp { method, query: &query, content_type: "application/x-www-form-urlencoded", body };
        let _ = dialect.read_callback(inbound, 1_700_000_000);
        let _ = dialect.claimed_payment_id(inbound);
    }
}

/// An answer to one dialect's request: byte 0 picks the dialect, byte 1 the operation; the
/// rest is `payment_id 0xff body`.
pub fn answer(data: &[u8]) {
    let [pick, op, rest @ ..] = data else { return };
    let (_, dialect) = &accounts()[*pick as usize % accounts().len()];
    let (id, body) = split(rest);
    let p = payment(&text(id));
    let answer = ProviderResponse { status: 200, body };
    let extra = serde_json::Map::new();
    let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "") };
    let refund = Refund {
        refund_id: text(id),
        out_refund_no: "r".into(),
        merchant_id: "m".into(),
        payment_id: p.payment_id.clone(),
        out_trade_no: "o".into(),
        amount: 1,
        reason: None,
        status: TransferStatus::Pending,
        provider: "fz".into(),
        provider_refund_no: None,
        created_at: 0,
        updated_at: 0,
    };
    match op % 8 {
        0 => drop(dialect.read_create(&order, answer)),
        1 => drop(dialect.read_query(&p, answer)),
        2 => drop(dialect.read_close(&p, answer)),
        3 => drop(dialect.read_refund(&refund, answer)),
        4 => drop(dialect.read_refund_query(&refund, answer)),
        5 => drop(dialect.read_balance(answer)),
        6 => drop(dialect.read_payment_methods(answer)),
        _ => drop(dialect.read_order_list(answer)),
    }
}

/// A school's request read by a provider side (the code the front doors and the sandbox run):
/// byte 0 picks the dialect and endpoint, the rest is the body (and, for GETs, the query).
pub fn door_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let spec = &dialects::REGISTRY[pick as usize % dialects::REGISTRY.len()];
    let (method, path) = spec.endpoints[pick as usize / dialects::REGISTRY.len() % spec.endpoints.len()];
    let account = spec.example_account("fz");
    let keys = move |_: &str| Some(Keyed::new(account.clone()));
    let query = text(body);
    let request = Request { method, path, query: &query, body, forwarded_for: Some("203.0.113.9") };
    if let Ok(call) = spec.side.read(&request, &keys, 1_497_957_842) {
        if let Some(keyed) = keys(&call.account_id) {
            let failed = Err(Failure::new(Fail::Other, "fuzz"));
            drop(spec.side.answer(&keyed, &call, failed, 1_497_957_842));
        }
    }
}

/// A live config for the merchant API target.
fn live() -> &'static LiveConfig {
    static LIVE: OnceLock<LiveConfig> = OnceLock::new();
    LIVE.get_or_init(|| {
        let yaml = "listen: 127.0.0.1:1\npublic_url: https://pay.example.edu\nproviders:\n  a:\n    dialect: xxpay\n    base_url: https://pay.provider.example\n    credentials: { mch_id: \"1001\", app_id: x, key: xxpay-key-a }\nmerchants:\n  m:\n    key: merchant-key-0123456789\n    routes:\n      - to: a\n";
        let config = crate::config::parse(yaml, std::path::Path::new("."), &|_| None).expect("fixed config");
        LiveConfig::build(config, "fuzz.yaml".into()).expect("fixed config builds")
    })
}

/// A merchant API request: `method 0xff path 0xff timestamp 0xff nonce 0xff signature 0xff body`;
/// the route is found, the signature checked, and the body read as each request type.
pub fn merchant_request(data: &[u8]) {
    let mut parts = data.splitn(6, |b| *b == 0xff).map(text);
    let (method, path, ts, nonce, sig) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next(), parts.next(), parts.next());
    let body = data.rsplit(|b| *b == 0xff).next().unwrap_or_default();
    let _ = crate::doors::merchant_api::endpoint_name(&method, &path);
    let headers = crate::doors::merchant_api::auth::SignedHeaders {
        merchant: Some("m"),
        timestamp: ts.as_deref(),
        nonce: nonce.as_deref(),
        signature: sig.as_deref(),
    };
    let _ = crate::doors::merchant_api::auth::verify(live(), headers, &method, &path, body, 1_700_000_000);
    if let Ok(request) = serde_json::from_slice::<crate::core::payments::CreatePaymentRequest>(body) {
        let _ = request.validate();
    }
    let _ = serde_json::from_slice::<crate::core::refunds::CreateRefundRequest>(body);
    let _ = serde_json::from_slice::<crate::core::payouts::CreatePayoutRequest>(body);
}

/// routes.yaml text.
pub fn routes_yaml(data: &[u8]) {
    let _ = crate::config::parse(&text(data), std::path::Path::new("/nonexistent"), &|_| Some("x".repeat(20)));
}

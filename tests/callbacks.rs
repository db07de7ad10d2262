//! Provider callbacks and merchant notifications over real HTTP: forged callbacks, duplicates,
//! a merchant endpoint that is down, and a gateway restart with events pending.

mod common;

use common::*;
use payglot::dialects::xxpay::provider::notify_body;
use std::collections::BTreeMap;
use std::time::Duration;

/// A created, unpaid payment: (payment_id, provider_trade_no).
async fn create(gw: &Gateway, out_trade_no: &str, amount: i64) -> (String, String) {
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body(out_trade_no, amount)).await;
    assert_eq!(status, 200, "{p}");
    (p["payment_id"].as_str().unwrap().into(), p["provider_trade_no"].as_str().unwrap().into())
}

fn paid_fields(payment_id: &str, trade_no: &str, mch_id: &str, amount: i64) -> BTreeMap<String, String> {
    [
        ("payOrderId", trade_no),
        ("mchId", mch_id),
        ("appId", "app-a"),
        ("productId", "8006"),
        ("mchOrderNo", payment_id),
        ("amount", &amount.to_string()),
        ("status", "2"),
        ("paySuccTime", "1795390000000"),
        ("backType", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_are_refused_and_duplicates_make_one_event() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (payment_id, trade_no) = create(&gw, "T-CB1", 300).await;
    let key = XXPAY_A.2;

    let forged = notify_body(paid_fields(&payment_id, &trade_no, XXPAY_A.0, 300), "guessed-key");
    let (status, body) = gw.callback("xxpay-a", &forged).await;
    assert_ne!(body, "success", "bad signature refused");
    assert_eq!(status, 400);

    let unknown = notify_body(paid_fields("P1795390000unknownpaymentxxxx", &trade_no, XXPAY_A.0, 300), key);
    let (status, body) = gw.callback("xxpay-a", &unknown).await;
    assert_ne!(body, "success", "unknown payment refused");
    assert_eq!(status, 404);

    let cheap = notify_body(paid_fields(&payment_id, &trade_no, XXPAY_A.0, 1), key);
    let (_, body) = gw.callback("xxpay-a", &cheap).await;
    assert_ne!(body, "success", "amount different from the order refused");

    // Signed with account b's key, sent to account a's callback URL.
    let other = notify_body(paid_fields(&payment_id, &trade_no, XXPAY_B.0, 300), XXPAY_B.2);
    let (_, body) = gw.callback("xxpay-a", &other).await;
    assert_ne!(body, "success", "another account's callback refused");
    // Verified, but from an account that does not own the payment: it settles nothing; it is
    // recorded for ops (then acked, so the provider stops sending it).
    assert_eq!(gw.callback("xxpay-b", &other).await, (200, "success".to_string()));
    let (_, anomalies) = gw.admin("GET", &format!("/admin/anomalies?payment={payment_id}")).await;
    let anomalies = anomalies["anomalies"].as_array().unwrap().clone();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(
        (anomalies[0]["kind"].as_str(), anomalies[0]["provider"].as_str()),
        (Some("foreign_callback"), Some("xxpay-b"))
    );
    assert_eq!(anomalies[0]["detail"]["owner"], "xxpay-a");

    let (status, _) = gw.callback("no-such-account", &forged).await;
    assert_eq!(status, 404);

    let (_, p) = gw.call("GET", "/v1/payments/T-CB1", "").await;
    assert_eq!(p["status"], "pending", "nothing forged moved the payment: {p}");
    assert!(gw.payment_events(&payment_id).await.is_empty(), "no event from forged callbacks");

    let valid = notify_body(paid_fields(&payment_id, &trade_no, XXPAY_A.0, 300), key);
    assert_eq!(gw.callback("xxpay-a", &valid).await, (200, "success".to_string()));
    assert_eq!(gw.callback("xxpay-a", &valid).await, (200, "success".to_string()), "a duplicate is acked again");
    eventually("the notification", Duration::from_secs(10), || {
        let n = merchant.events().len();
        async move { (n >= 1).then_some(()) }
    })
    .await;
    gw.settled().await;
    assert_eq!(gw.payment_events(&payment_id).await.len(), 1, "one event for two callbacks");
    let events = merchant.events();
    assert_eq!(events.len(), 1, "one notification: {events:?}");
    assert_eq!(events[0].json()["data"]["paid_amount"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_a_merchant_that_is_down_and_survive_a_restart() {
    let mut merchant = MerchantServer::new(); // not listening yet: connection refused
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;

    let (down1, trade_no) = create(&gw, "T-DOWN1", 100).await;
    gw.pay_at_sandbox(&trade_no).await;
    eventually("the payment to settle", Duration::from_secs(10), || async {
        let (_, p) = gw.call("GET", "/v1/payments/T-DOWN1", "").await;
        (p["status"] == "succeeded").then_some(())
    })
    .await;
    // A few failed attempts on the 1 s schedule, then the merchant comes up.
    eventually("two failed delivery attempts", Duration::from_secs(10), || async {
        let events = gw.payment_events(&down1).await;
        events.first().is_some_and(|e| e["attempts"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    merchant.start().await;
    eventually("delivery once the merchant is up", Duration::from_secs(10), || {
        let n = merchant.events().len();
        async move { (n == 1).then_some(()) }
    })
    .await;

    // Now the merchant fails with 500 and the gateway is killed while the event is pending.
    merchant.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, trade_no) = create(&gw, "T-DOWN2", 200).await;
    gw.pay_at_sandbox(&trade_no).await;
    eventually("the second payment to settle", Duration::from_secs(10), || async {
        let (_, p) = gw.call("GET", "/v1/payments/T-DOWN2", "").await;
        (p["status"] == "succeeded").then_some(())
    })
    .await;
    gw.kill();
    merchant.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    gw.start().await;
    let events = eventually("delivery after the restart", Duration::from_secs(10), || {
        let events = merchant.events();
        async move { (events.len() == 2).then_some(events) }
    })
    .await;
    let second = events[1].json();
    assert_eq!(second["data"]["out_trade_no"], "T-DOWN2");
    assert_eq!(second["data"]["amount"], 200);
    assert!(events[1].signature_valid());
    gw.settled().await;
    assert_eq!(merchant.events().len(), 2, "no duplicates after delivery");
}

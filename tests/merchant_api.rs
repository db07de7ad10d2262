//! The merchant API over real HTTP: a full sandbox payment, idempotency, and bad input.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_is_created_paid_notified_once_and_queried() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;

    let (status, payment) = gw.call("POST", "/v1/payments", &payment_body("T-1001", 1980)).await;
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["amount"], 1980);
    assert_eq!(payment["provider"], "xxpay-a");
    assert_eq!(payment["action"]["type"], "qr_code");
    let payment_id = payment["payment_id"].as_str().unwrap().to_string();
    assert_eq!(payment_id.len(), 30);
    let trade_no = payment["provider_trade_no"].as_str().expect("provider order number").to_string();
    // The QR code of the sandbox is its pay page for this order.
    assert!(payment["action"]["qr_code"].as_str().unwrap().ends_with(&format!("/xxpay/pay/{trade_no}")));

    gw.pay_at_sandbox(&trade_no).await;

    let events = eventually("the payment.succeeded notification", Duration::from_secs(15), || {
        let events = merchant.events();
        async move { (!events.is_empty()).then_some(events) }
    })
    .await;
    // The sandbox's callback acked and the outbox empty: no second event can follow.
    gw.settled().await;
    let events_after = merchant.events();
    assert_eq!(events_after.len(), 1, "exactly one notification: {events_after:?}");
    let event = &events[0];
    assert!(event.signature_valid(), "Payglot-Signature verifies with the merchant key");
    let body = event.json();
    assert_eq!(body["type"], "payment.succeeded");
    assert_eq!(body["id"], event.event_id.as_str());
    assert_eq!(body["data"]["payment_id"], payment_id.as_str());
    assert_eq!(body["data"]["out_trade_no"], "T-1001");
    assert_eq!(body["data"]["amount"], 1980);
    assert_eq!(body["data"]["paid_amount"], 1980);
    assert_eq!(body["data"]["status"], "succeeded");
    assert!((now() - event.timestamp.parse::<i64>().unwrap()).abs() < 60);

    let (status, queried) = gw.call("GET", "/v1/payments/T-1001", "").await;
    assert_eq!(status, 200);
    assert_eq!(queried["status"], "succeeded");
    assert_eq!(queried["paid_amount"], 1980);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_asks_the_provider_while_pending() {
    // The sandbox's callbacks go to an address where nobody listens: the query alone must
    // find out from the provider that the payment was paid.
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.public_url = format!("http://127.0.0.1:{}", free_port());
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;
    let (_, payment) = gw.call("POST", "/v1/payments", &payment_body("T-Q1", 100)).await;
    let trade_no = payment["provider_trade_no"].as_str().unwrap().to_string();
    let (_, pending) = gw.call("GET", "/v1/payments/T-Q1", "").await;
    assert_eq!(pending["status"], "pending");
    gw.pay_at_sandbox(&trade_no).await;
    let (status, paid) = gw.call("GET", "/v1/payments/T-Q1", "").await;
    assert_eq!(status, 200);
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(paid["paid_amount"], 100);
    assert!(!gw.log().contains("/callbacks/"), "no callback reached the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_idempotent_on_out_trade_no() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let body = payment_body("T-2001", 500);
    let (s1, first) = gw.call("POST", "/v1/payments", &body).await;
    let (s2, second) = gw.call("POST", "/v1/payments", &body).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first["payment_id"], second["payment_id"]);
    assert_eq!(first["provider_trade_no"], second["provider_trade_no"], "no second provider order");

    let (status, error) = gw.call("POST", "/v1/payments", &payment_body("T-2001", 501)).await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "duplicate_out_trade_no");
    let (_, stored) = gw.call("GET", "/v1/payments/T-2001", "").await;
    assert_eq!(stored["amount"], 500, "the conflicting request changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_documented_error_and_create_nothing() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let body = payment_body("T-BAD", 100);

    let nonce = "bad-key-nonce-0001";
    let (status, e) = gw.call_signed("POST", "/v1/payments", &body, "not-the-merchant-key", now(), nonce).await;
    assert_eq!((status, e["error"]["code"].as_str()), (401, Some("invalid_signature")), "{e}");

    let (status, e) =
        gw.call_signed("POST", "/v1/payments", &body, MERCHANT_KEY, now() - 301, "stale-nonce-000001").await;
    assert_eq!(status, 401);
    assert!(e["error"]["message"].as_str().unwrap().contains("300"), "{e}");

    let (status, e) = gw
        .call_signed("POST", "/v1/payments", &payment_body("T-REPLAY", 100), MERCHANT_KEY, now(), "replayed-nonce-0001")
        .await;
    assert_eq!(status, 200, "{e}");
    let (status, e) = gw
        .call_signed("POST", "/v1/payments", &payment_body("T-REPLAY", 100), MERCHANT_KEY, now(), "replayed-nonce-0001")
        .await;
    assert_eq!(status, 401);
    assert!(e["error"]["message"].as_str().unwrap().contains("Nonce"), "{e}");

    // A nonce burnt by a bad signature? No: only signed requests use nonces up.
    let (status, _) =
        gw.call_signed("POST", "/v1/payments", &payment_body("T-NONCE", 100), MERCHANT_KEY, now(), nonce).await;
    assert_eq!(status, 200);

    for (bad, what) in [
        ("{\"out_trade_no\": \"T-BAD\", \"amount\": ".to_string(), "truncated JSON"),
        ("[1,2,3]".to_string(), "not an object"),
        (body.replace("100", "0"), "zero amount"),
        (body.replace("100", "-100"), "negative amount"),
        (body.replace("100", "1.5"), "fractional amount"),
        (body.replace("100", "\"100\""), "amount as a string"),
        (body.replace("100", "100000000000"), "absurd amount"),
        (body.replace("\"alipay\"", "\"paypal\""), "unknown channel"),
        (body.replace("\"qr\"", "\"barcode\""), "barcode without auth_code"),
        (body.replace("}", ",\"amuont\":1}"), "unknown field"),
    ] {
        let (status, e) = gw.call("POST", "/v1/payments", &bad).await;
        assert_eq!(status, 400, "{what}: {e}");
        assert_eq!(e["error"]["code"], "invalid_request", "{what}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    // Amount mistakes are told in plain words: the field, the fen rule, what was sent.
    for (amount, says) in [
        ("\"19.80\"", "not \"19.80\""),
        ("19.8", "not 19.8"),
        ("0", "0 is nothing to pay"),
        ("-100", "-100 is negative"),
    ] {
        let (status, e) = gw.call("POST", "/v1/payments", &body.replace("100", amount)).await;
        let message = e["error"]["message"].as_str().unwrap_or("");
        assert_eq!(status, 400, "{e}");
        assert!(message.starts_with("amount: ") && message.contains(says), "{amount}: {message}");
        assert!(message.contains("integer fen (1980 for 19.80 yuan)"), "{amount}: {message}");
        assert!(!message.contains("i64"), "no Rust type names: {message}");
    }
    let (_, e) = gw.call("POST", "/v1/payments", &body.replace("\"alipay\"", "\"paypal\"")).await;
    assert!(e["error"]["message"].as_str().unwrap().contains("channel"), "the field is named: {e}");

    let oversized = serde_json::json!({"out_trade_no": "T-BAD", "amount": 1, "subject": "x".repeat(70_000), "channel": "alipay", "scene": "qr"}).to_string();
    let (status, e) = gw.call("POST", "/v1/payments", &oversized).await;
    assert_eq!(status, 413, "{e}");

    let (status, e) = gw.call("GET", "/v1/payments/T-BAD", "").await;
    assert_eq!(status, 404, "nothing was created: {e}");
    assert_eq!(e["error"]["code"], "not_found");

    let (status, e) = gw.call("GET", "/v1/nothing-here", "").await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not_found")));
    let a = gw.http("GET", &format!("{}/favicon.ico", gw.base()), &[], b"").await;
    assert_eq!(a.status, 404);
    let e: serde_json::Value = serde_json::from_slice(&a.body).expect("404 is JSON");
    assert_eq!(e["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_are_routed_whole_and_decoded() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body("A.B-1", 100)).await;
    assert_eq!(status, 200, "{p}");
    // `A&B` is one order number (it used to be read as `A`).
    let (status, e) = gw.call("GET", "/v1/payments/A.B-1&x", "").await;
    assert_eq!(status, 404, "{e}");
    let (status, q) = gw.call("GET", "/v1/payments/A%2EB-1", "").await;
    assert_eq!((status, q["out_trade_no"].as_str()), (200, Some("A.B-1")), "percent-decoded: {q}");
    let (status, e) = gw.call("DELETE", "/v1/payments/A.B-1", "").await;
    assert_eq!(status, 405, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("allowed: GET"), "{e}");
    for (method, path, allow) in
        [("DELETE", "/v1/payments/A.B-1", "GET"), ("GET", "/v1/payouts", "POST"), ("PUT", "/v1/payments", "POST")]
    {
        let a = gw.http(method, &format!("{}{path}", gw.base()), &[], b"").await;
        let header = a.headers.get("allow").and_then(|v| v.to_str().ok());
        assert_eq!((a.status, header), (405, Some(allow)), "{method} {path}");
    }
    let (status, _) = gw.call("GET", "/v1/payments/A.B-1/nothing", "").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_key_rotation_either_key_signs_and_no_other() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    let next = "school-a-next-key-9876543210";
    let yaml = gw.routes_yaml("xxpay-a").replacen(
        &format!("    key: {MERCHANT_KEY}\n"),
        &format!("    key: {MERCHANT_KEY}\n    next_key: {next}\n"),
        1,
    );
    gw.write_config(&yaml);
    gw.start().await;
    let body = payment_body("ROT-1", 100);
    for (key, expected) in [(MERCHANT_KEY, 200), (next, 200), ("school-a-other-key-000000", 401)] {
        let nonce = payglot::model::random_id("n", 24);
        let (status, answer) = gw.call_signed_as(MERCHANT, "POST", "/v1/payments", &body, key, now(), &nonce).await;
        assert_eq!(status, expected, "{key}: {answer}");
    }
    // A webhook secret that is not one is refused when the config is checked.
    let bad = yaml.replacen(&format!("    next_key: {next}\n"), "    webhook_secret: not-a-secret\n", 1);
    let path = gw.dir.path().join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payglot"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("webhook_secret: must start with whsec_"), "{text}");
}

/// A payment's merchant view (what create and query answer) writes the same bytes as its
/// merchant JSON (what notifications carry).
#[test]
fn the_merchant_view_writes_the_same_bytes_as_the_merchant_json() {
    use payglot::model::{Action, PaymentStatus};
    let mut p = payglot::test_support::payment();
    p.action = Some(Action::QrCode { qr_code: "weixin://x".into(), amount: Some(101) });
    p.paid_amount = Some(50);
    p.status = PaymentStatus::Failed;
    p.paid_at = Some(1_796_190_422);
    let view = serde_json::to_string(&p.merchant_view()).unwrap();
    assert_eq!(view, serde_json::to_string(&p.to_merchant_json()).unwrap());
    assert!(
        view.starts_with("{\"action\":{") && view.contains("\"amount_mismatch\":{\"due\":101,\"paid\":50}"),
        "{view}"
    );
}
